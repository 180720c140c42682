"""The store's tables. Every change here comes with an Alembic migration in ``migrations/versions``."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone: we restore it on load)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AuditEntry(Base):
    """One mutating tool call: who, when, what, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    tool: Mapped[str] = mapped_column(String(100), index=True)
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(20))  # ok | error
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)


class AliasEvent(Base):
    """One move of an alias. MLflow keeps only where an alias points now; rollback needs the past.

    ``kind`` is ``set`` (a promotion), ``rollback`` (undoes the newest set), ``delete`` or
    ``observed`` (a move made outside this server, noticed later and recorded as such).
    """

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256), index=True)
    alias: Mapped[str] = mapped_column(String(256))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Prediction(Base):
    """One served prediction: what answered, what it saw, what it said, how fast."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)  # alias or A/B arm
    experiment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    request_key: Mapped[str | None] = mapped_column(String(256), nullable=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    output: Mapped[Any] = mapped_column(JSON)  # class label or number, as returned
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # P(positive class) or the regression value
    probabilities: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)  # of the whole batch the row came in
    batch_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- feedback (issue 6) ---------------------------------------------------------------------------
from sqlalchemy import Boolean, Index, text  # noqa: E402


class Feedback(Base):
    """One ground-truth label for a logged prediction. Labels are never overwritten: a later label
    from the same ``source`` is a correction that clears ``is_current`` on the earlier one, and the
    newest label from any source carries ``is_latest`` (what performance tracking joins on)."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_prediction", "prediction_id"),
        Index("ix_feedback_model_time", "model", "created_at"),
        Index(
            "ux_feedback_current", "prediction_id", "source", unique=True,
            sqlite_where=text("is_current"), postgresql_where=text("is_current"),
        ),
        Index(
            "ux_feedback_latest", "prediction_id", unique=True,
            sqlite_where=text("is_latest"), postgresql_where=text("is_latest"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(256))  # copied from the prediction, for history queries
    version: Mapped[int] = mapped_column(Integer)
    actual: Mapped[Any] = mapped_column(JSON)  # the class label (as the model knows it) or the number
    source: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_current: Mapped[bool] = mapped_column(Boolean)  # newest label of this prediction from this source
    is_latest: Mapped[bool] = mapped_column(Boolean)  # newest label of this prediction from any source
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the label was logged
