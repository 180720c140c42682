"""Charts of explanations: a waterfall for one prediction, a bar chart of global importance.

Each is an 800x500 PNG drawn on a bare matplotlib ``Figure`` with the Agg canvas (no pyplot
state), so drawing is thread-safe and leaves nothing open. matplotlib is imported inside the
functions: the server imports this module only when a chart is asked for.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_mcp.core.explain.shap_engine import GlobalImportance, RowExplanation


def _figure() -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    fig.clear()
    return buffer.getvalue()


def _label(feature: str, value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = "missing" if value is None else str(value)
    label = f"{feature} = {text}"
    return label if len(label) <= 40 else label[:39] + "…"


def waterfall_png(explanation: RowExplanation) -> bytes:
    """A waterfall chart (800x500 PNG): base value, then each listed contribution and the rest,
    ending at the model's output; red pushes the output up, blue down.

    Uses a bare ``Figure`` with the Agg canvas (no pyplot state), so it is thread-safe and leaves
    nothing open.
    """
    items = [(_label(c.feature, c.value), c.shap) for c in explanation.contributions]
    if explanation.n_rest:
        items.append((f"{explanation.n_rest} other features", explanation.rest))
    fig, ax = _figure()
    start = explanation.base_value
    y_positions = list(range(len(items)))[::-1]
    for y, (label, value) in zip(y_positions, items):
        ax.barh(y, value, left=start, color="#d62728" if value >= 0 else "#1f77b4", height=0.6)
        align = "left" if value >= 0 else "right"
        ax.text(start + value, y, f" {value:+.3g} ", va="center", ha=align, fontsize=8)
        start += value
    ax.set_yticks(y_positions)
    ax.set_yticklabels([label for label, _ in items], fontsize=8)
    ax.axvline(explanation.base_value, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(explanation.output_value, color="black", linewidth=0.8)
    space = explanation.output_space.replace("_", "-")
    ax.set_xlabel(f"{space}: base {explanation.base_value:.3g} -> output {explanation.output_value:.3g}")
    title = f"Why {explanation.output_value:.3g}? ({explanation.output_description})"
    ax.set_title(title if len(title) <= 90 else title[:89] + "…", fontsize=10)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
    fig.tight_layout()
    return _png(fig)


def importance_png(importance: GlobalImportance, top_k: int = 20) -> bytes:
    """A horizontal bar chart (800x500 PNG) of the ``top_k`` largest mean |SHAP| values."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        from mlops_mcp.core.errors import InvalidInput

        raise InvalidInput(f"must be a whole number of at least 1, got {top_k!r}", argument="top_k")
    items = importance.importances[:top_k]
    fig, ax = _figure()
    y_positions = list(range(len(items)))[::-1]
    ax.barh(y_positions, [i.mean_abs_shap for i in items], color="#1f77b4", height=0.6)
    ax.set_yticks(y_positions)
    ax.set_yticklabels([i.feature for i in items], fontsize=8)
    ax.set_xlabel(f"mean |SHAP| ({importance.output_space.replace('_', '-')}), {importance.n_rows} rows")
    ax.set_title(f"Feature importance ({importance.explainer} explainer)", fontsize=10)
    fig.tight_layout()
    return _png(fig)
