"""Streamable HTTP: the MCP endpoint at ``/mcp``, health answers and the REST prediction route,
guarded by Host/Origin checks (DNS-rebinding protection) and, when ``MLOPS_AUTH_TOKEN`` is set, a
bearer token on every request.

Routes:
- ``GET /health/live``: liveness, always ``{"status": "ok"}``; open (no token, no Host check) so that
  load balancers and Kubernetes probes can call it; it carries no data and touches nothing.
- ``GET /health/ready``: readiness, ``{"status": "ok"}`` or 503 ``{"status": "unavailable"}`` when the
  store does not answer; open like liveness, nothing else in it.
- ``GET /health``: the detailed answer (version, store, read-only mode), behind the guard.
- ``POST /mcp``: MCP; ``POST /v1/models/{name}/predict``: REST predictions for applications.

Start-up refuses what would fail open or fail late: a bind that needs a token and has none (any
address that is not loopback), ``MLOPS_ALLOWED_HOSTS='*'`` without a token, a host that does not
resolve or is not this machine's, a port in use.
"""

import errno
import ipaddress
import json
import logging
import socket
import time
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlops_mcp import __version__
from mlops_mcp.core.config import Settings
from mlops_mcp.core.errors import Forbidden, InvalidInput
from mlops_mcp.core.serving.rest import WWW_AUTHENTICATE, bearer_refusal, predict_response

log = logging.getLogger("mlops_mcp.http")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Bare answers without data, open to probes: no token, no Host/Origin check, GET and HEAD only.
PROBE_PATHS = frozenset({"/health/live", "/health/ready"})
READY_CACHE_SECONDS = 1.0  # unauthenticated readiness probes cannot make the store work harder than this


def allowed_hosts(settings: Settings) -> list[str]:
    """Host header values accepted: loopback names, the bound host, and MLOPS_ALLOWED_HOSTS."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    bind = settings.http_host
    if bind not in LOOPBACK and bind not in ("0.0.0.0", "::"):
        hosts.append(f"[{bind}]" if ":" in bind else bind)
    hosts.extend(settings.allowed_hosts)
    return hosts


def check_bind(settings: Settings) -> None:
    """Refuse, before anything is built, a bind that would fail open or fail late.

    The address is resolved the way uvicorn binds it (IPv6 when the host has a ':', else IPv4):
    a token is required unless every address it resolves to is loopback (so ``127.0.0.2`` needs
    none, ``0.0.0.0`` and a LAN name do), then a trial bind turns "in use" and "not this machine's"
    into clear errors instead of a traceback after start-up."""
    host, port = settings.http_host, settings.http_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInput(
            f"cannot resolve '{host}' ({reason}); give an IP address (127.0.0.1 for this machine only, "
            "0.0.0.0 for every interface) or a name this machine resolves (--host or MLOPS_HTTP_HOST)",
            argument="host",
        ) from None
    addresses = {str(info[4][0]).split("%", 1)[0] for info in infos}
    loopback = bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    if settings.auth_token is None and not loopback:
        raise Forbidden(
            f"refusing to listen on {host} without a token: set MLOPS_AUTH_TOKEN "
            "(clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1",
            argument="host",
        )
    if settings.auth_token is None and "*" in settings.allowed_hosts:
        raise Forbidden(
            "MLOPS_ALLOWED_HOSTS='*' turns DNS-rebinding protection off, so any web page could drive this "
            "server through a browser: set MLOPS_AUTH_TOKEN too, or list the host names instead of '*'",
            argument="allowed_hosts",
        )
    with socket.socket(family, socket.SOCK_STREAM) as trial:
        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            trial.bind(infos[0][4])
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInput(
                    f"port {port} on {host} is in use (another server?); "
                    "choose another with --port or MLOPS_HTTP_PORT",
                    argument="port",
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidInput(
                    f"{host} ({', '.join(sorted(addresses))}) is not an address of this machine; "
                    "bind 127.0.0.1, 0.0.0.0 or one of this machine's addresses (--host or MLOPS_HTTP_HOST)",
                    argument="host",
                ) from None
            reason = exc.strerror or str(exc)
            raise InvalidInput(f"cannot listen on {host}:{port}: {reason}", argument="host") from None


class GuardMiddleware:
    """Host/Origin check (421/403) then bearer token (401) for every HTTP and websocket request,
    except the bare probes (``PROBE_PATHS``), which carry no data."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.token = settings.auth_token.get_secret_value().encode() if settings.auth_token else None
        self.hosts = {h.lower() for h in allowed_hosts(settings)}
        self.any_host = "*" in self.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        if kind == "http" and scope["path"] in PROBE_PATHS and scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[1][:120]})
        else:
            status, text, extra = refusal
            await _plain(status, text, send, extra=extra)

    def refusal(self, headers: Headers) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        host = headers.get("host", "")
        if not self.any_host and _hostname(host) not in self.hosts:
            return 421, f"Invalid Host header: {host!r}", []
        origin = headers.get("origin")
        if origin and not self.any_host and _hostname(origin.split("://", 1)[-1]) not in self.hosts:
            return 403, f"Invalid Origin header: {origin!r}", []
        denied = bearer_refusal(headers, self.token)
        if denied is not None:
            return 401, denied, [WWW_AUTHENTICATE]
        return None


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _plain(status: int, text: str, send: Send, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": text}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


class Readiness:
    """Store reachability for the open readiness probe: one ping at a time, reused for a second, so
    that unauthenticated probes cannot load the store."""

    def __init__(self, ping: Any) -> None:
        self.ping = ping
        self.lock = anyio.Lock()
        self.checked_at = -float("inf")
        self.reachable = False

    async def __call__(self) -> bool:
        async with self.lock:
            if time.monotonic() - self.checked_at > READY_CACHE_SECONDS:
                self.reachable = await anyio.to_thread.run_sync(self.ping)
                self.checked_at = time.monotonic()
            return self.reachable


def add_routes(mcp: MCPServer) -> None:
    """Plain HTTP routes beside /mcp (they share the guard and the engine)."""
    ops = mcp.ops  # type: ignore[attr-defined]
    settings: Settings = ops.settings

    def store_reachable() -> bool:
        # ops.store is built (and migrated) on first use: a store that is down at start-up raises here.
        try:
            return bool(ops.store.ping())
        except Exception as exc:
            log.warning("store unreachable: %s", exc)
            return False

    readiness = Readiness(store_reachable)

    @mcp.custom_route("/health/live", methods=["GET"])
    async def live(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @mcp.custom_route("/health/ready", methods=["GET"])
    async def ready(request: Request) -> Response:
        if await readiness():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    @mcp.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> Response:
        reachable = await anyio.to_thread.run_sync(store_reachable)
        body: dict[str, Any] = {
            "status": "ok" if reachable else "degraded",
            "version": __version__,
            "store_reachable": reachable,
            "read_only": settings.read_only,
            "read_only_predict": settings.read_only_predict,
        }
        return JSONResponse(body, status_code=200 if reachable else 503)

    @mcp.custom_route("/metrics", methods=["GET"])
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, derived from the store (see ``server/metrics.py``)."""
        from mlops_mcp.server.metrics import metrics_response

        return await metrics_response(ops)

    @mcp.custom_route("/v1/models/{name}/predict", methods=["POST"])
    async def predict(request: Request) -> Response:
        """REST prediction for applications: the same core path, log and auth as the `predict` tool.

        Body: {"rows": [{...}, ...], "request_keys": [...]?, "alias": "challenger"? | "version": 3?}, or
        {"entity_keys": [...], "missing": "impute" | "refuse"} for a version trained on a training set.
        """
        return await predict_response(ops, request.path_params["name"], request)


def build_http_app(mcp: MCPServer, settings: Settings) -> ASGIApp:
    check_bind(settings)
    add_routes(mcp)
    hosts = allowed_hosts(settings)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection="*" not in hosts,
        allowed_hosts=[f"{h}:*" for h in hosts] + hosts,
        allowed_origins=[f"{scheme}://{h}:*" for h in hosts for scheme in ("http", "https")]
        + [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")],
    )
    app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=security,
        host=settings.http_host,
        max_request_body_size=settings.max_request_bytes,
    )
    return GuardMiddleware(app, settings)


def serve_http(mcp: MCPServer, settings: Settings) -> None:
    import uvicorn

    app = build_http_app(mcp, settings)
    log.info("mlops-mcp %s on http://%s:%d/mcp", __version__, settings.http_host, settings.http_port)
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower())
