"""Test design and health: sample-ratio mismatch, required sample size and achieved power."""

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
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

# --------------------------------------------------------------------------------------------------
# sample ratio mismatch, power
# --------------------------------------------------------------------------------------------------


def srm_check(counts: Sequence[int], expected_shares: Sequence[float], threshold: float = 0.001) -> SRMResult:
    """Sample-ratio-mismatch: chi-square goodness of fit of arm counts against the configured split.

    A mismatch means assignment or logging is broken (bots, a crashing variant, a redirect that
    drops users), which biases every comparison, so it is checked before any effect. The
    threshold is strict (0.001, the usual industry choice) because the check runs at every look
    and a false alarm halts a healthy test. ``expected_shares`` may be weights (e.g. 90, 10); they
    are normalised.
    """
    threshold = _check_alpha(threshold, "threshold")
    obs = [_check_count(c, "counts") for c in counts]
    shares = [_check_positive(s, "expected_shares") for s in expected_shares]
    if len(obs) < 2 or len(obs) != len(shares):
        raise InvalidInput(
            f"need one expected share per arm and at least two arms; got {len(obs)} counts and "
            f"{len(shares)} shares",
            argument="expected_shares",
        )
    total_share = sum(shares)
    shares = [s / total_share for s in shares]
    total = sum(obs)
    k = len(obs)
    if total == 0:
        return SRMResult(
            counts=tuple(obs),
            expected_shares=tuple(shares),
            observed_shares=tuple(0.0 for _ in obs),
            expected_counts=tuple(0.0 for _ in obs),
            statistic=0.0,
            df=k - 1,
            p_value=1.0,
            threshold=threshold,
            mismatch=False,
            reason="no assignments yet: nothing to check",
        )
    expected = [total * s for s in shares]
    stat = float(sum((o - e) ** 2 / e for o, e in zip(obs, expected, strict=True)))
    p = float(sps.chi2.sf(stat, k - 1))
    observed_shares = tuple(o / total for o in obs)
    shares_txt = ", ".join(f"{o:.1%}" for o in observed_shares)
    want_txt = ", ".join(f"{s:.1%}" for s in shares)
    if p < threshold:
        reason = (
            f"sample ratio mismatch: observed split {shares_txt} vs configured {want_txt} "
            f"(chi-square = {_fmt(stat)}, {_fmt_p(p)}, below {threshold:g}); check assignment and logging "
            "before trusting any effect"
        )
    else:
        reason = f"split is consistent with the configuration ({shares_txt} vs {want_txt}; {_fmt_p(p)})"
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
    )


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
