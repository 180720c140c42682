"""Each view version's two data tables, built from its definition.

``fs_<id>_offline``: every ingested row, append-only. ``seq`` (the row's place in ingestion order)
is the primary key (SQLite's rowid); ``ingest_id`` names the file it came from. The point-in-time
index ``(keys..., event_ts, created_ts, seq)`` is what makes "the newest row of this key at or
before t" one index seek on both backends (on PostgreSQL with ``created_ts NULLS FIRST``, so that a
backward scan yields ``created_ts DESC NULLS LAST``: a missing created time is the oldest).

``fs_<id>_online``: the newest row per key (primary key = the keys), with its event and created
times, its ``seq`` and when it was materialized.

Times are BIGINT microseconds since the Unix epoch, UTC, on both backends: exact comparisons and
TTL arithmetic in plain integers, identical results on SQLite and PostgreSQL.
"""

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Connection, Float, Integer, MetaData, Table, Text

from mlops_mcp.core.features.definitions import ViewDefinition


def offline_name(version_id: int) -> str:
    return f"fs_{int(version_id)}_offline"


def online_name(version_id: int) -> str:
    return f"fs_{int(version_id)}_online"


def _type(kind: str) -> Any:
    return {"int": BigInteger(), "float": Float(precision=53), "bool": Boolean(), "string": Text()}[kind]


def offline_table(version_id: int, definition: ViewDefinition, metadata: MetaData | None = None) -> Table:
    return Table(
        offline_name(version_id),
        metadata or MetaData(),
        Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("ingest_id", Integer, nullable=False),
        *[Column(e.physical, _type(e.type), nullable=False) for e in definition.entities],
        Column("event_ts", BigInteger, nullable=False),
        Column("created_ts", BigInteger, nullable=True),
        *[Column(f.physical, _type(f.type), nullable=True) for f in definition.features],
    )


def online_table(version_id: int, definition: ViewDefinition, metadata: MetaData | None = None) -> Table:
    return Table(
        online_name(version_id),
        metadata or MetaData(),
        *[Column(e.physical, _type(e.type), primary_key=True) for e in definition.entities],
        Column("event_ts", BigInteger, nullable=False),
        Column("created_ts", BigInteger, nullable=True),
        Column("seq", BigInteger, nullable=False),
        Column("materialized_at", BigInteger, nullable=False),
        *[Column(f.physical, _type(f.type), nullable=True) for f in definition.features],
    )


def create_tables(conn: Connection, version_id: int, definition: ViewDefinition) -> None:
    """Create both tables and the point-in-time index, inside the caller's transaction."""
    metadata = MetaData()
    offline = offline_table(version_id, definition, metadata)
    online_table(version_id, definition, metadata)
    metadata.create_all(conn)
    create_pit_index(conn, version_id, definition)
    del offline


def create_pit_index(conn: Connection, version_id: int, definition: ViewDefinition) -> None:
    """The index every point-in-time seek uses: (keys..., event_ts, created_ts, seq)."""
    keys = ", ".join(e.physical for e in definition.entities)
    created = "created_ts NULLS FIRST" if conn.dialect.name == "postgresql" else "created_ts"
    name = offline_name(version_id)
    conn.exec_driver_sql(f"CREATE INDEX ix_{name}_pit ON {name} ({keys}, event_ts, {created}, seq)")


def drop_pit_index(conn: Connection, version_id: int) -> None:
    conn.exec_driver_sql(f"DROP INDEX IF EXISTS ix_{offline_name(version_id)}_pit")


def drop_tables(conn: Connection, version_id: int) -> None:
    for name in (online_name(version_id), offline_name(version_id)):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
