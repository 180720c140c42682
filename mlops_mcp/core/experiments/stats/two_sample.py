"""Two-sample tests for live arms that see different requests: two-proportion z, Welch t."""

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.results import (
    TestResult,
)
from mlops_mcp.core.experiments.stats.common import _as_1d, _check_alpha, _check_count, _check_positive, _z

# --------------------------------------------------------------------------------------------------
# two-sample tests (live)
# --------------------------------------------------------------------------------------------------


def two_proportion_z(success_a: int, n_a: int, success_b: int, n_b: int, alpha: float = 0.05) -> TestResult:
    """Two-proportion z-test of p_b = p_a (pooled variance under H0, as statsmodels ``proportions_ztest``).

    The interval on p_b - p_a uses the unpooled (Wald) standard error, since it is about the
    difference wherever it is, not under H0. ``statistic`` is z for b - a.
    """
    alpha = _check_alpha(alpha)
    xa, na = _check_count(success_a, "success_a"), _check_count(n_a, "n_a")
    xb, nb = _check_count(success_b, "success_b"), _check_count(n_b, "n_b")
    for x, nn, arg in ((xa, na, "n_a"), (xb, nb, "n_b")):
        if nn == 0:
            raise InvalidInput("is 0: the arm has no observations yet", argument=arg)
        if x > nn:
            raise InvalidInput(f"successes ({x}) exceed observations ({nn})", argument="success_" + arg[-1])
    pa, pb = xa / na, xb / nb
    diff = pb - pa
    pooled = (xa + xb) / (na + nb)
    se0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb))
    se1 = math.sqrt(pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb)
    z = _z(alpha)
    common = dict(
        n=na + nb,
        value_a=pa,
        value_b=pb,
        diff=diff,
        se=se1,
        ci_low=max(-1.0, diff - z * se1),
        ci_high=min(1.0, diff + z * se1),
        alpha=alpha,
    )
    if se0 == 0.0:
        return TestResult(
            test="two_proportion_z",
            p_value=1.0,
            statistic=0.0,
            **common,
            note="every outcome is the same in both arms (all 0 or all 1): no evidence of a difference",
        )
    stat = diff / se0
    note = (
        "an arm has all outcomes equal: the Wald interval has zero width there"
        if se1 == 0.0 or min(pa * (1 - pa), pb * (1 - pb)) == 0.0
        else ""
    )
    return TestResult(
        test="two_proportion_z",
        p_value=float(2.0 * sps.norm.sf(abs(stat))),
        statistic=stat,
        note=note,
        **common,
    )


def welch_t(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int, alpha: float = 0.05
) -> TestResult:
    """Welch's unequal-variance t-test of mean_b = mean_a from summary statistics.

    ``var_*`` are sample variances (ddof=1). Welch rather than Student because arms of a live test
    rarely have equal variance or equal size, and Welch loses almost nothing when they do.
    Use :func:`welch_t_samples` for raw per-row values.
    """
    alpha = _check_alpha(alpha)
    na, nb = _check_count(n_a, "n_a"), _check_count(n_b, "n_b")
    for nn, arg in ((na, "n_a"), (nb, "n_b")):
        if nn < 2:
            raise InvalidInput(
                f"Welch's t-test needs at least 2 observations per arm; got {nn}", argument=arg
            )
    va, vb = (
        _check_positive(var_a, "var_a", allow_zero=True),
        _check_positive(var_b, "var_b", allow_zero=True),
    )
    ma, mb = float(mean_a), float(mean_b)
    if not (math.isfinite(ma) and math.isfinite(mb)):
        raise InvalidInput("means must be finite numbers", argument="mean_a")
    diff = mb - ma
    se2 = va / na + vb / nb
    common = dict(n=na + nb, value_a=ma, value_b=mb, diff=diff, alpha=alpha)
    if se2 == 0.0:
        if diff == 0.0:
            return TestResult(
                test="welch_t",
                p_value=1.0,
                statistic=0.0,
                se=0.0,
                ci_low=0.0,
                ci_high=0.0,
                note="both arms are constant and equal: no difference",
                **common,
            )
        return TestResult(
            test="welch_t",
            p_value=0.0,
            statistic=math.copysign(math.inf, diff),
            se=0.0,
            ci_low=diff,
            ci_high=diff,
            note="both arms have zero variance and different means",
            **common,
        )
    se = math.sqrt(se2)
    df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    t = diff / se
    q = float(sps.t.ppf(1.0 - alpha / 2.0, df))
    return TestResult(
        test="welch_t",
        p_value=float(2.0 * sps.t.sf(abs(t), df)),
        statistic=t,
        df=df,
        se=se,
        ci_low=diff - q * se,
        ci_high=diff + q * se,
        **common,
    )


def welch_t_samples(values_a: ArrayLike, values_b: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Welch's t-test from raw per-row values (e.g. per-prediction losses) of each arm."""
    xa, xb = _as_1d(values_a, "values_a"), _as_1d(values_b, "values_b")
    if len(xa) < 2 or len(xb) < 2:
        raise InvalidInput(
            "Welch's t-test needs at least 2 observations per arm",
            argument="values_a" if len(xa) < 2 else "values_b",
        )
    return welch_t(
        float(xa.mean()),
        float(xa.var(ddof=1)),
        len(xa),
        float(xb.mean()),
        float(xb.var(ddof=1)),
        len(xb),
        alpha,
    )


@dataclass(frozen=True)
class ArmData:
    """What a live arm has accumulated: size, mean outcome and its variance.

    ``binary`` outcomes (correct / not, converted / not) are proportions: ``mean`` is the success
    rate, ``var`` the Bernoulli variance p(1-p). Continuous outcomes (per-row loss, revenue) carry
    the sample variance (ddof=1). Build with :meth:`from_binary`, :meth:`from_values` or
    :meth:`from_moments` (the store can keep running sums instead of rows).
    """

    n: int
    mean: float
    var: float
    binary: bool
    successes: int | None = None

    @classmethod
    def from_binary(cls, successes: int, n: int) -> "ArmData":
        """A proportion arm: ``successes`` out of ``n``."""
        x, nn = _check_count(successes, "successes"), _check_count(n, "n")
        if x > nn:
            raise InvalidInput(f"successes ({x}) exceed observations ({nn})", argument="successes")
        p = x / nn if nn else 0.0
        return cls(n=nn, mean=p, var=p * (1.0 - p), binary=True, successes=x)

    @classmethod
    def from_values(cls, values: ArrayLike, binary: bool | None = None) -> "ArmData":
        """From per-row outcomes; 0/1 (or boolean) values are treated as binary unless ``binary=False``."""
        x = _as_1d(values, "values", allow_empty=True)
        is01 = bool(np.all((x == 0) | (x == 1)))
        if binary is None:
            binary = is01 and len(x) > 0
        if binary:
            if not is01:
                raise InvalidInput("binary outcomes must be 0/1 or booleans", argument="values")
            return cls.from_binary(int(x.sum()), len(x))
        return cls(
            n=len(x),
            mean=float(x.mean()) if len(x) else 0.0,
            var=float(x.var(ddof=1)) if len(x) > 1 else 0.0,
            binary=False,
        )

    @classmethod
    def from_moments(cls, n: int, mean: float, var: float) -> "ArmData":
        """A continuous arm from its count, mean and sample variance (ddof=1)."""
        return cls(
            n=_check_count(n, "n"),
            mean=float(mean),
            var=_check_positive(var, "var", allow_zero=True),
            binary=False,
        )

    @property
    def var_of_mean(self) -> float:
        """Squared standard error of the arm's mean (0 when empty)."""
        return self.var / self.n if self.n else 0.0


def compare_arms(arm_a: ArmData, arm_b: ArmData, alpha: float = 0.05) -> TestResult:
    """Classic fixed-horizon test between two live arms: two-proportion z for binary, Welch t otherwise."""
    if arm_a.binary != arm_b.binary:
        raise InvalidInput(
            "both arms must hold the same kind of outcome (binary or continuous)", argument="arm_b"
        )
    if arm_a.binary:
        return two_proportion_z(arm_a.successes or 0, arm_a.n, arm_b.successes or 0, arm_b.n, alpha)
    return welch_t(arm_a.mean, arm_a.var, arm_a.n, arm_b.mean, arm_b.var, arm_b.n, alpha)
