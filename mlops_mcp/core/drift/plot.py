"""A PNG summary of a drift report: effect size per column and the most drifted distributions.

matplotlib is imported inside the function (Agg backend) so importing the engine stays cheap.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from mlops_mcp.core.drift.engine import DriftReport
from mlops_mcp.core.drift.prepared import epoch_seconds


def plot_report(report: DriftReport, reference: Any = None, current: Any = None, top: int = 4) -> bytes:
    """Bars of effect size / threshold per column (red = drifted); below, reference vs current
    histograms (numeric) or shares (categorical) of the ``top`` most severe columns when the
    prepared reference and the current frame are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [c for c in report.columns if c.status == "ok"]
    order = {name: i for i, name in enumerate(report.ranked)}
    ok.sort(key=lambda c: order.get(c.column, len(order)))
    worst = [c for c in ok if c.drifted][:top] or ok[:top]
    show = reference is not None and current is not None and worst
    rows = 1 + (1 if show else 0)
    fig = plt.figure(figsize=(10, 3.2 + 0.18 * len(ok) + (3.0 if show else 0)))
    ax = fig.add_subplot(rows, 1, 1)
    names = [c.column for c in ok][::-1]
    vals = [(c.severity or 0.0) for c in ok][::-1]
    colors = ["#d62728" if c.drifted else "#7f7f7f" for c in ok][::-1]
    ax.barh(names, vals, color=colors)
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xlabel("effect size / threshold (red: drifted = significant and above threshold)")
    ax.set_title(f"Drift: {report.severity} ({report.n_drifted}/{report.n_checked} columns drifted)")
    if show:
        legend = False
        for i, col in enumerate(worst):
            sub = fig.add_subplot(rows, len(worst), len(worst) + i + 1)
            if col.n_current == 0:  # nothing to draw: every current value is missing
                sub.text(0.5, 0.5, col.reason or "no current values", ha="center", va="center", fontsize=8, wrap=True)
                sub.set_axis_off()
            elif col.kind in ("numeric", "datetime") and col.column in getattr(reference, "numeric", {}):
                a = reference.numeric[col.column].values  # datetimes: epoch seconds
                if col.kind == "datetime":
                    b = epoch_seconds(current[col.column])[0]
                else:
                    b = np.asarray(current[col.column], dtype=float)
                b = b[np.isfinite(b)]
                lo, hi = np.quantile(a, [0.005, 0.995]) if a.size else (0.0, 1.0)
                bins = np.linspace(min(lo, *np.quantile(b, [0.005])), max(hi, *np.quantile(b, [0.995])), 40)
                sub.hist(a, bins=bins, density=True, alpha=0.5, label="reference")
                sub.hist(b, bins=bins, density=True, alpha=0.5, label="current")
            else:
                moves = col.summary.get("top_moves", [])[:6]
                labels = [str(mv["category"]) for mv in moves]
                x = np.arange(len(labels))
                sub.bar(x - 0.2, [mv["reference_share"] for mv in moves], 0.4, label="reference")
                sub.bar(x + 0.2, [mv["current_share"] for mv in moves], 0.4, label="current")
                sub.set_xticks(x, labels, rotation=45, fontsize=7)
            sub.set_title(col.column, fontsize=9)
            if not legend and col.n_current:  # once, on the first panel that draws both sides
                sub.legend(fontsize=7)
                legend = True
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
