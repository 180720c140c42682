"""Registry tools: train, register, list, inspect, promote, roll back, compare, history.

Everything here acts on MLflow's registry through its client API; `mlflow ui` on the same
tracking URI shows every run, version and alias these tools create.
"""

import functools
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import BaseModel, Field

from mlops_mcp.tools.base import Registrar, Scalar
from mlops_mcp.tools.confirm import ConfirmOutcome, confirm_or_ask, outcome

EstimatorName = Literal[
    "logistic_regression", "linear_regression", "ridge", "random_forest", "gradient_boosting", "hist_gradient_boosting"
]
ModelName = Annotated[str, Field(description="registered model name, e.g. 'nba-win'", min_length=1, max_length=128)]
AliasName = Annotated[str, Field(description="alias, e.g. 'champion', 'challenger', 'shadow'", min_length=1, max_length=64)]


class AliasMove(BaseModel):
    model: str
    alias: str
    from_version: int | None = Field(description="where the alias pointed before (null: it did not exist)")
    to_version: int | None
    changed: bool = Field(description="false when nothing was changed (already there, or not confirmed)")


class TrainResult(BaseModel):
    model: str
    version: int = Field(description="the new version's number")
    task: Literal["classification", "regression"]
    estimator: str
    target: str
    metrics: dict[str, float] = Field(description="on the held-out split: accuracy, f1, roc_auc, log_loss | rmse, mae, r2")
    n_train: int
    n_test: int
    features: list[str]
    categorical: list[str]
    dates_left_out: list[str] = Field(
        default_factory=list, description="date columns not used as features (see warnings for how to use them)"
    )
    classes: list[Scalar] | None
    alias: AliasMove | None
    auto_champion: bool = Field(
        default=False,
        description="true: the model had no champion, so this first version was made champion (its plain name serves it)",
    )
    train_seconds: float
    register_seconds: float = Field(description="logging + registering + reference profile, beyond training")
    reference_rows: int = Field(description="training rows kept as the version's reference profile")
    warnings: list[str] = Field(description="data issues worth a look (identifiers used as features, constants, ...)")


class RegisterResult(BaseModel):
    model: str
    version: int
    source: str
    alias: AliasMove | None
    auto_champion: bool = Field(
        default=False,
        description="true: the model had no champion, so this first version was made champion (its plain name serves it)",
    )
    reference_rows: int | None = Field(description="rows kept as the drift/explanation reference (null: none given)")


class ModelSummary(BaseModel):
    name: str
    description: str | None
    versions: int
    latest_version: int | None
    aliases: dict[str, int] = Field(description="alias -> version")
    updated_at: datetime | None


class ModelList(BaseModel):
    models: list[ModelSummary]
    count: int


class ReferenceSummary(BaseModel):
    rows: int
    source_rows: int
    features: int
    numeric: int
    categorical: int
    target: str | None


class VersionInfo(BaseModel):
    version: int
    aliases: list[str]
    created_at: datetime | None
    description: str | None
    task: str | None
    estimator: str | None
    target: str | None
    metrics: dict[str, float] = Field(description="training metrics logged on the version's MLflow run")
    run_id: str | None
    source: str | None
    tags: dict[str, str]
    reference: ReferenceSummary | None = Field(description="the version's drift/explanation baseline, if it has one")


class ModelDetail(BaseModel):
    name: str
    description: str | None
    aliases: dict[str, int]
    version_count: int
    versions: list[VersionInfo] = Field(description="newest first, at most 50")
    tracking_uri: str | None


class AliasResult(AliasMove):
    confirmed: bool = Field(description="false: this was a dry run; nothing changed")
    message: str


class AliasEventInfo(BaseModel):
    alias: str
    from_version: int | None
    to_version: int | None
    kind: Literal["set", "rollback", "delete", "observed"] = Field(
        description="observed = moved outside this server (e.g. by a notebook), noticed later"
    )
    at: datetime
    actor: str
    reason: str | None


class ModelHistory(BaseModel):
    model: str
    aliases: dict[str, int]
    events: list[AliasEventInfo] = Field(description="newest first")
    versions: list[int] = Field(description="all version numbers, newest first")


class MetricRow(BaseModel):
    metric: str
    a: float | None
    b: float | None
    diff: float | None = Field(description="b - a")


class Comparison(BaseModel):
    model: str
    version_a: int
    version_b: int
    training_metrics: list[MetricRow]
    dataset: str | None
    n_rows: int | None
    dataset_metrics: list[MetricRow] | None = Field(description="both versions evaluated now on `dataset`")


def register(r: Registrar) -> None:
    ops = r.ops

    @r.tool(title="Train and register a model version", read_only=False)
    async def train_model(
        model: ModelName,
        dataset: Annotated[str, Field(description="CSV or Parquet path inside a data root, e.g. 'nba/train.parquet'")],
        target: Annotated[str, Field(description="column to predict, e.g. 'home_win'")],
        ctx: Context,
        estimator: Annotated[EstimatorName, Field(description="model family")] = "gradient_boosting",
        params: Annotated[dict[str, Any], Field(description="estimator hyper-parameters, e.g. {\"max_depth\": 3}")] = {},  # noqa: B006
        test_size: Annotated[float, Field(ge=0.05, le=0.5, description="share of rows held out for evaluation")] = 0.2,
        description: Annotated[str | None, Field(max_length=2000)] = None,
        alias: Annotated[str | None, Field(description="point this alias at the new version, e.g. 'challenger'")] = None,
        features: Annotated[list[str] | None, Field(description="feature columns (default: all but target and exclude)")] = None,
        exclude: Annotated[list[str] | None, Field(description="columns to leave out, e.g. ids, dates, leaks")] = None,
        categorical: Annotated[list[str] | None, Field(description="numeric columns to treat as categories")] = None,
        task: Annotated[Literal["classification", "regression"] | None, Field(description="default: inferred from the target")] = None,
    ) -> TrainResult:
        """Train a scikit-learn pipeline on a dataset, evaluate it on a held-out split, log it to MLflow
        and register it as a new version of `model` (created if new), optionally pointing `alias` at it.

        Raw CSV/Parquet works as is: numeric columns are median-imputed and scaled, text columns
        one-hot encoded. The task is inferred from the target (text, bool or <= 20 integer values:
        classification; else regression) unless `task` is given. Metrics on the held-out split:
        accuracy, f1, roc_auc, log_loss (classification) or rmse, mae, r2 (regression). The
        version keeps a reference profile (a sample of up to MLOPS_REFERENCE_SAMPLE_ROWS training
        rows and the schema) for drift checks and explanations. Reports progress.
        Setting `alias` here does not ask for confirmation; to move an existing `champion`, prefer
        set_model_alias after comparing versions.
        Example: train_model(model="nba-win", dataset="nba/train.parquet", target="home_win",
        exclude=["game_id", "game_date", "season", "point_margin"], alias="challenger").
        """

        def progress(fraction: float, message: str) -> None:
            try:
                anyio.from_thread.run(functools.partial(ctx.report_progress, round(fraction * 100, 1), 100.0, message))
            except Exception:  # progress is best effort; a client that stopped listening must not fail the run
                pass

        import threading

        cancel = threading.Event()  # set when this request is cancelled: the fit is killed, nothing registered
        try:
            result = await anyio.to_thread.run_sync(
                functools.partial(
                    ops.train,
                    actor=r.actor(),
                    progress=progress,
                    cancel=cancel,
                    model=model,
                    dataset=dataset,
                    target=target,
                    estimator=estimator,
                    params=params,
                    test_size=test_size,
                    description=description,
                    alias=alias,
                    features=features,
                    exclude=exclude,
                    categorical=categorical,
                    task=task,
                ),
                abandon_on_cancel=True,
            )
        except anyio.get_cancelled_exc_class():
            cancel.set()
            raise
        return TrainResult(**result)

    @r.tool(title="Register an existing model", read_only=False)
    def register_model(
        model: ModelName,
        source: Annotated[
            str,
            Field(description="runs:/<run_id>/<path>, models:/<name>/<version>, or a path in a data root to an MLflow model folder or a .skops file"),
        ],
        description: Annotated[str | None, Field(max_length=2000)] = None,
        reference_dataset: Annotated[
            str | None, Field(description="CSV/Parquet in a data root with the model's input columns: the drift and explanation baseline")
        ] = None,
        alias: Annotated[str | None, Field(description="point this alias at the new version")] = None,
        tags: Annotated[dict[str, str], Field(description="version tags (names starting 'mlops.' are reserved)")] = {},  # noqa: B006
    ) -> RegisterResult:
        """Register a model trained elsewhere as a new version of `model`: from an MLflow run or model
        URI, an MLflow model folder, or a skops file (`.skops`, loaded with only scikit-learn and
        numpy types trusted). `.pkl`/`.joblib` files are refused unless the server runs with
        MLOPS_TRUST_PICKLE=true, because unpickling runs arbitrary code.
        Give `reference_dataset` so drift checks and explanations have a baseline.
        Example: register_model(model="nba-win", source="runs:/3f2a.../model", reference_dataset="nba/train.parquet").
        """
        return RegisterResult(
            **ops.register(
                actor=r.actor(), model=model, source=source, description=description,
                reference_dataset=reference_dataset, alias=alias, tags=tags,
            )
        )

    @r.tool(title="List models", read_only=True)
    def list_models() -> ModelList:
        """List registered models with their number of versions, latest version, aliases (alias ->
        version) and last update. Use get_model for one model's versions and metrics."""
        models = [ModelSummary(**m) for m in ops.list_models()]
        return ModelList(models=models, count=len(models))

    @r.tool(title="Get a model", read_only=True)
    def get_model(model: ModelName) -> ModelDetail:
        """One registered model: its aliases and versions (newest first, up to 50), each with training
        metrics, creation time, description, tags, task, estimator, target, source run and
        reference profile summary. `model` is the plain name (e.g. 'nba-win')."""
        return ModelDetail(**ops.get_model(model))

    def _alias_question(model: str, alias: str, version: int) -> str | None:
        current = ops.registry.aliases(model).get(alias)
        if current == version:
            return None
        if current is None:
            return f"Create alias '{alias}' on '{model}' pointing at version {version}?"
        return f"Move '{model}@{alias}' from version {current} to version {version}? Traffic that uses '{alias}' switches at once."

    def _confirm_alias(ctx: Context, model: str, alias: str, version: int, confirm: bool) -> Any:
        return confirm_or_ask(ctx, confirm, lambda: _alias_question(model, alias, version))

    @r.tool(title="Promote: point an alias at a version", read_only=False, destructive=True, idempotent=True)
    def set_model_alias(
        model: ModelName,
        alias: AliasName,
        version: Annotated[int, Field(ge=1, description="version number to point the alias at")],
        ok: Annotated[ConfirmOutcome, Resolve(_confirm_alias)],
        reason: Annotated[str | None, Field(max_length=1000, description="why; kept in the alias history")] = None,
        confirm: Annotated[bool, Field(description="set true to go ahead on clients without elicitation")] = False,
    ) -> AliasResult:
        """Point `alias` (e.g. 'champion') of `model` at `version`: promotion. Serving follows at once:
        the next predict on 'name' or 'name@alias' uses the new version.
        Moving an alias is destructive: the server asks the user to confirm (elicitation) when the
        client supports it, otherwise it needs `confirm=true`; without either it answers with what
        it WOULD do and changes nothing (confirmed=false). Every move is kept in the alias history
        (get_model_history) so rollback_model can undo it.
        Example: set_model_alias(model="nba-win", alias="champion", version=5, reason="better AUC on 2024", confirm=true).
        """
        go, why = outcome(ok)
        current = ops.registry.aliases(model).get(alias)
        ops.registry.version(model, version)
        if not go:
            if current == version:
                return AliasResult(model=model, alias=alias, from_version=current, to_version=version, changed=False,
                                   confirmed=False, message=f"'{model}@{alias}' already points at version {version}")
            return AliasResult(
                model=model, alias=alias, from_version=current, to_version=version, changed=False, confirmed=False,
                message=f"Nothing changed ({why}). Would move '{model}@{alias}' from "
                f"{'nowhere' if current is None else f'version {current}'} to version {version}; call again with confirm=true.",
            )
        move = ops.registry.set_alias(model, alias, version, r.actor(), reason)
        text = (
            f"'{model}@{alias}' now points at version {version} (was {move['from_version']})"
            if move["changed"] else f"'{model}@{alias}' already pointed at version {version}"
        )
        return AliasResult(**move, confirmed=True, message=text)

    def _confirm_rollback(ctx: Context, model: str, alias: str, to_version: int | None, confirm: bool) -> Any:
        def question() -> str | None:
            current, target = ops.registry.rollback_plan(model, alias, to_version, r.actor())
            return f"Roll '{model}@{alias}' back from version {current} to version {target}?"

        return confirm_or_ask(ctx, confirm, question)

    @r.tool(title="Roll back an alias", read_only=False, destructive=True)
    def rollback_model(
        model: ModelName,
        ok: Annotated[ConfirmOutcome, Resolve(_confirm_rollback)],
        alias: AliasName = "champion",
        to_version: Annotated[int | None, Field(ge=1, description="go to this version instead of the previous one")] = None,
        reason: Annotated[str | None, Field(max_length=1000)] = None,
        confirm: Annotated[bool, Field(description="set true to go ahead on clients without elicitation")] = False,
    ) -> AliasResult:
        """Move `alias` (default 'champion') back to the version it pointed at before the latest
        promotion, from the alias history this server keeps (MLflow keeps none). Repeated rollbacks
        step further back (v1 -> v2 -> v3, then two rollbacks: v2, then v1). `to_version` picks the
        target explicitly. Confirms like set_model_alias (elicitation, else `confirm=true`, else a
        dry run that changes nothing). Fails clearly when there is no earlier version in the history.
        Example: rollback_model(model="nba-win", reason="accuracy fell after release", confirm=true).
        """
        current, target = ops.registry.rollback_plan(model, alias, to_version, r.actor())
        go, why = outcome(ok)
        if not go:
            return AliasResult(
                model=model, alias=alias, from_version=current, to_version=target, changed=False, confirmed=False,
                message=f"Nothing changed ({why}). Would roll '{model}@{alias}' back from version {current} "
                f"to version {target}; call again with confirm=true.",
            )
        move = ops.registry.rollback(model, alias, to_version, r.actor(), reason)
        return AliasResult(**move, confirmed=True,
                           message=f"'{model}@{alias}' rolled back from version {move['from_version']} to version {move['to_version']}")

    @r.tool(title="Alias history of a model", read_only=True)
    def get_model_history(
        model: ModelName,
        limit: Annotated[int, Field(ge=1, le=500, description="most recent events to return")] = 50,
    ) -> ModelHistory:
        """The alias history of `model`, newest first: every promotion, rollback and deletion made
        through this server (alias, from, to, when, actor, reason) and moves made outside it
        (kind 'observed'), plus the current aliases and all version numbers."""
        events = ops.registry.history(model)[:limit]
        return ModelHistory(
            model=model,
            aliases=ops.registry.aliases(model),
            events=[AliasEventInfo(**e) for e in events],
            versions=[int(v.version) for v in ops.registry.versions(model)],
        )

    @r.tool(title="Compare two versions", read_only=True)
    def compare_model_versions(
        model: ModelName,
        version_a: Annotated[int, Field(ge=1)],
        version_b: Annotated[int, Field(ge=1)],
        dataset: Annotated[str | None, Field(description="labeled CSV/Parquet in a data root: evaluate both on it now")] = None,
        target: Annotated[str | None, Field(description="label column in `dataset` (default: the versions' training target)")] = None,
    ) -> Comparison:
        """Training metrics of two versions side by side (diff = b - a); with a labeled `dataset`,
        both versions are also evaluated on it now, on the same rows. For a significance test of
        the difference, use run_ab_test.
        Example: compare_model_versions(model="nba-win", version_a=1, version_b=2, dataset="nba/recent.parquet")."""
        return Comparison(**ops.compare_versions(model, version_a, version_b, dataset, target))
