"""The resources, declared as data: URI (template), name, title, description and a function of the
engine (and the URI's variables) returning a typed result, served as JSON.

Static resources cannot take a request context in the SDK, so each is bound to the engine when
the server is built. A read that meets a domain error (unknown model, ...) answers as
"resource not found" carrying the engine's message.
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mlops_mcp.core.engine import MLOps
from mlops_mcp.core.errors import MLOpsError
from mlops_mcp.core.limits import MAX_ID
from mlops_mcp.core.results import Result

AUDIT_LIMIT = 50
EXPERIMENTS_LIMIT = 100
PERFORMANCE_BUCKETS = 14
RETRAINING_LIMIT = 50


def _number(text: str, what: str) -> int:
    """A URI variable that must be an id or version number, bounded (no overflow further down)."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise ResourceNotFoundError(f"{what} must be a number from 1 to {MAX_ID}; got '{text[:40]}'")
    return int(text)


def models(ops: MLOps) -> Result:
    return ops.list_models()


def model(ops: MLOps, name: str) -> Result:
    return ops.get_model(name)


def model_version(ops: MLOps, name: str, version: str) -> Result:
    return ops.get_version(name, _number(version, "version"))


def model_performance(ops: MLOps, name: str) -> Result:
    return ops.performance(name, window="1d", max_buckets=PERFORMANCE_BUCKETS)


def latest_drift(ops: MLOps, name: str) -> Result:
    return ops.latest_drift(name)


def experiments(ops: MLOps) -> Result:
    return ops.list_experiments(limit=EXPERIMENTS_LIMIT)


def experiment(ops: MLOps, experiment_id: str) -> Result:
    return ops.experiment(_number(experiment_id, "experiment id"))


def retraining_jobs(ops: MLOps) -> Result:
    return ops.list_retraining_jobs(limit=RETRAINING_LIMIT)


def model_retraining(ops: MLOps, name: str) -> Result:
    return ops.model_retraining(name)


def feature_views(ops: MLOps) -> Result:
    return ops.list_feature_views()


def feature_view(ops: MLOps, view: str) -> Result:
    return ops.get_feature_view(view)


def audit_log(ops: MLOps) -> Result:
    return ops.audit_log(limit=AUDIT_LIMIT)


@dataclass(frozen=True)
class ResourceSpec:
    uri: str
    fn: Callable[..., Result]
    title: str
    description: str

    @property
    def name(self) -> str:
        return self.fn.__name__


RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec("mlops://models", models, "Registered models", "Every registered model with its version count, latest version and aliases."),
    ResourceSpec("mlops://models/{name}", model, "A registered model", "One model: aliases and versions (newest first) with metrics, tags and reference profile."),
    ResourceSpec(
        "mlops://models/{name}/versions/{version}", model_version, "A model version",
        "One version: metrics, aliases, source run, reference profile and input schema (the columns predict expects).",
    ),
    ResourceSpec(
        "mlops://models/{name}/performance", model_performance, "Model performance",
        "Live performance from logged predictions and their feedback labels: overall figures, the training baseline, "
        f"the degraded flag with reasons, and the last {PERFORMANCE_BUCKETS} daily (UTC) buckets. Other windows: get_model_performance.",
    ),
    ResourceSpec("mlops://drift/{name}/latest", latest_drift, "Latest drift report of a model", "The newest check_drift report of model {name}, in full."),
    ResourceSpec(
        "mlops://experiments", experiments, "Experiments",
        f"The {EXPERIMENTS_LIMIT} most recent live A/B tests and shadow deployments, newest first, with their configuration and state.",
    ),
    ResourceSpec(
        "mlops://experiments/{experiment_id}", experiment, "Experiment",
        "One A/B test (its current read-out, as get_ab_test; reading it does not count as a look) or shadow (as get_shadow_report).",
    ),
    ResourceSpec(
        "mlops://retraining/jobs", retraining_jobs, "Retraining jobs",
        f"The {RETRAINING_LIMIT} most recent retraining jobs of every model, newest first: status, stage, trigger, new version, verdict.",
    ),
    ResourceSpec(
        "mlops://models/{name}/retraining", model_retraining, "Retraining of a model",
        "The model's retraining policy (triggers, cooldown, gate, after the gate, next scheduled run, last trigger) and its recent jobs.",
    ),
    ResourceSpec(
        "mlops://features", feature_views, "Feature views",
        "Every feature view at its current version: keys, features, TTL, rows, event time range, online watermark.",
    ),
    ResourceSpec(
        "mlops://features/{view}", feature_view, "A feature view",
        "One feature view: schema, versions, size, time range, freshness (offline and online), per-feature null share and summary.",
    ),
    ResourceSpec("mlops://audit", audit_log, "Audit log", f"The {AUDIT_LIMIT} most recent mutating tool calls (tool, arguments, actor, time, outcome), newest first."),
)


def register_resources(mcp: MCPServer, ops: MLOps) -> None:
    for spec in RESOURCES:
        mcp.resource(spec.uri, name=spec.name, title=spec.title, description=spec.description, mime_type="application/json")(
            _bound(spec, ops)
        )


def _bound(spec: ResourceSpec, ops: MLOps) -> Callable[..., str]:
    """``spec.fn`` with the engine filled in, answering JSON; its signature keeps the URI variables."""

    @functools.wraps(spec.fn)
    def read(**params: str) -> str:
        try:
            return spec.fn(ops, **params).model_dump_json()
        except MLOpsError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    params = [p for p in inspect.signature(spec.fn).parameters.values() if p.name != "ops"]
    read.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    del read.__wrapped__  # the SDK must see the URI variables only
    return read
