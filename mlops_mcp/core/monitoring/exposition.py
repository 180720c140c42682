"""The Prometheus exposition served at ``GET /metrics`` and by ``mlops-mcp exporter``.

Every sample is derived from the store when scraped (see :mod:`.snapshot`), so the numbers are
the same whichever process or replica answers and however many wrote them. Names follow
Prometheus' conventions: prefix ``mlops_``, base units, ``_total`` counters, ``_seconds``
histograms. Labels are low-cardinality only: model, version, alias or A/B arm (``variant``,
``arm``), outcome or reason, tool, status, and a drift report's feature names (at most
:data:`~.snapshot.MAX_FEATURES` per model); never a prediction id, request key or input value.
prometheus_client renders the text, escaping label values (quotes, backslashes, newlines).
"""

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.monitoring import retraining, rollups, snapshot

if TYPE_CHECKING:
    from mlops_mcp.core.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreUnavailable(RuntimeError):
    """The store could not be read: /metrics answers 503 with this reason."""


@dataclass(frozen=True)
class MetricDoc:
    name: str
    kind: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str


#: every metric served, in the order served (the README's table is this list)
METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("mlops_predictions_total", "counter", ("model", "version", "variant"), "Predicted rows, by serving version and variant (alias or A/B arm)."),
    MetricDoc("mlops_prediction_errors_total", "counter", ("model", "reason"), "Failed prediction requests by reason (invalid_input, not_found, conflict, forbidden, internal); model is empty when the name was not a model."),
    MetricDoc("mlops_prediction_latency_seconds", "histogram", ("model",), "Latency of prediction requests (whole batch), 1 ms to 2.5 s buckets."),
    MetricDoc("mlops_tool_calls_total", "counter", ("tool", "outcome"), "MCP tool calls by outcome (ok, error = the caller's input or state, internal)."),
    MetricDoc("mlops_tool_call_duration_seconds", "histogram", ("tool",), "Duration of MCP tool calls."),
    MetricDoc("mlops_feedback_labels_total", "counter", ("model", "version"), "Ground-truth labels logged (corrections included)."),
    MetricDoc("mlops_labeled_predictions_total", "counter", ("model", "version"), "Predictions that have at least one label."),
    MetricDoc("mlops_label_lag_seconds", "histogram", ("model",), "Time from a prediction to its first label (1 minute to 30 days buckets)."),
    MetricDoc("mlops_label_coverage_ratio", "gauge", ("model", "version"), "Share of the last 7 days' predictions that have a label."),
    MetricDoc("mlops_live_metric", "gauge", ("model", "version", "metric"), "Live quality of the last 7 days' labeled predictions (accuracy; rmse, mae)."),
    MetricDoc("mlops_live_labeled_predictions", "gauge", ("model", "version"), "Labeled predictions behind mlops_live_metric."),
    MetricDoc("mlops_baseline_metric", "gauge", ("model", "version", "metric"), "The version's training metric on its held-out split."),
    MetricDoc("mlops_quality_degraded", "gauge", ("model", "version"), "1 when live quality is worse than the baseline beyond tolerance (0.05; >= 30 labels)."),
    MetricDoc("mlops_drift_share_drifted", "gauge", ("model", "version"), "Share of drifted columns in the model's newest drift report."),
    MetricDoc("mlops_drift_share_threshold", "gauge", ("model",), "drift_share rule of that report: the dataset drifts at or above it."),
    MetricDoc("mlops_drift_detected", "gauge", ("model", "version"), "1 when the newest drift report found dataset drift."),
    MetricDoc("mlops_drift_feature_severity", "gauge", ("model", "feature"), "Effect size / its threshold per column in the newest report (>= 1: large enough to matter)."),
    MetricDoc("mlops_drift_feature_drifted", "gauge", ("model", "feature"), "1 when the column drifted (significant and large enough)."),
    MetricDoc("mlops_drift_last_check_timestamp_seconds", "gauge", ("model",), "When the newest drift report was made (Unix time)."),
    MetricDoc("mlops_shadow_compared_predictions", "gauge", ("model", "version"), "Rows the running shadow version scored, by shadow version."),
    MetricDoc("mlops_shadow_agreement_ratio", "gauge", ("model", "version"), "Share of compared rows where the shadow classifier agreed with the primary."),
    MetricDoc("mlops_shadow_mean_abs_diff", "gauge", ("model", "version"), "Mean |shadow - primary| of a regression shadow."),
    MetricDoc("mlops_shadow_failed_predictions", "gauge", ("model", "version"), "Mirrored rows the shadow version failed on."),
    MetricDoc("mlops_ab_predictions", "gauge", ("model", "arm", "version"), "Predictions assigned to each arm of the running live A/B test."),
    MetricDoc("mlops_ab_sample_ratio_p_value", "gauge", ("model",), "Sequential sample-ratio test of the running A/B test's assignments (mismatch below 0.001)."),
    MetricDoc("mlops_retraining_jobs", "gauge", ("model", "status"), "Retraining jobs by status (present when the store has retraining)."),
    MetricDoc("mlops_model_info", "gauge", ("model", "version", "alias"), "1 for every alias and the version it points at."),
    MetricDoc("mlops_alias_version", "gauge", ("model", "alias"), "The version an alias points at (changes mark promotions and rollbacks)."),
    MetricDoc("mlops_alias_last_change_timestamp_seconds", "gauge", ("model", "alias"), "When the alias last moved (Unix time)."),
    MetricDoc("mlops_build_info", "gauge", ("version",), "1, labelled with the mlops-mcp version serving the metrics."),
)
_DOCS = {m.name: m for m in METRICS}


def _cumulative(counts: dict[int, float], bounds: tuple[float, ...]) -> list[tuple[str, float]]:
    out, total = [], 0.0
    for i, bound in enumerate(bounds):
        total += counts.get(i, 0.0)
        out.append((_le(bound), total))
    total += counts.get(len(bounds), 0.0)
    out.append(("+Inf", total))
    return out


def _le(bound: float) -> str:
    return repr(float(bound))


class Families:
    """Metric families under construction, keyed by name (prometheus_client objects)."""

    def __init__(self) -> None:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        self.items: dict[str, Any] = {}
        for doc in METRICS:
            cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}[doc.kind]
            name = doc.name[: -len("_total")] if doc.kind == "counter" else doc.name
            self.items[doc.name] = cls(name, doc.help, labels=list(doc.labels))

    def add(self, name: str, labels: Iterable[Any], value: float) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        self.items[name].add_metric([str(v) for v in labels], float(value))

    def histogram(self, name: str, labels: Iterable[Any], counts: dict[int, float], total: float, bounds: tuple[float, ...]) -> None:
        self.items[name].add_metric([str(v) for v in labels], _cumulative(counts, bounds), total)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items.values())


def collect(
    store: "Store",
    drift_cache: snapshot.DriftCache,
    baselines: snapshot.Baselines | None,
    version: str,
    now: float | None = None,
) -> Families:
    """Read the store once and build every family; :class:`StoreUnavailable` if it cannot be read."""
    try:
        return _collect(store, drift_cache, baselines, version, time.time() if now is None else now)
    except StoreUnavailable:
        raise
    except Exception as exc:
        raise StoreUnavailable(f"the store could not be read ({type(exc).__name__}: {str(exc)[:300]})") from exc


def _collect(store: "Store", drift_cache: snapshot.DriftCache, baselines: snapshot.Baselines | None, version: str, now: float) -> Families:
    fam = Families()
    fam.add("mlops_build_info", [version], 1.0)
    hist: dict[tuple[str, tuple[Any, ...]], list[Any]] = {}
    bounds = {rollups.REQ_LATENCY: rollups.LATENCY_BOUNDS, rollups.TOOL_LATENCY: rollups.LATENCY_BOUNDS, rollups.LABEL_LAG: rollups.LAG_BOUNDS}
    hist_name = {
        rollups.REQ_LATENCY: "mlops_prediction_latency_seconds",
        rollups.TOOL_LATENCY: "mlops_tool_call_duration_seconds",
        rollups.LABEL_LAG: "mlops_label_lag_seconds",
    }
    ab_counts: dict[int, dict[str, float]] = {}
    shadow: dict[int, dict[str, Any]] = {}
    series = (
        rollups.PRED, rollups.PRED_ERR, rollups.REQ_LATENCY, rollups.TOOL, rollups.TOOL_LATENCY, rollups.LABELS,
        rollups.LABELED, rollups.LABEL_LAG, rollups.AB_ARM, rollups.SHADOW, rollups.SHADOW_ERR,
    )
    for name, model, ver, label, outcome, bucket, n, s1, _s2 in rollups.fetch(store, series):
        if name == rollups.PRED:
            fam.add("mlops_predictions_total", [model, ver, label], n)
        elif name == rollups.PRED_ERR:
            fam.add("mlops_prediction_errors_total", [model, label], n)
        elif name == rollups.TOOL:
            fam.add("mlops_tool_calls_total", [label, outcome], n)
        elif name == rollups.LABELS:
            fam.add("mlops_feedback_labels_total", [model, ver], n)
        elif name == rollups.LABELED:
            fam.add("mlops_labeled_predictions_total", [model, ver], n)
        elif name in hist_name:
            labels = (label,) if name == rollups.TOOL_LATENCY else (model,)
            cell = hist.setdefault((name, labels), [{}, 0.0])
            cell[0][int(bucket)] = cell[0].get(int(bucket), 0.0) + float(n)
            cell[1] += float(s1)
        elif name == rollups.AB_ARM:
            ab_counts.setdefault(int(ver), {})[label] = float(n)
        elif name == rollups.SHADOW:
            shadow.setdefault(int(ver), {})["compared"] = float(n)
            shadow[int(ver)]["s1"] = float(s1)
        elif name == rollups.SHADOW_ERR:
            shadow.setdefault(int(ver), {})["failed"] = float(n)
    for (name, labels), (counts, total) in sorted(hist.items()):
        fam.histogram(hist_name[name], labels, counts, total, bounds[name])

    # live quality over the window, against the training baselines
    since = rollups.hour_of(now) - snapshot.LIVE_WINDOW_HOURS + 1
    window = rollups.fetch(store, (rollups.PRED, rollups.QUALITY), since_hour=since)
    lookup = baselines.cached if baselines is not None else (lambda m, v: None)
    for q in snapshot.live_quality(window, lookup, unlabeled_baselines=False):
        if q.predictions:
            fam.add("mlops_label_coverage_ratio", [q.model, q.version], q.coverage or 0.0)
        if q.labeled:
            fam.add("mlops_live_labeled_predictions", [q.model, q.version], q.labeled)
            for metric, value in q.metrics.items():
                fam.add("mlops_live_metric", [q.model, q.version, metric], value)
            fam.add("mlops_quality_degraded", [q.model, q.version], 1.0 if q.degraded else 0.0)
        for metric in snapshot.LIVE_METRICS.get(q.task, ()):
            if q.baseline and metric in q.baseline:
                fam.add("mlops_baseline_metric", [q.model, q.version, metric], q.baseline[metric])

    for head in snapshot.latest_drift(store, drift_cache):
        fam.add("mlops_drift_share_drifted", [head.model, head.version], head.share_drifted)
        fam.add("mlops_drift_detected", [head.model, head.version], 1.0 if head.drift_detected else 0.0)
        if head.drift_share is not None:
            fam.add("mlops_drift_share_threshold", [head.model], head.drift_share)
        at = snapshot.seconds(head.created_at)
        if at is not None:
            fam.add("mlops_drift_last_check_timestamp_seconds", [head.model], at)
        for feature, severity, drifted in head.features:
            if severity is not None and math.isfinite(severity):
                fam.add("mlops_drift_feature_severity", [head.model, feature], severity)
            fam.add("mlops_drift_feature_drifted", [head.model, feature], 1.0 if drifted else 0.0)

    for exp in snapshot.running(store):
        if exp.kind == "ab":
            counts = ab_counts.get(exp.id, {})
            n_a, n_b = int(counts.get("a", 0)), int(counts.get("b", 0))
            fam.add("mlops_ab_predictions", [exp.model, "a", exp.version_a], n_a)
            fam.add("mlops_ab_predictions", [exp.model, "b", exp.version_b], n_b)
            p = snapshot.srm_p_value((n_a, n_b), exp.split)
            if p is not None:
                fam.add("mlops_ab_sample_ratio_p_value", [exp.model], p)
        elif exp.kind == "shadow":
            figures = shadow.get(exp.id, {})
            compared = figures.get("compared", 0.0)
            fam.add("mlops_shadow_compared_predictions", [exp.model, exp.version_b], compared)
            fam.add("mlops_shadow_failed_predictions", [exp.model, exp.version_b], figures.get("failed", 0.0))
            if compared:
                name = "mlops_shadow_mean_abs_diff" if exp.task == "regression" else "mlops_shadow_agreement_ratio"
                fam.add(name, [exp.model, exp.version_b], figures.get("s1", 0.0) / compared)

    jobs = retraining.job_counts(store)
    for model, status, count in jobs or []:
        fam.add("mlops_retraining_jobs", [model, status], count)

    for model, alias, ver, at in snapshot.alias_state(store):
        fam.add("mlops_model_info", [model, ver, alias], 1.0)
        fam.add("mlops_alias_version", [model, alias], ver)
        moved = snapshot.seconds(at)
        if moved is not None:
            fam.add("mlops_alias_last_change_timestamp_seconds", [model, alias], moved)
    return fam


def render(families: Families) -> bytes:
    """The text exposition format (prometheus_client escapes the label values)."""
    from prometheus_client import CollectorRegistry, generate_latest

    class _Once:
        def collect(self) -> Iterator[Any]:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once())  # type: ignore[arg-type]
    return generate_latest(registry)
