"""experiments: live A/B tests, shadow deployments and the shadow prediction log

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from mlops_mcp.core.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("variant_a", sa.String(64), nullable=True),
        sa.Column("variant_b", sa.String(64), nullable=False),
        sa.Column("version_a", sa.Integer, nullable=True),
        sa.Column("version_b", sa.Integer, nullable=False),
        sa.Column("traffic_split", sa.Float, nullable=False),
        sa.Column("metric", sa.String(32), nullable=True),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("mde", sa.Float, nullable=True),
        sa.Column("min_samples_per_arm", sa.Integer, nullable=True),
        sa.Column("always_valid_p", sa.Float, nullable=True),
        sa.Column("looks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("ended_by", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
    )
    op.create_index("ix_experiments_model", "experiments", ["model", "kind", "id"])
    # One running experiment of each kind per model, enforced by the database (concurrent starts).
    op.create_index(
        "ux_experiments_running", "experiments", ["model", "kind"], unique=True,
        sqlite_where=sa.text("status = 'running'"), postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "shadow_predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("primary_version", sa.Integer, nullable=False),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_shadow_predictions_experiment", "shadow_predictions", ["experiment_id", "id"])


def downgrade() -> None:
    op.drop_table("shadow_predictions")
    op.drop_table("experiments")
