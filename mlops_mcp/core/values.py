"""Turning engine values into what JSON (and a reader) can take: one sanitiser, one rounding rule.

numpy scalars and arrays become Python values, NaN and infinities become ``None`` (JSON cannot
carry them), dataclasses and mappings are walked. Rounding keeps meaningful digits rather than
fixed decimals, so a p-value of 3e-12 survives and an effect of 0.1234567 reads 0.1235.
"""

import math
from dataclasses import fields, is_dataclass
from typing import Any

#: A class label, a feature value or a prediction: what JSON can carry as one value.
Scalar = str | int | float | bool

#: significant digits kept by :func:`rounded` unless told otherwise
SIGNIFICANT_DIGITS = 4


def plain(value: Any) -> Any:
    """JSON-ready Python for any engine value (recursively); NaN/inf become None."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy scalar
        return plain(value.item())
    if hasattr(value, "tolist"):  # numpy array
        return plain(value.tolist())
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def rounded(value: float | None, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """``value`` to ``digits`` significant digits (None and non-finite give None)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")


def rounded_all(value: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """:func:`plain`, then every float rounded to ``digits`` significant digits."""
    value = plain(value)
    if isinstance(value, float):
        return rounded(value, digits)
    if isinstance(value, dict):
        return {k: rounded_all(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded_all(v, digits) for v in value]
    return value
