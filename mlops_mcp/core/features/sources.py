"""Reading a source file and turning it into checked, typed columns.

Every problem is found before anything is written: missing key or timestamp columns, null keys or
event times, values that do not fit a feature's type, a key type that does not match the view.
Times become UTC microseconds since the epoch; times written without a zone are taken as UTC, and
the result says which columns that happened to.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.datasets import open_regular, resolve_path
from mlops_mcp.core.errors import InvalidInput, MLOpsError, listing
from mlops_mcp.core.features.definitions import (
    FEATURE_TYPES,
    KEY_TYPES,
    MAX_ENTITIES,
    MAX_FEATURES,
    ViewDefinition,
    check_column_name,
    parse_typed_names,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: rows one file may bring (a bound on memory: the file is checked whole before it is written)
MAX_SOURCE_ROWS = 50_000_000
_ZONE = r"(?:[Zz]|[+-]\d\d(?::?\d\d)?)\s*$"


@dataclass
class SourceFile:
    """A data file inside the data roots, identified by its content."""

    dataset: str
    path: Path
    sha256: str
    n_bytes: int


def open_source(dataset: str, roots: Sequence[Path], argument: str) -> SourceFile:
    path = resolve_path(dataset, roots, argument=argument)
    digest = hashlib.sha256()
    size = 0
    with open_regular(path, argument) as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return SourceFile(dataset, path, digest.hexdigest(), size)


def read_table(path: Path, argument: str, text_columns: Sequence[str] = ()) -> "pd.DataFrame":
    """The whole file; ``text_columns`` of a CSV are read as text (keeps '007' as '007')."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        with open_regular(path, argument) as fh:
            if suffix == ".csv":
                header = pd.read_csv(fh, nrows=0).columns
                fh.seek(0)
                dtypes = {c: "str" for c in text_columns if c in header}
                frame = pd.read_csv(fh, dtype=dtypes or None)
            else:
                frame = pd.read_parquet(fh)
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"'{path.name}' is empty", argument=argument) from None
    except MLOpsError:
        raise
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"cannot read '{path.name}': {str(exc)[:300]}", argument=argument) from None
    if frame.empty:
        raise InvalidInput(f"'{path.name}' has no rows", argument=argument)
    if len(frame) > MAX_SOURCE_ROWS:
        raise InvalidInput(f"'{path.name}' has {len(frame):,} rows; split it into files of at most {MAX_SOURCE_ROWS:,}", argument=argument)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def require_columns(frame: "pd.DataFrame", wanted: dict[str, str], name: str) -> None:
    """``wanted``: column -> the argument that named it. Missing ones are an error listing the columns."""
    for column, argument in wanted.items():
        if column not in frame.columns:
            raise InvalidInput(
                f"no column '{column}' in {name}; its columns: {listing(frame.columns, 60)}", argument=argument
            )


# -- times ------------------------------------------------------------------------------------------
@dataclass
class Times:
    """A timestamp column as UTC microseconds, with its nulls and how zones were handled."""

    micros: "np.ndarray"  # int64; meaningless where null
    null: "np.ndarray"  # bool
    assumed_utc: bool  # some values had no zone and were taken as UTC


def is_time_like(series: "pd.Series") -> bool:
    """A datetime column, or text whose first values read as ISO 8601 times."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return False
    sample = series.dropna().head(20)
    if sample.empty or not all(isinstance(v, str) for v in sample):
        return False
    if not sample.str.match(r"^\s*\d{4}-\d{2}-\d{2}").all():
        return False
    return bool(pd.to_datetime(sample, format="ISO8601", utc=True, errors="coerce").notna().all())


def to_micros(series: "pd.Series", column: str, argument: str, where: str) -> Times:
    """UTC microseconds (floored) from datetimes or ISO 8601 text; numbers are refused (seconds or
    milliseconds cannot be told apart)."""
    import numpy as np
    import pandas as pd

    assumed = False
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        parsed = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series):
        parsed = series.dt.tz_localize("UTC")
        assumed = bool(series.notna().any())
    elif pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        text = series.astype("str").where(series.notna(), None) if pd.api.types.is_object_dtype(series) else series
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        bad = text[parsed.isna() & text.notna()]
        if len(bad):
            raise InvalidInput(
                f"column '{column}' of {where} has {bad.iloc[0]!r} (row {bad.index[0]}), which is not an ISO 8601 time, "
                "e.g. '2024-03-01T18:30:00Z'",
                argument=argument,
            )
        present = text.dropna()
        assumed = bool(len(present)) and not bool(present.str.contains(_ZONE, regex=True).all())
    else:
        raise InvalidInput(
            f"column '{column}' of {where} holds {series.dtype} values, not times; give datetimes or ISO 8601 text "
            "(epoch numbers are refused: seconds and milliseconds cannot be told apart)",
            argument=argument,
        )
    array = parsed.array.as_unit("us")
    null = np.asarray(parsed.isna().to_numpy(), dtype=bool)
    micros = np.asarray(array.asi8, dtype=np.int64).copy()
    micros[null] = 0
    return Times(micros, null, assumed)


# -- values -----------------------------------------------------------------------------------------
def infer_type(series: "pd.Series", key: bool = False) -> str | None:
    """The feature (or key) type a column's values suggest; None when it holds times."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        return None
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        if key:
            present = series.dropna()
            return "int" if len(present) and bool((present == present.round()).all()) else "float"
        return "float"
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind == "boolean":
        return "bool"
    if kind == "integer":
        return "int"
    if kind in ("floating", "mixed-integer-float", "decimal"):
        return "float"
    if kind in ("datetime", "datetime64", "date"):
        return None
    return "string"


@dataclass
class Values:
    """A converted column: values (int64, float64, bool or object str) and where they are null."""

    data: "np.ndarray"
    null: "np.ndarray"


def convert(series: "pd.Series", kind: str, column: str, argument: str, where: str) -> Values:
    """``series`` as ``kind`` ('int', 'float', 'bool', 'string'); a value that does not fit is an
    error naming the column, the row and the value."""
    import numpy as np
    import pandas as pd

    null = np.asarray(series.isna().to_numpy(), dtype=bool)

    def refuse(what: str) -> InvalidInput:
        return InvalidInput(f"column '{column}' of {where} should hold {kind} values but {what}", argument=argument)

    def first_bad(mask: "np.ndarray") -> str:
        i = int(np.argmax(mask))
        return f"has {series.iloc[i]!r} (row {series.index[i]})"

    if kind == "string":
        if pd.api.types.is_datetime64_any_dtype(series):
            raise refuse("holds times; declare the column as a timestamp, or convert it to text in the source")
        data = series.astype(object).to_numpy()
        out = np.empty(len(series), dtype=object)
        for i in np.flatnonzero(~null):
            v = data[i]
            out[i] = v if isinstance(v, str) else str(v)
        return Values(out, null)
    if kind == "bool":
        if pd.api.types.is_bool_dtype(series):
            return Values(np.asarray(series.fillna(False).to_numpy(), dtype=bool), null)
        if pd.api.types.is_numeric_dtype(series):
            filled = np.asarray(series.fillna(0).to_numpy(), dtype=float)
            bad = ~null & (filled != 0) & (filled != 1)
            if bad.any():
                raise refuse(first_bad(bad) + "; booleans are true/false or 1/0")
            return Values(filled == 1, null)
        mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
        lowered = series.astype(object).where(~null, None).map(lambda v: mapping.get(str(v).strip().lower()) if v is not None else None)
        bad = ~null & np.asarray(lowered.isna().to_numpy(), dtype=bool)
        if bad.any():
            raise refuse(first_bad(bad) + "; booleans are true/false or 1/0")
        return Values(np.asarray(lowered.fillna(False).to_numpy(), dtype=bool), null)
    # numbers
    if pd.api.types.is_bool_dtype(series) or pd.api.types.infer_dtype(series, skipna=True) == "boolean":
        raise refuse("holds booleans; declare it ':bool'")
    if pd.api.types.is_datetime64_any_dtype(series):
        raise refuse("holds times")
    if pd.api.types.is_numeric_dtype(series):
        numbers = np.asarray(series.astype("float64").to_numpy(), dtype=float) if kind == "float" else None
    else:
        coerced = pd.to_numeric(series, errors="coerce")
        bad = ~null & np.asarray(coerced.isna().to_numpy(), dtype=bool)
        if bad.any():
            raise refuse(first_bad(bad))
        series = coerced
        numbers = None
    if kind == "float":
        if numbers is None:
            numbers = np.asarray(series.astype("float64").to_numpy(), dtype=float)
        numbers = np.where(null, 0.0, numbers)
        if np.isinf(numbers).any():
            raise refuse(first_bad(np.isinf(numbers)) + " (infinite); send a finite number or leave it empty")
        return Values(numbers, null)
    # int
    if pd.api.types.is_integer_dtype(series):
        return Values(np.asarray(series.fillna(0).to_numpy(), dtype=np.int64), null)
    floats = np.asarray(series.astype("float64").to_numpy(), dtype=float)
    floats = np.where(null, 0.0, floats)
    bad = ~null & ((floats != np.round(floats)) | np.isinf(floats) | (np.abs(floats) > 2**53))
    if bad.any():
        raise refuse(first_bad(bad) + ", which is not a whole number")
    return Values(floats.astype(np.int64), null)


def convert_key(series: "pd.Series", kind: str, column: str, argument: str, where: str, view: str | None) -> Values:
    """A key column: no nulls, and its type must match the view's (text is never read as a number,
    nor a number as text: '007' and 7 are different keys)."""
    import numpy as np
    import pandas as pd

    null = np.asarray(series.isna().to_numpy(), dtype=bool)
    found = infer_type(series, key=True)
    if found != kind:
        whose = f"the view '{view}' keys it as {kind}" if view else f"it was declared {kind}"
        shown = {None: "times", "string": "text", "int": "integers", "float": "fractional numbers", "bool": "booleans"}
        raise InvalidInput(
            f"key column '{column}' of {where} holds {shown.get(found, found)}, but {whose}; key types must match "
            + ("(store the key as text)" if kind == "string" else "(store the key as whole numbers)"),
            argument=argument,
        )
    if null.any():
        i = int(np.argmax(null))
        raise InvalidInput(
            f"key column '{column}' of {where} is empty in {int(null.sum())} row(s) (first: row {series.index[i]}); "
            "every row needs its key",
            argument=argument,
        )
    if kind == "int":
        if pd.api.types.is_integer_dtype(series):
            return Values(np.asarray(series.to_numpy(), dtype=np.int64), null)
        return convert(series, "int", column, argument, where)
    return convert(series, "string", column, argument, where)


# -- a whole source ---------------------------------------------------------------------------------
@dataclass
class PreparedRows:
    """A source's rows, checked against a definition, ready to append."""

    n: int
    keys: list[Values]
    event: "np.ndarray"
    created: "np.ndarray | None"
    created_null: "np.ndarray | None"
    features: list[Values]
    assumed_utc: list[str] = field(default_factory=list)

    @property
    def min_event(self) -> int:
        return int(self.event.min())

    @property
    def max_event(self) -> int:
        return int(self.event.max())

    def clustered(self) -> "PreparedRows":
        """The rows ordered by (keys, event time, created time), rows that tie on all of these
        keeping their order in the file. Appended in this order, a key's rows sit together in the
        table (the point-in-time join then reads neighbouring pages), and ingestion order, which
        only ever decides between rows tied on all three, is unchanged among them."""
        import numpy as np

        if self.n < 2:
            return self
        created = np.zeros(self.n, dtype=np.int64) if self.created is None else np.where(
            self.created_null, np.iinfo(np.int64).min, self.created)  # type: ignore[arg-type]
        order = np.lexsort((np.arange(self.n), created, self.event, *reversed([sort_codes(k.data) for k in self.keys])))

        def take(v: Values) -> Values:
            return Values(v.data[order], v.null[order])

        return PreparedRows(
            self.n, [take(k) for k in self.keys], self.event[order],
            None if self.created is None else self.created[order],
            None if self.created_null is None else self.created_null[order],
            [take(f) for f in self.features], list(self.assumed_utc),
        )


def sort_codes(values: "np.ndarray") -> "np.ndarray":
    """Integers that sort like ``values`` (text keys through sorted factorization; nulls first)."""
    import numpy as np
    import pandas as pd

    if values.dtype != object:
        return values
    codes, _ = pd.factorize(values, sort=True, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def infer_definition(
    frame: "pd.DataFrame",
    entities: list[str],
    timestamp_column: str,
    created_column: str | None,
    features: list[str] | None,
    ttl_seconds: int | None,
    where: str,
) -> tuple[ViewDefinition, list[str]]:
    """A definition from a source and the caller's choices; types not given are inferred."""
    warnings: list[str] = []
    keys = parse_typed_names(entities, "entities", KEY_TYPES)
    if not keys:
        raise InvalidInput("give the entity key column(s), e.g. ['team_id']", argument="entities")
    if len(keys) > MAX_ENTITIES:
        raise InvalidInput(f"{len(keys)} key columns; at most {MAX_ENTITIES}", argument="entities")
    check_column_name(timestamp_column, "timestamp_column")
    if created_column is not None:
        check_column_name(created_column, "created_column")
    wanted = {name: "entities" for name, _ in keys}
    wanted[timestamp_column] = "timestamp_column"
    if created_column:
        wanted[created_column] = "created_column"
    require_columns(frame, wanted, where)
    if created_column == timestamp_column:
        raise InvalidInput("created_column must differ from timestamp_column", argument="created_column")
    taken = {name for name, _ in keys} | {timestamp_column} | ({created_column} if created_column else set())
    clash = sorted(taken & {n for n, _ in keys} & {timestamp_column, created_column or ""})
    if clash:
        raise InvalidInput(f"{listing(clash)} cannot be both a key and a timestamp", argument="entities")
    key_types: list[tuple[str, str]] = []
    for name, declared in keys:
        kind = declared or infer_type(frame[name], key=True)
        if kind not in KEY_TYPES:
            raise InvalidInput(
                f"key column '{name}' holds {frame[name].dtype} values; keys are integers or text", argument="entities"
            )
        key_types.append((name, kind))
    if features is None:
        chosen: list[tuple[str, str | None]] = []
        for column in frame.columns:
            if column in taken:
                continue
            if infer_type(frame[column]) is None or is_time_like(frame[column]):
                warnings.append(f"left out '{column}': it holds times, which are not feature values")
                continue
            chosen.append((column, None))
    else:
        chosen = parse_typed_names(features, "features", FEATURE_TYPES)
        require_columns(frame, {n: "features" for n, _ in chosen}, where)
        inside = sorted({n for n, _ in chosen} & taken)
        if inside:
            raise InvalidInput(f"{listing(inside)} are keys or timestamps, not features", argument="features")
    if not chosen:
        raise InvalidInput(f"{where} has no feature columns besides the keys and timestamps", argument="features")
    if len(chosen) > MAX_FEATURES:
        raise InvalidInput(f"{len(chosen)} features; at most {MAX_FEATURES} per view", argument="features")
    typed: list[tuple[str, str]] = []
    for name, declared in chosen:
        kind = declared or infer_type(frame[name])
        if kind is None:
            raise InvalidInput(f"feature '{name}' holds times, which are not feature values", argument="features")
        typed.append((name, kind))
    return ViewDefinition.build(key_types, timestamp_column, created_column, typed, ttl_seconds), warnings


def prepare_rows(frame: "pd.DataFrame", definition: ViewDefinition, view: str, where: str, argument: str) -> PreparedRows:
    """Check every row against ``definition`` and convert it; raises before anything is written."""
    import numpy as np

    wanted = {e.name: argument for e in definition.entities}
    wanted[definition.timestamp_column] = argument
    if definition.created_column:
        wanted[definition.created_column] = argument
    wanted.update({f.name: argument for f in definition.features})
    require_columns(frame, wanted, where)
    keys = [convert_key(frame[e.name], e.type, e.name, argument, where, view) for e in definition.entities]
    event = to_micros(frame[definition.timestamp_column], definition.timestamp_column, argument, where)
    if event.null.any():
        i = int(np.argmax(event.null))
        raise InvalidInput(
            f"column '{definition.timestamp_column}' (the event time) of {where} is empty in {int(event.null.sum())} "
            f"row(s) (first: row {frame.index[i]}); every feature row needs the time it describes",
            argument=argument,
        )
    assumed = [definition.timestamp_column] if event.assumed_utc else []
    created = created_null = None
    if definition.created_column:
        times = to_micros(frame[definition.created_column], definition.created_column, argument, where)
        created, created_null = times.micros, times.null
        if times.assumed_utc:
            assumed.append(definition.created_column)
    features = [convert(frame[f.name], f.type, f.name, argument, where) for f in definition.features]
    return PreparedRows(len(frame), keys, event.micros, created, created_null, features, assumed)


def text_columns(definition: ViewDefinition) -> list[str]:
    """Columns a CSV must be read as text for this definition (string keys and features)."""
    return [c.name for c in (*definition.entities, *definition.features) if c.type == "string"]


def python_rows(rows: PreparedRows, ingest_id: int, bool_as_int: bool, lo: int = 0, hi: int | None = None) -> Any:
    """Row tuples ``(ingest_id, keys..., event_ts, created_ts, features...)`` of rows ``lo:hi`` for
    an executemany: columns go through numpy's ``tolist`` (fast) and nulls become None."""
    import numpy as np

    hi = rows.n if hi is None else hi

    def column(values: "np.ndarray", null: "np.ndarray | None", as_int: bool = False) -> list[Any]:
        part = values[lo:hi]
        items = part.astype(np.int64).tolist() if as_int else part.tolist()
        if null is not None:
            missing = null[lo:hi]
            if missing.any():
                for i in np.flatnonzero(missing).tolist():
                    items[i] = None
        return items

    columns: list[list[Any]] = [[ingest_id] * (hi - lo)]
    columns += [column(k.data, None) for k in rows.keys]
    columns.append(rows.event[lo:hi].tolist())
    columns.append([None] * (hi - lo) if rows.created is None else column(rows.created, rows.created_null))
    for values in rows.features:
        columns.append(column(values.data, values.null, bool_as_int and values.data.dtype == bool))
    return zip(*columns)
