"""Drift tools: check a model's current data against its reference, and the history of checks."""

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from mlops_mcp.core.drift.results import DriftHistory, DriftResult, MethodName
from mlops_mcp.tools.args import DatasetArg, ModelNameArg, ModelRefArg, PlotArg, TimeArg
from mlops_mcp.tools.context import caller, engine


def check_drift(
    model: ModelRefArg,
    ctx: Context,
    dataset: Annotated[
        DatasetArg | None,
        Field(description="current data: a path in a data root or inline rows (default: inputs of predictions logged since/until)"),
    ] = None,
    reference: Annotated[
        DatasetArg | None, Field(description="reference data, a path or inline rows (default: the version's reference profile)")
    ] = None,
    columns: Annotated[
        list[Annotated[str, Field(max_length=256)]] | None,
        Field(max_length=2000, description="columns to check (default: all model inputs)"),
    ] = None,
    method: Annotated[MethodName, Field(description="auto (recommended) or one test/distance for every column")] = "auto",
    threshold: Annotated[float | None, Field(gt=0, le=100, description="drift threshold for a forced distance method")] = None,
    thresholds: Annotated[
        dict[str, Annotated[float, Field(gt=0, le=100)]] | None,
        Field(max_length=2000, description="effect thresholds by metric or column, e.g. {\"wasserstein\": 0.2}"),
    ] = None,
    alpha: Annotated[float, Field(gt=0, lt=1, description="significance level after correction")] = 0.05,
    drift_share: Annotated[
        float, Field(gt=0, le=1, description="share of drifted columns (or of importance) that makes the drift major")
    ] = 0.5,
    since: TimeArg = None,
    until: TimeArg = None,
    multivariate: Annotated[bool, Field(description="also train a reference-vs-current classifier (ROC AUC)")] = False,
    plot: PlotArg = False,
) -> DriftResult:
    """Has the data a model sees drifted from what it was trained on? Per column and overall, and
    whether its predictions drifted. "Is nba-win drifting?" is check_drift(model="nba-win").

    Reference: the version's reference profile (its training sample) unless `reference` is given.
    Current: `dataset`, or the inputs of predictions logged for the model between `since` and
    `until` (default: the last 7 days, newest 200,000). method="auto" gives each column (and its
    missing share) a BH-corrected p-value AND an effect size with its confidence interval, and
    flags it only when the shift is significant and its effect is not below the threshold
    (verdict small_shift: a real but small shift); dates are compared as time; every column is
    checked or listed in not_checked with the reason. The headline is `severity` (none / minor /
    major, rule stated in `severity_rule`): prediction drift, large shifts of important inputs and
    share_drifted >= drift_share make it major. Forced methods: ks, cramer_von_mises, chi2, ztest
    (p < alpha), wasserstein, psi, jensenshannon, hellinger, kl_div (>= threshold). Every check is
    saved (report_id); `plot=true` adds a PNG of effects and the most drifted distributions.
    Example: check_drift(model="nba-win", dataset="nba/recent.parquet", plot=true).
    """
    return engine(ctx).check_drift(
        model, dataset=dataset, reference=reference, columns=columns, method=method, threshold=threshold,
        thresholds=thresholds, alpha=alpha, drift_share=drift_share, since=since, until=until,
        multivariate=multivariate, plot=plot, actor=caller(ctx),
    )


def get_drift_history(
    model: ModelNameArg,
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=200, description="most recent reports to return")] = 20,
) -> DriftHistory:
    """Past drift reports of a model, newest first, with their headline figures (drift detected,
    share and names of drifted columns, prediction drift, data sources, sizes). The newest report
    in full is the resource mlops://drift/{name}/latest."""
    return engine(ctx).drift_history(model, limit)
