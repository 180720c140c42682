"""``mlops://models/{name}/performance``: live performance of a model (overall figures, training
baseline, degradation verdict and the most recent daily buckets), as JSON."""

import json

from mcp.server.mcpserver import MCPServer

from mlops_mcp.core.engine import MLOps
from mlops_mcp.resources import not_found

LAST_BUCKETS = 14


def register(mcp: MCPServer, ops: MLOps) -> None:
    @mcp.resource(
        "mlops://models/{name}/performance",
        name="model_performance",
        title="Model performance",
        description=(
            "Live performance of a model from logged predictions and their feedback labels: overall "
            f"figures, the champion's training baseline, the degraded flag with reasons, and the last {LAST_BUCKETS} "
            "daily (UTC) buckets. For other windows or ranges call get_model_performance."
        ),
        mime_type="application/json",
    )
    def model_performance(name: str) -> str:
        from mlops_mcp.core.feedback.performance import model_performance as report

        with not_found():
            data = report(ops.store, ops.registry, name, window="1d", max_buckets=LAST_BUCKETS)
        keep = (
            "model", "task", "versions", "overall", "baseline", "tolerance", "degraded", "reasons",
            "buckets", "buckets_total", "champion_changes", "notes", "first_prediction", "last_prediction",
        )
        return json.dumps({k: data[k] for k in keep}, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
