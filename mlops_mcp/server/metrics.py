"""``GET /metrics`` (on the HTTP server) and ``mlops-mcp exporter`` (for stdio-only setups): the
Prometheus exposition of the engine's store. Both answer 503 with the reason when the store cannot
be read; the process keeps running and the next scrape tries again."""

import logging
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp

from mlops_mcp import __version__
from mlops_mcp.core.config import Settings
from mlops_mcp.core.engine import MLOps

log = logging.getLogger("mlops_mcp.metrics")

#: the classic text format (what prometheus_client renders; every Prometheus reads it)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_EXPORTER_PORT = 9464


async def metrics_response(ops: MLOps) -> Response:
    from mlops_mcp.core.monitoring.exposition import StoreUnavailable

    try:
        body = await anyio.to_thread.run_sync(ops.metrics_text)
    except StoreUnavailable as exc:
        log.warning("/metrics: %s", exc)
        return PlainTextResponse(f"store unreachable: {exc}\n", status_code=503)
    return Response(body, media_type=CONTENT_TYPE)


def build_exporter_app(ops: MLOps, settings: Settings) -> ASGIApp:
    """``/metrics`` alone, behind the same Host/Origin and bearer-token guard as the HTTP server."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from mlops_mcp.server.http import GuardMiddleware, check_bind

    check_bind(settings)

    async def metrics(request: Request) -> Response:
        return await metrics_response(ops)

    async def index(request: Request) -> Response:
        return PlainTextResponse(f"mlops-mcp {__version__} exporter: metrics at /metrics\n")

    app = Starlette(routes=[Route("/metrics", metrics, methods=["GET"]), Route("/", index, methods=["GET"])])
    return GuardMiddleware(app, settings)


def serve_exporter(settings: Settings) -> None:
    import uvicorn

    ops = MLOps(settings)
    app: Any = build_exporter_app(ops, settings)
    log.info("mlops-mcp %s exporter on http://%s:%d/metrics", __version__, settings.http_host, settings.http_port)
    try:
        uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower())
    finally:
        ops.close()
