"""The audit log: every mutating tool call, kept in the store (who, when, what, outcome)."""

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mlops_mcp.core.results import Result

if TYPE_CHECKING:
    from mlops_mcp.core.store import Store

MAX_ARG_CHARS = 2_000


class AuditRecord(Result):
    id: int
    at: datetime
    actor: str
    tool: str
    arguments: dict[str, Any] = Field(description="as called; long values replaced by a size marker")
    outcome: str = Field(description="ok, error or cancelled")
    error: str | None
    duration_ms: float


class AuditLog(Result):
    entries: list[AuditRecord] = Field(description="newest first")
    count: int


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
    store: "Store", *, actor: str, tool: str, arguments: dict[str, Any], outcome: str, error: str | None, duration_ms: float
) -> None:
    from mlops_mcp.core.store.tables import AuditEntry, utcnow

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


def log(store: "Store", limit: int = 50, tool: str | None = None) -> AuditLog:
    """The most recent calls, newest first."""
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import AuditEntry

    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if tool:
        query = query.where(AuditEntry.tool == tool)
    with store.read() as session:
        entries = [
            AuditRecord(
                id=r.id, at=r.at, actor=r.actor, tool=r.tool, arguments=r.arguments, outcome=r.outcome,
                error=r.error, duration_ms=round(r.duration_ms, 1),
            )
            for r in session.scalars(query).all()
        ]
    return AuditLog(entries=entries, count=len(entries))
