"""MCP resources, resource templates and prompts: read-only views for the assistant and for people
browsing in the MCP Inspector. Resources serve the same typed results the tools return, as JSON."""

from mlops_mcp.resources.prompts import PROMPTS, register_prompts
from mlops_mcp.resources.views import RESOURCES, register_resources

__all__ = ["PROMPTS", "RESOURCES", "register_prompts", "register_resources"]
