"""The headline of a drift report: none / minor / major, by a rule stated in the result.

Why a rule beyond "share of drifted columns >= drift_share": a model whose predictions moved, or
whose most important inputs moved a lot, is drifting however many unimportant columns stayed put
(the rule-change demo had 5 of 13 inputs shifted by more than their threshold and a drifted
prediction, and the share rule alone said "no"). The share rule stays as one input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_mcp.core.drift.engine import ColumnDrift, DriftReport

LARGE_EFFECT = 2.0  # an effect at least twice its threshold is large
SHOWN = 4  # columns named in the headline


@dataclass
class Assessment:
    severity: str  # none | minor | major
    rule: str
    reasons: list[str] = field(default_factory=list)
    headline: str = ""
    importance_source: str | None = None


def rule_text(drift_share: float, importance_known: bool) -> str:
    """The rule, in words, as it applies to this report."""
    share = f"{drift_share:.0%}"
    if importance_known:
        important = "an input of at least average importance"
        by_share = f"drifted inputs are at least drift_share ({share}) of the checked columns or of the model's feature importance"
    else:
        important = "any input (feature importance unknown, so every input counts as important)"
        by_share = f"drifted inputs are at least drift_share ({share}) of the checked columns"
    return (
        f"major: the prediction drifted, or an input went all missing (a broken feed), or {by_share}, or "
        f"{important} drifted with an effect at least {LARGE_EFFECT:g}x its threshold; minor: any other "
        "drifted input; none: nothing drifted (significant shifts below their threshold are listed as small_shifts). "
        "A column drifts when its test is significant after correction (alpha) and its effect is not below the "
        "threshold with confidence 1 - alpha, or when its missing share changed significantly by 5 points or more."
    )


def _times(c: ColumnDrift) -> str:
    return f"{c.severity:.1f}x" if c.severity is not None else "drifted"


def assess(
    report: DriftReport,
    prediction: ColumnDrift | None = None,
    importance: dict[str, float] | None = None,
    importance_source: str | None = None,
) -> Assessment:
    """Grade a report by :func:`rule_text`; ``importance`` maps input columns to shares of the
    model's importance (they need not sum to 1; columns absent from it count as 0)."""
    checked = [c for c in report.columns if c.status == "ok"]
    drifted = [c for c in checked if c.drifted]
    order = {name: i for i, name in enumerate(report.ranked)}
    drifted.sort(key=lambda c: order.get(c.column, len(order)))
    reasons: list[str] = []
    if prediction is not None and prediction.drifted:
        reasons.append(f"the prediction drifted (effect {_times(prediction)} its threshold)")
    for c in drifted:
        if "missing_share" in c.drifted_on and c.n_current == 0:
            reasons.append(f"{c.column} went all missing (a broken feed)")
    if checked and report.share_drifted >= report.drift_share and drifted:
        reasons.append(
            f"{len(drifted)} of {len(checked)} checked inputs drifted ({report.share_drifted:.0%} >= drift_share {report.drift_share:.0%})"
        )
    known = bool(importance) and sum(importance.values()) > 0  # type: ignore[union-attr]
    if known:
        total = sum(max(v, 0.0) for v in importance.values())  # type: ignore[union-attr]
        shares = {k: max(v, 0.0) / total for k, v in importance.items()}  # type: ignore[union-attr]
        mean_share = 1.0 / max(len(shares), 1)
        carried = sum(shares.get(c.column, 0.0) for c in drifted)
        if drifted and carried >= report.drift_share:
            reasons.append(
                f"drifted inputs carry {carried:.0%} of the model's importance (>= drift_share {report.drift_share:.0%})"
            )
        for c in drifted:
            share = shares.get(c.column, 0.0)
            if share >= mean_share and (c.severity or 0.0) >= LARGE_EFFECT:
                reasons.append(
                    f"{c.column} drifted {_times(c)} its threshold and carries {share:.0%} of the importance"
                )
    else:
        for c in drifted:
            if (c.severity or 0.0) >= LARGE_EFFECT:
                reasons.append(f"{c.column} drifted {_times(c)} its threshold")
    severity = "major" if reasons else ("minor" if drifted else "none")
    if severity == "minor":
        reasons = [f"{len(drifted)} of {len(checked)} inputs drifted, none by a major rule"]
    source = importance_source if known else None
    return Assessment(
        severity,
        rule_text(report.drift_share, known),
        reasons,
        _headline(severity, report, drifted, prediction),
        source,
    )


def _headline(
    severity: str, report: DriftReport, drifted: list[ColumnDrift], prediction: ColumnDrift | None
) -> str:
    checked = report.n_checked
    if severity == "none":
        text = f"no drift: 0 of {checked} inputs drifted"
    else:
        named = ", ".join(f"{c.column} ({_times(c)})" for c in drifted[:SHOWN])
        more = f", +{len(drifted) - SHOWN} more" if len(drifted) > SHOWN else ""
        text = f"{severity} drift: {len(drifted)} of {checked} inputs drifted" + (
            f": {named}{more}" if drifted else ""
        )
    if prediction is not None and prediction.status == "ok":
        text += f"; prediction {'drifted (' + _times(prediction) + ')' if prediction.drifted else 'stable'}"
    if report.small_shifts:
        text += f"; small shifts (significant, below threshold): {', '.join(report.small_shifts[:SHOWN])}"
        if len(report.small_shifts) > SHOWN:
            text += f", +{len(report.small_shifts) - SHOWN} more"
    if report.not_checked:
        text += f"; {len(report.not_checked)} column(s) not checked (see not_checked)"
    return text
