"""``mlops://experiments`` (every A/B test and shadow, newest first) and ``mlops://experiments/{id}``
(one of them with its current read-out), as JSON. Reading a resource never counts as a look of an
A/B test: the stored always-valid p-value is used but not updated."""

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mlops_mcp.core.engine import MLOps
from mlops_mcp.resources import not_found

LIST_LIMIT = 100


def _json(data: Any) -> str:
    return json.dumps(data, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))


def register(mcp: MCPServer, ops: MLOps) -> None:
    @mcp.resource(
        "mlops://experiments",
        name="experiments",
        title="Experiments",
        description=(
            f"The {LIST_LIMIT} most recent live A/B tests and shadow deployments, newest first: id, model, kind (ab | shadow), "
            "status, variants and the versions they are pinned to, split or sample rate, start and end."
        ),
        mime_type="application/json",
    )
    def experiments() -> str:
        from mlops_mcp.core.experiments.common import list_experiments

        items = list_experiments(ops.store, limit=LIST_LIMIT)
        return _json({"experiments": items, "count": len(items)})

    @mcp.resource(
        "mlops://experiments/{experiment_id}",
        name="experiment",
        title="Experiment",
        description=(
            "One A/B test (configuration + current read-out as get_ab_test: arms, effect, p-values, SRM, power, "
            "recommendation) or shadow (configuration + report as get_shadow_report)."
        ),
        mime_type="application/json",
    )
    def experiment(experiment_id: str) -> str:
        from mlops_mcp.core.experiments import live, shadow
        from mlops_mcp.core.experiments.common import get_row

        if not experiment_id.isdigit():
            raise ResourceNotFoundError(f"experiment id must be a number; got '{experiment_id}'")
        with not_found():
            row = get_row(ops.store, int(experiment_id))
            if row.kind == "ab":
                data = live.read_out(ops.store, row.id, persist=False)
            else:
                data = shadow.report(ops.store, row.model, row.id)
        return _json(data)
