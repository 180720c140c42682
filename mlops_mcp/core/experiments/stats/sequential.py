"""Always-valid inference: the mixture SPRT (Johari, Koomen, Pekelis & Walsh) p-value and interval."""

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.stats.common import _check_alpha, _check_positive

# --------------------------------------------------------------------------------------------------
# always-valid inference (mSPRT)
# --------------------------------------------------------------------------------------------------


def mixture_variance(mde: float) -> float:
    """The mSPRT mixing variance we use: tau^2 = mde^2.

    Why: with a N(0, tau^2) mixture over the true difference theta, the log likelihood ratio at an
    observed difference d with sampling variance V is -1/2 log(1 + tau^2/V) + d^2 tau^2 / (2V(V + tau^2)),
    which for a given d is largest at tau^2 = d^2 - V, i.e. about d^2 once V << d^2. Setting tau to
    the minimum detectable effect therefore makes the test most sensitive to effects of the size the
    experimenter said matters, and its false-positive guarantee does not depend on the choice at all
    (any fixed tau^2 gives a valid test; only power changes). Johari et al. recommend matching tau^2
    to the anticipated effect sizes for the same reason.
    """
    return _check_positive(mde, "mde") ** 2


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
    alpha = _check_alpha(alpha)
    tau2 = _check_positive(tau2, "tau2")
    v = float(var_diff)
    if v <= 0:
        return (-math.inf, math.inf)
    half = math.sqrt(2.0 * v * (v + tau2) / tau2 * (math.log(1.0 / alpha) + 0.5 * math.log((v + tau2) / v)))
    return (float(diff) - half, float(diff) + half)
