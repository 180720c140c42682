"""What one server process adds to the metrics: predictions (written with their log, in the same
transaction) and the events that leave no other trace in the store, tool calls and failed
predictions (buffered in memory and flushed to the rollups every second, at scrape time and on
close, so that a tool call never waits on a write it does not need).

A flush that fails (store down, a read-only database user) keeps the counts and retries; at most
:data:`MAX_PENDING` distinct rows are held, beyond that new kinds of events are dropped and logged.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.monitoring import rollups

if TYPE_CHECKING:
    from mlops_mcp.core.store import Store

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_PENDING = 10_000
PRUNE_EVERY_SECONDS = 3600.0


def outcome_of(error: BaseException | None) -> str:
    """A tool call's outcome label: ok, error (the caller's input or the state: a domain error the
    caller reads) or internal (a bug or an outage: the server log has it)."""
    if error is None:
        return "ok"
    from mlops_mcp.core.errors import MLOpsError

    # a domain error, or a ToolError the tool raised itself, is an answer the caller can act on
    if isinstance(error, MLOpsError) or type(error).__name__ == "ToolError":
        return "error"
    return "internal"


class Recorder:
    """One per engine. ``store`` is a callable so that building the recorder builds nothing."""

    def __init__(self, store: Callable[[], "Store"]) -> None:
        self._store = store
        self._pending = rollups.Tally()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._last_warning = 0.0

    # -- in the prediction log's transaction ------------------------------------------------------
    def predictions(
        self,
        connection: Any,
        sqlite: bool,
        model: str,
        outputs: Sequence[dict[str, Any]],
        latency_ms: float,
        now: datetime,
    ) -> None:
        """Rows per (version, variant), the request's latency, A/B arm assignments."""
        rollups.write(connection, prediction_tally(model, outputs, latency_ms, now), sqlite)

    # -- buffered ---------------------------------------------------------------------------------------
    def prediction_error(self, model: str, reason: str) -> None:
        """A failed prediction request; ``model`` is '' when the name did not resolve to a model
        (so a caller's typo never becomes a label)."""
        self._buffer(lambda t: t.add(rollups.PRED_ERR, model=model, label=reason, hour=rollups.hour_of(time.time())))

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        def add(t: rollups.Tally) -> None:
            t.add(rollups.TOOL, label=tool, outcome=outcome)
            t.observe(rollups.TOOL_LATENCY, seconds, rollups.LATENCY_BOUNDS, label=tool)

        self._buffer(add)

    def _buffer(self, add: Callable[[rollups.Tally], None]) -> None:
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self._warn("metrics buffer full; dropping an event (is the store reachable?)")
                return
            add(self._pending)
        self._ensure_thread()

    # -- flushing ---------------------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write the buffered counts now (True when nothing is left pending)."""
        with self._lock:
            pending, self._pending = self._pending, rollups.Tally()
        if not pending:
            return True
        try:
            store = self._store()
            with store.write() as session:
                connection = session.connection()
                rollups.write(connection, pending, store.is_sqlite)
                if time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
                    rollups.prune(connection, rollups.hour_of(time.time()), store.is_sqlite)
                    self._last_prune = time.monotonic()
            return True
        except Exception as exc:  # keep the counts; the next flush retries
            with self._lock:
                pending.merge(self._pending)
                self._pending = pending
            self._warn(f"could not flush metrics to the store ({type(exc).__name__}: {exc}); will retry")
            return False

    def _warn(self, message: str) -> None:
        if time.monotonic() - self._last_warning > 60:
            self._last_warning = time.monotonic()
            log.warning(message)

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._stop:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlops-metrics", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the flusher and write what is pending."""
        self._stop = True
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        self.flush()


def prediction_tally(model: str, outputs: Sequence[dict[str, Any]], latency_ms: float, now: datetime) -> rollups.Tally:
    """One request's increments: rows per (version, variant), its latency, A/B arm assignments. The
    prediction log merges those of the requests it commits together and writes them with their rows."""
    hour = rollups.hour_of(now)
    tally = rollups.Tally()
    from collections import Counter

    groups = Counter((out["version"], out.get("variant") or "", out.get("experiment_id")) for out in outputs)
    for (version, variant, experiment), count in groups.items():
        tally.add(rollups.PRED, model=model, version=int(version), label=variant, hour=hour, n=float(count))
        if experiment is not None:
            tally.add(rollups.AB_ARM, model=model, version=int(experiment), label=variant, n=float(count))
    tally.observe(rollups.REQ_LATENCY, latency_ms / 1000.0, rollups.LATENCY_BOUNDS, model=model, hour=hour)
    return tally
