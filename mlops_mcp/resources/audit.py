"""``mlops://audit``: the most recent mutating calls, newest first."""

import json

from mcp.server.mcpserver import MCPServer

from mlops_mcp.core.engine import MLOps

AUDIT_LIMIT = 50


def register(mcp: MCPServer, ops: MLOps) -> None:
    @mcp.resource(
        "mlops://audit",
        name="audit_log",
        title="Audit log",
        description=f"The {AUDIT_LIMIT} most recent mutating tool calls (tool, arguments, actor, time, outcome), newest first.",
        mime_type="application/json",
    )
    def audit_log() -> str:
        from mlops_mcp.core import audit

        entries = audit.recent(ops.store, limit=AUDIT_LIMIT)
        return json.dumps(
            {
                "entries": [
                    {
                        "id": e.id,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "tool": e.tool,
                        "arguments": e.arguments,
                        "outcome": e.outcome,
                        "error": e.error,
                        "duration_ms": round(e.duration_ms, 1),
                    }
                    for e in entries
                ],
                "count": len(entries),
            },
            default=str,
        )
