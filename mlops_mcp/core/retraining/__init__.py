"""Automated retraining: drift or decay in, a gated challenger out, durable jobs on a real queue.

- ``policy``: when a model retrains by itself and how its challenger is gated (stored per model).
- ``jobs``: the job records (our store, on both backends): states, progress, verdict, timings.
- ``data``: the training set (the champion's training data + labeled logged predictions) and the
  holdout neither model trained on.
- ``gate``: the checks (floors, MLflow-style thresholds, the paired test of ``run_ab_test``,
  guardrails) on that holdout.
- ``child`` / ``runner``: one job, its work in a child process (killed to cancel), its bookkeeping
  in the runner (heartbeat, cancellation, clean-up, what happens after the gate).
- ``triggers``: evaluating policies (after a drift report, a feedback batch, on schedule).
- ``embedded``: the worker inside ``mlops-mcp serve`` (SQLite); ``queue``: procrastinate on
  PostgreSQL (``mlops-mcp worker``).
- ``service``: what the engine calls.

Job states map onto MCP tasks: queued/running -> working; succeeded/rejected_by_gate -> completed;
failed -> failed; cancelled -> cancelled.
"""

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "rejected_by_gate", "failed", "cancelled")
STATUSES = ACTIVE + FINISHED
TASK_STATUS = {
    "queued": "working",
    "running": "working",
    "succeeded": "completed",
    "rejected_by_gate": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
TRIGGERS = ("manual", "drift", "decay", "schedule")
AFTER_GATE = ("none", "shadow", "ab_test", "promote")
