"""Rollups: the counts and sums behind /metrics and ``get_model_health``, kept in the store.

Why here and not in process memory: several server processes (stdio servers launched by hosts,
HTTP replicas behind a load balancer, the ``mlops-mcp exporter``) share one store, and each must
report the same, complete numbers. Why pre-aggregated: a scrape must not count a million
predictions. So every write that Prometheus counts also adds to a few rows of ``metric_rollups``,
in the same transaction (nothing counted that was not written, nothing written that is not
counted): an all-time row (``hour = 0``, what counters expose) and, for the series health reads
over a window, the row of the UTC hour.

Series (``n``, ``s1``, ``s2`` per row; every series is a sum, so rows add up across shards):

=============  ===========================================  ===============================
series         labels                                       n / s1 / s2
=============  ===========================================  ===============================
pred           model, version, label=variant (alias, arm)   predicted rows
req_lat        model, bucket (latency)                      requests / seconds
pred_err       model ('' = not a model), label=reason       failed requests
tool           label=tool, outcome (ok, error, internal)    calls
tool_lat       label=tool, bucket (latency)                 calls / seconds
labels         model, version                               labels written (corrections too)
labeled        model, version (hour = prediction's hour)    predictions with a label
quality        model, version, label=task (prediction hr)   labeled / correct or |err| / 0 or err^2
label_lag      model, bucket (lag)                          first labels / seconds
ab_arm         model, version=experiment id, label=arm      predictions assigned
shadow         model, version=experiment id, label=task     compared / agreeing or |diff|
shadow_err     model, version=experiment id                 rows the shadow failed on
=============  ===========================================  ===============================

A correction of a label adds the difference (new outcome - old outcome) to the prediction's hour,
so ``quality`` always equals the outcome of each prediction's newest label.
"""

import json
import random
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from mlops_mcp.core.experiments.live import row_outcome

PRED, REQ_LATENCY, PRED_ERR = "pred", "req_lat", "pred_err"
TOOL, TOOL_LATENCY = "tool", "tool_lat"
LABELS, LABELED, QUALITY, LABEL_LAG = "labels", "labeled", "quality", "label_lag"
AB_ARM, SHADOW, SHADOW_ERR = "ab_arm", "shadow", "shadow_err"
#: series that also keep hourly rows (read over a window by get_model_health and the live metric)
HOURLY = frozenset({PRED, REQ_LATENCY, PRED_ERR, LABELED, QUALITY})
#: series rebuilt from the store's tables by :func:`rebuild` (tool calls exist nowhere else)
DERIVED = (PRED, REQ_LATENCY, LABELS, LABELED, QUALITY, LABEL_LAG, AB_ARM, SHADOW, SHADOW_ERR)

#: request latency buckets (seconds, upper bounds; +Inf is the last bucket): 1 ms .. 2.5 s
LATENCY_BOUNDS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: label lag buckets (seconds): a minute .. 30 days
LAG_BOUNDS: tuple[float, ...] = (60, 300, 900, 3600, 21600, 86400, 259200, 604800, 2592000)
#: hourly rows older than this are deleted by the writers (all-time rows are kept)
RETENTION_HOURS = 35 * 24
#: hot rows (a model's prediction count) are spread over this many keys on PostgreSQL
PG_SHARDS = 4

ALL_TIME = 0
_KEY = ("series", "hour", "model", "version", "label", "outcome", "bucket")
Key = tuple[str, int, str, int, str, str, int]


def hour_of(when: datetime | float) -> int:
    """Whole hours since 1970-01-01 UTC (a datetime or epoch seconds)."""
    seconds = when.timestamp() if isinstance(when, datetime) else float(when)
    return int(seconds // 3600)


def hour_of_stored(value: Any, cache: dict[str, int] | None = None) -> int:
    """:func:`hour_of` for a time as the store returns it (a datetime, or SQLite's UTC text
    'YYYY-MM-DD HH:MM:SS.ffffff'); ``cache`` keyed by the text's hour prefix saves the parsing."""
    if isinstance(value, datetime):
        return hour_of(value if value.tzinfo else value.replace(tzinfo=UTC))
    text = str(value)
    prefix = text[:13]
    if cache is not None and prefix in cache:
        return cache[prefix]
    hour = hour_of(datetime.fromisoformat(prefix + ":00:00").replace(tzinfo=UTC))
    if cache is not None:
        cache[prefix] = hour
    return hour


def seconds_of_stored(value: Any, cache: dict[str, int] | None = None) -> float:
    """Epoch seconds of a time as the store returns it; SQLite's text is read field by field
    (a tenth of ``fromisoformat``'s cost), its hour through ``cache``."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    text = str(value)
    try:
        return hour_of_stored(text, cache) * 3600 + int(text[14:16]) * 60 + float(text[17:])
    except ValueError:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def bucket_of(value: float, bounds: Sequence[float]) -> int:
    """Index of the first bound >= value (Prometheus' ``le``); ``len(bounds)`` is +Inf."""
    return bisect_left(bounds, value)


class Tally:
    """Increments to write in one statement. Keys are the row labels without the shard."""

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: dict[Key, list[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.cells)

    def __len__(self) -> int:
        return len(self.cells)

    def add(
        self,
        series: str,
        *,
        model: str = "",
        version: int = 0,
        label: str = "",
        outcome: str = "",
        bucket: int = -1,
        hour: int | None = None,
        n: float = 1.0,
        s1: float = 0.0,
        s2: float = 0.0,
    ) -> None:
        """Add to the all-time row and, for hourly series given an ``hour``, to that hour's row."""
        model, label, outcome = (model or "")[:256], (label or "")[:64], (outcome or "")[:32]
        self._add((series, ALL_TIME, model, int(version or 0), label, outcome, bucket), n, s1, s2)
        if hour is not None and series in HOURLY:
            self._add((series, int(hour), model, int(version or 0), label, outcome, bucket), n, s1, s2)

    def observe(self, series: str, value: float, bounds: Sequence[float], **labels: Any) -> None:
        """One observation of a histogram series: its bucket's count and the sum of values."""
        self.add(series, bucket=bucket_of(value, bounds), n=1.0, s1=float(value), **labels)

    def merge(self, other: "Tally") -> None:
        for key, (n, s1, s2) in other.cells.items():
            self._add(key, n, s1, s2)

    def _add(self, key: Key, n: float, s1: float, s2: float) -> None:
        cell = self.cells.get(key)
        if cell is None:
            self.cells[key] = [n, s1, s2]
        else:
            cell[0] += n
            cell[1] += s1
            cell[2] += s2


# -- writing ------------------------------------------------------------------------------------------
_COLUMNS = (*_KEY, "shard", "n", "s1", "s2")
_SQL_CACHE: dict[tuple[int, bool], str] = {}
_MAX_ROWS_PER_STATEMENT = 200


def _upsert_sql(rows: int, sqlite: bool) -> str:
    key = (rows, sqlite)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        mark = "?" if sqlite else "%s"
        one = "(" + ", ".join([mark] * len(_COLUMNS)) + ")"
        conflict = ", ".join((*_KEY, "shard"))
        sql = (
            f"INSERT INTO metric_rollups ({', '.join(_COLUMNS)}) VALUES {', '.join([one] * rows)} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET n = metric_rollups.n + excluded.n, "
            "s1 = metric_rollups.s1 + excluded.s1, s2 = metric_rollups.s2 + excluded.s2"
        )
        _SQL_CACHE[key] = sql
    return sql


def write(connection: Any, tally: Tally, sqlite: bool, shard: int | None = None) -> None:
    """Add ``tally`` to the store inside the caller's transaction (``connection``: a SQLAlchemy
    Connection). Rows go in sorted key order, so concurrent writers lock them in the same order
    (no deadlock on PostgreSQL). ``shard=None``: one random shard on PostgreSQL, 0 on SQLite."""
    if not tally:
        return
    if shard is None:
        shard = 0 if sqlite else random.randrange(PG_SHARDS)
    rows = sorted(tally.cells.items())
    for start in range(0, len(rows), _MAX_ROWS_PER_STATEMENT):
        part = rows[start : start + _MAX_ROWS_PER_STATEMENT]
        params: list[Any] = []
        for key, (n, s1, s2) in part:
            params.extend(key)
            params.extend((shard, n, s1, s2))
        connection.exec_driver_sql(_upsert_sql(len(part), sqlite), tuple(params))


def prune(connection: Any, now_hour: int, sqlite: bool) -> int:
    """Delete hourly rows older than :data:`RETENTION_HOURS` (all-time rows stay)."""
    mark = "?" if sqlite else "%s"
    result = connection.exec_driver_sql(
        f"DELETE FROM metric_rollups WHERE hour > 0 AND hour < {mark}", (now_hour - RETENTION_HOURS,)
    )
    return int(result.rowcount or 0)


# -- reading --------------------------------------------------------------------------------------------
def fetch(store: Any, series: Iterable[str], since_hour: int | None = None, model: str | None = None) -> list[tuple[Any, ...]]:
    """Rows summed over shards: all-time rows (``since_hour`` None) as (series, model, version,
    label, outcome, bucket, n, s1, s2), or hourly rows from ``since_hour`` on with the hour after
    the series: (series, hour, model, ...)."""
    names = list(series)
    mark = "?" if store.is_sqlite else "%s"
    marks = ", ".join([mark] * len(names))
    params: list[Any] = list(names)
    if since_hour is None:
        where = f"series IN ({marks}) AND hour = 0"
        cols = "series, model, version, label, outcome, bucket"
    else:
        where = f"series IN ({marks}) AND hour >= {mark}"
        params.append(int(since_hour))
        cols = "series, hour, model, version, label, outcome, bucket"
    if model is not None:
        where += f" AND model = {mark}"
        params.append(model)
    sql = f"SELECT {cols}, SUM(n), SUM(s1), SUM(s2) FROM metric_rollups WHERE {where} GROUP BY {cols}"
    return raw_query(store, sql, params)


def raw_query(store: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run on the DBAPI cursor (SQLAlchemy's Row objects cost more than the query here)."""
    with store.read() as session:
        cursor = session.connection().connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return cursor.fetchall()
        finally:
            cursor.close()


# -- what one label or shadow row adds ------------------------------------------------------------------------
def decode(value: Any) -> Any:
    """A JSON column's value as the DBAPI returns it (SQLite: text, or a number its NUMERIC
    affinity made of the text; PostgreSQL: already decoded)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def label_sums(task: str, output: Any, actual: Any) -> tuple[float, float]:
    """(s1, s2) one labeled prediction adds to ``quality``: (1 if right else 0, 0) for a
    classifier, (|error|, error^2) for a regression; the same outcomes live A/B tests use."""
    if task == "regression":
        try:
            err = abs(float(output) - float(actual))
        except (TypeError, ValueError):
            return (0.0, 0.0)
        return (err, err * err)
    if type(output) is type(actual):  # the common case: the label as the model returns it
        return (1.0 if output == actual else 0.0, 0.0)
    return (float(row_outcome("accuracy", output, None, actual) or 0.0), 0.0)


class LabelCounter:
    """What labels add to ``labeled``, ``quality`` and ``label_lag``, summed per key first (a
    feedback call may carry 100,000 labels: one dictionary update each, not three rows)."""

    __slots__ = ("hours", "lag", "labeled", "quality")

    def __init__(self) -> None:
        self.hours: dict[str, int] = {}
        self.quality: dict[tuple[str, int, str, int], list[float]] = {}
        self.labeled: dict[tuple[str, int, int], float] = {}
        self.lag: dict[tuple[str, int], list[float]] = {}

    def first(self, model: str, version: int, task: str, predicted_at: Any, output: Any, actual: Any, labeled_at: float) -> None:
        """A prediction's first label: counted, its outcome summed, its lag observed."""
        hour = hour_of_stored(predicted_at, self.hours)
        s1, s2 = label_sums(task, output, actual)
        cell = self.quality.setdefault((model, version, task, hour), [0.0, 0.0, 0.0])
        cell[0] += 1.0
        cell[1] += s1
        cell[2] += s2
        key = (model, version, hour)
        self.labeled[key] = self.labeled.get(key, 0.0) + 1.0
        lag = max(0.0, labeled_at - seconds_of_stored(predicted_at, self.hours))
        lag_cell = self.lag.setdefault((model, bucket_of(lag, LAG_BOUNDS)), [0.0, 0.0])
        lag_cell[0] += 1.0
        lag_cell[1] += lag

    def correction(self, model: str, version: int, task: str, predicted_at: Any, output: Any, old: Any, new: Any) -> None:
        """A newer label replaces ``old``: the outcome changes by new - old (nothing else does)."""
        n1, n2 = label_sums(task, output, new)
        o1, o2 = label_sums(task, output, old)
        if (n1, n2) != (o1, o2):
            cell = self.quality.setdefault((model, version, task, hour_of_stored(predicted_at, self.hours)), [0.0, 0.0, 0.0])
            cell[1] += n1 - o1
            cell[2] += n2 - o2

    def into(self, tally: Tally) -> Tally:
        for (model, version, task, hour), (n, s1, s2) in self.quality.items():
            tally.add(QUALITY, model=model, version=version, label=task, hour=hour, n=n, s1=s1, s2=s2)
        for (model, version, hour), n in self.labeled.items():
            tally.add(LABELED, model=model, version=version, hour=hour, n=n)
        for (model, bucket), (n, total) in self.lag.items():
            tally.add(LABEL_LAG, model=model, bucket=bucket, n=n, s1=total)
        return tally


def shadow_sums(task: str, primary: Any, shadow: Any) -> float:
    """What one compared shadow row adds to ``shadow`` s1: 1/0 agreement, or |shadow - primary|."""
    if task == "regression":
        diff = row_outcome("mae", shadow, None, primary)
        return 0.0 if diff is None else float(diff)
    return float(row_outcome("accuracy", shadow, None, primary) or 0.0)


# -- rebuilding from the tables (migration, benchmarks) ------------------------------------------------
def _hour_sql(column: str, sqlite: bool) -> str:
    if sqlite:
        return f"(CAST(strftime('%s', {column}) AS INTEGER) / 3600)"
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) / 3600) AS INTEGER)"


def _stream(connection: Any, sql: str, params: Sequence[Any] = (), size: int = 20_000) -> Iterator[tuple[Any, ...]]:
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        while True:
            rows = cursor.fetchmany(size)
            if not rows:
                return
            yield from rows
    finally:
        cursor.close()


def rebuild(connection: Any, sqlite: bool) -> int:
    """Recompute every series that the store's tables determine (all but tool calls and
    prediction errors, which exist only as rollups) from predictions, feedback and shadow rows.

    Used by the migration that introduced rollups (stores with history get complete counters) and
    by the benchmarks (bulk-loaded data). A request is counted as 1 / batch size per logged row
    (the rows of a request share its latency and size). Returns the number of rows written."""
    mark = "?" if sqlite else "%s"
    hour = _hour_sql("created_at", sqlite)
    names = ", ".join(f"'{s}'" for s in DERIVED)
    connection.exec_driver_sql(f"DELETE FROM metric_rollups WHERE series IN ({names})")
    tally = Tally()
    for model, version, variant, h, count in _stream(
        connection,
        f"SELECT model, version, COALESCE(variant, ''), {hour}, COUNT(*) FROM predictions GROUP BY model, version, COALESCE(variant, ''), {hour}",
    ):
        tally.add(PRED, model=model, version=version, label=variant, hour=int(h), n=float(count))
    # the latency histogram in SQL (the same comparison, latency_ms / 1000 <= bound, as the live path)
    bucket_sql = "CASE " + " ".join(
        f"WHEN latency_ms / 1000.0 <= {bound!r} THEN {i}" for i, bound in enumerate(LATENCY_BOUNDS)
    ) + f" ELSE {len(LATENCY_BOUNDS)} END"
    for model, h, bucket, requests, seconds in _stream(
        connection,
        f"SELECT model, {hour}, {bucket_sql}, SUM(1.0 / batch_size), SUM(latency_ms / 1000.0 / batch_size) "
        f"FROM predictions GROUP BY model, {hour}, {bucket_sql}",
    ):
        tally.add(REQ_LATENCY, model=model, hour=int(h), bucket=int(bucket), n=round(float(requests), 6), s1=float(seconds))
    for model, experiment, arm, count in _stream(
        connection,
        "SELECT model, experiment_id, COALESCE(variant, ''), COUNT(*) FROM predictions WHERE experiment_id IS NOT NULL "
        "GROUP BY model, experiment_id, COALESCE(variant, '')",
    ):
        tally.add(AB_ARM, model=model, version=int(experiment), label=arm, n=float(count))
    for model, version, count in _stream(connection, "SELECT model, version, COUNT(*) FROM feedback GROUP BY model, version"):
        tally.add(LABELS, model=model, version=version, n=float(count))

    tasks: dict[tuple[str, int], str] = {}

    def task_of(model: str, version: int) -> str:
        key = (model, version)
        if key not in tasks:
            row = next(
                _stream(connection, f"SELECT probabilities, output FROM predictions WHERE model = {mark} AND version = {mark} LIMIT 1", (model, version)),
                None,
            )
            probs, out = (None, None) if row is None else (decode(row[0]), decode(row[1]))
            tasks[key] = "regression" if probs is None and isinstance(out, float) else "classification"
        return tasks[key]

    counter = LabelCounter()
    latest = "f.is_latest = 1" if sqlite else "f.is_latest"
    for model, version, predicted_at, first_at, output, actual in _stream(
        connection,
        "SELECT f.model, f.version, f.predicted_at, m.first_at, f.output, f.actual FROM feedback f JOIN "
        "(SELECT prediction_id, MIN(created_at) AS first_at FROM feedback GROUP BY prediction_id) m "
        f"ON m.prediction_id = f.prediction_id WHERE {latest}",
    ):
        version = int(version)
        labeled_at = seconds_of_stored(first_at, counter.hours)
        counter.first(model, version, task_of(model, version), predicted_at, decode(output), decode(actual), labeled_at)
    counter.into(tally)

    shadow_tasks = dict(_stream(connection, "SELECT id, task FROM experiments WHERE kind = 'shadow'"))
    for model, experiment, s_out, error, p_out in _stream(
        connection,
        "SELECT s.model, s.experiment_id, s.output, s.error, p.output FROM shadow_predictions s "
        "JOIN predictions p ON p.id = s.prediction_id",
    ):
        if error is not None:
            tally.add(SHADOW_ERR, model=model, version=int(experiment))
            continue
        task = shadow_tasks.get(experiment, "classification")
        tally.add(SHADOW, model=model, version=int(experiment), label=task, s1=shadow_sums(task, decode(p_out), decode(s_out)))
    write(connection, tally, sqlite, shard=0)
    return len(tally)
