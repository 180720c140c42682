"""Retraining job records, in our store on both backends (procrastinate on PostgreSQL only carries
the work; what a job is, did and decided lives here, so the tools read it the same way everywhere).

State changes are single conditional UPDATEs, so two processes never both claim a job, a cancel
never lands on a job that already passed the point of no return, and a finished job stays finished.
"""

import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import Conflict, InvalidInput, NotFound, listing
from mlops_mcp.core.retraining import ACTIVE, FINISHED, STATUSES, TASK_STATUS
from mlops_mcp.core.times import now

if TYPE_CHECKING:
    from mlops_mcp.core.store import Store

#: stages a cancel can no longer interrupt: the verdict is in and aliases may be moving
PAST_RETURN = ("after_gate", "done")
#: seconds between polls a client is advised to wait (MCP tasks' pollInterval, in ms below)
POLL_SECONDS = 2


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def create(
    store: "Store",
    *,
    model: str,
    trigger: str,
    reason: str | None,
    actor: str,
    options: dict[str, Any],
    champion_version: int | None,
    cooldown_seconds: float = 0.0,
) -> tuple[Any, bool]:
    """(job, created). An active job of the model is returned instead of a new one (its trigger
    count goes up); an automatic trigger within ``cooldown_seconds`` of the model's last job that
    did not fail or get cancelled also returns that job. Concurrent callers meet the unique index."""
    from sqlalchemy import insert, select, update
    from sqlalchemy.exc import IntegrityError

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    at = now()
    for _ in range(3):
        with store.write() as session:
            active = session.scalars(select(J).where(J.model == model, J.status.in_(ACTIVE))).first()
            if active is not None:
                if trigger != "manual":
                    session.execute(update(J).where(J.id == active.id).values(triggers=J.triggers + 1))
                return active, False
            if trigger != "manual" and cooldown_seconds > 0:
                recent = session.scalars(
                    select(J)
                    .where(J.model == model, J.status.in_(("succeeded", "rejected_by_gate")),
                           J.created_at >= at - timedelta(seconds=cooldown_seconds))
                    .order_by(J.id.desc())
                ).first()
                if recent is not None:
                    session.execute(update(J).where(J.id == recent.id).values(triggers=J.triggers + 1))
                    return recent, False
            record = {
                "model": model, "status": "queued", "stage": "queued", "percent": 0.0, "trigger": trigger,
                "reason": reason, "requested_by": actor, "triggers": 1, "options": options,
                "champion_version": champion_version, "cancel_requested": False, "created_at": at, "updated_at": at,
                "message": "waiting for a worker",
            }
            try:
                new_id = session.execute(insert(J).returning(J.id), [record]).scalar_one()
            except IntegrityError:  # another process created the model's job at the same moment
                session.rollback()
                continue
        return get_row(store, new_id), True
    raise Conflict(f"could not create a retraining job for '{model}' (concurrent triggers); try again", argument="model")


def get_row(store: "Store", job_id: int) -> Any:
    from mlops_mcp.core.store.tables import RetrainingJobRow

    with store.read() as session:
        row = session.get(RetrainingJobRow, job_id)
    if row is None:
        from sqlalchemy import func, select

        with store.read() as session:
            last = session.scalar(select(func.max(RetrainingJobRow.id)))
        hint = "no retraining jobs exist yet" if last is None else f"job ids go up to {last}; list_retraining_jobs lists them"
        raise NotFound(f"no retraining job {job_id}; {hint}", argument="job_id")
    return row


def list_rows(store: "Store", model: str | None = None, status: str | None = None, limit: int = 20) -> list[Any]:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    if status is not None and status not in STATUSES:
        raise InvalidInput(f"{status!r} is not a job status; accepted: {listing(STATUSES)}", argument="status")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
        raise InvalidInput(f"{limit!r} is outside 1..500", argument="limit")
    query = select(J)
    if model is not None:
        query = query.where(J.model == model)
    if status is not None:
        query = query.where(J.status == status)
    with store.read() as session:
        return list(session.scalars(query.order_by(J.id.desc()).limit(limit)).all())


def active_for(store: "Store", model: str) -> Any:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    with store.read() as session:
        return session.scalars(select(J).where(J.model == model, J.status.in_(ACTIVE))).first()


def claim(store: "Store", job_id: int | None = None, model: str | None = None) -> Any:
    """Take a queued job (this one, or the model's oldest, or the oldest of all) for this process:
    queued -> running, atomically. None when there is nothing to take."""
    from sqlalchemy import select, update

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    for _ in range(5):
        query = select(J.id).where(J.status == "queued", J.cancel_requested == False)  # noqa: E712
        if job_id is not None:
            query = query.where(J.id == job_id)
        if model is not None:
            query = query.where(J.model == model)
        with store.read() as session:
            candidate = session.scalars(query.order_by(J.id).limit(1)).first()
        if candidate is None:
            return None
        at = now()
        with store.write() as session:
            done = session.execute(
                update(J)
                .where(J.id == candidate, J.status == "queued", J.cancel_requested == False)  # noqa: E712
                .values(status="running", stage="starting", started_at=at, heartbeat_at=at, updated_at=at,
                        worker=worker_id(), message="starting")
            ).rowcount
        if done:
            return get_row(store, candidate)
        if job_id is not None:
            return None
    return None


def progress(store: "Store", job_id: int, stage: str, percent: float, message: str | None = None, **values: Any) -> None:
    """Progress and heartbeat of a running job (only while it runs: a cancel or a recovery wins)."""
    from sqlalchemy import update

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    at = now()
    with store.write() as session:
        session.execute(
            update(J).where(J.id == job_id, J.status == "running").values(
                stage=stage, percent=round(float(percent), 1), message=(message or "")[:1000], heartbeat_at=at,
                updated_at=at, **values,
            )
        )


def heartbeat(store: "Store", job_id: int) -> bool:
    """Refresh the heartbeat; False when a cancel was asked for."""
    from sqlalchemy import select, update

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    at = now()
    with store.write() as session:
        session.execute(update(J).where(J.id == job_id, J.status == "running").values(heartbeat_at=at))
        return not bool(session.scalar(select(J.cancel_requested).where(J.id == job_id)))


def enter_after_gate(store: "Store", job_id: int) -> bool:
    """Pass the point of no return, unless a cancel got there first."""
    from sqlalchemy import update

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    at = now()
    with store.write() as session:
        return bool(
            session.execute(
                update(J)
                .where(J.id == job_id, J.status == "running", J.cancel_requested == False)  # noqa: E712
                .values(stage="after_gate", percent=95.0, message="acting on the verdict", heartbeat_at=at, updated_at=at)
            ).rowcount
        )


def finish(store: "Store", job_id: int, status: str, message: str, **values: Any) -> bool:
    """A running (or queued) job ends; a job already finished is left alone."""
    from sqlalchemy import update

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    assert status in FINISHED
    at = now()
    with store.write() as session:
        return bool(
            session.execute(
                update(J)
                .where(J.id == job_id, J.status.in_(ACTIVE))
                .values(status=status, stage="done", message=message[:1000], finished_at=at, updated_at=at,
                        percent=100.0 if status in ("succeeded", "rejected_by_gate") else J.percent, **values)
            ).rowcount
        )


def request_cancel(store: "Store", job_id: int) -> Any:
    """Queued: cancelled at once. Running before the verdict: flagged (the runner kills its child
    and cleans up). After the gate, or finished: Conflict, nothing changes."""
    from sqlalchemy import update

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    row = get_row(store, job_id)
    check_cancellable(row)
    at = now()
    with store.write() as session:
        if row.status == "queued":
            done = session.execute(
                update(J).where(J.id == job_id, J.status == "queued").values(
                    status="cancelled", stage="done", cancel_requested=True, finished_at=at, updated_at=at,
                    message="cancelled before it started",
                )
            ).rowcount
        else:
            done = session.execute(
                update(J)
                .where(J.id == job_id, J.status == "running", J.stage.not_in(PAST_RETURN))
                .values(cancel_requested=True, updated_at=at, message="cancel requested: stopping")
            ).rowcount
    if not done:  # it moved on meanwhile
        check_cancellable(get_row(store, job_id))
    return get_row(store, job_id)


def check_cancellable(row: Any) -> None:
    if row.status in FINISHED:
        raise Conflict(
            f"retraining job {row.id} already {row.status.replace('_', ' ')}; only queued or running jobs can be cancelled"
            + (f" (it registered version {row.new_version}; roll back or change aliases with the registry tools)" if row.new_version else ""),
            argument="job_id",
        )
    if row.stage in PAST_RETURN:
        raise Conflict(
            f"retraining job {row.id} is past its gate and acting on the verdict (stage {row.stage}); it finishes in a "
            "moment. Undo its alias moves with rollback_model or set_model_alias",
            argument="job_id",
        )


def stale(store: "Store", stale_seconds: float, exclude: set[int] | None = None) -> list[Any]:
    """Running jobs whose runner is gone: a process on this host that no longer exists, or no
    heartbeat for ``stale_seconds``. ``exclude``: jobs the calling process runs itself."""
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import RetrainingJobRow as J

    with store.read() as session:
        running = list(session.scalars(select(J).where(J.status == "running")).all())
    limit = now() - timedelta(seconds=stale_seconds)
    host = socket.gethostname()
    out = []
    for row in running:
        if exclude and row.id in exclude:
            continue
        owner_host, _, pid = (row.worker or "").rpartition(":")
        dead_here = owner_host == host and pid.isdigit() and not _alive(int(pid))
        if dead_here or row.heartbeat_at is None or row.heartbeat_at < limit:
            out.append(row)
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def view(row: Any) -> dict[str, Any]:
    """The job as the tools show it (the shape of ``RetrainingJob``)."""
    timings = dict(row.timings or {})
    if row.started_at is not None:
        end = row.finished_at or now()
        timings.setdefault("total_seconds", round((end - row.started_at).total_seconds(), 3))
    if row.started_at is not None:
        timings.setdefault("queued_seconds", round((row.started_at - row.created_at).total_seconds(), 3))
    return {
        "job_id": row.id,
        "model": row.model,
        "status": row.status,
        "stage": row.stage,
        "percent": row.percent,
        "message": row.message,
        "trigger": row.trigger,
        "reason": row.reason,
        "requested_by": row.requested_by,
        "triggers": row.triggers,
        "champion_version": row.champion_version,
        "new_version": row.new_version,
        "options": row.options or {},
        "data": row.data,
        "gate": row.gate,
        "after_gate": row.after_gate,
        "timings": timings,
        "error": row.error,
        "cancel_requested": row.cancel_requested,
        "worker": row.worker,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "task": task_view(row),
    }


def task_view(row: Any) -> dict[str, Any]:
    """The job as an MCP task would carry it (SDK 2.3 has no tasks runtime yet; the shape is ready)."""
    return {
        "task_id": f"retraining-{row.id}",
        "status": TASK_STATUS[row.status],
        "status_message": row.message,
        "created_at": _iso(row.created_at),
        "last_updated_at": _iso(row.updated_at),
        "ttl": None,
        "poll_interval": POLL_SECONDS * 1000 if row.status in ACTIVE else None,
    }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, NaN/inf to None, datetimes to ISO text."""
    import math

    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    return str(value)
