"""Tools declared as data: a :class:`ToolSpec` per tool (its function, toolset and nature), and the
one place where a tool call is guarded (domain errors become tool errors, mutating calls are
audited) and its result presented (a short text summary, the structured result, an optional PNG).

A tool is a module-level function ``def name(..., ctx: Context) -> SomeResult`` whose docstring is
its description; adding one is that function plus one row in ``mlops_mcp.tools.TOOLS``.
"""

import functools
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel

from mlops_mcp.core.errors import MLOpsError

log = logging.getLogger("mlops_mcp.tools")

Toolset = Literal[
    "server", "registry", "serving", "drift", "explain", "feedback", "experiments", "retraining", "monitoring", "features",
    "deploy",
]
TOOLSETS: tuple[str, ...] = get_args(Toolset)
#: always on, whatever MLOPS_TOOLSETS selects: the way to learn what this server is
ALWAYS_ON: tuple[str, ...] = ("server",)

#: parameters filled by the server, never by the caller (not audited, not in the input schema)
INJECTED = ("ctx", "ok")


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its function and its nature, as data.

    ``ref`` names the function as ``"<module in mlops_mcp.tools>:<function>"``; it is imported on
    first use, so a server answers ``tools/list`` (from its schema cache) without importing any tool
    module. ``read_only`` tools change nothing (annotated so, kept in read-only mode); the others
    are mutating and audited unless ``audit=False`` (``predict``: every row is already in the
    prediction log). ``destructive`` tools also confirm: they take a resolved ``ok`` parameter
    (elicitation) and a ``confirm`` argument, and without either answer what they would do.
    """

    ref: str
    toolset: Toolset
    title: str
    read_only: bool
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False
    audit: bool | None = None
    #: the ``ui://`` MCP App that renders this tool's result (``_meta.ui.resourceUri``)
    app: str | None = None

    @property
    def name(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    @property
    def fn(self) -> Callable[..., Any]:
        return _resolve(self.ref)

    @property
    def audited(self) -> bool:
        return (not self.read_only) if self.audit is None else self.audit

    @property
    def confirms(self) -> bool:
        return self.destructive

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.fn.__doc__ or "")

    @property
    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=self.destructive and not self.read_only,
            idempotent_hint=self.idempotent or self.read_only,
            open_world_hint=self.open_world,
        )

    @property
    def meta(self) -> dict[str, Any] | None:
        """The tool's ``_meta``: the MCP Apps link, when it has an app."""
        return {"ui": {"resourceUri": self.app}} if self.app else None

    def check(self) -> None:
        """The declaration agrees with the function (run by the tests over every tool)."""
        params = inspect.signature(self.fn).parameters
        assert "ctx" in params, f"{self.name}: a tool takes ctx: Context (it reaches the engine through it)"
        if self.confirms:
            assert "ok" in params and "confirm" in params, f"{self.name}: a destructive tool takes ok (resolved) and confirm"
        assert self.fn.__doc__, f"{self.name}: the docstring is the tool's description"


@functools.cache
def _resolve(ref: str) -> Callable[..., Any]:
    import importlib

    module, name = ref.split(":", 1)
    return getattr(importlib.import_module(f"mlops_mcp.tools.{module}"), name)  # type: ignore[no-any-return]


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


def present(result: BaseModel, ctx: Any = None, png: bytes | None = None) -> CallToolResult:
    """A tool's answer: a short text summary (what, how much, what next) for people and for hosts
    that read only text, the whole result as structured content, and the chart (PNG) the engine
    drew for it, if any. With MLOPS_TEXT_CONTENT=json the full JSON follows the summary, for hosts
    that ignore structured content."""
    png = png or getattr(result, "chart", None)
    data = result.model_dump(mode="json")
    describe = getattr(result, "describe", None)
    text = describe() if callable(describe) else ""
    if not text or _text_mode(ctx) == "json":
        text = (text + "\n\n" if text else "") + result.model_dump_json(exclude_none=True)
    content: list[Any] = [TextContent(type="text", text=text)]
    if png:
        import base64

        content.append(ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png"))
    return CallToolResult(content=content, structured_content=data)


def _text_mode(ctx: Any) -> str:
    if ctx is None:
        return "summary"
    from mlops_mcp.tools.context import engine

    return engine(ctx).settings.text_content


def bind(spec: ToolSpec, audit: Callable[..., None], observe: Callable[..., None] | None = None) -> Callable[..., Any]:
    """The function the SDK registers for ``spec``: same signature (so the same schemas), plus the
    guard and the presentation. ``audit(ctx, tool, arguments, error, seconds)`` records a mutating
    call; ``observe(ctx, tool, error, seconds)`` counts every call (the metrics)."""
    fn = spec.fn
    name = spec.name
    signature = inspect.signature(fn)

    def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = signature.bind_partial(*args, **kwargs).arguments
        return {k: v for k, v in bound.items() if k not in INJECTED}

    def finish(ctx: Any, args: tuple[Any, ...], kwargs: dict[str, Any], started: float, error: BaseException | None) -> None:
        if observe is not None:
            try:
                observe(ctx, name, error, time.perf_counter() - started)
            except Exception:  # counting must never fail a call
                log.exception("could not count the call of %s", name)
        if spec.audited:
            try:
                audit(ctx, name, arguments(args, kwargs), error, time.perf_counter() - started)
            except Exception:  # the audit must never turn a done change into a reported failure
                log.exception("could not write the audit record for %s", name)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            import anyio

            ctx = kwargs.get("ctx")
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return _answer(await fn(*args, **kwargs), ctx)
            except ToolError as exc:
                error = exc
                raise
            except Exception as exc:
                error = exc
                raise to_tool_error(exc, name) from exc
            except BaseException:  # cancelled by the client: recorded as such, then re-raised
                from mlops_mcp.core.errors import Cancelled

                error = Cancelled("the client cancelled the call")
                raise
            finally:
                if spec.audited:  # blocking I/O off the event loop; shielded: a cancelled call is audited too
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(functools.partial(finish, ctx, args, kwargs, started, error))
                elif observe is not None:  # counting is in memory: no thread needed
                    finish(ctx, args, kwargs, started, error)

        return async_tool

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return _answer(fn(*args, **kwargs), ctx)
        except ToolError as exc:
            error = exc
            raise
        except Exception as exc:
            error = exc
            raise to_tool_error(exc, name) from exc
        finally:
            finish(ctx, args, kwargs, started, error)

    return tool


def _answer(out: Any, ctx: Any) -> CallToolResult:
    return out if isinstance(out, CallToolResult) else present(out, ctx)
