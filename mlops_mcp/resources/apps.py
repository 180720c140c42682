"""MCP Apps: the model health dashboard (``ui://mlops/model-health.html``), linked from
``get_model_health`` through the tool's ``_meta.ui.resourceUri``.

Hosts that render apps (Claude, ChatGPT, VS Code) show the tool's result in it, in a sandboxed
iframe; it refreshes itself by calling read-only tools through the host (get_model_health,
get_model_performance, get_model_history). The HTML is self-contained (inline CSS and JS, no
network), so the default app CSP, which allows no outside origin, is all it needs. Hosts without
app support get the tool's normal text and structured result.
"""

from functools import lru_cache
from pathlib import Path

from mcp.server.apps import Apps

from mlops_mcp.core.monitoring import HEALTH_APP_URI

HTML_FILE = Path(__file__).with_name("model_health.html")


@lru_cache(maxsize=1)
def health_html() -> str:
    return HTML_FILE.read_text(encoding="utf-8")


def build_apps() -> Apps:
    """The Apps extension with its resources (the tools link to them from the ToolSpec table)."""
    apps = Apps()
    apps.add_html_resource(
        HEALTH_APP_URI,
        health_html(),
        name="model_health_app",
        title="Model health dashboard",
        description="Live health of one model: traffic, latency, quality against the baseline, drift per feature, "
        "alias history and active alerts. Rendered by hosts that support MCP Apps for get_model_health.",
        prefers_border=True,
    )
    return apps
