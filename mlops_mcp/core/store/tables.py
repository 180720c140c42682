"""The store's tables. Every change here comes with an Alembic migration in ``migrations/versions``."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
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


class Feedback(Base):
    """One ground-truth label for a logged prediction. Labels are never overwritten: a later label
    from the same ``source`` is a correction that clears ``is_current`` on the earlier one, and the
    newest label from any source carries ``is_latest`` (what performance tracking reads). The
    prediction's time, output and score are copied in, so a report over a million predictions
    scans this table instead of joining row by row."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_prediction", "prediction_id"),
        Index("ix_feedback_model_latest", "model", "is_latest"),
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
    # Copied from the (immutable) prediction, so that performance reads one table, not a join:
    predicted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    probabilities: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)  # multiclass only


class DriftReportRow(Base):
    """A persisted drift check: headline figures as columns, the full per-column report as JSON."""

    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    reference_source: Mapped[str] = mapped_column(String(500))
    current_source: Mapped[str] = mapped_column(String(500))
    n_reference: Mapped[int] = mapped_column(Integer)
    n_current: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(40))
    drift_detected: Mapped[bool] = mapped_column(Boolean)
    share_drifted: Mapped[float] = mapped_column(Float)
    n_drifted: Mapped[int] = mapped_column(Integer)
    n_checked: Mapped[int] = mapped_column(Integer)
    drifted_columns: Mapped[list[str]] = mapped_column(JSON)
    prediction_drifted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


# -- experiments (issue 7) ------------------------------------------------------------------------
class ExperimentRow(Base):
    """One live A/B test or shadow deployment of a model.

    ``kind`` is ``ab`` or ``shadow``; ``status`` is ``running``, then ``concluded`` (A/B) or
    ``stopped`` (shadow). At most one running experiment of each kind per model: a partial unique
    index enforces it even against concurrent starts. The arms are pinned: ``version_a`` /
    ``version_b`` are the versions the variants pointed at when the experiment started (for a shadow,
    ``version_b`` is the shadow version and ``version_a`` is unused). ``always_valid_p`` is the
    running minimum of the mSPRT p-value over every look (it may only fall).
    """

    __tablename__ = "experiments"
    __table_args__ = (
        Index("ix_experiments_model", "model", "kind", "id"),
        Index(
            "ux_experiments_running", "model", "kind", unique=True,
            sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))  # ab | shadow
    status: Mapped[str] = mapped_column(String(16))  # running | concluded | stopped
    task: Mapped[str] = mapped_column(String(20))  # classification | regression
    variant_a: Mapped[str | None] = mapped_column(String(64), nullable=True)  # as given: alias or version
    variant_b: Mapped[str] = mapped_column(String(64))
    version_a: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version_b: Mapped[int] = mapped_column(Integer)
    traffic_split: Mapped[float] = mapped_column(Float)  # A/B: share of requests sent to b; shadow: sample rate
    metric: Mapped[str | None] = mapped_column(String(32), nullable=True)
    alpha: Mapped[float] = mapped_column(Float)
    mde: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_samples_per_arm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    always_valid_p: Mapped[float | None] = mapped_column(Float, nullable=True)
    looks: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the final read-out


class ShadowPredictionRow(Base):
    """What the shadow version said for one mirrored prediction (never returned to the caller)."""

    __tablename__ = "shadow_predictions"
    __table_args__ = (Index("ix_shadow_predictions_experiment", "experiment_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(Integer)
    prediction_id: Mapped[str] = mapped_column(String(32))  # the primary's prediction (predictions.id)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)  # the shadow version
    primary_version: Mapped[int] = mapped_column(Integer)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # shadow scoring of the mirrored batch
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- retraining (issue 14) ------------------------------------------------------------------------
class RetrainingPolicyRow(Base):
    """When a model retrains by itself (drift, decay, a cron schedule), how its challenger is gated
    and what happens after the gate. One row per model; ``last_*`` columns remember what the
    evaluator has already seen, so one drift report or one schedule tick fires at most once."""

    __tablename__ = "retraining_policies"

    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    on_drift: Mapped[bool] = mapped_column(Boolean)
    drift_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    on_decay: Mapped[bool] = mapped_column(Boolean)
    metric: Mapped[str | None] = mapped_column(String(32), nullable=True)
    max_drop: Mapped[float | None] = mapped_column(Float, nullable=True)
    schedule: Mapped[str | None] = mapped_column(String(120), nullable=True)
    min_new_labels: Mapped[int] = mapped_column(Integer)
    cooldown_seconds: Mapped[float] = mapped_column(Float)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON)
    after_gate: Mapped[str] = mapped_column(String(16))  # none | shadow | ab_test | promote
    auto_promote: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))
    last_drift_report_id: Mapped[int] = mapped_column(Integer, default=0)
    decay_labels_seen: Mapped[int] = mapped_column(Integer, default=0)  # labels the last decay check judged
    schedule_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_trigger: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RetrainingJobRow(Base):
    """One retraining job: queued -> running -> succeeded | rejected_by_gate | failed | cancelled.

    At most one queued or running job per model (a partial unique index enforces it, also against
    triggers arriving at the same moment from several processes). ``heartbeat_at`` is refreshed by
    the process running the job; a running job whose runner is gone is failed by the next worker
    that looks (see ``core/retraining/runner.py``)."""

    __tablename__ = "retraining_jobs"
    __table_args__ = (
        Index("ix_retraining_jobs_model", "model", "id"),
        Index(
            "ux_retraining_jobs_active", "model", unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(32))
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    trigger: Mapped[str] = mapped_column(String(16))  # manual | drift | decay | schedule
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    triggers: Mapped[int] = mapped_column(Integer, default=1)  # triggers folded into this job
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after_gate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)  # host:pid running it
    child_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    queue_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # procrastinate's job id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# -- monitoring (issue 15) ------------------------------------------------------------------------
class MetricRollup(Base):
    """Pre-aggregated counts and sums behind the Prometheus metrics and ``get_model_health``.

    Written in the same transaction as what they count (a prediction batch, a feedback call, a
    shadow batch) or flushed from a process's buffer (tool calls, prediction errors), and read at
    scrape time: so every server process or replica on one store reports the same numbers, and a
    scrape reads a few hundred rows instead of a million predictions. ``hour`` is whole hours since
    1970-01-01 UTC, ``0`` the all-time row; ``shard`` spreads hot rows over a few keys on PostgreSQL
    (readers sum over it). What ``n``/``s1``/``s2`` hold depends on ``series`` (see
    ``mlops_mcp.core.monitoring.rollups``). Empty label parts are '' and 0, never NULL (they are in
    the primary key).
    """

    __tablename__ = "metric_rollups"
    __table_args__ = {"sqlite_with_rowid": False}

    series: Mapped[str] = mapped_column(String(24), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[float] = mapped_column(Float)
    s1: Mapped[float] = mapped_column(Float)
    s2: Mapped[float] = mapped_column(Float)


# -- feature store (issue 16) ---------------------------------------------------------------------
# The catalog lives here and in its migration. Each view version's data (its offline table of every
# ingested row and its online table of the newest row per key) is a table created when the version
# is registered, named ``fs_<version id>_offline`` / ``fs_<version id>_online``, because its
# columns are the view's own features (see ``core/features/tables.py``).


class FeatureViewRow(Base):
    """A feature view: a name and its current version. ``name_key`` (the name lower-cased) is
    unique, so 'Team_Form' cannot be registered beside 'team_form'."""

    __tablename__ = "feature_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    current_version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeatureViewVersionRow(Base):
    """One immutable definition of a view (entities, timestamps, typed features, TTL) with its data
    tables and its materialization watermark: ``materialized_seq`` (every offline row up to this
    sequence number was considered) and ``materialized_until`` (event time, microseconds UTC)."""

    __tablename__ = "feature_view_versions"
    __table_args__ = (Index("ux_feature_view_versions", "view_id", "version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    view_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    schema_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    materialized_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    materialized_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    materialized_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FeatureIngestRow(Base):
    """One file appended to a version's offline table. The file's SHA-256 is unique per version:
    sending the same file again is recognised and changes nothing."""

    __tablename__ = "feature_ingests"
    __table_args__ = (Index("ux_feature_ingests_file", "version_id", "sha256", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    n_bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    first_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    min_event: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # microseconds UTC
    max_event: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    assumed_utc: Mapped[list[str]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))


class TrainingSetRow(Base):
    """A training set written by build_training_set: where, from what (feature references and the
    view versions used), and how well the entity rows matched."""

    __tablename__ = "feature_training_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    output: Mapped[str] = mapped_column(String(1024))
    entities: Mapped[str] = mapped_column(String(1024))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
