"""Paired tests for two variants scored on the same rows: McNemar, DeLong, paired t, paired bootstrap."""

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.results import (
    TestResult,
)
from mlops_mcp.core.experiments.stats.common import (
    EXACT_MCNEMAR_BELOW,
    _as_1d,
    _as_bool,
    _check_alpha,
    _same_length,
    _z,
)

# --------------------------------------------------------------------------------------------------
# paired tests (offline)
# --------------------------------------------------------------------------------------------------


McNemarMethod = Literal["mid_p", "exact", "chi2_cc", "auto"]


def mcnemar(
    correct_a: ArrayLike,
    correct_b: ArrayLike,
    alpha: float = 0.05,
    exact: bool | None = None,
    *,
    method: McNemarMethod = "mid_p",
) -> TestResult:
    """McNemar's test of equal accuracy for two classifiers scored on the same rows.

    Only discordant rows carry information: ``only_a_correct`` (a right, b wrong) and
    ``only_b_correct``. Under H0 each discordant row is a fair coin: with d discordant rows and
    k = min(only_a, only_b), X ~ Binomial(d, 1/2).

    ``method``:

    * ``mid_p`` (default, ``mcnemar_mid_p``): 2 P(X < k) + P(X = k), i.e. the exact p-value minus
      P(X = k) (1 when only_a = only_b). The exact test counts the observed table fully on the
      rejection side, which makes it conservative (real size about 3% at a nominal 5% for 50-300
      rows); the mid-p counts it half. Fagerland, Lydersen & Laake (2013, BMC Med Res Methodol
      13:91) found its real size at or under nominal in practically every case while recovering the
      power the exact and continuity-corrected tests give away, and recommend it.
    * ``exact`` (``mcnemar_exact``): 2 P(X <= k), capped at 1 (as statsmodels ``exact=True``).
    * ``chi2_cc`` (``mcnemar_chi2_cc``): (|only_a - only_b| - 1)^2 / d against chi-square(1).
    * ``auto``: exact below :data:`EXACT_MCNEMAR_BELOW` discordant rows, else chi2_cc (the textbook rule).

    ``exact=True`` / ``exact=False`` is the older spelling of ``exact`` / ``chi2_cc``.
    ``diff`` is accuracy(b) - accuracy(a) = (only_b - only_a) / n with the Agresti-Min interval
    (Wald on the 2x2 table with 0.5 added to each cell), which keeps sensible coverage when
    discordant counts are small, where plain Wald collapses to zero width.
    """
    alpha = _check_alpha(alpha)
    if method not in ("mid_p", "exact", "chi2_cc", "auto"):
        raise InvalidInput(
            f"must be 'mid_p', 'exact', 'chi2_cc' or 'auto'; got {method!r}", argument="method"
        )
    if exact is not None:
        method = "exact" if exact else "chi2_cc"
    ca, cb = _as_bool(correct_a, "correct_a"), _as_bool(correct_b, "correct_b")
    n = _same_length(("correct_a", ca), ("correct_b", cb))
    if n == 0:
        raise InvalidInput("is empty; at least one scored row is needed", argument="correct_a")
    only_a = int(np.sum(ca & ~cb))
    only_b = int(np.sum(~ca & cb))
    disc = only_a + only_b
    acc_a, acc_b = float(ca.mean()), float(cb.mean())
    diff = (only_b - only_a) / n
    # Agresti & Min (2005): add 0.5 to every cell, n + 2.
    a_adj, b_adj, n_adj = only_a + 0.5, only_b + 0.5, n + 2.0
    d_adj = (b_adj - a_adj) / n_adj
    se_adj = math.sqrt(max((a_adj + b_adj) - (b_adj - a_adj) ** 2 / n_adj, 0.0)) / n_adj
    z = _z(alpha)
    ci_low, ci_high = max(-1.0, d_adj - z * se_adj), min(1.0, d_adj + z * se_adj)
    common = dict(
        n=n,
        value_a=acc_a,
        value_b=acc_b,
        diff=diff,
        se=se_adj,
        ci_low=ci_low,
        ci_high=ci_high,
        alpha=alpha,
        only_a_correct=only_a,
        only_b_correct=only_b,
    )
    if method == "auto":
        method = "exact" if disc < EXACT_MCNEMAR_BELOW else "chi2_cc"
    if disc == 0:
        return TestResult(
            test="mcnemar_chi2_cc" if method == "chi2_cc" else f"mcnemar_{method}",
            p_value=1.0,
            statistic=0.0,
            **common,
            note="no discordant pairs: the variants are right and wrong on exactly the same rows",
        )
    if method in ("exact", "mid_p"):
        stat = float(min(only_a, only_b))
        p_exact = min(1.0, 2.0 * float(sps.binom.cdf(stat, disc, 0.5)))
        if method == "exact":
            return TestResult(
                test="mcnemar_exact",
                p_value=p_exact,
                statistic=stat,
                **common,
                note=f"exact binomial test on {disc} discordant pairs",
            )
        # 2 P(X <= k) - P(X = k); exactly 1 when the discordant pairs split evenly
        p_mid = 1.0 if 2 * only_a == disc else 2.0 * float(sps.binom.cdf(stat, disc, 0.5)) - float(
            sps.binom.pmf(stat, disc, 0.5)
        )
        return TestResult(
            test="mcnemar_mid_p",
            p_value=min(1.0, max(0.0, p_mid)),
            statistic=stat,
            **common,
            note=f"mid-p binomial test on {disc} discordant pairs",
        )
    stat = max(abs(only_a - only_b) - 1.0, 0.0) ** 2 / disc
    p = float(sps.chi2.sf(stat, 1))
    return TestResult(
        test="mcnemar_chi2_cc",
        p_value=p,
        statistic=stat,
        df=1.0,
        **common,
        note=f"chi-square with continuity correction on {disc} discordant pairs",
    )


def _binary_target(y_true: ArrayLike, pos_label: Any = None, argument: str = "y_true") -> NDArray[np.bool_]:
    """Positive-class mask. Default positive class: the larger of the two labels (1, True, 'yes'>'no')."""
    y = _as_1d(y_true, argument, numeric=False)
    try:
        classes = np.unique(y)
    except TypeError:
        raise InvalidInput(
            "labels must be all numbers or all strings (no missing values)", argument=argument
        ) from None
    if pos_label is None:
        if len(classes) < 2:
            raise InvalidInput(
                f"ROC AUC needs both classes present; every row is {classes[0]!r}", argument=argument
            )
        if len(classes) > 2:
            raise InvalidInput(
                f"ROC AUC needs a binary target; found {len(classes)} classes "
                f"({', '.join(map(str, classes[:10]))})",
                argument=argument,
            )
        pos_label = classes[1]
    mask = y == pos_label
    if mask.all() or not mask.any():
        raise InvalidInput("ROC AUC needs both classes present; all rows are one class", argument=argument)
    return mask


def _delong_placements(
    pos: NDArray[np.bool_], scores: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """AUCs and DeLong placement values via midranks (Sun & Xu 2014, O(N log N)).

    ``scores`` has shape (k, N). Returns (auc[k], v10[k, m], v01[k, n]) where v10 is, for each
    positive, the share of negatives it outranks (ties count 1/2), and v01 for each negative the
    share of positives that outrank it. AUC is the mean of either.
    """
    x, y = scores[:, pos], scores[:, ~pos]
    m, n = x.shape[1], y.shape[1]
    tx = sps.rankdata(x, axis=1)
    ty = sps.rankdata(y, axis=1)
    tz = sps.rankdata(np.concatenate([x, y], axis=1), axis=1)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    auc = v10.mean(axis=1)
    return auc, v10, v01


def delong(
    y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, alpha: float = 0.05, pos_label: Any = None
) -> TestResult:
    """DeLong's test for two correlated ROC AUCs on the same rows (DeLong, DeLong & Clarke-Pearson 1988).

    The AUC is a two-sample U-statistic, so its variance (and the covariance between two AUCs on
    the same rows) follows from the per-row placement values without resampling. ``diff`` is
    AUC(b) - AUC(a) with a normal interval; ``statistic`` is z. Scores are any monotone scores of the
    positive class (probabilities, logits). Needs at least two rows of each class.
    """
    alpha = _check_alpha(alpha)
    pos = _binary_target(y_true, pos_label)
    sa, sb = _as_1d(score_a, "score_a"), _as_1d(score_b, "score_b")
    n = _same_length(("y_true", pos), ("score_a", sa), ("score_b", sb))
    m_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if m_pos < 2 or n_neg < 2:
        raise InvalidInput(
            f"DeLong needs at least 2 rows of each class; got {m_pos} positive and {n_neg} negative",
            argument="y_true",
        )
    auc, v10, v01 = _delong_placements(pos, np.vstack([sa, sb]))
    s10 = np.cov(v10)
    s01 = np.cov(v01)
    cov = s10 / m_pos + s01 / n_neg
    var_diff = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    diff = float(auc[1] - auc[0])
    z = _z(alpha)
    common = dict(n=n, value_a=float(auc[0]), value_b=float(auc[1]), diff=diff, alpha=alpha)
    if var_diff <= 1e-15:
        same_rank = np.array_equal(sps.rankdata(sa), sps.rankdata(sb))
        if abs(diff) <= 1e-12:
            note = (
                "the variants rank every row the same way: identical AUC, nothing to test"
                if same_rank
                else "the AUC difference has zero variance and is zero"
            )
            return TestResult(
                test="delong",
                p_value=1.0,
                statistic=0.0,
                se=0.0,
                ci_low=diff,
                ci_high=diff,
                note=note,
                **common,
            )
        return TestResult(
            test="delong",
            p_value=0.0,
            statistic=math.inf,
            se=0.0,
            ci_low=diff,
            ci_high=diff,
            note="zero variance: each variant separates (or inversely separates) the classes "
            "perfectly, so the difference is certain",
            **common,
        )
    se = math.sqrt(var_diff)
    stat = diff / se
    p = float(2.0 * sps.norm.sf(abs(stat)))
    return TestResult(
        test="delong",
        p_value=p,
        statistic=stat,
        se=se,
        ci_low=max(-1.0, diff - z * se),
        ci_high=min(1.0, diff + z * se),
        **common,
    )


def paired_t(loss_a: ArrayLike, loss_b: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Paired t-test on per-row losses (or any per-row scores): is mean(loss_b - loss_a) zero?

    Right for metrics that are means of per-row terms (MAE, MSE, log-loss, accuracy as 0/1): the
    metric difference *is* the mean paired difference, and the t interval on it is exact for normal
    differences and asymptotically right otherwise. ``value_a``/``value_b`` are the mean losses.
    """
    alpha = _check_alpha(alpha)
    la, lb = _as_1d(loss_a, "loss_a"), _as_1d(loss_b, "loss_b")
    n = _same_length(("loss_a", la), ("loss_b", lb))
    if n < 2:
        raise InvalidInput(f"a paired t-test needs at least 2 rows; got {n}", argument="loss_a")
    d = lb - la
    diff = float(d.mean())
    sd = float(d.std(ddof=1))
    df = n - 1
    common = dict(
        n=n, df=float(df), value_a=float(la.mean()), value_b=float(lb.mean()), diff=diff, alpha=alpha
    )
    if sd <= 1e-14 * max(1.0, abs(diff)):
        if diff == 0.0:
            return TestResult(
                test="paired_t",
                p_value=1.0,
                statistic=0.0,
                se=0.0,
                ci_low=0.0,
                ci_high=0.0,
                note="identical losses on every row: the variants do not differ",
                **common,
            )
        return TestResult(
            test="paired_t",
            p_value=0.0,
            statistic=math.copysign(math.inf, diff),
            se=0.0,
            ci_low=diff,
            ci_high=diff,
            note="the loss difference is the same on every row (zero variance)",
            **common,
        )
    se = sd / math.sqrt(n)
    t = diff / se
    p = float(2.0 * sps.t.sf(abs(t), df))
    q = float(sps.t.ppf(1.0 - alpha / 2.0, df))
    return TestResult(
        test="paired_t", p_value=p, statistic=t, se=se, ci_low=diff - q * se, ci_high=diff + q * se, **common
    )


def _bootstrap_p(diffs: NDArray[np.float64]) -> float:
    """Two-sided bootstrap p-value: twice the smaller tail mass at 0, +1 smoothed so it is never 0.

    It is the p-value that inverts the percentile interval: p < alpha roughly iff 0 lies outside
    the ``1 - alpha`` percentile CI, so the verdict and the interval agree.
    """
    b = len(diffs)
    lo = (np.sum(diffs <= 0.0) + 1.0) / (b + 1.0)
    hi = (np.sum(diffs >= 0.0) + 1.0) / (b + 1.0)
    return float(min(1.0, 2.0 * min(lo, hi)))


def paired_bootstrap(
    metric_fn: Callable[[NDArray[Any], NDArray[Any]], float],
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    stratify: bool = False,
) -> TestResult:
    """Paired bootstrap of ``metric_fn(y, pred_b) - metric_fn(y, pred_a)`` over resampled rows.

    For metrics that are not a mean of per-row terms (F1, RMSE, AUC) there is no simple variance
    formula; resampling *rows* (the same rows for both variants) keeps the pairing. Percentile
    interval; p-value = twice the smaller share of resampled differences on either side of 0.
    2000 resamples put the Monte-Carlo error of a 95% bound at about 1% of the interval width.
    ``stratify`` resamples within each class of ``y_true`` (use for AUC so no resample loses a
    class). ``pred_*`` may be 2-D (rows x classes probabilities). Deterministic for a given seed.
    """
    alpha = _check_alpha(alpha)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise InvalidInput(
            f"must be a whole number >= 100 (2000 is a good default); got {n_boot!r}", argument="n_boot"
        )
    y = _as_1d(y_true, "y_true", numeric=False)
    pa, pb = np.asarray(pred_a), np.asarray(pred_b)
    if pa.ndim == 0 or pb.ndim == 0:
        raise InvalidInput("must be a sequence with one prediction per row", argument="pred_a")
    n = _same_length(("y_true", y), ("pred_a", pa), ("pred_b", pb))
    if pa.shape != pb.shape:
        raise InvalidInput(
            f"pred_a and pred_b must have the same shape; got {pa.shape} and {pb.shape}", argument="pred_b"
        )
    if n < 2:
        raise InvalidInput(f"a bootstrap needs at least 2 rows; got {n}", argument="y_true")
    try:
        value_a, value_b = float(metric_fn(y, pa)), float(metric_fn(y, pb))
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise InvalidInput(
            f"the metric cannot be computed on these rows: {exc}", argument="metric_fn"
        ) from None
    if not (math.isfinite(value_a) and math.isfinite(value_b)):
        raise InvalidInput("the metric is undefined (NaN/inf) on these rows", argument="metric_fn")
    diff = value_b - value_a
    common = dict(n=n, value_a=value_a, value_b=value_b, diff=diff, alpha=alpha, n_boot=int(n_boot))
    if np.array_equal(pa, pb):
        return TestResult(
            test="paired_bootstrap",
            p_value=1.0,
            se=0.0,
            ci_low=0.0,
            ci_high=0.0,
            note="identical predictions on every row: the variants do not differ",
            **common,
        )
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    diffs = np.empty(int(n_boot))
    for i in range(int(n_boot)):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        try:
            diffs[i] = float(metric_fn(y[idx], pb[idx])) - float(metric_fn(y[idx], pa[idx]))
        except (ValueError, ZeroDivisionError):
            diffs[i] = np.nan
    return _bootstrap_result(diffs, common, alpha, "paired_bootstrap")


def _bootstrap_result(
    diffs: NDArray[np.float64], common: dict[str, Any], alpha: float, test: str
) -> TestResult:
    """Summarise bootstrap differences; refuse when the metric was undefined on many resamples."""
    ok = np.isfinite(diffs)
    if ok.mean() < 0.9:
        raise InvalidInput(
            f"the metric was undefined on {int((~ok).sum())} of {len(diffs)} resamples "
            "(too few rows, or a class that is rarely present); add rows or pick another metric",
            argument="metric",
        )
    d = diffs[ok]
    low, high = np.quantile(d, [alpha / 2.0, 1.0 - alpha / 2.0])
    note = f"{int((~ok).sum())} resamples dropped (metric undefined)" if (~ok).any() else ""
    return TestResult(
        test=test,
        p_value=_bootstrap_p(d),
        se=float(d.std(ddof=1)),
        ci_low=float(low),
        ci_high=float(high),
        note=note,
        **common,
    )


def _bootstrap_means(values: NDArray[np.float64], n_boot: int, seed: int) -> NDArray[np.float64]:
    """Row-resampled means of each column of ``values`` (rows x k), vectorised in memory-bounded chunks."""
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    out = np.empty((n_boot, values.shape[1]))
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out
