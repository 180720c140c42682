"""MCP tools, one module per capability. Each module has ``register(r: Registrar)``.

``TOOLSETS`` is the order tools are registered in, and the names used by ``MLOPS_TOOLSETS``.
"""

TOOLSETS: dict[str, str] = {
    "server": "mlops_mcp.tools.server_info",
    "registry": "mlops_mcp.tools.registry",
    "serving": "mlops_mcp.tools.serving",
}
