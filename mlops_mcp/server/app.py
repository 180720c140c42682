"""Build the MCP server: one MCPServer on one MLOps engine, the selected toolsets, resources, prompts.

Nothing heavy is imported here: tools import the ML stack only when called, and ``tools/list`` is
answered from a schema cache (``tools/catalog.py``), so a host that launches the server on every
start gets ``initialize`` and ``tools/list`` fast.
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from mlops_mcp import __version__
from mlops_mcp.core.config import Settings
from mlops_mcp.core.engine import MLOps
from mlops_mcp.resources import register_prompts, register_resources
from mlops_mcp.resources.apps import build_apps
from mlops_mcp.tools import select
from mlops_mcp.tools.catalog import CatalogMiddleware, ToolCatalog
from mlops_mcp.tools.context import Runtime, caller

log = logging.getLogger("mlops_mcp.server")

INSTRUCTIONS = """\
mlops-mcp runs the life of machine-learning models kept in an MLflow registry: train and register
versions, promote them with aliases (champion, challenger, shadow), serve predictions, check data
drift, explain predictions, collect feedback and compare versions.
Conventions shared by every tool:
- `model` is "name" (the model; where one version is needed, the one its champion alias points at),
  "name@alias" or "name/version". A model's first version becomes its champion.
- `dataset` is a CSV or Parquet path inside the server's data roots (get_server_info lists them
  and says how to add one).
- Tools that move an alias or conclude an experiment are destructive: they ask the user to confirm
  when the client can, otherwise they need confirm=true, otherwise they only say what they would do.
- Results carry a short text summary and the full structured result; durations name their unit
  (_ms, _seconds); every difference is b - a.
"""


class PromptArgumentsMiddleware:
    """A prompt requested without a required argument gets an error naming it (the SDK answers
    "Internal server error")."""

    def __init__(self, mcp: MCPServer) -> None:
        self.mcp = mcp

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "prompts/get":
            params = ctx.params or {}
            given = params.get("arguments") or {}
            for prompt in await self.mcp.list_prompts():
                if prompt.name == params.get("name"):
                    missing = [a.name for a in prompt.arguments or [] if a.required and not given.get(a.name)]
                    if missing:
                        raise MCPError(
                            code=INVALID_PARAMS,
                            message=f"prompt '{prompt.name}' needs the argument(s) {', '.join(missing)}: "
                            + "; ".join(f"{a.name}: {a.description or 'required'}" for a in prompt.arguments or [] if a.name in missing),
                        )
        return await call_next(ctx)


def build_server(
    settings: Settings | None = None,
    ops: MLOps | None = None,
    toolsets: list[str] | None = None,
    eager_tools: bool = False,
) -> MCPServer:
    """The server, for ``serve`` and for in-memory tests (``mcp.Client(build_server(settings))``).

    ``toolsets`` overrides MLOPS_TOOLSETS; read-only mode comes from the settings. ``eager_tools``
    builds every tool now instead of on first call (the schema snapshot test uses it)."""
    ops = ops or MLOps(settings or Settings())
    specs, sets = select(toolsets if toolsets is not None else ops.settings.toolsets, ops.settings.read_only)
    runtime = Runtime(engine=ops, tools=tuple(s.name for s in specs), toolsets=sets)

    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Runtime]:
        ops.start_background()  # the embedded retraining worker, when there is work for it (off the start-up path)
        yield runtime

    mcp: MCPServer = MCPServer(
        "mlops-mcp",
        title="mlops-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/mlops-mcp/mlops-mcp",
        log_level=ops.settings.log_level,
        lifespan=lifespan,
        extensions=[build_apps()],
    )
    catalog = ToolCatalog(
        mcp, specs, audit=_audit, cache_dir=ops.settings.home / "cache" / "tool-schemas", observe=_observe
    )
    mcp.middleware.extend([CatalogMiddleware(catalog), PromptArgumentsMiddleware(mcp)])
    if eager_tools:
        catalog.build_all()
    register_resources(mcp, ops)
    register_prompts(mcp)
    mcp.ops = ops  # type: ignore[attr-defined]  # the engine, for the HTTP routes and for tests
    mcp.catalog = catalog  # type: ignore[attr-defined]
    if ops.settings.read_only:
        log.info("read-only mode: %d tools offered", len(specs))
    return mcp


def _observe(ctx: Any, tool: str, error: BaseException | None, seconds: float) -> None:
    from mlops_mcp.tools.context import engine

    engine(ctx).record_tool_call(tool, error, seconds)


def _audit(ctx: Any, tool: str, arguments: dict[str, Any], error: BaseException | None, seconds: float) -> None:
    from mlops_mcp.tools.context import engine

    engine(ctx).record_call(actor=caller(ctx), tool=tool, arguments=arguments, error=error, seconds=seconds)
