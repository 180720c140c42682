"""Reading the online store: per key and feature a value, its event time, its age and a status.

The TTL is enforced here, when the value is read (Feast's online store does not): a row whose age
now exceeds the view's TTL is OUTSIDE_MAX_AGE and its value is withheld, because the training join
would not have used a row that old either (``entity_ts - ttl <= event_ts``). The same function
feeds get_online_features and predict(entity_keys=...).
"""

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import InvalidInput, listing
from mlops_mcp.core.features.catalog import ViewVersion, now_micros, to_datetime
from mlops_mcp.core.features.definitions import Column, FeatureRef, ViewDefinition, parse_refs

if TYPE_CHECKING:
    from mlops_mcp.core.features.results import OnlineFeatures
    from mlops_mcp.core.store import Store

MAX_KEYS = 1000


@dataclass
class Cell:
    value: Any
    status: str
    event_us: int | None
    age_seconds: float | None


class ViewCache:
    """View versions by id (a version never changes, so the cache needs no invalidation) and the
    SQL of their online reads; one small query per read finds each view's current version."""

    def __init__(self) -> None:
        self._versions: dict[int, ViewVersion] = {}
        self._lock = threading.Lock()

    def current(self, conn: Any, names: list[str], argument: str) -> dict[str, ViewVersion]:
        """name (lower-cased) -> its current version."""
        marks = _marks(conn, len(names))
        rows = conn.exec_driver_sql(
            "SELECT v.name_key, vv.id FROM feature_views v JOIN feature_view_versions vv "
            f"ON vv.view_id = v.id AND vv.version = v.current_version WHERE v.name_key IN ({marks})",
            tuple(n.lower() for n in names),
        ).all()
        found = {key: int(vid) for key, vid in rows}
        missing = [n for n in names if n.lower() not in found]
        if missing:
            existing = [r[0] for r in conn.exec_driver_sql("SELECT name FROM feature_views ORDER BY name_key").all()]
            raise InvalidInput(f"no feature view '{missing[0]}'; views: {listing(existing)}", argument=argument)
        out = {}
        for key, vid in found.items():
            with self._lock:
                vv = self._versions.get(vid)
            if vv is None:
                vv = _load_version(conn, vid)
                with self._lock:
                    self._versions[vid] = vv
            out[key] = vv
        return out


def _load_version(conn: Any, version_id: int) -> ViewVersion:
    import json

    from mlops_mcp.core.features.catalog import _utc

    row = conn.exec_driver_sql(
        "SELECT v.id, v.name, vv.version, vv.id, v.current_version, vv.definition, vv.source, vv.created_at, vv.created_by "
        f"FROM feature_views v JOIN feature_view_versions vv ON vv.view_id = v.id WHERE vv.id = {int(version_id)}"
    ).one()
    definition = row[5] if isinstance(row[5], dict) else json.loads(row[5])
    created = row[7]
    if isinstance(created, str):
        from datetime import datetime

        created = datetime.fromisoformat(created)
    return ViewVersion(
        view_id=row[0], name=row[1], version=row[2], version_id=row[3], current_version=row[4],
        definition=ViewDefinition.from_json(definition), source=row[6], created_at=_utc(created),  # type: ignore[arg-type]
        created_by=row[8], materialized_seq=0, materialized_until=None, materialized_at=None,
        description=None, owner=None, tags={},
    )


def _marks(conn: Any, n: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * n)


# -- keys -------------------------------------------------------------------------------------------
def key_columns(views: list[ViewVersion]) -> dict[str, str]:
    """Every key column the views need -> its type (views must agree)."""
    out: dict[str, str] = {}
    for vv in views:
        for e in vv.definition.entities:
            if out.setdefault(e.name, e.type) != e.type:
                raise InvalidInput(
                    f"key '{e.name}' is {e.type} in view '{vv.name}' but {out[e.name]} in another view", argument="features"
                )
    return out


def parse_keys(entity_keys: Any, keys: dict[str, str], argument: str = "entity_keys") -> list[dict[str, Any]]:
    """``[7, 8]`` or ``["BOS"]`` when one key column is needed, else ``[{"team": "BOS", "season": 2024}]``;
    values must have the key's type (text keys as strings, integer keys as integers)."""
    if not isinstance(entity_keys, list) or not entity_keys:
        raise InvalidInput(f"give a non-empty list of keys, e.g. {_example(keys)}", argument=argument)
    if len(entity_keys) > MAX_KEYS:
        raise InvalidInput(f"{len(entity_keys)} keys is more than the {MAX_KEYS} one call accepts", argument=argument)
    names = list(keys)
    out = []
    for i, item in enumerate(entity_keys):
        if not isinstance(item, dict):
            if len(names) != 1:
                raise InvalidInput(
                    f"key {i}: these features need the keys {listing(names)}; give objects, e.g. {_example(keys)}", argument=argument
                )
            item = {names[0]: item}
        extra = sorted(set(item) - set(names))
        missing = [n for n in names if n not in item]
        if extra or missing:
            parts = ([f"missing {listing(missing)}"] if missing else []) + ([f"unknown {listing(extra)}"] if extra else [])
            raise InvalidInput(f"key {i}: {'; '.join(parts)}; the key columns are {listing(names)}", argument=argument)
        for name, kind in keys.items():
            value = item[name]
            ok = isinstance(value, str) if kind == "string" else (
                isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
            )
            if not ok:
                shown = "text (a JSON string)" if kind == "string" else "a 64-bit integer"
                raise InvalidInput(f"key {i}: '{name}' is {kind}, so give {shown}; got {value!r}", argument=argument)
            if kind == "string" and len(value) > 1024:
                raise InvalidInput(f"key {i}: '{name}' is longer than 1,024 characters", argument=argument)
        out.append({n: item[n] for n in names})
    return out


def _example(keys: dict[str, str]) -> str:
    sample = {n: ("BOS" if t == "string" else 7) for n, t in keys.items()}
    if len(sample) == 1:
        return f"[{next(iter(sample.values()))!r}]"
    return f"[{sample}]"


# -- reading ----------------------------------------------------------------------------------------
def lookup(
    conn: Any, views: dict[str, ViewVersion], refs: list[FeatureRef], columns: dict[str, Column], keys: list[dict[str, Any]], now: int
) -> list[dict[str, Cell]]:
    """Per key (in order): ref text -> Cell. One query per view."""
    by_view: dict[str, list[FeatureRef]] = {}
    for ref in refs:
        by_view.setdefault(ref.view.lower(), []).append(ref)
    out: list[dict[str, Cell]] = [{} for _ in keys]
    for view_key, wanted in by_view.items():
        vv = views[view_key]
        d = vv.definition
        names = [e.name for e in d.entities]
        distinct = list(dict.fromkeys(tuple(k[n] for n in names) for k in keys))
        feats = [columns[r.text] for r in wanted]
        select = ", ".join([*(e.physical for e in d.entities), "event_ts", *(f.physical for f in feats)])
        if len(names) == 1:
            where = f"{d.entities[0].physical} IN ({_marks(conn, len(distinct))})"
            params: tuple[Any, ...] = tuple(k[0] for k in distinct)
        else:
            one = "(" + _marks(conn, len(names)) + ")"
            where = f"({', '.join(e.physical for e in d.entities)}) IN (VALUES {', '.join([one] * len(distinct))})"
            params = tuple(v for k in distinct for v in k)
        found = {tuple(row[: len(names)]): row[len(names) :] for row in conn.exec_driver_sql(f"SELECT {select} FROM {vv.online} WHERE {where}", params)}
        ttl = d.ttl_us
        for i, key in enumerate(keys):
            row = found.get(tuple(key[n] for n in names))
            cells = out[i]
            if row is None:
                for r in wanted:
                    cells[r.text] = Cell(None, "NOT_FOUND", None, None)
                continue
            event = int(row[0])
            age = max(now - event, 0) / 1e6
            stale = ttl is not None and now - event > ttl
            for j, r in enumerate(wanted):
                value = row[1 + j]
                if stale:
                    cells[r.text] = Cell(None, "OUTSIDE_MAX_AGE", event, age)
                elif value is None:
                    cells[r.text] = Cell(None, "NULL_VALUE", event, age)
                else:
                    cells[r.text] = Cell(_plain(value, columns[r.text].type), "PRESENT", event, age)
    return out


def _plain(value: Any, kind: str) -> Any:
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def resolve(conn: Any, cache: ViewCache, features: Any, argument: str = "features") -> tuple[dict[str, ViewVersion], list[FeatureRef], dict[str, Column]]:
    """References -> (current versions by lower-cased view name, expanded refs, columns by ref)."""
    refs = parse_refs(features, argument)
    views = cache.current(conn, list(dict.fromkeys(r.view for r in refs)), argument)
    expanded: list[FeatureRef] = []
    columns: dict[str, Column] = {}
    for ref in refs:
        vv = views[ref.view.lower()]
        names = [f.name for f in vv.definition.features] if ref.feature == "*" else [ref.feature]
        for name in names:
            full = FeatureRef(vv.name, name)
            if full.text in columns:
                raise InvalidInput(f"'{full.text}' is asked for twice", argument=argument)
            columns[full.text] = vv.definition.feature(name, vv.name, argument)
            expanded.append(full)
    return views, expanded, columns


def read(store: "Store", cache: ViewCache, features: Any, entity_keys: Any) -> "OnlineFeatures":
    from mlops_mcp.core.features.results import STATUSES, FeatureValue, OnlineFeatures, OnlineRow

    store.migrate()
    with store.engine.connect() as conn:
        views, refs, columns = resolve(conn, cache, features)
        keys = parse_keys(entity_keys, key_columns(list(views.values())))
        now = now_micros()
        cells = lookup(conn, views, refs, columns, keys, now)
    counts = dict.fromkeys(STATUSES, 0)
    rows = []
    for key, per in zip(keys, cells):
        values = {}
        for ref in refs:
            c = per[ref.text]
            counts[c.status] += 1
            values[ref.text] = FeatureValue.model_construct(
                value=c.value, status=c.status, event_time=to_datetime(c.event_us),
                age_seconds=None if c.age_seconds is None else round(c.age_seconds, 3),
            )
        rows.append(OnlineRow.model_construct(entity=key, features=values))
    return OnlineFeatures.model_construct(
        features=[r.text for r in refs], rows=rows, status_counts=counts,
        view_versions={vv.name: vv.version for vv in views.values()}, read_at=to_datetime(now),
    )
