"""Deployment tools: serve a model on Ray Serve with autoscaling, read its status, stop it.

Ray is the optional extra ``mlops-mcp[serve]``; without it every tool here answers with exactly
that install hint. The scaling arguments are bounded in the schema and checked together
(min <= max, target <= max ongoing) by :class:`mlops_mcp.core.deploy.ScalingSpec`.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import Field

from mlops_mcp.core.deploy.config import MAX_CPUS, MAX_DELAY_S, MAX_ONGOING, MAX_REPLICAS, ScalingSpec
from mlops_mcp.core.deploy.results import DeploymentInfo, DeploymentList, DeployResult, UndeployResult
from mlops_mcp.core.errors import MLOpsError
from mlops_mcp.tools.args import ConfirmArg, ModelNameArg
from mlops_mcp.tools.confirm import ConfirmOutcome, confirm_or_ask, outcome
from mlops_mcp.tools.context import engine

MinReplicas = Annotated[int, Field(ge=1, le=MAX_REPLICAS, description="replicas kept running even when idle")]
MaxReplicas = Annotated[
    int | None,
    Field(
        ge=1, le=MAX_REPLICAS,
        description="most replicas the autoscaler may run; > 1 needs a PostgreSQL store "
        "(default: 4 with a PostgreSQL store, 1 with the embedded SQLite one)",
    ),
]
TargetOngoing = Annotated[
    float, Field(gt=0, le=MAX_ONGOING, description="requests in flight per replica the autoscaler aims at (adds replicas above it)")
]
UpscaleDelay = Annotated[float, Field(ge=0, le=MAX_DELAY_S, description="seconds the load must stay high before replicas are added")]
DownscaleDelay = Annotated[float, Field(ge=0, le=MAX_DELAY_S, description="seconds the load must stay low before replicas are removed")]
MaxOngoing = Annotated[int, Field(ge=1, le=MAX_ONGOING, description="requests one replica handles at once; more queue at the proxy")]
Cpus = Annotated[float, Field(gt=0, le=MAX_CPUS, description="CPUs Ray reserves per replica (fractions allowed, e.g. 0.5)")]


def _spec(**values: Any) -> ScalingSpec:
    return ScalingSpec.checked(**values)


def _ask_deploy(
    ctx: Context, model: str, min_replicas: int, max_replicas: int | None, target_ongoing_requests: float, upscale_delay_s: float,
    downscale_delay_s: float, max_ongoing_requests: int, cpus_per_replica: float, confirm: bool,
) -> Any:
    def question() -> str | None:
        try:
            spec = _spec(
                min_replicas=min_replicas, max_replicas=max_replicas or engine(ctx).default_max_replicas(), target_ongoing_requests=target_ongoing_requests,
                upscale_delay_s=upscale_delay_s, downscale_delay_s=downscale_delay_s,
                max_ongoing_requests=max_ongoing_requests, cpus_per_replica=cpus_per_replica,
            )
            plan = engine(ctx).plan_deploy(model, spec)
        except MLOpsError:
            return None  # the tool reports the error itself
        return None if plan.action == "unchanged" else plan.message.replace("Would ", "", 1).rstrip(".") + "?"

    return confirm_or_ask(ctx, confirm, question)


def deploy_model(
    model: ModelNameArg,
    ctx: Context,
    ok: Annotated[ConfirmOutcome, Resolve(_ask_deploy)],
    min_replicas: MinReplicas = 1,
    max_replicas: MaxReplicas = None,
    target_ongoing_requests: TargetOngoing = 2,
    upscale_delay_s: UpscaleDelay = 30,
    downscale_delay_s: DownscaleDelay = 600,
    max_ongoing_requests: MaxOngoing = 5,
    cpus_per_replica: Cpus = 1.0,
    confirm: ConfirmArg = False,
) -> DeployResult:
    """Serve `model` on Ray Serve with autoscaling, for traffic one process cannot carry. Replicas
    answer `POST /v1/models/{model}/predict` on Ray's HTTP proxy (default http://127.0.0.1:8000) with
    the same JSON and bearer-token rule as the built-in route; they follow the 'champion' alias on
    every request (promote or roll back and every replica serves the new version within a second,
    no restart), apply the model's A/B split and shadow, and log every prediction to the shared store.
    Ray Serve adds a replica when the requests in flight per replica stay above
    `target_ongoing_requests` for `upscale_delay_s` seconds, and removes one after `downscale_delay_s`
    seconds below, between `min_replicas` and `max_replicas` (default 4 with a PostgreSQL store; 1
    with the embedded SQLite store, where more than 1 is refused: set MLOPS_DATABASE_URL). Uses RAY_ADDRESS when set, else starts a local Ray head on 127.0.0.1
    that outlives this server and stops with the last undeploy_model. Deploying a deployed model
    updates its scaling. Needs `pip install "mlops-mcp[serve]"`. Confirmed by the user (or
    `confirm=true`), otherwise a dry run that says what would happen. Returns the deployment status.
    Example: deploy_model(model="nba-win", min_replicas=1, max_replicas=4, confirm=true).
    """
    ops = engine(ctx)
    spec = _spec(
        min_replicas=min_replicas, max_replicas=max_replicas or ops.default_max_replicas(), target_ongoing_requests=target_ongoing_requests,
        upscale_delay_s=upscale_delay_s, downscale_delay_s=downscale_delay_s,
        max_ongoing_requests=max_ongoing_requests, cpus_per_replica=cpus_per_replica,
    )
    go, why = outcome(ok)
    if not go:
        plan = ops.plan_deploy(model, spec)
        if plan.action == "unchanged":
            return plan
        return plan.model_copy(update={"message": f"Nothing changed ({why}). {plan.message} Call again with confirm=true."})
    return ops.deploy_model(model, spec)


def get_deployment(model: ModelNameArg, ctx: Context) -> DeploymentInfo:
    """Status of `model`'s Ray Serve deployment: RUNNING/DEPLOYING/..., replicas running and the
    autoscaler's target, the scaling config, the URL to POST to, the champion version it serves,
    and traffic over the last 60 s from the prediction log (requests/s, p50/p99 latency in ms).
    Fails clearly when the model is not deployed.
    Example: get_deployment(model="nba-win")."""
    return engine(ctx).get_deployment(model)


def list_deployments(ctx: Context) -> DeploymentList:
    """Every model deployed on Ray Serve by this server's cluster, with status and replica counts.
    Starts nothing: with no Ray cluster running the list is empty."""
    return engine(ctx).list_deployments()


def _ask_undeploy(ctx: Context, model: str, confirm: bool) -> Any:
    def question() -> str | None:
        try:
            plan = engine(ctx).plan_undeploy(model)
        except MLOpsError:
            return None  # the tool reports the error itself
        return plan.message.replace("Would ", "", 1).rstrip(".") + "?"

    return confirm_or_ask(ctx, confirm, question)


def undeploy_model(
    model: ModelNameArg,
    ctx: Context,
    ok: Annotated[ConfirmOutcome, Resolve(_ask_undeploy)],
    confirm: ConfirmArg = False,
) -> UndeployResult:
    """Stop serving `model` on Ray Serve: its replicas finish the requests in flight and stop; its
    URL stops answering (the built-in route and the predict tool keep working). When it was the last
    deployment on a local Ray head this server started, the head stops too. Destructive: confirmed
    by the user (or `confirm=true`), otherwise a dry run. Fails clearly when the model is not deployed.
    Example: undeploy_model(model="nba-win", confirm=true)."""
    ops = engine(ctx)
    go, why = outcome(ok)
    if not go:
        plan = ops.plan_undeploy(model)
        return plan.model_copy(update={"message": f"Nothing changed ({why}). {plan.message} Call again with confirm=true."})
    return ops.undeploy_model(model)
