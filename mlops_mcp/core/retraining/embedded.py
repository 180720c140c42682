"""The worker inside ``mlops-mcp serve`` on SQLite: one background thread that fails jobs whose
runner died, evaluates cron schedules, and runs queued jobs one at a time (each in its own child
process, so the MCP session stays responsive and a cancel kills only the child).

Several server processes on one home (two hosts launching the server) each run one: claims are
atomic, so a job runs once; a schedule tick fires once (compare-and-set on the policy row).
"""

import logging
import threading
from typing import TYPE_CHECKING

from mlops_mcp.core.retraining import runner

if TYPE_CHECKING:
    from mlops_mcp.core.engine import MLOps

log = logging.getLogger(__name__)

SCHEDULE_EVERY = 15.0  # seconds between schedule checks (cron has minute resolution)


class EmbeddedWorker:
    def __init__(self, ops: "MLOps") -> None:
        self.ops = ops
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="mlops-retraining-worker", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop; a job in progress is interrupted (its child killed, its output discarded, failed)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        import time

        from mlops_mcp.core.retraining import triggers

        ops = self.ops
        housekeeping_every = max(1.0, ops.settings.retraining_stale_seconds / 3)
        next_housekeeping = 0.0
        next_schedule = 0.0
        warmed = False
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_housekeeping:
                    runner.recover(ops)
                    next_housekeeping = now + housekeeping_every
                if now >= next_schedule:
                    triggers.evaluate_all(ops, event="schedule")
                    next_schedule = now + SCHEDULE_EVERY
                if not warmed:
                    runner.warm_up()
                    warmed = True
                runner.run_next(ops, stopping=self._stop)
            except Exception:
                log.exception("retraining worker iteration failed; retrying")
            self._wake.wait(timeout=1.0)
            self._wake.clear()
