"""The live A/B read-out (``get_ab_test``): arms, effect, classic and always-valid p, SRM, power, recommendation."""

import math
from collections.abc import Sequence
from typing import Any, Literal

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.results import (
    ArmSummary,
    LiveSummary,
    Recommendation,
)
from mlops_mcp.core.experiments.stats.common import (
    MIN_SAMPLES_PER_ARM,
    _check_alpha,
    _check_positive,
    _ci_text,
    _fmt,
    _fmt_p,
    _z,
)
from mlops_mcp.core.experiments.stats.design import (
    required_sample_size,
    sequential_power,
    sequential_sample_size,
    srm_check,
)
from mlops_mcp.core.experiments.stats.sequential import (
    mixture_variance,
    msprt_confidence_interval,
    msprt_p_value,
)
from mlops_mcp.core.experiments.stats.two_sample import ArmData, compare_arms

# --------------------------------------------------------------------------------------------------
# live summary (get_ab_test)
# --------------------------------------------------------------------------------------------------


def _relative_effect(a: ArmData, b: ArmData, z: float) -> tuple[float | None, float | None, float | None]:
    """Lift (mean_b / mean_a - 1), delta-method interval on the log ratio; None unless both means > 0."""
    if a.mean <= 0 or b.mean <= 0:
        return None, None, None
    lift = b.mean / a.mean - 1.0
    se_log = math.sqrt(a.var_of_mean / a.mean**2 + b.var_of_mean / b.mean**2)
    log_r = math.log(b.mean / a.mean)
    return lift, math.exp(log_r - z * se_log) - 1.0, math.exp(log_r + z * se_log) - 1.0


def live_summary(
    arm_a: ArmData,
    arm_b: ArmData,
    expected_split: Sequence[float] = (0.5, 0.5),
    alpha: float = 0.05,
    mde: float | None = None,
    higher_is_better: bool = True,
    *,
    power: float = 0.8,
    tau2: float | None = None,
    previous_always_valid_p: float | None = None,
    min_samples_per_arm: int = MIN_SAMPLES_PER_ARM,
    srm_threshold: float = 0.001,
) -> LiveSummary:
    """Everything a live A/B read-out needs, with a recommendation and the reasons for it.

    ``arm_*`` hold per-arm outcomes (binary -> proportions and a two-proportion z-test; continuous
    -> means and Welch t). ``mde`` (required) is the minimum effect worth detecting, in absolute
    units of the outcome (e.g. 0.02 = two accuracy points): it tunes the always-valid test and
    sizes it, so no default can stand in for it. ``tau2`` defaults to :func:`mixture_variance` of
    mde (the mixture tuned to the sample where the rule has ``power`` for mde).
    ``previous_always_valid_p`` carries the running minimum between looks.

    Sizing (``required_n_*``, ``samples_needed_*``, ``power_reached``) is for the rule that decides,
    the always-valid p (``sizing = 'msprt_boundary'``: its boundary inverted at the look, see
    :func:`sequential_sample_size`); ``fixed_horizon_n_*`` is what one planned look with the classic
    test would need, for comparison. The sample-ratio check is the sequential multinomial test
    (:func:`srm_check`), valid at every look.

    Decision order: (1) sample-ratio mismatch -> ``investigate_assignment``; (2) fewer than
    ``min_samples_per_arm`` in an arm -> ``keep_running``; (3) always-valid p < alpha ->
    ``b_wins`` / ``a_wins`` by direction (never on the classic p-value, which 20 looks inflate to
    ~25% false positives); (4) ``no_difference`` when the always-valid interval lies inside
    (-mde, +mde), or the planned sample is reached and the classic interval (valid at that planned
    look) lies inside it; (5) else ``keep_running`` with the samples still needed.
    """
    alpha = _check_alpha(alpha)
    if mde is None:
        raise InvalidInput(
            "is required: the smallest difference worth detecting, in the outcome's units (e.g. 0.02 = two "
            "accuracy points); it tunes and sizes the always-valid test",
            argument="mde",
        )
    mde = _check_positive(mde, "mde")
    power = _check_alpha(power, "power")
    if arm_a.binary != arm_b.binary and arm_a.n and arm_b.n:
        raise InvalidInput(
            "both arms must hold the same kind of outcome (binary or continuous)", argument="arm_b"
        )
    split = [_check_positive(s, "expected_split") for s in expected_split]
    if len(split) != 2:
        raise InvalidInput(
            f"needs two shares (arm a, arm b), e.g. [0.5, 0.5]; got {len(split)}", argument="expected_split"
        )
    tau2_v = mixture_variance(mde, alpha, power) if tau2 is None else _check_positive(tau2, "tau2")
    # an empty arm cannot tell its kind (ArmData.from_values([]) is continuous): the other arm decides
    binary = arm_b.binary if arm_a.n == 0 else arm_a.binary
    kind: Literal["proportion", "mean"] = "proportion" if binary else "mean"
    z = _z(alpha)
    srm = srm_check([arm_a.n, arm_b.n], split, threshold=srm_threshold)
    summ_a = ArmSummary(
        n=arm_a.n,
        mean=arm_a.mean if arm_a.n else None,
        se=math.sqrt(arm_a.var_of_mean) if arm_a.n > 1 or (arm_a.binary and arm_a.n) else None,
    )
    summ_b = ArmSummary(
        n=arm_b.n,
        mean=arm_b.mean if arm_b.n else None,
        se=math.sqrt(arm_b.var_of_mean) if arm_b.n > 1 or (arm_b.binary and arm_b.n) else None,
    )
    ratio = split[1] / split[0]
    word = "higher" if higher_is_better else "lower"
    reasons: list[str] = []

    base: dict[str, Any] = dict(
        kind=kind,
        higher_is_better=higher_is_better,
        alpha=alpha,
        mde=mde,
        arm_a=summ_a,
        arm_b=summ_b,
        mixture_tau2=tau2_v,
        srm=srm,
        sizing="msprt_boundary",
    )
    if arm_a.n < 2 or arm_b.n < 2:
        rec: Recommendation = "investigate_assignment" if srm.mismatch else "keep_running"
        reasons.append(
            srm.reason
            if srm.mismatch
            else f"too little data: {arm_a.n} observations in a, {arm_b.n} in b (need at least 2 per arm "
            f"to estimate anything, {min_samples_per_arm} to decide)"
        )
        return LiveSummary(
            **base,
            diff=None,
            ci_low=None,
            ci_high=None,
            relative_effect=None,
            relative_ci_low=None,
            relative_ci_high=None,
            test=None,
            statistic=None,
            p_value=None,
            always_valid_p_value=previous_always_valid_p,
            always_valid_ci_low=None,
            always_valid_ci_high=None,
            power_reached=None,
            required_n_a=None,
            required_n_b=None,
            samples_needed_a=None,
            samples_needed_b=None,
            fixed_horizon_n_a=None,
            fixed_horizon_n_b=None,
            recommendation=rec,
            reasons=tuple(reasons),
        )

    classic = compare_arms(arm_a, arm_b, alpha)
    diff = float(arm_b.mean - arm_a.mean)
    var_diff = arm_a.var_of_mean + arm_b.var_of_mean
    av_p = float(msprt_p_value(diff, var_diff, tau2_v, previous_always_valid_p))
    av_lo, av_hi = msprt_confidence_interval(diff, var_diff, tau2_v, alpha)
    lift, lift_lo, lift_hi = _relative_effect(arm_a, arm_b, z)

    # power / sample size at the configured split
    baseline = arm_a.mean
    sd = math.sqrt((arm_a.var + arm_b.var) / 2.0) if kind == "mean" else None
    req_a = req_b = need_a = need_b = fixed_a = fixed_b = None
    power_reached: float | None = None
    if kind == "mean" and not sd:
        reasons_power = "sample size unknown: the outcome has zero variance so far"
    else:
        try:
            ss = sequential_sample_size(
                baseline, mde, alpha, power, kind=kind, sd=sd, ratio=ratio, tau2=tau2_v
            )
            req_a, req_b = ss.n_a, ss.n_b
            need_a, need_b = max(0, req_a - arm_a.n), max(0, req_b - arm_b.n)
            power_reached = sequential_power(
                arm_a.n, arm_b.n, baseline, mde, alpha, kind=kind, sd=sd, tau2=tau2_v
            )
            fixed = required_sample_size(baseline, mde, alpha, power, kind=kind, sd=sd, ratio=ratio)
            fixed_a, fixed_b = fixed.n_a, fixed.n_b
            reasons_power = ""
        except InvalidInput as exc:
            reasons_power = f"sample size unknown: {exc}"

    effect = (
        f"b - a = {diff:+.4g} ({_ci_text(classic.ci_low, classic.ci_high, alpha)}; always-valid "
        f"[{_fmt(av_lo)}, {_fmt(av_hi)}]; {word} is better)"
    )
    planned_reached = req_a is not None and need_a == 0 and need_b == 0
    av_inside = -mde < av_lo and av_hi < mde
    classic_inside = (
        classic.ci_low is not None
        and classic.ci_high is not None
        and -mde < classic.ci_low
        and classic.ci_high < mde
    )

    if srm.mismatch:
        rec = "investigate_assignment"
        reasons.append(srm.reason)
    elif min(arm_a.n, arm_b.n) < min_samples_per_arm:
        rec = "keep_running"
        reasons.append(
            f"too early: {arm_a.n} in a and {arm_b.n} in b; wait for at least {min_samples_per_arm} per arm "
            "before deciding"
        )
    elif av_p < alpha and diff != 0.0:
        b_wins = (diff > 0) == higher_is_better
        rec = "b_wins" if b_wins else "a_wins"
        reasons.append(
            f"{'b' if b_wins else 'a'} wins: always-valid {_fmt_p(av_p)}, below alpha = {alpha:g} "
            f"(mSPRT, safe under repeated looks); {effect}"
        )
    elif av_inside or (planned_reached and classic_inside):
        rec = "no_difference"
        why = (
            "the always-valid interval"
            if av_inside
            else f"the planned sample ({req_a} + {req_b}) is reached and the {1 - alpha:.0%} interval"
        )
        reasons.append(
            f"no difference worth having: {why} excludes effects of +/-{_fmt(mde)} (the MDE); {effect}"
        )
    else:
        rec = "keep_running"
        reasons.append(f"not decided yet: always-valid {_fmt_p(av_p)}, not below alpha = {alpha:g}; {effect}")
        if classic.p_value < alpha:
            reasons.append(
                f"the classic p-value ({_fmt_p(classic.p_value)}) is below alpha, but it holds only for a "
                "single pre-planned look; with repeated looks wait for the always-valid p-value"
            )
        if need_a is not None and need_b is not None and (need_a or need_b):
            more = max(need_a / split[0], need_b / split[1]) * sum(split) if (need_a or need_b) else 0
            reasons.append(
                f"about {need_a} more in a and {need_b} more in b (~{math.ceil(more)} more in total) for the "
                f"always-valid rule to reach {power:.0%} power for an effect of {_fmt(mde)} (sized on the rule "
                f"that decides; one planned look with the classic test would need {fixed_a} + {fixed_b}); "
                f"power now {power_reached:.0%}"
            )
        elif planned_reached:
            reasons.append(
                f"the planned sample is reached but the interval still includes effects of +/-{_fmt(mde)}; "
                "more data will narrow it"
            )
    if reasons_power:
        reasons.append(reasons_power)
    if not srm.mismatch:
        reasons.append(srm.reason)
    if classic.note:
        reasons.append(classic.note)

    return LiveSummary(
        **base,
        diff=diff,
        ci_low=classic.ci_low,
        ci_high=classic.ci_high,
        relative_effect=lift,
        relative_ci_low=lift_lo,
        relative_ci_high=lift_hi,
        test=classic.test,
        statistic=classic.statistic,
        p_value=classic.p_value,
        always_valid_p_value=av_p,
        always_valid_ci_low=av_lo,
        always_valid_ci_high=av_hi,
        power_reached=power_reached,
        required_n_a=req_a,
        required_n_b=req_b,
        samples_needed_a=need_a,
        samples_needed_b=need_b,
        fixed_horizon_n_a=fixed_a,
        fixed_horizon_n_b=fixed_b,
        recommendation=rec,
        reasons=tuple(reasons),
    )
