"""metric rollups: the counts and sums behind /metrics and get_model_health, backfilled

Revision ID: 0007_metric_rollups
Revises: 0006_retraining
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_metric_rollups"
down_revision = "0006_retraining"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("series", sa.String(24), nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("n", sa.Float, nullable=False),
        sa.Column("s1", sa.Float, nullable=False),
        sa.Column("s2", sa.Float, nullable=False),
        # (series, hour) first: a scrape reads the all-time rows of a few series (hour = 0), health
        # a range of hours; both are ranges of this key.
        sa.PrimaryKeyConstraint("series", "hour", "model", "version", "label", "outcome", "bucket", "shard"),
        sqlite_with_rowid=False,
    )
    # Stores with history: counters start from what the tables already hold.
    from mlops_mcp.core.monitoring.rollups import rebuild

    bind = op.get_bind()
    rebuild(bind, bind.dialect.name == "sqlite")


def downgrade() -> None:
    op.drop_table("metric_rollups")
