"""Retraining jobs and policies as monitoring sees them: the ``mlops_retraining_jobs{model,status}``
metric and the health summary's retraining section, read from the retraining tables."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_mcp.core.store import Store

JOBS_TABLE = "retraining_jobs"
POLICIES_TABLE = "retraining_policies"


def job_counts(store: "Store") -> list[tuple[str, str, int]]:
    """(model, status, jobs) over every job."""
    from mlops_mcp.core.monitoring.rollups import raw_query

    rows = raw_query(store, f"SELECT model, status, COUNT(*) FROM {JOBS_TABLE} GROUP BY model, status")
    return [(str(m), str(s), int(n)) for m, s, n in rows]


def model_section(store: "Store", model: str) -> dict[str, Any]:
    """The health summary's retraining section for ``model``: its policy, jobs by status, the newest job."""
    from mlops_mcp.core.monitoring.rollups import raw_query

    mark = "?" if store.is_sqlite else "%s"
    counts = raw_query(store, f"SELECT status, COUNT(*) FROM {JOBS_TABLE} WHERE model = {mark} GROUP BY status", (model,))
    latest = raw_query(
        store,
        f"SELECT id, status, created_at FROM {JOBS_TABLE} WHERE model = {mark} ORDER BY created_at DESC LIMIT 1",
        (model,),
    )
    found = raw_query(
        store, f"SELECT enabled, on_drift, on_decay, schedule, after_gate FROM {POLICIES_TABLE} WHERE model = {mark}", (model,)
    )
    policy = None
    if found:
        enabled, on_drift, on_decay, schedule, after_gate = found[0]
        triggers = [t for t, on in (("drift", on_drift), ("decay", on_decay), (f"schedule {schedule}", schedule)) if on]
        policy = {"configured": True, "enabled": bool(enabled), "triggers": triggers, "after_gate": after_gate}
    return {
        "available": True,
        "policy": policy,
        "jobs": {str(s): int(n) for s, n in counts},
        "latest_job": None if not latest else {"id": latest[0][0], "status": str(latest[0][1]), "created_at": str(latest[0][2])},
        "note": None,
    }
