"""MCP tools, one module per capability. Each module has ``register(r: Registrar)``.

``TOOLSETS`` is the order tools are registered (and listed) in.
"""

TOOLSETS: dict[str, str] = {
    "server": "mlops_mcp.tools.server_info",
    "registry": "mlops_mcp.tools.registry",
    "serving": "mlops_mcp.tools.serving",
    "drift": "mlops_mcp.tools.drift",
    "explain": "mlops_mcp.tools.explain",
    "feedback": "mlops_mcp.tools.feedback",
    "experiments": "mlops_mcp.tools.experiments",
}
