"""The engine: pure Python, no MCP import. ``from mlops_mcp.core import MLOps, Settings``.

Attributes are resolved lazily so that importing one small module of ``core`` (errors, config)
does not pull in the store or the ML stack.
"""

from typing import Any

__all__ = ["MLOps", "Settings"]


def __getattr__(name: str) -> Any:
    if name == "MLOps":
        from mlops_mcp.core.engine import MLOps

        return MLOps
    if name == "Settings":
        from mlops_mcp.core.config import Settings

        return Settings
    raise AttributeError(name)
