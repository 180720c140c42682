"""The `predict` tool: serve a model version and log every prediction."""

from typing import Annotated, Any

from pydantic import BaseModel, Field

from mlops_mcp.tools.base import Registrar, Scalar


class PredictionRow(BaseModel):
    prediction_id: str = Field(description="id to attach feedback to (log_feedback) or explain (explain_prediction)")
    prediction: Scalar = Field(description="class label (classification) or value (regression)")
    probabilities: dict[str, float] | None = Field(description="class -> probability (classifiers)")
    score: float | None = Field(description="P(positive class) for binary classifiers, the value for regression")
    version: int = Field(description="the version that answered")
    variant: str | None = Field(description="the alias or experiment arm that routed the row")


class PredictResult(BaseModel):
    model: str = Field(description="what was asked for, e.g. 'nba-win@champion'")
    n_rows: int
    versions: list[int] = Field(description="versions that answered")
    latency_ms: float = Field(description="server time for the whole batch, before logging")
    summary: dict[str, Any] = Field(description="class counts and mean score, or mean/min/max value")
    predictions: list[PredictionRow] = Field(description="per row, in input order; at most `max_results`")
    truncated: bool = Field(description="true when more rows were predicted (and logged) than listed")
    warnings: list[str] = Field(default_factory=list, description="about the input, e.g. dates the model never saw in training")


def register(r: Registrar) -> None:
    ops = r.ops

    @r.tool(title="Predict", read_only=False, audit=False)
    def predict(
        model: Annotated[
            str, Field(description="'name' (its champion), 'name@alias' or 'name/version', e.g. 'nba-win@challenger'")
        ],
        rows: Annotated[
            list[dict[str, Any]],
            Field(description="feature rows, each an object with exactly the model's input columns (null = missing)"),
        ],
        request_keys: Annotated[
            list[str | None] | None,
            Field(description="one key per row (e.g. a game or user id): routes A/B tests consistently and is logged"),
        ] = None,
        max_results: Annotated[int, Field(ge=0, le=10_000, description="rows to list in the result")] = 100,
    ) -> PredictResult:
        """Predict with a registered model and log every prediction (model, version, inputs, output,
        latency, time, request key) under a new `prediction_id` per row.

        `model`: 'nba-win' uses the version the 'champion' alias points at now (an alias move
        takes effect on the very next call), 'nba-win@challenger' another alias, 'nba-win/3' a
        version. While an A/B test runs on the model, a plain 'name' is split between its arms by
        `request_keys`. `rows`: up to 10,000 objects with exactly the model's input columns
        (get_model or the error message lists them); missing/extra columns or a non-number in a
        numeric column are refused before anything runs. The result lists up to `max_results`
        rows (all are logged) plus a summary. Example: predict(model="nba-win", rows=[{"home_team":
        "BOS", "away_team": "LAL", "home_rating": 4.1, ...}], request_keys=["game-4412"]).
        """
        batch = ops.predict(model, rows, request_keys)
        from mlops_mcp.core.serving import summarize

        listed = batch.rows[:max_results]
        return PredictResult(
            model=batch.requested,
            n_rows=len(batch.rows),
            versions=sorted(set(batch.versions)),
            latency_ms=round(batch.latency_ms, 3),
            summary=summarize(batch),
            predictions=[PredictionRow(**row) for row in listed],
            truncated=len(listed) < len(batch.rows),
            warnings=batch.warnings,
        )
