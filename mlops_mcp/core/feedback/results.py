"""Typed results of feedback (``log_feedback``) and live performance (``get_model_performance``)."""

from datetime import datetime

from pydantic import Field

from mlops_mcp.core.results import Result, Scalar


class FeedbackResult(Result):
    logged: int = Field(description="labels written (corrections included)")
    corrected: int = Field(description="of those, labels that replaced an earlier label from the same source")
    unknown: int = Field(description="rows whose prediction_id matches no logged prediction (skipped)")
    unknown_ids: list[str] = Field(description="the first few unknown prediction ids")
    rows_read: int = Field(description="labels received")
    by_model: dict[str, int] = Field(description="labels written per 'model/version'")
    source: str

    def describe(self) -> str:
        text = f"Logged {self.logged:,} label(s) from '{self.source}' ({self.corrected:,} correction(s)) of {self.rows_read:,} received"
        if self.by_model:
            text += "; per version: " + ", ".join(f"{k}: {v:,}" for k, v in self.by_model.items())
        if self.unknown:
            text += f". {self.unknown:,} unknown prediction id(s) skipped, e.g. {', '.join(self.unknown_ids[:3])}"
        return text + ". Next: get_model_performance(model=...)."


class Figures(Result):
    predictions: int
    labeled: int = Field(description="predictions with a label")
    label_coverage: float | None = Field(description="labeled / predictions, 0..1")
    median_label_lag_s: float | None = Field(description="median seconds from prediction to its label")
    metrics: dict[str, float] = Field(
        description="on the labeled rows: accuracy, f1, roc_auc, log_loss (classification) or rmse, mae, r2 (regression)"
    )


class Bucket(Figures):
    start: datetime = Field(description="bucket start, UTC (inclusive)")
    end: datetime = Field(description="bucket end, UTC (exclusive)")
    versions: list[int] = Field(description="versions that answered in this bucket")


class Baseline(Result):
    version: int | None
    metrics: dict[str, float]
    source: str


class Check(Result):
    scope: str = Field(description="'overall' or 'bucket <start>' (the newest bucket with at least min_labeled labels)")
    metric: str
    value: float
    baseline: float
    limit: float
    degraded: bool


class ChampionChange(Result):
    at: datetime
    from_version: int | None
    to_version: int | None
    kind: str


class PerformanceReport(Result):
    model: str
    version: int | None = Field(description="the version reported on (null: every version of the model)")
    alias: str | None
    task: str
    classes: list[Scalar] | None
    window: str
    window_seconds: int
    since: datetime | None
    until: datetime | None
    first_prediction: datetime | None
    last_prediction: datetime | None
    versions: list[int] = Field(description="versions with predictions in range")
    overall: Figures
    baseline: Baseline
    tolerance: float
    min_labeled: int
    degraded: bool
    reasons: list[str] = Field(description="why degraded (empty when not)")
    checks: list[Check]
    buckets: list[Bucket] = Field(description="oldest first; only buckets with predictions; at most 200")
    buckets_total: int = Field(description="buckets with predictions in range (may exceed those listed)")
    champion_changes: list[ChampionChange] = Field(description="moves of the champion alias in range")
    notes: list[str]

    def describe(self) -> str:
        scope = f"'{self.model}'" + (f" v{self.version}" if self.version else " (all versions)")
        o = self.overall
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in o.metrics.items())
        base = ", ".join(f"{k} {v:.4g}" for k, v in self.baseline.metrics.items() if k in o.metrics)
        coverage = f"{o.label_coverage:.0%}" if o.label_coverage is not None else "n/a"
        lines = [
            f"{scope}: {o.predictions:,} predictions, {o.labeled:,} labeled ({coverage}). Live: {metrics or 'no labels yet'}; "
            f"training baseline ({self.baseline.source}): {base or 'n/a'}.",
            f"Degraded: {'YES - ' + '; '.join(self.reasons) if self.degraded else 'no'} (tolerance {self.tolerance}).",
        ]
        if self.buckets:
            lines.append(f"{self.buckets_total} {self.window} bucket(s); newest: " + "; ".join(
                f"{b.start:%Y-%m-%d %H:%M}: {b.labeled}/{b.predictions} labeled"
                + (f", {next(iter(b.metrics))} {next(iter(b.metrics.values())):.3g}" if b.metrics else "")
                for b in self.buckets[-3:]
            ))
        lines.extend(self.notes[:3])
        return "\n".join(lines)
