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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_mcp.core.errors import InvalidInput, listing

log = logging.getLogger("mlops_mcp.drift")

FORMAT_VERSION = 1
KINDS = ("numeric", "categorical")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PSI_BINS = 10  # reference deciles


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
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "datetime"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "empty":
        return "empty"
    if inferred == "boolean":
        return "bool"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    if inferred in ("datetime", "datetime64", "date", "timedelta", "timedelta64", "time", "period"):
        return "datetime"
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


def sorted_finite(values: np.ndarray) -> np.ndarray:
    """Sort once and keep the finite part (NaN and +-inf count as missing)."""
    s = np.sort(values)
    lo = int(np.searchsorted(s, -np.inf, side="right"))
    hi = int(np.searchsorted(s, np.inf, side="left"))
    return s[lo:hi]


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


def numeric_summary(s: np.ndarray) -> dict[str, float]:
    """Mean, std and quantiles of a sorted finite sample, for the human-readable shift summary."""
    q = quantiles_sorted(s)
    return {
        "mean": float(s.mean()),
        "std": float(s.std()),
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


# --------------------------------------------------------------------------- the prepared reference


@dataclass
class NumericReference:
    """A numeric column of the reference: sorted finite values plus what checks reuse."""

    values: np.ndarray  # sorted, finite, float64
    n_missing: int
    has_ties: bool
    std: float
    summary: dict[str, float]
    edges: np.ndarray  # interior decile edges (unique)
    bins: np.ndarray  # reference counts in those bins

    @classmethod
    def build(cls, raw: np.ndarray) -> NumericReference:
        s = sorted_finite(raw)
        n_missing = int(raw.size - s.size)
        if s.size == 0:
            empty = np.empty(0)
            return cls(s, n_missing, False, 0.0, {}, empty, np.zeros(1, np.int64))
        edges = np.unique(np.asarray(quantiles_sorted(s, tuple(np.arange(1, PSI_BINS) / PSI_BINS))))
        summary = numeric_summary(s)
        ties = bool(s.size > 1 and np.any(s[1:] == s[:-1]))
        return cls(s, n_missing, ties, summary["std"], summary, edges, bin_counts(s, edges))


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
        items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([k for k, _ in items], np.array([v for _, v in items], dtype=np.int64), n_missing, family)

    @property
    def n_values(self) -> int:
        return int(self.counts.sum())


@dataclass
class PreparedReference:
    """Everything a drift check needs from the reference sample, computed once.

    ``columns`` lists the columns that can be checked (order of the frame); ``kinds`` maps each to
    'numeric' or 'categorical'; ``skipped`` names columns left out and why (e.g. datetimes).
    """

    n_rows: int
    kinds: dict[str, str]
    numeric: dict[str, NumericReference] = field(default_factory=dict)
    categorical: dict[str, CategoricalReference] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

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
                if meta.get("format") != FORMAT_VERSION:
                    raise InvalidInput(
                        f"'{path.name}' has prepared-reference format {meta.get('format')}; "
                        f"this version reads format {FORMAT_VERSION}. Prepare the reference again.",
                        argument="reference",
                    )
                ref = cls(n_rows=int(meta["n_rows"]), kinds=dict(meta["kinds"]), skipped=dict(meta["skipped"]))
                for col, m in meta["numeric"].items():
                    i = m["index"]
                    ref.numeric[col] = NumericReference(
                        values=z[f"n{i}_values"],
                        n_missing=int(m["n_missing"]),
                        has_ties=bool(m["has_ties"]),
                        std=float(m["std"]),
                        summary=dict(m["summary"]),
                        edges=z[f"n{i}_edges"],
                        bins=z[f"n{i}_bins"],
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


def infer_kind(series: pd.Series, family: str) -> str | None:
    """numeric, categorical, or None (not checkable, e.g. datetimes).

    bool / strings / pandas categories -> categorical; numbers with at most 2 distinct values ->
    categorical (binary: a 0/1 flag is a share, not a distribution); other numbers -> numeric.
    """
    if family in ("bool", "string"):
        return "categorical"
    if family == "numeric":
        if isinstance(series.dtype, pd.CategoricalDtype):
            return "categorical"
        if series.nunique(dropna=True) <= 2:
            return "categorical"
        return "numeric"
    if family == "empty":
        return "numeric" if pd.api.types.is_numeric_dtype(series.dtype) else "categorical"
    return None


def prepare_reference(frame: pd.DataFrame, kinds: dict[str, str] | None = None) -> PreparedReference:
    """Sort, bin and count the reference sample once; see the module docstring for why.

    ``kinds`` maps column -> 'numeric' | 'categorical' and overrides the inference for the columns it
    names (other columns are still inferred).
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
            f"unknown kind(s) {listing(f'{c}={k}' for c, k in bad.items())}; accepted: numeric, categorical",
            argument="kinds",
        )
    ref = PreparedReference(n_rows=int(len(frame)), kinds={})
    for col in frame.columns:
        name = str(col)
        series = frame[col]
        family = family_of(series)
        kind = kinds.get(name) or infer_kind(series, family)
        if kind is None:
            ref.skipped[name] = f"values of type {family} ({series.dtype}) are not checked; accepted: numbers, categories"
            continue
        if kind == "numeric" and family not in ("numeric", "bool", "empty"):
            raise InvalidInput(
                f"column '{name}' holds {family} values and cannot be treated as numeric; "
                "use 'categorical' for it",
                argument="kinds",
            )
        ref.kinds[name] = kind
        if kind == "numeric":
            ref.numeric[name] = NumericReference.build(numeric_values(series))
        else:
            ref.categorical[name] = CategoricalReference.build(series, family)
    log.debug("prepared reference: %d rows, %d columns", ref.n_rows, len(ref.kinds))
    return ref
