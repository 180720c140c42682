"""Retraining on PostgreSQL: jobs go through procrastinate (a PostgreSQL task queue: SKIP LOCKED
to take a job, LISTEN/NOTIFY to hear of one), run by any number of ``mlops-mcp worker`` processes
on any number of machines. No new service, and no queue of ours.

Tasks (queue ``mlops_retraining``):
- ``mlops_retraining_run(model)``: runs the model's queued jobs (our job records say what to do).
  Deferred with ``queueing_lock = "retraining:<model>"``: however many triggers arrive, one such
  task waits in the queue per model (procrastinate refuses the others with AlreadyEnqueued), and
  it runs whatever is queued when it starts.
- ``mlops_retraining_evaluate(model, event)``: evaluates the model's policy after a drift report or
  a feedback batch (``queueing_lock = "evaluate:<model>"``: a burst of reports makes one evaluation).
- ``mlops_retraining_tick``: a procrastinate periodic task (every minute, deduplicated across
  workers by procrastinate itself) that evaluates every policy's cron schedule and fails jobs whose
  worker died; each worker also does the latter when it starts and every few seconds.

Procrastinate's own tables live in the same database; its schema is applied on first use.
"""

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procrastinate import App

    from mlops_mcp.core.engine import MLOps

log = logging.getLogger(__name__)

QUEUE = "mlops_retraining"
TASK_RUN = "mlops_retraining_run"
TASK_EVALUATE = "mlops_retraining_evaluate"
TASK_TICK = "mlops_retraining_tick"
_schema_lock = threading.Lock()


def conninfo(url: str) -> str:
    """A libpq URL from the store's SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def ensure_schema(url: str) -> None:
    """Apply procrastinate's schema unless present (under an advisory lock: concurrent starts)."""
    import psycopg

    with _schema_lock, psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('mlops_mcp_procrastinate_schema'))")
        try:
            present = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if not (present and present[0]):
                from procrastinate.schema import SchemaManager

                conn.execute(SchemaManager.get_schema())  # type: ignore[arg-type]
                log.info("applied procrastinate's schema")
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('mlops_mcp_procrastinate_schema'))")


def make_app(ops: "MLOps", *, worker: bool) -> "App":
    """The procrastinate app with our tasks; ``worker`` picks the async connector (workers) or the
    sync one (a server deferring from its tool threads)."""
    from procrastinate import App, PsycopgConnector, SyncPsycopgConnector

    info = conninfo(ops.store.url)
    connector: Any = (
        PsycopgConnector(conninfo=info, min_size=1, max_size=4) if worker
        else SyncPsycopgConnector(conninfo=info, min_size=1, max_size=2)
    )
    app = App(connector=connector)

    @app.task(name=TASK_RUN, queue=QUEUE)
    def run_model_jobs(model: str) -> None:
        from mlops_mcp.core.retraining import runner

        runner.run_next(ops, model=model)

    @app.task(name=TASK_EVALUATE, queue=QUEUE)
    def evaluate(model: str, event: str) -> None:
        from mlops_mcp.core.retraining import triggers

        triggers.evaluate_model(ops, model, event)

    @app.periodic(cron="* * * * *", periodic_id="schedules")
    @app.task(name=TASK_TICK, queue=QUEUE, queueing_lock=TASK_TICK)
    def tick(timestamp: int) -> None:
        from mlops_mcp.core.retraining import runner, triggers

        runner.recover(ops)
        triggers.evaluate_all(ops, event="schedule")

    return app


class Deferrer:
    """What a server process (or a library user) on PostgreSQL uses to hand work to the workers."""

    def __init__(self, ops: "MLOps") -> None:
        ensure_schema(ops.store.url)
        self.app = make_app(ops, worker=False)
        self.app.open()

    def run(self, model: str) -> int | None:
        """Queue a run of the model's jobs; None when one is already waiting (it takes this job too)."""
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            return self.app.configure_task(TASK_RUN, queueing_lock=f"retraining:{model}").defer(model=model)
        except AlreadyEnqueued:
            return None

    def evaluate(self, model: str, event: str) -> int | None:
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            return self.app.configure_task(TASK_EVALUATE, queueing_lock=f"evaluate:{model}").defer(model=model, event=event)
        except AlreadyEnqueued:
            return None

    def cancel(self, queue_job_id: int) -> bool:
        """Withdraw a queued procrastinate job (a running one is stopped through our job record)."""
        try:
            return self.app.job_manager.cancel_job_by_id(queue_job_id)
        except Exception:
            return False

    def close(self) -> None:
        try:
            self.app.close()
        except Exception:
            pass


async def _housekeeping(ops: "MLOps", app: "App", every: float, stale: float) -> None:
    """Fail jobs whose worker died (ours and procrastinate's record of them), every few seconds."""
    from procrastinate.jobs import Status

    from mlops_mcp.core.retraining import runner

    while True:
        try:
            await asyncio.to_thread(runner.recover, ops)
            for job in await app.job_manager.get_stalled_jobs(task_name=TASK_RUN, seconds_since_heartbeat=stale):
                assert job.id is not None
                await app.job_manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
                log.warning("procrastinate job %s (%s) failed: its worker stopped sending heartbeats", job.id, job.task_name)
        except Exception:
            log.exception("retraining housekeeping failed; retrying")
        await asyncio.sleep(every)


def run_worker(ops: "MLOps", concurrency: int = 2, name: str | None = None) -> None:
    """``mlops-mcp worker``: run procrastinate workers for the retraining queue until stopped."""
    from mlops_mcp.core.retraining import runner

    ensure_schema(ops.store.url)
    ops.store.migrate()
    runner.recover(ops)
    stale = ops.settings.retraining_stale_seconds
    app = make_app(ops, worker=True)
    threading.Thread(target=runner.warm_up, name="retraining-warm-up", daemon=True).start()

    async def main() -> None:
        async with app.open_async():
            keeper = asyncio.create_task(_housekeeping(ops, app, max(1.0, stale / 3), stale))
            try:
                await app.run_worker_async(
                    queues=[QUEUE], concurrency=concurrency, name=name, update_heartbeat_interval=max(0.5, stale / 4),
                    stalled_worker_timeout=stale, install_signal_handlers=True,
                )
            finally:
                keeper.cancel()

    asyncio.run(main())
