"""``mlops://drift/{name}/latest``: the newest drift report of a model, in full."""

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mlops_mcp.core.engine import MLOps


def register(mcp: MCPServer, ops: MLOps) -> None:
    @mcp.resource(
        "mlops://drift/{name}/latest",
        name="latest_drift_report",
        title="Latest drift report of a model",
        description="The newest check_drift report of model {name}: headline figures and every column's result.",
        mime_type="application/json",
    )
    def latest_drift(name: str) -> str:
        from mlops_mcp.core.drift import service as monitoring

        report = monitoring.latest(ops.store, name)
        if report is None:
            raise ResourceNotFoundError(f"no drift report for model '{name}' yet; run check_drift(model='{name}')")
        return json.dumps(report, default=str)
