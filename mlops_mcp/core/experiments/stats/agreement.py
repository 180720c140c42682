"""Shadow comparisons: agreement with a Wilson interval, score and value differences, latency."""

import math
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.experiments.results import (
    ShadowSummary,
)
from mlops_mcp.core.experiments.stats.common import _as_1d, _check_alpha, _check_count, _same_length, _z
from mlops_mcp.core.experiments.stats.paired import mcnemar, paired_t

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
