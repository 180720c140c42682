"""Drift detection engine: exact two-sample statistics against a reference prepared once.

Pure library code (no MCP). The reference sample of a model version is sorted / binned / counted
once (:func:`prepare_reference`, :class:`PreparedReference` with ``save``/``load``), so a check pays
only for the current data: one sort per numeric column, one count per categorical column.

The ``auto`` rule
-----------------
For every column we report a *significance* and an *effect size with its confidence interval*, and
call the column drifted only when the shift is **real** (significant after correction) **and not
below the size that matters** (the effect's upper confidence bound reaches its threshold):

- numeric columns (more than 2 distinct values): two-sample Kolmogorov-Smirnov p-value (exact below
  10,000 rows per side); effect = Wasserstein-1 / reference std ("normed Wasserstein"), threshold
  0.1; integer columns with at most 20 distinct values take the chi-square test on their values
  instead (KS is conservative on ties), same effect;
- datetime columns (typed, or ISO 8601 strings): as numeric, on epoch seconds;
- categorical columns (strings, booleans, pandas categories): chi-square test of homogeneity (a
  seeded Monte-Carlo p-value with 1,999 draws when the table is sparse -- any expected count < 1
  or more than 20% below 5 -- seeded from a hash of the table); effect = Jensen-Shannon distance
  (base 2) minus its no-drift expectation (K - 1)(1/n1 + 1/n2) / (8 ln 2) on the divergence,
  threshold 0.05; unseen categories take part (and are listed in the summary);
- two-valued columns (numbers with at most 2 distinct values too): two-proportion z-test; effect =
  the absolute change of the rate, threshold 0.02;
- every column's missing share: two-proportion z-test, in the same correction family, threshold 5
  points of change; a column drifts on its values, its missing share, or both (``drifted_on``);
- p-values are corrected across all these tests with Benjamini-Hochberg (``correction="bh"``;
  also "holm", "bonferroni", "none");
- a column drifts when ``p_adjusted < alpha`` (default 0.05) **and** ``effect_upper >= threshold``,
  where [effect_lower, effect_upper] is the (1 - 2 alpha) confidence interval (delta method for
  Wasserstein and Jensen-Shannon, Newcombe's score interval for rates); significant with
  ``effect_upper < threshold`` is ``verdict == "small_shift"`` (a real but small shift);
  ``thresholds={"wasserstein": ..., "jensenshannon": ..., "rate_change": ..., "missing_change": ...}``
  or per column name;
- a column whose values are **all missing in the current data** while the reference has values (a
  broken feed) is not skipped: whatever the method, its p-value is the two-proportion z-test on
  the share of missing values (corrected with the others), its effect size the current missing
  share (1.0), and it drifts when ``p_adjusted < alpha``; it is ranked first;
- the report's ``severity`` (none / minor / major) follows the rule stated in ``severity_rule``
  (see :mod:`mlops_mcp.core.drift.severity`): prediction drift, a broken feed, a share of drifted
  columns (or of importance) >= ``drift_share`` (default 0.5), or an important input drifted by 2x
  its threshold make it major. ``drift_detected`` is ``severity != "none"``.

Because drift needs a significant test, a column without drift false-alarms at about rate
``alpha`` whatever its number of rows, values or categories; because it also needs an effect that
is not confidently below a threshold, trivial shifts that are merely significant on millions of
rows are small shifts, not drift. Every column gets a verdict or is listed in ``not_checked`` with
the reason.

Forced methods (``method=`` for all columns or ``methods={column: name}``): ks,
cramer_von_mises, chi2, ztest (tests: drifted when the corrected p-value < alpha), wasserstein
(normed), psi, jensenshannon (uncorrected), hellinger, kl_div (distances: drifted when >= the
threshold). Count-based methods on a numeric column use the 10 reference-decile bins. Missing
values are counted and reported, never silently dropped; a column that cannot be checked gets
``status`` "skipped" (fewer than 5 values on a side and no missing share to test) or "error" and
a reason.
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
