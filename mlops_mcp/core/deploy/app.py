"""The Ray Serve application of one model: an HTTP ingress answering
``POST /v1/models/{name}/predict`` exactly as the built-in route does.

Each replica builds its own :class:`~mlops_mcp.core.engine.MLOps` from the server's settings and
answers through :func:`mlops_mcp.core.serving.rest.predict_response`, i.e. through the existing
Predictor: the champion alias is resolved in the registry at most ``alias_cache_seconds`` (1 s)
before a request (a promotion or a rollback reaches every replica within that, with no restart), the A/B router
assigns by request key with the same hash on every replica, shadows score off the request path, and
every row is written to the shared prediction log before the answer leaves. Models are loaded only
through the registry, under the same trust rules.

This module imports Ray at the top: only :mod:`mlops_mcp.core.deploy.service` imports it, after
checking that the ``serve`` extra is installed.
"""

import logging
import os
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

DEPLOYMENT = "predictor"


@serve.deployment(name=DEPLOYMENT)
class ModelServer:
    """One replica: an engine of its own on the shared store and registry."""

    def __init__(self, model: str, settings: dict[str, Any] | None) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlops_mcp.core.config import Settings
        from mlops_mcp.core.engine import MLOps
        from mlops_mcp.core.models.registry import ModelRef

        self.model = model
        # settings: the deploying server's (deploy_model); None: from MLOPS_* variables (KubeRay)
        self.ops = MLOps(Settings(**settings, _env_file=None) if settings is not None else Settings())  # type: ignore[call-arg]
        token = self.ops.settings.auth_token
        self.token = token.get_secret_value().encode() if token is not None else None
        # Warm up before taking traffic: the store migrated, MLflow imported, the champion loaded.
        registry = self.ops.registry
        registry.load(registry.resolve(ModelRef.parse(model)))

    async def __call__(self, request: Request) -> Response:
        from mlops_mcp.core.serving.rest import WWW_AUTHENTICATE, bearer_refusal, predict_response

        denied = bearer_refusal(request.headers, self.token)
        if denied is not None:
            name, value = WWW_AUTHENTICATE
            return JSONResponse({"error": denied}, status_code=401, headers={name.decode(): value.decode()})
        if request.method != "POST" or not request.url.path.rstrip("/").endswith("/predict"):
            return JSONResponse(
                {"error": f"not found: POST /v1/models/{self.model}/predict is the only route here"}, status_code=404
            )
        return await predict_response(self.ops, self.model, request)

    def __del__(self) -> None:
        ops = getattr(self, "ops", None)
        if ops is not None:
            try:
                ops.close()  # flushes queued shadow scoring, closes the store's connections
            except Exception:
                log.exception("closing the replica's engine failed")


def build(model: str, settings: dict[str, Any], options: dict[str, Any]) -> Any:
    """The bound application: ``serve.run(build(...), name=..., route_prefix=...)``."""
    return ModelServer.options(**options).bind(model, settings)  # type: ignore[attr-defined]


def app_builder(args: dict[str, Any]) -> Any:
    """Serve's application builder for config files and KubeRay (``import_path:
    mlops_mcp.core.deploy.app:app_builder``, ``args: {model: ...}``). The replicas read their
    settings from ``MLOPS_*`` variables (the RayService manifest passes them from a Secret), so no
    secret is written in the manifest. Scaling comes from the config's ``deployments`` section."""
    model = str(args["model"])
    return ModelServer.bind(model, None)  # type: ignore[attr-defined]
