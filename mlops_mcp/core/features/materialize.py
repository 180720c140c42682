"""Loading the online table: the newest row per key with an event time up to ``end``, incrementally.

The watermark has two parts, both kept on the version: ``materialized_seq`` (every offline row up
to this ingestion sequence number has been considered) and ``materialized_until`` (the event time
the last run went up to). A run to ``end`` reads only

- rows ingested since (``seq > materialized_seq``) with ``event_ts <= end``, and
- older rows whose event time lies after the previous end (``prev_end < event_ts <= end``): rows
  that were in the future last time, found through the ingests whose newest event is after it,

and upserts each key only when the candidate is newer by (event_ts, created_ts, seq), the order the
point-in-time join uses, so a late-arriving old row never overwrites a newer one and chunks can be
applied in any order. ``end`` never goes back, and never past now (the online store must not hold
rows from the future: the training join would not have seen them). One transaction; progress is
reported per chunk.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.features.catalog import ViewVersion, load_view, now_micros, to_datetime, to_micros

if TYPE_CHECKING:
    from mlops_mcp.core.features.results import MaterializeResult
    from mlops_mcp.core.store import Store

Progress = Callable[[float, str], None]
CHUNK_SEQS = 250_000
MIN_BIGINT = -(2**63)


def _noop(_: float, __: str) -> None:
    return None


def materialize(
    store: "Store", *, view: str, end: str | datetime | None = None, actor: str = "library", progress: Progress = _noop
) -> "MaterializeResult":
    from sqlalchemy import select

    from mlops_mcp.core.features.results import MaterializeResult
    from mlops_mcp.core.store.tables import FeatureIngestRow, FeatureViewVersionRow
    from mlops_mcp.core.times import parse_time

    started = time.perf_counter()
    now = now_micros()
    wanted = parse_time(end, "end")
    end_us = now if wanted is None else to_micros(wanted)
    capped = end_us > now
    end_us = min(end_us, now)
    with store.write() as session:
        vv = load_view(session, view, lock=True)
        prev_end, watermark = vv.materialized_until, vv.materialized_seq
        if prev_end is not None and end_us < prev_end:
            raise InvalidInput(
                f"{to_datetime(end_us):%Y-%m-%d %H:%M:%S} is before the previous materialization's end "
                f"({to_datetime(prev_end):%Y-%m-%d %H:%M:%S} UTC); the online table only moves forward. "
                "Omit end to materialize up to now",
                argument="end",
            )
        ingests = session.execute(
            select(FeatureIngestRow.first_seq, FeatureIngestRow.last_seq, FeatureIngestRow.max_event)
            .where(FeatureIngestRow.version_id == vv.version_id, FeatureIngestRow.rows > 0)
            .order_by(FeatureIngestRow.first_seq)
        ).all()
        work: list[tuple[int, int, bool]] = []  # (lo, hi, only rows after prev_end)
        for first, last, max_event in ingests:
            if last > watermark:
                work += _chunks(max(first, watermark + 1), last, False)
            if prev_end is not None and first <= watermark and max_event is not None and max_event > prev_end:
                work += _chunks(first, min(last, watermark), True)
        conn = session.connection()
        considered = 0
        total = max(1, sum(hi - lo + 1 for lo, hi, _ in work))
        done = 0
        for lo, hi, late in work:
            where = f"seq BETWEEN {lo} AND {hi} AND event_ts <= {end_us}" + (f" AND event_ts > {prev_end}" if late else "")
            considered += conn.exec_driver_sql(f"SELECT count(*) FROM {vv.offline} WHERE {where}").scalar() or 0
            conn.exec_driver_sql(_upsert(vv, where, now, conn.dialect.name))
            done += hi - lo + 1
            progress(done / total, f"{vv.name}: {considered:,} rows read")
        # this run's 'now' stamps exactly the keys it inserted or replaced
        updated = conn.exec_driver_sql(f"SELECT count(*) FROM {vv.online} WHERE materialized_at = {now}").scalar() or 0
        max_seq = conn.exec_driver_sql(f"SELECT coalesce(max(seq), 0) FROM {vv.offline}").scalar() or 0
        row = session.get(FeatureViewVersionRow, vv.version_id)
        assert row is not None
        row.materialized_seq = max(int(max_seq), watermark)
        row.materialized_until = end_us
        row.materialized_at = datetime.now(UTC)
        online, stale = online_counts(conn, vv, now)
    return MaterializeResult(
        view=vv.name, version=vv.version, start=to_datetime(prev_end), end=to_datetime(end_us), end_capped=capped,  # type: ignore[arg-type]
        rows_considered=int(considered), keys_updated=int(updated), online_keys=online, stale_keys_now=stale,
        seconds=round(time.perf_counter() - started, 3),
    )


def _chunks(lo: int, hi: int, late: bool) -> list[tuple[int, int, bool]]:
    return [(a, min(hi, a + CHUNK_SEQS - 1), late) for a in range(lo, hi + 1, CHUNK_SEQS)]


def _upsert(vv: ViewVersion, where: str, now: int, dialect: str) -> str:
    """One statement: candidates upserted where newer by (event_ts, created_ts, seq).

    SQLite applies the rows in seq order and each sees the previous ones' effect; PostgreSQL may
    not touch a row twice in one statement, so there DISTINCT ON keeps each key's newest first."""
    d = vv.definition
    keys = [e.physical for e in d.entities]
    feats = [f.physical for f in d.features]
    cols = [*keys, "event_ts", "created_ts", "seq", "materialized_at", *feats]
    values = [*keys, "event_ts", "created_ts", "seq", str(int(now)), *feats]
    target = vv.online
    newer = (
        f"(excluded.event_ts, coalesce(excluded.created_ts, {MIN_BIGINT}), excluded.seq) > "
        f"({target}.event_ts, coalesce({target}.created_ts, {MIN_BIGINT}), {target}.seq)"
    )
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in keys)
    if dialect == "postgresql":
        select = (
            f"SELECT DISTINCT ON ({', '.join(keys)}) {', '.join(values)} FROM {vv.offline} WHERE {where} "
            f"ORDER BY {', '.join(keys)}, event_ts DESC, created_ts DESC NULLS LAST, seq DESC"
        )
    else:
        select = f"SELECT {', '.join(values)} FROM {vv.offline} WHERE {where} ORDER BY seq"
    return (
        f"INSERT INTO {target} ({', '.join(cols)}) {select} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets} WHERE {newer}"
    )


def online_counts(conn: object, vv: ViewVersion, now: int) -> tuple[int, int]:
    """Keys online, and how many of them are older than the TTL at ``now``."""
    online = conn.exec_driver_sql(f"SELECT count(*) FROM {vv.online}").scalar() or 0  # type: ignore[attr-defined]
    ttl = vv.definition.ttl_us
    stale = 0
    if ttl is not None:
        stale = conn.exec_driver_sql(f"SELECT count(*) FROM {vv.online} WHERE event_ts < {now - ttl}").scalar() or 0  # type: ignore[attr-defined]
    return int(online), int(stale)
