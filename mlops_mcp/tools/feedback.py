"""Feedback and live performance: ``log_feedback`` (ground truth for logged predictions) and
``get_model_performance`` (how the model is really doing over time, against its training baseline)."""

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from mlops_mcp.core.feedback.results import FeedbackResult, PerformanceReport
from mlops_mcp.core.values import Scalar
from mlops_mcp.tools.args import ModelRefArg, PlotArg, TimeArg
from mlops_mcp.tools.context import caller, engine

Label = Annotated[Scalar, Field(description="the true class label (one the model knows) or, for regression, the true number")]


class FeedbackItem(BaseModel):
    prediction_id: str = Field(description="the prediction_id that predict returned", min_length=1, max_length=64)
    actual: Label


def log_feedback(
    ctx: Context,
    prediction_id: Annotated[str | None, Field(max_length=64, description="one prediction's id (with `actual`)")] = None,
    actual: Annotated[Label | None, Field(description="the true value for `prediction_id`")] = None,
    items: Annotated[
        list[FeedbackItem] | None,
        Field(max_length=10_000, description="a batch: [{prediction_id, actual}, ...], up to 10,000"),
    ] = None,
    dataset: Annotated[
        str | None,
        Field(max_length=1024, description="CSV/Parquet path in a data root with columns prediction_id and actual (any size)"),
    ] = None,
    source: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$", description="where the labels come from, e.g. user, crm, box_scores")
    ] = "user",
    comment: Annotated[str | None, Field(max_length=2000, description="free text kept with each label")] = None,
) -> FeedbackResult:
    """Record ground truth (the real outcome) for predictions served earlier, by prediction_id, so
    that get_model_performance and A/B tests can measure how the model is really doing.

    Give exactly one of: `prediction_id` + `actual` (one label); `items` (up to 10,000
    `{prediction_id, actual}` objects); or `dataset` (a file with columns `prediction_id` and
    `actual`, any size, read in chunks). `actual` must fit the model: one of its classes (e.g. 0/1;
    "1" and 1.0 are accepted for class 1) or a number for regression. One call is one transaction: a
    wrong `actual` anywhere writes nothing. Unknown ids are skipped and reported, never fatal. A
    later label for the same prediction and `source` is a correction: the newest counts, the
    history is kept. Example: log_feedback(items=[{"prediction_id": "3f2a...", "actual": 1}]).
    """
    return engine(ctx).log_feedback(
        prediction_id=prediction_id, actual=actual, items=items, dataset=dataset, source=source,
        comment=comment, actor=caller(ctx),
    )


def get_model_performance(
    model: ModelRefArg,
    ctx: Context,
    window: Annotated[
        str, Field(max_length=16, description="bucket width: number + m/h/d/w, e.g. '1h', '6h', '1d', '7d' (UTC-aligned)")
    ] = "1d",
    since: TimeArg = None,
    until: TimeArg = None,
    tolerance: Annotated[
        float, Field(ge=0, le=1, description="allowed drop: absolute for accuracy/f1/roc_auc/r2, relative for rmse/mae/log_loss")
    ] = 0.05,
    min_labeled: Annotated[
        int, Field(ge=1, le=1_000_000, description="labels a scope needs before it can be called degraded")
    ] = 30,
    plot: PlotArg = False,
    metric: Annotated[
        str | None,
        Field(max_length=32, description="metric to chart: accuracy, f1, roc_auc, log_loss / rmse, mae, r2 (default accuracy / rmse)"),
    ] = None,
) -> PerformanceReport:
    """How a model is really doing: its logged predictions joined to the ground truth logged with
    log_feedback, per time bucket of prediction time, against the training metrics.

    `model`: 'name' covers every version the model served (champion changes are marked); 'name/3'
    or 'name@champion' one version. Per bucket (`window`, UTC-aligned; only buckets holding
    predictions, the most recent 200) and overall: predictions, labeled, label_coverage (0..1),
    median_label_lag_s and the metrics on the labeled rows. `baseline` = the training metrics
    (held-out split) of that version, else of the champion. `degraded` when, overall or in the
    newest bucket with at least `min_labeled` labels, a metric is worse than baseline by more than
    `tolerance`: absolute for accuracy/f1/roc_auc/r2, relative for rmse/mae/log_loss; `reasons` says
    which. `since`/`until` bound prediction time. Read-only; `plot=true` adds a PNG chart.
    Example: get_model_performance(model="nba-win", window="7d", plot=true).
    """
    return engine(ctx).performance(
        model, window=window, since=since, until=until, tolerance=tolerance, min_labeled=min_labeled,
        plot=plot, metric=metric,
    )
