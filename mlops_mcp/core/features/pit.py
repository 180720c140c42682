"""The point-in-time join, in SQL on both backends.

For every entity row (keys, t) and every view: the offline row with the same keys and
``t - ttl <= event_ts <= t`` that comes last in the order (event_ts, created_ts, seq), where a
missing created time is the oldest and ``seq`` (ingestion order) settles full ties: Feast's
documented semantics, made deterministic. Every entity row is kept, duplicates included, in order;
an entity row with a missing key or time matches nothing.

The entity rows go into a temporary table (``i`` = their position), then one statement joins every
view at once and returns rows in ``i`` order:

- PostgreSQL: ``LEFT JOIN LATERAL (SELECT ... ORDER BY event_ts DESC, created_ts DESC NULLS LAST,
  seq DESC LIMIT 1)``, one backward seek per entity row on the index (keys, event_ts, created_ts
  NULLS FIRST, seq); entity rows in and results out through COPY.
- SQLite (no LATERAL): a correlated scalar subquery finds the matching ``seq`` by the same seek on
  the same index, and the row is fetched by its primary key.
"""

import io
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.features.catalog import ViewVersion
from mlops_mcp.core.features.definitions import Column

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy import Connection

    from mlops_mcp.core.features.sources import Times, Values

FETCH_ROWS = 100_000


@dataclass
class JoinView:
    vv: ViewVersion
    features: list[Column]  # the requested features, in the order asked


@dataclass
class JoinInput:
    n: int
    keys: dict[str, "Values"]  # entity key column -> values (nulls allowed)
    key_types: dict[str, str]
    ts: "Times"


@dataclass
class JoinOutput:
    matched: "np.ndarray"  # bool per entity row
    columns: list[Any]  # one pandas array per requested feature


def point_in_time(conn: "Connection", data: JoinInput, views: list[JoinView]) -> list[JoinOutput]:
    """Run the join on ``conn`` (inside the caller's transaction; the temporary table is dropped)."""
    table = f"mlops_pit_{uuid.uuid4().hex[:12]}"
    physical = {name: f"k{i}" for i, name in enumerate(data.keys)}
    if conn.dialect.name == "postgresql":
        return _postgresql(conn, table, physical, data, views)
    return _sqlite(conn, table, physical, data, views)


def _subquery_filter(view: JoinView, physical: dict[str, str], alias: str) -> str:
    d = view.vv.definition
    parts = [f"{alias}.{e.physical} = e.{physical[e.name]}" for e in d.entities]
    parts.append(f"{alias}.event_ts <= e.ts")
    if d.ttl_us is not None:
        parts.append(f"{alias}.event_ts >= e.ts - {d.ttl_us}")
    return " AND ".join(parts)


# -- SQLite ------------------------------------------------------------------------------------------
def _sqlite(conn: "Connection", table: str, physical: dict[str, str], data: JoinInput, views: list[JoinView]) -> list[JoinOutput]:
    import numpy as np
    import pandas as pd

    from mlops_mcp.core.features.ingest import sqlite_cache

    raw = conn.connection.driver_connection
    kinds = {"int": "INTEGER", "string": "TEXT"}
    cols = ", ".join(f"{physical[k]} {kinds[data.key_types[k]]}" for k in data.keys)
    raw.execute(f"CREATE TEMP TABLE {table} (r INTEGER PRIMARY KEY, i INTEGER, {cols}, ts INTEGER)")
    try:
        names = ["r", "i", *[physical[k] for k in data.keys], "ts"]
        insert = f"INSERT INTO temp.{table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        order = seek_order(data)
        for lo in range(0, data.n, FETCH_ROWS):
            part = order[lo : lo + FETCH_ROWS]
            columns = [list(range(lo, lo + len(part))), part.tolist()]
            for k in data.keys:
                columns.append(_with_nulls(data.keys[k].data[part].tolist(), data.keys[k].null[part]))
            columns.append(_with_nulls(data.ts.micros[part].tolist(), data.ts.null[part]))
            raw.executemany(insert, zip(*columns))
        # Every column but text comes back as a number that float64 holds exactly: NULL floats
        # as inf (ingest refuses inf as a value), ints as their high and low 32 bits plus an
        # is-null flag, bools as 0/1 plus the flag. Without text features a chunk of rows then
        # becomes one float64 array in C; with them, an object array.
        select: list[str] = ["e.i"]
        joins = []
        for j, view in enumerate(views):
            v = f"v{j}"
            select.append(f"{v}.seq IS NOT NULL")
            for f in view.features:
                c = f"{v}.{f.physical}"
                if f.type == "float":
                    select.append(f"ifnull({c}, 9e999)")
                elif f.type == "int":
                    select += [f"ifnull({c} >> 32, 0)", f"ifnull({c} & 4294967295, 0)", f"{c} IS NULL"]
                elif f.type == "bool":
                    select += [f"ifnull({c}, 0)", f"{c} IS NULL"]
                else:
                    select.append(c)
            off = view.vv.offline
            joins.append(
                f"LEFT JOIN {off} {v} ON {v}.seq = (SELECT o.seq FROM {off} o WHERE {_subquery_filter(view, physical, 'o')} "
                "ORDER BY o.event_ts DESC, o.created_ts DESC, o.seq DESC LIMIT 1)"
            )
        sql = f"SELECT {', '.join(select)} FROM temp.{table} e {' '.join(joins)} ORDER BY e.r"
        numeric = all(f.type != "string" for view in views for f in view.features)
        kind: Any = np.float64 if numeric else object
        chunks: list[Any] = []
        with sqlite_cache(raw):
            cursor = raw.execute(sql)
            while rows := cursor.fetchmany(FETCH_ROWS):
                chunks.append(np.array(rows, dtype=kind).reshape(len(rows), len(select)))
            cursor.close()
    finally:
        raw.execute(f"DROP TABLE IF EXISTS temp.{table}")
    block = np.concatenate(chunks) if chunks else np.empty((0, len(select)), dtype=kind)
    back = np.empty(data.n, dtype=np.int64)  # result rows came in seek order: put them back
    back[block[:, 0].astype(np.int64)] = np.arange(data.n)
    out = []
    c = 1

    def column(k: int, dtype: Any) -> "np.ndarray":
        return np.asarray(block[:, k].astype(dtype)[back])

    for view in views:
        matched = column(c, bool)
        c += 1
        arrays = []
        for f in view.features:
            if f.type == "float":
                values = column(c, np.float64)
                values[np.isinf(values)] = np.nan
                arrays.append(values)
                c += 1
            elif f.type == "int":
                high, low = column(c, np.int64), column(c + 1, np.int64)
                arrays.append(pd.arrays.IntegerArray((high << 32) | low, column(c + 2, bool)))
                c += 3
            elif f.type == "bool":
                arrays.append(pd.arrays.BooleanArray(column(c, bool), column(c + 1, bool)))
                c += 2
            else:
                arrays.append(np.asarray(block[:, c][back], dtype=object))
                c += 1
        out.append(JoinOutput(matched, arrays))
    return out


def seek_order(data: JoinInput) -> "np.ndarray":
    """Entity rows ordered by (keys, time): index seeks then walk the index (and a table whose
    rows were appended clustered by key) forward instead of jumping around; about half the work."""
    import numpy as np

    from mlops_mcp.core.features.sources import sort_codes

    keys = [np.where(v.null, -1, sort_codes(v.data)) if v.data.dtype != object else sort_codes(v.data) for v in data.keys.values()]
    return np.lexsort((np.arange(data.n), data.ts.micros, *reversed(keys)))


def _with_nulls(items: list[Any], null: "np.ndarray") -> list[Any]:
    import numpy as np

    if null.any():
        for i in np.flatnonzero(null).tolist():
            items[i] = None
    return items


# -- PostgreSQL --------------------------------------------------------------------------------------
def _postgresql(conn: "Connection", table: str, physical: dict[str, str], data: JoinInput, views: list[JoinView]) -> list[JoinOutput]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw = conn.connection.driver_connection
    kinds = {"int": "bigint", "string": "text"}
    cols = ", ".join(f"{physical[k]} {kinds[data.key_types[k]]}" for k in data.keys)
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE {table} (r bigint PRIMARY KEY, i bigint, {cols}, ts bigint)")
        try:
            names = ["r", "i", *[physical[k] for k in data.keys], "ts"]
            options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
            order = seek_order(data)  # the temporary table is filled (and scanned) in seek order
            with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)") as copy:
                for lo in range(0, data.n, FETCH_ROWS * 5):
                    part = order[lo : lo + FETCH_ROWS * 5]
                    arrays = {"r": pa.array(np.arange(lo, lo + len(part), dtype=np.int64)), "i": pa.array(part)}
                    for k in data.keys:
                        values, null = data.keys[k].data[part], data.keys[k].null[part]
                        kind = pa.string() if data.key_types[k] == "string" else pa.int64()
                        arrays[physical[k]] = pa.array(values, type=kind, mask=null if null.any() else None)
                    ts_null = data.ts.null[part]
                    arrays["ts"] = pa.array(data.ts.micros[part], mask=ts_null if ts_null.any() else None)
                    buffer = io.BytesIO()
                    pacsv.write_csv(pa.table(arrays), buffer, options)
                    copy.write(buffer.getvalue())
            cur.execute(f"ANALYZE {table}")
            if all(f.type != "string" for view in views for f in view.features):
                return _postgresql_arrays(cur, table, physical, data, views)
            select = ["e.i"]
            joins = []
            for j, view in enumerate(views):
                v = f"v{j}"
                feats = [f.physical for f in view.features]
                select.append(f"{v}.seq")
                select += [f"{v}.{c}" for c in feats]
                off = view.vv.offline
                joins.append(
                    f"LEFT JOIN LATERAL (SELECT o.seq{''.join(', o.' + c for c in feats)} FROM {off} o "
                    f"WHERE {_subquery_filter(view, physical, 'o')} "
                    f"ORDER BY o.event_ts DESC, o.created_ts DESC NULLS LAST, o.seq DESC LIMIT 1) {v} ON true"
                )
            sql = f"SELECT {', '.join(select)} FROM {table} e {' '.join(joins)}"
            buffer = io.BytesIO()
            with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    buffer.write(block)
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    names = ["i"]
    column_types: dict[str, Any] = {"i": pa.int64()}
    for j, view in enumerate(views):
        names.append(f"v{j}_seq")
        column_types[f"v{j}_seq"] = pa.int64()
        for f in view.features:
            names.append(f"v{j}_{f.physical}")
            column_types[f"v{j}_{f.physical}"] = types[f.type]
    buffer.seek(0)
    result = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
            true_values=["t"], false_values=["f"],
        ),
    )
    back = np.empty(data.n, dtype=np.int64)  # rows came back in seek order: put them back
    back[result.column("i").to_numpy()] = np.arange(data.n)
    result = result.take(pa.array(back))
    out = []
    for j, view in enumerate(views):
        matched = result.column(f"v{j}_seq").is_valid().to_numpy(zero_copy_only=False)
        arrays = [_from_arrow(result.column(f"v{j}_{f.physical}"), f.type) for f in view.features]
        out.append(JoinOutput(np.asarray(matched, dtype=bool), arrays))
    return out


ARRAY_ROWS = 200_000


def _lateral(view: JoinView, physical: dict[str, str], v: str) -> str:
    feats = "".join(f", o.{f.physical}" for f in view.features)
    return (
        f"LEFT JOIN LATERAL (SELECT o.seq{feats} FROM {view.vv.offline} o WHERE {_subquery_filter(view, physical, 'o')} "
        f"ORDER BY o.event_ts DESC, o.created_ts DESC NULLS LAST, o.seq DESC LIMIT 1) {v} ON true"
    )


def _postgresql_arrays(cur: Any, table: str, physical: dict[str, str], data: JoinInput, views: list[JoinView]) -> list[JoinOutput]:
    """Numbers only: the server aggregates each result column into binary arrays (``array_send``)
    of up to ARRAY_ROWS rows, which numpy reads as they are; a row-by-row COPY costs several
    times more on the client. NULLs become a sentinel plus an is-null flag so that every element
    has the same size. The arrays of one group are built from the same rows in the same order
    (parallel aggregation is switched off for the statement), and carry ``i`` to put rows back."""
    import numpy as np
    import pandas as pd

    columns: list[tuple[str, str]] = [("e.i", ">i8")]
    for j, view in enumerate(views):
        v = f"v{j}"
        columns.append((f"{v}.seq IS NOT NULL", "u1"))
        for f in view.features:
            c = f"{v}.{f.physical}"
            if f.type == "float":
                columns.append((f"coalesce({c}, 'Infinity'::float8)", ">f8"))
            elif f.type == "int":
                columns += [(f"coalesce({c}, 0)", ">i8"), (f"{c} IS NULL", "u1")]
            else:
                columns += [(f"coalesce({c}, false)", "u1"), (f"{c} IS NULL", "u1")]
    joins = " ".join(_lateral(view, physical, f"v{j}") for j, view in enumerate(views))
    aggregates = ", ".join(f"array_send(array_agg({c}))" for c, _ in columns)
    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    cur.execute(f"SELECT {aggregates} FROM {table} e {joins} GROUP BY e.r / {ARRAY_ROWS}", binary=True)
    parts: list[list[Any]] = [[] for _ in columns]
    for row in cur:
        for k, (raw, (_, code)) in enumerate(zip(row, columns)):
            parts[k].append(_binary_array(raw, code))
    cur.execute("RESET max_parallel_workers_per_gather")
    block = [np.concatenate(p) if p else np.empty(0, dtype=np.dtype(code).newbyteorder("=")) for p, (_, code) in zip(parts, columns)]
    back = np.empty(data.n, dtype=np.int64)
    back[block[0]] = np.arange(data.n)

    def column(k: int, dtype: Any) -> "np.ndarray":
        return np.asarray(block[k][back], dtype=dtype)

    out = []
    c = 1
    for view in views:
        matched = column(c, bool)
        c += 1
        arrays = []
        for f in view.features:
            if f.type == "float":
                values = column(c, np.float64)
                values[np.isinf(values)] = np.nan
                arrays.append(values)
                c += 1
            elif f.type == "int":
                arrays.append(pd.arrays.IntegerArray(column(c, np.int64), column(c + 1, bool)))
                c += 2
            else:
                arrays.append(pd.arrays.BooleanArray(column(c, bool), column(c + 1, bool)))
                c += 2
        out.append(JoinOutput(matched, arrays))
    return out


def _binary_array(raw: Any, code: str) -> "np.ndarray":
    """A one-dimensional PostgreSQL array in binary form without NULLs: a 20-byte header (ndim,
    flags, element type, length, lower bound), then per element a 4-byte length and the value."""
    import numpy as np

    view = memoryview(raw)
    ndim = int(np.frombuffer(view[:4], ">i4")[0])
    if ndim == 0:
        return np.empty(0, dtype=np.dtype(code).newbyteorder("="))
    n = int(np.frombuffer(view[12:16], ">i4")[0])
    body = np.frombuffer(view[20:], dtype=[("len", ">i4"), ("v", code)], count=n)
    return body["v"].astype(np.dtype(code).newbyteorder("="))


def _from_arrow(column: Any, kind: str) -> Any:
    """An Arrow column from the COPY output -> the same pandas array the SQLite path gives."""
    import numpy as np
    import pandas as pd

    column = column.combine_chunks()
    if kind == "float":
        return column.fill_null(float("nan")).to_numpy(zero_copy_only=False).astype(np.float64)
    null = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if kind == "int":
        return pd.arrays.IntegerArray(column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), null)
    if kind == "bool":
        return pd.arrays.BooleanArray(column.fill_null(False).to_numpy(zero_copy_only=False).astype(bool), null)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
