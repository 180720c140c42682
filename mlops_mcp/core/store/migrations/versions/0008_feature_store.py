"""feature store: feature views, their versions, ingests and training sets

Each view version's data tables (``fs_<version id>_offline`` and ``fs_<version id>_online``) have
the view's own columns, so they are created when the version is registered; downgrading drops them
with the catalog.

Revision ID: 0008_feature_store
Revises: 0007_metric_rollups
"""

import sqlalchemy as sa
from alembic import op

from mlops_mcp.core.store.tables import UTCDateTime

revision = "0008_feature_store"
down_revision = "0007_metric_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_views",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False, unique=True),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "feature_view_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("view_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("schema_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("materialized_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("materialized_until", sa.BigInteger, nullable=True),
        sa.Column("materialized_at", UTCDateTime, nullable=True),
    )
    op.create_index("ux_feature_view_versions", "feature_view_versions", ["view_id", "version"], unique=True)
    op.create_table(
        "feature_ingests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("dataset", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("n_bytes", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=True),
        sa.Column("last_seq", sa.BigInteger, nullable=True),
        sa.Column("min_event", sa.BigInteger, nullable=True),
        sa.Column("max_event", sa.BigInteger, nullable=True),
        sa.Column("assumed_utc", sa.JSON, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ux_feature_ingests_file", "feature_ingests", ["version_id", "sha256"], unique=True)
    op.create_table(
        "feature_training_sets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("output", sa.String(1024), nullable=False),
        sa.Column("entities", sa.String(1024), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM feature_view_versions"))]
    for version_id in ids:
        for kind in ("online", "offline"):
            op.execute(f"DROP TABLE IF EXISTS fs_{int(version_id)}_{kind}")
    op.drop_table("feature_training_sets")
    op.drop_table("feature_ingests")
    op.drop_table("feature_view_versions")
    op.drop_table("feature_views")
