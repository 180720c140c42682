"""MCP resources, resource templates and prompts: read-only views for the assistant.

Each module has ``register(mcp, ops)``; a read that meets a domain error (unknown model, ...)
answers through :func:`not_found`, the resources' one mapping of those errors.
"""

from collections.abc import Iterator
from contextlib import contextmanager

RESOURCE_MODULES: tuple[str, ...] = (
    "mlops_mcp.resources.audit",
    "mlops_mcp.resources.models",
    "mlops_mcp.resources.performance",
    "mlops_mcp.resources.drift",
    "mlops_mcp.resources.prompts",
    "mlops_mcp.resources.experiments",
)


@contextmanager
def not_found() -> Iterator[None]:
    """Turn the engine's errors into a resource-not-found answer carrying their text."""
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError

    from mlops_mcp.core.errors import MLOpsError

    try:
        yield
    except MLOpsError as exc:
        raise ResourceNotFoundError(str(exc)) from None
