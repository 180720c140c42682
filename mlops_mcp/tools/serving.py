"""The `predict` tool: serve a model version and log every prediction."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from mlops_mcp.core.serving.results import PredictResult
from mlops_mcp.tools.args import KeyValueArg, ModelRefArg
from mlops_mcp.tools.context import engine


def predict(
    model: ModelRefArg,
    ctx: Context,
    rows: Annotated[
        list[dict[str, Any]] | None,
        Field(
            min_length=1,
            max_length=10_000,
            description="feature rows, each an object with exactly the model's input columns (null = missing); "
            "at most 10,000 (MLOPS_MAX_PREDICT_ROWS may lower it)",
        ),
    ] = None,
    request_keys: Annotated[
        list[Annotated[str, Field(max_length=256)] | None] | None,
        Field(max_length=10_000, description="one key per row (e.g. a game or user id): routes A/B tests consistently and is logged"),
    ] = None,
    max_results: Annotated[int, Field(ge=0, le=10_000, description="rows to list in the result (all are logged)")] = 100,
    entity_keys: Annotated[
        list[KeyValueArg | Annotated[dict[str, KeyValueArg], Field(max_length=4)]] | None,
        Field(
            min_length=1,
            max_length=1000,
            description="instead of rows, for a version trained on a build_training_set file: up to 1,000 entity keys "
            "(['BOS'] or [{'team': 'BOS', 'season': 2024}]); its inputs are read from the online feature store",
        ),
    ] = None,
    missing: Annotated[
        Literal["impute", "refuse"],
        Field(description="with entity_keys, features not PRESENT (missing or older than the TTL): 'impute' them as training did, or 'refuse' the call"),
    ] = "impute",
) -> PredictResult:
    """Predict with a registered model and log every prediction (model, version, inputs, output,
    latency, time, request key) under a new `prediction_id` per row.

    'nba-win' uses the version the 'champion' alias points at now (an alias move takes effect on
    the very next call); while an A/B test runs on the model, a plain name is split between its
    arms by `request_keys`. 'nba-win@challenger' and 'nba-win/3' are answered as asked. Rows need
    exactly the model's input columns (get_model or the error lists them); a missing or extra
    column, or a non-number in a numeric column, is refused before anything runs. The result lists
    up to `max_results` rows plus a summary.
    Serving by key: a version trained on a build_training_set file takes `entity_keys` instead of
    `rows`; its features come from the online store through the same column mapping as training,
    each with a status (PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE), and `missing` says what
    happens to those not PRESENT ('impute': null, imputed by the model's own pipeline as in
    training, where an unmatched row was null too; 'refuse': the call fails naming them).
    Example: predict(model="nba-win", rows=[{"home_team": "BOS", "away_team": "LAL", "home_rating": 4.1, ...}],
    request_keys=["game-4412"]); predict(model="team-win", entity_keys=["BOS", "LAL"]).
    """
    return engine(ctx).predict(model, rows, request_keys, max_results, entity_keys=entity_keys, missing=missing)
