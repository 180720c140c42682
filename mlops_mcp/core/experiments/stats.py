"""Statistics for comparing two model variants: offline (paired), live (sequential) and shadow.

Why these procedures:

* Offline (``run_ab_test``) both variants predict the *same* rows, so every comparison is paired:
  McNemar for accuracy, DeLong for ROC AUC, paired t on per-row loss for MAE/MSE/log-loss/R^2,
  a paired bootstrap where the metric does not decompose into per-row terms (F1, RMSE). Pairing
  removes the row-to-row difficulty that both variants share, which is most of the noise.
* Live (``get_ab_test``) arms see different users, so tests are two-sample (two-proportion z,
  Welch t). Dashboards are looked at every day, which ruins a classic p-value (20 looks push an
  A/A test's false-positive rate from 5% to about 25%), so a winner is declared only on the
  always-valid mSPRT p-value (Johari, Koomen, Pekelis & Walsh, 2017/2022), which stays below alpha
  with probability <= alpha *however often* it is looked at.
* Shadow: agreement with a Wilson interval (good coverage near 0 and 1, where agreement lives).

Conventions: ``a`` is the incumbent (champion / control), ``b`` the challenger; every difference is
``b - a`` in the metric's units; intervals are two-sided at level ``1 - alpha``. Bad input raises
:class:`~mlops_mcp.core.errors.InvalidInput` naming the argument; degenerate but legal input (no
discordant pairs, zero variance, identical predictions) gives a defined result with a ``note``.
The library uses numpy and scipy only.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.results import (
    ArmSummary,
    LiveSummary,
    OfflineComparison,
    Recommendation,
    SampleSize,
    ShadowSummary,
    SRMResult,
    TestResult,
    Verdict,
)

__all__ = [
    "EXACT_MCNEMAR_BELOW",
    "METRICS",
    "ArmData",
    "ArmSummary",
    "LiveSummary",
    "OfflineComparison",
    "SRMResult",
    "SampleSize",
    "ShadowSummary",
    "TestResult",
    "achieved_power",
    "compare_arms",
    "compare_offline",
    "delong",
    "live_summary",
    "mcnemar",
    "metric_direction",
    "mixture_variance",
    "msprt_confidence_interval",
    "msprt_p_value",
    "msprt_p_value_path",
    "paired_bootstrap",
    "paired_t",
    "required_sample_size",
    "shadow_summary",
    "srm_check",
    "two_proportion_z",
    "welch_t",
    "welch_t_samples",
    "wilson_interval",
]

#: McNemar uses the exact binomial test below this many discordant pairs and the continuity-corrected
#: chi-square at or above it: the usual rule (e.g. Rosner; statsmodels docs), where the chi-square
#: approximation to Binomial(b + c, 1/2) is good to about two decimals of the p-value.
EXACT_MCNEMAR_BELOW = 25

#: metric name -> (task, higher_is_better)
METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("classification", True),
    "f1": ("classification", True),
    "roc_auc": ("classification", True),
    "log_loss": ("classification", False),
    "rmse": ("regression", False),
    "mse": ("regression", False),
    "mae": ("regression", False),
    "r2": ("regression", True),
}
_ALIASES = {"auc": "roc_auc", "logloss": "log_loss", "cross_entropy": "log_loss", "f1_score": "f1"}

#: Smallest arm before ``live_summary`` will call a winner: the normal approximations behind both
#: the classic and the mSPRT p-value need some tens of observations per arm.
MIN_SAMPLES_PER_ARM = 100


# --------------------------------------------------------------------------------------------------
# input checking
# --------------------------------------------------------------------------------------------------


def _check_alpha(alpha: float, argument: str = "alpha") -> float:
    """Reject alpha outside (0, 1): every interval and threshold below depends on it."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise InvalidInput(
            f"must be a number strictly between 0 and 1 (e.g. 0.05); got {alpha!r}", argument=argument
        )
    if not (0.0 < float(alpha) < 1.0):
        raise InvalidInput(f"must be strictly between 0 and 1 (e.g. 0.05); got {alpha}", argument=argument)
    return float(alpha)


def _check_positive(value: float, argument: str, *, allow_zero: bool = False) -> float:
    """A finite positive number (or non-negative), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInput(f"must be a number; got {value!r}", argument=argument)
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidInput(
            f"must be a finite {'non-negative' if allow_zero else 'positive'} number; got {value}",
            argument=argument,
        )
    return v


def _check_count(value: int, argument: str) -> int:
    """A non-negative whole number (numpy integers and integral floats accepted)."""
    if isinstance(value, bool):
        raise InvalidInput(f"must be a whole number; got {value!r}", argument=argument)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidInput(f"must be a non-negative whole number; got {value!r}", argument=argument)
    return int(value)


def _as_1d(
    values: ArrayLike, argument: str, *, numeric: bool = True, allow_empty: bool = False
) -> NDArray[Any]:
    """Coerce to a 1-D array; numeric arrays must be finite (NaN would poison every statistic silently)."""
    if values is None:
        raise InvalidInput("is required", argument=argument)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInput(f"must be a 1-D sequence of values; got shape {arr.shape}", argument=argument)
    if arr.size == 0 and not allow_empty:
        raise InvalidInput("is empty; at least one row is needed", argument=argument)
    if numeric:
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"must contain numbers only ({exc})", argument=argument) from None
        if not np.all(np.isfinite(arr)):
            raise InvalidInput(
                "contains NaN or infinite values; drop or fill those rows first", argument=argument
            )
    return arr


def _same_length(*pairs: tuple[str, NDArray[Any]]) -> int:
    """All arrays describe the same rows, so they must have the same length."""
    lengths = {name: len(a) for name, a in pairs}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise InvalidInput(
            f"must all have the same length (one entry per row); got {detail}", argument=pairs[-1][0]
        )
    return next(iter(lengths.values()))


def _as_bool(values: ArrayLike, argument: str) -> NDArray[np.bool_]:
    """Per-row correctness flags: booleans or 0/1."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInput(f"must be a 1-D sequence of booleans; got shape {arr.shape}", argument=argument)
    if arr.dtype == bool:
        return arr
    try:
        num = arr.astype(float)
    except (TypeError, ValueError):
        raise InvalidInput("must contain booleans (or 0/1) only", argument=argument) from None
    if not np.all((num == 0) | (num == 1)):
        raise InvalidInput("must contain booleans (or 0/1) only", argument=argument)
    return num.astype(bool)


def _z(alpha: float) -> float:
    """Two-sided normal critical value."""
    return float(sps.norm.ppf(1.0 - alpha / 2.0))


def _fmt(x: float | None, digits: int = 4) -> str:
    """Compact number for reasons a person reads."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _fmt_p(p: float) -> str:
    """'p = 0.031' or 'p < 0.0001' (not 1.2e-17: false precision)."""
    if p < 1e-4:
        return "p < 0.0001"
    return "p = " + (f"{p:.4f}".rstrip("0").rstrip(".") if p < 1 else "1")


def _ci_text(low: float | None, high: float | None, alpha: float) -> str:
    return f"{1 - alpha:.0%} CI [{_fmt(low)}, {_fmt(high)}]"


# --------------------------------------------------------------------------------------------------
# paired tests (offline)
# --------------------------------------------------------------------------------------------------


def mcnemar(
    correct_a: ArrayLike, correct_b: ArrayLike, alpha: float = 0.05, exact: bool | None = None
) -> TestResult:
    """McNemar's test of equal accuracy for two classifiers scored on the same rows.

    Only discordant rows carry information: ``only_a_correct`` (a right, b wrong) and
    ``only_b_correct``. Under H0 each discordant row is a fair coin. With fewer than
    :data:`EXACT_MCNEMAR_BELOW` discordant rows the exact binomial test is used (``mcnemar_exact``),
    else the continuity-corrected chi-square (``mcnemar_chi2_cc``); pass ``exact`` to force one.
    ``diff`` is accuracy(b) - accuracy(a) = (only_b - only_a) / n with the Agresti-Min interval
    (Wald on the 2x2 table with 0.5 added to each cell), which keeps sensible coverage when
    discordant counts are small, where plain Wald collapses to zero width.
    """
    alpha = _check_alpha(alpha)
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
    if disc == 0:
        return TestResult(
            test="mcnemar_exact",
            p_value=1.0,
            statistic=0.0,
            **common,
            note="no discordant pairs: the variants are right and wrong on exactly the same rows",
        )
    use_exact = disc < EXACT_MCNEMAR_BELOW if exact is None else bool(exact)
    if use_exact:
        stat = float(min(only_a, only_b))
        p = min(1.0, 2.0 * float(sps.binom.cdf(stat, disc, 0.5)))
        return TestResult(
            test="mcnemar_exact",
            p_value=p,
            statistic=stat,
            **common,
            note=f"exact binomial test on {disc} discordant pairs",
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


# --------------------------------------------------------------------------------------------------
# offline comparison (run_ab_test)
# --------------------------------------------------------------------------------------------------


def metric_direction(metric: str) -> bool:
    """True when higher is better (accuracy, f1, roc_auc, r2), False for losses (rmse, mse, mae, log_loss)."""
    return METRICS[_metric_name(metric)][1]


def _metric_name(metric: str) -> str:
    if not isinstance(metric, str):
        raise InvalidInput(f"must be a metric name; got {metric!r}", argument="metric")
    name = _ALIASES.get(metric.strip().lower(), metric.strip().lower())
    if name not in METRICS:
        raise InvalidInput(
            f"unknown metric '{metric}'; accepted: {', '.join(METRICS)} (auc = roc_auc)", argument="metric"
        )
    return name


def _f1(y: NDArray[Any], pred: NDArray[Any], labels: NDArray[Any], pos_label: Any) -> float:
    """Binary F1 of ``pos_label``, or macro F1 over ``labels`` (classes absent from a resample skipped)."""
    if pos_label is not None:
        tp = np.sum((pred == pos_label) & (y == pos_label))
        denom = (
            2 * tp
            + np.sum((pred == pos_label) & (y != pos_label))
            + np.sum((pred != pos_label) & (y == pos_label))
        )
        return float(2 * tp / denom) if denom else 0.0
    scores = []
    for c in labels:
        tp = np.sum((pred == c) & (y == c))
        denom = 2 * tp + np.sum((pred == c) & (y != c)) + np.sum((pred != c) & (y == c))
        if denom:
            scores.append(2 * tp / denom)
    return float(np.mean(scores)) if scores else float("nan")


def _labels_and_positive(y: NDArray[Any], *preds: NDArray[Any]) -> tuple[NDArray[Any], Any]:
    """All labels seen; the positive class when the problem is binary (the larger label), else None."""
    try:
        labels = np.unique(np.concatenate([y, *preds]))
    except TypeError:
        raise InvalidInput(
            "labels and predictions must be all numbers or all strings", argument="pred_a"
        ) from None
    y_classes = np.unique(y)
    if len(labels) <= 2 and len(y_classes) <= 2:
        return labels, labels[-1]
    return labels, None


def _positive_scores(
    proba: ArrayLike, argument: str, classes: NDArray[Any], pos_label: Any
) -> NDArray[np.float64]:
    """Score of the positive class from 1-D scores or a 2-D (rows x classes) probability matrix."""
    arr = np.asarray(proba, dtype=float) if proba is not None else None
    if arr is None:
        raise InvalidInput(
            "is required for roc_auc (probability or score of the positive class)", argument=argument
        )
    if arr.ndim == 1:
        out = arr
    elif arr.ndim == 2 and arr.shape[1] == len(classes) and len(classes) == 2:
        out = arr[:, int(np.flatnonzero(classes == pos_label)[0])]
    elif arr.ndim == 2 and arr.shape[1] == 1:
        out = arr[:, 0]
    else:
        raise InvalidInput(
            f"roc_auc supports binary targets only: give 1-D positive-class scores or a (rows x 2) "
            f"matrix; got shape {arr.shape}",
            argument=argument,
        )
    if not np.all(np.isfinite(out)):
        raise InvalidInput("contains NaN or infinite scores", argument=argument)
    return out


def _row_log_loss(
    y: NDArray[Any], proba: ArrayLike, argument: str, classes: NDArray[Any]
) -> NDArray[np.float64]:
    """Per-row cross-entropy -log p(true class); probabilities clipped at machine epsilon (as sklearn)."""
    if proba is None:
        raise InvalidInput("is required for log_loss (predicted class probabilities)", argument=argument)
    arr = np.asarray(proba, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise InvalidInput("probabilities must lie in [0, 1]", argument=argument)
    if arr.ndim == 1:
        if len(classes) > 2:
            raise InvalidInput(
                "1-D probabilities work only for a binary target; give a (rows x classes) matrix",
                argument=argument,
            )
        p_true = np.where(y == classes[-1], arr, 1.0 - arr)
    elif arr.ndim == 2 and arr.shape[1] == len(classes):
        col = np.searchsorted(classes, y)
        if np.any(col >= len(classes)) or np.any(classes[np.minimum(col, len(classes) - 1)] != y):
            raise InvalidInput(
                "y_true holds a label that is not one of the probability columns", argument="y_true"
            )
        p_true = arr[np.arange(len(y)), col]
    else:
        raise InvalidInput(
            f"expected {len(classes)} probability columns (one per class: "
            f"{', '.join(map(str, classes[:10]))}); got shape {arr.shape}",
            argument=argument,
        )
    eps = np.finfo(float).eps
    return -np.log(np.clip(p_true, eps, 1.0))


def compare_offline(
    task: Literal["classification", "regression"],
    metric: str,
    y_true: ArrayLike,
    pred_a: ArrayLike | None = None,
    pred_b: ArrayLike | None = None,
    proba_a: ArrayLike | None = None,
    proba_b: ArrayLike | None = None,
    alpha: float = 0.05,
    *,
    classes: Sequence[Any] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> OfflineComparison:
    """Paired head-to-head of two variants on the same labeled rows, with a verdict.

    Test per metric: accuracy -> McNemar (exact below 25 discordant pairs); roc_auc -> DeLong;
    log_loss, mae, mse -> paired t on per-row loss; r2 -> paired t on squared error rescaled by
    Var(y) (with y fixed, R^2_b - R^2_a = (MSE_a - MSE_b) / Var(y), so the test is exact);
    f1, rmse -> paired bootstrap (``n_boot`` resamples, ``seed``). ``pred_*`` are predicted labels
    (classification) or values (regression); ``proba_*`` are needed for roc_auc and log_loss
    (1-D positive-class scores for binary targets, or rows x classes with columns in ``classes``
    order, default sorted labels of y_true). Verdict: ``b_better``/``a_better`` only when
    p < alpha, direction read through the metric's better-direction.
    """
    alpha = _check_alpha(alpha)
    name = _metric_name(metric)
    if task not in ("classification", "regression"):
        raise InvalidInput(f"must be 'classification' or 'regression'; got {task!r}", argument="task")
    metric_task, hib = METRICS[name]
    if metric_task != task:
        accepted = [m for m, (t, _) in METRICS.items() if t == task]
        raise InvalidInput(
            f"'{name}' is a {metric_task} metric; for {task} use one of {', '.join(accepted)}",
            argument="metric",
        )
    y = _as_1d(y_true, "y_true", numeric=(task == "regression"))
    n = len(y)

    if task == "regression":
        pa, pb = _as_1d(pred_a, "pred_a"), _as_1d(pred_b, "pred_b")
        _same_length(("y_true", y), ("pred_a", pa), ("pred_b", pb))
        ea, eb = pa - y, pb - y
        if name == "mae":
            res = paired_t(np.abs(ea), np.abs(eb), alpha)
        elif name == "mse":
            res = paired_t(ea**2, eb**2, alpha)
        elif name == "r2":
            var_y = float(np.var(y))
            if var_y <= 0:
                raise InvalidInput(
                    "r2 is undefined when the target is constant; use rmse or mae", argument="y_true"
                )
            t = paired_t(ea**2, eb**2, alpha)
            scale = -1.0 / var_y  # r2 diff = -(mse_b - mse_a) / var(y)
            r2a, r2b = 1.0 - float(np.mean(ea**2)) / var_y, 1.0 - float(np.mean(eb**2)) / var_y
            lo, hi = (
                (None, None)
                if t.ci_low is None or t.ci_high is None
                else (t.ci_high * scale, t.ci_low * scale)
            )
            res = TestResult(
                test="paired_t_squared_error",
                p_value=t.p_value,
                n=t.n,
                statistic=t.statistic,
                df=t.df,
                value_a=r2a,
                value_b=r2b,
                diff=r2b - r2a,
                se=None if t.se is None else t.se / var_y,
                ci_low=lo,
                ci_high=hi,
                alpha=alpha,
                note=(
                    "paired t on squared errors, rescaled to R^2 by the target variance"
                    + (f"; {t.note}" if t.note else "")
                ),
            )
        else:  # rmse
            if n < 2:
                raise InvalidInput(f"need at least 2 rows; got {n}", argument="y_true")
            rmse_a, rmse_b = math.sqrt(float(np.mean(ea**2))), math.sqrt(float(np.mean(eb**2)))
            common = dict(
                n=n, value_a=rmse_a, value_b=rmse_b, diff=rmse_b - rmse_a, alpha=alpha, n_boot=int(n_boot)
            )
            if np.array_equal(pa, pb):
                res = TestResult(
                    test="paired_bootstrap",
                    p_value=1.0,
                    se=0.0,
                    ci_low=0.0,
                    ci_high=0.0,
                    note="identical predictions on every row: the variants do not differ",
                    **common,
                )
            else:
                if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
                    raise InvalidInput(f"must be a whole number >= 100; got {n_boot!r}", argument="n_boot")
                means = _bootstrap_means(np.column_stack([ea**2, eb**2]), int(n_boot), seed)
                diffs = np.sqrt(means[:, 1]) - np.sqrt(means[:, 0])
                res = _bootstrap_result(diffs, common, alpha, "paired_bootstrap")
        return _offline_result(name, hib, res, alpha)

    # classification
    cls = None if classes is None else np.asarray(list(classes))
    if name in ("accuracy", "f1"):
        pa = _as_1d(pred_a, "pred_a", numeric=False)
        pb = _as_1d(pred_b, "pred_b", numeric=False)
        _same_length(("y_true", y), ("pred_a", pa), ("pred_b", pb))
        if name == "accuracy":
            res = mcnemar(pa == y, pb == y, alpha)
        else:
            labels, pos = _labels_and_positive(y, pa, pb)
            res = paired_bootstrap(
                lambda yy, pp: _f1(yy, pp, labels, pos), y, pa, pb, n_boot=n_boot, seed=seed, alpha=alpha
            )
        return _offline_result(name, hib, res, alpha)

    try:
        y_classes = np.unique(y) if cls is None else cls
    except TypeError:
        raise InvalidInput("labels must be all numbers or all strings", argument="y_true") from None
    if name == "roc_auc":
        if len(np.unique(y)) != 2:
            raise InvalidInput(
                f"roc_auc needs a binary target with both classes present; found "
                f"{len(np.unique(y))} classes. Use accuracy or log_loss for multiclass",
                argument="y_true",
            )
        pos_label = np.unique(y)[1]
        sa = _positive_scores(proba_a, "proba_a", y_classes, pos_label)
        sb = _positive_scores(proba_b, "proba_b", y_classes, pos_label)
        res = delong(y, sa, sb, alpha, pos_label=pos_label)
        return _offline_result(name, hib, res, alpha)
    # log_loss
    la = _row_log_loss(y, proba_a, "proba_a", y_classes)
    lb = _row_log_loss(y, proba_b, "proba_b", y_classes)
    _same_length(("y_true", y), ("proba_a", la), ("proba_b", lb))
    res = paired_t(la, lb, alpha)
    return _offline_result(name, hib, res, alpha)


_TEST_LABEL = {
    "mcnemar_exact": "McNemar exact binomial test",
    "mcnemar_chi2_cc": "McNemar chi-square (continuity-corrected)",
    "delong": "DeLong test",
    "paired_t": "paired t-test on per-row loss",
    "paired_t_squared_error": "paired t-test on per-row squared error",
    "paired_bootstrap": "paired bootstrap",
}


def _offline_result(metric: str, hib: bool, res: TestResult, alpha: float) -> OfflineComparison:
    """Turn a test result into a verdict, reading the sign through the metric's better-direction."""
    va, vb = float(res.value_a or 0.0), float(res.value_b or 0.0)
    diff = float(res.diff if res.diff is not None else vb - va)
    label = _TEST_LABEL.get(res.test, res.test)
    better = "higher" if hib else "lower"
    effect = (
        f"{metric} a = {_fmt(va)}, b = {_fmt(vb)} (b - a = {diff:+.4g}, "
        f"{_ci_text(res.ci_low, res.ci_high, alpha)}; {better} is better)"
    )
    verdict: Verdict
    if res.p_value < alpha and diff != 0.0:
        b_wins = (diff > 0) == hib
        verdict = "b_better" if b_wins else "a_better"
        winner = "b" if b_wins else "a"
        reason = f"{winner} is better: {effect}; {label}: {_fmt_p(res.p_value)}, below alpha = {alpha:g}"
    else:
        verdict = "no_significant_difference"
        p_txt = _fmt_p(res.p_value)
        reason = f"no significant difference: {effect}; {label}: {p_txt}, not below alpha = {alpha:g}"
    if res.note:
        reason += f" ({res.note})"
    return OfflineComparison(
        metric=metric,
        higher_is_better=hib,
        metric_a=va,
        metric_b=vb,
        diff=diff,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        p_value=res.p_value,
        test=res.test,
        n=res.n,
        alpha=alpha,
        verdict=verdict,
        reason=reason,
        detail=res,
    )


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
    mde: float = 0.01,
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
    -> means and Welch t). ``mde`` is the minimum effect worth detecting, in absolute units of the
    outcome (e.g. 0.02 = two accuracy points). ``tau2`` defaults to mde^2 (see
    :func:`mixture_variance`). ``previous_always_valid_p`` carries the running minimum between looks.

    Decision order: (1) sample-ratio mismatch -> ``investigate_assignment``; (2) fewer than
    ``min_samples_per_arm`` in an arm -> ``keep_running``; (3) always-valid p < alpha ->
    ``b_wins`` / ``a_wins`` by direction (never on the classic p-value, which 20 looks inflate to
    ~25% false positives); (4) ``no_difference`` when the always-valid interval lies inside
    (-mde, +mde), or the planned sample is reached and the classic interval (valid at that planned
    look) lies inside it; (5) else ``keep_running`` with the samples still needed.
    """
    alpha = _check_alpha(alpha)
    mde = _check_positive(mde, "mde")
    if arm_a.binary != arm_b.binary and arm_a.n and arm_b.n:
        raise InvalidInput(
            "both arms must hold the same kind of outcome (binary or continuous)", argument="arm_b"
        )
    split = [_check_positive(s, "expected_split") for s in expected_split]
    if len(split) != 2:
        raise InvalidInput(
            f"needs two shares (arm a, arm b), e.g. [0.5, 0.5]; got {len(split)}", argument="expected_split"
        )
    tau2_v = mixture_variance(mde) if tau2 is None else _check_positive(tau2, "tau2")
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
    req_a = req_b = need_a = need_b = None
    power_reached: float | None = None
    if kind == "mean" and not sd:
        reasons_power = "sample size unknown: the outcome has zero variance so far"
    else:
        try:
            ss = required_sample_size(baseline, mde, alpha, power, kind=kind, sd=sd, ratio=ratio)
            req_a, req_b = ss.n_a, ss.n_b
            need_a, need_b = max(0, req_a - arm_a.n), max(0, req_b - arm_b.n)
            power_reached = achieved_power(arm_a.n, arm_b.n, baseline, mde, alpha, kind=kind, sd=sd)
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
                f"about {need_a} more in a and {need_b} more in b (~{math.ceil(more)} more in total) to "
                f"reach {power:.0%} power for an effect of {_fmt(mde)}; power now {power_reached:.0%}"
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
        recommendation=rec,
        reasons=tuple(reasons),
    )


# --------------------------------------------------------------------------------------------------
# shadow
# --------------------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion.

    Chosen over Wald because agreement rates sit near 1, where Wald's interval collapses to zero
    width or passes 1; Wilson keeps close to nominal coverage there (Brown, Cai & DasGupta 2001).
    """
    alpha = _check_alpha(alpha)
    x, nn = _check_count(successes, "successes"), _check_count(n, "n")
    if nn == 0:
        raise InvalidInput("is 0: a proportion needs at least one observation", argument="n")
    if x > nn:
        raise InvalidInput(f"successes ({x}) exceed n ({nn})", argument="successes")
    z = _z(alpha)
    p = x / nn
    denom = 1.0 + z**2 / nn
    center = (p + z**2 / (2 * nn)) / denom
    half = z * math.sqrt(p * (1 - p) / nn + z**2 / (4 * nn**2)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def _missing(values: NDArray[Any]) -> NDArray[np.bool_]:
    """True where a label is absent (None or NaN): feedback has not arrived for that row."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype == object:
        return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values], dtype=bool)
    return np.zeros(len(values), dtype=bool)


def _latency(values: ArrayLike | None, argument: str) -> tuple[float | None, float | None]:
    if values is None:
        return None, None
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise InvalidInput("must be a 1-D sequence of milliseconds", argument=argument)
    arr = arr[np.isfinite(arr)]
    if np.any(arr < 0):
        raise InvalidInput("latencies cannot be negative", argument=argument)
    if arr.size == 0:
        return None, None
    p50, p95 = np.quantile(arr, [0.5, 0.95])
    return float(p50), float(p95)


def shadow_summary(
    task: Literal["classification", "regression"],
    primary: ArrayLike,
    shadow: ArrayLike,
    *,
    latency_primary_ms: ArrayLike | None = None,
    latency_shadow_ms: ArrayLike | None = None,
    y_true: ArrayLike | None = None,
    alpha: float = 0.05,
    metric: Literal["accuracy", "rmse", "mae"] | None = None,
) -> ShadowSummary:
    """Compare primary and shadow predictions on the same mirrored requests.

    Classification: agreement rate with a Wilson interval. Regression: distribution of
    ``shadow - primary`` (mean, sd, mean |diff|, 5/25/50/75/95% quantiles, max |diff|).
    Latency p50/p95 per side (milliseconds; NaN entries ignored). Where ``y_true`` is known (None or
    NaN = no feedback yet), both sides' metric on those rows with a paired test: McNemar for
    accuracy, paired t on squared error for rmse (equal RMSE iff equal MSE) or on absolute error
    for mae. Here "a" = primary and "b" = shadow. No rows -> a summary with n = 0 and a note.
    """
    alpha = _check_alpha(alpha)
    if task not in ("classification", "regression"):
        raise InvalidInput(f"must be 'classification' or 'regression'; got {task!r}", argument="task")
    prim = _as_1d(primary, "primary", numeric=(task == "regression"), allow_empty=True)
    shad = _as_1d(shadow, "shadow", numeric=(task == "regression"), allow_empty=True)
    n = _same_length(("primary", prim), ("shadow", shad))
    lp50, lp95 = _latency(latency_primary_ms, "latency_primary_ms")
    ls50, ls95 = _latency(latency_shadow_ms, "latency_shadow_ms")
    lat = dict(
        latency_primary_p50=lp50, latency_primary_p95=lp95, latency_shadow_p50=ls50, latency_shadow_p95=ls95
    )
    if n == 0:
        return ShadowSummary(task=task, n=0, alpha=alpha, notes=("no mirrored requests yet",), **lat)
    notes: list[str] = []
    out: dict[str, Any] = {}
    if task == "classification":
        agree = int(np.sum(prim == shad))
        lo, hi = wilson_interval(agree, n, alpha)
        out.update(agreement_rate=agree / n, agreement_ci_low=lo, agreement_ci_high=hi)
        if agree == n:
            notes.append("the shadow agrees with the primary on every request")
    else:
        d = shad - prim
        qs = np.quantile(d, [0.05, 0.25, 0.5, 0.75, 0.95])
        out.update(
            diff_mean=float(d.mean()),
            diff_sd=float(d.std(ddof=1)) if n > 1 else None,
            abs_diff_mean=float(np.abs(d).mean()),
            diff_quantiles={
                k: float(v) for k, v in zip(("p05", "p25", "p50", "p75", "p95"), qs, strict=True)
            },
            abs_diff_max=float(np.abs(d).max()),
        )
        if np.all(d == 0):
            notes.append("the shadow predicts exactly the same values as the primary")

    n_labeled = 0
    if y_true is not None:
        y = np.asarray(y_true)
        if y.ndim != 1:
            raise InvalidInput("must be a 1-D sequence of labels (None/NaN where unknown)", argument="y_true")
        _same_length(("primary", prim), ("y_true", y))
        have = ~_missing(y)
        n_labeled = int(have.sum())
        if n_labeled == 0:
            notes.append("no labels (feedback) yet for these requests")
        else:
            name = metric or ("accuracy" if task == "classification" else "rmse")
            if (task == "classification") != (name == "accuracy"):
                raise InvalidInput(
                    f"'{name}' does not fit a {task} shadow; use "
                    f"{'accuracy' if task == 'classification' else 'rmse or mae'}",
                    argument="metric",
                )
            yl, pl, sl = y[have], prim[have], shad[have]
            if task == "classification":
                test = mcnemar(pl == yl, sl == yl, alpha)
                out.update(
                    metric="accuracy",
                    metric_primary=test.value_a,
                    metric_shadow=test.value_b,
                    labeled_test=test,
                )
            else:
                ylf = _as_1d(yl, "y_true")
                ep, es = pl - ylf, sl - ylf
                if name == "rmse":
                    mp, ms = math.sqrt(float(np.mean(ep**2))), math.sqrt(float(np.mean(es**2)))
                    la, lb = ep**2, es**2
                elif name == "mae":
                    mp, ms = float(np.mean(np.abs(ep))), float(np.mean(np.abs(es)))
                    la, lb = np.abs(ep), np.abs(es)
                else:
                    raise InvalidInput(f"unknown metric {name!r}; accepted: rmse, mae", argument="metric")
                test = None
                if n_labeled >= 2:
                    test = paired_t(la, lb, alpha)
                    if name == "rmse":
                        test = replace(test, test="paired_t_squared_error")
                else:
                    notes.append("only one labeled row: too few for a test")
                out.update(metric=name, metric_primary=mp, metric_shadow=ms, labeled_test=test)
    return ShadowSummary(task=task, n=n, alpha=alpha, n_labeled=n_labeled, notes=tuple(notes), **lat, **out)
