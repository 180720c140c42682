"""Typed results of drift checks (``check_drift``) and of their history."""

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from mlops_mcp.core.results import Result

MethodName = Literal[
    "auto", "ks", "wasserstein", "psi", "jensenshannon", "hellinger", "kl_div", "chi2", "ztest", "cramer_von_mises"
]


class MissingShare(Result):
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


class NotChecked(Result):
    column: str
    reason: str


class ColumnResult(Result):
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


class DriftResult(Result):
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

    def describe(self) -> str:
        drifted = [c for c in self.columns if c.drifted]
        drifted.sort(key=lambda c: -(c.severity or 0))
        lines = [
            f"Drift check {self.report_id} of '{self.model}' v{self.version}: severity {self.severity.upper()}. {self.headline}"
        ]
        lines.extend(f"- because {r}" for r in self.severity_reasons[:4])
        for c in drifted[:8]:
            effect = "" if c.effect_size is None else f"{c.effect_metric} {c.effect_size:.3g} (x{c.severity or 0:.1f} threshold)"
            on = " and ".join(c.drifted_on) if c.drifted_on else "values"
            lines.append(f"- {c.column}: {effect} drifted on {on}".replace("  ", " "))
        if self.small_shifts:
            lines.append(f"Real but small shifts (below threshold): {', '.join(self.small_shifts[:10])}.")
        if self.prediction_drift is not None:
            pd_ = self.prediction_drift
            lines.append(
                f"Prediction drift: {'YES' if pd_.drifted else 'no'}"
                + (f" ({pd_.effect_metric} {pd_.effect_size:.3g})" if pd_.effect_size is not None else "")
            )
        if self.not_checked:
            lines.append("Not checked: " + "; ".join(f"{n.column} ({n.reason})" for n in self.not_checked[:5]))
        lines.append(
            f"Reference: {self.reference_source} ({self.n_reference:,} rows); current: {self.current_source} ({self.n_current:,} rows). "
            f"{self.n_drifted} of {self.n_checked} columns drifted."
        )
        lines.extend(self.notes[:3])
        return "\n".join(lines)


class DriftHeadline(Result):
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


class DriftHistory(Result):
    model: str
    reports: list[DriftHeadline] = Field(description="newest first")

    def describe(self) -> str:
        if not self.reports:
            return f"No drift checks of '{self.model}' yet; run check_drift(model='{self.model}')."
        lines = [f"{len(self.reports)} drift check(s) of '{self.model}', newest first:"]
        for r in self.reports[:20]:
            lines.append(
                f"- #{r.report_id} {r.created_at:%Y-%m-%d %H:%M} UTC v{r.version}: "
                + (f"severity {r.severity}; " if r.severity else "")
                + f"{r.n_drifted}/{r.n_checked} drifted"
                + (f" ({', '.join(r.drifted_columns[:5])})" if r.drifted_columns else "")
                + ("; prediction drifted" if r.prediction_drifted else "")
            )
        return "\n".join(lines)


class DriftReportDetail(DriftHeadline):
    """A stored report in full (the ``mlops://drift/{name}/latest`` resource)."""

    report: dict[str, Any] = Field(description="the whole check_drift result as it was returned")
