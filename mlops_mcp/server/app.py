"""Build the MCP server: one MCPServer, one MLOps engine, every toolset and resource registered.

Nothing heavy is imported here: tools import the ML stack only when called, so that a host that
launches the server on every start gets ``initialize`` and ``tools/list`` answered fast.
"""

import hashlib
import importlib
import logging
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer

from mlops_mcp import __version__
from mlops_mcp.core.engine import MLOps
from mlops_mcp.core.config import Settings
from mlops_mcp.resources import RESOURCE_MODULES
from mlops_mcp.tools import TOOLSETS
from mlops_mcp.tools.base import Registrar, current_actor

log = logging.getLogger("mlops_mcp.server")

INSTRUCTIONS = """\
mlops-mcp runs the life of machine-learning models kept in an MLflow registry: train and register
versions, promote them with aliases (champion, challenger, shadow), serve predictions, check data
drift, explain predictions, collect feedback and compare versions.
Models are named by `model`: "name" (its champion), "name@alias" or "name/version".
Datasets are CSV or Parquet paths inside the server's data roots (see get_server_info).
Tools that move an alias or conclude an experiment ask for confirmation; results are summaries.
"""


class ActorMiddleware:
    """Names the caller for the audit log: the client's name, and on HTTP a token fingerprint."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        token = current_actor.set(self.describe(ctx))
        try:
            return await call_next(ctx)
        finally:
            current_actor.reset(token)

    def describe(self, ctx: ServerRequestContext[Any, Any]) -> str:
        parts = [self.settings.actor]
        try:
            params = ctx.session.client_params
            if params is not None and params.client_info is not None:
                parts.append(f"via {params.client_info.name}")
        except Exception:  # the newest protocol era may carry no client info
            pass
        request = ctx.request
        headers = getattr(request, "headers", None)
        if headers is not None:
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                digest = hashlib.sha256(auth[7:].strip().encode()).hexdigest()[:8]
                parts.append(f"token:{digest}")
            else:
                parts.append("http")
        return " ".join(parts)


def build_server(settings: Settings | None = None, ops: MLOps | None = None, eager_tools: bool = False) -> MCPServer:
    """The server, for ``serve`` and for in-memory tests (``mcp.Client(build_server(settings))``).

    ``eager_tools`` builds every tool's schemas now instead of serving them from the cache
    (see ``tools/schema_cache.py``)."""
    ops = ops or MLOps(settings or Settings())
    mcp: MCPServer = MCPServer(
        "mlops-mcp",
        title="mlops-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/mlops-mcp/mlops-mcp",
        log_level=ops.settings.log_level,
        middleware=[ActorMiddleware(ops.settings)],
    )
    registrar = Registrar(mcp, ops, eager=eager_tools)
    for module_name in TOOLSETS.values():
        importlib.import_module(module_name).register(registrar)
    for module_name in RESOURCE_MODULES:
        importlib.import_module(module_name).register(mcp, ops)
    mcp.ops = ops  # type: ignore[attr-defined]  # handy for tests and the HTTP routes
    mcp.registrar = registrar  # type: ignore[attr-defined]
    if registrar.skipped:
        log.info("read-only mode: %d mutating tools not registered", len(registrar.skipped))
    return mcp
