"""MCP resources, resource templates and prompts: read-only views for the assistant.

Each module has ``register(mcp, ops)``.
"""

RESOURCE_MODULES: tuple[str, ...] = ("mlops_mcp.resources.audit",)
