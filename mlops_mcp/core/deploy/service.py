"""Deploying models on Ray Serve: one Serve application per model, named ``mlops-<model>``, routed
at ``/v1/models/<model>`` on Ray's HTTP proxy.

Checks come before Ray is touched: the model exists and has a champion; more than one replica
needs a store several processes can write (PostgreSQL); the ``serve`` extra is installed. A dry run
(``plan``) never starts Ray. Ray's own state is the record of what is deployed (no table of ours to
fall out of step with it): the scaling shown is the one Serve runs.
"""

import logging
import math
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.deploy import cluster
from mlops_mcp.core.deploy.config import ScalingSpec
from mlops_mcp.core.deploy.results import (
    DeploymentInfo,
    DeploymentList,
    DeployResult,
    TrafficStats,
    UndeployResult,
)
from mlops_mcp.core.errors import Forbidden, InvalidInput, NotFound, Unavailable, listing

if TYPE_CHECKING:
    from mlops_mcp.core.engine import MLOps

log = logging.getLogger(__name__)

PREFIX = "mlops-"
#: serve.run waits for the replicas to be healthy; past this we answer "still deploying" instead of hanging
DEPLOY_TIMEOUT_S = 180.0
TRAFFIC_WINDOW_S = 60.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def app_name(model: str) -> str:
    return f"{PREFIX}{model}"


def route(model: str) -> str:
    return f"/v1/models/{model}"


class Deployments:
    """What ``MLOps.deploy_model`` and friends delegate to."""

    def __init__(self, ops: "MLOps") -> None:
        self.ops = ops
        self._lock = threading.Lock()

    # -- checks ------------------------------------------------------------------------------
    def check(self, model: str, spec: ScalingSpec) -> int:
        """Everything that can be refused without Ray; returns the champion's version."""
        from mlops_mcp.core.models.refs import check_name
        from mlops_mcp.core.models.registry import ModelRef

        check_name(model)
        champion = self.ops.registry.resolve(ModelRef.parse(model))  # NotFound: unknown model / no champion
        if spec.max_replicas > 1 and self.ops.store.is_sqlite:
            raise InvalidInput(
                f"max_replicas={spec.max_replicas} needs a store that several processes can write, and this server's "
                "store is SQLite (one writer at a time, one machine): set MLOPS_DATABASE_URL=postgresql://... for the "
                "server and its replicas, or deploy with max_replicas=1",
                argument="max_replicas",
            )
        settings = self.ops.settings
        if settings.ray_serve_host not in LOOPBACK and settings.auth_token is None:
            raise Forbidden(
                f"refusing to serve predictions on {settings.ray_serve_host} without a token: set MLOPS_AUTH_TOKEN "
                "(replicas then require 'Authorization: Bearer <token>'), or keep MLOPS_RAY_SERVE_HOST=127.0.0.1",
                argument="ray_serve_host",
            )
        cluster.require_ray()
        return int(champion.version)

    def _connected(self, start: bool) -> str | None:
        """The Ray address once connected; None when no cluster runs and ``start`` is false."""
        cluster.require_ray()
        import ray

        if not start and not ray.is_initialized() and not os.environ.get("RAY_ADDRESS") and cluster.read_head(self.ops.settings) is None:
            return None
        return cluster.connect(self.ops.settings)

    # -- deploy --------------------------------------------------------------------------------
    def plan(self, model: str, spec: ScalingSpec) -> DeployResult:
        """What ``deploy`` would do, changing nothing (and starting nothing)."""
        champion = self.check(model, spec)
        address = self._connected(start=False)
        current = self._current(model) if address else None
        if current is None:
            where = f"on the Ray cluster at {address}" if address else "on a new local Ray head (127.0.0.1)"
            text = f"Would deploy '{model}' (champion: version {champion}) {where} with {_scaling_text(spec)}."
            return DeployResult(model=model, action="dry_run", confirmed=False, planned=spec, message=text)
        if current.scaling == spec:
            return DeployResult(
                model=model, action="unchanged", confirmed=False, deployment=current,
                message=f"'{model}' is already deployed with exactly this scaling; nothing to change.",
            )
        return DeployResult(
            model=model, action="dry_run", confirmed=False, previous=current.scaling, planned=spec, deployment=current,
            message=f"Would update '{model}' from {_scaling_text(current.scaling)} to {_scaling_text(spec)}.",
        )

    def deploy(self, model: str, spec: ScalingSpec) -> DeployResult:
        """Deploy, or update the scaling of, ``model``'s Serve application; returns once it runs."""
        champion = self.check(model, spec)
        with self._lock:
            address = self._connected(start=True)
            assert address is not None
            self._check_capacity(spec)
            current = self._current(model)
            if current is not None and current.scaling == spec and current.status == "RUNNING":
                return DeployResult(
                    model=model, action="unchanged", confirmed=True, deployment=current,
                    message=f"'{model}' is already deployed with exactly this scaling; nothing changed.",
                )
            self._run(model, spec)
            info = self.get(model)
        if current is None:
            text = f"Deployed '{model}' (champion: version {champion}) on Ray Serve with {_scaling_text(spec)}: POST {info.url}."
            return DeployResult(model=model, action="deployed", confirmed=True, deployment=info, message=text)
        text = (
            f"Updated the deployment of '{model}': {_scaling_text(current.scaling)} -> {_scaling_text(spec)} "
            f"(it was already deployed; Serve replaced its replicas one at a time, a rolling update). POST {info.url}."
        )
        return DeployResult(model=model, action="updated", confirmed=True, previous=current.scaling, deployment=info, message=text)

    def _check_capacity(self, spec: ScalingSpec) -> None:
        """On a local head, refuse what can never be scheduled (Serve would wait for it forever)."""
        import ray

        if os.environ.get("RAY_ADDRESS"):
            return  # a cluster may add nodes (KubeRay's autoscaler): let Ray decide
        cpus = float(ray.cluster_resources().get("CPU", 0))
        need = spec.min_replicas * spec.cpus_per_replica
        if need > cpus:
            raise InvalidInput(
                f"min_replicas x cpus_per_replica = {need:g} CPUs, but the local Ray head has {cpus:g}; lower "
                "cpus_per_replica (fractions such as 0.5 are fine) or min_replicas, or use a cluster (RAY_ADDRESS)",
                argument="cpus_per_replica",
            )

    def _run(self, model: str, spec: ScalingSpec) -> None:
        from ray import serve

        from mlops_mcp.core.deploy import app

        settings = self.ops.settings
        serve.start(http_options={"host": settings.ray_serve_host, "port": settings.ray_serve_port})
        application = app.build(model, replica_settings(settings), spec.deployment_options())
        failure: list[BaseException] = []

        def run() -> None:
            try:
                serve.run(application, name=app_name(model), route_prefix=route(model), blocking=False)
            except BaseException as exc:  # reported below
                failure.append(exc)

        worker = threading.Thread(target=run, name=f"serve-run-{model}", daemon=True)
        worker.start()
        worker.join(DEPLOY_TIMEOUT_S)
        if worker.is_alive():
            raise Unavailable(
                f"'{model}' is still deploying after {DEPLOY_TIMEOUT_S:g} s (replicas not healthy yet: not enough "
                "CPUs, or the model loads slowly); check get_deployment, or undeploy_model to give up"
            )
        if failure:
            reason = str(failure[0]).strip().splitlines()
            raise Unavailable(
                f"Ray Serve could not deploy '{model}': {' '.join(reason[-3:])[:1500]}; the replicas' logs are in "
                "Ray's session folder (/tmp/ray/session_latest/logs/serve)"
            ) from None

    # -- read ----------------------------------------------------------------------------------
    def get(self, model: str) -> DeploymentInfo:
        from mlops_mcp.core.models.refs import check_name

        check_name(model)
        if self._connected(start=False) is None:
            raise NotFound(f"'{model}' is not deployed (no Ray cluster is running); deploy it with deploy_model", argument="model")
        info = self._current(model, traffic=True)
        if info is None:
            names = [d.model for d in self._all()]
            raise NotFound(
                f"'{model}' is not deployed on Ray Serve; deployed: {listing(names)}. Deploy it with deploy_model",
                argument="model",
            )
        return info

    def summary(self) -> DeploymentList:
        address = self._connected(start=False)
        if address is None:
            return DeploymentList(ray_address=None, deployments=[])
        return DeploymentList(ray_address=address, deployments=self._all())

    def _details(self) -> dict[str, Any]:
        from ray.serve.context import _get_global_client

        client = _get_global_client(raise_if_no_controller_running=False)
        if client is None:
            return {}
        return dict(client.get_serve_details())

    def _all(self) -> list[DeploymentInfo]:
        details = self._details()
        out = []
        for name in sorted(details.get("applications") or {}):
            if name.startswith(PREFIX):
                info = self._info(name[len(PREFIX):], details)
                if info is not None:
                    out.append(info)
        return out

    def _current(self, model: str, traffic: bool = False) -> DeploymentInfo | None:
        return self._info(model, self._details(), traffic=traffic)

    def _info(self, model: str, details: dict[str, Any], traffic: bool = False) -> DeploymentInfo | None:
        application = (details.get("applications") or {}).get(app_name(model))
        if application is None:
            return None
        from mlops_mcp.core.deploy.app import DEPLOYMENT

        deployment = (application.get("deployments") or {}).get(DEPLOYMENT) or {}
        config = deployment.get("deployment_config") or {}
        scaling = _spec_from_config(config)
        replicas = deployment.get("replicas") or []
        running = sum(1 for r in replicas if str(r.get("state")) in ("RUNNING", "ReplicaState.RUNNING"))
        http = details.get("http_options") or {}
        host = http.get("host") or self.ops.settings.ray_serve_host
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{host}:{http.get('port') or self.ops.settings.ray_serve_port}{route(model)}/predict"
        status = str(application.get("status") or "UNKNOWN").rsplit(".", 1)[-1]
        message = str(application.get("message") or deployment.get("message") or "")[:500]
        try:
            champion = self.ops.registry.aliases(model).get("champion")
        except NotFound:
            champion, message = None, (message + " The model no longer exists in the registry.").strip()
        return DeploymentInfo(
            model=model,
            application=app_name(model),
            status=status,
            url=url,
            replicas_running=running,
            replicas_target=deployment.get("target_num_replicas"),
            scaling=scaling,
            champion_version=champion,
            traffic=self.traffic(model) if traffic else None,
            ray_address=cluster.connect(self.ops.settings),
            message=message,
        )

    def traffic(self, model: str, window_s: float = TRAFFIC_WINDOW_S) -> TrafficStats:
        """Requests/s and latency percentiles over the last ``window_s`` seconds, from the log."""
        from sqlalchemy import select

        from mlops_mcp.core.store.tables import Prediction

        since = datetime.now(UTC) - timedelta(seconds=window_s)
        with self.ops.store.read() as session:
            rows = session.execute(
                select(Prediction.latency_ms, Prediction.batch_size)
                .where(Prediction.model == model, Prediction.created_at >= since)
                .limit(200_000)
            ).all()
        requests = sum(1.0 / max(1, b) for _, b in rows)
        latencies = sorted(lat for lat, _ in rows)
        return TrafficStats(
            window_s=window_s,
            requests=round(requests),
            predictions=len(rows),
            requests_per_s=round(requests / window_s, 3),
            latency_p50_ms=_pct(latencies, 0.50),
            latency_p99_ms=_pct(latencies, 0.99),
        )

    # -- undeploy ------------------------------------------------------------------------------
    def plan_undeploy(self, model: str) -> UndeployResult:
        info = self.get(model)
        return UndeployResult(
            model=model, undeployed=False, confirmed=False,
            message=f"Would undeploy '{model}' ({info.replicas_running} replica(s) running; {info.url} stops answering).",
        )

    def undeploy(self, model: str) -> UndeployResult:
        from ray import serve

        with self._lock:
            info = self.get(model)  # NotFound when it is not deployed
            serve.delete(app_name(model))
            left = self._all()
            stopped = False
            if not left:
                stopped = cluster.stop_local_head(self.ops.settings)
        text = f"Undeployed '{model}' ({info.replicas_running} replica(s) stopped)."
        if stopped:
            text += " It was the last deployment: the local Ray head was stopped too."
        return UndeployResult(model=model, undeployed=True, confirmed=True, ray_stopped=stopped, message=text)

    def undeploy_all(self) -> list[str]:
        """Every ``mlops-*`` application deleted, then the local head stopped (the CLI's ``--all``)."""
        names: list[str] = []
        if self._connected(start=False) is not None:
            from ray import serve

            for info in self._all():
                serve.delete(info.application)
                names.append(info.model)
        cluster.stop_local_head(self.ops.settings)
        return names


def replica_settings(settings: Any) -> dict[str, Any]:
    """The server's settings as plain values for the replicas (each builds its own engine from them)."""
    values = settings.model_dump()
    token = settings.auth_token
    values["auth_token"] = token.get_secret_value() if token is not None else None
    values["retraining_worker"] = "off"  # replicas serve; they never run retraining jobs
    return values


def _spec_from_config(config: dict[str, Any]) -> ScalingSpec:
    auto = config.get("autoscaling_config") or {}
    actor = config.get("ray_actor_options") or {}
    num = config.get("num_replicas")
    return ScalingSpec.model_construct(
        min_replicas=int(auto.get("min_replicas", num or 1)),
        max_replicas=int(auto.get("max_replicas", num or 1)),
        target_ongoing_requests=float(auto.get("target_ongoing_requests", 2.0)),
        upscale_delay_s=float(auto.get("upscale_delay_s", 30.0)),
        downscale_delay_s=float(auto.get("downscale_delay_s", 600.0)),
        max_ongoing_requests=int(config.get("max_ongoing_requests", 5)),
        cpus_per_replica=float(actor.get("num_cpus", 1.0)),
    )


def _scaling_text(spec: ScalingSpec) -> str:
    return (
        f"{spec.min_replicas}-{spec.max_replicas} replicas (target {spec.target_ongoing_requests:g} ongoing requests each, "
        f"up after {spec.upscale_delay_s:g} s, down after {spec.downscale_delay_s:g} s, at most "
        f"{spec.max_ongoing_requests} at once, {spec.cpus_per_replica:g} CPU each)"
    )


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, math.ceil(q * len(values)) - 1)], 3)

