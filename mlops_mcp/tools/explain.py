"""Explanation tools: why one prediction, and what matters overall (SHAP)."""

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from mlops_mcp.core.explain.results import Explanation, FeatureImportance
from mlops_mcp.tools.args import DatasetArg, ModelRefArg, PlotArg
from mlops_mcp.tools.context import engine


def explain_prediction(
    model: ModelRefArg,
    ctx: Context,
    row: Annotated[
        dict[str, Any] | None, Field(max_length=5000, description="feature values (exactly the model's input columns)")
    ] = None,
    prediction_id: Annotated[
        str | None, Field(max_length=64, description="a logged prediction to explain (from predict)")
    ] = None,
    top_k: Annotated[int, Field(ge=1, le=100, description="contributions to list")] = 10,
    plot: PlotArg = False,
) -> Explanation:
    """Explain one prediction with SHAP: "why did it say 0.81 for game 4412?".

    Give exactly one of `row` or `prediction_id`. With a prediction_id the version that served it
    and the inputs it saw are used, even if the champion has moved since. Returns the prediction,
    the base value (average output over the reference rows), the output space (probability,
    log_odds or raw: stated), and the top_k contributions per ORIGINAL input column, each with the
    row's value, plus the sum of the rest: base_value + contributions + rest = output_value.
    Explainer: exact TreeSHAP for tree ensembles, linear for linear models, permutation over the raw
    columns for any other model (a notebook's estimator or pipeline, a pyfunc); the one used, any
    approximation and how categorical columns are grouped are stated. `plot=true` adds a waterfall PNG.
    Example: explain_prediction(model="nba-win", prediction_id="9f2c...", plot=true).
    """
    return engine(ctx).explain(model, row=row, prediction_id=prediction_id, top_k=top_k, plot=plot)


def get_feature_importance(
    model: ModelRefArg,
    ctx: Context,
    dataset: Annotated[
        DatasetArg | None, Field(description="rows to explain, a path or inline rows (default: the version's reference profile)")
    ] = None,
    sample_size: Annotated[int, Field(ge=10, le=20_000, description="rows sampled for the estimate")] = 1000,
    plot: PlotArg = False,
) -> FeatureImportance:
    """Global feature importance: mean |SHAP| per ORIGINAL input column over a sample (default 1,000
    rows of the version's reference profile, or `dataset`), ranked; states the output space and the
    explainer. `plot=true` adds a bar chart PNG. Example: get_feature_importance(model="nba-win")."""
    return engine(ctx).feature_importance(model, dataset=dataset, sample_size=sample_size, plot=plot)
