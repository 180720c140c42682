"""The prediction log's write path: group commit and bulk inserts.

Every answered prediction must be in the store before its answer leaves (an answered prediction is
never lost, even when the process is killed). Writing each request in its own transaction made
concurrent requests queue on the store's write lock (SQLite has one per file; each commit is a WAL
append), so 8 clients served fewer requests than one. Here concurrent requests share one write
transaction (group commit):

- a request hands its rows to :meth:`PredictionLog.append` and waits;
- whoever finds no write in progress becomes the leader: it takes every request queued so far,
  writes them all in one transaction (with the monitoring rollups of all of them), commits, and
  wakes them; requests arriving meanwhile queue for the next group, whose leader is one of them.

So each caller returns only once its own rows are committed, and under load the number of
transactions per second stays at what the store can do while the rows per transaction grow. The
only lock held while writing is the database's own (no Python lock is held across the transaction,
so nothing can wait on a lock in the other order). Several processes on one store each group their
own requests; the database orders their transactions.

Rows go in with one bulk statement per group: ``executemany`` on SQLite, ``COPY ... FROM STDIN`` on
PostgreSQL (psycopg 3), with values already in their stored form (JSON text built once per batch by
:mod:`jsonrows`; timestamps as SQLAlchemy stores them on SQLite), so the ORM does no per-row work.
A group that fails is retried request by request, so one bad request fails alone.
"""

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_mcp.core.monitoring.rollups import Tally
    from mlops_mcp.core.store import Store

log = logging.getLogger(__name__)

#: the predictions table's columns, in the order of every row tuple
COLUMNS = (
    "id", "model", "version", "variant", "experiment_id", "request_key", "inputs", "output", "score",
    "probabilities", "latency_ms", "batch_size", "created_at",
)
_SQLITE_INSERT = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_PG_COPY = f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN"


@dataclass
class LogEntry:
    """One request's rows (tuples in :data:`COLUMNS` order, ``created_at`` as
    :meth:`PredictionLog.stamp` gives it) and its monitoring increments."""

    rows: list[tuple[Any, ...]]
    tally: "Tally | None" = None
    done: bool = False
    error: BaseException | None = None


class PredictionLog:
    """Group commit of prediction rows into one store (one instance per engine)."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self._cond = threading.Condition()
        self._queue: list[LogEntry] = []
        self._writing = False
        #: groups and rows committed by this process (for tests and benchmarks)
        self.groups = 0
        self.rows = 0

    def stamp(self, at: datetime) -> Any:
        """``created_at`` in the form the driver takes for this store: on SQLite the text SQLAlchemy's
        DateTime stores (UTC, no zone), so that every reader's comparisons and parsing keep working."""
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if self.store.is_sqlite else at.astimezone(UTC)

    def append(self, entry: LogEntry) -> None:
        """Write ``entry`` and return once it is committed; raises what made its write fail."""
        self.store.migrate()  # outside the group: the first requests of a server must not wait on it holding the leader
        with self._cond:
            self._queue.append(entry)
            while not entry.done:
                if self._writing:
                    self._cond.wait()
                    continue
                self._writing = True
                group, self._queue = self._queue, []
                self._cond.release()
                try:
                    self._commit(group)
                finally:
                    self._cond.acquire()
                    for e in group:  # an interrupt mid-write (KeyboardInterrupt): nobody waits forever
                        if not e.done:
                            e.error = e.error or RuntimeError("the prediction log write was interrupted")
                            e.done = True
                    self._writing = False
                    self._cond.notify_all()
        if entry.error is not None:
            raise entry.error

    # -- the leader's work ------------------------------------------------------------------------
    def _commit(self, group: list[LogEntry]) -> None:
        try:
            self._write(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
            else:  # find the culprit: each request alone, so the others still get logged
                log.warning("a group of %d prediction log writes failed (%s); writing them one by one", len(group), exc)
                for entry in group:
                    try:
                        self._write([entry])
                    except Exception as one:
                        entry.error = one
                    entry.done = True
        for entry in group:
            entry.done = True

    def _write(self, group: Sequence[LogEntry]) -> None:
        from mlops_mcp.core.monitoring import rollups

        rows = [r for e in group for r in e.rows]
        tally = rollups.Tally()
        for e in group:
            if e.tally is not None:
                tally.merge(e.tally)
        store = self.store
        with store.write() as session:
            connection = session.connection()
            if store.is_sqlite:
                connection.exec_driver_sql(_SQLITE_INSERT, rows)
            else:
                raw = connection.connection.driver_connection  # psycopg 3, inside this transaction
                with raw.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
                    for r in rows:
                        copy.write_row(r)
            rollups.write(connection, tally, store.is_sqlite)
        self.groups += 1
        self.rows += len(rows)

