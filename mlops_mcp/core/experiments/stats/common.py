"""Constants, input checks and number formatting shared by the experiment statistics."""

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.metrics import METRICS as _REGISTRY

#: McNemar uses the exact binomial test below this many discordant pairs and the continuity-corrected
#: chi-square at or above it: the usual rule (e.g. Rosner; statsmodels docs), where the chi-square
#: approximation to Binomial(b + c, 1/2) is good to about two decimals of the p-value.
EXACT_MCNEMAR_BELOW = 25

#: metric name -> (task, higher_is_better), from the one registry (``core/metrics.py``)
METRICS: dict[str, tuple[str, bool]] = {m.name: (m.task, m.higher_is_better) for m in _REGISTRY.values()}

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
