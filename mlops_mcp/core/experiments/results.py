"""Result types of :mod:`mlops_mcp.core.experiments.stats`.

Frozen dataclasses, so a result cannot be edited after the fact and can be logged or cached safely.
Each has ``to_dict()`` giving plain JSON-ready Python (numpy scalars become floats/ints, non-finite
floats become ``None``), because the MCP layer returns them as structured tool output.

Convention everywhere: arm/variant ``a`` is the incumbent (champion, control) and ``b`` the
challenger; every difference is ``b - a`` in the metric's own units.
"""

from dataclasses import dataclass, fields
from typing import Any, Literal

from mlops_mcp.core.values import plain

Verdict = Literal["a_better", "b_better", "no_significant_difference"]
Recommendation = Literal["keep_running", "b_wins", "a_wins", "no_difference", "investigate_assignment"]


class _ToDict:
    """Mixin: ``to_dict()`` for the dataclasses below."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict of every field (nested results included)."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class TestResult(_ToDict):
    """Outcome of one two-sample/paired test.

    ``test`` names the exact procedure (e.g. ``mcnemar_mid_p``, ``mcnemar_exact``, ``mcnemar_chi2_cc``, ``delong``,
    ``paired_t``, ``paired_bootstrap``, ``two_proportion_z``, ``welch_t``), so a report can say
    which one ran. ``value_a``/``value_b`` are the per-side estimates (accuracy, AUC, mean loss,
    proportion), ``diff = value_b - value_a`` with its two-sided ``1 - alpha`` interval.
    ``note`` explains degenerate cases (no discordant pairs, zero variance, ...).
    """

    __test__ = False  # not a pytest test class, despite the name

    test: str
    p_value: float
    n: int
    statistic: float | None = None
    df: float | None = None
    value_a: float | None = None
    value_b: float | None = None
    diff: float | None = None
    se: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    alpha: float = 0.05
    only_a_correct: int | None = None
    only_b_correct: int | None = None
    n_boot: int | None = None
    note: str = ""

    @property
    def ci(self) -> tuple[float | None, float | None]:
        """The confidence interval of ``diff`` as a pair."""
        return (self.ci_low, self.ci_high)

    @property
    def auc_a(self) -> float | None:
        """DeLong naming: AUC of variant a (same as ``value_a``)."""
        return self.value_a

    @property
    def auc_b(self) -> float | None:
        """DeLong naming: AUC of variant b (same as ``value_b``)."""
        return self.value_b

    @property
    def discordant(self) -> int | None:
        """McNemar: rows where exactly one variant is right."""
        if self.only_a_correct is None or self.only_b_correct is None:
            return None
        return self.only_a_correct + self.only_b_correct


@dataclass(frozen=True)
class OfflineComparison(_ToDict):
    """Head-to-head of two variants on the same labeled rows (``run_ab_test``)."""

    metric: str
    higher_is_better: bool
    metric_a: float
    metric_b: float
    diff: float
    ci_low: float | None
    ci_high: float | None
    p_value: float
    test: str
    n: int
    alpha: float
    verdict: Verdict
    reason: str
    detail: TestResult


@dataclass(frozen=True)
class SRMResult(_ToDict):
    """Sample-ratio-mismatch check: are arm counts consistent with the configured split?"""

    counts: tuple[int, ...]
    expected_shares: tuple[float, ...]
    observed_shares: tuple[float, ...]
    expected_counts: tuple[float, ...]
    statistic: float
    df: int
    p_value: float
    threshold: float
    mismatch: bool
    reason: str
    #: ``sequential_multinomial`` (always-valid: ``p_value`` may be checked at every look; ``statistic``
    #: is the log Bayes factor) or ``chi2`` (one planned look; ``statistic`` is chi-square)
    test: str = "chi2"


@dataclass(frozen=True)
class SampleSize(_ToDict):
    """Per-arm sample size a two-sided test needs to detect ``mde`` with ``power``.

    ``method`` says which test: ``fixed_horizon`` (the classic test at one planned look) or
    ``msprt`` (the always-valid mSPRT rule with mixing variance ``mixture_tau2``, its boundary
    inverted at the planned look: a lower bound on its power, since more looks only add chances).
    """

    n_a: int
    n_b: int
    total: int
    kind: Literal["proportion", "mean"]
    baseline: float
    mde: float
    alpha: float
    power: float
    sd: float | None
    ratio: float
    method: Literal["fixed_horizon", "msprt"] = "fixed_horizon"
    mixture_tau2: float | None = None


@dataclass(frozen=True)
class ArmSummary(_ToDict):
    """One arm of a live test: size, metric (mean outcome) and its standard error."""

    n: int
    mean: float | None
    se: float | None


@dataclass(frozen=True)
class LiveSummary(_ToDict):
    """Everything ``get_ab_test`` reports about a running test, plus a recommendation with reasons.

    Classic quantities (``p_value``, ``ci_*``) are valid for one look at a pre-planned sample size;
    the ``always_valid_*`` ones stay valid however often the test is looked at, and only they are
    used to declare a winner. So the sizing is for that rule too (``sizing = 'msprt_boundary'``):
    ``required_n_*`` / ``samples_needed_*`` / ``power_reached`` come from inverting the mSPRT
    boundary; ``fixed_horizon_n_*`` is what one planned look of the classic test would need.
    """

    kind: Literal["proportion", "mean"]
    higher_is_better: bool
    alpha: float
    mde: float
    arm_a: ArmSummary
    arm_b: ArmSummary
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    relative_effect: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    test: str | None
    statistic: float | None
    p_value: float | None
    always_valid_p_value: float | None
    always_valid_ci_low: float | None
    always_valid_ci_high: float | None
    mixture_tau2: float
    srm: SRMResult
    power_reached: float | None
    required_n_a: int | None
    required_n_b: int | None
    samples_needed_a: int | None
    samples_needed_b: int | None
    fixed_horizon_n_a: int | None
    fixed_horizon_n_b: int | None
    recommendation: Recommendation
    reasons: tuple[str, ...]
    sizing: Literal["msprt_boundary"] = "msprt_boundary"


@dataclass(frozen=True)
class ShadowSummary(_ToDict):
    """Primary vs shadow on mirrored requests (``get_shadow_report``)."""

    task: Literal["classification", "regression"]
    n: int
    alpha: float
    # classification
    agreement_rate: float | None = None
    agreement_ci_low: float | None = None
    agreement_ci_high: float | None = None
    # regression: shadow - primary
    diff_mean: float | None = None
    diff_sd: float | None = None
    abs_diff_mean: float | None = None
    diff_quantiles: dict[str, float] | None = None
    abs_diff_max: float | None = None
    # latency (milliseconds)
    latency_primary_p50: float | None = None
    latency_primary_p95: float | None = None
    latency_shadow_p50: float | None = None
    latency_shadow_p95: float | None = None
    # where labels exist
    n_labeled: int = 0
    metric: str | None = None
    metric_primary: float | None = None
    metric_shadow: float | None = None
    labeled_test: TestResult | None = None
    notes: tuple[str, ...] = ()
