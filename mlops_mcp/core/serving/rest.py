"""The REST prediction contract, ``POST /v1/models/{name}/predict``, in one place.

Two servers answer it: the built-in route of ``mlops-mcp serve --http`` (``server/http.py``) and
every replica of a Ray Serve deployment (``core/deploy/app.py``). Both call :func:`predict_response`
and :func:`bearer_refusal` from here, so the JSON they accept, the answers and status codes they
give, and the token rule cannot drift apart. Starlette only: no MCP import (core stays usable
without the MCP layer, and Ray replicas do not load it).
"""

import functools
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from starlette.datastructures import Headers

    from mlops_mcp.core.engine import MLOps

log = logging.getLogger("mlops_mcp.rest")

UNAUTHORIZED = "Unauthorized: send 'Authorization: Bearer <MLOPS_AUTH_TOKEN>'"
WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="mlops-mcp"')


class BodyTooLarge(Exception):
    pass


def bearer_refusal(headers: "Headers", token: bytes | None) -> str | None:
    """Why a request is refused by the token rule (None: let it through). With no token configured
    every request passes; otherwise ``Authorization: Bearer <token>`` must match, compared in
    constant time."""
    if token is None:
        return None
    auth = headers.get("authorization", "")
    given = auth[7:].strip().encode() if auth[:7].lower() == "bearer " else b""
    if not given or not hmac.compare_digest(given, token):
        return UNAUTHORIZED
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (``BodyTooLarge``) as soon as it is known to exceed ``limit``: from
    Content-Length before reading anything, else by counting the streamed (chunked) bytes. ``ValueError``
    for a Content-Length that is not a number."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ValueError(f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise BodyTooLarge
        body.extend(chunk)
    return bytes(body)


async def predict_response(ops: "MLOps", name: str, request: Request) -> Response:
    """Answer one REST prediction request for model ``name`` through ``ops`` (the same core path,
    log, A/B split and shadow as the `predict` tool).

    Body: {"rows": [{...}, ...], "request_keys": [...]?, "alias": "challenger"? | "version": 3?}, or
    {"entity_keys": [...], "missing": "impute" | "refuse"} for a version trained on a training set.
    """
    from mlops_mcp.core.errors import MLOpsError

    settings = ops.settings
    if settings.read_only and not settings.read_only_predict:
        # Each prediction is written to the prediction log: read-only mode refuses it unless told.
        return JSONResponse(
            {
                "error": "the server runs in read-only mode, which refuses predictions (each one is "
                "written to the prediction log); the operator can allow them with "
                "MLOPS_READ_ONLY_PREDICT=true",
                "kind": "forbidden",
            },
            status_code=403,
        )
    try:
        raw = await read_body(request, settings.max_request_bytes)
    except BodyTooLarge:
        return JSONResponse(
            {
                "error": f"request body too large: the limit is {settings.max_request_bytes} bytes "
                "(MLOPS_MAX_REQUEST_BYTES); send fewer rows per request",
                "kind": "too_large",
            },
            status_code=413,
        )
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    try:
        body = json.loads(raw)
    except ValueError:
        return JSONResponse({"error": "body must be JSON: {\"rows\": [{...}]}"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "body must be a JSON object with 'rows'"}, status_code=400)
    ref = name
    if body.get("version") is not None:
        ref = f"{name}/{body['version']}"
    elif body.get("alias"):
        ref = f"{name}@{body['alias']}"
    keyed = body.get("entity_keys") is not None  # serving by key from the feature store
    features = None
    try:
        if keyed:
            batch, features = await anyio.to_thread.run_sync(
                functools.partial(ops.predict_by_keys_batch, ref, body["entity_keys"], body.get("missing", "impute"), body.get("rows"))
            )
        else:
            batch = await anyio.to_thread.run_sync(
                functools.partial(ops.predict_batch, ref, body.get("rows"), body.get("request_keys"))
            )
    except MLOpsError as exc:
        status = {"not_found": 404, "forbidden": 403, "conflict": 409}.get(exc.kind, 422)
        return JSONResponse({"error": str(exc), "kind": exc.kind}, status_code=status)
    except Exception:
        log.exception("REST predict failed for %s", ref)
        return JSONResponse({"error": "internal error; see the server log"}, status_code=500)
    answer: dict[str, Any] = {
        "model": batch.requested, "latency_ms": round(batch.latency_ms, 3), "predictions": batch.rows, "warnings": batch.warnings,
    }
    if features is not None:
        answer["features"] = features.model_dump(mode="json")
    return JSONResponse(answer)
