"""Monitoring: ``get_model_health``, the first call when someone asks how a model is doing. Hosts
that render MCP Apps show its result as a live dashboard (``ui://mlops/model-health.html``)."""

from mcp.server.mcpserver import Context

from mlops_mcp.core.monitoring.results import HEALTH_APP_URI, ModelHealth
from mlops_mcp.tools.args import ModelNameArg
from mlops_mcp.tools.context import engine

__all__ = ["HEALTH_APP_URI", "get_model_health"]


def get_model_health(model: ModelNameArg, ctx: Context) -> ModelHealth:
    """How a model is doing, in one small answer: call this first when asked about a model's health,
    before drilling down. Returns: where its aliases point (champion, challenger, ...); traffic over
    the last 24 hours (predictions, requests, failed requests and error rate, latency p50/p95/p99 in
    milliseconds, predictions per version and per hour); live quality of the last 7 days' labeled
    predictions (accuracy, or rmse/mae for regression) against each version's training baseline, the
    label coverage and a `degraded` flag (tolerance 0.05: absolute for accuracy, relative for errors;
    at least 30 labels); the newest drift report's headline and its most drifted features; running
    A/B tests (sample-ratio p-value) and shadows (agreement); retraining jobs where the server has
    them; the active alerts (the conditions of the Prometheus rules in deploy/, each with what to do)
    and the next calls to make. Numbers come from the store, the same ones /metrics serves.
    `model`: the registered model name (an unknown name gets an error listing the models).
    Example: get_model_health(model="nba-win").
    """
    return engine(ctx).model_health(model)
