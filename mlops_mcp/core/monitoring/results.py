"""Typed result of ``get_model_health``: small on purpose (well under 2,000 tokens), with the
numbers an assistant needs first and the calls that give the detail."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from mlops_mcp.core.monitoring import HEALTH_APP_URI
from mlops_mcp.core.results import Result

__all__ = ["HEALTH_APP_URI", "ModelHealth"]


class Latency(Result):
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class Traffic(Result):
    window_hours: int = Field(description="the last 24 UTC hours, the current one partial")
    predictions: int = Field(description="predicted rows")
    requests: int = Field(description="prediction requests (batches) that succeeded")
    errors: int = Field(description="prediction requests that failed")
    error_rate: float | None = Field(description="errors / (requests + errors)")
    latency: Latency | None = Field(description="request latency percentiles, interpolated in the 1 ms .. 2.5 s histogram")
    by_version: dict[str, int] = Field(description="predicted rows per serving version")
    hourly: list[int] = Field(description="predicted rows per hour, oldest first (24 values)")


class VersionQuality(Result):
    version: int
    task: str
    labeled: int = Field(description="labeled predictions of the last 7 days (by prediction time)")
    predictions: int = Field(description="predictions of the last 7 days")
    label_coverage: float | None
    live: dict[str, float] = Field(description="accuracy (classification) or rmse, mae (regression) of those labels")
    baseline: dict[str, float] | None = Field(description="the same metrics on the version's held-out training split")
    degraded: bool = Field(description="live worse than baseline beyond tolerance 0.05 (absolute for accuracy, relative for errors), >= 30 labels")
    reasons: list[str]


class FeatureDrift(Result):
    feature: str
    severity: float | None = Field(description="effect size / its threshold (>= 1: large enough to matter)")
    drifted: bool


class DriftSummary(Result):
    report_id: int
    checked_at: datetime
    version: int
    severity: str | None = Field(description="none, minor or major (check_drift's headline grade)")
    headline: str | None = Field(description="check_drift's one-line headline")
    drift_detected: bool
    share_drifted: float
    n_drifted: int
    n_checked: int
    top_features: list[FeatureDrift] = Field(description="the most severe columns (at most 8)")


class ExperimentSummary(Result):
    experiment_id: int
    kind: Literal["ab", "shadow"]
    started_at: datetime | None
    version_a: int | None = Field(description="A/B: arm a's version (shadow: None, the champion answers)")
    version_b: int = Field(description="A/B: arm b's version; shadow: the shadow version")
    predictions_a: int | None = None
    predictions_b: int | None = None
    srm_p_value: float | None = Field(None, description="A/B: sequential sample-ratio test of the assignments")
    compared: int | None = Field(None, description="shadow: rows scored by the shadow")
    agreement: float | None = Field(None, description="shadow classifier: share agreeing with the primary")
    mean_abs_diff: float | None = Field(None, description="shadow regression: mean |shadow - primary|")
    failed: int | None = Field(None, description="shadow: rows it failed on")


class Retraining(Result):
    available: bool = Field(description="false while this server's store has no retraining")
    policy: dict[str, object] | None
    jobs: dict[str, int] = Field(description="jobs by status")
    latest_job: dict[str, object] | None
    note: str | None


class HealthAlert(Result):
    name: str = Field(description="the alert's name in deploy/prometheus/rules.yml")
    severity: str
    summary: str
    runbook: str = Field(description="what to do, naming the tool to call")


class ModelHealth(Result):
    model: str
    generated_at: datetime
    status: Literal["ok", "warning", "critical"] = Field(description="the most severe active alert")
    aliases: dict[str, int] = Field(description="alias -> version, from the registry now")
    traffic: Traffic
    quality: list[VersionQuality] = Field(description="champion first, then other versions with recent traffic (at most 4)")
    drift: DriftSummary | None = Field(description="the newest drift report (None: never checked)")
    experiments: list[ExperimentSummary] = Field(description="running live A/B test and shadow")
    retraining: Retraining
    alerts: list[HealthAlert] = Field(description="active alerts: the conditions of the Prometheus rules file")
    next_calls: list[str] = Field(description="suggested next tool calls")
    dashboard: str = Field(HEALTH_APP_URI, description="the MCP App that shows this live (hosts that render apps)")

    def describe(self) -> str:
        t = self.traffic
        champion = self.aliases.get("champion")
        lines = [
            f"'{self.model}' health: {self.status.upper()}"
            + (f"; champion v{champion}" if champion is not None else "; no champion alias")
            + (f"; aliases {', '.join(f'{a}=v{v}' for a, v in sorted(self.aliases.items()))}" if self.aliases else "")
            + "."
        ]
        lat = t.latency
        lines.append(
            f"Last 24 h: {t.requests + t.errors:,} prediction requests, {t.requests:,} answered ({t.predictions:,} rows), "
            f"{t.errors:,} failed" + (f" ({t.error_rate:.1%} of requests)" if t.error_rate is not None else "")
            + (f"; latency p50 {lat.p50_ms:.1f} ms, p95 {lat.p95_ms:.1f} ms" if lat and lat.p50_ms is not None and lat.p95_ms is not None else "")
            + "."
        )
        for q in self.quality[:2]:
            live = ", ".join(f"{k} {v:.3f}" for k, v in q.live.items()) or "no labels"
            base = ", ".join(f"{k} {v:.3f}" for k, v in (q.baseline or {}).items()) or "none"
            cov = f"{q.label_coverage:.0%}" if q.label_coverage is not None else "n/a"
            lines.append(f"v{q.version} quality (7 d): {live} vs baseline {base}; coverage {cov}" + ("; DEGRADED" if q.degraded else "") + ".")
        if self.drift is not None:
            d = self.drift
            lines.append(
                f"Newest drift report {d.report_id} ({d.checked_at:%Y-%m-%d %H:%M} UTC, v{d.version}): "
                + (f"severity {d.severity}; " if d.severity else "")
                + f"{d.n_drifted}/{d.n_checked} columns drifted"
                + (f"; most: {', '.join(f.feature for f in d.top_features[:3])}" if d.top_features else "")
                + "."
            )
        else:
            lines.append("No drift check yet.")
        for e in self.experiments:
            if e.kind == "ab":
                lines.append(f"A/B test {e.experiment_id}: v{e.version_a} vs v{e.version_b}, {e.predictions_a}/{e.predictions_b} predictions"
                             + (f", sample-ratio p {e.srm_p_value:.3g}" if e.srm_p_value is not None else "") + ".")
            else:
                lines.append(f"Shadow {e.experiment_id}: v{e.version_b}, {e.compared} compared"
                             + (f", agreement {e.agreement:.1%}" if e.agreement is not None else "") + ".")
        for a in self.alerts:
            lines.append(f"ALERT {a.name} ({a.severity}): {a.summary}. {a.runbook}")
        if self.next_calls:
            lines.append("Next: " + "; ".join(self.next_calls))
        return "\n".join(lines)
