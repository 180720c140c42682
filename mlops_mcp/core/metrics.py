"""The metrics the engine knows, in one registry: their task, direction, how a tolerance applies,
and whether they decompose into per-request outcomes (what a live A/B test can compare).

Training reports them on the held-out split, ``get_model_performance`` on labeled live traffic,
``run_ab_test`` tests their difference, live A/B tests compare their per-row form.
"""

from dataclasses import dataclass
from typing import Literal

from mlops_mcp.core.errors import InvalidInput

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Metric:
    name: str
    task: Task
    higher_is_better: bool
    #: degradation tolerance: "absolute" for scores in [0, 1], "relative" for errors and losses
    tolerance: Literal["absolute", "relative"]
    #: a per-request outcome exists (a live A/B test can compare it)
    per_row: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", True, "absolute", True, "share of predictions that were right"),
        Metric("f1", "classification", True, "absolute", False, "F1 of the positive class (macro for multiclass)"),
        Metric("roc_auc", "classification", True, "absolute", False, "area under the ROC curve (one-vs-rest for multiclass)"),
        Metric("log_loss", "classification", False, "relative", True, "mean negative log-likelihood of the true class"),
        Metric("rmse", "regression", False, "relative", False, "root mean squared error"),
        Metric("mse", "regression", False, "relative", True, "mean squared error"),
        Metric("mae", "regression", False, "relative", True, "mean absolute error"),
        Metric("r2", "regression", True, "absolute", False, "coefficient of determination"),
    )
}
ALIASES = {"auc": "roc_auc", "logloss": "log_loss", "cross_entropy": "log_loss", "f1_score": "f1"}

#: what training and live performance report per task, in this order
REPORTED: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
#: the metric a chart or a check uses when none is named
PRIMARY: dict[str, str] = {"classification": "accuracy", "regression": "rmse"}
#: the per-request outcome a live A/B test compares when none is named
LIVE_DEFAULT: dict[str, str] = {"classification": "accuracy", "regression": "mae"}


def metric(name: str, argument: str = "metric", task: str | None = None, per_row: bool = False) -> Metric:
    """The metric called ``name`` (aliases accepted), checked against ``task`` and, with
    ``per_row``, against what a live test can measure; errors list what is accepted."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"must be a metric name; got {name!r}", argument=argument)
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    accepted = [m.name for m in METRICS.values() if (task is None or m.task == task) and (m.per_row or not per_row)]
    found = METRICS.get(key)
    if found is None:
        raise InvalidInput(f"unknown metric '{name}'; accepted: {', '.join(accepted)} (auc = roc_auc)", argument=argument)
    if task is not None and found.task != task:
        raise InvalidInput(
            f"'{found.name}' is a {found.task} metric; for a {task} model use one of {', '.join(accepted)}", argument=argument
        )
    if per_row and not found.per_row:
        raise InvalidInput(
            f"'{found.name}' cannot be measured per request; use one of {', '.join(accepted)}", argument=argument
        )
    return found
