"""Test design and health: sample-ratio mismatch (sequential or chi-square), sample size and power
(fixed-horizon and for the always-valid mSPRT rule)."""

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.results import (
    SampleSize,
    SRMResult,
)
from mlops_mcp.core.experiments.stats.common import (
    _check_alpha,
    _check_count,
    _check_positive,
    _fmt,
    _fmt_p,
    _z,
)
from mlops_mcp.core.experiments.stats.sequential import mixture_variance, msprt_boundary

# --------------------------------------------------------------------------------------------------
# sample ratio mismatch, power
# --------------------------------------------------------------------------------------------------


#: Dirichlet prior of the sequential SRM test: alpha_i = SRM_CONCENTRATION * expected share_i. Like the
#: mSPRT's mixing variance it only moves power, never the false-alarm bound; 300 puts the test's
#: sharpest point near 5,000 assignments (prior sd of a 50/50 share about 2.9 points), where a
#: 47/53 split starts to be caught, and it loses little from 1,000 to 30,000.
SRM_CONCENTRATION = 300.0

SRMMethod = Literal["sequential", "chi2"]


def srm_check(
    counts: Sequence[int],
    expected_shares: Sequence[float],
    threshold: float = 0.001,
    *,
    method: SRMMethod = "sequential",
    concentration: float = SRM_CONCENTRATION,
    previous_p: float | None = None,
) -> SRMResult:
    """Sample-ratio-mismatch: are arm counts consistent with the configured split?

    A mismatch means assignment or logging is broken (bots, a crashing variant, a redirect that
    drops users), which biases every comparison, so it is checked before any effect. It is checked
    at every look, so by default (``method='sequential'``) it is an always-valid test: Lindon and
    Malek's sequential multinomial test ("Anytime-valid inference for multinomial count data",
    NeurIPS 2022), the Bayes factor of a Dirichlet-multinomial mixture (prior
    ``concentration * expected_shares``) against the configured shares. That Bayes factor is a
    nonnegative martingale under H0 and depends on the counts only, so by Ville's inequality
    p = min(1, 1/BF) stays above ``threshold`` at *every* look with probability >= 1 - threshold,
    however often the test is read (a chi-square repeated 20 times at 0.001 false-alarms about 8
    times as often). ``previous_p`` carries a running minimum between looks (equally valid).
    ``method='chi2'`` is the classic Pearson goodness-of-fit test, valid for one planned look.
    The threshold is strict (0.001, the usual industry choice) because a false alarm halts a
    healthy test. ``expected_shares`` may be weights (e.g. 90, 10); they are normalised.
    """
    threshold = _check_alpha(threshold, "threshold")
    if method not in ("sequential", "chi2"):
        raise InvalidInput(f"must be 'sequential' or 'chi2'; got {method!r}", argument="method")
    concentration = _check_positive(concentration, "concentration")
    obs = [_check_count(c, "counts") for c in counts]
    shares = [_check_positive(s, "expected_shares") for s in expected_shares]
    if len(obs) < 2 or len(obs) != len(shares):
        raise InvalidInput(
            f"need one expected share per arm and at least two arms; got {len(obs)} counts and "
            f"{len(shares)} shares",
            argument="expected_shares",
        )
    if previous_p is not None:
        prev = float(previous_p)
        if not (0.0 <= prev <= 1.0):
            raise InvalidInput(f"must be a p-value in [0, 1] from the previous look; got {previous_p!r}",
                               argument="previous_p")
    total_share = sum(shares)
    shares = [s / total_share for s in shares]
    total = sum(obs)
    k = len(obs)
    test = "sequential_multinomial" if method == "sequential" else "chi2"
    if total == 0:
        return SRMResult(
            counts=tuple(obs),
            expected_shares=tuple(shares),
            observed_shares=tuple(0.0 for _ in obs),
            expected_counts=tuple(0.0 for _ in obs),
            statistic=0.0,
            df=k - 1,
            p_value=1.0 if previous_p is None else float(previous_p),
            threshold=threshold,
            mismatch=previous_p is not None and float(previous_p) < threshold,
            reason="no assignments yet: nothing to check",
            test=test,
        )
    expected = [total * s for s in shares]
    if method == "sequential":
        stat = float(srm_log_bayes_factor(obs, shares, concentration))
        p = 1.0 if stat <= 0 else math.exp(-stat)
        if previous_p is not None:
            p = min(p, float(previous_p))
        how = "sequential multinomial test, always-valid"
        what = f"log Bayes factor = {_fmt(stat)}"
    else:
        stat = float(sum((o - e) ** 2 / e for o, e in zip(obs, expected, strict=True)))
        p = float(sps.chi2.sf(stat, k - 1))
        how = "chi-square, one planned look"
        what = f"chi-square = {_fmt(stat)}"
    observed_shares = tuple(o / total for o in obs)
    shares_txt = ", ".join(f"{o:.1%}" for o in observed_shares)
    want_txt = ", ".join(f"{s:.1%}" for s in shares)
    if p < threshold:
        reason = (
            f"sample ratio mismatch: observed split {shares_txt} vs configured {want_txt} "
            f"({how}: {what}, {_fmt_p(p)}, below {threshold:g}); check assignment and logging "
            "before trusting any effect"
        )
    else:
        reason = f"split is consistent with the configuration ({shares_txt} vs {want_txt}; {how} {_fmt_p(p)})"
    return SRMResult(
        counts=tuple(obs),
        expected_shares=tuple(shares),
        observed_shares=observed_shares,
        expected_counts=tuple(expected),
        statistic=stat,
        df=k - 1,
        p_value=p,
        threshold=threshold,
        mismatch=p < threshold,
        reason=reason,
        test=test,
    )


def srm_log_bayes_factor(
    counts: ArrayLike, shares: Sequence[float], concentration: float = SRM_CONCENTRATION
) -> Any:
    """log Bayes factor of the sequential SRM test: Dirichlet-multinomial over multinomial at ``shares``.

    The multinomial coefficient cancels, so only the counts matter (not their order):
    log Gamma(A) - log Gamma(A + n) + sum_i [log Gamma(a_i + x_i) - log Gamma(a_i) - x_i log theta_i],
    a_i = concentration * theta_i, A = sum a_i. ``counts`` has the arms on its last axis (many
    looks or tests at once); ``shares`` are normalised. No input checks: :func:`srm_check` is the
    checked entry point.
    """
    from scipy.special import gammaln

    x = np.asarray(counts, dtype=float)
    theta = np.asarray(shares, dtype=float)
    theta = theta / theta.sum()
    a = concentration * theta
    n = x.sum(axis=-1)
    value = (
        gammaln(a.sum()) - gammaln(a.sum() + n)
        + np.sum(gammaln(a + x) - gammaln(a), axis=-1)
        - np.sum(x * np.log(theta), axis=-1)
    )
    return float(value) if np.ndim(value) == 0 else value


def _alt_proportion(baseline: float, mde: float) -> float:
    """p_b under the alternative: baseline + mde, or baseline - mde when that would leave [0, 1]."""
    up = baseline + mde
    if up <= 1.0:
        return up
    down = baseline - mde
    if down < 0.0:
        raise InvalidInput(
            f"baseline +/- mde must stay within [0, 1]; got baseline {baseline}, mde {mde}", argument="mde"
        )
    return down


def _power_inputs(
    baseline: float, mde: float, alpha: float, kind: str, sd: float | None
) -> tuple[float, float, float | None]:
    alpha = _check_alpha(alpha)
    mde = abs(_check_nonzero(mde, "mde"))
    if kind not in ("proportion", "mean"):
        raise InvalidInput(f"must be 'proportion' or 'mean'; got {kind!r}", argument="kind")
    if kind == "proportion":
        b = float(baseline)
        if not (0.0 <= b <= 1.0):
            raise InvalidInput(
                f"a proportion baseline must lie in [0, 1]; got {baseline}", argument="baseline"
            )
        return alpha, mde, None
    if sd is None:
        raise InvalidInput(
            "is required for kind='mean' (standard deviation of one observation)", argument="sd"
        )
    return alpha, mde, _check_positive(sd, "sd")


def _check_nonzero(value: float, argument: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or float(value) == 0.0
    ):
        raise InvalidInput(f"must be a finite non-zero number; got {value!r}", argument=argument)
    return float(value)


def required_sample_size(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    kind: Literal["proportion", "mean"] = "proportion",
    sd: float | None = None,
    ratio: float = 1.0,
) -> SampleSize:
    """Per-arm sample size for a two-sided fixed-horizon test to detect ``mde`` with ``power``.

    ``kind='proportion'``: baseline is p_a, the alternative p_b = baseline + |mde| (or minus, if
    that leaves [0, 1]); the formula uses the pooled variance under H0 and the unpooled one under
    H1, matching the two-proportion z-test actually run (statsmodels
    ``samplesize_proportions_2indep_onetail``). ``kind='mean'``: ``sd`` is the per-observation
    standard deviation, n_a = (z_{1-alpha/2} + z_power)^2 sd^2 (1 + 1/ratio) / mde^2 (as
    statsmodels ``NormalIndPower``). ``ratio`` = n_b / n_a. The far tail is ignored (negligible).
    """
    alpha, mde_abs, sd_v = _power_inputs(baseline, mde, alpha, kind, sd)
    power = _check_alpha(power, "power")
    r = _check_positive(ratio, "ratio")
    za, zb = _z(alpha), float(sps.norm.ppf(power))
    if kind == "proportion":
        pa = float(baseline)
        pb = _alt_proportion(pa, mde_abs)
        pbar = (pa + r * pb) / (1.0 + r)
        sd_null = math.sqrt(pbar * (1.0 - pbar) * (1.0 + 1.0 / r))
        sd_alt = math.sqrt(pa * (1.0 - pa) + pb * (1.0 - pb) / r)
    else:
        assert sd_v is not None
        sd_null = sd_alt = sd_v * math.sqrt(1.0 + 1.0 / r)
    raw = (max(za * sd_null + zb * sd_alt, 0.0) / mde_abs) ** 2
    n_a = max(2, math.ceil(raw - 1e-9))
    n_b = max(2, math.ceil(r * n_a - 1e-9))
    return SampleSize(
        n_a=n_a,
        n_b=n_b,
        total=n_a + n_b,
        kind=kind,
        baseline=float(baseline),
        mde=mde_abs,
        alpha=alpha,
        power=power,
        sd=sd_v,
        ratio=r,
    )


def achieved_power(
    n_a: int,
    n_b: int,
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    kind: Literal["proportion", "mean"] = "proportion",
    sd: float | None = None,
) -> float:
    """Power of the two-sided fixed-horizon test at the current sizes to detect a true difference of ``mde``.

    Same variance model as :func:`required_sample_size`, both rejection tails included.
    """
    alpha, mde_abs, sd_v = _power_inputs(baseline, mde, alpha, kind, sd)
    na, nb = _check_count(n_a, "n_a"), _check_count(n_b, "n_b")
    if na == 0 or nb == 0:
        return 0.0
    z = _z(alpha)
    if kind == "proportion":
        pa = float(baseline)
        pb = _alt_proportion(pa, mde_abs)
        pbar = (na * pa + nb * pb) / (na + nb)
        se0 = math.sqrt(pbar * (1.0 - pbar) * (1.0 / na + 1.0 / nb))
        se1 = math.sqrt(pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb)
        if se1 == 0.0:
            return 1.0
    else:
        assert sd_v is not None
        se0 = se1 = sd_v * math.sqrt(1.0 / na + 1.0 / nb)
    pw = sps.norm.cdf((mde_abs - z * se0) / se1) + sps.norm.cdf((-mde_abs - z * se0) / se1)
    return float(min(1.0, pw))


def _alt_variances(
    baseline: float, mde_abs: float, kind: str, sd: float | None
) -> tuple[float, float]:
    """Per-observation variance of arm a and arm b when the true difference is ``mde``."""
    if kind == "proportion":
        pa = float(baseline)
        pb = _alt_proportion(pa, mde_abs)
        return pa * (1.0 - pa), pb * (1.0 - pb)
    assert sd is not None
    return sd * sd, sd * sd


def _msprt_power(
    var_a: float, var_b: float, n_a: float, n_b: float, mde_abs: float, tau2: float, alpha: float
) -> float:
    v = var_a / n_a + var_b / n_b
    if v <= 0.0:
        return 0.0  # no variance: the mSPRT p-value stays 1 (see msprt_p_value)
    b = msprt_boundary(v, tau2, alpha)
    s = math.sqrt(v)
    return float(min(1.0, sps.norm.cdf((mde_abs - b) / s) + sps.norm.cdf((-mde_abs - b) / s)))


def sequential_power(
    n_a: int,
    n_b: int,
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    kind: Literal["proportion", "mean"] = "proportion",
    sd: float | None = None,
    tau2: float | None = None,
) -> float:
    """Power of the always-valid mSPRT rule at the current sizes to detect a true difference of ``mde``.

    The rule rejects when |b - a| crosses the boundary :func:`msprt_boundary` (the p-value falls
    below alpha), so its power at a look is P(|d| > boundary) with d ~ N(mde, V) and V the
    variance under the alternative (the plug-in variance the p-value uses). This is the power of a
    look at exactly these sizes; earlier looks only add chances to cross, so it is a lower bound on
    having called a winner by now. ``tau2`` defaults to :func:`mixture_variance` of ``mde``.
    """
    alpha, mde_abs, sd_v = _power_inputs(baseline, mde, alpha, kind, sd)
    na, nb = _check_count(n_a, "n_a"), _check_count(n_b, "n_b")
    t2 = mixture_variance(mde_abs, alpha) if tau2 is None else _check_positive(tau2, "tau2")
    if na == 0 or nb == 0:
        return 0.0
    va, vb = _alt_variances(baseline, mde_abs, kind, sd_v)
    return _msprt_power(va, vb, na, nb, mde_abs, t2, alpha)


#: Largest per-arm size the sequential sizing searches (beyond it the effect is not worth a live test).
MAX_SEQUENTIAL_N = 10**12


def sequential_sample_size(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    kind: Literal["proportion", "mean"] = "proportion",
    sd: float | None = None,
    ratio: float = 1.0,
    tau2: float | None = None,
) -> SampleSize:
    """Per-arm sample size at which the always-valid mSPRT rule has ``power`` to detect ``mde``.

    Sizing the rule that actually decides: the mSPRT boundary is inverted (see
    :func:`sequential_power`) and the smallest n_a with that power is found by bisection, n_b =
    ratio * n_a. With the default mixture (:func:`mixture_variance`, tuned to this very look) it is
    about 1.9 times the fixed-horizon size at alpha = 0.05 and 80% power ((3.04 + 0.84)^2 /
    (1.96 + 0.84)^2). Same variance model as :func:`required_sample_size`.
    """
    alpha, mde_abs, sd_v = _power_inputs(baseline, mde, alpha, kind, sd)
    power = _check_alpha(power, "power")
    r = _check_positive(ratio, "ratio")
    t2 = mixture_variance(mde_abs, alpha, power) if tau2 is None else _check_positive(tau2, "tau2")
    va, vb = _alt_variances(baseline, mde_abs, kind, sd_v)
    if va + vb <= 0.0:
        raise InvalidInput(
            f"baseline {baseline} and mde {mde_abs} leave no variance in either arm: nothing to size",
            argument="mde",
        )

    def pw(n_a: int) -> float:
        return _msprt_power(va, vb, float(n_a), r * n_a, mde_abs, t2, alpha)

    lo, hi = 1, 2
    while pw(hi) < power:
        lo, hi = hi, hi * 2
        if hi > MAX_SEQUENTIAL_N:
            raise InvalidInput(
                f"an effect of {mde_abs:g} needs more than {MAX_SEQUENTIAL_N:.0e} observations per arm; "
                "choose a larger mde",
                argument="mde",
            )
    while hi - lo > 1:  # smallest n_a with power >= target (power rises with n over this range)
        mid = (lo + hi) // 2
        if pw(mid) >= power:
            hi = mid
        else:
            lo = mid
    n_a = max(2, hi)
    n_b = max(2, math.ceil(r * n_a - 1e-9))
    return SampleSize(
        n_a=n_a,
        n_b=n_b,
        total=n_a + n_b,
        kind=kind,
        baseline=float(baseline),
        mde=mde_abs,
        alpha=alpha,
        power=power,
        sd=sd_v,
        ratio=r,
        method="msprt",
        mixture_tau2=t2,
    )
