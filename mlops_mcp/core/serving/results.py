"""Typed results of serving."""

from pydantic import Field

from mlops_mcp.core.features.results import KeyedFeatures
from mlops_mcp.core.results import Result, Scalar


class PredictionRow(Result):
    prediction_id: str = Field(description="id to attach feedback to (log_feedback) or explain (explain_prediction)")
    prediction: Scalar = Field(description="class label (classification) or value (regression)")
    probabilities: dict[str, float] | None = Field(description="class -> probability (classifiers)")
    score: float | None = Field(description="P(positive class) for binary classifiers, top probability for multiclass, the value for regression")
    version: int = Field(description="the version that answered")
    variant: str | None = Field(description="the alias or experiment arm that routed the row")


class BatchSummary(Result):
    rows: int
    predicted_classes: dict[str, int] | None = Field(default=None, description="classification: class -> rows")
    mean_score: float | None = Field(default=None, description="classification: mean score")
    mean: float | None = Field(default=None, description="regression: mean prediction")
    min: float | None = None
    max: float | None = None


class PredictResult(Result):
    model: str = Field(description="what was asked for, e.g. 'nba-win@champion'")
    n_rows: int
    versions: list[int] = Field(description="versions that answered")
    latency_ms: float = Field(description="server time for the whole batch, before logging, in milliseconds")
    batch: BatchSummary
    predictions: list[PredictionRow] = Field(description="per row, in input order; at most `max_results`")
    truncated: bool = Field(description="true when more rows were predicted (and logged) than listed")
    warnings: list[str] = Field(default_factory=list, description="about the input, e.g. dates the model never saw in training")
    features: KeyedFeatures | None = Field(
        default=None, description="predict by entity_keys: where the inputs came from, their statuses and the missing policy"
    )

    def describe(self) -> str:
        head = (
            f"{self.n_rows} prediction(s) from '{self.model}' (version {', '.join(map(str, self.versions))}) "
            f"in {self.latency_ms:.1f} ms, all logged."
        )
        if self.batch.predicted_classes is not None:
            head += f" Classes: {', '.join(f'{k}: {v}' for k, v in self.batch.predicted_classes.items())}."
        elif self.batch.mean is not None:
            head += f" Mean {self.batch.mean:.4g} (min {self.batch.min:.4g}, max {self.batch.max:.4g})."
        lines = [head]
        for row in self.predictions[:10]:
            score = "" if row.score is None or row.probabilities is None else f" (score {row.score:.3f})"
            arm = f" [{row.variant}]" if row.variant and row.variant not in ("champion",) else ""
            lines.append(f"- {row.prediction_id}: {row.prediction}{score} v{row.version}{arm}")
        if self.n_rows > 10:
            lines.append(f"... {self.n_rows - min(10, len(self.predictions))} more (all in the structured result).")
        lines.extend(f"Warning: {w}" for w in self.warnings[:5])
        if self.features is not None:
            counts = ", ".join(f"{k} {v}" for k, v in self.features.status_counts.items() if v)
            lines.append(f"Inputs from the online feature store ({counts}; missing={self.features.missing_policy}).")
            lines += [f"Warning: {w}" for w in self.features.warnings]
        lines.append("Explain one with explain_prediction(prediction_id=...); attach outcomes with log_feedback.")
        return "\n".join(lines)
