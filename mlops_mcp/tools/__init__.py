"""MCP tools, declared as data: every tool is a module-level function (its docstring is its
description) and one row here. Rows are in lifecycle order, which is the order tools are listed in.

A new tool: write ``def verb_noun(..., ctx: Context) -> SomeResult`` in the module of its
capability, calling one ``MLOps`` method through ``engine(ctx)``, then add its row. Rows name the
function as "module:function" (imported on first call, not at start-up).
"""

from mlops_mcp.core.monitoring import HEALTH_APP_URI
from mlops_mcp.tools.spec import ALWAYS_ON, TOOLSETS, ToolSpec

__all__ = ["ALWAYS_ON", "TOOLS", "TOOLSETS", "ToolSpec", "select"]

TOOLS: tuple[ToolSpec, ...] = (
    # server
    ToolSpec("server_info:get_server_info", "server", "Server info", read_only=True),
    ToolSpec("server_info:generate_demo_data", "server", "Generate demo data (NBA games)", read_only=False, idempotent=True),
    # registry
    ToolSpec("registry:train_model", "registry", "Train and register a model version", read_only=False),
    ToolSpec("registry:register_model", "registry", "Register an existing model", read_only=False),
    ToolSpec("registry:list_models", "registry", "List models", read_only=True),
    ToolSpec("registry:get_model", "registry", "Get a model", read_only=True),
    ToolSpec("registry:set_model_alias", "registry", "Promote: point an alias at a version", read_only=False, destructive=True, idempotent=True),
    ToolSpec("registry:rollback_model", "registry", "Roll back an alias", read_only=False, destructive=True),
    ToolSpec("registry:get_model_history", "registry", "Alias history of a model", read_only=True),
    ToolSpec("registry:compare_model_versions", "registry", "Compare two versions", read_only=True),
    # serving
    ToolSpec("serving:predict", "serving", "Predict", read_only=False, audit=False),
    # drift
    ToolSpec("drift:check_drift", "drift", "Check data drift", read_only=False),
    ToolSpec("drift:get_drift_history", "drift", "Drift history", read_only=True),
    # explain
    ToolSpec("explain:explain_prediction", "explain", "Explain a prediction", read_only=True),
    ToolSpec("explain:get_feature_importance", "explain", "Feature importance", read_only=True),
    # feedback
    ToolSpec("feedback:log_feedback", "feedback", "Log feedback (ground truth)", read_only=False),
    ToolSpec("feedback:get_model_performance", "feedback", "Model performance over time", read_only=True),
    # experiments
    ToolSpec("experiments:run_ab_test", "experiments", "Offline A/B test on a labeled dataset", read_only=True),
    ToolSpec("experiments:start_ab_test", "experiments", "Start a live A/B test", read_only=False),
    ToolSpec("experiments:get_ab_test", "experiments", "Read out a live A/B test", read_only=True),
    ToolSpec("experiments:conclude_ab_test", "experiments", "Conclude a live A/B test", read_only=False, destructive=True),
    ToolSpec("experiments:start_shadow", "experiments", "Start a shadow deployment", read_only=False),
    ToolSpec("experiments:get_shadow_report", "experiments", "Shadow deployment report", read_only=True),
    ToolSpec("experiments:stop_shadow", "experiments", "Stop a shadow deployment", read_only=False),
    # retraining
    ToolSpec("retraining:set_retraining_policy", "retraining", "Set a model's retraining policy", read_only=False, idempotent=True),
    ToolSpec("retraining:get_retraining_policy", "retraining", "Get a model's retraining policy", read_only=True),
    ToolSpec("retraining:start_retraining", "retraining", "Start retraining a model", read_only=False),
    ToolSpec("retraining:get_retraining_job", "retraining", "Get a retraining job", read_only=True),
    ToolSpec("retraining:list_retraining_jobs", "retraining", "List retraining jobs", read_only=True),
    ToolSpec("retraining:cancel_retraining_job", "retraining", "Cancel a retraining job", read_only=False, destructive=True),
    # monitoring
    ToolSpec("monitoring:get_model_health", "monitoring", "Model health (with a live dashboard)", read_only=True, app=HEALTH_APP_URI),
    # features
    ToolSpec("features:register_feature_view", "features", "Register a feature view (and ingest its source)", read_only=False, idempotent=True),
    ToolSpec("features:list_feature_views", "features", "List feature views", read_only=True),
    ToolSpec("features:get_feature_view", "features", "Get a feature view", read_only=True),
    ToolSpec("features:ingest_features", "features", "Ingest a file into a feature view", read_only=False, idempotent=True),
    ToolSpec("features:materialize_features", "features", "Materialize a feature view online", read_only=False, idempotent=True),
    ToolSpec("features:get_online_features", "features", "Read online features by entity key", read_only=True),
    ToolSpec("features:build_training_set", "features", "Build a point-in-time training set", read_only=False),
    # deploy (Ray Serve)
    ToolSpec("deploy:deploy_model", "deploy", "Deploy a model on Ray Serve (autoscaling)", read_only=False, destructive=True, idempotent=True),
    ToolSpec("deploy:get_deployment", "deploy", "Get a Ray Serve deployment", read_only=True),
    ToolSpec("deploy:list_deployments", "deploy", "List Ray Serve deployments", read_only=True),
    ToolSpec("deploy:undeploy_model", "deploy", "Undeploy a model from Ray Serve", read_only=False, destructive=True),
)


def select(toolsets: list[str] | None = None, read_only: bool = False) -> tuple[tuple[ToolSpec, ...], tuple[str, ...]]:
    """The tools a server offers, and the toolsets they come from: ``toolsets`` (default all; the
    'server' set is always on) intersected with read-only mode. Unknown names are an error."""
    from mlops_mcp.core.errors import InvalidInput

    chosen = list(TOOLSETS) if not toolsets else [t.strip().lower() for t in toolsets]
    unknown = [t for t in chosen if t not in TOOLSETS]
    if unknown:
        raise InvalidInput(
            f"unknown toolset(s) {', '.join(unknown)}; accepted: {', '.join(TOOLSETS)}", argument="MLOPS_TOOLSETS"
        )
    sets = tuple(t for t in TOOLSETS if t in chosen or t in ALWAYS_ON)
    specs = tuple(s for s in TOOLS if s.toolset in sets and (s.read_only or not read_only))
    return specs, sets
