"""Typed results of drift checks (``check_drift``) and of their history."""

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from mlops_mcp.core.results import Result

MethodName = Literal[
    "auto", "ks", "wasserstein", "psi", "jensenshannon", "hellinger", "kl_div", "chi2", "ztest", "cramer_von_mises"
]


class ColumnResult(Result):
    column: str
    kind: str = Field(description="numeric or categorical")
    method: str
    status: str = Field(description="ok, skipped or error (then `reason` says why)")
    reason: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = Field(None, description="Benjamini-Hochberg corrected across the checked columns")
    effect_size: float | None = Field(None, description="normed Wasserstein (numeric) or Jensen-Shannon (categorical) under auto")
    effect_metric: str | None = None
    effect_threshold: float | None = None
    drifted: bool | None = None
    severity: float | None = Field(None, description="effect size / its threshold; > 1 is above threshold")
    n_reference: int = 0
    n_current: int = 0
    missing_reference: int = 0
    missing_current: int = 0
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
    drift_detected: bool = Field(description="share_drifted >= drift_share, or any column all missing in the current data")
    share_drifted: float
    n_drifted: int
    n_checked: int
    drift_share: float
    ranked: list[str] = Field(description="columns by severity, most drifted first")
    columns: list[ColumnResult]
    prediction_drift: ColumnResult | None = Field(description="the model's scores on reference vs current, same test")
    multivariate: dict[str, Any] | None = Field(None, description="domain classifier: ROC AUC and the separating columns")
    extra_columns: list[str] = Field(default_factory=list, description="current columns not checked")
    notes: list[str] = Field(
        default_factory=list, description="caveats of this check, e.g. why prediction_drift is missing or what it left out"
    )

    def describe(self) -> str:
        drifted = [c for c in self.columns if c.drifted]
        drifted.sort(key=lambda c: -(c.severity or 0))
        head = (
            f"Drift check {self.report_id} of '{self.model}' v{self.version}: {self.n_drifted} of {self.n_checked} "
            f"columns drifted ({self.share_drifted:.0%}); dataset drift {'YES' if self.drift_detected else 'no'} "
            f"(rule: share >= {self.drift_share:.0%})."
        )
        lines = [head]
        for c in drifted[:8]:
            effect = f"{c.effect_metric} {c.effect_size:.3g}" if c.effect_size is not None else c.method
            lines.append(f"- {c.column}: {effect} (x{c.severity or 0:.1f} threshold), p_adj {c.p_adjusted if c.p_adjusted is None else f'{c.p_adjusted:.2g}'}")
        if self.prediction_drift is not None:
            pd_ = self.prediction_drift
            lines.append(f"Prediction drift: {'YES' if pd_.drifted else 'no'}" + (f" ({pd_.effect_metric} {pd_.effect_size:.3g})" if pd_.effect_size is not None else ""))
        lines.append(f"Reference: {self.reference_source} ({self.n_reference:,} rows); current: {self.current_source} ({self.n_current:,} rows).")
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


class DriftHistory(Result):
    model: str
    reports: list[DriftHeadline] = Field(description="newest first")

    def describe(self) -> str:
        if not self.reports:
            return f"No drift checks of '{self.model}' yet; run check_drift(model='{self.model}')."
        lines = [f"{len(self.reports)} drift check(s) of '{self.model}', newest first:"]
        for r in self.reports[:20]:
            lines.append(
                f"- #{r.report_id} {r.created_at:%Y-%m-%d %H:%M} UTC v{r.version}: {r.n_drifted}/{r.n_checked} drifted"
                + (f" ({', '.join(r.drifted_columns[:5])})" if r.drifted_columns else "")
                + ("; dataset drift" if r.drift_detected else "")
                + ("; prediction drifted" if r.prediction_drifted else "")
            )
        return "\n".join(lines)


class DriftReportDetail(DriftHeadline):
    """A stored report in full (the ``mlops://drift/{name}/latest`` resource)."""

    report: dict[str, Any] = Field(description="the whole check_drift result as it was returned")
