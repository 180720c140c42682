"""Retraining jobs as monitoring sees them, read only when the store has the jobs table.

Retraining (issue 14) is built on another branch; this branch has no jobs table. The metrics
(``mlops_retraining_jobs{model,status}``) and the health section (policy, jobs by status, the
newest job) read it through the two functions below, which answer ``None`` while the table does
not exist. The queries name the columns that branch's design card gives (``model``, ``status``,
``created_at``; a policies table keyed by ``model``): wiring them to the final schema is one
edit here.
"""

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_mcp.core.store import Store

JOBS_TABLE = "retraining_jobs"
POLICIES_TABLE = "retraining_policies"
#: how long the answer to "does the table exist" is kept (a migration may add it meanwhile)
TABLES_TTL_SECONDS = 60.0

_tables: dict[int, tuple[float, frozenset[str]]] = {}


def tables(store: "Store") -> frozenset[str]:
    """The store's table names (cached per store for a minute)."""
    key = id(store)
    hit = _tables.get(key)
    if hit is not None and time.monotonic() - hit[0] < TABLES_TTL_SECONDS:
        return hit[1]
    from sqlalchemy import inspect

    names = frozenset(inspect(store.engine).get_table_names())
    _tables[key] = (time.monotonic(), names)
    return names


def job_counts(store: "Store") -> list[tuple[str, str, int]] | None:
    """(model, status, jobs) over every job, or None when retraining is not in this store."""
    if JOBS_TABLE not in tables(store):
        return None
    from mlops_mcp.core.monitoring.rollups import raw_query

    rows = raw_query(store, f"SELECT model, status, COUNT(*) FROM {JOBS_TABLE} GROUP BY model, status")
    return [(str(m), str(s), int(n)) for m, s, n in rows]


def model_section(store: "Store", model: str) -> dict[str, Any]:
    """The health summary's retraining section for ``model``."""
    names = tables(store)
    if JOBS_TABLE not in names:
        return {"available": False, "policy": None, "jobs": {}, "latest_job": None,
                "note": "retraining is not part of this server's store yet"}
    from mlops_mcp.core.monitoring.rollups import raw_query

    mark = "?" if store.is_sqlite else "%s"
    counts = raw_query(store, f"SELECT status, COUNT(*) FROM {JOBS_TABLE} WHERE model = {mark} GROUP BY status", (model,))
    latest = raw_query(
        store, f"SELECT id, status, created_at FROM {JOBS_TABLE} WHERE model = {mark} ORDER BY created_at DESC LIMIT 1", (model,)
    )
    policy = None
    if POLICIES_TABLE in names:
        found = raw_query(store, f"SELECT * FROM {POLICIES_TABLE} WHERE model = {mark}", (model,))
        policy = {"configured": bool(found)}
    return {
        "available": True,
        "policy": policy,
        "jobs": {str(s): int(n) for s, n in counts},
        "latest_job": None if not latest else {"id": latest[0][0], "status": str(latest[0][1]), "created_at": str(latest[0][2])},
        "note": None,
    }
