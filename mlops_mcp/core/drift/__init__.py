"""Drift detection engine: exact two-sample statistics against a reference prepared once.

Pure library code (no MCP). The reference sample of a model version is sorted / binned / counted
once (:func:`prepare_reference`, :class:`PreparedReference` with ``save``/``load``), so a check pays
only for the current data: one sort per numeric column, one count per categorical column.

The ``auto`` rule
-----------------
For every column we report both a *significance* and an *effect size*, and call the column drifted
only when the shift is **real** (statistically significant) **and large enough to matter**:

- numeric columns (more than 2 distinct values): p-value of the two-sample Kolmogorov-Smirnov test
  (exact below 10,000 rows per side); effect size = Wasserstein-1 distance divided by the reference
  standard deviation ("normed Wasserstein"), threshold 0.1 (a shift of a tenth of a standard
  deviation);
- categorical columns (strings, booleans, pandas categories, numbers with at most 2 distinct
  values): p-value of a two-sample test on the reference-vs-current contingency table (chi-square
  test of homogeneity; two-proportion z-test for 2 categories; when the table is sparse -- any
  expected count < 1 or more than 20% below 5 -- the chi-square p-value is computed by a seeded
  Monte-Carlo permutation with 1,999 draws instead of the asymptotic law); effect size =
  Jensen-Shannon distance (base 2, in [0, 1]), threshold 0.05. Categories never seen in the reference
  take part in both (and are listed in the summary);
- p-values are corrected across the checked columns with Benjamini-Hochberg (``correction="bh"``;
  also "holm", "bonferroni", "none");
- a column drifts when ``p_adjusted < alpha`` (default 0.05) **and** ``effect_size >= threshold``
  (``thresholds={"wasserstein": ..., "jensenshannon": ...}`` or per column name);
- a column whose values are **all missing in the current data** while the reference has values (a
  broken feed) is not skipped: whatever the method, its p-value is the two-proportion z-test on
  the share of missing values (corrected with the others), its effect size the current missing
  share (1.0), and it drifts when ``p_adjusted < alpha``;
- the dataset drifts when the share of drifted columns is ``>= drift_share`` (default 0.5), or
  when any column drifted by going all missing; columns are also ranked by severity (effect size /
  its threshold, drifted columns first; an all-missing column comes first of all and gets the
  report's highest severity, at least 1).

Because drift needs a significant test, a column without drift false-alarms at most at rate
``alpha`` whatever its number of rows or categories (no fixed distance threshold decides alone on
small samples); because it also needs an effect above a threshold, trivial shifts that are merely
significant on millions of rows are not flagged.

Forced methods (``method=`` for all columns or ``methods={column: name}``): ks, cramer_von_mises,
chi2, ztest (tests: drifted when the corrected p-value < alpha), wasserstein (normed), psi,
jensenshannon, hellinger, kl_div (distances: drifted when >= the threshold). Count-based methods on
a numeric column use the 10 reference-decile bins. Missing values are counted and reported, never
silently dropped; a column that cannot be checked gets ``status`` "skipped" (fewer than 5 values on
a side, unless the current side went all missing: see above) or "error" and a reason.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine imports numpy, pandas and scipy: loaded on first use, not with the package
    from mlops_mcp.core.drift.engine import DriftReport

_LAZY = {
    "DEFAULT_THRESHOLDS": "mlops_mcp.core.drift.engine",
    "METHODS": "mlops_mcp.core.drift.engine",
    "ColumnDrift": "mlops_mcp.core.drift.engine",
    "DriftReport": "mlops_mcp.core.drift.engine",
    "check_drift": "mlops_mcp.core.drift.engine",
    "check_drift_parquet": "mlops_mcp.core.drift.engine",
    "domain_classifier": "mlops_mcp.core.drift.engine",
    "PreparedReference": "mlops_mcp.core.drift.prepared",
    "prepare_reference": "mlops_mcp.core.drift.prepared",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "ColumnDrift",
    "DriftReport",
    "PreparedReference",
    "check_drift",
    "check_drift_parquet",
    "domain_classifier",
    "plot_report",
    "prepare_reference",
]


def plot_report(report: "DriftReport", reference: object = None, current: object = None, top: int = 4) -> bytes:
    """PNG of per-column effect sizes and the distributions of the most drifted columns."""
    from mlops_mcp.core.drift.plot import plot_report as _plot

    return _plot(report, reference, current, top=top)
