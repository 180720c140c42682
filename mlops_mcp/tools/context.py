"""How a tool reaches the engine and learns who is calling: both come from the request context.

The server's lifespan yields a :class:`Runtime` (the engine and what this server exposes); every
tool takes ``ctx: Context`` and calls :func:`engine`. Nothing here is global, so one process can
run several servers on different engines (the tests do).
"""

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import Context

from mlops_mcp.core.engine import MLOps


@dataclass(frozen=True)
class Runtime:
    """What a running server holds: the engine, and the tools and toolsets it exposes."""

    engine: MLOps
    tools: tuple[str, ...] = ()
    toolsets: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def runtime(ctx: Context) -> Runtime:
    state = ctx.request_context.lifespan_context
    if not isinstance(state, Runtime):  # a server not built by build_server
        raise RuntimeError("this tool needs the mlops-mcp server's runtime (build the server with build_server)")
    return state


def engine(ctx: Context) -> MLOps:
    """The engine serving this request."""
    return runtime(ctx).engine


def caller(ctx: Context) -> str:
    """Who the audit log and the alias history name: the configured actor, the client's name, and
    on HTTP a fingerprint of the bearer token (never the token)."""
    parts = [engine(ctx).settings.actor]
    request_context = ctx.request_context
    try:
        params = request_context.session.client_params
        if params is not None and params.client_info is not None:
            parts.append(f"via {params.client_info.name}")
    except Exception:  # the newest protocol era may carry no client info
        pass
    headers = getattr(request_context.request, "headers", None)
    if headers is not None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            parts.append(f"token:{hashlib.sha256(auth[7:].strip().encode()).hexdigest()[:8]}")
        else:
            parts.append("http")
    return " ".join(parts)


def progress_reporter(ctx: Context) -> Callable[[float, str], None]:
    """A ``progress(fraction, message)`` callable for engine code running in a worker thread: it sends
    MCP progress notifications (best effort: a client that stopped listening never fails the work)."""
    import anyio.from_thread

    def report(fraction: float, message: str) -> None:
        try:
            anyio.from_thread.run(functools.partial(ctx.report_progress, round(fraction * 100, 1), 100.0, message))
        except Exception:
            pass

    return report
