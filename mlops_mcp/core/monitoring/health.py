"""``get_model_health``: how a model is doing, in one small answer.

Read from the same places as /metrics (the rollups, alias history, newest drift report, running
experiments, retraining jobs), plus the registry for where the aliases point now and the training
baselines. A few hundred rows at most, whatever the number of predictions logged.
"""

import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlops_mcp.core.monitoring import alerts, retraining, rollups, snapshot
from mlops_mcp.core.monitoring.results import (
    DriftSummary,
    ExperimentSummary,
    FeatureDrift,
    HealthAlert,
    Latency,
    ModelHealth,
    Retraining,
    Traffic,
    VersionQuality,
)

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.store import Store

TRAFFIC_HOURS = 24
MAX_VERSIONS = 4
MAX_FEATURES = 8
MAX_NEXT = 5


def quantile(q: float, counts: dict[int, float], bounds: tuple[float, ...]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket holding the
    q-th observation; the +Inf bucket answers the highest finite bound."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i in range(len(bounds) + 1):
        c = counts.get(i, 0.0)
        if seen + c >= rank and c > 0:
            if i == len(bounds):
                return bounds[-1]
            lower = 0.0 if i == 0 else bounds[i - 1]
            return lower + (bounds[i] - lower) * ((rank - seen) / c)
        seen += c
    return bounds[-1]


def model_health(
    store: "Store",
    registry: "Registry",
    baselines: snapshot.Baselines,
    drift_cache: snapshot.DriftCache,
    model: str,
    now: float | None = None,
) -> ModelHealth:
    now = time.time() if now is None else now
    aliases = registry.aliases(model)  # NotFound (listing the models) for an unknown name
    current = rollups.hour_of(now)
    since = current - snapshot.LIVE_WINDOW_HOURS + 1
    rows = rollups.fetch(store, (rollups.PRED, rollups.REQ_LATENCY, rollups.PRED_ERR, rollups.QUALITY), since_hour=since, model=model)

    # traffic over the last 24 hours
    first = current - TRAFFIC_HOURS + 1
    hourly = [0.0] * TRAFFIC_HOURS
    by_version: dict[int, float] = {}
    latency: dict[int, float] = {}
    requests = errors = errors_1h = requests_1h = 0.0
    for series, hour, _m, version, _label, _o, bucket, n, _s1, _s2 in rows:
        hour, n = int(hour), float(n)
        if hour < first:
            continue
        recent = hour >= current - 1
        if series == rollups.PRED:
            hourly[hour - first] += n
            by_version[int(version)] = by_version.get(int(version), 0.0) + n
        elif series == rollups.REQ_LATENCY:
            requests += n
            requests_1h += n if recent else 0.0
            latency[int(bucket)] = latency.get(int(bucket), 0.0) + n
        elif series == rollups.PRED_ERR:
            errors += n
            errors_1h += n if recent else 0.0
    predictions = sum(hourly)
    lat = None
    if latency:
        b = rollups.LATENCY_BOUNDS
        lat = Latency(**{f"p{int(q * 100)}_ms": _ms(quantile(q, latency, b)) for q in (0.5, 0.95, 0.99)})
    traffic = Traffic(
        window_hours=TRAFFIC_HOURS,
        predictions=round(predictions),
        requests=round(requests),
        errors=round(errors),
        error_rate=round(errors / (errors + requests), 4) if errors + requests else None,
        latency=lat,
        by_version={str(v): round(n) for v, n in sorted(by_version.items())},
        hourly=[round(h) for h in hourly],
    )

    # live quality over the window: the champion first, then versions with recent traffic
    champion = aliases.get("champion")
    qualities = snapshot.live_quality(rows, baselines.get)
    qualities.sort(key=lambda q: (q.version != champion, -q.predictions, -q.version))
    chosen = [q for q in qualities if q.version == champion or q.predictions][:MAX_VERSIONS]
    quality = [
        VersionQuality(
            version=q.version, task=q.task, labeled=q.labeled, predictions=q.predictions,
            label_coverage=None if q.coverage is None else round(q.coverage, 4),
            live={k: round(v, 4) for k, v in q.metrics.items()},
            baseline=None if q.baseline is None else {k: round(v, 4) for k, v in q.baseline.items() if k in snapshot.LIVE_METRICS.get(q.task, ())},
            degraded=q.degraded, reasons=q.reasons,
        )
        for q in chosen
    ]

    heads = snapshot.latest_drift(store, drift_cache, model)
    head = heads[0] if heads else None
    drift = None
    if head is not None:
        drift = DriftSummary(
            report_id=head.report_id, checked_at=datetime.fromtimestamp(snapshot.seconds(head.created_at) or 0.0, UTC),
            version=head.version, severity=head.severity, headline=head.headline,
            drift_detected=head.drift_detected, share_drifted=round(head.share_drifted, 4),
            n_drifted=head.n_drifted, n_checked=head.n_checked,
            top_features=[
                FeatureDrift(feature=f, severity=None if s is None or not math.isfinite(s) else round(s, 3), drifted=d)
                for f, s, d in head.features[:MAX_FEATURES]
            ],
        )

    experiments, srm = _experiments(store, model)
    alert_list = alerts.active(
        model, drift=head, quality=chosen, errors_1h=errors_1h, requests_1h=requests_1h,
        predictions_1h=sum(hourly[-2:]), predictions_24h=predictions, srm=srm, in_use=set(aliases.values()),
    )
    # a rollback is suggested only where one would work (an earlier champion in the history)
    degraded = any(a["name"] == "MLOpsQualityDegraded" for a in alert_list)
    rollback_to = registry.rollback_candidate(model, "champion") if degraded else None
    status = "critical" if any(a["severity"] == "critical" for a in alert_list) else "warning" if alert_list else "ok"
    return ModelHealth(
        model=model,
        generated_at=datetime.fromtimestamp(now, UTC),
        status=status,
        aliases=dict(sorted(aliases.items())),
        traffic=traffic,
        quality=quality,
        drift=drift,
        experiments=experiments,
        retraining=Retraining(**retraining.model_section(store, model)),
        alerts=[HealthAlert(**a) for a in alert_list],
        next_calls=_next_calls(model, aliases, traffic, quality, drift, experiments, alert_list, now, rollback_to),
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _experiments(store: "Store", model: str) -> tuple[list[ExperimentSummary], list[tuple[int, float | None]]]:
    found = snapshot.running(store, model)
    if not found:
        return [], []
    mark = "?" if store.is_sqlite else "%s"
    ids = [e.id for e in found]
    marks = ", ".join([mark] * len(ids))
    sums: dict[tuple[str, int, str], tuple[float, float]] = {}
    for series, m, version, label, _o, _b, n, s1, _s2 in rollups.raw_query(
        store,
        "SELECT series, model, version, label, outcome, bucket, SUM(n), SUM(s1), SUM(s2) FROM metric_rollups "
        f"WHERE series IN ('ab_arm', 'shadow', 'shadow_err') AND hour = 0 AND model = {mark} AND version IN ({marks}) "
        "GROUP BY series, model, version, label, outcome, bucket",
        [model, *ids],
    ):
        key = (series, int(version), label if series == rollups.AB_ARM else "")
        prev = sums.get(key, (0.0, 0.0))
        sums[key] = (prev[0] + float(n), prev[1] + float(s1))
    out, srm = [], []
    for e in found:
        started = snapshot.seconds(e.started_at)
        at = None if started is None else datetime.fromtimestamp(started, UTC)
        if e.kind == "ab":
            n_a = int(sums.get((rollups.AB_ARM, e.id, "a"), (0.0, 0.0))[0])
            n_b = int(sums.get((rollups.AB_ARM, e.id, "b"), (0.0, 0.0))[0])
            p = snapshot.srm_p_value((n_a, n_b), e.split)
            srm.append((e.id, p))
            out.append(ExperimentSummary(
                experiment_id=e.id, kind="ab", started_at=at, version_a=e.version_a, version_b=e.version_b,
                predictions_a=n_a, predictions_b=n_b, srm_p_value=None if p is None else float(f"{p:.4g}"),
            ))
        else:
            compared, s1 = sums.get((rollups.SHADOW, e.id, ""), (0.0, 0.0))
            failed = sums.get((rollups.SHADOW_ERR, e.id, ""), (0.0, 0.0))[0]
            ratio = round(s1 / compared, 4) if compared else None
            out.append(ExperimentSummary(
                experiment_id=e.id, kind="shadow", started_at=at, version_a=None, version_b=e.version_b,
                compared=int(compared), failed=int(failed),
                agreement=ratio if e.task != "regression" else None, mean_abs_diff=ratio if e.task == "regression" else None,
            ))
    return out, srm


def _next_calls(
    model: str, aliases: dict[str, int], traffic: Traffic, quality: list[VersionQuality], drift: DriftSummary | None,
    experiments: list[ExperimentSummary], fired: list[dict[str, str]], now: float, rollback_to: int | None = None,
) -> list[str]:
    calls: list[str] = []
    names = {a["name"] for a in fired}
    if "MLOpsQualityDegraded" in names:
        calls.append(f"get_model_performance(model='{model}', plot=true)")
        if "challenger" in aliases:
            calls.append(f"run_ab_test(model='{model}', dataset=<recent labeled data>)")
        if rollback_to is not None:
            calls.append(f"rollback_model(model='{model}')")
    if "MLOpsDriftDetected" in names:
        calls.append(f"check_drift(model='{model}', plot=true)")
    if "MLOpsPredictionErrors" in names or "MLOpsNoTraffic" in names:
        calls.append(f"get_model_history(model='{model}')")
    for e in experiments:
        calls.append(f"get_ab_test(experiment_id={e.experiment_id})" if e.kind == "ab" else f"get_shadow_report(model='{model}')")
    stale = drift is None or (snapshot.seconds(drift.checked_at) or 0.0) < now - 7 * 86400
    # the newest report is about a version the champion alias has since left: check the one serving now
    replaced = drift is not None and aliases.get("champion") not in (None, drift.version)
    if (stale and traffic.predictions) or replaced:
        calls.append(f"check_drift(model='{model}')")
    if traffic.predictions and not any(q.labeled for q in quality):
        calls.append("log_feedback(items=[{prediction_id, actual}, ...])")
    if not calls:
        calls.append(f"get_model_performance(model='{model}')")
    seen: list[str] = []
    for c in calls:
        if c not in seen:
            seen.append(c)
    return seen[:MAX_NEXT]
