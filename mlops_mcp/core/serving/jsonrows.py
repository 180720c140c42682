"""JSON text for many records with the same keys, built column by column.

The prediction log keeps every row's inputs (and class probabilities) as a JSON document, which
feedback, drift, explanations and retraining read (SQLite ``json_extract``, PostgreSQL ``->>``).
Encoding 10,000 rows one ``json.dumps`` at a time costs ~7 us a row, mostly turning floats into
text, and was a third of the log's time. Here each column is turned into text once for the whole
batch (pyarrow's vectorised casts for numbers and booleans; each distinct string escaped once) and
the documents are joined element-wise: the same JSON a reader parses, ~4x faster on a batch.

Values keep their JSON meaning: numbers stay numbers (a float that is a whole number keeps its
``.0``), NaN and infinities become ``null`` (as :func:`mlops_mcp.core.values.plain` makes them),
anything unusual in a column (numpy scalars, dates, mixed types) is encoded value by value with
``plain``. Small batches skip all this: per-row encoding is faster below :data:`VECTOR_ROWS`.
"""

import json
from collections.abc import Sequence
from typing import Any

from mlops_mcp.core.values import plain

#: from this many records on, encode column by column
VECTOR_ROWS = 256

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON of one value; NaN/inf and non-JSON types go through ``plain``."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError):
        return _ENCODER.encode(plain(value))


def json_records(records: Sequence[dict[str, Any]]) -> list[str]:
    """One compact JSON object per record. Records with different key sets are encoded one by one."""
    n = len(records)
    if n < VECTOR_ROWS:
        return [dumps(r) for r in records]
    keys = list(records[0])
    width = len(keys)
    try:
        columns = [[r[k] for r in records] for k in keys]
    except KeyError:
        return [dumps(r) for r in records]
    if any(len(r) != width for r in records):
        return [dumps(r) for r in records]
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[Any] = []
    for i, (key, values) in enumerate(zip(keys, columns)):
        parts.append(("{" if i == 0 else ",") + dumps(str(key)) + ":")
        parts.append(_column_text(values, pa, pc))
    parts.append("}")
    if width == 0:
        return ["{}"] * n
    return pc.binary_join_element_wise(*parts, "").to_pylist()


def _column_text(values: list[Any], pa: Any, pc: Any) -> Any:
    """A pyarrow string array: each value's JSON text."""
    kinds = {type(v) for v in values}
    kinds.discard(type(None))
    try:
        if kinds and kinds <= {int, float}:
            if float in kinds:
                numbers = pa.array(values, type=pa.float64())
                text = numbers.cast(pa.string())
                # whole floats keep their '.0' (pyarrow writes 98.0 as "98"), so that they read back as floats
                whole = pc.match_substring_regex(text, r"^-?[0-9]+$")
                text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
                text = pc.if_else(pc.is_finite(numbers), text, pa.scalar(None, pa.string()))
            else:
                text = pa.array(values, type=pa.int64()).cast(pa.string())
            return pc.fill_null(text, "null")
        if kinds == {bool}:
            return pc.fill_null(pa.array(values, type=pa.bool_()).cast(pa.string()), "null")
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass  # e.g. an int beyond 64 bits: value by value below
    seen: dict[tuple[type, Any], str] = {}  # keyed by type too: True, 1 and 1.0 are equal keys
    out = []
    for v in values:
        key = (type(v), v)
        try:
            text = seen.get(key)
        except TypeError:  # unhashable (a list or dict value)
            out.append(dumps(v))
            continue
        if text is None:
            text = seen[key] = dumps(v)
        out.append(text)
    return pa.array(out, type=pa.string())
