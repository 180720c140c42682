"""Evaluating retraining policies: does a drift report, decayed live performance or a cron tick
call for a new job? Run after every drift report and feedback batch (inline on SQLite, by a
procrastinate worker on PostgreSQL) and on schedule.

- drift: a report newer than the last one the policy saw, on the champion version, of severity
  ``major`` (or a share of drifted columns >= ``drift_share`` when set): minor drift alone (a
  column or two, unimportant to the model) does not call for retraining;
- decay: once the champion has at least ``min_new_labels`` labels since it became champion (or since
  the model's last job), ``get_model_performance``'s verdict on them, with ``max_drop`` as its
  tolerance (absolute for scores, relative for errors) and only ``metric`` when set;
- schedule: the cron expression had a tick since the last check (several missed ticks fire once).
A trigger within the cooldown of the model's last job folds into that job; so does one arriving
while a job is queued or running.
"""

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_mcp.core.engine import MLOps

log = logging.getLogger(__name__)


def _drift_trigger(ops: "MLOps", row: Any, champion: int | None, reports: list[Any]) -> tuple[str | None, int]:
    newest = row.last_drift_report_id
    reason = None
    for r in reports:
        newest = max(newest, r.id)
        if champion is not None and r.version != champion:
            continue
        share = float(r.share_drifted)
        severity = (r.report or {}).get("severity") or ("major" if r.drift_detected else "none")  # older reports: no severity
        fires = share >= row.drift_share if row.drift_share is not None else severity == "major"
        if fires:
            rule = f"share {share:.0%} >= {row.drift_share:.0%}" if row.drift_share is not None else "severity major"
            cols = ", ".join((r.drifted_columns or [])[:6])
            reason = f"drift report {r.id} on version {r.version}: {r.n_drifted}/{r.n_checked} columns drifted ({rule}): {cols}"
    return reason, newest


def _decay_trigger(ops: "MLOps", row: Any, champion: int | None, since: datetime | None) -> tuple[str | None, int]:
    """Decay of the champion on its labels since ``since``, judged by get_model_performance's own
    functions (its metric computation and its degradation rule, on the overall figures; the report
    also reads its newest bucket). Only labels the last check did not see trigger a new judgement."""
    from mlops_mcp.core.feedback.performance import (
        _degradation,
        _figures,
        _metric_function,
        _run,
        fetch_labeled,
    )
    from mlops_mcp.core.retraining.data import _sql_time

    if champion is None:
        return None, row.decay_labels_seen
    store = ops.store
    latest = "is_latest = 1" if store.is_sqlite else "is_latest"
    params: list[Any] = [row.model, champion]
    where = f"model = :p AND version = :p AND {latest}"
    if since is not None:
        where += " AND predicted_at >= :p"
        params.append(_sql_time(store, since))
    labeled = int(_run(store, f"SELECT COUNT(*) FROM feedback WHERE {where}", params)[0][0] or 0)
    if labeled < row.min_new_labels:
        return None, row.decay_labels_seen  # too few labels yet: not judged
    if labeled == row.decay_labels_seen:
        return None, labeled  # judged already, nothing new since
    task, classes, baseline = ops.retraining.champion_facts(row.model, champion)
    frame = fetch_labeled(store, row.model, champion, since, None, multiclass=bool(classes and len(classes) > 2))
    overall = _figures(frame, len(frame), _metric_function(task, classes or []))
    tolerance = row.max_drop if row.max_drop is not None else 0.05
    checks, _ = _degradation(task, overall, [], baseline, tolerance, min_labeled=1)
    checks = [c for c in checks if c["degraded"] and (row.metric is None or c["metric"] == row.metric)]
    if not checks:
        return None, labeled
    c = checks[0]
    return (
        f"live {c['metric']} of version {champion} is {c['value']:.4f} against its training baseline {c['baseline']:.4f} "
        f"(limit {c['limit']:.4f}; {overall['labeled']} labels since {since:%Y-%m-%d %H:%M} UTC)" if since else
        f"live {c['metric']} of version {champion} is {c['value']:.4f} against its training baseline {c['baseline']:.4f} "
        f"(limit {c['limit']:.4f}; {overall['labeled']} labels)"
    ), labeled


def _schedule_due(row: Any, now: datetime) -> datetime | None:
    if not row.schedule:
        return None
    from croniter import croniter

    last = row.schedule_checked_at or now
    it = croniter(row.schedule, last)
    due = None
    tick = it.get_next(datetime)
    while tick <= now:
        due = tick
        tick = it.get_next(datetime)
    return due


def evaluate_model(ops: "MLOps", model: str, event: str | None = None, now: datetime | None = None,
                   context: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Evaluate one model's policy; returns what fired (and the job) or None."""
    from sqlalchemy import select, update

    from mlops_mcp.core.retraining import policy as policy_mod
    from mlops_mcp.core.store.tables import DriftReportRow, RetrainingJobRow, RetrainingPolicyRow

    now = now or datetime.now(UTC)
    row = policy_mod.get_row(ops.store, model)
    if row is None or not row.enabled:
        return None
    ctx = context or {}
    aliases = ctx.get("aliases")
    if aliases is None:
        try:
            aliases = ops.registry.aliases(model)
        except Exception:  # the model was deleted: nothing to retrain
            return None
    champion = aliases.get("champion")
    fired: list[tuple[str, str]] = []
    newest_report = row.last_drift_report_id
    labels_seen = row.decay_labels_seen
    if row.on_drift and event in (None, "drift"):
        reports = ctx.get("reports")
        if reports is None:
            with ops.store.read() as s:
                reports = list(s.scalars(
                    select(DriftReportRow).where(DriftReportRow.model == model, DriftReportRow.id > row.last_drift_report_id)
                    .order_by(DriftReportRow.id)
                ).all())
        reason, newest_report = _drift_trigger(ops, row, champion, reports)
        if reason:
            fired.append(("drift", reason))
    if row.on_decay and event in (None, "feedback") and champion is not None:
        with ops.store.read() as s:
            last_job = s.scalar(select(RetrainingJobRow.created_at).where(RetrainingJobRow.model == model)
                                .order_by(RetrainingJobRow.id.desc()).limit(1))
        since = _champion_since(ops, model, champion)
        if last_job is not None and (since is None or last_job > since):
            since = last_job
        reason, labels_seen = _decay_trigger(ops, row, champion, since)
        if reason:
            fired.append(("decay", reason))
    due = _schedule_due(row, now) if event in (None, "schedule") else None
    if due is None and newest_report == row.last_drift_report_id and labels_seen == row.decay_labels_seen and not fired:
        return None  # nothing new: no write (a write transaction costs more than the whole check)
    with ops.store.write() as s:
        values: dict[str, Any] = {"last_drift_report_id": newest_report, "decay_labels_seen": labels_seen}
        cond = [RetrainingPolicyRow.model == model]
        if due is not None:
            values["schedule_checked_at"] = now
            # compare-and-set: of several processes evaluating the same tick, one fires it
            cond.append(RetrainingPolicyRow.schedule_checked_at == row.schedule_checked_at
                        if row.schedule_checked_at is not None else RetrainingPolicyRow.schedule_checked_at.is_(None))
        won = s.execute(update(RetrainingPolicyRow).where(*cond).values(**values)).rowcount
        if due is not None and won:
            fired.append(("schedule", f"schedule '{row.schedule}' ticked at {due:%Y-%m-%d %H:%M} UTC"))
    if not fired:
        return None
    trigger = fired[0][0]
    reason = "; ".join(r for _, r in fired)[:2000]
    outcome: dict[str, Any] = {"at": now.isoformat(), "triggers": [t for t, _ in fired], "reason": reason}
    try:
        job, created = ops.retraining.trigger(model, trigger, reason, row)
        outcome.update(job_id=job.id, created=created,
                       note=None if created else f"folded into job {job.id} ({job.status}: active, or within the cooldown)")
    except Exception as exc:  # a policy that cannot start a job says why, where the user looks
        from mlops_mcp.core.errors import MLOpsError

        if not isinstance(exc, MLOpsError):
            log.exception("retraining policy of %s fired but no job could be created", model)
        outcome.update(job_id=None, created=False, error=str(exc)[:1000])
    with ops.store.write() as s:
        s.execute(update(RetrainingPolicyRow).where(RetrainingPolicyRow.model == model).values(last_trigger=outcome))
    return {"model": model, **outcome}


def _champion_since(ops: "MLOps", model: str, champion: int) -> datetime | None:
    """When the champion became champion: its newest move in the alias history, else its creation."""
    events = [e for e in ops.registry.alias_events(model, "champion") if e.to_version == champion]
    if events:
        return events[-1].at
    return ops.retraining.version_created(model, champion)


def evaluate_all(ops: "MLOps", event: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Every enabled policy, with the shared lookups done once (registered models and their aliases
    in one MLflow call, new drift reports in one query)."""
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import DriftReportRow, RetrainingPolicyRow

    started = time.perf_counter()
    with ops.store.read() as s:
        rows = list(s.scalars(select(RetrainingPolicyRow).where(RetrainingPolicyRow.enabled == True)).all())  # noqa: E712
    if not rows:
        return {"evaluated": 0, "fired": [], "seconds": time.perf_counter() - started}
    aliases = {m.name: {a: int(v) for a, v in (m.aliases or {}).items()} for m in ops.registry.search_models()}
    lowest = min(r.last_drift_report_id for r in rows)
    with ops.store.read() as s:
        reports = list(s.scalars(select(DriftReportRow).where(DriftReportRow.id > lowest).order_by(DriftReportRow.id)).all())
    by_model: dict[str, list[Any]] = {}
    for r in reports:
        by_model.setdefault(r.model, []).append(r)
    fired = []
    for row in rows:
        if row.model not in aliases:
            continue
        mine = [r for r in by_model.get(row.model, []) if r.id > row.last_drift_report_id]
        try:
            out = evaluate_model(ops, row.model, event, now, {"aliases": aliases[row.model], "reports": mine})
        except Exception:
            log.exception("evaluating the retraining policy of %s failed", row.model)
            continue
        if out is not None:
            fired.append(out)
    return {"evaluated": len(rows), "fired": fired, "seconds": time.perf_counter() - started}
