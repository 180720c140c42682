"""Typed results of explanations: one prediction (``explain_prediction``) and the model as a whole
(``get_feature_importance``)."""

from typing import Any

from pydantic import Field

from mlops_mcp.core.results import Result, Scalar
from mlops_mcp.core.values import plain


class Contribution(Result):
    feature: str = Field(description="an ORIGINAL input column (one-hot parts summed back)")
    value: Scalar | None = Field(description="the row's value of that column (null: missing)")
    shap: float = Field(description="its contribution, in output_space units")


class Explanation(Result):
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

    @classmethod
    def build(cls, engine_result: Any, **context: Any) -> "Explanation":
        """From the SHAP engine's dataclass and the service's context (model, version, id)."""
        data = plain(engine_result)
        return cls.model_validate({**{k: v for k, v in data.items() if k in cls.model_fields}, **context})

    def describe(self) -> str:
        units = {"probability": "probability", "log_odds": "log-odds", "raw": "model units"}.get(self.output_space, self.output_space)
        what = f"{self.prediction}"
        if self.probability is not None:
            what += f" (P({self.explained_class}) = {self.probability:.3f})"
        lines = [
            f"'{self.model}' v{self.version} predicts {what}. In {units}: base value {self.base_value:.4g} "
            f"+ contributions = {self.output_value:.4g}. Explainer: {self.explainer}"
            + (f"; approximation: {self.approximation}" if self.approximation else "")
            + "."
        ]
        for c in self.contributions:
            lines.append(f"- {c.feature} = {c.value}: {c.shap:+.4g}")
        if self.n_rest:
            lines.append(f"- {self.n_rest} other column(s): {self.rest:+.4g}")
        return "\n".join(lines)


class Importance(Result):
    feature: str
    mean_abs_shap: float


class FeatureImportance(Result):
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

    @classmethod
    def build(cls, engine_result: Any, **context: Any) -> "FeatureImportance":
        data = plain(engine_result)
        return cls.model_validate({**{k: v for k, v in data.items() if k in cls.model_fields}, **context})

    def describe(self) -> str:
        lines = [
            f"Feature importance of '{self.model}' v{self.version} (mean |SHAP| in {self.output_space}, "
            f"{self.n_rows:,} rows of {self.source}, {self.explainer}):"
        ]
        lines += [f"{i}. {imp.feature}: {imp.mean_abs_shap:.4g}" for i, imp in enumerate(self.importances[:15], 1)]
        if len(self.importances) > 15:
            lines.append(f"... {len(self.importances) - 15} more")
        return "\n".join(lines)
