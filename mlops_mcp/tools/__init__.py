"""MCP tools, one module per capability. Each module has ``register(r: Registrar)``.

``TOOLSETS`` is the order tools are registered in, and the names used by ``MLOPS_TOOLSETS``.
"""

TOOLSETS: dict[str, str] = {
    "server": "mlops_mcp.tools.server_info",
    "feedback": "mlops_mcp.tools.feedback",
    "registry": "mlops_mcp.tools.registry",
    "serving": "mlops_mcp.tools.serving",
    "drift": "mlops_mcp.tools.drift",
    "explain": "mlops_mcp.tools.explain",
    "experiments": "mlops_mcp.tools.experiments",
}
