"""Feedback: ground truth for logged predictions, arriving late and sometimes corrected.

A label attaches to a ``prediction_id`` (every served prediction has one). Labels are never
overwritten: a later label for the same prediction and ``source`` is a *correction* (the newest
counts, the earlier one stays in the table with ``is_current`` cleared). The newest label from any
source is the one performance tracking uses (``is_latest``).

One call is one transaction, whatever its size: a dataset is streamed in chunks, each chunk checked
and written inside the same transaction, so a bad value anywhere leaves nothing written. ``actual``
is checked against the model's task before anything is written: a class the version knows (the
stored value is the class as the model returns it, so ``"1"``, ``1.0`` and ``1`` all become ``1``
for a 0/1 classifier, and ``true``, ``1`` and ``"TRUE"`` become ``True`` for a boolean one), or a
finite number for regression. Unknown prediction ids are reported and
skipped, never fatal.

Concurrency: on SQLite write transactions are ``BEGIN IMMEDIATE`` (writers queue); on PostgreSQL the
labels are staged first and then written under an advisory lock per model, so two writers labelling
the same prediction serialize and neither's correction is lost (partial unique indexes back this up).
"""

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import InvalidInput, NotFound, listing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.store import Store

MAX_ITEMS = 10_000
DATASET_CHUNK = 50_000
LOOKUP_CHUNK = 2_000
PG_LOOKUP_CHUNK = 10_000
UNKNOWN_SHOWN = 10
ID_COLUMN = "prediction_id"
ACTUAL_COLUMN = "actual"


@dataclass
class ModelKind:
    """What a version predicts, as far as labels are concerned."""

    task: str  # classification | regression
    classes: list[Any] | None = None
    _lookup: dict[Any, Any] = field(default_factory=dict, repr=False)
    _bools: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        for c in self.classes or []:
            self._lookup.setdefault(str(c), c)
        for c in self.classes or []:
            if not isinstance(c, bool):
                self._lookup[c] = c  # 1.0 and 1 hash alike: a float label finds an int class
        # Boolean classes (a model trained on a bool target): True/False, 1/0 and "true"/"false" in
        # any case all name them. True == 1 == 1.0 as dict keys, so one entry covers the numbers.
        self._bools = bool(self.classes) and all(isinstance(c, bool) for c in self.classes or [])
        if self._bools:
            for c in self.classes or []:
                for key in (c, str(c).lower(), str(int(c))):
                    self._lookup.setdefault(key, c)

    def canonical(self, value: Any) -> Any:
        """The label as stored, or raise ValueError saying what is accepted."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise ValueError("is missing")
        if hasattr(value, "item"):  # numpy scalars
            value = value.item()
        if self.task == "regression":
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not a number (the model is a regression)")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{value!r} is not a number (the model is a regression)") from None
            if not math.isfinite(number):
                raise ValueError(f"{value!r} is not a finite number")
            return number
        if not self.classes:
            return value if isinstance(value, str | int | float | bool) else str(value)
        try:
            found = self._lookup.get(value, _MISSING)
            if found is _MISSING and isinstance(value, str):
                found = self._lookup.get(value.strip().lower() if self._bools else value.strip(), _MISSING)
            if found is _MISSING and isinstance(value, float) and value.is_integer():
                found = self._lookup.get(str(int(value)), _MISSING)
        except TypeError:  # unhashable (a list, an object)
            found = _MISSING
        if found is _MISSING:
            raise ValueError(f"{value!r} is not a class the model knows; classes: {listing(self.classes)}")
        return found


_MISSING = object()


@dataclass
class FeedbackSummary:
    logged: int = 0
    corrected: int = 0
    unknown: int = 0
    unknown_ids: list[str] = field(default_factory=list)
    rows_read: int = 0
    by_model: dict[str, int] = field(default_factory=dict)

    def as_dict(self, source: str) -> dict[str, Any]:
        return {
            "logged": self.logged,
            "corrected": self.corrected,
            "unknown": self.unknown,
            "unknown_ids": self.unknown_ids,
            "rows_read": self.rows_read,
            "by_model": dict(sorted(self.by_model.items())),
            "source": source,
        }


# -- what a version predicts -----------------------------------------------------------------------
def version_kind(registry: "Registry | None", name: str, version: int, probabilities: Any = None, output: Any = None) -> ModelKind:
    """Task and classes of a version: from its registry tags and reference schema (cheap), else the
    loaded model; when the registry cannot say (model deleted), from a logged prediction."""
    if registry is not None:
        try:
            return _registry_kind(registry, name, version)
        except NotFound:
            pass
    if isinstance(probabilities, dict) and probabilities:
        return ModelKind("classification", [_unjson(k) for k in probabilities])
    if isinstance(output, float):
        return ModelKind("regression")
    return ModelKind("classification", None)  # classes unknown: any scalar label is accepted


def _registry_kind(registry: "Registry", name: str, version: int) -> ModelKind:
    from mlops_mcp.core.models.profile import read_schema
    from mlops_mcp.core.models.registry import TAG_TASK

    mv = registry.version(name, version)
    task = (mv.tags or {}).get(TAG_TASK)
    classes = None
    folder = registry.reference_dir(mv)
    if folder is not None:
        schema = read_schema(folder)
        task = task or schema.task
        classes = schema.classes
    if task is None or (task == "classification" and not classes):
        loaded = registry.load(mv)
        task, classes = loaded.task, loaded.classes
    return ModelKind(task, list(classes) if classes else None)


def _unjson(text: str) -> Any:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return text
    return value if isinstance(value, str | int | float | bool) else text


# -- reading the three input forms --------------------------------------------------------------
def iter_dataset(path: Path, chunk: int = DATASET_CHUNK, argument: str = "dataset") -> Iterator[tuple[list[Any], list[Any]]]:
    """(prediction_ids, actuals) chunks from a CSV or Parquet file, never the whole file at once.
    The file is opened once, as a regular file only (see ``open_regular``)."""
    from mlops_mcp.core.datasets import open_regular

    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise InvalidInput(f"unsupported file type '{suffix}'; accepted: .csv, .parquet", argument=argument)
    need = [ID_COLUMN, ACTUAL_COLUMN]
    with open_regular(path, argument) as fh:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(fh)
            except Exception as exc:
                raise InvalidInput(f"cannot read '{path.name}': {exc}", argument=argument) from exc
            names = pf.schema_arrow.names
            _check_columns(names, need, path, argument)
            for batch in pf.iter_batches(batch_size=chunk, columns=need):
                yield batch.column(0).to_pylist(), batch.column(1).to_pylist()
            return
        import pandas as pd

        try:
            header = pd.read_csv(fh, nrows=0).columns.tolist()
        except pd.errors.EmptyDataError as exc:
            raise InvalidInput(f"'{path.name}' is empty", argument=argument) from exc
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read '{path.name}': {exc}", argument=argument) from exc
        _check_columns(header, need, path, argument)
        fh.seek(0)
        reader = pd.read_csv(fh, usecols=need, dtype={ID_COLUMN: str}, chunksize=chunk)
        try:
            for frame in reader:
                yield frame[ID_COLUMN].tolist(), frame[ACTUAL_COLUMN].tolist()
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read '{path.name}': {exc}", argument=argument) from exc


def _check_columns(names: Sequence[str], need: Sequence[str], path: Path, argument: str) -> None:
    missing = [c for c in need if c not in names]
    if missing:
        raise InvalidInput(
            f"'{path.name}' has no column {listing(repr(m) for m in missing)}; it needs '{ID_COLUMN}' and '{ACTUAL_COLUMN}' "
            f"(columns: {listing(names, 40)})",
            argument=argument,
        )


def gather_input(
    prediction_id: str | None,
    actual: Any,
    items: Sequence[Any] | None,
    dataset: str | None,
    roots: Sequence[Path],
) -> tuple[str, Iterable[tuple[list[Any], list[Any]]]]:
    """Exactly one of the three forms -> (description, chunks of (ids, actuals))."""
    given = [n for n, v in (("prediction_id", prediction_id), ("items", items), ("dataset", dataset)) if v is not None]
    if len(given) != 1:
        what = "none of them" if not given else " and ".join(given)
        raise InvalidInput(
            f"give exactly one of: prediction_id + actual (one label), items (a list of "
            f"{{prediction_id, actual}}, up to {MAX_ITEMS:,}), or dataset (a CSV/Parquet file with "
            f"'{ID_COLUMN}' and '{ACTUAL_COLUMN}' columns); got {what}",
            argument=given[0] if given else "prediction_id",
        )
    if prediction_id is not None:
        if actual is None:
            raise InvalidInput("give the true value for this prediction (a class label or a number)", argument="actual")
        return "prediction_id", [([prediction_id], [actual])]
    if actual is not None:
        raise InvalidInput("'actual' goes with 'prediction_id'; with items or dataset each row carries its own", argument="actual")
    if items is not None:
        if not items:
            raise InvalidInput("items is empty; give at least one {prediction_id, actual}", argument="items")
        if len(items) > MAX_ITEMS:
            raise InvalidInput(f"{len(items):,} items is more than {MAX_ITEMS:,}; use a dataset file for more", argument="items")
        ids, actuals = [], []
        for i, item in enumerate(items):
            pid, act = (item.get("prediction_id"), item.get("actual")) if isinstance(item, dict) else (
                getattr(item, "prediction_id", None), getattr(item, "actual", None))
            ids.append(pid)
            actuals.append(act)
        return "items", [(ids, actuals)]
    from mlops_mcp.core.datasets import resolve_path

    path = resolve_path(dataset or "", roots, suffixes=(".csv", ".parquet", ".pq"))
    return "dataset", iter_dataset(path)


# -- writing --------------------------------------------------------------------------------------
def log_feedback(
    store: "Store",
    registry: "Registry | None",
    chunks: Iterable[tuple[list[Any], list[Any]]],
    *,
    source: str = "user",
    comment: str | None = None,
    actor: str = "unknown",
    form: str = "items",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write labels in one transaction; returns counts (logged, corrected, unknown ids)."""
    if not isinstance(source, str) or not source.strip() or len(source) > 64:
        raise InvalidInput("give a short name for where labels come from (1-64 characters), e.g. 'user'", argument="source")
    now = now or datetime.now(UTC)
    summary = FeedbackSummary()
    kinds: dict[tuple[str, int], ModelKind] = {}
    offset = 0
    with store.write() as session:
        writer: _SqliteWriter | _PostgresWriter = (
            _SqliteWriter(session, source) if store.is_sqlite else _PostgresWriter(session, store, source, comment, actor, now)
        )
        for ids, actuals in chunks:
            base = offset
            offset += len(ids)
            summary.rows_read += len(ids)
            ids = [_clean_id(pid, base + i, form) for i, pid in enumerate(ids)]
            known, samples = _lookup_predictions(session, store, sorted(set(ids)))
            for key, (probabilities, output) in samples.items():
                if key not in kinds:
                    kinds[key] = version_kind(registry, key[0], key[1], probabilities, output)
            records: list[dict[str, Any]] = []
            last_index: dict[str, int] = {}
            for i, (pid, act) in enumerate(zip(ids, actuals)):
                pred = known.get(pid)
                if pred is None:
                    summary.unknown += 1
                    if len(summary.unknown_ids) < UNKNOWN_SHOWN and pid not in summary.unknown_ids:
                        summary.unknown_ids.append(pid)
                    continue
                name, version, predicted_at, output, score, probabilities = pred
                kind = kinds[(name, version)]
                if not (kind.classes and len(kind.classes) > 2):
                    probabilities = None  # kept for multiclass metrics only (binary: score suffices)
                try:
                    value = kind.canonical(act)
                except ValueError as exc:
                    where = "" if form == "prediction_id" else f"{_where(form, base + i)}, "
                    raise InvalidInput(
                        f"{where}prediction {pid} ({name} v{version}): actual {exc}; nothing was written",
                        argument="actual" if form == "prediction_id" else form,
                    ) from None
                last_index[pid] = len(records)  # the same prediction twice in one call: the later one wins
                records.append(
                    {
                        "prediction_id": pid, "model": name, "version": version, "actual": value,
                        "source": source, "comment": comment, "is_current": False, "is_latest": False,
                        "actor": actor, "created_at": now, "predicted_at": predicted_at, "output": output,
                        "score": score, "probabilities": probabilities,
                    }
                )
            if not records:
                continue
            summary.corrected += writer.add(records, last_index)
            summary.logged += len(records)
            for r in records:
                key = f"{r['model']}/{r['version']}"
                summary.by_model[key] = summary.by_model.get(key, 0) + 1
        if summary.rows_read == 0:
            raise InvalidInput("the file has no rows", argument="dataset")
        summary.corrected += writer.finish()
    return summary.as_dict(source)


class _SqliteWriter:
    """Per chunk: earlier labels of these predictions are superseded (same source -> corrected,
    any source -> no longer latest), then the chunk is inserted. SQLite serialises writers with
    its single write lock (``BEGIN IMMEDIATE``), held for the whole call."""

    def __init__(self, session: "Session", source: str) -> None:
        self.session = session
        self.source = source

    def add(self, records: list[dict[str, Any]], last_index: dict[str, int]) -> int:
        """Write one chunk; returns how many earlier labels it corrected."""
        from sqlalchemy import select, update

        from mlops_mcp.core.store.tables import Feedback

        session = self.session
        for j in last_index.values():
            records[j]["is_current"] = records[j]["is_latest"] = True
        labelled = sorted(last_index)
        superseded_current: list[int] = []
        superseded_latest: list[int] = []
        for part in _chunks(labelled, LOOKUP_CHUNK):
            rows = session.execute(
                select(Feedback.id, Feedback.source, Feedback.is_current, Feedback.is_latest).where(
                    Feedback.prediction_id.in_(part), (Feedback.is_current == True) | (Feedback.is_latest == True)  # noqa: E712
                )
            ).all()
            for fid, src, cur, lat in rows:
                if cur and src == self.source:
                    superseded_current.append(fid)
                if lat:
                    superseded_latest.append(fid)
        for part in _chunks(superseded_current, LOOKUP_CHUNK):
            session.execute(update(Feedback).where(Feedback.id.in_(part)).values(is_current=False))
        for part in _chunks(superseded_latest, LOOKUP_CHUNK):
            session.execute(update(Feedback).where(Feedback.id.in_(part)).values(is_latest=False))
        _insert_sqlite(session, records)
        return len(superseded_current) + len(records) - len(last_index)

    def finish(self) -> int:
        return 0


_STAGING = "mlops_feedback_staging"


class _PostgresWriter:
    """Set-based on PostgreSQL: every chunk is COPYed into a temporary table (no lock held), then
    one UPDATE supersedes the earlier labels and one INSERT ... SELECT writes them all, under an
    advisory lock per model taken in a fixed order. Labels of one prediction belong to one model,
    so two calls labelling the same prediction queue on that lock and neither loses a correction;
    no prediction row is locked (they are never changed). Row-by-row ``FOR UPDATE`` locks and
    per-chunk statements cost 70 s for 120k labels; this costs about what SQLite does."""

    COLUMNS = "seq, prediction_id, model, version, actual, predicted_at, output, score, probabilities"

    def __init__(self, session: "Session", store: "Store", source: str, comment: str | None, actor: str, now: datetime) -> None:
        self.session = session
        self.store = store
        self.params = {"source": source, "comment": comment, "actor": actor, "now": now}
        self.cursor = session.connection().connection.cursor()
        self.cursor.execute(
            f"CREATE TEMP TABLE {_STAGING} (seq bigint, prediction_id text, model text, version integer, actual text, "
            "predicted_at timestamptz, output text, score double precision, probabilities text) ON COMMIT DROP"
        )
        self.seq = 0

    def add(self, records: list[dict[str, Any]], last_index: dict[str, int]) -> int:
        with self.cursor.copy(f"COPY {_STAGING} ({self.COLUMNS}) FROM STDIN") as copy:
            for r in records:
                copy.write_row((
                    self.seq, r["prediction_id"], r["model"], r["version"], json.dumps(r["actual"]), r["predicted_at"],
                    r["output"], r["score"], r["probabilities"],
                ))
                self.seq += 1
        return 0

    def finish(self) -> int:
        """Supersede and insert everything staged; returns the number of corrections."""
        cur = self.cursor
        try:
            if self.seq == 0:
                return 0
            cur.execute(f"ANALYZE {_STAGING}")
            models = [m for (m,) in cur.execute(f"SELECT DISTINCT model FROM {_STAGING}").fetchall()]
            self.store.hold(self.session, *(f"mlops.feedback:{m}" for m in models))
            labelled = f"(SELECT DISTINCT prediction_id FROM {_STAGING}) s"
            cur.execute(
                f"UPDATE feedback f SET is_current = false FROM {labelled} "
                "WHERE f.prediction_id = s.prediction_id AND f.is_current AND f.source = %(source)s",
                self.params,
            )
            corrected = cur.rowcount
            cur.execute(
                f"UPDATE feedback f SET is_latest = false FROM {labelled} WHERE f.prediction_id = s.prediction_id AND f.is_latest"
            )
            cur.execute(
                "INSERT INTO feedback (prediction_id, model, version, actual, source, comment, is_current, is_latest, actor, "
                "created_at, predicted_at, output, score, probabilities) "
                "SELECT prediction_id, model, version, actual::json, %(source)s, %(comment)s, rn = 1, rn = 1, %(actor)s, "
                "%(now)s, predicted_at, output::json, score, probabilities::json FROM ("
                f"SELECT *, row_number() OVER (PARTITION BY prediction_id ORDER BY seq DESC) AS rn FROM {_STAGING}) t "
                "ORDER BY seq",
                self.params,
            )
            (repeated,) = cur.execute(f"SELECT count(*) - count(DISTINCT prediction_id) FROM {_STAGING}").fetchone()
            return corrected + int(repeated)
        finally:
            cur.close()


def _where(form: str, index: int) -> str:
    if form == "dataset":
        return f"row {index + 1} of the dataset"
    if form == "items":
        return f"items[{index}]"
    return "the label"


def _clean_id(pid: Any, index: int, form: str) -> str:
    if isinstance(pid, str) and pid.strip() and len(pid.strip()) <= 64:
        return pid.strip()
    if isinstance(pid, int) and not isinstance(pid, bool):
        return str(pid)
    raise InvalidInput(
        f"{_where(form, index)}: prediction_id {pid!r} is not an id; give the prediction_id that predict returned "
        "(32 hex characters); nothing was written",
        argument="prediction_id" if form == "prediction_id" else form,
    )


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _lookup_predictions(
    session: "Session", store: "Store", ids: list[str]
) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[str, int], tuple[Any, Any]]]:
    """(id -> (model, version, created_at, output, score, probabilities) of the predictions that
    exist, (model, version) -> (probabilities, output) of one of its predictions, decoded).

    On SQLite the values stay in their stored form (UTC text, JSON text) and go back in as they
    are (see :func:`_insert_sqlite`): SQLAlchemy's per-value processing would cost seconds per
    100,000 labels. On PostgreSQL the same, with JSON read as text (it goes back in by COPY) and
    nothing locked: predictions never change, and writers of one model's labels queue on its
    advisory lock (see :class:`_PostgresWriter`)."""
    found: dict[str, tuple[Any, ...]] = {}
    samples: dict[tuple[str, int], tuple[Any, Any]] = {}
    if store.is_sqlite:
        cursor = session.connection().connection.cursor()
        try:
            for part in _chunks(ids, LOOKUP_CHUNK):
                marks = ",".join("?" * len(part))
                cursor.execute(
                    "SELECT id, model, version, created_at, output, score, probabilities FROM predictions "
                    f"WHERE id IN ({marks})",
                    list(part),
                )
                for pid, name, version, created_at, output, score, probs in cursor.fetchall():
                    found[pid] = (name, version, created_at, output, score, probs)
                    if (name, version) not in samples:
                        samples[(name, version)] = (_loads(probs), _loads(output))
        finally:
            cursor.close()
        return found, samples
    cursor = session.connection().connection.cursor()
    try:
        for part in _chunks(ids, PG_LOOKUP_CHUNK):
            cursor.execute(
                "SELECT id, model, version, created_at, output::text, score, probabilities::text FROM predictions "
                "WHERE id = ANY(%s)",
                (list(part),),
            )
            for pid, name, version, created_at, output, score, probs in cursor.fetchall():
                found[pid] = (name, version, created_at, output, score, probs)
                if (name, version) not in samples:
                    samples[(name, version)] = (_loads(probs), _loads(output))
    finally:
        cursor.close()
    return found, samples


def _loads(text: Any) -> Any:
    """A JSON value as SQLite returns it (its NUMERIC affinity turns '1' into the integer 1)."""
    return json.loads(text) if isinstance(text, str) else text


_SQLITE_COLUMNS = (
    "prediction_id", "model", "version", "actual", "source", "comment", "is_current", "is_latest", "actor",
    "created_at", "predicted_at", "output", "score", "probabilities",
)


def _insert_sqlite(session: "Session", records: list[dict[str, Any]]) -> None:
    """executemany on the DBAPI cursor, inside the session's transaction. Values are stored the way
    SQLAlchemy stores them on SQLite (JSON text, UTC 'YYYY-MM-DD HH:MM:SS.ffffff', 0/1), and the
    copied prediction fields are already in stored form."""
    stamp = records[0]["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = [
        (
            r["prediction_id"], r["model"], r["version"], json.dumps(r["actual"]), r["source"], r["comment"],
            int(r["is_current"]), int(r["is_latest"]), r["actor"], stamp, r["predicted_at"], r["output"],
            r["score"], r["probabilities"],
        )
        for r in records
    ]
    sql = f"INSERT INTO feedback ({', '.join(_SQLITE_COLUMNS)}) VALUES ({', '.join('?' * len(_SQLITE_COLUMNS))})"
    cursor = session.connection().connection.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def feedback_history(store: "Store", prediction_id: str) -> list[dict[str, Any]]:
    """Every label of one prediction, oldest first (corrections included)."""
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import Feedback

    with store.read() as session:
        rows = session.scalars(select(Feedback).where(Feedback.prediction_id == prediction_id).order_by(Feedback.id)).all()
    return [
        {
            "actual": r.actual, "source": r.source, "comment": r.comment, "is_current": bool(r.is_current),
            "is_latest": bool(r.is_latest), "actor": r.actor, "at": r.created_at,
        }
        for r in rows
    ]

