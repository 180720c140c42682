"""The offline head-to-head (``run_ab_test``): the metric's paired test chosen and run, with a verdict."""

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.results import (
    OfflineComparison,
    TestResult,
    Verdict,
)
from mlops_mcp.core.experiments.stats.common import (
    _as_1d,
    _check_alpha,
    _ci_text,
    _fmt,
    _fmt_p,
    _same_length,
)
from mlops_mcp.core.experiments.stats.paired import (
    McNemarMethod,
    _bootstrap_means,
    _bootstrap_result,
    delong,
    mcnemar,
    paired_bootstrap,
    paired_t,
)
from mlops_mcp.core.metrics import metric as registry_metric

# --------------------------------------------------------------------------------------------------
# offline comparison (run_ab_test)
# --------------------------------------------------------------------------------------------------


def metric_direction(metric: str) -> bool:
    """True when higher is better (accuracy, f1, roc_auc, r2), False for losses (rmse, mse, mae, log_loss)."""
    return registry_metric(metric).higher_is_better


def metric_name(metric: str) -> str:
    """The canonical name of ``metric`` (aliases accepted); unknown names list what is accepted."""
    return registry_metric(metric).name


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
    mcnemar_method: McNemarMethod = "mid_p",
) -> OfflineComparison:
    """Paired head-to-head of two variants on the same labeled rows, with a verdict.

    Test per metric: accuracy -> McNemar (``mcnemar_method``, default mid-p); roc_auc -> DeLong;
    log_loss, mae, mse -> paired t on per-row loss; r2 -> paired t on squared error rescaled by
    Var(y) (with y fixed, R^2_b - R^2_a = (MSE_a - MSE_b) / Var(y), so the test is exact);
    f1, rmse -> paired bootstrap (``n_boot`` resamples, ``seed``). ``pred_*`` are predicted labels
    (classification) or values (regression); ``proba_*`` are needed for roc_auc and log_loss
    (1-D positive-class scores for binary targets, or rows x classes with columns in ``classes``
    order, default sorted labels of y_true). Verdict: ``b_better``/``a_better`` only when
    p < alpha, direction read through the metric's better-direction.
    """
    alpha = _check_alpha(alpha)
    name = metric_name(metric)
    if task not in ("classification", "regression"):
        raise InvalidInput(f"must be 'classification' or 'regression'; got {task!r}", argument="task")
    hib = registry_metric(name, task=task).higher_is_better
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
            res = mcnemar(pa == y, pb == y, alpha, method=mcnemar_method)
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
    "mcnemar_mid_p": "McNemar mid-p test",
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
