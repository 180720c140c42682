"""Streamable HTTP: the MCP endpoint at ``/mcp``, ``GET /health``, guarded by Host/Origin checks
(DNS-rebinding protection) and, when ``MLOPS_AUTH_TOKEN`` is set, a bearer token on every request.

Binding anywhere but loopback without a token is refused: an MCP server that can retrain and
promote models must not be open to a network by accident.
"""

import functools
import hmac
import json
import logging
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
from mlops_mcp.core.errors import Forbidden

log = logging.getLogger("mlops_mcp.http")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(settings: Settings) -> list[str]:
    """Host header values accepted: loopback names, the bound host, and MLOPS_ALLOWED_HOSTS."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    bind = settings.http_host
    if bind not in LOOPBACK and bind not in ("0.0.0.0", "::"):
        hosts.append(f"[{bind}]" if ":" in bind else bind)
    hosts.extend(settings.allowed_hosts)
    return hosts


def check_bind(settings: Settings) -> None:
    if settings.http_host not in LOOPBACK and settings.auth_token is None:
        raise Forbidden(
            f"refusing to listen on {settings.http_host} without a token: set MLOPS_AUTH_TOKEN "
            "(clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1",
            argument="host",
        )


class GuardMiddleware:
    """Host/Origin check (421/403) then bearer token (401) for every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.token = settings.auth_token.get_secret_value().encode() if settings.auth_token else None
        self.hosts = {h.lower() for h in allowed_hosts(settings)}
        self.any_host = "*" in self.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.any_host and _hostname(host) not in self.hosts:
            await _plain(421, f"Invalid Host header: {host!r}", send)
            return
        origin = headers.get("origin")
        if origin and not self.any_host and _hostname(origin.split("://", 1)[-1]) not in self.hosts:
            await _plain(403, f"Invalid Origin header: {origin!r}", send)
            return
        if self.token is not None:
            auth = headers.get("authorization", "")
            given = auth[7:].strip().encode() if auth[:7].lower() == "bearer " else b""
            if not given or not hmac.compare_digest(given, self.token):
                await _plain(
                    401,
                    "Unauthorized: send 'Authorization: Bearer <MLOPS_AUTH_TOKEN>'",
                    send,
                    extra=[(b"www-authenticate", b'Bearer realm="mlops-mcp"')],
                )
                return
        await self.app(scope, receive, send)


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


def add_routes(mcp: MCPServer) -> None:
    """Plain HTTP routes beside /mcp (they share the guard and the engine)."""
    ops = mcp.ops  # type: ignore[attr-defined]

    @mcp.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> Response:
        reachable = await anyio.to_thread.run_sync(ops.store.ping)
        body: dict[str, Any] = {
            "status": "ok" if reachable else "degraded",
            "version": __version__,
            "store_reachable": reachable,
            "read_only": ops.settings.read_only,
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

        Body: {"rows": [{...}, ...], "request_keys": [...]?, "alias": "challenger"? | "version": 3?}.
        """
        from mlops_mcp.core.errors import MLOpsError

        name = request.path_params["name"]
        try:
            body = await request.json()
        except Exception:
            return JSONResponse({"error": "body must be JSON: {\"rows\": [{...}]}"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object with 'rows'"}, status_code=400)
        ref = name
        if body.get("version") is not None:
            ref = f"{name}/{body['version']}"
        elif body.get("alias"):
            ref = f"{name}@{body['alias']}"
        try:
            batch = await anyio.to_thread.run_sync(
                functools.partial(ops.predict_batch, ref, body.get("rows"), body.get("request_keys"))
            )
        except MLOpsError as exc:
            status = {"not_found": 404, "forbidden": 403, "conflict": 409}.get(exc.kind, 422)
            return JSONResponse({"error": str(exc), "kind": exc.kind}, status_code=status)
        except Exception:
            log.exception("REST predict failed for %s", ref)
            return JSONResponse({"error": "internal error; see the server log"}, status_code=500)
        return JSONResponse(
            {"model": batch.requested, "latency_ms": round(batch.latency_ms, 3), "predictions": batch.rows}
        )


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
    app = mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=security, host=settings.http_host)
    return GuardMiddleware(app, settings)


def serve_http(mcp: MCPServer, settings: Settings) -> None:
    import uvicorn

    app = build_http_app(mcp, settings)
    log.info("mlops-mcp %s on http://%s:%d/mcp", __version__, settings.http_host, settings.http_port)
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower())
