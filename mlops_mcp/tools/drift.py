"""Drift tools: check a model's current data against its reference, and the history of checks."""

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mlops_mcp.tools.base import Registrar, with_image

MethodName = Literal[
    "auto", "ks", "wasserstein", "psi", "jensenshannon", "hellinger", "kl_div", "chi2", "ztest", "cramer_von_mises"
]


class MissingShare(BaseModel):
    reference_share: float
    current_share: float
    change: float = Field(description="current minus reference share")
    change_lower: float = Field(description="lower end of the (1 - 2 alpha) interval of the change (Newcombe)")
    change_upper: float = Field(description="upper end of that interval")
    statistic: float = Field(description="pooled two-proportion z")
    p_value: float
    p_adjusted: float | None = Field(None, description="corrected in the same family as the value tests")
    threshold: float = Field(description="change that counts (default 0.05)")
    verdict: str = Field(description="drifted, small_shift or no_drift")


class NotChecked(BaseModel):
    column: str
    reason: str


class ColumnResult(BaseModel):
    column: str
    kind: str = Field(description="numeric, categorical or datetime (compared as epoch seconds)")
    method: str
    status: str = Field(description="ok, skipped or error (then `reason` says why)")
    reason: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = Field(None, description="Benjamini-Hochberg corrected across the checked columns")
    effect_size: float | None = Field(
        None,
        description="under auto: normed Wasserstein (numeric, datetime), bias-corrected Jensen-Shannon (categorical) "
        "or absolute rate change (two-valued)",
    )
    effect_metric: str | None = None
    effect_threshold: float | None = None
    effect_lower: float | None = Field(None, description="lower end of the (1 - 2 alpha) confidence interval of effect_size")
    effect_upper: float | None = Field(None, description="upper end; drifted needs effect_upper >= effect_threshold")
    drifted: bool | None = None
    verdict: str = Field(
        "not_checked", description="drifted, small_shift (significant but below threshold: a real but small shift), no_drift, not_checked"
    )
    drifted_on: list[str] = Field(default_factory=list, description="what drifted: values, missing_share")
    severity: float | None = Field(None, description="effect size / its threshold; > 1 is above threshold")
    n_reference: int = 0
    n_current: int = 0
    missing_reference: int = 0
    missing_current: int = 0
    missing: MissingShare | None = Field(None, description="missing-share test, when either side has missing values")
    summary: dict[str, Any] = Field(default_factory=dict, description="means/quantiles, or categories that moved most / unseen")


class DriftResult(BaseModel):
    report_id: int = Field(description="id of the persisted report (get_drift_history, mlops://drift/{name}/latest)")
    model: str
    version: int = Field(description="version whose reference was used")
    reference_source: str
    current_source: str
    n_reference: int
    n_current: int
    method: str
    alpha: float
    severity: str = Field(description="none, minor or major, by severity_rule")
    severity_rule: str = Field(description="the rule that graded this report")
    severity_reasons: list[str] = Field(default_factory=list, description="what made it minor or major")
    headline: str = Field(description="one sentence: what drifted and how much")
    drift_detected: bool = Field(description="severity is minor or major")
    share_drifted: float
    n_drifted: int
    n_checked: int
    drift_share: float
    ranked: list[str] = Field(description="columns by severity, most drifted first")
    columns: list[ColumnResult]
    prediction_drift: ColumnResult | None = Field(description="the model's scores on reference vs current, same test")
    multivariate: dict[str, Any] | None = Field(None, description="domain classifier: ROC AUC and the separating columns")
    small_shifts: list[str] = Field(default_factory=list, description="columns with a significant shift below their threshold")
    not_checked: list[NotChecked] = Field(default_factory=list, description="every column without a verdict, and why")
    importance_source: str | None = Field(None, description="where the feature importance in severity_rule came from")
    extra_columns: list[str] = Field(default_factory=list, description="current columns not checked")
    notes: list[str] = Field(
        default_factory=list, description="caveats of this check, e.g. why prediction_drift is missing or what it left out"
    )


class DriftHeadline(BaseModel):
    report_id: int
    model: str
    version: int
    created_at: datetime
    actor: str
    reference_source: str
    current_source: str
    n_reference: int
    n_current: int
    method: str
    drift_detected: bool
    share_drifted: float
    n_drifted: int
    n_checked: int
    drifted_columns: list[str]
    prediction_drifted: bool | None
    severity: str | None = Field(None, description="none, minor or major (null for reports older than severity)")
    headline: str | None = None


class DriftHistory(BaseModel):
    model: str
    reports: list[DriftHeadline] = Field(description="newest first")


def register(r: Registrar) -> None:
    ops = r.ops

    @r.tool(title="Check data drift", read_only=False)
    def check_drift(
        model: Annotated[str, Field(description="'name' (champion), 'name@alias' or 'name/version'")],
        dataset: Annotated[
            str | None, Field(description="current data: CSV/Parquet in a data root (default: inputs of predictions logged since/until)")
        ] = None,
        reference: Annotated[str | None, Field(description="reference data path (default: the version's reference profile)")] = None,
        version: Annotated[int | None, Field(ge=1, description="version whose reference to use (overrides the one in `model`)")] = None,
        columns: Annotated[list[str] | None, Field(description="columns to check (default: all model inputs)")] = None,
        method: Annotated[MethodName, Field(description="auto (recommended) or force one test/distance for every column")] = "auto",
        threshold: Annotated[float | None, Field(gt=0, description="drift threshold for a forced distance method")] = None,
        thresholds: Annotated[
            dict[str, float] | None, Field(description="effect thresholds by metric or column, e.g. {\"wasserstein\": 0.2}")
        ] = None,
        alpha: Annotated[float, Field(gt=0, lt=1, description="significance level after correction")] = 0.05,
        drift_share: Annotated[float, Field(gt=0, le=1, description="share of drifted columns (or of importance) that makes the drift major")] = 0.5,
        since: Annotated[str | None, Field(description="ISO 8601 start of logged predictions (default: until - 7 days)")] = None,
        until: Annotated[str | None, Field(description="ISO 8601 end of logged predictions (default: now)")] = None,
        multivariate: Annotated[bool, Field(description="also train a reference-vs-current classifier (ROC AUC)")] = False,
        plot: Annotated[bool, Field(description="add a PNG: per-column effect sizes and the most drifted distributions")] = False,
    ) -> Annotated[CallToolResult, DriftResult]:
        """Check whether the data a model sees has drifted from what it was trained on, per column and
        overall, and whether its predictions drifted. "Is nba-win drifting?" is check_drift(model="nba-win").

        Reference: the version's reference profile (its training sample) unless `reference` is
        given. Current: `dataset`, or the inputs of predictions logged for the model between `since`
        and `until` (default: the last 7 days, newest 200,000). method="auto" reports per column a
        p-value (KS for numeric and dates, chi-square for categories and integers with few values,
        two-proportion z for two values; Benjamini-Hochberg corrected, with a test of each column's
        missing share) AND an effect size with its confidence interval (Wasserstein / reference std,
        threshold 0.1; bias-corrected Jensen-Shannon, 0.05; rate change, 0.02; missing share, 0.05)
        and flags a column only when the shift is significant and its effect is not below the
        threshold (verdict small_shift: significant but below). The headline is `severity`
        (none / minor / major, rule in `severity_rule`): prediction drift, large shifts of important
        inputs and share_drifted >= drift_share (0.5) make it major. Forced methods: ks,
        cramer_von_mises, chi2, ztest (p < alpha), wasserstein, psi (0.1 moderate / 0.25 major),
        jensenshannon, hellinger, kl_div (>= threshold). Every check
        is saved (report_id). Example: check_drift(model="nba-win", dataset="nba/recent.parquet", plot=true).
        """
        result, png = ops.check_drift(
            actor=r.actor(), want_plot=plot, model=model, dataset=dataset, reference=reference, version=version,
            columns=columns, method=method, threshold=threshold, thresholds=thresholds, alpha=alpha,
            drift_share=drift_share, since=since, until=until, multivariate=multivariate,
        )
        return with_image(DriftResult(**result), png)

    @r.tool(title="Drift history", read_only=True)
    def get_drift_history(
        model: Annotated[str, Field(description="registered model name")],
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
    ) -> DriftHistory:
        """Past drift reports of a model, newest first, with their headline figures (drift detected,
        share and names of drifted columns, prediction drift, data sources, sizes). The full report
        of the newest one is the resource mlops://drift/{name}/latest."""
        return DriftHistory(model=model, reports=[DriftHeadline(**h) for h in ops.drift_history(model, limit)])
