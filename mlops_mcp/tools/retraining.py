"""Retraining tools: policies (when a model retrains by itself), jobs (start, read, list, cancel).

A job answers at once with its id; the work runs off the request path (a worker inside the server
on SQLite, `mlops-mcp worker` processes on PostgreSQL). Its states map onto MCP tasks later:
queued/running -> working, succeeded/rejected_by_gate -> completed, failed, cancelled.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import Field

from mlops_mcp.core.errors import MLOpsError
from mlops_mcp.core.limits import MAX_ID
from mlops_mcp.core.models.pipeline import EstimatorName
from mlops_mcp.core.retraining.policy import GateSpec
from mlops_mcp.core.retraining.results import (
    CancelResult,
    JobStatus,
    RetrainingJob,
    RetrainingJobList,
    RetrainingPolicy,
    RetrainingStarted,
)
from mlops_mcp.tools.args import ConfirmArg, DataPathArg, ModelNameArg, TimeArg
from mlops_mcp.tools.confirm import ConfirmOutcome, confirm_or_ask, outcome
from mlops_mcp.tools.context import caller, engine, progress_reporter

JobIdArg = Annotated[int, Field(ge=1, le=MAX_ID, description="the job_id start_retraining returned")]
AfterGate = Literal["none", "shadow", "ab_test", "promote"]
DecayMetric = Literal["accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2"]


def set_retraining_policy(
    model: ModelNameArg,
    ctx: Context,
    on_drift: Annotated[bool, Field(description="retrain when a drift report on the champion has severity major")] = True,
    drift_share: Annotated[
        float | None, Field(gt=0, le=1, description="instead: retrain when at least this share of columns drifted")
    ] = None,
    on_decay: Annotated[bool, Field(description="retrain when live performance is degraded (as get_model_performance)")] = True,
    metric: Annotated[DecayMetric | None, Field(description="decay on this metric only (default: any)")] = None,
    max_drop: Annotated[
        float | None,
        Field(ge=0, le=1, description="decay tolerance: absolute for scores (0.05 = 5 accuracy points), relative for errors; default 0.05"),
    ] = None,
    schedule: Annotated[
        str | None, Field(max_length=120, description="cron schedule (UTC), e.g. '0 3 * * 1' = Mondays at 03:00")
    ] = None,
    min_new_labels: Annotated[
        int, Field(ge=1, le=100_000_000, description="decay is judged only once the champion has this many labels")
    ] = 200,
    cooldown: Annotated[
        str, Field(max_length=32, description="after a job, further automatic triggers within this time fold into it, e.g. '24h', '0'")
    ] = "24h",
    gate: Annotated[GateSpec | None, Field(description="how the challenger must beat the champion (default: significantly better)")] = None,
    after_gate: Annotated[
        AfterGate, Field(description="none: register as challenger; shadow / ab_test: also start one; promote: move champion (needs auto_promote)")
    ] = "none",
    auto_promote: Annotated[bool, Field(description="required for after_gate='promote'")] = False,
    enabled: bool = True,
) -> RetrainingPolicy:
    """Set when `model` retrains by itself and how a retrained version is judged. Triggers: a drift
    report on the champion of severity major (or a drifted share >= drift_share), live performance
    degraded (once min_new_labels labels exist; metric and max_drop as in get_model_performance), a
    cron schedule, or start_retraining. Triggers within `cooldown` of the last job, or while one
    runs, fold into it. The gate runs on a fresh holdout neither model trained on: optional floors,
    MLflow-style min_absolute_change / min_relative_change, run_ab_test's paired test (significantly
    better, or non-inferior within a margin), guardrail metrics. Replaces the model's policy.
    Example: set_retraining_policy(model="nba-win", cooldown="12h", gate={"metric": "accuracy", "alpha": 0.05},
    after_gate="shadow").
    """
    return engine(ctx).set_retraining_policy(
        model, on_drift=on_drift, drift_share=drift_share, on_decay=on_decay, metric=metric, max_drop=max_drop,
        schedule=schedule, min_new_labels=min_new_labels, cooldown=cooldown, gate=gate, after_gate=after_gate,
        auto_promote=auto_promote, enabled=enabled, actor=caller(ctx),
    )


def get_retraining_policy(model: ModelNameArg, ctx: Context) -> RetrainingPolicy:
    """The retraining policy of `model`: triggers, cooldown, gate, what follows the gate, the next
    scheduled run and the last time it fired (and what came of it)."""
    return engine(ctx).get_retraining_policy(model)


def start_retraining(
    model: ModelNameArg,
    ctx: Context,
    reason: Annotated[str | None, Field(max_length=1000, description="why; kept with the job and on the new version")] = None,
    dataset: Annotated[DataPathArg | None, Field(description="labeled data (a path in a data root) to train on instead of the champion's training dataset")] = None,
    use_feedback: Annotated[bool, Field(description="add the logged inputs of predictions that have ground truth")] = True,
    since: TimeArg = None,
    estimator: Annotated[EstimatorName | None, Field(description="default: the champion's")] = None,
    params: Annotated[
        dict[str, Any] | None, Field(max_length=50, description="hyper-parameters (default: the champion's); capped by the server")
    ] = None,
    after_gate: Annotated[AfterGate | None, Field(description="override the policy's (default 'none')")] = None,
    auto_promote: Annotated[bool | None, Field(description="required for after_gate='promote'")] = None,
    wait: Annotated[bool, Field(description="wait for the job to finish, with progress notifications")] = False,
    wait_seconds: Annotated[float, Field(gt=0, le=3600, description="longest wait (wait=true)")] = 600.0,
) -> RetrainingStarted:
    """Retrain `model` now: answers at once with {job_id, status}; the job runs in the background.
    Training data: the champion's training dataset (its lineage tag) plus the logged inputs of
    predictions that have ground truth (newest label), made since `since` (default: the champion's
    training time); or a given `dataset`. Same estimator and parameters as the champion unless given.
    The new version is judged at the model's gate (see set_retraining_policy; default: significantly
    better than the champion on a fresh holdout), tagged with the verdict and its lineage, and then
    registered as challenger (or shadowed / A/B tested / promoted, per after_gate). One job per model
    at a time. Follow with get_retraining_job.
    Example: start_retraining(model="nba-win", reason="drift since the rule change", since="2024-10-22").
    """
    ops = engine(ctx)
    return ops.start_retraining(
        model, reason, dataset=dataset, use_feedback=use_feedback, since=since, estimator=estimator, params=params,
        after_gate=after_gate, auto_promote=auto_promote, wait=wait, wait_seconds=wait_seconds, actor=caller(ctx),
        progress=progress_reporter(ctx) if wait else None,
    )


def get_retraining_job(job_id: JobIdArg, ctx: Context) -> RetrainingJob:
    """One retraining job: status (queued, running, succeeded, failed, cancelled, rejected_by_gate),
    stage and percent, trigger and reason, data window and row counts, the new version, every gate
    check with its numbers, what happened after the gate, timings, and the error if any.
    Example: get_retraining_job(job_id=3)."""
    return engine(ctx).get_retraining_job(job_id)


def list_retraining_jobs(
    ctx: Context,
    model: Annotated[str | None, Field(max_length=128, description="only this model's jobs")] = None,
    status: Annotated[JobStatus | None, Field(description="only jobs in this state")] = None,
    limit: Annotated[int, Field(ge=1, le=500, description="newest jobs to return")] = 20,
) -> RetrainingJobList:
    """Retraining jobs, newest first, with status, stage, trigger, new version and verdict."""
    return engine(ctx).list_retraining_jobs(model, status, limit)


def _ask_cancel(ctx: Context, job_id: int, confirm: bool) -> Any:
    def question() -> str | None:
        try:
            plan = engine(ctx).plan_cancel_retraining(job_id)
        except MLOpsError:
            return None  # the tool reports the error itself
        return f"Cancel retraining job {job_id} of '{plan.model}' ({plan.status})? Its training stops and nothing it made is kept."

    return confirm_or_ask(ctx, confirm, question)


def cancel_retraining_job(
    job_id: JobIdArg,
    ctx: Context,
    ok: Annotated[ConfirmOutcome, Resolve(_ask_cancel)],
    confirm: ConfirmArg = False,
) -> CancelResult:
    """Cancel a queued or running retraining job: a queued job is withdrawn; a running one has its
    training process stopped at once and anything it registered removed (no version, no alias).
    A job past its gate (moving aliases) or finished cannot be cancelled: an error says so.
    Destructive: confirmed by the user (or confirm=true), otherwise a dry run.
    Example: cancel_retraining_job(job_id=3, confirm=true)."""
    ops = engine(ctx)
    go, why = outcome(ok)
    if not go:
        return ops.plan_cancel_retraining(job_id, why_not=why or "not confirmed")
    return ops.cancel_retraining_job(job_id)
