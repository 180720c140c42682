"""MCP resources, resource templates and prompts: read-only views for the assistant.

Each module has ``register(mcp, ops)``.
"""

RESOURCE_MODULES: tuple[str, ...] = (
    "mlops_mcp.resources.audit",
    "mlops_mcp.resources.models",
    "mlops_mcp.resources.performance",
    "mlops_mcp.resources.drift",
    "mlops_mcp.resources.prompts",
    "mlops_mcp.resources.experiments",
)
