"""Experiment tools: offline A/B test, live A/B tests (start, read out, conclude) and shadows.

Convention everywhere: variant/arm ``a`` is the incumbent (default: the champion), ``b`` the
challenger; every difference is ``b - a`` in the metric's own units.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import BaseModel, Field

from mlops_mcp.tools.base import Registrar
from mlops_mcp.tools.confirm import ConfirmOutcome, confirm_or_ask, outcome

ModelName = Annotated[str, Field(description="registered model name, e.g. 'nba-win'", min_length=1, max_length=128)]
Variant = Annotated[
    str, Field(description="an alias of `model` ('champion', 'challenger') or a version number ('3')", min_length=1, max_length=64)
]
Alpha = Annotated[float, Field(gt=0, lt=0.5, description="significance level (two-sided), e.g. 0.05")]
ExperimentId = Annotated[int, Field(ge=1, description="the experiment_id start_ab_test returned (also in mlops://experiments)")]
Recommendation = Literal["keep_running", "b_wins", "a_wins", "no_difference", "investigate_assignment"]


# -- results ------------------------------------------------------------------------------------------
class OfflineVariant(BaseModel):
    variant: str = Field(description="as given: alias or version")
    version: int = Field(description="the version it pointed at")
    metric: float = Field(description="the metric of this variant on the dataset")


class Discordant(BaseModel):
    only_a_correct: int
    only_b_correct: int


class TrainingOverlap(BaseModel):
    version: int
    status: Literal["none", "overlap", "unknown"] = Field(
        description="overlap: some evaluated rows are this version's training rows (in-sample); unknown: no row hashes kept"
    )
    overlapping_rows: int | None = Field(description="evaluated rows that are training rows of this version")
    share: float | None = Field(description="overlapping_rows / n")
    training_rows: int | None = Field(description="rows the version was trained on (hashed)")
    matched_on: Literal["features+target", "features"] | None = Field(
        description="features+target for versions trained here; features for models registered with reference data"
    )


class TrainingOverlaps(BaseModel):
    a: TrainingOverlap
    b: TrainingOverlap


class OfflineABResult(BaseModel):
    model: str
    variant_a: OfflineVariant
    variant_b: OfflineVariant
    dataset: str
    target: str
    n: int = Field(description="labeled rows both variants predicted")
    rows_without_label: int = Field(description="rows dropped because the target was empty")
    metric: str
    higher_is_better: bool
    diff: float = Field(description="metric_b - metric_a")
    ci_low: float | None = Field(description="lower end of the (1 - alpha) confidence interval of diff")
    ci_high: float | None
    p_value: float
    test: str = Field(description="mcnemar_mid_p | mcnemar_exact | mcnemar_chi2_cc | delong | paired_t | paired_t_squared_error | paired_bootstrap")
    alpha: float
    verdict: Literal["a_better", "b_better", "no_significant_difference"]
    verdict_text: str = Field(description="'a better', 'b better' or 'no significant difference'")
    reason: str
    discordant: Discordant | None = Field(description="accuracy (McNemar): rows only one variant got right")
    training_overlap: TrainingOverlaps | None = Field(
        default=None, description="per variant: evaluated rows that were its training rows (a warning when any)"
    )


class ABTestInfo(BaseModel):
    experiment_id: int
    model: str
    status: Literal["running", "concluded"]
    task: str
    variant_a: str | None
    version_a: int | None = Field(description="arm a is pinned to this version for the whole test")
    variant_b: str
    version_b: int = Field(description="arm b is pinned to this version for the whole test")
    traffic_split: float = Field(description="share of requests routed to arm b")
    metric: str | None
    alpha: float
    mde: float | None = Field(description="minimum detectable effect, in the metric's units")
    min_samples_per_arm: int | None
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    ended_by: str | None
    reason: str | None


class ABTestStarted(ABTestInfo):
    message: str


class ArmReadout(BaseModel):
    variant: str | None
    version: int | None
    n_assigned: int = Field(description="predictions routed to this arm")
    n_labeled: int = Field(description="of which have feedback (the outcomes measured)")
    metric: float | None = Field(description="mean outcome: accuracy, or mean loss")
    se: float | None = Field(description="standard error of `metric`")


class Effect(BaseModel):
    diff: float | None = Field(description="metric_b - metric_a")
    ci_low: float | None = Field(description="classic (1 - alpha) interval of diff, valid for one planned look")
    ci_high: float | None
    relative: float | None = Field(description="metric_b / metric_a - 1")
    relative_ci_low: float | None
    relative_ci_high: float | None


class SRMCheck(BaseModel):
    p_value: float = Field(
        description="always-valid p-value of the sequential multinomial test of arm counts (all assignments) "
        "against traffic_split: safe to check at every look"
    )
    mismatch: bool = Field(description="p below threshold: assignment or logging is broken; do not trust the effect")
    threshold: float
    observed_share_b: float | None
    expected_share_b: float
    labeled_mismatch: bool = Field(description="the same check on labeled rows only (feedback arriving unevenly)")
    reason: str
    test: str | None = Field(default=None, description="sequential_multinomial (Lindon & Malek) | chi2 (one planned look)")


class PowerInfo(BaseModel):
    mde: float | None
    power_reached: float | None = Field(
        description="power now of the always-valid rule (the one that calls the winner) to detect an effect of mde"
    )
    required_n_a: int | None = Field(description="labeled outcomes arm a needs for the always-valid rule to have 80% power at mde")
    required_n_b: int | None
    samples_needed_a: int | None = Field(description="still missing in arm a")
    samples_needed_b: int | None
    method: str | None = Field(
        default=None, description="msprt_boundary: sized by inverting the mSPRT boundary at the look (a lower bound: more looks only add chances)"
    )
    mixture_tau2: float | None = Field(default=None, description="mSPRT mixing variance, tuned from mde (fixed for the test)")
    fixed_horizon_n_a: int | None = Field(default=None, description="what ONE planned look of the classic test would need in arm a, for comparison")
    fixed_horizon_n_b: int | None = None


class ABTestReadout(ABTestInfo):
    looks: int = Field(description="how many times the test was read out (get_ab_test calls)")
    higher_is_better: bool
    outcome: str = Field(description="what one row's outcome is")
    arm_a: ArmReadout
    arm_b: ArmReadout
    effect: Effect
    test: str | None = Field(description="two_proportion_z (accuracy) or welch_t (losses)")
    p_value: float | None = Field(description="classic p-value: valid only for a single pre-planned look")
    always_valid_p_value: float | None = Field(description="mSPRT p-value, running minimum over looks: safe to check daily")
    always_valid_ci_low: float | None
    always_valid_ci_high: float | None
    srm: SRMCheck
    power: PowerInfo
    recommendation: Recommendation
    reasons: list[str]


class ConcludeResult(BaseModel):
    experiment_id: int
    model: str
    concluded: bool = Field(description="false: dry run, nothing changed")
    recommendation: Recommendation
    winner: Literal["a", "b"] | None
    winner_version: int | None
    promoted: bool = Field(description="champion was moved to the winner")
    champion_from: int | None
    champion_to: int | None
    effect: Effect
    always_valid_p_value: float | None
    reasons: list[str]
    message: str


class ShadowInfo(BaseModel):
    experiment_id: int
    model: str
    status: Literal["running", "stopped"]
    variant: str
    shadow_version: int = Field(description="pinned when the shadow started")
    sample_rate: float = Field(description="share of live requests mirrored")
    started_at: datetime
    ended_at: datetime | None


class ShadowStarted(ShadowInfo):
    champion_version: int
    message: str


class ScoreDiff(BaseModel):
    mean: float
    abs_mean: float
    p05: float
    p50: float
    p95: float
    abs_max: float


class LabeledTest(BaseModel):
    test: str
    p_value: float | None
    diff: float | None = Field(
        description="shadow - primary of the tested per-row quantity: accuracy (McNemar), squared error (rmse) or absolute error (mae)"
    )
    ci_low: float | None
    ci_high: float | None
    only_a_correct: int | None = Field(description="rows only the primary got right")
    only_b_correct: int | None = Field(description="rows only the shadow got right")
    note: str


class ShadowReport(ShadowInfo):
    task: str
    mirrored: int = Field(description="primary predictions the shadow was asked to score")
    compared: int = Field(description="of which the shadow answered (errors excluded)")
    shadow_errors: int
    error_examples: list[str]
    dropped_queue_full: int
    agreement_rate: float | None = Field(description="classification: share of rows with the same predicted class")
    agreement_ci_low: float | None
    agreement_ci_high: float | None
    score_diff: ScoreDiff | None = Field(default=None, description="classification: shadow score - primary score (P(positive))")
    diff_mean: float | None = Field(description="regression: mean of shadow - primary")
    diff_sd: float | None
    abs_diff_mean: float | None
    diff_quantiles: dict[str, float] | None = Field(description="regression: p05, p25, p50, p75, p95 of shadow - primary")
    abs_diff_max: float | None
    latency_primary_p50: float | None = Field(description="ms, of the batch each mirrored row came in")
    latency_primary_p95: float | None
    latency_shadow_p50: float | None = Field(description="ms, shadow scoring of the mirrored batch (off the request path)")
    latency_shadow_p95: float | None
    n_labeled: int = Field(description="compared rows with feedback")
    metric: str | None
    metric_primary: float | None
    metric_shadow: float | None
    labeled_test: LabeledTest | None = Field(description="paired test on labeled rows: McNemar (accuracy), paired t (rmse)")
    notes: list[str]


def _info(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "arm_a": data.get("arms", {}).get("a"), "arm_b": data.get("arms", {}).get("b")} if "arms" in data else data


def register(r: Registrar) -> None:
    ops = r.ops

    def router() -> Any:
        return ops.predictor.router

    @r.tool(title="Offline A/B test on a labeled dataset", read_only=True)
    def run_ab_test(
        model: ModelName,
        dataset: Annotated[str, Field(description="labeled CSV/Parquet in a data root, e.g. 'nba/recent.parquet'")],
        variant_a: Variant = "champion",
        variant_b: Variant = "challenger",
        target: Annotated[str | None, Field(description="label column (default: the target the versions were trained on)")] = None,
        metric: Annotated[
            str | None,
            Field(description="accuracy | f1 | roc_auc | log_loss (classification); rmse | mae | mse | r2 (regression)"),
        ] = None,
        alpha: Alpha = 0.05,
    ) -> OfflineABResult:
        """Head-to-head of two versions of `model` on the same labeled rows, with significance: "is
        version 5 really better than the champion?". Both variants predict every row of `dataset`;
        the comparison is paired (each row is scored by both), which removes the row-to-row noise
        both share. Test per metric: accuracy -> McNemar mid-p (the exact binomial test with the
        observed table counted half: the same size, more power), roc_auc ->
        DeLong, log_loss/mae/mse/r2 -> paired t on per-row loss, f1/rmse -> paired bootstrap.
        Default metric: roc_auc for binary classifiers, accuracy for multiclass, rmse for regression.
        Returns each variant's metric, diff = b - a with its (1 - alpha) confidence interval, the
        p-value, the test used, n, and a verdict (a better / b better / no significant difference)
        with the reason. Warns (training_overlap, and in the reason) when evaluated rows are training
        rows of either version: such a comparison is in-sample. Nothing is logged or changed.
        Example: run_ab_test(model="nba-win", variant_a="champion", variant_b="3", dataset="nba/recent.parquet").
        """
        from mlops_mcp.core.experiments.offline import run

        return OfflineABResult(
            **run(ops.registry, ops.settings.data_roots, model, variant_a, variant_b, dataset, target, metric, alpha)
        )

    @r.tool(title="Start a live A/B test", read_only=False)
    def start_ab_test(
        model: ModelName,
        variant_a: Variant = "champion",
        variant_b: Variant = "challenger",
        traffic_split: Annotated[
            float, Field(gt=0, lt=1, description="share of requests sent to variant_b, strictly between 0 and 1, e.g. 0.5 or 0.1")
        ] = 0.5,
        metric: Annotated[
            Literal["accuracy", "log_loss", "mae", "mse"] | None,
            Field(
                description="per-request outcome: accuracy or log_loss (classification, default accuracy); "
                "mae or mse (regression, default mae)"
            ),
        ] = None,
        min_samples_per_arm: Annotated[
            int | None, Field(ge=2, description="labeled outcomes each arm needs before any winner is called (default 100)")
        ] = None,
        alpha: Alpha = 0.05,
        mde: Annotated[
            float | None,
            Field(gt=0, description="minimum effect worth detecting, in the metric's units (default: 0.02 accuracy; 5% of the champion's training loss)"),
        ] = None,
    ) -> ABTestStarted:
        """Start a live A/B test on `model`: from now on every predict call (tool and HTTP route) for
        the plain model name (e.g. 'nba-win', which normally means its champion) is split between
        the two arms; 'name@alias' for other aliases and 'name/version' are never split.
        Assignment is deterministic per request key: the same `request_keys` value always gets the
        same arm (sha256 of experiment id + key; share `traffic_split` to b); rows without a key get
        a random arm. The arm ('a'/'b') and experiment_id are logged with each prediction.
        The arms are PINNED to the versions the variants point at now: moving an alias during the
        test does not change them. One live test per model at a time.
        Outcomes come from feedback (log_feedback on the returned prediction_ids): correct or not
        for accuracy, per-row loss for the others. Read with get_ab_test, end with conclude_ab_test.
        Example: start_ab_test(model="nba-win", variant_a="champion", variant_b="challenger", traffic_split=0.2).
        """
        from mlops_mcp.core.experiments import live

        data = live.start(ops.store, ops.registry, model, variant_a, variant_b, traffic_split, metric,
                          min_samples_per_arm, alpha, mde, actor=r.actor())
        router().invalidate()
        msg = (
            f"A/B test {data['experiment_id']} running on '{model}': a = v{data['version_a']} ({variant_a}), "
            f"b = v{data['version_b']} ({variant_b}), {traffic_split:.0%} of keys to b. Predict with model='{model}' "
            "and request_keys; log feedback; read with get_ab_test."
        )
        return ABTestStarted(**data, message=msg)

    @r.tool(title="Read out a live A/B test", read_only=True)
    def get_ab_test(experiment_id: ExperimentId) -> ABTestReadout:
        """The statistics of a live A/B test so far, from its logged predictions joined to their
        feedback: per arm n (assigned, labeled), metric and standard error; the effect b - a with
        its confidence interval, absolute and relative; the classic p-value (valid for ONE
        pre-planned look) and the always-valid mSPRT p-value (its running minimum is stored, so it
        only falls; safe to check every day: it is the one used to call a winner); a sample-ratio
        mismatch check against traffic_split (flagged below p = 0.001: fix assignment before
        trusting anything; a sequential test, so daily reads do not raise false alarms); power reached
        and samples still needed for the MDE, sized for the always-valid rule; a recommendation
        (keep_running / b_wins / a_wins / no_difference / investigate_assignment) with reasons.
        A concluded test returns its final read-out.
        Example: get_ab_test(experiment_id=3).
        """
        from mlops_mcp.core.experiments import live

        return ABTestReadout(**_info(live.read_out(ops.store, experiment_id)))

    def _confirm_conclude(ctx: Context, experiment_id: int, promote_winner: bool, confirm: bool) -> Any:
        def question() -> str | None:
            from mlops_mcp.core.errors import MLOpsError
            from mlops_mcp.core.experiments import live

            try:
                plan = live.conclude_plan(ops.store, ops.registry, experiment_id, promote_winner)
            except MLOpsError:
                return None  # the tool itself reports the error; nothing to ask
            rd = plan["readout"]
            text = f"Stop A/B test {experiment_id} on '{rd['model']}' (recommendation: {rd['recommendation']})"
            if promote_winner:
                text += f" and move '{rd['model']}@champion' from version {plan['champion_from']} to version {plan['champion_to']}"
            return text + "? Traffic for the plain model name returns to the champion."

        return confirm_or_ask(ctx, confirm, question)

    @r.tool(title="Conclude a live A/B test", read_only=False, destructive=True)
    def conclude_ab_test(
        experiment_id: ExperimentId,
        ok: Annotated[ConfirmOutcome, Resolve(_confirm_conclude)],
        promote_winner: Annotated[bool, Field(description="also point 'champion' at the winning arm's version")] = False,
        reason: Annotated[str | None, Field(max_length=1000, description="why; kept with the test and the alias history")] = None,
        confirm: Annotated[bool, Field(description="set true to go ahead on clients without elicitation")] = False,
    ) -> ConcludeResult:
        """Stop a live A/B test: traffic for the plain model name goes back to the champion alone,
        and the final read-out (as get_ab_test) is stored with the test. With promote_winner=true
        the 'champion' alias also moves to the winner's version, but only if get_ab_test's
        recommendation is b_wins or a_wins (a decision on the always-valid p-value); otherwise it
        fails and changes nothing. Destructive: the server asks the user to confirm (elicitation)
        when the client supports it, otherwise it needs confirm=true; without either it answers
        what it WOULD do (concluded=false) and changes nothing. Concluding twice is an error.
        Example: conclude_ab_test(experiment_id=3, promote_winner=true, reason="b wins on accuracy", confirm=true).
        """
        from mlops_mcp.core.experiments import live

        go, why = outcome(ok)
        if not go:
            plan = live.conclude_plan(ops.store, ops.registry, experiment_id, promote_winner)
            rd = plan["readout"]
            would = f"stop A/B test {experiment_id} on '{rd['model']}'"
            if promote_winner:
                would += f" and move champion from version {plan['champion_from']} to version {plan['champion_to']}"
            return ConcludeResult(
                experiment_id=experiment_id, model=rd["model"], concluded=False, recommendation=rd["recommendation"],
                winner=plan["winner"], winner_version=plan["winner_version"], promoted=False,
                champion_from=plan["champion_from"], champion_to=plan["champion_to"], effect=rd["effect"],
                always_valid_p_value=rd["always_valid_p_value"], reasons=rd["reasons"],
                message=f"Nothing changed ({why}). Would {would}; call again with confirm=true.",
            )
        done = live.conclude(ops.store, ops.registry, experiment_id, promote_winner, reason, r.actor())
        router().invalidate()
        res, exp, move = done["result"], done["experiment"], done["alias_move"]
        msg = f"A/B test {experiment_id} on '{exp['model']}' concluded (recommendation: {res['recommendation']})"
        if res["winner"] is None:
            msg += "; no winner declared; champion unchanged"
        elif move is None:
            msg += f"; winner: {res['winner']} (version {res['winner_version']}); champion unchanged (promote_winner=false)"
        if move is not None:
            msg += f"; '{exp['model']}@champion' now points at version {move['to_version']} (was {move['from_version']})"
        return ConcludeResult(
            experiment_id=experiment_id, model=exp["model"], concluded=True, recommendation=res["recommendation"],
            winner=res["winner"], winner_version=res["winner_version"], promoted=bool(res["promoted"]),
            champion_from=None if move is None else move["from_version"], champion_to=None if move is None else move["to_version"],
            effect=res["effect"], always_valid_p_value=res["always_valid_p_value"], reasons=res["reasons"], message=msg,
        )

    @r.tool(title="Start a shadow deployment", read_only=False)
    def start_shadow(
        model: ModelName,
        variant: Variant = "challenger",
        sample_rate: Annotated[float, Field(gt=0, le=1, description="share of live requests the shadow also scores (1.0 = all)")] = 1.0,
    ) -> ShadowStarted:
        """Mirror live traffic of `model` to a shadow version without affecting anyone: for every
        predict on the plain model name (tool or HTTP route), a sample (`sample_rate`) of the rows is
        also scored by the shadow version in the background; its answers are logged in a separate
        table and never returned. The caller never waits for the shadow, and its errors or slowness
        never reach the caller. The shadow is pinned to the version `variant` points at now.
        One shadow per model. Compare with get_shadow_report; end with stop_shadow.
        Example: start_shadow(model="nba-win", variant="challenger", sample_rate=0.5).
        """
        from mlops_mcp.core.experiments import shadow

        data = shadow.start(ops.store, ops.registry, model, variant, sample_rate, actor=r.actor())
        router().invalidate()
        msg = (
            f"shadow {data['experiment_id']}: version {data['shadow_version']} ({variant}) now scores "
            f"{sample_rate:.0%} of '{model}' requests answered by the champion (v{data['champion_version']})"
        )
        return ShadowStarted(**data, message=msg)

    @r.tool(title="Shadow deployment report", read_only=True)
    def get_shadow_report(
        model: ModelName,
        experiment_id: Annotated[int | None, Field(ge=1, description="a past shadow (default: the running or latest one)")] = None,
    ) -> ShadowReport:
        """How the shadow version compares with the live answers on the same mirrored requests:
        agreement rate with a 95% Wilson interval and the distribution of score differences
        (classification), or the distribution of prediction differences shadow - primary (mean, sd,
        quantiles; regression); latency p50/p95 of both in ms; shadow errors (count + examples);
        and, where feedback labels exist, both accuracies (or rmse) with a paired test (McNemar /
        paired t). Waits up to 5 s for queued mirrored requests to be logged first.
        Example: get_shadow_report(model="nba-win").
        """
        from mlops_mcp.core.experiments import shadow

        rt = router()
        rt.drain(5.0)
        row = shadow.latest(ops.store, model, experiment_id)
        return ShadowReport(**shadow.report(ops.store, model, row.id, dropped=rt.dropped.get(row.id, 0)))

    @r.tool(title="Stop a shadow deployment", read_only=False)
    def stop_shadow(model: ModelName) -> ShadowInfo:
        """Stop mirroring live requests of `model` to its shadow version. The shadow's logged answers
        stay (get_shadow_report(model) still reports on them). Fails clearly when no shadow runs.
        Example: stop_shadow(model="nba-win").
        """
        from mlops_mcp.core.experiments import shadow

        data = shadow.stop(ops.store, model, actor=r.actor())
        router().invalidate()
        return ShadowInfo(**data)
