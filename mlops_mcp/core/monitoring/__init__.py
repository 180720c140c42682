"""Monitoring: Prometheus metrics derived from the store, model health in one call, alert rules.

- :mod:`.rollups`: pre-aggregated counts written beside what they count (shared by every process);
- :mod:`.recorder`: the per-process buffer for tool calls and prediction errors, flushed to rollups;
- :mod:`.snapshot`: one read of the store that the metrics and the health summary share;
- :mod:`.exposition`: the Prometheus text served at /metrics and by ``mlops-mcp exporter``;
- :mod:`.alerts`: the alert conditions, as PromQL for the rules file and as checks for health;
- :mod:`.health`: ``get_model_health``.

Nothing here imports numpy, pandas or MLflow at module import.
"""

#: the MCP App that renders get_model_health (a constant here, so the server's start-up need not
#: import the result classes to register the app)
HEALTH_APP_URI = "ui://mlops/model-health.html"
