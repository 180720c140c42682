"""Always-valid inference: the mixture SPRT (Johari, Koomen, Pekelis & Walsh) p-value and interval."""

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.stats.common import _check_alpha, _check_positive

# --------------------------------------------------------------------------------------------------
# always-valid inference (mSPRT)
# --------------------------------------------------------------------------------------------------


def horizon_ratio(alpha: float) -> float:
    """tau^2 / V at the look where the mSPRT boundary is narrowest: the root of x = 2 log(1/alpha) + log(1+x).

    Why: the boundary (and the always-valid interval) at a look with sampling variance V is
    sqrt(V) * sqrt(2 (1 + 1/x) (log(1/alpha) + 1/2 log(1 + x))) with x = tau^2 / V; setting its
    derivative in x to zero gives the fixed point above (GrowthBook's horizon-tuned sequences use its
    one-step approximation x = -2 log alpha + log(1 - 2 log alpha)). alpha = 0.05 gives x = 8.21.
    """
    alpha = _check_alpha(alpha)
    two_l = 2.0 * math.log(1.0 / alpha)
    x = two_l + math.log1p(two_l)
    for _ in range(100):  # a contraction (derivative 1/(1+x) < 1/2): converges in a few steps
        nxt = two_l + math.log1p(x)
        if abs(nxt - x) < 1e-13:
            break
        x = nxt
    return x


def boundary_factor(alpha: float) -> float:
    """The mSPRT boundary in standard errors at its tuned look: about 3.04 for alpha = 0.05 (vs 1.96 fixed)."""
    x = horizon_ratio(alpha)
    return math.sqrt(2.0 * (1.0 + 1.0 / x) * (math.log(1.0 / alpha) + 0.5 * math.log1p(x)))


def horizon_tuned_tau2(var_diff_at_horizon: float, alpha: float = 0.05) -> float:
    """The mixing variance that makes the mSPRT sharpest at a planned look (the planned sample).

    ``var_diff_at_horizon`` is the sampling variance of the difference expected at that look
    (var_a/n_a + var_b/n_b at the planned sizes). tau^2 = x* V with x* from :func:`horizon_ratio`.
    """
    v = _check_positive(var_diff_at_horizon, "var_diff_at_horizon")
    return horizon_ratio(alpha) * v


def mixture_variance(mde: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The mSPRT mixing variance we use, tuned from the stated minimum effect: about 0.55 mde^2 at 5% / 80%.

    Why: any fixed tau^2 gives a valid test (the false-positive guarantee does not depend on it), but
    power does: a tau^2 tuned for a far smaller effect than the one present spreads the mixture's
    weight over a horizon tens of times longer than the test and almost never rejects at the sample
    the experimenter can afford. So the mixture is tuned to the look where it matters: the sample at
    which the always-valid rule itself has ``power`` to detect ``mde``. With tau^2 = x* V (the
    horizon tuning of :func:`horizon_tuned_tau2`) the boundary there is c sqrt(V) (c =
    :func:`boundary_factor`), so that look has sqrt(V) = mde / (c + z_power), and
    tau^2 = x* mde^2 / (c + z_power)^2. It depends on the effect, alpha and power only, never on the
    data, so it stays fixed for the whole test (a mixture re-tuned from the data at each look would
    lose the guarantee).
    """
    mde_v = _check_positive(mde, "mde")
    power = _check_alpha(power, "power")
    z_power = float(sps.norm.ppf(power))
    c = boundary_factor(alpha)
    if c + z_power <= 0:
        raise InvalidInput(f"is too low to size a test for; got {power}", argument="power")
    return horizon_ratio(alpha) * (mde_v / (c + z_power)) ** 2


def msprt_boundary(var_diff: float, tau2: float, alpha: float) -> float:
    """Half-width of the always-valid interval: the |b - a| the mSPRT needs to reject at this look.

    Infinite when V = 0 (no variance estimate yet).
    """
    alpha = _check_alpha(alpha)
    tau2 = _check_positive(tau2, "tau2")
    v = float(var_diff)
    if v <= 0:
        return math.inf
    return math.sqrt(2.0 * v * (v + tau2) / tau2 * (math.log(1.0 / alpha) + 0.5 * math.log((v + tau2) / v)))


def msprt_p_value(
    diff: ArrayLike, var_diff: ArrayLike, tau2: float, previous_p: ArrayLike | None = None
) -> Any:
    """Always-valid p-value of H0: theta = 0 from the mixture SPRT with a N(0, tau2) mixture.

    ``diff`` is the observed difference of means/proportions (b - a) and ``var_diff`` its sampling
    variance (var_a/n_a + var_b/n_b) at this look. The mixture likelihood ratio
    Lambda = sqrt(V/(V+tau2)) exp(tau2 d^2 / (2V(V+tau2))) is a nonnegative martingale under H0,
    so by Ville's inequality P(Lambda ever >= 1/alpha) <= alpha; p = min(1, 1/Lambda) is thus below
    alpha at *any* look with probability <= alpha. Pass the previous look's value as
    ``previous_p`` to keep the p-value monotone (the running minimum is equally valid).
    Zero variance (no usable variance estimate yet) gives p = 1. Works elementwise on arrays.
    """
    tau2 = _check_positive(tau2, "tau2")
    d = np.asarray(diff, dtype=float)
    v = np.asarray(var_diff, dtype=float)
    if np.any(~np.isfinite(d)) or np.any(~np.isfinite(v)) or np.any(v < 0):
        raise InvalidInput("diff and var_diff must be finite, var_diff >= 0", argument="var_diff")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2.0 * v * (v + tau2))
        p = np.where(v > 0, np.minimum(1.0, np.exp(-log_lr)), 1.0)
    if previous_p is not None:
        prev = np.asarray(previous_p, dtype=float)
        if np.any(~np.isfinite(prev)) or np.any(prev < 0) or np.any(prev > 1):
            raise InvalidInput("must be a p-value in [0, 1] from the previous look", argument="previous_p")
        p = np.minimum(p, prev)
    return float(p) if p.ndim == 0 else p


def msprt_p_value_path(diffs: ArrayLike, var_diffs: ArrayLike, tau2: float) -> NDArray[np.float64]:
    """Always-valid p-values over a sequence of looks (last axis), as a running minimum."""
    p = np.asarray(msprt_p_value(diffs, var_diffs, tau2), dtype=float)
    return np.minimum.accumulate(p, axis=-1)


def msprt_confidence_interval(diff: float, var_diff: float, tau2: float, alpha: float) -> tuple[float, float]:
    """Always-valid (confidence-sequence) interval: the thetas the mSPRT would not reject at this look.

    Inverting Lambda(d - theta) < 1/alpha gives d +/- sqrt(2V(V+tau2)/tau2 * (log(1/alpha) +
    1/2 log((V+tau2)/V))); it covers the true difference at every look simultaneously with
    probability >= 1 - alpha. Infinite when V = 0 (no variance estimate yet).
    """
    half = msprt_boundary(var_diff, tau2, alpha)
    if not math.isfinite(half):
        return (-math.inf, math.inf)
    return (float(diff) - half, float(diff) + half)
