"""Model resources: ``mlops://models``, ``mlops://models/{name}``, ``mlops://models/{name}/versions/{version}``."""

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mlops_mcp.core.engine import MLOps
from mlops_mcp.resources import not_found


def register(mcp: MCPServer, ops: MLOps) -> None:
    @mcp.resource(
        "mlops://models",
        name="models",
        title="Registered models",
        description="Every registered model with its version count, latest version and aliases.",
        mime_type="application/json",
    )
    def models() -> str:
        return json.dumps({"models": ops.list_models()}, default=str)

    @mcp.resource(
        "mlops://models/{name}",
        name="model",
        title="A registered model",
        description="One model: aliases and versions (newest first) with metrics, tags and reference profile.",
        mime_type="application/json",
    )
    def model(name: str) -> str:
        with not_found():
            return json.dumps(ops.get_model(name), default=str)

    @mcp.resource(
        "mlops://models/{name}/versions/{version}",
        name="model_version",
        title="A model version",
        description="One version: metrics, aliases, source run, reference profile and input schema.",
        mime_type="application/json",
    )
    def model_version(name: str, version: str) -> str:
        if not version.isdigit():
            raise ResourceNotFoundError(f"version must be a number, got '{version}'")
        with not_found():
            return json.dumps(ops.get_version(name, int(version)), default=str)
