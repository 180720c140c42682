"""Retraining policies: when a model retrains by itself, how its challenger is gated, and what
happens after the gate. Validated against the model (its task decides which metrics exist) before
anything is written; stored one row per model.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_mcp.core.errors import InvalidInput, NotFound, listing
from mlops_mcp.core.retraining import AFTER_GATE

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.store import Store

#: metrics per task, as run_ab_test's paired tests know them (core/experiments/stats)
GATE_METRICS = {
    "classification": ("accuracy", "f1", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "mse", "r2"),
}
#: metrics live performance tracks (get_model_performance), for the decay trigger
DECAY_METRICS = {"classification": ("accuracy", "f1", "roc_auc", "log_loss"), "regression": ("rmse", "mae", "r2")}
MetricName = Literal["accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "mse", "r2"]


class GateSpec(BaseModel):
    """How a retrained challenger must compare with the champion on a holdout neither trained on."""

    model_config = ConfigDict(extra="forbid")

    metric: MetricName | None = Field(
        default=None,
        description="primary metric (default as run_ab_test: roc_auc for binary classifiers, accuracy for "
        "multiclass, rmse for regression)",
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.25, description="significance level of the paired test")
    require: Literal["better", "non_inferior"] = Field(
        default="better",
        description="better: the challenger is significantly better (run_ab_test's paired test, p < alpha); "
        "non_inferior: the one-sided (1 - alpha) bound of the difference stays within `margin` of the champion",
    )
    margin: float | None = Field(
        default=None, ge=0, le=1e9, description="non-inferiority margin in the metric's units (require='non_inferior')"
    )
    min_absolute_change: float | None = Field(
        default=None, gt=0, le=1e9,
        description="MLflow MetricThreshold: challenger >= champion + this (higher is better) or <= champion - this",
    )
    min_relative_change: float | None = Field(
        default=None, gt=0, le=1,
        description="MLflow MetricThreshold: (challenger - champion) / |champion| >= this, in the metric's direction",
    )
    floors: dict[MetricName, float] = Field(
        default_factory=dict, max_length=8,
        description="absolute floor per metric (a ceiling for losses), e.g. {\"accuracy\": 0.6}; the only check without a champion",
    )
    guardrails: dict[MetricName, float] = Field(
        default_factory=dict, max_length=8,
        description="other metrics that must not get worse by more than this tolerance (metric units), e.g. {\"log_loss\": 0.02}",
    )
    holdout_fraction: float = Field(
        default=0.25, ge=0.05, le=0.5, description="share of the newest labeled rows held out for the gate"
    )
    min_holdout_rows: int = Field(default=50, ge=10, le=1_000_000, description="fewer held-out rows: the job fails")


def parse_gate(gate: GateSpec | dict[str, Any] | None) -> GateSpec:
    if gate is None:
        return GateSpec()
    if isinstance(gate, GateSpec):
        return gate
    try:
        return GateSpec.model_validate(gate)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']} (given {first.get('input')!r})", argument="gate") from None


def check_gate(gate: GateSpec, task: str) -> None:
    """Every metric named fits the model's task; non-inferiority has its margin."""
    allowed = GATE_METRICS[task]
    named = [("gate.metric", gate.metric)] if gate.metric else []
    named += [("gate.floors", m) for m in gate.floors] + [("gate.guardrails", m) for m in gate.guardrails]
    for where, metric in named:
        if metric not in allowed:
            raise InvalidInput(f"'{metric}' is not a {task} metric; accepted: {listing(allowed)}", argument=where)
    if gate.require == "non_inferior" and gate.margin is None:
        raise InvalidInput("require='non_inferior' needs a margin (in the metric's units, e.g. 0.01)", argument="gate.margin")


def check_cron(schedule: str | None) -> str | None:
    """A standard 5-field cron expression ('0 3 * * 1' = Mondays 03:00 UTC), checked with croniter."""
    if schedule is None:
        return None
    from croniter import croniter

    text = " ".join(str(schedule).split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidInput(
            f"{str(schedule)[:60]!r} is not a 5-field cron expression (minute hour day-of-month month "
            "day-of-week, UTC), e.g. '0 3 * * 1' (Mondays at 03:00) or '*/30 * * * *'",
            argument="schedule",
        )
    return text


def model_task(registry: "Registry", model: str) -> tuple[str, int | None]:
    """(task, champion version or None): from the champion, else the newest version."""
    from mlops_mcp.core.models.registry import TAG_TASK

    aliases = registry.aliases(model)  # NotFound for an unknown model (names the models)
    champion = aliases.get("champion")
    if champion is not None:
        mv = registry.version(model, champion)
    else:
        versions = registry.versions(model)
        if not versions:
            raise NotFound(f"model '{model}' has no versions yet; train one with train_model", argument="model")
        mv = versions[0]
    task = (mv.tags or {}).get(TAG_TASK)
    if task not in GATE_METRICS:
        task = registry.load(mv).task
    return task, champion


def set_policy(
    store: "Store",
    registry: "Registry",
    *,
    model: str,
    on_drift: bool = True,
    drift_share: float | None = None,
    on_decay: bool = True,
    metric: str | None = None,
    max_drop: float | None = None,
    schedule: str | None = None,
    min_new_labels: int = 200,
    cooldown: str = "24h",
    gate: GateSpec | dict[str, Any] | None = None,
    after_gate: str = "none",
    auto_promote: bool = False,
    enabled: bool = True,
    actor: str = "library",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Validate everything, then write the policy in one transaction (replacing the model's previous one)."""
    from mlops_mcp.core.store.tables import RetrainingPolicyRow
    from mlops_mcp.core.times import now as utcnow
    from mlops_mcp.core.times import parse_duration

    task, _ = model_task(registry, model)
    if after_gate not in AFTER_GATE:
        raise InvalidInput(f"{after_gate!r} is not accepted; accepted: {listing(AFTER_GATE)}", argument="after_gate")
    if after_gate == "promote" and auto_promote is not True:
        raise InvalidInput(
            "after_gate='promote' moves the champion without asking anyone: it needs auto_promote=true as well. "
            "Otherwise use 'none' (register as challenger), 'shadow' or 'ab_test' and promote with set_model_alias",
            argument="auto_promote",
        )
    if drift_share is not None and not 0 < drift_share <= 1:
        raise InvalidInput(f"{drift_share!r} is outside (0, 1]: the share of drifted columns that fires", argument="drift_share")
    if metric is not None and metric not in DECAY_METRICS[task]:
        raise InvalidInput(f"'{metric}' is not a {task} metric; accepted: {listing(DECAY_METRICS[task])}", argument="metric")
    if max_drop is not None and not 0 <= max_drop <= 1:
        raise InvalidInput(
            f"{max_drop!r} is outside 0..1 (as get_model_performance's tolerance: absolute for scores, relative for errors)",
            argument="max_drop",
        )
    if isinstance(min_new_labels, bool) or not isinstance(min_new_labels, int) or not 1 <= min_new_labels <= 100_000_000:
        raise InvalidInput(f"{min_new_labels!r} is outside 1..100,000,000", argument="min_new_labels")
    cooldown_seconds = parse_duration(cooldown, "cooldown", minimum=0, maximum=366 * 86400)
    spec = parse_gate(gate)
    check_gate(spec, task)
    cron = check_cron(schedule)
    at = now or utcnow()
    with store.write() as session:
        row = session.get(RetrainingPolicyRow, model)
        if row is None:
            row = RetrainingPolicyRow(model=model, last_drift_report_id=_newest_report(session, model))
            session.add(row)
        if row.schedule != cron:
            row.schedule_checked_at = at  # a new schedule counts from now (no catch-up of past ticks)
        row.decay_labels_seen = 0  # a changed policy judges the current labels afresh
        row.enabled = bool(enabled)
        row.on_drift = bool(on_drift)
        row.drift_share = drift_share
        row.on_decay = bool(on_decay)
        row.metric = metric
        row.max_drop = max_drop
        row.schedule = cron
        row.min_new_labels = int(min_new_labels)
        row.cooldown_seconds = float(cooldown_seconds)
        row.gate = spec.model_dump(mode="json")
        row.after_gate = after_gate
        row.auto_promote = bool(auto_promote)
        row.updated_at = at
        row.updated_by = actor
        session.flush()
        return view(row, task)


def _newest_report(session: Any, model: str) -> int:
    """Drift reports written before the policy existed do not fire it."""
    from sqlalchemy import func, select

    from mlops_mcp.core.store.tables import DriftReportRow

    return int(session.scalar(select(func.coalesce(func.max(DriftReportRow.id), 0)).where(DriftReportRow.model == model)) or 0)


def get_row(store: "Store", model: str) -> Any:
    from mlops_mcp.core.store.tables import RetrainingPolicyRow

    with store.read() as session:
        return session.get(RetrainingPolicyRow, model)


def view(row: Any, task: str | None = None) -> dict[str, Any]:
    from mlops_mcp.core.times import describe_seconds

    return {
        "model": row.model,
        "enabled": row.enabled,
        "task": task,
        "on_drift": row.on_drift,
        "drift_share": row.drift_share,
        "on_decay": row.on_decay,
        "metric": row.metric,
        "max_drop": row.max_drop,
        "schedule": row.schedule,
        "next_run": next_run(row.schedule, row.schedule_checked_at) if row.enabled else None,
        "min_new_labels": row.min_new_labels,
        "cooldown": describe_seconds(row.cooldown_seconds) if row.cooldown_seconds else "0s",
        "cooldown_seconds": row.cooldown_seconds,
        "gate": row.gate,
        "after_gate": row.after_gate,
        "auto_promote": row.auto_promote,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
        "last_trigger": row.last_trigger,
    }


def next_run(schedule: str | None, after: datetime | None) -> datetime | None:
    if not schedule:
        return None
    from croniter import croniter

    from mlops_mcp.core.times import now

    return croniter(schedule, after or now()).get_next(datetime)
