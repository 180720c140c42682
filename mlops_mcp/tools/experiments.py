"""Experiment tools: offline A/B test, live A/B tests (start, read out, conclude) and shadows.

Convention everywhere: variant/arm ``a`` is the incumbent (default: the champion), ``b`` the
challenger; every difference is ``b - a`` in the metric's own units.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import Field

from mlops_mcp.core.errors import MLOpsError
from mlops_mcp.core.experiments.readouts import (
    ABTestReadout,
    ABTestStarted,
    ConcludeResult,
    LiveMetric,
    OfflineABResult,
    ShadowInfo,
    ShadowReport,
    ShadowStarted,
)
from mlops_mcp.core.limits import MAX_ID
from mlops_mcp.tools.args import AlphaArg, ConfirmArg, DatasetArg, ExperimentIdArg, ModelNameArg
from mlops_mcp.tools.confirm import ConfirmOutcome, confirm_or_ask, outcome
from mlops_mcp.tools.context import caller, engine

Variant = Annotated[
    str, Field(description="an alias of `model` ('champion', 'challenger') or a version number ('3')", min_length=1, max_length=64)
]


def run_ab_test(
    model: ModelNameArg,
    dataset: DatasetArg,
    ctx: Context,
    variant_a: Variant = "champion",
    variant_b: Variant = "challenger",
    target: Annotated[str | None, Field(max_length=256, description="label column (default: the versions' training target)")] = None,
    metric: Annotated[
        str | None,
        Field(max_length=32, description="accuracy | f1 | roc_auc | log_loss (classification); rmse | mae | mse | r2 (regression)"),
    ] = None,
    alpha: AlphaArg = 0.05,
) -> OfflineABResult:
    """Head-to-head of two versions of `model` on the same labeled rows, with significance: "is
    version 5 really better than the champion?". Both variants predict every row of `dataset`, and
    the comparison is paired (each row scored by both), which removes the row-to-row noise both
    share: accuracy -> McNemar mid-p, roc_auc -> DeLong, log_loss/mae/mse/r2 -> paired t on per-row
    loss, f1/rmse -> paired bootstrap. Default metric: roc_auc (binary), accuracy (multiclass), rmse
    (regression). Returns each variant's metric, diff = b - a with its (1 - alpha) interval, the
    p-value and test, n, and a verdict with the reason. Warns (training_overlap, and in the reason)
    when evaluated rows are training rows of either version: such a comparison is in-sample.
    Nothing is logged or changed.
    Example: run_ab_test(model="nba-win", variant_a="champion", variant_b="3", dataset="nba/recent.parquet").
    """
    return engine(ctx).run_ab_test(model, dataset, variant_a, variant_b, target, metric, alpha)


def start_ab_test(
    model: ModelNameArg,
    ctx: Context,
    variant_a: Variant = "champion",
    variant_b: Variant = "challenger",
    traffic_split: Annotated[
        float, Field(gt=0, lt=1, description="share of requests sent to variant_b, strictly between 0 and 1, e.g. 0.5 or 0.1")
    ] = 0.5,
    metric: Annotated[
        LiveMetric | None,
        Field(description="per-request outcome: accuracy or log_loss (classification, default accuracy); mae or mse (regression, default mae)"),
    ] = None,
    min_samples_per_arm: Annotated[
        int | None, Field(ge=2, le=100_000_000, description="labeled outcomes each arm needs before any winner is called (default 100)")
    ] = None,
    alpha: AlphaArg = 0.05,
    mde: Annotated[
        float | None,
        Field(gt=0, le=1e9, description="minimum effect worth detecting, in the metric's units (default: 0.02 accuracy; 5% of the champion's training loss)"),
    ] = None,
) -> ABTestStarted:
    """Start a live A/B test on `model`: from now on every predict call (tool and HTTP route) for
    the plain model name is split between the two arms ('name@alias' and 'name/version' are never
    split). Assignment is deterministic per request key (the same key always gets the same arm;
    share `traffic_split` to b); rows without a key get a random arm. Arms are PINNED to the
    versions the variants point at now. One live test per model. Outcomes come from log_feedback
    on the returned prediction_ids. Read with get_ab_test, end with conclude_ab_test.
    Example: start_ab_test(model="nba-win", variant_a="champion", variant_b="challenger", traffic_split=0.2).
    """
    return engine(ctx).start_ab_test(
        model, variant_a, variant_b, traffic_split, metric, min_samples_per_arm, alpha, mde, actor=caller(ctx)
    )


def get_ab_test(experiment_id: ExperimentIdArg, ctx: Context) -> ABTestReadout:
    """The statistics of a live A/B test so far (its logged predictions joined to their feedback):
    per arm n (assigned, labeled), metric and standard error; the effect b - a with its interval,
    absolute and relative; the classic p-value (valid for ONE pre-planned look) and the
    always-valid mSPRT p-value (safe to check every day: the one that decides); a sequential
    sample-ratio check (also safe at every look); power and samples still needed, sized for the
    always-valid rule; a recommendation (keep_running / b_wins / a_wins /
    no_difference / investigate_assignment) with reasons. A concluded test returns its final read-out.
    Example: get_ab_test(experiment_id=3).
    """
    return engine(ctx).get_ab_test(experiment_id)


def _ask_conclude(ctx: Context, experiment_id: int, promote_winner: bool, confirm: bool) -> Any:
    def question() -> str | None:
        try:
            plan = engine(ctx).plan_conclude(experiment_id, promote_winner)
        except MLOpsError:
            return None  # the tool itself reports the error; nothing to ask
        text = f"Stop A/B test {experiment_id} on '{plan.model}' (recommendation: {plan.recommendation})"
        if promote_winner:
            text += f" and move '{plan.model}@champion' from version {plan.champion_from} to version {plan.champion_to}"
        return text + "? Traffic for the plain model name returns to the champion."

    return confirm_or_ask(ctx, confirm, question)


def conclude_ab_test(
    experiment_id: ExperimentIdArg,
    ctx: Context,
    ok: Annotated[ConfirmOutcome, Resolve(_ask_conclude)],
    promote_winner: Annotated[bool, Field(description="also point 'champion' at the winning arm's version")] = False,
    reason: Annotated[str | None, Field(max_length=1000, description="why; kept with the test and the alias history")] = None,
    confirm: ConfirmArg = False,
) -> ConcludeResult:
    """Stop a live A/B test: traffic for the plain model name goes back to the champion alone, and
    the final read-out is stored with the test. With promote_winner=true 'champion' also moves to
    the winner's version, only if the recommendation is b_wins or a_wins (otherwise it fails and
    changes nothing). Destructive: confirmed like set_model_alias, else a dry run. Concluding twice
    is an error.
    Example: conclude_ab_test(experiment_id=3, promote_winner=true, reason="b wins on accuracy", confirm=true).
    """
    ops = engine(ctx)
    go, why = outcome(ok)
    if not go:
        return ops.plan_conclude(experiment_id, promote_winner, why_not=why or "not confirmed")
    return ops.conclude_ab_test(experiment_id, promote_winner, reason, caller(ctx))


def start_shadow(
    model: ModelNameArg,
    ctx: Context,
    variant: Variant = "challenger",
    sample_rate: Annotated[float, Field(gt=0, le=1, description="share of live requests the shadow also scores (1.0 = all)")] = 1.0,
) -> ShadowStarted:
    """Mirror live traffic of `model` to a shadow version without affecting anyone: for every predict
    on the plain model name (tool or HTTP route), a sample (`sample_rate`) of the rows is also
    scored by the shadow version in the background; its answers are logged apart and never
    returned, and its errors or slowness never reach the caller. The shadow is pinned to the
    version `variant` points at now. One shadow per model; compare with get_shadow_report.
    Example: start_shadow(model="nba-win", variant="challenger", sample_rate=0.5).
    """
    return engine(ctx).start_shadow(model, variant, sample_rate, actor=caller(ctx))


def get_shadow_report(
    model: ModelNameArg,
    ctx: Context,
    experiment_id: Annotated[
        int | None, Field(ge=1, le=MAX_ID, description="a past shadow (default: the running or latest one)")
    ] = None,
) -> ShadowReport:
    """How the shadow compares with the live answers on the same mirrored requests: agreement rate
    with a 95% Wilson interval and score differences (classification), or the distribution of
    shadow - primary (regression); latency p50/p95 of both in ms; shadow errors; and, where
    feedback exists, both accuracies (or rmse) with a paired test. Waits up to 5 s for queued
    mirrored rows first. Example: get_shadow_report(model="nba-win").
    """
    return engine(ctx).shadow_report(model, experiment_id)


def stop_shadow(model: ModelNameArg, ctx: Context) -> ShadowInfo:
    """Stop mirroring live requests of `model` to its shadow. Its logged answers stay
    (get_shadow_report still reports on them). Fails clearly when no shadow runs."""
    return engine(ctx).stop_shadow(model, actor=caller(ctx))
