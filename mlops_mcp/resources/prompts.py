"""Prompts: guided workflows an assistant (or a person in the Inspector) can start from."""

from mcp.server.mcpserver import MCPServer


def investigate_drift(model: str) -> str:
    """Is the model drifting, where, and does it matter for its accuracy?"""
    return (
        f"Investigate whether model '{model}' is drifting.\n"
        f"1. check_drift(model='{model}') on recent logged predictions (or a recent dataset if none are logged), with plot=true.\n"
        "2. For the most drifted columns, describe the shift (means/quantiles or category shares) in plain words.\n"
        "3. Say whether the predictions drifted too (prediction_drift).\n"
        f"4. If labels exist, get_model_performance(model='{model}') and relate any accuracy change to the drift.\n"
        "5. Recommend: keep, retrain on recent data (train_model, then compare_model_versions), or investigate the data pipeline."
    )


def safe_rollout(model: str, candidate_version: str) -> str:
    """Compare, shadow, A/B, then promote, with a rollback path at every step."""
    return (
        f"Roll out version {candidate_version} of '{model}' safely.\n"
        f"1. get_model(model='{model}') to see the current champion and its metrics.\n"
        "2. compare_model_versions on a recent labeled dataset; run_ab_test for a paired significance test.\n"
        f"3. set_model_alias(alias='challenger', version={candidate_version}); start_shadow(model='{model}') and read get_shadow_report.\n"
        "4. If the shadow agrees and is fast enough, start_ab_test and watch get_ab_test (its always-valid p-value may be read daily).\n"
        "5. conclude_ab_test(promote_winner=true) only with a clear winner; rollback_model is the way back.\n"
        "Ask the user before every alias move."
    )


def model_health_review() -> str:
    """A short review across all registered models."""
    return (
        "Review the health of every registered model: list_models, then get_model_health(model=...) for each "
        "(aliases, 24 h traffic and errors, live quality against the training baseline with the degraded flag, "
        "label coverage, the newest drift report, running experiments, active alerts and suggested next calls). "
        "Summarise in a table: model, champion version, status, traffic, live vs baseline metric, drift, alerts, action. "
        "Then follow the suggested next calls of the models that have alerts (e.g. get_model_performance, check_drift, "
        "get_ab_test) before recommending a rollback or a retrain."
    )


#: (function, title); the function's name is the prompt's name, its docstring the description
PROMPTS = (
    (investigate_drift, "Investigate drift of a model"),
    (safe_rollout, "Roll out a candidate version safely"),
    (model_health_review, "Review the health of every model"),
)


def register_prompts(mcp: MCPServer) -> None:
    for fn, title in PROMPTS:
        mcp.prompt(name=fn.__name__, title=title)(fn)
