"""What every tool shares: registration with annotations, the one place where domain errors become
MCP tool errors, the audit record of mutating calls, and read-only mode.

A tool module exposes ``register(r: Registrar)`` and declares its tools with ``@r.tool(...)``:
the decorator needs to know whether a tool only reads (annotations, read-only mode) or mutates
(audit). Tools are plain functions: sync ones run on a worker thread, so they may block.
"""

import functools
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from mlops_mcp.core.engine import MLOps
from mlops_mcp.core.errors import MLOpsError

log = logging.getLogger("mlops_mcp.tools")

F = TypeVar("F", bound=Callable[..., Any])

#: A class label, a feature value or a prediction: what JSON can carry as one value. Typed (not
#: ``Any``) so that published output schemas say what they hold.
Scalar = str | int | float | bool

#: Who is calling, set per request by the server's middleware (client name, token identity).
current_actor: ContextVar[str | None] = ContextVar("mlops_actor", default=None)


def to_tool_error(exc: BaseException, tool: str) -> ToolError:
    """The single mapping from exceptions to what the calling model reads."""
    if isinstance(exc, MLOpsError):
        return ToolError(str(exc))
    error_id = uuid.uuid4().hex[:12]
    log.error("unexpected error in tool %s [error id %s]", tool, error_id, exc_info=exc)
    return ToolError(
        f"internal error (error id {error_id}): {type(exc).__name__}. "
        "The server log has the traceback under that id; the server is still running."
    )


class Registrar:
    """Registers tools on one MCPServer for one MLOps engine."""

    def __init__(self, mcp: MCPServer, ops: MLOps, eager: bool = False) -> None:
        from mlops_mcp.tools import schema_cache

        self.mcp = mcp
        self.ops = ops
        self._cached = None if eager else schema_cache.load()
        self.read_only_mode = ops.settings.read_only
        self.registered: list[str] = []
        self.skipped: list[str] = []

    def tool(
        self,
        *,
        title: str,
        read_only: bool,
        destructive: bool = False,
        idempotent: bool = False,
        open_world: bool = False,
        audit: bool | None = None,
    ) -> Callable[[F], F]:
        """``audit`` defaults to "mutating"; ``predict`` turns it off because every prediction is
        already recorded, row by row, in the prediction log."""
        def decorate(fn: F) -> F:
            name = fn.__name__
            if self.read_only_mode and not read_only:
                self.skipped.append(name)
                return fn
            wrapped = self._guard(fn, audited=(not read_only) if audit is None else audit)
            options: dict[str, Any] = {
                "name": name,
                "title": title,
                "description": inspect.cleandoc(fn.__doc__ or ""),
                "annotations": ToolAnnotations(
                    title=title,
                    read_only_hint=read_only,
                    destructive_hint=destructive if not read_only else False,
                    idempotent_hint=idempotent or read_only,
                    open_world_hint=open_world,
                ),
            }
            cached = (self._cached or {}).get(name)
            if cached is None:
                self.mcp.tool(**options)(wrapped)
            else:  # schemas from the shipped cache; the Tool itself is built on first call
                from mlops_mcp.tools.schema_cache import LazyTool

                self.mcp._tool_manager._tools[name] = LazyTool(self.mcp, wrapped, options, cached)  # type: ignore[assignment]
            self.registered.append(name)
            return fn

        return decorate

    def actor(self) -> str:
        return current_actor.get() or self.ops.settings.actor

    def _guard(self, fn: Callable[..., Any], *, audited: bool) -> Callable[..., Any]:
        name = fn.__name__
        signature = inspect.signature(fn)
        ops = self.ops

        def bound_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            bound = signature.bind_partial(*args, **kwargs).arguments
            return {k: v for k, v in bound.items() if k not in ("ctx", "ok") and not k.startswith("_")}

        def audit(arguments: dict[str, Any], started: float, error: BaseException | None) -> None:
            if not audited:
                return
            from mlops_mcp.core import audit as audit_log

            try:
                audit_log.record(
                    ops.store,
                    actor=self.actor(),
                    tool=name,
                    arguments=arguments,
                    outcome="ok" if error is None else "error",
                    error=None if error is None else str(error)[:2000],
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            except Exception:  # the audit must never turn a done change into a reported failure
                log.exception("could not write the audit record for %s", name)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                error: BaseException | None = None
                try:
                    return await fn(*args, **kwargs)
                except ToolError as exc:
                    error = exc
                    raise
                except Exception as exc:
                    error = exc
                    raise to_tool_error(exc, name) from exc
                finally:
                    if audited:  # the store is blocking I/O: keep it off the event loop
                        await anyio.to_thread.run_sync(
                            functools.partial(audit, bound_arguments(args, kwargs), started, error)
                        )

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return fn(*args, **kwargs)
            except ToolError as exc:
                error = exc
                raise
            except Exception as exc:
                error = exc
                raise to_tool_error(exc, name) from exc
            finally:
                audit(bound_arguments(args, kwargs), started, error)

        return wrapper


def with_image(result: Any, png: bytes | None, caption: str = "chart") -> Any:
    """A tool result that carries both the structured model and, when drawn, a PNG image.

    Tools that can plot declare ``-> Annotated[CallToolResult, TheModel]`` so the output schema
    stays the model's; the image rides along as image content the assistant can show or read.
    """
    import base64

    from mcp.types import CallToolResult, ImageContent, TextContent

    data = result.model_dump(mode="json")
    content: list[Any] = [TextContent(type="text", text=result.model_dump_json())]
    if png:
        content.append(ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png"))
    return CallToolResult(content=content, structured_content=data)
