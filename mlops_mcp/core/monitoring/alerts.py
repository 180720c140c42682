"""The alerts, defined once: as PromQL for Prometheus (``deploy/prometheus/rules.yml`` is
rendered from :data:`RULES` by :func:`rules_yaml`, and a test keeps the file equal to it) and as
the same conditions checked by ``get_model_health`` on the store's figures.

Where the two differ it is in time only: Prometheus evaluates rates over its scrapes and waits
out each rule's ``for`` before firing; health reports a condition as it stands now, from the
store's hourly rollups (the current and the previous UTC hour stand for "the last hour").
"""

from dataclasses import dataclass
from typing import Any

#: share of failed prediction requests that raises PredictionErrors
ERROR_RATE = 0.05
#: sample-ratio test p-value below which assignments are broken (as get_ab_test judges it)
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    runbook: str

    def text(self, **labels: Any) -> tuple[str, str]:
        """(summary, runbook) with ``{{ $labels.x }}`` filled in, for health's list of alerts."""
        out = []
        for template in (self.summary, self.runbook):
            for key, value in labels.items():
                template = template.replace("{{ $labels." + key + " }}", str(value))
            out.append(template)
        return out[0], out[1]


_ERRORS = 'sum by (model) (rate(mlops_prediction_errors_total{model!=""}[1h]))'
_REQUESTS = "sum by (model) (rate(mlops_prediction_latency_seconds_count[1h]))"

RULES: tuple[Rule, ...] = (
    Rule(
        "MLOpsDriftDetected",
        # only versions an alias points at: a report on a version since replaced is history, not an alert
        "max by (model, version) (mlops_drift_detected) == 1 and on (model, version) group by (model, version) (mlops_model_info)",
        "0m",
        "warning",
        "Data drift detected on {{ $labels.model }} v{{ $labels.version }} (newest drift report of a version in use)",
        "Call get_model_health(model='{{ $labels.model }}'), then get_drift_history(model='{{ $labels.model }}') and "
        "check_drift(model='{{ $labels.model }}', plot=true) to see which features moved; retrain or fix the data pipeline.",
    ),
    Rule(
        "MLOpsQualityDegraded",
        "max by (model, version) (mlops_quality_degraded) == 1",
        "30m",
        "critical",
        "Live quality of {{ $labels.model }} v{{ $labels.version }} is below its training baseline",
        "Call get_model_performance(model='{{ $labels.model }}/{{ $labels.version }}', plot=true); compare a candidate with "
        "run_ab_test or go back with rollback_model(model='{{ $labels.model }}').",
    ),
    Rule(
        "MLOpsPredictionErrors",
        f"{_ERRORS} / ({_ERRORS} + ({_REQUESTS} or 0 * {_ERRORS})) > {ERROR_RATE:g}",
        "10m",
        "critical",
        "More than 5% of prediction requests for {{ $labels.model }} fail",
        "Call get_model_health(model='{{ $labels.model }}') and read the server log; reproduce with "
        "predict(model='{{ $labels.model }}', rows=[...]) on a known-good row.",
    ),
    Rule(
        "MLOpsSampleRatioMismatch",
        f"min by (model) (mlops_ab_sample_ratio_p_value) < {SRM_THRESHOLD:g}",
        "0m",
        "critical",
        "The live A/B test on {{ $labels.model }} assigns traffic out of its configured split",
        "Call get_model_health(model='{{ $labels.model }}') and get_ab_test for the running test: do not trust its effect; "
        "check request keys and routing, then conclude_ab_test without promoting.",
    ),
    Rule(
        "MLOpsNoTraffic",
        "sum by (model) (increase(mlops_predictions_total[1h])) == 0 "
        "and on (model) sum by (model) (increase(mlops_predictions_total[1d])) > 0",
        "15m",
        "warning",
        "{{ $labels.model }} served predictions in the last day but none in the last hour",
        "Call get_model_health(model='{{ $labels.model }}'); check the clients, and the champion alias with "
        "get_model_history(model='{{ $labels.model }}').",
    ),
)
BY_NAME = {r.name: r for r in RULES}


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is a subset YAML reads the same way)."""
    import json

    return json.dumps(text)


def rules_yaml() -> str:
    """The Prometheus rules file (``deploy/prometheus/rules.yml``)."""
    lines = [
        "# Generated from mlops_mcp/core/monitoring/alerts.py (the same conditions get_model_health reports);",
        "# edit there, then: python -c \"from mlops_mcp.core.monitoring.alerts import rules_yaml; print(rules_yaml(), end='')\" > deploy/prometheus/rules.yml",
        "groups:",
        "  - name: mlops-mcp",
        "    rules:",
    ]
    for r in RULES:
        lines += [
            f"      - alert: {r.name}",
            f"        expr: {_q(r.expr)}",
            f"        for: {r.for_}",
            "        labels:",
            f"          severity: {r.severity}",
            "        annotations:",
            f"          summary: {_q(r.summary)}",
            f"          runbook: {_q(r.runbook)}",
        ]
    return "\n".join(lines) + "\n"


def active(
    model: str,
    *,
    drift: Any,
    quality: list[Any],
    errors_1h: float,
    requests_1h: float,
    predictions_1h: float,
    predictions_24h: float,
    srm: list[tuple[int, float | None]],
    in_use: set[int],
) -> list[dict[str, str]]:
    """The rules' conditions on the store's figures for one model: (name, severity, summary, runbook).
    ``in_use``: the versions an alias points at (drift on any other version is history)."""
    fired: list[tuple[Rule, dict[str, Any]]] = []
    if drift is not None and drift.drift_detected and drift.version in in_use:
        fired.append((BY_NAME["MLOpsDriftDetected"], {"model": model, "version": drift.version}))
    for q in quality:
        if q.degraded:
            fired.append((BY_NAME["MLOpsQualityDegraded"], {"model": model, "version": q.version}))
    if errors_1h > 0 and errors_1h / (errors_1h + requests_1h) > ERROR_RATE:
        fired.append((BY_NAME["MLOpsPredictionErrors"], {"model": model}))
    if any(p is not None and p < SRM_THRESHOLD for _, p in srm):
        fired.append((BY_NAME["MLOpsSampleRatioMismatch"], {"model": model}))
    if predictions_1h == 0 and predictions_24h > 0:
        fired.append((BY_NAME["MLOpsNoTraffic"], {"model": model}))
    out = []
    for rule, labels in fired:
        summary, runbook = rule.text(**labels)
        out.append({"name": rule.name, "severity": rule.severity, "summary": summary, "runbook": runbook})
    return out
