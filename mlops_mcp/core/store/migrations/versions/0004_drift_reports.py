"""drift reports

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from mlops_mcp.core.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reference_source", sa.String(500), nullable=False),
        sa.Column("current_source", sa.String(500), nullable=False),
        sa.Column("n_reference", sa.Integer, nullable=False),
        sa.Column("n_current", sa.Integer, nullable=False),
        sa.Column("method", sa.String(40), nullable=False),
        sa.Column("drift_detected", sa.Boolean, nullable=False),
        sa.Column("share_drifted", sa.Float, nullable=False),
        sa.Column("n_drifted", sa.Integer, nullable=False),
        sa.Column("n_checked", sa.Integer, nullable=False),
        sa.Column("drifted_columns", sa.JSON, nullable=False),
        sa.Column("prediction_drifted", sa.Boolean, nullable=True),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_index("ix_drift_reports_model", "drift_reports", ["model", "id"])


def downgrade() -> None:
    op.drop_table("drift_reports")
