"""A KubeRay ``RayService`` manifest for a model, with the same scaling as ``deploy_model``.

The manifest is a starting point for Kubernetes users, written from the same :class:`ScalingSpec`:
Serve's ``autoscaling_config`` for the replicas, and a worker group whose size range covers
``max_replicas x cpus_per_replica`` so that KubeRay's in-tree autoscaler can add the pods the Serve
autoscaler asks for. Settings reach the replicas as ``MLOPS_*`` variables from a Secret (the store
must be PostgreSQL and the registry an MLflow tracking server every pod can reach); no secret is
written into the manifest.
"""

import math
from typing import Any

from mlops_mcp.core.deploy.config import ScalingSpec
from mlops_mcp.core.deploy.service import app_name, route

SECRET = "mlops-mcp"
#: the Secret's keys, passed to every Ray container as environment variables
SECRET_KEYS = ("MLOPS_DATABASE_URL", "MLOPS_TRACKING_URI", "MLOPS_AUTH_TOKEN")
CPUS_PER_WORKER = 2
#: rayVersion when Ray is not installed where the manifest is written (the serve extra's lower bound)
DEFAULT_RAY_VERSION = "2.60.0"


def manifest(model: str, spec: ScalingSpec, image: str, ray_version: str) -> dict[str, Any]:
    """The RayService as a dict (``to_yaml`` renders it)."""
    import yaml

    name = app_name(model).lower().replace("_", "-").replace(".", "-")[:63].rstrip("-")
    options = spec.deployment_options()
    serve_config = {
        "http_options": {"host": "0.0.0.0", "port": 8000},
        "applications": [
            {
                "name": app_name(model),
                "route_prefix": route(model),
                "import_path": "mlops_mcp.core.deploy.app:app_builder",
                "args": {"model": model},
                "runtime_env": {"env_vars": {"MLFLOW_DISABLE_TELEMETRY": "true", "MLOPS_RETRAINING_WORKER": "off"}},
                "deployments": [
                    {
                        "name": "predictor",
                        "max_ongoing_requests": options["max_ongoing_requests"],
                        "autoscaling_config": options["autoscaling_config"],
                        "ray_actor_options": options["ray_actor_options"],
                    }
                ],
            }
        ],
    }
    env = [{"name": key, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key, "optional": key == "MLOPS_AUTH_TOKEN"}}}
           for key in SECRET_KEYS]
    env.append({"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"})
    resources = {"requests": {"cpu": str(CPUS_PER_WORKER), "memory": "4Gi"}, "limits": {"cpu": str(CPUS_PER_WORKER), "memory": "4Gi"}}
    workers = max(1, math.ceil(spec.max_replicas * spec.cpus_per_replica / CPUS_PER_WORKER))
    min_workers = min(workers, math.ceil(spec.min_replicas * spec.cpus_per_replica / CPUS_PER_WORKER))

    def container(role: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": role, "image": image, "env": env, "resources": resources}
        if ports:
            out["ports"] = ports
        return out

    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "mlops-mcp", "mlops-mcp/model": name}},
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config, sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": ray_version,
                "enableInTreeAutoscaling": True,
                "headGroupSpec": {
                    # the head runs the Serve controller and proxy, not replicas
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {"spec": {"containers": [container("ray-head", [
                        {"containerPort": 6379, "name": "gcs-server"},
                        {"containerPort": 8265, "name": "dashboard"},
                        {"containerPort": 8000, "name": "serve"},
                    ])]}},
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "replicas",
                        "replicas": max(1, min_workers),
                        "minReplicas": min_workers,
                        "maxReplicas": workers,
                        "rayStartParams": {},
                        "template": {"spec": {"containers": [container("ray-worker", [])]}},
                    }
                ],
            },
        },
    }


def to_yaml(document: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False)
