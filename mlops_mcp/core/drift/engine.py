"""The multi-column drift check: per-column statistics, multiple-testing correction, the verdict.

See the package docstring (``mlops_mcp.core.drift``) for the ``auto`` rule.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_mcp.core.drift import methods as m
from mlops_mcp.core.drift.prepared import (
    CategoricalReference,
    NumericReference,
    PreparedReference,
    bin_counts,
    count_categories,
    family_of,
    norm_key,
    numeric_summary,
    numeric_values,
)
from mlops_mcp.core.errors import InvalidInput, listing

log = logging.getLogger("mlops_mcp.drift")

TESTS = ("ks", "cramer_von_mises", "chi2", "ztest")
DISTANCES = ("wasserstein", "psi", "jensenshannon", "hellinger", "kl_div")
METHODS: tuple[str, ...] = ("auto",) + TESTS + DISTANCES
NUMERIC_ONLY = ("ks", "wasserstein", "cramer_von_mises")
CORRECTIONS = ("bh", "holm", "bonferroni", "none")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "wasserstein": 0.1,  # normed by the reference std (Evidently's default)
    "psi": 0.1,  # 0.1 "moderate" / 0.25 "significant" shift convention
    "jensenshannon": 0.05,  # base-2 distance; auto's categorical effect threshold
    "hellinger": 0.1,
    "kl_div": 0.1,
}
MIN_VALUES = 5  # non-missing values per side below which a column is skipped, not guessed
ALL_MISSING = "all values missing in current data"
MC_DRAWS = 1999


@dataclass
class ColumnDrift:
    """The verdict on one column. ``status`` is 'ok', 'skipped' (not enough data) or 'error'."""

    column: str
    kind: str
    method: str
    status: str = "ok"
    reason: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    p_value_method: str | None = None
    effect_size: float | None = None
    effect_metric: str | None = None
    effect_threshold: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    severity: float | None = None
    n_reference: int = 0
    n_current: int = 0
    missing_reference: int = 0
    missing_current: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass
class DriftReport:
    """Dataset-level verdict plus the per-column results."""

    columns: list[ColumnDrift]
    method: str
    alpha: float
    correction: str
    drift_share: float
    share_drifted: float
    n_drifted: int
    n_checked: int
    drift_detected: bool
    ranked: list[str]
    n_reference: int
    n_current: int
    extra_columns: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "columns"}
        d["drifted_columns"] = self.drifted_columns
        d["columns"] = [c.to_dict() for c in self.columns]
        return _clean(d)


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# --------------------------------------------------------------------------- current-data columns


@dataclass
class _Current:
    """One current column, already reduced: sorted finite values or category counts."""

    n_rows: int
    family: str
    values: np.ndarray | None = None  # numeric: finite float64, unsorted (sorted during the check)
    counts: dict[str, int] | None = None  # categorical
    n_missing: int = 0


def _finite(values: np.ndarray) -> np.ndarray:
    """Drop NaN and +-inf (they are counted as missing), copying only when there are any."""
    ok = np.isfinite(values)
    return values if ok.all() else values[ok]


def _current_from_series(series: pd.Series, kind: str) -> _Current:
    family = family_of(series)
    if kind == "numeric":
        if family not in ("numeric", "bool"):
            return _Current(len(series), family, n_missing=int(series.isna().sum()))
        v = _finite(numeric_values(series))
        return _Current(len(series), family, values=v, n_missing=len(series) - v.size)
    counts, n_missing = count_categories(series)
    return _Current(len(series), family, counts=counts, n_missing=n_missing)


def _current_from_arrow(chunked: Any, kind: str) -> _Current:
    """A pyarrow ChunkedArray column (parquet path): no pandas copy of the whole column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = chunked.type
    n = len(chunked)
    if pa.types.is_dictionary(t):
        chunked = chunked.cast(t.value_type)
        t = chunked.type
    if pa.types.is_boolean(t):
        family = "bool"
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        family = "numeric"
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        family = "string"
    else:
        family = str(t)
    if kind == "numeric":
        if family not in ("numeric", "bool"):
            return _Current(n, family, n_missing=int(chunked.null_count))
        v = _finite(chunked.cast(pa.float64()).to_numpy())
        return _Current(n, family, values=v, n_missing=n - v.size)
    vc = pc.value_counts(chunked)
    counts: dict[str, int] = {}
    for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
        if v is None:
            continue
        k = norm_key(v)
        counts[k] = counts.get(k, 0) + int(c)
    return _Current(n, family, counts=counts, n_missing=n - sum(counts.values()))


# --------------------------------------------------------------------------- per-column statistics


@dataclass
class _Settings:
    method: str
    methods: dict[str, str]
    alpha: float
    correction: str
    thresholds: dict[str, float]


def _threshold(settings: _Settings, column: str, key: str) -> float:
    return float(settings.thresholds.get(column, settings.thresholds.get(key, DEFAULT_THRESHOLDS[key])))


def _compatible(ref_family: str, cur_family: str, kind: str) -> str | None:
    """None if the current values can be compared with the reference, else why not."""
    if cur_family == "empty":
        return None
    if kind == "numeric":
        if cur_family in ("numeric", "bool"):
            return None
        return f"type changed: numbers in the reference, {cur_family} values in the current data"
    if ref_family in ("empty", cur_family):
        return None
    return f"type changed: {ref_family} values in the reference, {cur_family} values in the current data"


def _all_missing(res: ColumnDrift, st: _Settings) -> bool:
    """A column the current data no longer fills (a broken feed) while the reference has values.

    Whatever the method, the test is the two-proportion z-test on the share of missing values
    (reference vs current, corrected with the others); the effect size is the current missing share
    (1.0). Its type cannot be judged (no values), so this comes before the type check.
    """
    if res.n_current > 0 or res.missing_current == 0 or res.n_reference < MIN_VALUES:
        return False
    z, p = m.ztest_two_proportions(
        np.array([res.missing_reference, res.n_reference]), np.array([res.missing_current, res.n_current])
    )
    res.method, res.reason = "ztest", ALL_MISSING
    res.statistic, res.p_value, res.p_value_method, res.threshold = z, p, "ztest_missing_share", st.alpha
    res.effect_size, res.effect_metric = 1.0, "missing_share"
    res.summary = {"missing_share": _missing_shares(res)}
    return True


def _check_numeric(name: str, ref: NumericReference, cur: _Current, method: str, st: _Settings) -> ColumnDrift:
    res = ColumnDrift(column=name, kind="numeric", method=method)
    res.n_reference, res.missing_reference = int(ref.values.size), ref.n_missing
    res.n_current, res.missing_current = cur.n_rows - cur.n_missing, cur.n_missing
    if _all_missing(res, st):
        return res
    problem = _compatible("numeric", cur.family, "numeric")
    if problem:
        res.status, res.reason = "error", problem
        return res
    b = cur.values if cur.values is not None else np.empty(0)
    if ref.values.size < MIN_VALUES or b.size < MIN_VALUES:
        res.status = "skipped"
        res.reason = (
            f"{ref.values.size} non-missing values in the reference and {b.size} in the current data; "
            f"at least {MIN_VALUES} on each side are needed"
        )
        return res
    if method == "ztest":
        res.status = "error"
        res.reason = "ztest needs a binary column (2 categories); this column is numeric: use ks, wasserstein, cramer_von_mises or auto"
        return res
    a = ref.values
    norm = ref.std if ref.std > 0 else max(abs(ref.summary.get("mean", 0.0)), 1.0)
    need_ks = method in ("auto", "ks")
    b, pos = m.sort_against(a, b)
    comp = m.compare_numeric(a, b, pos=pos, ks=need_ks, wasserstein=True, cvm=method == "cramer_von_mises", a_has_ties=ref.has_ties)
    w_normed = (comp.wasserstein or 0.0) / norm
    res.effect_size, res.effect_metric = w_normed, "wasserstein_normed"
    res.effect_threshold = _threshold(st, name, "wasserstein")
    if method == "auto":
        res.method, res.statistic, res.p_value, res.p_value_method = "ks", comp.ks_statistic, comp.ks_pvalue, "ks"
        res.threshold = res.effect_threshold
    elif method == "ks":
        res.statistic, res.p_value, res.p_value_method, res.threshold = comp.ks_statistic, comp.ks_pvalue, "ks", st.alpha
    elif method == "cramer_von_mises":
        res.statistic, res.p_value, res.p_value_method = comp.cvm_statistic, comp.cvm_pvalue, "cramer_von_mises"
        res.threshold = st.alpha
    elif method == "wasserstein":
        res.statistic, res.threshold = w_normed, res.effect_threshold
    else:  # count-based on the reference deciles
        cur_bins = bin_counts(b, ref.edges)
        _apply_counts(res, method, ref.bins, cur_bins, st, name)
    summary_cur = numeric_summary(b)
    rs = ref.summary
    res.summary = {
        "reference": {k: rs[k] for k in ("mean", "std", "p5", "p25", "p50", "p75", "p95")},
        "current": {k: summary_cur[k] for k in ("mean", "std", "p5", "p25", "p50", "p75", "p95")},
        "mean_shift_in_std": (summary_cur["mean"] - rs["mean"]) / norm,
        "std_ratio": summary_cur["std"] / rs["std"] if rs["std"] > 0 else None,
        "missing_share": _missing_shares(res),
    }
    if ref.std == 0:
        res.summary["note"] = "the reference is constant; Wasserstein normed by max(|mean|, 1) instead of its std"
    return res


def _missing_shares(res: ColumnDrift) -> dict[str, float]:
    tr = res.n_reference + res.missing_reference
    tc = res.n_current + res.missing_current
    return {
        "reference": res.missing_reference / tr if tr else 0.0,
        "current": res.missing_current / tc if tc else 0.0,
    }


def _apply_counts(
    res: ColumnDrift, method: str, ref_counts: np.ndarray, cur_counts: np.ndarray, st: _Settings, name: str
) -> None:
    """Statistic / p-value of a count-based method (categories or reference-decile bins)."""
    if method == "chi2":
        stat, p, _ = m.chi2_two_sample(ref_counts, cur_counts)
        res.statistic, res.p_value, res.p_value_method, res.threshold = stat, p, "chi2", st.alpha
    elif method == "ztest":
        if (ref_counts + cur_counts > 0).sum() > 2:
            res.status = "error"
            res.reason = "ztest needs a binary column (at most 2 categories); use chi2, jensenshannon, psi or auto"
            return
        z, p = m.ztest_two_proportions(ref_counts, cur_counts)
        res.statistic, res.p_value, res.p_value_method, res.threshold = z, p, "ztest", st.alpha
    else:
        fn: Callable[[np.ndarray, np.ndarray], float] = {
            "psi": m.psi,
            "jensenshannon": m.jensenshannon,
            "hellinger": m.hellinger,
            "kl_div": m.kl_div,
        }[method]
        res.statistic, res.threshold = fn(ref_counts, cur_counts), _threshold(st, name, method)


def _check_categorical(name: str, ref: CategoricalReference, cur: _Current, method: str, st: _Settings) -> ColumnDrift:
    res = ColumnDrift(column=name, kind="categorical", method=method)
    res.n_reference, res.missing_reference = ref.n_values, ref.n_missing
    res.n_current, res.missing_current = cur.n_rows - cur.n_missing, cur.n_missing
    if _all_missing(res, st):
        return res
    problem = _compatible(ref.family, cur.family, "categorical")
    if problem:
        res.status, res.reason = "error", problem
        return res
    if method in NUMERIC_ONLY:
        res.status = "error"
        res.reason = (
            f"{method} applies to numeric columns; for a categorical column use auto, chi2, ztest (binary), "
            "jensenshannon, psi, hellinger or kl_div"
        )
        return res
    counts = cur.counts or {}
    n_cur = sum(counts.values())
    if ref.n_values < MIN_VALUES or n_cur < MIN_VALUES:
        res.status = "skipped"
        res.reason = (
            f"{ref.n_values} non-missing values in the reference and {n_cur} in the current data; "
            f"at least {MIN_VALUES} on each side are needed"
        )
        return res
    index = {c: i for i, c in enumerate(ref.categories)}
    unseen = sorted((k for k in counts if k not in index), key=lambda k: (-counts[k], k))
    labels = ref.categories + unseen
    ref_counts = np.concatenate([ref.counts, np.zeros(len(unseen), np.int64)])
    cur_counts = np.array([counts.get(c, 0) for c in labels], dtype=np.int64)
    res.effect_size, res.effect_metric = m.jensenshannon(ref_counts, cur_counts), "jensenshannon"
    res.effect_threshold = _threshold(st, name, "jensenshannon")
    k_present = int(((ref_counts + cur_counts) > 0).sum())
    if method == "auto":
        if k_present <= 2:
            order = np.argsort(-(ref_counts + cur_counts), kind="stable")[:2]
            z, p = m.ztest_two_proportions(ref_counts[order], cur_counts[order])
            res.method, res.statistic, res.p_value, res.p_value_method = "ztest", z, p, "ztest"
        else:
            stat, p, _ = m.chi2_two_sample(ref_counts, cur_counts)
            res.method, res.statistic, res.p_value, res.p_value_method = "chi2", stat, p, "chi2"
            if m.sparse_table(ref_counts, cur_counts):
                res.p_value = m.chi2_monte_carlo_pvalue(ref_counts, cur_counts, stat, draws=MC_DRAWS)
                res.p_value_method = f"chi2_monte_carlo_{MC_DRAWS}"
        res.threshold = res.effect_threshold
    else:
        if method == "ztest":
            keep = (ref_counts + cur_counts) > 0
            _apply_counts(res, method, ref_counts[keep], cur_counts[keep], st, name)
        else:
            _apply_counts(res, method, ref_counts, cur_counts, st, name)
        if res.status != "ok":
            return res
    p_ref, p_cur = m.shares(ref_counts), m.shares(cur_counts)
    change = p_cur - p_ref
    top = np.argsort(-np.abs(change), kind="stable")[:5]
    res.summary = {
        "n_categories_reference": len(ref.categories),
        "n_categories_current": int((cur_counts > 0).sum()),
        "top_moves": [
            {
                "category": labels[i],
                "reference_share": float(p_ref[i]),
                "current_share": float(p_cur[i]),
                "change": float(change[i]),
            }
            for i in top
            if change[i] != 0
        ],
        "unseen": [{"category": k, "count": counts[k], "current_share": counts[k] / n_cur} for k in unseen[:10]],
        "n_unseen_categories": len(unseen),
        "unseen_share": float(sum(counts[k] for k in unseen) / n_cur),
        "vanished": [c for c, i in index.items() if counts.get(c, 0) == 0][:10],
        "missing_share": _missing_shares(res),
    }
    return res


# --------------------------------------------------------------------------- the check


def _validate(
    ref: PreparedReference,
    columns: list[str] | None,
    method: str,
    methods: dict[str, str] | None,
    alpha: float,
    correction: str,
    thresholds: dict[str, float] | None,
    drift_share: float,
) -> tuple[list[str], _Settings]:
    if not isinstance(ref, PreparedReference):
        raise InvalidInput("pass the PreparedReference made by prepare_reference()", argument="reference")
    if method not in METHODS:
        raise InvalidInput(f"unknown method '{method}'; accepted: {', '.join(METHODS)}", argument="method")
    methods = dict(methods or {})
    bad = {c: v for c, v in methods.items() if v not in METHODS}
    if bad:
        raise InvalidInput(
            f"unknown method(s) {listing(f'{c}={v}' for c, v in bad.items())}; accepted: {', '.join(METHODS)}",
            argument="methods",
        )
    if correction not in CORRECTIONS:
        raise InvalidInput(f"unknown correction '{correction}'; accepted: {', '.join(CORRECTIONS)}", argument="correction")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise InvalidInput(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}", argument="alpha")
    if not (isinstance(drift_share, (int, float)) and 0 < drift_share <= 1):
        raise InvalidInput(f"drift_share must be in (0, 1], got {drift_share!r}", argument="drift_share")
    if columns is not None:
        if isinstance(columns, str):
            columns = [columns]
        if not columns:
            raise InvalidInput(f"give at least one column, or none for all; the reference has {listing(ref.columns)}", argument="columns")
        unknown = [c for c in columns if c not in ref.kinds]
        if unknown:
            extra = f" (not checked: {listing(ref.skipped)})" if ref.skipped else ""
            raise InvalidInput(
                f"unknown column(s) {listing(unknown)}; the reference has {listing(ref.columns)}{extra}", argument="columns"
            )
        cols = list(dict.fromkeys(columns))
    else:
        cols = ref.columns
    unknown_m = [c for c in methods if c not in ref.kinds]
    if unknown_m:
        raise InvalidInput(f"unknown column(s) {listing(unknown_m)}; the reference has {listing(ref.columns)}", argument="methods")
    thresholds = dict(thresholds or {})
    bad_t = [k for k in thresholds if k not in DEFAULT_THRESHOLDS and k not in ref.kinds]
    if bad_t:
        raise InvalidInput(
            f"unknown threshold key(s) {listing(bad_t)}; accepted: {', '.join(DEFAULT_THRESHOLDS)} or a column name",
            argument="thresholds",
        )
    for k, v in thresholds.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InvalidInput(f"threshold '{k}' must be a number >= 0, got {v!r}", argument="thresholds")
    return cols, _Settings(method, methods, float(alpha), correction, thresholds)


def _finish(
    results: list[ColumnDrift], ref: PreparedReference, n_current: int, st: _Settings, drift_share: float, extra: list[str]
) -> DriftReport:
    tested = [r for r in results if r.status == "ok" and r.p_value is not None]
    adjusted = m.adjust_pvalues([float(r.p_value) for r in tested], st.correction)  # type: ignore[arg-type]
    for r, p in zip(tested, adjusted):
        r.p_adjusted = p
    for r in results:
        if r.status != "ok":
            continue
        if r.effect_size is not None and r.effect_threshold:
            r.severity = r.effect_size / r.effect_threshold
        chosen = st.methods.get(r.column, st.method)
        if r.reason == ALL_MISSING:
            r.drifted = bool(r.p_adjusted is not None and r.p_adjusted < st.alpha)
        elif chosen == "auto":
            r.drifted = bool(r.p_adjusted is not None and r.p_adjusted < st.alpha and (r.effect_size or 0.0) >= (r.effect_threshold or 0.0))
        elif r.method in TESTS:
            r.drifted = bool(r.p_adjusted is not None and r.p_adjusted < st.alpha)
        else:
            r.drifted = bool(r.statistic is not None and r.threshold is not None and r.statistic >= r.threshold)
    ok = [r for r in results if r.status == "ok"]
    broken = [r for r in ok if r.drifted and r.reason == ALL_MISSING]
    top = max((r.severity or 0.0 for r in ok if r.reason != ALL_MISSING), default=0.0)
    for r in broken:  # a feed that stopped sending a column outranks any shift of the values
        r.severity = max(top, 1.0)
    first = {r.column for r in broken}
    n_drifted = sum(1 for r in ok if r.drifted)
    share = n_drifted / len(ok) if ok else 0.0
    ranked = sorted(
        ok,
        key=lambda r: (
            not r.drifted,
            r.column not in first,
            -(r.severity or 0.0),
            r.p_adjusted if r.p_adjusted is not None else 1.0,
        ),
    )
    thresholds = {**DEFAULT_THRESHOLDS, **st.thresholds}
    return DriftReport(
        columns=results,
        method=st.method,
        alpha=st.alpha,
        correction=st.correction,
        drift_share=drift_share,
        share_drifted=share,
        n_drifted=n_drifted,
        n_checked=len(ok),
        drift_detected=bool(ok) and (share >= drift_share or bool(broken)),
        ranked=[r.column for r in ranked],
        n_reference=ref.n_rows,
        n_current=n_current,
        extra_columns=extra,
        thresholds=thresholds,
    )


def _run_column(ref: PreparedReference, name: str, cur: _Current | None, st: _Settings) -> ColumnDrift:
    kind = ref.kinds[name]
    method = st.methods.get(name, st.method)
    if cur is None:
        return ColumnDrift(
            column=name,
            kind=kind,
            method=method,
            status="error",
            reason="absent from the current data",
            n_reference=ref.n_values(name),
            missing_reference=ref.n_missing(name),
        )
    try:
        if kind == "numeric":
            return _check_numeric(name, ref.numeric[name], cur, method, st)
        return _check_categorical(name, ref.categorical[name], cur, method, st)
    except (ValueError, FloatingPointError, ZeroDivisionError) as exc:  # reported, never a crash
        log.warning("drift check of column %s failed: %s", name, exc)
        return ColumnDrift(column=name, kind=kind, method=method, status="error", reason=f"could not compute: {exc}")


def _workers(n_columns: int, workers: int | None) -> int:
    return max(1, min(n_columns, workers or os.cpu_count() or 1))


def check_drift(
    reference: PreparedReference,
    current: pd.DataFrame,
    columns: list[str] | None = None,
    method: str = "auto",
    methods: dict[str, str] | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    thresholds: dict[str, float] | None = None,
    drift_share: float = 0.5,
    workers: int | None = None,
) -> DriftReport:
    """Compare ``current`` with the prepared reference, column by column; see the package docstring.

    Columns run in a thread pool (numpy's sort and searchsorted release the GIL).
    """
    cols, st = _validate(reference, columns, method, methods, alpha, correction, thresholds, drift_share)
    if not isinstance(current, pd.DataFrame):
        raise InvalidInput("the current data must be a pandas DataFrame", argument="current")
    if len(current) == 0:
        raise InvalidInput("the current data has no rows; give at least one row per column to check", argument="current")
    present = {str(c): c for c in current.columns}
    if columns is not None:
        absent = [c for c in cols if c not in present]
        if absent:
            raise InvalidInput(
                f"column(s) {listing(absent)} absent from the current data; it has {listing(present)}", argument="columns"
            )

    def one(name: str) -> ColumnDrift:
        if name not in present:
            return _run_column(reference, name, None, st)
        kind = reference.kinds[name]
        cur = _current_from_series(current[present[name]], kind)
        return _run_column(reference, name, cur, st)

    with ThreadPoolExecutor(_workers(len(cols), workers)) as pool:
        results = list(pool.map(one, cols))
    extra = [c for c in present if c not in reference.kinds]
    return _finish(results, reference, int(len(current)), st, float(drift_share), extra)


def check_drift_parquet(
    reference: PreparedReference,
    path: str | Path,
    columns: list[str] | None = None,
    method: str = "auto",
    methods: dict[str, str] | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    thresholds: dict[str, float] | None = None,
    drift_share: float = 0.5,
    workers: int | None = 1,
) -> DriftReport:
    """Same check on a Parquet file too large for memory, read one column at a time.

    Memory stays at about one column of the current data (plus its sorted copy) per worker: a
    10,000,000-row float column is 80 MB.
    """
    import pyarrow.parquet as pq

    cols, st = _validate(reference, columns, method, methods, alpha, correction, thresholds, drift_share)
    try:
        pf = pq.ParquetFile(str(path))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read '{path}' as Parquet: {exc}", argument="current") from exc
    n_rows = int(pf.metadata.num_rows)
    names = [str(n) for n in pf.schema_arrow.names]
    if n_rows == 0:
        raise InvalidInput("the current data has no rows; give at least one row per column to check", argument="current")
    if columns is not None:
        absent = [c for c in cols if c not in names]
        if absent:
            raise InvalidInput(f"column(s) {listing(absent)} absent from the current data; it has {listing(names)}", argument="columns")

    def one(name: str) -> ColumnDrift:
        if name not in names:
            return _run_column(reference, name, None, st)
        table = pq.read_table(str(path), columns=[name])
        cur = _current_from_arrow(table.column(0), reference.kinds[name])
        del table
        return _run_column(reference, name, cur, st)

    with ThreadPoolExecutor(_workers(len(cols), workers)) as pool:
        results = list(pool.map(one, cols))
    extra = [c for c in names if c not in reference.kinds]
    return _finish(results, reference, n_rows, st, float(drift_share), extra)


# --------------------------------------------------------------------------- multivariate


def domain_classifier(
    reference_frame: pd.DataFrame,
    current_frame: pd.DataFrame,
    columns: Iterable[str] | None = None,
    max_rows: int = 20_000,
    auc_threshold: float = 0.55,
    seed: int = 0,
    top: int = 5,
) -> dict[str, Any]:
    """Can a classifier tell reference rows from current rows? Cross-validated ROC AUC and the columns it uses.

    Why: per-column tests miss a change in how columns move *together*. AUC near 0.5 means the two
    samples are indistinguishable; the top columns come from permutation importance (drop in AUC)
    on a held-out third. Each side is capped at ``max_rows`` rows (sampled) to bound the cost.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

    cols = list(columns) if columns is not None else [c for c in reference_frame.columns if c in current_frame.columns]
    missing = [c for c in cols if c not in reference_frame.columns or c not in current_frame.columns]
    if missing:
        raise InvalidInput(f"column(s) {listing(missing)} are not on both sides", argument="columns")
    if not cols:
        raise InvalidInput("no column is present on both sides", argument="columns")
    if len(reference_frame) < 10 or len(current_frame) < 10:
        raise InvalidInput("the domain classifier needs at least 10 rows on each side", argument="current")
    rng = np.random.default_rng(seed)

    def sample(frame: pd.DataFrame) -> pd.DataFrame:
        if len(frame) > max_rows:
            frame = frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]
        return frame[cols].reset_index(drop=True)

    ref_s, cur_s = sample(reference_frame), sample(current_frame)
    X = pd.concat([ref_s, cur_s], ignore_index=True)
    for c in cols:
        fam = family_of(X[c])
        if fam in ("numeric",) and not isinstance(X[c].dtype, pd.CategoricalDtype):
            X[c] = pd.to_numeric(X[c], errors="coerce").astype("float64")
        elif fam == "bool":
            X[c] = X[c].astype("float64")
        else:
            X[c] = X[c].astype("string").astype("category")
            if len(X[c].cat.categories) > 250:  # HistGradientBoosting's limit: keep the 250 most frequent
                keep = X[c].value_counts().index[:250]
                X[c] = X[c].where(X[c].isin(keep)).cat.remove_unused_categories()
    y = np.r_[np.zeros(len(ref_s)), np.ones(len(cur_s))]
    model = HistGradientBoostingClassifier(max_iter=100, categorical_features="from_dtype", random_state=seed)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, proba))
    top_columns: list[dict[str, float | str]] = []
    if auc >= auc_threshold:
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=1 / 3, stratify=y, random_state=seed)
        model.fit(X_tr, y_tr)
        imp = permutation_importance(model, X_te, y_te, scoring="roc_auc", n_repeats=3, random_state=seed)
        order = np.argsort(-imp.importances_mean)
        top_columns = [
            {"column": str(cols[i]), "auc_drop": float(imp.importances_mean[i])}
            for i in order[:top]
            if imp.importances_mean[i] > 0.005
        ]
    return {
        "roc_auc": auc,
        "drift_detected": auc >= auc_threshold,
        "auc_threshold": auc_threshold,
        "n_reference": len(ref_s),
        "n_current": len(cur_s),
        "top_columns": top_columns,
    }
