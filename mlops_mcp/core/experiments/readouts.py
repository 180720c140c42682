"""Typed results of the experiment tools: offline head-to-head, live A/B tests and shadows.

Convention everywhere: variant/arm ``a`` is the incumbent (default: the champion), ``b`` the
challenger; every difference is ``b - a`` in the metric's own units.
"""

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, Field

from mlops_mcp.core.experiments.results import Recommendation
from mlops_mcp.core.results import Result


class OfflineVariant(Result):
    variant: str = Field(description="as given: alias or version")
    version: int = Field(description="the version it pointed at")
    metric: float = Field(description="the metric of this variant on the dataset")


class Discordant(Result):
    only_a_correct: int
    only_b_correct: int


class TrainingOverlap(Result):
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


class TrainingOverlaps(Result):
    a: TrainingOverlap
    b: TrainingOverlap


class OfflineABResult(Result):
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

    def describe(self) -> str:
        a, b = self.variant_a, self.variant_b
        ci = "" if self.ci_low is None else f" [{self.ci_low:+.4g}, {self.ci_high:+.4g}]"
        return (
            f"{self.metric} on {self.dataset} ({self.n:,} rows): {a.variant} (v{a.version}) {a.metric:.4g} vs "
            f"{b.variant} (v{b.version}) {b.metric:.4g}; b - a = {self.diff:+.4g}{ci}; {self.test} p = {self.p_value:.3g}.\n"
            f"Verdict: {self.reason}"
        )


class ABTestInfo(Result):
    experiment_id: int
    model: str
    kind: Literal["ab"] = "ab"
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

    def describe(self) -> str:
        return self.message


class ArmReadout(Result):
    variant: str | None
    version: int | None
    n_assigned: int = Field(description="predictions routed to this arm")
    n_labeled: int = Field(description="of which have feedback (the outcomes measured)")
    metric: float | None = Field(description="mean outcome: accuracy, or mean loss")
    se: float | None = Field(description="standard error of `metric`")


class Effect(Result):
    diff: float | None = Field(description="metric_b - metric_a")
    ci_low: float | None = Field(description="classic (1 - alpha) interval of diff, valid for one planned look")
    ci_high: float | None
    relative: float | None = Field(description="metric_b / metric_a - 1")
    relative_ci_low: float | None
    relative_ci_high: float | None


class SRMCheck(Result):
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


class PowerInfo(Result):
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

    def describe(self) -> str:
        a, b = self.arm_a, self.arm_b
        fmt = lambda v: "n/a" if v is None else f"{v:.4g}"  # noqa: E731
        lines = [
            f"A/B test {self.experiment_id} on '{self.model}' ({self.status}): a = v{self.version_a} "
            f"{self.metric or ''} {fmt(a.metric)} ({a.n_labeled:,}/{a.n_assigned:,} labeled), b = v{self.version_b} "
            f"{fmt(b.metric)} ({b.n_labeled:,}/{b.n_assigned:,} labeled).",
            f"b - a = {fmt(self.effect.diff)}; always-valid p = {fmt(self.always_valid_p_value)} (the one that decides); "
            f"classic p = {fmt(self.p_value)} (one planned look only).",
            f"Recommendation: {self.recommendation}.",
            *[f"- {r}" for r in self.reasons[:4]],
        ]
        if self.srm.mismatch:
            lines.append(f"Sample-ratio mismatch: {self.srm.reason}")
        return "\n".join(lines)


class ConcludeResult(Result):
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

    def describe(self) -> str:
        return self.message


class ShadowInfo(Result):
    experiment_id: int
    model: str
    kind: Literal["shadow"] = "shadow"
    status: Literal["running", "stopped"]
    variant: str
    shadow_version: int = Field(description="pinned when the shadow started")
    sample_rate: float = Field(description="share of live requests mirrored")
    started_at: datetime
    ended_at: datetime | None

    def describe(self) -> str:
        if self.status != "running":
            return (
                f"Shadow {self.experiment_id} of '{self.model}' stopped: version {self.shadow_version} ({self.variant}) "
                f"no longer scores live requests; its logged answers stay (get_shadow_report)."
            )
        return (
            f"Shadow {self.experiment_id} of '{self.model}' (running): version {self.shadow_version} "
            f"({self.variant}) scores {self.sample_rate:.0%} of live requests."
        )


class ShadowStarted(ShadowInfo):
    champion_version: int
    message: str

    def describe(self) -> str:
        return self.message


class ScoreDiff(Result):
    mean: float
    abs_mean: float
    p05: float
    p50: float
    p95: float
    abs_max: float


class LabeledTest(Result):
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
    latency_primary_p50_ms: float | None = Field(validation_alias=AliasChoices("latency_primary_p50_ms", "latency_primary_p50"), description="ms, of the batch each mirrored row came in")
    latency_primary_p95_ms: float | None = Field(validation_alias=AliasChoices("latency_primary_p95_ms", "latency_primary_p95"), description="ms")
    latency_shadow_p50_ms: float | None = Field(validation_alias=AliasChoices("latency_shadow_p50_ms", "latency_shadow_p50"), description="ms, shadow scoring of the mirrored batch (off the request path)")
    latency_shadow_p95_ms: float | None = Field(validation_alias=AliasChoices("latency_shadow_p95_ms", "latency_shadow_p95"), description="ms")
    n_labeled: int = Field(description="compared rows with feedback")
    metric: str | None
    metric_primary: float | None
    metric_shadow: float | None
    labeled_test: LabeledTest | None = Field(description="paired test on labeled rows: McNemar (accuracy), paired t (rmse)")
    notes: list[str]

    def describe(self) -> str:
        fmt = lambda v, d=3: "n/a" if v is None else f"{v:.{d}g}"  # noqa: E731
        lines = [
            f"Shadow {self.experiment_id} of '{self.model}' ({self.status}): v{self.shadow_version} compared on "
            f"{self.compared:,} of {self.mirrored:,} mirrored rows; {self.shadow_errors} error(s)."
        ]
        if self.agreement_rate is not None:
            lines.append(
                f"Agreement {self.agreement_rate:.1%} [{fmt(self.agreement_ci_low)}, {fmt(self.agreement_ci_high)}]."
            )
        if self.diff_mean is not None:
            lines.append(f"Shadow - primary: mean {fmt(self.diff_mean)}, sd {fmt(self.diff_sd)}.")
        lines.append(
            f"Latency p50/p95: primary {fmt(self.latency_primary_p50_ms)}/{fmt(self.latency_primary_p95_ms)} ms, "
            f"shadow {fmt(self.latency_shadow_p50_ms)}/{fmt(self.latency_shadow_p95_ms)} ms."
        )
        if self.labeled_test is not None:
            lines.append(
                f"On {self.n_labeled:,} labeled rows: {self.metric} primary {fmt(self.metric_primary, 4)} vs shadow "
                f"{fmt(self.metric_shadow, 4)}; {self.labeled_test.test} p = {fmt(self.labeled_test.p_value)}."
            )
        lines.extend(self.notes[:3])
        return "\n".join(lines)


class ExperimentSummary(Result):
    """One A/B test or shadow: configuration and state, no statistics."""

    experiment_id: int
    model: str
    kind: Literal["ab", "shadow"]
    status: str
    task: str | None = None
    started_at: datetime
    started_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None
    reason: str | None = None
    variant_a: str | None = None
    version_a: int | None = None
    variant_b: str | None = None
    version_b: int | None = None
    traffic_split: float | None = None
    metric: str | None = None
    variant: str | None = Field(default=None, description="shadow: the variant it scores")
    shadow_version: int | None = None
    sample_rate: float | None = None


class ExperimentList(Result):
    experiments: list[ExperimentSummary] = Field(description="newest first")
    count: int

    def describe(self) -> str:
        lines = [f"{self.count} experiment(s), newest first:"]
        for e in self.experiments[:30]:
            what = (
                f"A/B v{e.version_a} vs v{e.version_b}, {e.traffic_split:.0%} to b" if e.kind == "ab"
                else f"shadow v{e.shadow_version} at {e.sample_rate:.0%}"
            )
            lines.append(f"- #{e.experiment_id} {e.model}: {what} ({e.status}, since {e.started_at:%Y-%m-%d})")
        return "\n".join(lines)


#: per-request outcomes a live A/B test can compare
LiveMetric = Literal["accuracy", "log_loss", "mae", "mse"]
