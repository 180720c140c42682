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
    epoch_seconds,
    family_of,
    iso_time,
    norm_key,
    numeric_summary,
    numeric_values,
    summary_from_counts,
)
from mlops_mcp.core.errors import InvalidInput, listing
from mlops_mcp.core.values import plain, rounded_all

log = logging.getLogger("mlops_mcp.drift")

TESTS = ("ks", "cramer_von_mises", "chi2", "ztest")
DISTANCES = ("wasserstein", "psi", "jensenshannon", "hellinger", "kl_div")
METHODS: tuple[str, ...] = ("auto",) + TESTS + DISTANCES
NUMERIC_ONLY = ("ks", "wasserstein", "cramer_von_mises")
CORRECTIONS = ("bh", "holm", "bonferroni", "none")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "wasserstein": 0.1,  # normed by the reference std (Evidently's default)
    "psi": 0.1,  # 0.1 "moderate" / 0.25 "significant" shift convention
    "jensenshannon": 0.05,  # base-2 distance, bias-corrected under auto; auto's categorical effect threshold
    "hellinger": 0.1,
    "kl_div": 0.1,
    "rate_change": 0.02,  # auto's effect threshold for two-valued columns: 2 points of the rate
    "missing_change": 0.05,  # change of a column's missing share that counts: 5 points
}
MIN_VALUES = 5  # non-missing values per side below which a column's values are not compared
ALL_MISSING = "all values missing in current data"
MC_DRAWS = 1999
VERDICTS = ("drifted", "small_shift", "no_drift", "not_checked")


@dataclass
class ColumnDrift:
    """The verdict on one column.

    ``status``: 'ok' (checked), 'skipped' (not enough data) or 'error' (``reason`` says why).
    ``verdict``: 'drifted'; 'small_shift' (significant, but the effect is below its threshold with
    confidence 1 - alpha: a real but small shift); 'no_drift' (not significant); 'not_checked'.
    ``drifted_on`` names what drifted: 'values' (the distribution), 'missing_share'.
    ``effect_lower``/``effect_upper``: (1 - 2 alpha) confidence interval of ``effect_size`` (auto only).
    ``missing``: the missing-share test when either side has missing values (else None).
    """

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
    effect_lower: float | None = None
    effect_upper: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    verdict: str = "not_checked"
    drifted_on: list[str] = field(default_factory=list)
    severity: float | None = None
    n_reference: int = 0
    n_current: int = 0
    missing_reference: int = 0
    missing_current: int = 0
    missing: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, digits: int | None = None) -> dict[str, Any]:
        return _clean(asdict(self), digits)


@dataclass
class DriftReport:
    """Dataset-level verdict plus the per-column results.

    ``severity`` ('none', 'minor', 'major') answers "is it drifting, and how much", by the rule
    stated in ``severity_rule``; ``severity_reasons`` lists what triggered it and ``headline`` says
    it in one sentence. ``drift_detected`` is ``severity != 'none'``. The service re-assesses with
    the prediction drift and the model's feature importance (:meth:`assess`).
    """

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
    small_shifts: list[str] = field(default_factory=list)
    not_checked: list[dict[str, str]] = field(default_factory=list)
    severity: str = "none"
    severity_rule: str = ""
    severity_reasons: list[str] = field(default_factory=list)
    headline: str = ""
    importance_source: str | None = None

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def assess(
        self,
        prediction: ColumnDrift | None = None,
        importance: dict[str, float] | None = None,
        importance_source: str | None = None,
    ) -> None:
        """(Re)compute severity, its rule, reasons and headline, counting prediction drift and
        feature importance (a share per input column) when known."""
        from mlops_mcp.core.drift.severity import assess

        a = assess(self, prediction, importance, importance_source)
        self.severity, self.severity_rule, self.severity_reasons = a.severity, a.rule, a.reasons
        self.headline, self.importance_source = a.headline, a.importance_source
        self.drift_detected = a.severity != "none"

    def to_dict(self, digits: int | None = None) -> dict[str, Any]:
        """JSON-safe dict; ``digits`` rounds every float to that many significant digits."""
        d = {k: v for k, v in asdict(self).items() if k != "columns"}
        d["drifted_columns"] = self.drifted_columns
        d["columns"] = [asdict(c) for c in self.columns]
        return _clean(d, digits)


def _clean(obj: Any, digits: int | None = None) -> Any:
    """JSON-safe (the one sanitiser, ``core.values``), floats rounded to ``digits`` significant digits when asked."""
    return rounded_all(obj, digits) if digits else plain(obj)


# --------------------------------------------------------------------------- current-data columns


@dataclass
class _Current:
    """One current column, already reduced: finite values (unsorted) or category counts."""

    n_rows: int
    family: str
    values: np.ndarray | None = None  # numeric / datetime: finite float64, unsorted (sorted during the check)
    counts: dict[str, int] | None = None  # categorical
    n_missing: int = 0
    unreadable: int = 0  # datetime: values that are not dates (counted as missing)


def _finite(values: np.ndarray) -> np.ndarray:
    """Drop NaN and +-inf (they are counted as missing), copying only when there are any."""
    ok = np.isfinite(values)
    return values if ok.all() else values[ok]


def _current_dates(series: pd.Series, family: str) -> _Current:
    if family not in ("datetime", "string", "empty"):
        return _Current(len(series), family, n_missing=int(series.isna().sum()))
    seconds, unreadable = epoch_seconds(series)
    v = _finite(seconds)
    if unreadable and v.size == 0:  # text, none of it a date: a type change, not a broken feed
        return _Current(len(series), "text", n_missing=int(series.isna().sum()))
    return _Current(len(series), "datetime", values=v, n_missing=len(series) - v.size, unreadable=unreadable)


def _current_from_series(series: pd.Series, kind: str) -> _Current:
    family = family_of(series)
    if kind == "datetime":
        return _current_dates(series, family)
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
    if kind == "datetime":  # dates are converted through pandas (one column, O(n))
        return _current_from_series(chunked.to_pandas(), kind)
    if pa.types.is_boolean(t):
        family = "bool"
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        family = "numeric"
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        family = "string"
    elif pa.types.is_null(t):
        family = "empty"
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

    @property
    def interval(self) -> float:
        """Two-sided level of the effect intervals: each end is a one-sided (1 - alpha) bound."""
        return 1.0 - 2.0 * self.alpha


def _threshold(settings: _Settings, column: str, key: str) -> float:
    return float(settings.thresholds.get(column, settings.thresholds.get(key, DEFAULT_THRESHOLDS[key])))


def _compatible(ref_family: str, cur_family: str, kind: str) -> str | None:
    """None if the current values can be compared with the reference, else why not."""
    if cur_family == "empty":
        return None
    if kind == "datetime":
        if cur_family == "datetime":
            return None
        return f"type changed: dates in the reference, {cur_family} values in the current data (not ISO 8601 dates)"
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


def _missing_test(res: ColumnDrift, st: _Settings) -> None:
    """The missing share, reference vs current: pooled two-proportion z-test (in the same
    correction family as the value tests) and Newcombe's interval of the change; set when either
    side has missing values (a test that cannot reject is left out of the family)."""
    rows_ref = res.n_reference + res.missing_reference
    rows_cur = res.n_current + res.missing_current
    if res.missing_reference + res.missing_current == 0 or rows_ref < MIN_VALUES or rows_cur < MIN_VALUES:
        return
    z, p = m.ztest_two_proportions(np.array([res.missing_reference, res.n_reference]), np.array([res.missing_current, res.n_current]))
    change, lo, hi = m.rate_change_interval(res.missing_reference, rows_ref, res.missing_current, rows_cur, st.interval)
    res.missing = {
        "reference_share": res.missing_reference / rows_ref,
        "current_share": res.missing_current / rows_cur,
        "change": change,
        "change_lower": lo,
        "change_upper": hi,
        "statistic": z,
        "p_value": p,
        "p_adjusted": None,
        # by key only: a per-column threshold is the value effect's
        "threshold": float(st.thresholds.get("missing_change", DEFAULT_THRESHOLDS["missing_change"])),
        "verdict": "no_drift",
    }


def _too_few(res: ColumnDrift, n_ref: int, n_cur: int, st: _Settings) -> bool:
    """Fewer than MIN_VALUES values on a side: the distributions are not compared. The column is
    still judged on its missing share when that can be tested (a feed that mostly stopped), else skipped."""
    if n_ref >= MIN_VALUES and n_cur >= MIN_VALUES:
        return False
    few = f"{n_ref} non-missing values in the reference and {n_cur} in the current data; at least {MIN_VALUES} on each side are needed"
    _missing_test(res, st)
    if res.missing is not None:
        res.reason = f"values not compared ({few}); judged on the missing share"
        res.summary = {"missing_share": _missing_shares(res)}
    else:
        res.status, res.reason = "skipped", few
    return True


def _numeric_effect(res: ColumnDrift, st: _Settings, w_normed: float, se: float | None) -> None:
    res.effect_size, res.effect_metric = w_normed, "wasserstein_normed"
    res.effect_threshold = _threshold(st, res.column, "wasserstein")
    if se is not None and math.isfinite(se):
        z = float(m.stats.norm.ppf(1 - st.alpha))
        res.effect_lower, res.effect_upper = max(0.0, w_normed - z * se), w_normed + z * se


def _level_counts(levels: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Counts of the current values on the reference's levels, and how many fall on none of them."""
    idx = np.minimum(np.searchsorted(levels, x), levels.size - 1)
    on = levels[idx] == x
    return np.bincount(idx[on], minlength=levels.size).astype(np.int64), int(x.size - np.count_nonzero(on))


def _check_numeric(name: str, ref: NumericReference, cur: _Current, method: str, st: _Settings, kind: str = "numeric") -> ColumnDrift:
    res = ColumnDrift(column=name, kind=kind, method=method)
    res.n_reference, res.missing_reference = int(ref.values.size), ref.n_missing
    res.n_current, res.missing_current = cur.n_rows - cur.n_missing, cur.n_missing
    if _all_missing(res, st):
        return res
    problem = _compatible("numeric", cur.family, kind)
    if problem:
        res.status, res.reason = "error", problem
        return res
    b = cur.values if cur.values is not None else np.empty(0)
    if _too_few(res, ref.values.size, b.size, st):
        return res
    if method == "ztest":
        res.status = "error"
        res.reason = "ztest needs a binary column (2 categories); this column is numeric: use ks, wasserstein, cramer_von_mises or auto"
        return res
    _missing_test(res, st)
    a = ref.values
    norm = ref.std if ref.std > 0 else max(abs(ref.summary.get("mean", 0.0)), 1.0)
    se_scale = (float(ref.summary.get("mean", 0.0)), float(ref.std), float(norm))
    summary_cur: dict[str, float] | None = None
    if method == "auto" and ref.levels is not None and ref.level_counts is not None:
        # integers with few distinct values: chi-square on the values (KS is conservative on ties)
        cur_counts, off = _level_counts(ref.levels, b)
        ref_counts = np.append(ref.level_counts, 0)
        table_cur = np.append(cur_counts, off)
        stat, p, _ = m.chi2_two_sample(ref_counts, table_cur)
        res.method, res.statistic, res.p_value, res.p_value_method = "chi2", stat, p, "chi2"
        if m.sparse_table(ref_counts, table_cur):
            res.p_value = m.chi2_monte_carlo_pvalue(ref_counts, table_cur, stat, draws=MC_DRAWS)
            res.p_value_method = f"chi2_monte_carlo_{MC_DRAWS}"
        if off == 0:
            lv = m.compare_levels(ref.levels, ref.level_counts, cur_counts, se_scale)
            _numeric_effect(res, st, lv.wasserstein / norm, lv.wasserstein_normed_se)
            summary_cur = summary_from_counts(ref.levels, cur_counts)
        else:
            b, pos = m.sort_against(a, b)
            comp = m.compare_numeric(a, b, pos=pos, ks=False, a_has_ties=ref.has_ties, se_scale=se_scale)
            _numeric_effect(res, st, (comp.wasserstein or 0.0) / norm, comp.wasserstein_normed_se)
        res.threshold = res.effect_threshold
        res.summary = {"n_levels_reference": int(ref.levels.size), "values_off_reference_levels": off}
    else:
        need_ks = method in ("auto", "ks")
        b, pos = m.sort_against(a, b)
        comp = m.compare_numeric(
            a, b, pos=pos, ks=need_ks, wasserstein=True, cvm=method == "cramer_von_mises", a_has_ties=ref.has_ties,
            se_scale=se_scale if method == "auto" else None,
        )
        w_normed = (comp.wasserstein or 0.0) / norm
        _numeric_effect(res, st, w_normed, comp.wasserstein_normed_se)
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
    if summary_cur is None:
        summary_cur = numeric_summary(b)
    rs = ref.summary
    keys = ("mean", "std", "p5", "p25", "p50", "p75", "p95")
    res.summary.update(
        {
            "reference": {k: rs[k] for k in keys},
            "current": {k: summary_cur[k] for k in keys},
            "mean_shift_in_std": (summary_cur["mean"] - rs["mean"]) / norm,
            "std_ratio": summary_cur["std"] / rs["std"] if rs["std"] > 0 else None,
            "missing_share": _missing_shares(res),
        }
    )
    if kind == "datetime":
        _date_summary(res, ref, b, summary_cur, cur.unreadable)
    if ref.std == 0:
        res.summary["note"] = "the reference is constant; Wasserstein normed by max(|mean|, 1) instead of its std"
    return res


def _date_summary(res: ColumnDrift, ref: NumericReference, b: np.ndarray, cur: dict[str, float], unreadable: int) -> None:
    """Dates read as dates: range and quantiles as ISO 8601 (UTC), the mean shift in days, and the
    share of current dates outside the reference's range (a model meets times it never saw)."""
    rs = ref.summary
    times = ("min", "p5", "p50", "p95", "max")
    res.summary["reference"] = {k: iso_time(rs[k]) for k in times}
    res.summary["current"] = {k: iso_time(cur[k]) for k in times}
    res.summary["mean_shift_days"] = (cur["mean"] - rs["mean"]) / 86400.0
    res.summary["share_after_reference_max"] = float(np.count_nonzero(b > rs["max"]) / b.size)
    res.summary["share_before_reference_min"] = float(np.count_nonzero(b < rs["min"]) / b.size)
    if unreadable:
        res.summary["unreadable_as_dates"] = unreadable


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
    if _too_few(res, ref.n_values, n_cur, st):
        return res
    _missing_test(res, st)
    index = {c: i for i, c in enumerate(ref.categories)}
    unseen = sorted((k for k in counts if k not in index), key=lambda k: (-counts[k], k))
    labels = ref.categories + unseen
    ref_counts = np.concatenate([ref.counts, np.zeros(len(unseen), np.int64)])
    cur_counts = np.array([counts.get(c, 0) for c in labels], dtype=np.int64)
    k_present = int(((ref_counts + cur_counts) > 0).sum())
    extra: dict[str, Any] = {}
    if method == "auto":
        if k_present <= 2:
            order = np.argsort(-(ref_counts + cur_counts), kind="stable")[:2]
            z, p = m.ztest_two_proportions(ref_counts[order], cur_counts[order])
            res.method, res.statistic, res.p_value, res.p_value_method = "ztest", z, p, "ztest"
            # effect: the absolute change of the rate (JS would mute binary and rare-flag changes)
            first = int(order[0])
            change, lo, hi = m.rate_change_interval(
                float(ref_counts[first]), float(ref_counts.sum()), float(cur_counts[first]), float(cur_counts.sum()), st.interval
            )
            res.effect_size, res.effect_metric = abs(change), "rate_change"
            res.effect_lower, res.effect_upper = m.magnitude_bounds(lo, hi)
            res.effect_threshold = _threshold(st, name, "rate_change")
            extra = {"rate_of": labels[first], "rate_change": change}
        else:
            stat, p, _ = m.chi2_two_sample(ref_counts, cur_counts)
            res.method, res.statistic, res.p_value, res.p_value_method = "chi2", stat, p, "chi2"
            if m.sparse_table(ref_counts, cur_counts):
                res.p_value = m.chi2_monte_carlo_pvalue(ref_counts, cur_counts, stat, draws=MC_DRAWS)
                res.p_value_method = f"chi2_monte_carlo_{MC_DRAWS}"
            js = m.jensenshannon_corrected(ref_counts, cur_counts, st.interval)
            res.effect_size, res.effect_metric = js.corrected, "jensenshannon_corrected"
            res.effect_lower, res.effect_upper = js.lower, js.upper
            res.effect_threshold = _threshold(st, name, "jensenshannon")
            extra = {"jensenshannon_uncorrected": js.raw}
        res.threshold = res.effect_threshold
    else:
        res.effect_size, res.effect_metric = m.jensenshannon(ref_counts, cur_counts), "jensenshannon"
        res.effect_threshold = _threshold(st, name, "jensenshannon")
        if method == "ztest":
            keep = (ref_counts + cur_counts) > 0
            _apply_counts(res, method, ref_counts[keep], cur_counts[keep], st, name)
        else:
            _apply_counts(res, method, ref_counts, cur_counts, st, name)
        if res.status != "ok":
            return res
    p_ref, p_cur = m.shares(ref_counts), m.shares(cur_counts)
    change_shares = p_cur - p_ref
    top = np.argsort(-np.abs(change_shares), kind="stable")[:5]
    res.summary = {
        **extra,
        "n_categories_reference": len(ref.categories),
        "n_categories_current": int((cur_counts > 0).sum()),
        "top_moves": [
            {
                "category": labels[i],
                "reference_share": float(p_ref[i]),
                "current_share": float(p_cur[i]),
                "change": float(change_shares[i]),
            }
            for i in top
            if change_shares[i] != 0
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


def _judge(r: ColumnDrift, st: _Settings) -> None:
    """Verdict of a checked column from its corrected p-values and effect bounds.

    Values (auto): drifted when significant and the effect is not below its threshold with
    confidence 1 - alpha (``effect_upper >= threshold``); 'small_shift' when significant and
    ``effect_upper < threshold``. Forced tests: significant; forced distances: statistic >= threshold.
    Missing share: significant and the upper bound of |change| reaches its threshold (5 points).
    """
    alpha = st.alpha
    significant = r.p_adjusted is not None and r.p_adjusted < alpha
    chosen = st.methods.get(r.column, st.method)
    small = False
    if r.p_value is None and r.statistic is None:
        values_drifted = False  # values not compared (too few); judged on the missing share
    elif r.reason == ALL_MISSING or (chosen != "auto" and r.method in TESTS):
        values_drifted = significant
    elif chosen == "auto":
        upper = r.effect_upper if r.effect_upper is not None else (r.effect_size or 0.0)
        values_drifted = significant and upper >= (r.effect_threshold or 0.0)
        small = significant and not values_drifted
    else:
        values_drifted = bool(r.statistic is not None and r.threshold is not None and r.statistic >= r.threshold)
    r.drifted_on = ["values"] if values_drifted else []
    if r.missing is not None:
        mi = r.missing
        mi_significant = mi["p_adjusted"] is not None and mi["p_adjusted"] < alpha
        reach = max(abs(mi["change_lower"]), abs(mi["change_upper"]))
        if mi_significant and reach >= mi["threshold"]:
            mi["verdict"] = "drifted"
            r.drifted_on.append("missing_share")
        elif mi_significant:
            mi["verdict"] = "small_shift"
            small = True
    r.drifted = bool(r.drifted_on)
    r.verdict = "drifted" if r.drifted else ("small_shift" if small else "no_drift")
    if r.effect_size is not None and r.effect_threshold:
        r.severity = r.effect_size / r.effect_threshold
    if r.missing is not None and "missing_share" in r.drifted_on and r.missing["threshold"]:
        r.severity = max(r.severity or 0.0, abs(r.missing["change"]) / r.missing["threshold"])


def _finish(
    results: list[ColumnDrift],
    ref: PreparedReference,
    n_current: int,
    st: _Settings,
    drift_share: float,
    extra: list[str],
) -> DriftReport:
    # one correction family: every value test and every missing-share test that can reject
    family: list[tuple[ColumnDrift, str]] = [(r, "values") for r in results if r.status == "ok" and r.p_value is not None]
    family += [(r, "missing") for r in results if r.status == "ok" and r.missing is not None]
    adjusted = m.adjust_pvalues(
        [float(r.p_value if part == "values" else r.missing["p_value"]) for r, part in family],  # type: ignore[index]
        st.correction,
    )
    for (r, part), p in zip(family, adjusted):
        if part == "values":
            r.p_adjusted = p
        else:
            r.missing["p_adjusted"] = p  # type: ignore[index]
    ok = [r for r in results if r.status == "ok"]
    for r in ok:
        _judge(r, st)
    broken = [r for r in ok if r.drifted and r.reason == ALL_MISSING]
    top = max((r.severity or 0.0 for r in ok if r.reason != ALL_MISSING), default=0.0)
    for r in broken:  # a feed that stopped sending a column outranks any shift of the values
        r.severity = max(top, 1.0)
        r.drifted_on = ["missing_share"]
    first = {r.column for r in broken}
    n_drifted = sum(1 for r in ok if r.drifted)
    share = n_drifted / len(ok) if ok else 0.0
    ranked = sorted(
        ok,
        key=lambda r: (
            not r.drifted,
            r.column not in first,
            r.verdict != "small_shift",
            -(r.severity or 0.0),
            r.p_adjusted if r.p_adjusted is not None else 1.0,
        ),
    )
    thresholds = {**DEFAULT_THRESHOLDS, **st.thresholds}
    not_checked = [{"column": c, "reason": why} for c, why in ref.skipped.items()]
    not_checked += [{"column": r.column, "reason": r.reason or r.status} for r in results if r.status != "ok"]
    not_checked += [{"column": c, "reason": "not in the reference"} for c in extra if c not in ref.skipped]
    report = DriftReport(
        columns=results,
        method=st.method,
        alpha=st.alpha,
        correction=st.correction,
        drift_share=drift_share,
        share_drifted=share,
        n_drifted=n_drifted,
        n_checked=len(ok),
        drift_detected=False,
        ranked=[r.column for r in ranked],
        n_reference=ref.n_rows,
        n_current=n_current,
        extra_columns=extra,
        thresholds=thresholds,
        small_shifts=[r.column for r in ranked if r.verdict == "small_shift"],
        not_checked=not_checked,
    )
    report.assess()
    return report


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
        if kind in ("numeric", "datetime"):
            return _check_numeric(name, ref.numeric[name], cur, method, st, kind)
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
