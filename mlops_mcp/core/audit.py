"""The audit log: every mutating tool call, kept in the store (who, when, what, outcome)."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_mcp.core.store import Store
from mlops_mcp.core.store.tables import AuditEntry, utcnow

MAX_ARG_CHARS = 2_000


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    tool: str
    arguments: dict[str, Any]
    outcome: str
    error: str | None
    duration_ms: float


def summarize_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """Keep the audit row small: long values (10,000 rows of features) are cut to a marker."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = repr(value)
        if len(text) > MAX_ARG_CHARS:
            size = len(value) if hasattr(value, "__len__") else None
            out[key] = {"truncated": True, "chars": len(text), "items": size}
        else:
            out[key] = json.loads(text) if text.startswith(("{", "[", '"')) or text in ("true", "false", "null") else value
    return out


def record(
    store: Store, *, actor: str, tool: str, arguments: dict[str, Any], outcome: str, error: str | None, duration_ms: float
) -> None:
    with store.write() as session:
        session.add(
            AuditEntry(
                at=utcnow(),
                actor=actor,
                tool=tool,
                arguments=summarize_arguments(arguments),
                outcome=outcome,
                error=error,
                duration_ms=duration_ms,
            )
        )


def recent(store: Store, limit: int = 50, tool: str | None = None) -> list[AuditRecord]:
    from sqlalchemy import select

    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if tool:
        query = query.where(AuditEntry.tool == tool)
    with store.read() as session:
        rows = session.scalars(query).all()
        return [
            AuditRecord(r.id, r.at, r.actor, r.tool, r.arguments, r.outcome, r.error, r.duration_ms) for r in rows
        ]
