"""Explanation tools: why one prediction, and what matters overall (SHAP)."""

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mlops_mcp.tools.base import Registrar, Scalar, with_image


class Contribution(BaseModel):
    feature: str = Field(description="an ORIGINAL input column (one-hot parts summed back)")
    value: Scalar | None = Field(description="the row's value of that column (null: missing)")
    shap: float = Field(description="its contribution, in output_space units")


class Explanation(BaseModel):
    model: str
    version: int = Field(description="the version explained (for a prediction_id: the one that served it)")
    prediction_id: str | None
    prediction: Scalar = Field(description="what the model predicts: class label or value")
    probability: float | None = Field(description="P(explained_class) for classifiers")
    explained_class: Scalar | None
    output_space: str = Field(
        description="probability, log_odds, raw or class_indicator: the units of base_value, shap and output_value"
    )
    output_description: str
    base_value: float = Field(description="the average output over the background (reference) rows")
    output_value: float = Field(description="base_value + sum of all contributions")
    contributions: list[Contribution] = Field(description="top_k by |shap|, largest first")
    rest: float = Field(description="sum of the contributions not listed")
    n_rest: int
    explainer: str = Field(description="tree (exact TreeSHAP), linear, or permutation")
    explainer_detail: str
    approximation: str | None = Field(description="set when an approximation was used, saying which and why")
    additivity_error: float
    grouping: str = Field(
        description="whole_columns: a categorical column's value is its Shapley value as one player; "
        "sum_of_one_hot_parts: the sum of its one-hot parts' values (tree explainers)"
    )
    background_rows: int = Field(description="rows base_value averages over (0: the model's own training cover)")


class Importance(BaseModel):
    feature: str
    mean_abs_shap: float


class FeatureImportance(BaseModel):
    model: str
    version: int
    source: str = Field(description="rows explained: the reference profile or `dataset`")
    n_rows: int
    output_space: str
    output_description: str
    importances: list[Importance] = Field(description="mean |SHAP| per original column, largest first")
    explainer: str
    explainer_detail: str
    approximation: str | None
    grouping: str = Field(description="whole_columns or sum_of_one_hot_parts (see explain_prediction)")
    background_rows: int


def register(r: Registrar) -> None:
    ops = r.ops

    @r.tool(title="Explain a prediction", read_only=True)
    def explain_prediction(
        model: Annotated[str, Field(description="'name' (champion), 'name@alias' or 'name/version'")],
        row: Annotated[dict[str, Any] | None, Field(description="feature values (exactly the model's columns)")] = None,
        prediction_id: Annotated[str | None, Field(description="a logged prediction to explain (from predict)")] = None,
        top_k: Annotated[int, Field(ge=1, le=100, description="contributions to list")] = 10,
        plot: Annotated[bool, Field(description="add a SHAP waterfall chart as PNG")] = False,
    ) -> Annotated[CallToolResult, Explanation]:
        """Explain one prediction with SHAP: "why did it say 0.81 for game 4412?".

        Give exactly one of `row` or `prediction_id`. With a prediction_id the version that served
        it and the inputs it saw are used, even if the champion has moved since. Returns the
        prediction, the base value (average output over the reference rows), the output space
        (probability, log_odds or raw: stated), and the top_k contributions per ORIGINAL column
        (one-hot parts summed back), each with the row's value, plus the sum of the rest:
        base_value + contributions + rest = output_value. Explainer: exact TreeSHAP for tree
        ensembles, linear for linear models, permutation over the raw columns for any other model
        (a notebook's estimator or pipeline, a pyfunc), reported with any approximation.
        Example: explain_prediction(model="nba-win", prediction_id="9f2c...", plot=true).
        """
        exp, ctx = ops.explain(model, row=row, prediction_id=prediction_id, top_k=top_k)
        data = exp.to_dict()
        result = Explanation(**ctx, **{k: v for k, v in data.items() if k in Explanation.model_fields and k not in ctx})
        png = None
        if plot:
            from mlops_mcp.core.explain.plot import waterfall_png

            png = waterfall_png(exp)
        return with_image(result, png)

    @r.tool(title="Feature importance", read_only=True)
    def get_feature_importance(
        model: Annotated[str, Field(description="'name' (champion), 'name@alias' or 'name/version'")],
        dataset: Annotated[str | None, Field(description="rows to explain (default: the version's reference profile)")] = None,
        sample_size: Annotated[int, Field(ge=10, le=20_000, description="rows sampled for the estimate")] = 1000,
        plot: Annotated[bool, Field(description="add a bar chart as PNG")] = False,
    ) -> Annotated[CallToolResult, FeatureImportance]:
        """Global feature importance: mean |SHAP| per ORIGINAL input column over a sample (default
        1,000 rows of the version's reference profile, or `dataset`), ranked. States the output
        space and explainer. Example: get_feature_importance(model="nba-win", plot=true)."""
        imp, ctx = ops.feature_importance(model, dataset=dataset, sample_size=sample_size)
        data = imp.to_dict()
        result = FeatureImportance(**ctx, **{k: v for k, v in data.items() if k in FeatureImportance.model_fields and k not in ctx})
        png = None
        if plot:
            from mlops_mcp.core.explain.plot import importance_png

            png = importance_png(imp)
        return with_image(result, png)
