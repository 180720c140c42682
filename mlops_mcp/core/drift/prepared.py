"""The reference side of a drift check, prepared once per model version.

Why: every check compares current data with the same training sample. Sorting the numeric columns,
cutting their decile bins and counting the categories of that sample is work that does not depend
on the current data, so it is done once (``prepare_reference``), kept in a compact ``.npz`` file
beside the version's reference profile (``save`` / ``load``), and a check pays only for the current
data.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_mcp.core.errors import InvalidInput, listing

log = logging.getLogger("mlops_mcp.drift")

FORMAT_VERSION = 2  # 2: discrete levels of numeric columns, datetime columns (1 still loads)
KINDS = ("numeric", "categorical", "datetime")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PSI_BINS = 10  # reference deciles
DISCRETE_MAX_LEVELS = 20  # integer columns with at most this many distinct values are tested as counts
DATE_SAMPLE = 200  # string values looked at to decide whether a column holds ISO dates
ISO_DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}:?\d{2})?"
)


# --------------------------------------------------------------------------- value families


def family_of(series: pd.Series) -> str:
    """'numeric', 'bool', 'string' or 'empty': what kind of values a column holds.

    Used to catch a column whose type changed between reference and current (numbers became
    strings) instead of comparing apples with labels.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if len(cats) == 0:
            return "empty"
        return family_of(pd.Series(cats))
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "string" if series.notna().any() else "empty"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "empty":
        return "empty"
    if inferred == "boolean":
        return "bool"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    if inferred in ("datetime", "datetime64", "date"):
        return "datetime"
    if inferred in ("timedelta", "timedelta64"):
        return "timedelta"
    if inferred in ("time", "period"):
        return inferred
    return "string"


def norm_key(value: object) -> str:
    """The category label of a value: integral floats print as ints, so 1 and 1.0 are one category."""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def count_categories(series: pd.Series) -> tuple[dict[str, int], int]:
    """Category label -> count (missing values excluded) and the number of missing values."""
    counts = series.value_counts(dropna=True, sort=False)
    out: dict[str, int] = {}
    for key, n in zip(counts.index.tolist(), counts.to_numpy().tolist()):
        if n:
            k = norm_key(key)
            out[k] = out.get(k, 0) + int(n)
    n_missing = int(len(series) - sum(out.values()))
    return out, n_missing


def numeric_values(series: pd.Series) -> np.ndarray:
    """A numeric column as float64 (missing -> NaN), without a copy when it already is float64."""
    if series.dtype == np.float64:
        return series.to_numpy()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def finite_part(s: np.ndarray) -> np.ndarray:
    """The finite slice of a sorted array (NaN and +-inf count as missing)."""
    lo = int(np.searchsorted(s, -np.inf, side="right"))
    hi = int(np.searchsorted(s, np.inf, side="left"))
    return s[lo:hi]


def sorted_finite(values: np.ndarray) -> np.ndarray:
    """Sort once and keep the finite part (NaN and +-inf count as missing)."""
    return finite_part(np.sort(values))


def non_nan_part(s: np.ndarray) -> np.ndarray:
    """The slice of a sorted array before its NaN tail (np.sort puts NaN last)."""
    return s[: int(np.searchsorted(s, np.nan, side="left"))]


def quantiles_sorted(s: np.ndarray, probs: tuple[float, ...] = QUANTILES) -> list[float]:
    """np.quantile's default (linear) on an already sorted array, in O(1) per quantile."""
    n = s.size
    out = []
    for p in probs:
        h = (n - 1) * p
        lo = int(math.floor(h))
        hi = min(lo + 1, n - 1)
        out.append(float(s[lo] + (h - lo) * (s[hi] - s[lo])))
    return out


CHUNK = 1 << 16  # values per block in passes that would otherwise allocate a whole-column temporary


def std_of(s: np.ndarray, mean: float) -> float:
    """np.std (ddof=0) in cache-sized blocks: no temporary as large as the column.

    Why: ``ndarray.std`` materialises ``x - mean`` for the whole column; at 5,000,000 rows that
    40 MB temporary made the std grow faster than the data (7.6x the time for 5x the rows).
    """
    total = 0.0
    for i in range(0, s.size, CHUNK):
        d = s[i : i + CHUNK] - mean
        total += float(np.einsum("i,i->", d, d))  # not np.dot: BLAS thread wake-ups (methods.dot)
    return math.sqrt(total / s.size) if s.size else float("nan")


def numeric_summary(s: np.ndarray) -> dict[str, float]:
    """Mean, std and quantiles of a sorted finite sample, for the human-readable shift summary."""
    q = quantiles_sorted(s)
    mean = float(s.mean())
    return {
        "mean": mean,
        "std": std_of(s, mean),
        "p5": q[0],
        "p25": q[1],
        "p50": q[2],
        "p75": q[3],
        "p95": q[4],
        "min": float(s[0]),
        "max": float(s[-1]),
    }


def bin_counts(s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of a sorted sample in (-inf, e1], (e1, e2], ..., (ek, inf)."""
    cuts = np.searchsorted(s, edges, side="right")
    return np.diff(np.concatenate([[0], cuts, [s.size]])).astype(np.int64)


def at_most_two_values(s: np.ndarray) -> bool:
    """Does a sorted array (NaN excluded) hold at most 2 distinct values? O(log n).

    Why not ``Series.nunique()``: it hashes every value (about two thirds of preparing a
    5,000,000-row reference went there) only to learn this; in a sorted array every value equals
    the first or the last exactly when the run of the first reaches the run of the last.
    """
    if s.size == 0:
        return True
    return bool(np.searchsorted(s, s[0], side="right") >= np.searchsorted(s, s[-1], side="left"))


def discrete_levels(s: np.ndarray, limit: int = DISCRETE_MAX_LEVELS) -> tuple[np.ndarray, np.ndarray] | None:
    """(distinct values, their counts) of a sorted finite sample of integers with at most ``limit``
    distinct values, else None. O(limit log n): it jumps from run to run with binary searches."""
    if s.size == 0:
        return None
    starts = [0]
    while len(starts) <= limit:
        nxt = int(np.searchsorted(s, s[starts[-1]], side="right"))
        if nxt >= s.size:
            break
        starts.append(nxt)
    else:
        return None
    levels = s[starts]
    if not np.all(np.floor(levels) == levels):
        return None
    counts = np.diff(np.append(starts, s.size)).astype(np.int64)
    return levels.astype(np.float64), counts


def quantiles_from_counts(levels: np.ndarray, counts: np.ndarray, probs: tuple[float, ...] = QUANTILES) -> list[float]:
    """np.quantile's default (linear) for a sample given as distinct sorted values and counts."""
    n = int(counts.sum())
    ends = np.cumsum(counts)  # index (exclusive) where each level's run ends in the sorted sample
    out = []
    for p in probs:
        h = (n - 1) * p
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        v_lo = levels[int(np.searchsorted(ends, lo, side="right"))]
        v_hi = levels[int(np.searchsorted(ends, hi, side="right"))]
        out.append(float(v_lo + (h - lo) * (v_hi - v_lo)))
    return out


def summary_from_counts(levels: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """:func:`numeric_summary` of a sample given as distinct values and counts (no sort needed)."""
    n = counts.sum()
    mean = float(np.dot(levels, counts) / n)
    std = float(math.sqrt(max(float(np.dot((levels - mean) ** 2, counts) / n), 0.0)))
    q = quantiles_from_counts(levels, counts)
    nz = np.flatnonzero(counts)
    return {
        "mean": mean,
        "std": std,
        "p5": q[0],
        "p25": q[1],
        "p50": q[2],
        "p75": q[3],
        "p95": q[4],
        "min": float(levels[nz[0]]),
        "max": float(levels[nz[-1]]),
    }


# --------------------------------------------------------------------------- dates


def looks_like_dates(series: pd.Series) -> bool:
    """True when a string column's values are ISO 8601 dates or date-times (checked on up to 200
    values spread over the column), so drift compares them as time rather than as labels."""
    values = series.dropna()
    if values.empty:
        return False
    step = max(1, len(values) // DATE_SAMPLE)
    sample = values.iloc[::step][:DATE_SAMPLE]
    return all(isinstance(v, str) and ISO_DATE.fullmatch(v.strip()) is not None for v in sample)


def epoch_seconds(series: pd.Series) -> tuple[np.ndarray, int]:
    """Seconds since 1970-01-01 UTC as float64 (missing -> NaN), and the number of non-missing
    values that could not be read as dates. Naive times are taken as UTC; strings are read as ISO 8601."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series if getattr(series.dtype, "tz", None) is not None else series.dt.tz_localize("UTC")
        unreadable = 0
    else:
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        strings = pd.api.types.is_string_dtype(series.dtype) or pd.api.types.infer_dtype(series, skipna=True) == "string"
        stamps = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601" if strings else None)
        unreadable = int(series.notna().sum() - stamps.notna().sum())
    if getattr(stamps.dtype, "tz", None) is None:
        stamps = stamps.dt.tz_localize("UTC")
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype=np.float64, na_value=np.nan), unreadable


def iso_time(seconds: float) -> str:
    """An epoch value as ISO 8601 (UTC), to the second."""
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- the prepared reference


@dataclass
class NumericReference:
    """A numeric (or datetime, as epoch seconds) column of the reference: sorted finite values plus
    what checks reuse. ``levels``/``level_counts`` are set for integer columns with at most
    ``DISCRETE_MAX_LEVELS`` distinct values (tested as counts, see the engine)."""

    values: np.ndarray  # sorted, finite, float64
    n_missing: int
    has_ties: bool
    std: float
    summary: dict[str, float]
    edges: np.ndarray  # interior decile edges (unique)
    bins: np.ndarray  # reference counts in those bins
    levels: np.ndarray | None = None  # distinct values of a discrete column
    level_counts: np.ndarray | None = None  # their counts

    @classmethod
    def build(cls, raw: np.ndarray) -> NumericReference:
        return cls.from_sorted(np.sort(raw), raw.size)

    @classmethod
    def from_sorted(cls, s_all: np.ndarray, n_raw: int) -> NumericReference:
        """From the sorted raw values (NaN last, as np.sort leaves them): no second sort."""
        s = finite_part(s_all)
        n_missing = int(n_raw - s.size)
        if s.size == 0:
            empty = np.empty(0)
            return cls(s, n_missing, False, 0.0, {}, empty, np.zeros(1, np.int64))
        edges = np.unique(np.asarray(quantiles_sorted(s, tuple(np.arange(1, PSI_BINS) / PSI_BINS))))
        summary = numeric_summary(s)
        discrete = discrete_levels(s)
        levels, level_counts = discrete if discrete is not None else (None, None)
        ties = discrete is not None or bool(s.size > 1 and np.any(s[1:] == s[:-1]))
        return cls(s, n_missing, ties, summary["std"], summary, edges, bin_counts(s, edges), levels, level_counts)


@dataclass
class CategoricalReference:
    """A categorical column of the reference: labels, their counts, the family of the values."""

    categories: list[str]
    counts: np.ndarray  # int64, aligned with categories, most frequent first
    n_missing: int
    family: str

    @classmethod
    def build(cls, series: pd.Series, family: str) -> CategoricalReference:
        counts, n_missing = count_categories(series)
        return cls.from_counts(counts, n_missing, family)

    @classmethod
    def from_counts(cls, counts: dict[str, int], n_missing: int, family: str) -> CategoricalReference:
        items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([k for k, _ in items], np.array([v for _, v in items], dtype=np.int64), n_missing, family)

    @classmethod
    def from_sorted_numbers(cls, s_all: np.ndarray, n_raw: int) -> CategoricalReference:
        """A numeric column with at most 2 distinct values, from its sorted values (NaN last): the
        same labels and counts :func:`count_categories` gives, without hashing the column."""
        s = non_nan_part(s_all)
        counts: dict[str, int] = {}
        if s.size:
            first = int(np.searchsorted(s, s[0], side="right"))
            counts[norm_key(s[0].item())] = first
            if first < s.size:
                counts[norm_key(s[-1].item())] = counts.get(norm_key(s[-1].item()), 0) + int(s.size - first)
        return cls.from_counts(counts, int(n_raw - s.size), "numeric")

    @property
    def n_values(self) -> int:
        return int(self.counts.sum())


@dataclass
class PreparedReference:
    """Everything a drift check needs from the reference sample, computed once.

    ``columns`` lists the columns that can be checked (order of the frame); ``kinds`` maps each to
    'numeric', 'categorical' or 'datetime' (datetimes are kept in ``numeric`` as epoch seconds);
    ``skipped`` names columns left out and why (e.g. durations). ``format`` is the file format it
    was read from (older formats lack what newer versions of the engine infer, e.g. dates).
    """

    n_rows: int
    kinds: dict[str, str]
    numeric: dict[str, NumericReference] = field(default_factory=dict)
    categorical: dict[str, CategoricalReference] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    def n_values(self, column: str) -> int:
        if column in self.numeric:
            return int(self.numeric[column].values.size)
        return self.categorical[column].n_values

    def n_missing(self, column: str) -> int:
        if column in self.numeric:
            return self.numeric[column].n_missing
        return self.categorical[column].n_missing

    # ----------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> Path:
        """Write one ``.npz`` file: sorted arrays and counts as arrays, the rest as a JSON header.

        Plain (uncompressed) npz: sorted floats barely compress and loading stays a memory copy.
        Loading never unpickles anything (``allow_pickle=False``).
        """
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, object] = {
            "format": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "kinds": self.kinds,
            "skipped": self.skipped,
            "numeric": {},
            "categorical": {},
        }
        for i, (col, nr) in enumerate(self.numeric.items()):
            arrays[f"n{i}_values"] = nr.values
            arrays[f"n{i}_edges"] = nr.edges
            arrays[f"n{i}_bins"] = nr.bins
            if nr.levels is not None and nr.level_counts is not None:
                arrays[f"n{i}_levels"] = nr.levels
                arrays[f"n{i}_level_counts"] = nr.level_counts
            meta["numeric"][col] = {  # type: ignore[index]
                "index": i,
                "n_missing": nr.n_missing,
                "has_ties": nr.has_ties,
                "std": nr.std,
                "summary": nr.summary,
            }
        for i, (col, cr) in enumerate(self.categorical.items()):
            arrays[f"c{i}_counts"] = cr.counts
            meta["categorical"][col] = {  # type: ignore[index]
                "index": i,
                "categories": cr.categories,
                "n_missing": cr.n_missing,
                "family": cr.family,
            }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> PreparedReference:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                version = meta.get("format")
                if version not in (1, FORMAT_VERSION):
                    raise InvalidInput(
                        f"'{path.name}' has prepared-reference format {version}; "
                        f"this version reads formats 1 and {FORMAT_VERSION}. Prepare the reference again.",
                        argument="reference",
                    )
                ref = cls(
                    n_rows=int(meta["n_rows"]), kinds=dict(meta["kinds"]), skipped=dict(meta["skipped"]), format=int(version)
                )
                for col, m in meta["numeric"].items():
                    i = m["index"]
                    values = z[f"n{i}_values"]
                    if f"n{i}_levels" in z.files:
                        discrete: tuple[np.ndarray, np.ndarray] | None = (z[f"n{i}_levels"], z[f"n{i}_level_counts"])
                    else:  # format 1 did not keep them; format 2 leaves them out when there are none
                        discrete = discrete_levels(values) if version == 1 else None
                    ref.numeric[col] = NumericReference(
                        values=values,
                        n_missing=int(m["n_missing"]),
                        has_ties=bool(m["has_ties"]),
                        std=float(m["std"]),
                        summary=dict(m["summary"]),
                        edges=z[f"n{i}_edges"],
                        bins=z[f"n{i}_bins"],
                        levels=None if discrete is None else discrete[0],
                        level_counts=None if discrete is None else discrete[1],
                    )
                for col, m in meta["categorical"].items():
                    i = m["index"]
                    ref.categorical[col] = CategoricalReference(
                        categories=list(m["categories"]),
                        counts=z[f"c{i}_counts"],
                        n_missing=int(m["n_missing"]),
                        family=str(m["family"]),
                    )
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(
                f"cannot read a prepared reference from '{path.name}': {exc}", argument="reference"
            ) from exc
        return ref


SKIP_REASONS = {
    "timedelta": "durations (timedelta) are not checked; convert them to numbers (e.g. seconds) to check them",
    "time": "times of day are not checked; convert them to numbers (e.g. seconds since midnight) to check them",
    "period": "periods are not checked; convert them to dates or numbers to check them",
}


def infer_kind(series: pd.Series, family: str) -> str | None:
    """numeric, categorical, datetime, or None (not checkable: the reason is in ``SKIP_REASONS``).

    bool / strings / pandas categories -> categorical; datetimes and ISO 8601 date strings ->
    datetime (compared as time); numbers with at most 2 distinct values -> categorical (binary: a
    0/1 flag is a share, not a distribution); other numbers -> numeric.
    (``prepare_reference`` decides the numeric/binary split from the sorted values instead.)
    """
    if family == "datetime":
        return "datetime"
    if family == "string":
        if not isinstance(series.dtype, pd.CategoricalDtype) and looks_like_dates(series):
            return "datetime"
        return "categorical"
    if family == "bool":
        return "categorical"
    if family == "numeric":
        if isinstance(series.dtype, pd.CategoricalDtype):
            return "categorical"
        s = np.sort(numeric_values(series))
        return "categorical" if at_most_two_values(non_nan_part(s)) else "numeric"
    if family == "empty":
        return "numeric" if pd.api.types.is_numeric_dtype(series.dtype) else "categorical"
    return None


def _add_numbers(ref: PreparedReference, name: str, series: pd.Series, kind: str | None) -> None:
    """A numeric-family column: sorted once, and that one sort decides binary vs numeric."""
    raw = numeric_values(series)
    s_all = np.sort(raw)
    nonnan = non_nan_part(s_all)
    ends = nonnan[[0, -1]] if nonnan.size else np.zeros(0)
    exact = not np.any(np.isfinite(ends) & (np.abs(ends) >= 2.0**53))  # else floats merge distinct integers
    if kind is None:
        binary = at_most_two_values(nonnan) if exact else series.nunique(dropna=True) <= 2
        kind = "categorical" if binary else "numeric"
    ref.kinds[name] = kind
    if kind == "numeric":
        ref.numeric[name] = NumericReference.from_sorted(s_all, raw.size)
    elif exact:
        ref.categorical[name] = CategoricalReference.from_sorted_numbers(s_all, raw.size)
    else:
        ref.categorical[name] = CategoricalReference.build(series, "numeric")


def prepare_reference(frame: pd.DataFrame, kinds: dict[str, str] | None = None) -> PreparedReference:
    """Sort, bin and count the reference sample once; see the module docstring for why.

    ``kinds`` maps column -> 'numeric' | 'categorical' | 'datetime' and overrides the inference for
    the columns it names (other columns are still inferred). Columns that cannot be checked are
    listed in ``skipped`` with the reason.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput("the reference must be a pandas DataFrame", argument="reference")
    if frame.shape[1] == 0:
        raise InvalidInput("the reference has no columns", argument="reference")
    kinds = dict(kinds or {})
    unknown = [c for c in kinds if c not in frame.columns]
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {listing(unknown)}; the reference has {listing(frame.columns)}", argument="kinds"
        )
    bad = {c: k for c, k in kinds.items() if k not in KINDS}
    if bad:
        raise InvalidInput(
            f"unknown kind(s) {listing(f'{c}={k}' for c, k in bad.items())}; accepted: {', '.join(KINDS)}",
            argument="kinds",
        )
    ref = PreparedReference(n_rows=int(len(frame)), kinds={})
    for col in frame.columns:
        name = str(col)
        series = frame[col]
        family = family_of(series)
        forced = kinds.get(name)
        if forced is None and family == "numeric" and not isinstance(series.dtype, pd.CategoricalDtype):
            _add_numbers(ref, name, series, None)
            continue
        kind = forced or infer_kind(series, family)
        if kind is None:
            ref.skipped[name] = SKIP_REASONS.get(
                family, f"values of type {family} ({series.dtype}) are not checked; accepted: numbers, categories, dates"
            )
            continue
        if kind == "numeric" and family not in ("numeric", "bool", "empty"):
            raise InvalidInput(
                f"column '{name}' holds {family} values and cannot be treated as numeric; "
                "use 'categorical' for it",
                argument="kinds",
            )
        if kind == "datetime" and family not in ("datetime", "string", "empty"):
            raise InvalidInput(
                f"column '{name}' holds {family} values and cannot be treated as dates; accepted for "
                "'datetime': datetime values or ISO 8601 strings",
                argument="kinds",
            )
        if kind == "numeric" and family in ("numeric", "bool") and not isinstance(series.dtype, pd.CategoricalDtype):
            _add_numbers(ref, name, series, "numeric")
            continue
        ref.kinds[name] = kind
        if kind == "numeric":
            ref.numeric[name] = NumericReference.build(numeric_values(series))
        elif kind == "datetime":
            seconds, unreadable = epoch_seconds(series)
            if unreadable and unreadable == int(series.notna().sum()):
                raise InvalidInput(
                    f"column '{name}' has no value readable as an ISO 8601 date; use 'categorical' for it",
                    argument="kinds",
                )
            ref.numeric[name] = NumericReference.build(seconds)
        else:
            ref.categorical[name] = CategoricalReference.build(series, family)
    log.debug("prepared reference: %d rows, %d columns", ref.n_rows, len(ref.kinds))
    return ref
