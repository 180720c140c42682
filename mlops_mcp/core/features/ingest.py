"""Appending a file to a view's offline table: one transaction per file, idempotent on its content.

The file is read and checked whole before the transaction starts (types, keys, event times), so a
bad row never leaves half a file behind; the same bytes sent again (under any name) are recognised
by their SHA-256 and change nothing. Rows are bulk-loaded: ``executemany`` in chunks on SQLite,
``COPY`` on PostgreSQL.
"""

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.features.catalog import ViewVersion, load_view, to_datetime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mlops_mcp.core.features.results import IngestResult, IngestSummary
    from mlops_mcp.core.features.sources import PreparedRows, SourceFile
    from mlops_mcp.core.store import Store

CHUNK_ROWS = 100_000
#: appends at least this large (and at least as large as the table) rebuild the index afterwards
REBUILD_MIN_ROWS = 50_000


def ingest(store: "Store", roots: list[Path], *, view: str, dataset: str, actor: str = "library") -> "IngestResult":
    """Append ``dataset`` to the current version of ``view``."""
    from mlops_mcp.core.errors import Conflict
    from mlops_mcp.core.features.results import IngestResult
    from mlops_mcp.core.features.sources import open_source, prepare_rows, read_table, text_columns

    started = time.perf_counter()
    with store.read() as session:
        vv = load_view(session, view)
    file = open_source(dataset, roots, "dataset")
    frame = read_table(file.path, "dataset", text_columns(vv.definition))
    rows = prepare_rows(frame, vv.definition, vv.name, f"'{dataset}'", "dataset")
    with store.write() as session:
        locked = load_view(session, view, lock=True)
        if locked.version_id != vv.version_id:
            raise Conflict(
                f"feature view '{vv.name}' moved to version {locked.version} while '{dataset}' was being read; send it again",
                argument="view",
            )
        summary = append_file(session, locked, file, rows, actor, started)
        total = session.connection().exec_driver_sql(f"SELECT count(*) FROM {vv.offline}").scalar() or 0
    return IngestResult(view=vv.name, version=vv.version, ingest=summary, total_rows=int(total))


def append_file(
    session: "Session", vv: ViewVersion, file: "SourceFile", rows: "PreparedRows", actor: str, started: float
) -> "IngestSummary":
    """Record the ingest and append its rows, in the caller's transaction (which holds the view)."""
    from sqlalchemy import select

    from mlops_mcp.core.features.results import IngestSummary
    from mlops_mcp.core.store.tables import FeatureIngestRow

    earlier = session.scalars(
        select(FeatureIngestRow).where(FeatureIngestRow.version_id == vv.version_id, FeatureIngestRow.sha256 == file.sha256)
    ).first()
    if earlier is not None:
        return IngestSummary(
            ingest_id=earlier.id, dataset=file.dataset, sha256=file.sha256, rows=0, skipped=True,
            skipped_reason=f"this exact file (same SHA-256) was ingested into version {vv.version} as ingest "
            f"{earlier.id} ('{earlier.dataset}', {earlier.rows:,} rows, {earlier.at:%Y-%m-%d %H:%M} UTC)",
            assumed_utc=list(earlier.assumed_utc or []), event_from=to_datetime(earlier.min_event),
            event_to=to_datetime(earlier.max_event), seconds=round(time.perf_counter() - started, 3),
        )
    record = FeatureIngestRow(
        version_id=vv.version_id, dataset=file.dataset[:1024], sha256=file.sha256, n_bytes=file.n_bytes, rows=rows.n,
        min_event=rows.min_event, max_event=rows.max_event, assumed_utc=rows.assumed_utc,
        at=datetime.now(UTC), actor=actor[:200],
    )
    session.add(record)
    session.flush()
    first, last = append_rows(session, vv, rows, record.id)
    record.first_seq, record.last_seq = first, last
    session.flush()
    return IngestSummary(
        ingest_id=record.id, dataset=file.dataset, sha256=file.sha256, rows=rows.n, skipped=False, skipped_reason=None,
        assumed_utc=rows.assumed_utc, event_from=to_datetime(rows.min_event), event_to=to_datetime(rows.max_event),
        seconds=round(time.perf_counter() - started, 3),
    )


def columns(vv: ViewVersion) -> list[str]:
    d = vv.definition
    return ["ingest_id", *[e.physical for e in d.entities], "event_ts", "created_ts", *[f.physical for f in d.features]]


def append_rows(session: "Session", vv: ViewVersion, rows: "PreparedRows", ingest_id: int) -> tuple[int, int]:
    """Bulk-append; returns the first and last ``seq`` given to the rows.

    A large append (into an empty table, or of more rows than it holds) drops the point-in-time
    index and builds it again afterwards, in the same transaction: building an index once is
    several times faster than updating it at random places row by row."""
    from mlops_mcp.core.features.tables import create_pit_index, drop_pit_index

    rows = rows.clustered()
    conn = session.connection()
    before, existing = conn.exec_driver_sql(f"SELECT coalesce(max(seq), 0), count(*) FROM {vv.offline}").one()
    rebuild = rows.n >= REBUILD_MIN_ROWS and rows.n >= existing
    if rebuild:
        drop_pit_index(conn, vv.version_id)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        _copy_rows(raw, vv, rows, ingest_id)
    else:
        from mlops_mcp.core.features.sources import python_rows

        cols = columns(vv)
        sql = f"INSERT INTO {vv.offline} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        with sqlite_cache(raw):
            for lo in range(0, rows.n, CHUNK_ROWS):
                raw.executemany(sql, python_rows(rows, ingest_id, bool_as_int=True, lo=lo, hi=min(rows.n, lo + CHUNK_ROWS)))
            if rebuild:
                create_pit_index(conn, vv.version_id, vv.definition)
    if rebuild and conn.dialect.name == "postgresql":
        create_pit_index(conn, vv.version_id, vv.definition)
    first, last = conn.exec_driver_sql(f"SELECT min(seq), max(seq) FROM {vv.offline} WHERE seq > {int(before)}").one()
    return int(first), int(last)


@contextlib.contextmanager
def sqlite_cache(raw: Any, mebibytes: int = 256) -> Iterator[None]:
    """A larger page cache on this SQLite connection while bulk work runs (the default 2 MB
    makes index builds and big joins read the same pages again and again)."""
    previous = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = -{mebibytes * 1024}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {int(previous)}")


def _copy_rows(raw: Any, vv: ViewVersion, rows: "PreparedRows", ingest_id: int) -> None:
    """PostgreSQL COPY from CSV written by Arrow (every present value quoted, nulls empty: COPY
    reads an unquoted empty field as NULL and a quoted one as the empty string)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    sql = f"COPY {vv.offline} ({', '.join(columns(vv))}) FROM STDIN WITH (FORMAT csv)"
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for lo in range(0, rows.n, CHUNK_ROWS * 5):
            table = arrow_rows(rows, ingest_id, lo, min(rows.n, lo + CHUNK_ROWS * 5))
            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer, options)
            copy.write(buffer.getvalue())
    del pa


def arrow_rows(rows: "PreparedRows", ingest_id: int, lo: int, hi: int) -> Any:
    import numpy as np
    import pyarrow as pa

    def arr(values: "np.ndarray", null: "np.ndarray | None", kind: Any = None) -> Any:
        mask = None if null is None or not null[lo:hi].any() else null[lo:hi]
        data = values[lo:hi]
        if data.dtype == object:
            return pa.array(data, type=pa.string(), mask=mask)
        return pa.array(data, type=kind, mask=mask)

    n = hi - lo
    cols: dict[str, Any] = {"ingest_id": pa.array(np.full(n, ingest_id, dtype=np.int64))}
    for i, k in enumerate(rows.keys):
        cols[f"e{i}"] = arr(k.data, None)
    cols["event_ts"] = pa.array(rows.event[lo:hi])
    if rows.created is None:
        cols["created_ts"] = pa.nulls(n, pa.int64())
    else:
        cols["created_ts"] = arr(rows.created, rows.created_null)
    for i, f in enumerate(rows.features):
        cols[f"f{i}"] = arr(f.data, f.null)
    return pa.table(cols)
