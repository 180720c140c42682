"""Running one claimed retraining job, the same way on both backends (the embedded worker in
``serve`` on SQLite; a procrastinate worker on PostgreSQL).

The work happens in a child process (``child.py``) forked from a multiprocessing fork server whose
modules are preloaded, so a job starts in ~0.1 s instead of paying the imports. This process:
- refreshes the job's heartbeat every second and records the child's progress;
- watches for a cancel: the child is killed (SIGKILL; nothing in it gets to finish), then whatever
  it had registered is removed (``discard``): the version (found by the job's unique training file
  in its ``mlops.dataset`` tag) is deleted, its MLflow run marked FAILED, the job's files deleted;
- after the verdict, passes the point of no return (one conditional UPDATE that a cancel cannot
  cross) and only then moves aliases or starts a shadow / A/B test.

Durability: if this process dies (kill -9) the child sees its control pipe close and exits at once;
the next worker to look (at start, then every few seconds) finds the job running with a dead runner
(same host: the pid is gone; elsewhere: no heartbeat for ``retraining_stale_seconds``), marks it
failed (not retried: the data window has moved on, and the policy fires again if still needed) and
discards its partial output. Aliases only ever point at a version after its verdict is tagged.
"""

import logging
import multiprocessing
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.retraining import jobs
from mlops_mcp.core.retraining.child import PRELOAD, TAG_JOB

if TYPE_CHECKING:
    from mlops_mcp.core.engine import MLOps

log = logging.getLogger(__name__)

_ctx_lock = threading.Lock()
_ctx: Any = None
HEARTBEAT_SECONDS = 1.0
#: jobs this process is running now (never taken for dead by its own recovery)
_running: set[int] = set()


def children() -> Any:
    """The multiprocessing context children start from: a fork server with the job's modules
    preloaded (spawn where there is no fork server)."""
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(list(PRELOAD))
            else:  # pragma: no cover (Windows)
                ctx = multiprocessing.get_context("spawn")
            _ctx = ctx
        return _ctx


def _noop() -> None:
    return None


def warm_up() -> None:
    """Start the fork server and let it finish its imports (a few seconds, once per process), so
    the first job does not wait for them."""
    try:
        proc = children().Process(target=_noop, name="retraining-warm-up")
        proc.start()
        proc.join(120)
    except Exception:  # a warm-up failure only costs the first job its imports
        log.warning("could not warm up the retraining fork server", exc_info=True)


def settings_data(ops: "MLOps") -> dict[str, Any]:
    return ops.settings.model_dump()


def run_claimed(ops: "MLOps", row: Any, stopping: threading.Event | None = None) -> str:
    """Run a job this process has claimed (status running); returns its final status."""
    store = ops.store
    started = time.perf_counter()
    with _ctx_lock:
        _running.add(row.id)
    beat = _Heartbeat(ops, row.id)  # on its own thread: starting the child may wait for the fork server
    ctx = children()
    results_r, results_w = ctx.Pipe(duplex=False)
    control_r, control_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child_main, args=(settings_data(ops), row.id, results_w, control_r), name=f"retraining-job-{row.id}"
    )
    try:
        proc.start()
    except BaseException as exc:
        beat.stop()
        with _ctx_lock:
            _running.discard(row.id)
        jobs.finish(store, row.id, "failed", "could not start the training process", error=str(exc)[:2000])
        raise
    results_w.close()
    control_r.close()
    jobs.progress(store, row.id, "starting", 1.0, "training process started", child_pid=proc.pid)
    outcome: tuple[Any, ...] | None = None
    stopped = False
    try:
        while True:
            if results_r.poll(0.2):
                try:
                    message = results_r.recv()
                except EOFError:
                    break
                if message[0] == "progress":
                    _, stage, percent, text = message
                    jobs.progress(store, row.id, stage, percent, text)
                    continue
                outcome = message
                break
            if beat.cancelled.is_set():
                break
            if stopping is not None and stopping.is_set():
                stopped = True
                break
            if not proc.is_alive() and not results_r.poll(0):
                break
    finally:
        cancelled = beat.cancelled.is_set() and outcome is None
        if cancelled or stopped or outcome is None:
            proc.kill()
        proc.join(30)
        results_r.close()
        control_w.close()
        beat.stop()
        with _ctx_lock:
            _running.discard(row.id)
    elapsed = time.perf_counter() - started
    if cancelled:
        discarded = discard(ops, row)
        jobs.finish(store, row.id, "cancelled", _cancel_message(discarded), timings={"total_seconds": round(elapsed, 3)})
        return "cancelled"
    if stopped:
        discarded = discard(ops, row)
        jobs.finish(store, row.id, "failed", "the server stopped while the job ran; nothing was kept",
                    error="interrupted: the worker shut down", timings={"total_seconds": round(elapsed, 3)})
        return "failed"
    if outcome is None or outcome[0] == "error":
        discard(ops, row)
        if outcome is None:
            code = proc.exitcode
            error = f"the training process ended unexpectedly (exit code {code}{': killed' if code == -9 else ''})"
        else:
            error = outcome[2]
        jobs.finish(store, row.id, "failed", f"failed: {error[:300]}", error=error[:4000],
                    timings={"total_seconds": round(elapsed, 3)})
        return "failed"
    return _after_child(ops, row, outcome[1], started)


class _Heartbeat:
    """Refreshes a running job's heartbeat every second and notices a cancel request."""

    def __init__(self, ops: "MLOps", job_id: int) -> None:
        self.ops = ops
        self.job_id = job_id
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"retraining-heartbeat-{job_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if not jobs.heartbeat(self.ops.store, self.job_id):
                    self.cancelled.set()
            except Exception:  # a store hiccup: the next beat tries again
                log.warning("heartbeat of retraining job %s failed", self.job_id, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def running_here() -> set[int]:
    with _ctx_lock:
        return set(_running)


def _child_main(settings_data: dict[str, Any], job_id: int, results: Any, control: Any) -> None:
    from mlops_mcp.core.retraining.child import main

    main(settings_data, job_id, results, control)


def _cancel_message(discarded: list[int]) -> str:
    if discarded:
        return f"cancelled: the training process was stopped and version(s) {', '.join(map(str, discarded))} it had registered were removed"
    return "cancelled: the training process was stopped; nothing was registered"


def _after_child(ops: "MLOps", row: Any, result: dict[str, Any], started: float) -> str:
    """Record the verdict, cross the point of no return, act on it."""
    store = ops.store
    result = jobs.plain(result)
    version = int(result["new_version"])
    verdict = result["gate"]
    timings = dict(result.get("timings") or {})
    jobs.progress(store, row.id, "gating", 94.0, verdict["summary"], new_version=version, data=result["data"], gate=verdict)
    if not jobs.enter_after_gate(store, row.id):  # a cancel won the race
        discarded = discard(ops, row)
        jobs.finish(store, row.id, "cancelled", _cancel_message(discarded), new_version=None)
        return "cancelled"
    act_started = time.perf_counter()
    after = act(ops, row, version, verdict)
    timings["after_gate_seconds"] = round(time.perf_counter() - act_started, 3)
    total = time.perf_counter() - started
    timings["total_seconds"] = round(total, 3)
    timings["overhead_seconds"] = round(total - float(timings.get("fit_seconds") or 0.0), 3)
    status = "succeeded" if verdict["passed"] else "rejected_by_gate"
    message = (
        f"version {version}: gate {verdict['verdict']} ({verdict['summary']}); {after['message']}"
    )
    jobs.finish(store, row.id, status, message, after_gate=after, timings=timings)
    return status


def act(ops: "MLOps", row: Any, version: int, verdict: dict[str, Any]) -> dict[str, Any]:
    """What happens after the gate: nothing (rejected), challenger alias, shadow, A/B test, or
    (only with auto_promote) the champion alias, recorded in the alias history with the job."""
    model = row.model
    opts = row.options
    action = opts.get("after_gate", "none")
    actor = f"retraining job {row.id}"
    if not verdict["passed"]:
        return {"action": action, "performed": [], "skipped": [],
                "message": f"rejected by the gate: no alias moved; version {version} stays registered with its verdict"}
    reason = f"retraining job {row.id} ({row.trigger}): gate passed: {verdict['summary']}"[:1000]
    performed: list[dict[str, Any]] = []
    skipped: list[str] = []
    if action == "promote" and opts.get("auto_promote"):
        move = ops.registry.set_alias(model, "champion", version, actor, reason)
        performed.append({"kind": "alias", "alias": "champion", "from_version": move["from_version"], "to_version": version})
        message = f"promoted: '{model}@champion' moved from version {move['from_version']} to {version} (auto_promote)"
    else:
        move = ops.registry.set_alias(model, "challenger", version, actor, reason)
        performed.append({"kind": "alias", "alias": "challenger", "from_version": move["from_version"], "to_version": version})
        message = f"registered as '{model}@challenger'"
        if action in ("shadow", "ab_test"):
            from mlops_mcp.core.errors import MLOpsError

            try:
                if action == "shadow":
                    started = ops.start_shadow(model, "challenger", 1.0, actor=actor)
                    performed.append({"kind": "shadow", "experiment_id": started.experiment_id})
                    message += f"; shadow {started.experiment_id} mirrors live traffic to it"
                else:
                    ab = ops.start_ab_test(model, "champion", "challenger", actor=actor)
                    performed.append({"kind": "ab_test", "experiment_id": ab.experiment_id})
                    message += f"; A/B test {ab.experiment_id} splits live traffic with the champion"
            except MLOpsError as exc:
                skipped.append(f"{action}: {exc}")
                message += f"; {action} not started: {exc}"
        if action == "promote":  # without auto_promote (refused when set; kept as a guard)
            skipped.append("promote: auto_promote is not true")
    return {"action": action, "performed": performed, "skipped": skipped, "message": message}


def discard(ops: "MLOps", row: Any) -> list[int]:
    """Remove what an unfinished job registered: versions of its training file that no alias points
    at (deleted), their runs (marked FAILED), the job's data files. Returns the deleted versions."""
    from mlops_mcp.core.models.registry import TAG_DATASET

    model = row.model
    train_rel = f"retraining/{model}/job-{row.id}-train.parquet"
    deleted: list[int] = []
    try:
        registry = ops.registry
        pointed = set(registry.aliases(model).values())
        for mv in registry.versions(model):
            tags = mv.tags or {}
            if tags.get(TAG_DATASET) == train_rel or tags.get(TAG_JOB) == str(row.id):
                if int(mv.version) in pointed:
                    log.warning("job %s: version %s has an alias; kept", row.id, mv.version)
                    continue
                registry.client.delete_model_version(model, mv.version)
                deleted.append(int(mv.version))
        runs = registry.client.search_runs(
            [registry.experiment_id(model)], filter_string=f"params.dataset = '{train_rel}'", max_results=50
        )
        for run in runs:
            registry.client.set_tag(run.info.run_id, "mlops.retraining.discarded", f"job {row.id}")
            if run.info.status != "FAILED":
                registry.client.set_terminated(run.info.run_id, status="FAILED")
    except Exception:  # clean-up is best effort; the job's state is recorded regardless
        log.exception("could not discard the output of retraining job %s", row.id)
    for root in ops.settings.data_roots[:1]:
        for name in (f"job-{row.id}-train.parquet", f"job-{row.id}-holdout.parquet"):
            path = Path(root) / "retraining" / model / name
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.warning("could not remove %s", path)
    return sorted(deleted)


def recover(ops: "MLOps") -> list[int]:
    """Fail the running jobs whose runner is gone and discard their partial output."""
    failed = []
    for row in jobs.stale(ops.store, ops.settings.retraining_stale_seconds, exclude=running_here()):
        stage = row.stage
        # clean up first, so that a job reads 'failed' only once nothing of it is left (discarding twice,
        # when two workers recover at once, is harmless)
        discarded = discard(ops, row)
        if not jobs.finish(
            ops.store, row.id, "failed",
            f"the worker running it ({row.worker}) stopped during stage '{stage}' (killed or crashed); "
            "nothing it registered was kept. Start it again with start_retraining",
            error=f"worker lost during stage '{stage}'",
        ):
            continue
        log.warning("retraining job %s failed: its worker %s is gone (removed versions %s)", row.id, row.worker, discarded)
        failed.append(row.id)
    return failed


def run_next(ops: "MLOps", model: str | None = None, stopping: threading.Event | None = None) -> int:
    """Claim and run queued jobs (of ``model``, or any) until none is left; returns how many ran."""
    ran = 0
    while stopping is None or not stopping.is_set():
        row = jobs.claim(ops.store, model=model)
        if row is None:
            return ran
        try:
            run_claimed(ops, row, stopping)
        except Exception:
            log.exception("retraining job %s crashed its runner", row.id)
            jobs.finish(ops.store, row.id, "failed", "the runner crashed; see the server log", error="runner error")
            discard(ops, row)
        ran += 1
    return ran
