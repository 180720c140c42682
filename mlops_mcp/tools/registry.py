"""Registry tools: train, register, list, inspect, promote, roll back, compare, history.

Everything here acts on MLflow's registry through its client API; `mlflow ui` on the same
tracking URI shows every run, version and alias these tools create.
"""

import functools
import threading
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import Field

from mlops_mcp.core.limits import MAX_ID
from mlops_mcp.core.models.pipeline import EstimatorName
from mlops_mcp.core.models.results import (
    AliasResult,
    Comparison,
    ModelDetail,
    ModelHistory,
    ModelList,
    RegisterResult,
    TrainResult,
)
from mlops_mcp.tools.args import AliasArg, ConfirmArg, DatasetArg, ModelNameArg, ReasonArg, VersionArg
from mlops_mcp.tools.confirm import ConfirmOutcome, confirm_or_ask, outcome
from mlops_mcp.tools.context import caller, engine, progress_reporter

ColumnList = Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=2000)]


async def train_model(
    model: ModelNameArg,
    dataset: DatasetArg,
    target: Annotated[str, Field(max_length=256, description="column to predict, e.g. 'home_win'")],
    ctx: Context,
    estimator: Annotated[EstimatorName, Field(description="model family")] = "gradient_boosting",
    params: Annotated[
        dict[str, Any],
        Field(max_length=50, description="estimator hyper-parameters, e.g. {\"max_depth\": 3}; capped by the server"),
    ] = {},  # noqa: B006  (never mutated)
    test_size: Annotated[float, Field(ge=0.05, le=0.5, description="share of rows held out for evaluation")] = 0.2,
    description: Annotated[str | None, Field(max_length=2000)] = None,
    alias: Annotated[
        str | None, Field(max_length=64, description="point this alias at the new version, e.g. 'challenger'")
    ] = None,
    features: Annotated[ColumnList | None, Field(description="feature columns (default: all but target and exclude)")] = None,
    exclude: Annotated[ColumnList | None, Field(description="columns to leave out, e.g. ids, dates, leaks")] = None,
    categorical: Annotated[ColumnList | None, Field(description="numeric columns to treat as categories")] = None,
    task: Annotated[Literal["classification", "regression"] | None, Field(description="default: inferred from the target")] = None,
) -> TrainResult:
    """Train a scikit-learn pipeline on a dataset, evaluate it on a held-out split, log it to MLflow
    and register it as a new version of `model` (created if new); reports progress.

    Raw CSV/Parquet works as is: numeric columns are median-imputed and scaled, text columns
    one-hot encoded. The task is inferred from the target (text, bool or <= 20 integer values:
    classification; else regression) unless `task` is given. Metrics on the held-out split:
    accuracy, f1, roc_auc, log_loss (classification) or rmse, mae, r2 (regression). The version
    keeps a reference profile (a sample of the training rows and the schema) for drift checks and
    explanations. Date columns are left out of the features (the warnings say how to derive parts
    from them) and kept for drift. A model's first version becomes its champion; `alias` points
    another alias (e.g. 'challenger') at the new version without asking; to move an existing
    champion, compare first and use set_model_alias. Hyper-parameters are capped by the server
    (n_estimators, max_iter, max_depth, n_jobs; the error names the setting); cancelling the call
    stops the fit and registers nothing.
    Example: train_model(model="nba-win", dataset="nba/train.parquet", target="home_win",
    exclude=["game_id", "game_date", "season", "point_margin"], alias="challenger").
    """
    ops = engine(ctx)
    cancel = threading.Event()  # set when this request is cancelled: the fit is killed, nothing registered
    work = functools.partial(
        ops.train, model=model, dataset=dataset, target=target, estimator=estimator, params=params,
        test_size=test_size, description=description, alias=alias, features=features, exclude=exclude,
        categorical=categorical, task=task, actor=caller(ctx), progress=progress_reporter(ctx), cancel=cancel,
    )
    try:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        cancel.set()
        raise


def register_model(
    model: ModelNameArg,
    source: Annotated[
        str,
        Field(
            max_length=1024,
            description="runs:/<run_id>/<path>, models:/<name>/<version>, or a path in a data root to an MLflow model folder or a .skops file",
        ),
    ],
    ctx: Context,
    description: Annotated[str | None, Field(max_length=2000)] = None,
    reference_dataset: Annotated[
        DatasetArg | None,
        Field(description="data with the model's input columns (a path in a data root, or inline rows): the drift and explanation baseline"),
    ] = None,
    alias: Annotated[str | None, Field(max_length=64, description="point this alias at the new version")] = None,
    tags: Annotated[
        dict[str, Annotated[str, Field(max_length=5000)]],
        Field(max_length=100, description="version tags (names starting 'mlops.' are reserved)"),
    ] = {},  # noqa: B006  (never mutated)
) -> RegisterResult:
    """Register a model trained elsewhere as a new version of `model`: from an MLflow run or model
    URI, an MLflow model folder, or a skops file (`.skops`, loaded with only scikit-learn and
    numpy types trusted). `.pkl`/`.joblib` files are refused unless the server runs with
    MLOPS_TRUST_PICKLE=true, because unpickling runs arbitrary code. Give `reference_dataset` so
    drift checks and explanations have a baseline.
    Example: register_model(model="nba-win", source="runs:/3f2a.../model", reference_dataset="nba/train.parquet").
    """
    return engine(ctx).register(
        model=model, source=source, description=description, reference_dataset=reference_dataset,
        alias=alias, tags=tags, actor=caller(ctx),
    )


def list_models(ctx: Context) -> ModelList:
    """List registered models with their number of versions, latest version, aliases (alias ->
    version) and last update. Use get_model for one model's versions and metrics."""
    return engine(ctx).list_models()


def get_model(model: ModelNameArg, ctx: Context) -> ModelDetail:
    """One registered model: its aliases and versions (newest first, up to 50), each with training
    metrics, creation time, description, tags, task, estimator, target, source run and reference
    profile summary. The input columns of a version: resource mlops://models/{name}/versions/{version}."""
    return engine(ctx).get_model(model)


def _ask_alias(ctx: Context, model: str, alias: str, version: int, confirm: bool) -> Any:
    def question() -> str | None:
        plan = engine(ctx).plan_alias_move(model, alias, version)
        if not plan.changed:
            return None
        if plan.from_version is None:
            return f"Create alias '{alias}' on '{model}' pointing at version {version}?"
        return f"Move '{model}@{alias}' from version {plan.from_version} to version {version}? Traffic that uses '{alias}' switches at once."

    return confirm_or_ask(ctx, confirm, question)


def set_model_alias(
    model: ModelNameArg,
    alias: AliasArg,
    version: VersionArg,
    ctx: Context,
    ok: Annotated[ConfirmOutcome, Resolve(_ask_alias)],
    reason: ReasonArg = None,
    confirm: ConfirmArg = False,
) -> AliasResult:
    """Point `alias` (e.g. 'champion') of `model` at `version`: promotion. Serving follows at once:
    the next predict on 'name' or 'name@alias' uses the new version. Destructive: confirmed by the
    user (or `confirm=true`), otherwise a dry run that says what would change. Every move is kept
    in the alias history, so rollback_model can undo it.
    Example: set_model_alias(model="nba-win", alias="champion", version=5, reason="better AUC on 2024", confirm=true).
    """
    ops = engine(ctx)
    go, why = outcome(ok)
    plan = ops.plan_alias_move(model, alias, version)
    if not plan.changed:
        return AliasResult(**plan.model_dump(), confirmed=go, message=f"'{model}@{alias}' already points at version {version}")
    if not go:
        was = "nowhere" if plan.from_version is None else f"version {plan.from_version}"
        return AliasResult(
            **{**plan.model_dump(), "changed": False}, confirmed=False,
            message=f"Nothing changed ({why}). Would move '{model}@{alias}' from {was} to version {version}; "
            "call again with confirm=true.",
        )
    move = ops.set_alias(model, alias, version, reason, caller(ctx))
    return AliasResult(**move.model_dump(), confirmed=True, message=move.describe())


def _ask_rollback(ctx: Context, model: str, alias: str, to_version: int | None, confirm: bool) -> Any:
    def question() -> str | None:
        plan = engine(ctx).plan_rollback(model, alias, to_version, caller(ctx))
        return f"Roll '{model}@{alias}' back from version {plan.from_version} to version {plan.to_version}?"

    return confirm_or_ask(ctx, confirm, question)


def rollback_model(
    model: ModelNameArg,
    ctx: Context,
    ok: Annotated[ConfirmOutcome, Resolve(_ask_rollback)],
    alias: AliasArg = "champion",
    to_version: Annotated[int | None, Field(ge=1, le=MAX_ID, description="go to this version instead of the previous one")] = None,
    reason: ReasonArg = None,
    confirm: ConfirmArg = False,
) -> AliasResult:
    """Move `alias` (default 'champion') back to the version it pointed at before the latest
    promotion, from the alias history this server keeps (MLflow keeps none). Repeated rollbacks
    step further back (v1 -> v2 -> v3, then two rollbacks: v2, then v1); `to_version` picks the
    target. Destructive: confirmed like set_model_alias. Fails clearly when the history holds no
    earlier version.
    Example: rollback_model(model="nba-win", reason="accuracy fell after release", confirm=true).
    """
    ops = engine(ctx)
    plan = ops.plan_rollback(model, alias, to_version, caller(ctx))
    go, why = outcome(ok)
    if not go:
        return AliasResult(
            **{**plan.model_dump(), "changed": False}, confirmed=False,
            message=f"Nothing changed ({why}). Would roll '{model}@{alias}' back from version {plan.from_version} "
            f"to version {plan.to_version}; call again with confirm=true.",
        )
    move = ops.rollback(model, alias, to_version, reason, caller(ctx))
    return AliasResult(
        **move.model_dump(), confirmed=True,
        message=f"'{model}@{alias}' rolled back from version {move.from_version} to version {move.to_version}",
    )


def get_model_history(
    model: ModelNameArg,
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=500, description="most recent events to return")] = 50,
) -> ModelHistory:
    """The alias history of `model`, newest first: every promotion, rollback and deletion made
    through this server (alias, from, to, when, actor, reason) and moves made outside it (kind
    'observed'), plus the current aliases and all version numbers."""
    return engine(ctx).history(model, limit)


def compare_model_versions(
    model: ModelNameArg,
    version_a: VersionArg,
    version_b: VersionArg,
    ctx: Context,
    dataset: Annotated[DatasetArg | None, Field(description="labeled data (a path in a data root, or inline rows): evaluate both on it now")] = None,
    target: Annotated[
        str | None, Field(max_length=256, description="label column in `dataset` (default: the versions' training target)")
    ] = None,
) -> Comparison:
    """Training metrics of two versions side by side (diff = b - a); with a labeled `dataset`, both
    versions are also evaluated on it now, on the same rows. For a significance test of the
    difference, use run_ab_test.
    Example: compare_model_versions(model="nba-win", version_a=1, version_b=2, dataset="nba/recent.parquet")."""
    return engine(ctx).compare_versions(model, version_a, version_b, dataset, target)
