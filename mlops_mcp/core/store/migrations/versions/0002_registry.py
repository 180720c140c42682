"""alias history and prediction log

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from mlops_mcp.core.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_alias_events_model", "alias_events", ["model", "alias", "id"])
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("experiment_id", sa.Integer, nullable=True),
        sa.Column("request_key", sa.String(256), nullable=True),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("probabilities", sa.JSON, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_predictions_model_time", "predictions", ["model", "created_at"])
    op.create_index("ix_predictions_model_version", "predictions", ["model", "version"])
    op.create_index("ix_predictions_experiment", "predictions", ["experiment_id"])


def downgrade() -> None:
    op.drop_table("predictions")
    op.drop_table("alias_events")
