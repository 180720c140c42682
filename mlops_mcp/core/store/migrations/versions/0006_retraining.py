"""retraining: policies and jobs

Revision ID: 0006_retraining
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from mlops_mcp.core.store.tables import UTCDateTime

revision = "0006_retraining"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retraining_policies",
        sa.Column("model", sa.String(256), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("on_drift", sa.Boolean, nullable=False),
        sa.Column("drift_share", sa.Float, nullable=True),
        sa.Column("on_decay", sa.Boolean, nullable=False),
        sa.Column("metric", sa.String(32), nullable=True),
        sa.Column("max_drop", sa.Float, nullable=True),
        sa.Column("schedule", sa.String(120), nullable=True),
        sa.Column("min_new_labels", sa.Integer, nullable=False),
        sa.Column("cooldown_seconds", sa.Float, nullable=False),
        sa.Column("gate", sa.JSON, nullable=False),
        sa.Column("after_gate", sa.String(16), nullable=False),
        sa.Column("auto_promote", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("last_drift_report_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("decay_labels_seen", sa.Integer, nullable=False, server_default="0"),
        sa.Column("schedule_checked_at", UTCDateTime, nullable=True),
        sa.Column("last_trigger", sa.JSON, nullable=True),
    )
    op.create_table(
        "retraining_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("percent", sa.Float, nullable=False, server_default="0"),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("triggers", sa.Integer, nullable=False, server_default="1"),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("new_version", sa.Integer, nullable=True),
        sa.Column("data", sa.JSON, nullable=True),
        sa.Column("gate", sa.JSON, nullable=True),
        sa.Column("after_gate", sa.JSON, nullable=True),
        sa.Column("timings", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("child_pid", sa.Integer, nullable=True),
        sa.Column("queue_job_id", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("heartbeat_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_retraining_jobs_model", "retraining_jobs", ["model", "id"])
    # One queued or running job per model, enforced by the database (triggers from several processes).
    op.create_index(
        "ux_retraining_jobs_active", "retraining_jobs", ["model"], unique=True,
        sqlite_where=sa.text("status IN ('queued', 'running')"),
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_table("retraining_jobs")
    op.drop_table("retraining_policies")
