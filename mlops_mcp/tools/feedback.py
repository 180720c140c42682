"""Feedback and live performance: ``log_feedback`` (ground truth for logged predictions) and
``get_model_performance`` (how the model is really doing over time, against its training baseline).

Thin adapters over ``core.feedback`` and ``core.performance``; nothing heavy is imported here.
"""

from datetime import datetime
from typing import Annotated, Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from mlops_mcp.tools.base import Registrar, Scalar

Label = Scalar


class FeedbackItem(BaseModel):
    prediction_id: str = Field(description="the prediction_id that predict returned", min_length=1, max_length=64)
    actual: Label = Field(description="the true class label (one the model knows) or, for regression, the true number")


class FeedbackResult(BaseModel):
    logged: int = Field(description="labels written (corrections included)")
    corrected: int = Field(description="of those, labels that replaced an earlier label from the same source")
    unknown: int = Field(description="rows whose prediction_id matches no logged prediction (skipped)")
    unknown_ids: list[str] = Field(description="the first few unknown prediction ids")
    rows_read: int = Field(description="labels received")
    by_model: dict[str, int] = Field(description="labels written per 'model/version'")
    source: str


class Figures(BaseModel):
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


class Baseline(BaseModel):
    version: int | None
    metrics: dict[str, float]
    source: str


class Check(BaseModel):
    scope: str = Field(description="'overall' or 'bucket <start>' (the newest bucket with at least min_labeled labels)")
    metric: str
    value: float
    baseline: float
    limit: float
    degraded: bool


class ChampionChange(BaseModel):
    at: datetime
    from_version: int | None
    to_version: int | None
    kind: str


class PerformanceReport(BaseModel):
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


def register(r: Registrar) -> None:
    @r.tool(title="Log feedback (ground truth)", read_only=False)
    def log_feedback(
        prediction_id: Annotated[
            str | None, Field(max_length=64, description="one prediction's id (with `actual`)")
        ] = None,
        actual: Annotated[Label | None, Field(description="the true value for `prediction_id`")] = None,
        items: Annotated[
            list[FeedbackItem] | None,
            Field(max_length=10_000, description="a batch: [{prediction_id, actual}, ...], up to 10,000"),
        ] = None,
        dataset: Annotated[
            str | None,
            Field(description="CSV/Parquet path in a data root with columns prediction_id and actual (any size)"),
        ] = None,
        source: Annotated[
            str,
            Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$", description="where the labels come from, e.g. user, crm, box_scores"),
        ] = "user",
        comment: Annotated[str | None, Field(max_length=2000, description="free text kept with each label")] = None,
    ) -> FeedbackResult:
        """Record ground truth (the real outcome) for predictions served earlier, by prediction_id,
        so that get_model_performance can measure how the model is really doing.

        Give exactly one of: `prediction_id` + `actual` (one label); `items` (up to 10,000
        `{prediction_id, actual}` objects); or `dataset` (a CSV or Parquet file inside a data root
        with columns `prediction_id` and `actual`, any size, read in chunks). `actual` must match the
        model's task: one of its classes (e.g. 0/1 for a home-win model; "1" and 1.0 are accepted
        for class 1) or a number for regression. One call is one transaction: a wrong or missing
        `actual` anywhere fails the whole call and writes nothing. Unknown prediction ids are
        skipped and reported (count + first 10), never fatal. A later label for the same prediction
        and `source` (default "user") is a correction: the newest counts, the history is kept.
        Returns counts: logged, corrected, unknown (with ids), per model/version.
        Example: `log_feedback(items=[{"prediction_id": "3f2a...", "actual": 1}])`.
        """
        from mlops_mcp.core.feedback.labels import gather_input
        from mlops_mcp.core.feedback.labels import log_feedback as write

        form, chunks = gather_input(prediction_id, actual, items, dataset, r.ops.settings.data_roots)
        result = write(
            r.ops.store, r.ops.registry, chunks, source=source, comment=comment, actor=r.actor(), form=form
        )
        return FeedbackResult(**result)

    @r.tool(title="Model performance over time", read_only=True)
    def get_model_performance(
        model: Annotated[
            str, Field(description="registered model name (all its versions), 'name/version' or 'name@alias'")
        ],
        version: Annotated[int | None, Field(ge=1, description="only this version's predictions")] = None,
        window: Annotated[
            str, Field(description="bucket width: number + m/h/d/w, e.g. '1h', '6h', '1d', '7d' (UTC-aligned)")
        ] = "1d",
        since: Annotated[
            str | None, Field(description="ISO 8601 start of prediction time, inclusive (no zone = UTC)")
        ] = None,
        until: Annotated[str | None, Field(description="ISO 8601 end of prediction time, exclusive (no zone = UTC)")] = None,
        tolerance: Annotated[
            float, Field(ge=0, le=1, description="allowed drop: absolute for accuracy/f1/roc_auc/r2, relative for rmse/mae/log_loss")
        ] = 0.05,
        min_labeled: Annotated[
            int, Field(ge=1, le=1_000_000, description="labels a scope needs before it can be called degraded")
        ] = 30,
        plot: Annotated[bool, Field(description="also return a PNG chart of `metric` over time")] = False,
        metric: Annotated[
            str | None,
            Field(description="metric to chart: accuracy, f1, roc_auc, log_loss / rmse, mae, r2 (default accuracy / rmse)"),
        ] = None,
    ) -> Annotated[CallToolResult, PerformanceReport]:
        """How a model is really doing: its logged predictions joined to the ground truth logged with
        log_feedback, per time bucket of prediction time, against the version's training metrics.

        Per bucket (`window`, default "1d"; buckets aligned to UTC, e.g. "1d" = UTC calendar days;
        only buckets holding predictions, the most recent 200 at most) and overall: predictions,
        labeled, label_coverage (0..1), median_label_lag_s (seconds from prediction to label) and
        the metrics on the labeled rows (accuracy, f1, roc_auc, log_loss for classification; rmse,
        mae, r2 for regression). `baseline` = the training metrics (held-out split) of `version`,
        else of the champion. `degraded` is true when, overall or in the newest bucket with at least
        `min_labeled` labels, a metric is worse than baseline by more than `tolerance` (default 0.05):
        accuracy/f1/roc_auc/r2 below baseline - tolerance (absolute); rmse/mae/log_loss above
        baseline x (1 + tolerance) (relative); `reasons` says which. `champion_changes` marks
        moves of the champion alias. `since`/`until`: ISO 8601, e.g. "2024-03-01" or
        "2024-03-01T18:00:00+01:00". `plot=true` adds a PNG chart. Read-only.
        Example: `get_model_performance(model="nba-win", window="7d", plot=true)`.
        """
        from mlops_mcp.core.feedback.performance import check_metric, model_performance, plot_performance

        data = model_performance(
            r.ops.store, r.ops.registry, model, version=version, window=window, since=since, until=until,
            tolerance=tolerance, min_labeled=min_labeled,
        )
        check_metric(data["task"], metric)
        report = PerformanceReport(**data)
        if not plot:
            return report  # type: ignore[return-value]  # validated against PerformanceReport
        from mcp.server.mcpserver import Image

        png = plot_performance(data, metric)
        return CallToolResult(
            content=[TextContent(type="text", text=report.model_dump_json()), Image(data=png, format="png").to_image_content()],
            structured_content=report.model_dump(mode="json"),
        )
