"""The catalog of feature views: registering (a changed schema is a new version), listing and
describing views with their data's size, time range, freshness and per-feature summaries."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import Conflict, NotFound, listing
from mlops_mcp.core.features.definitions import ViewDefinition, check_view_name, parse_ttl
from mlops_mcp.core.features.tables import offline_name, online_name

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mlops_mcp.core.features.results import FeatureViewDetail, FeatureViewList, FeatureViewRegistered
    from mlops_mcp.core.store import Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(micros: int | None) -> datetime | None:
    return None if micros is None else EPOCH + timedelta(microseconds=int(micros))


def to_micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_micros() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class ViewVersion:
    """One version of a view with the view's metadata: what every operation starts from."""

    view_id: int
    name: str
    version: int
    version_id: int
    current_version: int
    definition: ViewDefinition
    source: str
    created_at: datetime
    created_by: str
    materialized_seq: int
    materialized_until: int | None
    materialized_at: datetime | None
    description: str | None
    owner: str | None
    tags: dict[str, str]

    @property
    def offline(self) -> str:
        return offline_name(self.version_id)

    @property
    def online(self) -> str:
        return online_name(self.version_id)


def view_names(session: "Session") -> list[str]:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import FeatureViewRow

    return list(session.scalars(select(FeatureViewRow.name).order_by(FeatureViewRow.name_key)).all())


def load_view(
    session: "Session", name: str, version: int | None = None, argument: str = "view", lock: bool = False
) -> ViewVersion:
    """The view's current version (or ``version``); NotFound lists the views or versions that exist.
    ``lock``: hold the view's row until the transaction ends (PostgreSQL; SQLite writers are serial)."""
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import FeatureViewRow, FeatureViewVersionRow

    check_view_name(name, argument)
    query = select(FeatureViewRow).where(FeatureViewRow.name_key == name.lower())
    view = session.scalars(query.with_for_update() if lock else query).first()
    if view is None:
        raise NotFound(
            f"no feature view '{name}'; views: {listing(view_names(session))}. Register one with register_feature_view",
            argument=argument,
        )
    wanted = view.current_version if version is None else version
    row = session.scalars(
        select(FeatureViewVersionRow).where(FeatureViewVersionRow.view_id == view.id, FeatureViewVersionRow.version == wanted)
    ).first()
    if row is None:
        versions = session.scalars(
            select(FeatureViewVersionRow.version).where(FeatureViewVersionRow.view_id == view.id).order_by(FeatureViewVersionRow.version)
        ).all()
        raise NotFound(f"feature view '{view.name}' has no version {wanted}; versions: {listing(versions)}", argument="version")
    return _make(view, row)


def _make(view: Any, row: Any) -> ViewVersion:
    return ViewVersion(
        view_id=view.id, name=view.name, version=row.version, version_id=row.id, current_version=view.current_version,
        definition=ViewDefinition.from_json(row.definition), source=row.source, created_at=row.created_at,
        created_by=row.created_by, materialized_seq=int(row.materialized_seq or 0),
        materialized_until=row.materialized_until, materialized_at=row.materialized_at,
        description=view.description, owner=view.owner, tags=dict(view.tags or {}),
    )


def current_views(session: "Session") -> list[ViewVersion]:
    from sqlalchemy import and_, select

    from mlops_mcp.core.store.tables import FeatureViewRow, FeatureViewVersionRow

    pairs = session.execute(
        select(FeatureViewRow, FeatureViewVersionRow)
        .join(
            FeatureViewVersionRow,
            and_(FeatureViewVersionRow.view_id == FeatureViewRow.id, FeatureViewVersionRow.version == FeatureViewRow.current_version),
        )
        .order_by(FeatureViewRow.name_key)
    ).all()
    return [_make(view, row) for view, row in pairs]


# -- registering ------------------------------------------------------------------------------------
def register(
    store: "Store",
    roots: list[Path],
    *,
    name: str,
    source: str,
    entities: list[str],
    timestamp_column: str,
    created_column: str | None = None,
    features: list[str] | None = None,
    ttl: str | float | None = None,
    description: str | None = None,
    owner: str | None = None,
    tags: dict[str, str] | None = None,
    actor: str = "library",
) -> "FeatureViewRegistered":
    """Define (or redefine) a view from a source file and ingest that file, in one transaction.

    The same schema again keeps the version (metadata given is updated, the file ingested unless it
    was before); a changed schema makes version N+1 with its own tables, which this file fills."""
    from mlops_mcp.core.features.sources import (
        infer_definition,
        open_source,
        prepare_rows,
        read_table,
        text_columns,
    )

    check_view_name(name)
    ttl_seconds = parse_ttl(ttl)
    _check_meta(description, owner, tags)
    started = time.perf_counter()
    file = open_source(source, roots, "source")
    frame = read_table(file.path, "source")
    where = f"'{source}'"
    definition, warnings = infer_definition(frame, entities, timestamp_column, created_column, features, ttl_seconds, where)
    if file.path.suffix.lower() == ".csv" and any(str(frame[c].dtype) not in ("str", "object", "string") for c in text_columns(definition)):
        frame = read_table(file.path, "source", text_columns(definition))
    rows = prepare_rows(frame, definition, name, where, "source")
    from sqlalchemy.exc import IntegrityError

    try:
        return _register(store, name, file, definition, rows, warnings, description, owner, tags, actor, started)
    except IntegrityError:  # another call created the same view in the meantime (PostgreSQL)
        raise Conflict(f"feature view '{name}' was registered by another call at the same moment; call again", argument="name") from None


def _register(
    store: "Store", name: str, file: Any, definition: ViewDefinition, rows: Any, warnings: list[str],
    description: str | None, owner: str | None, tags: dict[str, str] | None, actor: str, started: float,
) -> "FeatureViewRegistered":
    from sqlalchemy import select

    from mlops_mcp.core.features import ingest as ingesting
    from mlops_mcp.core.features.results import ColumnSpec, FeatureViewRegistered
    from mlops_mcp.core.features.tables import create_tables
    from mlops_mcp.core.store.tables import FeatureViewRow, FeatureViewVersionRow

    source = file.dataset
    now = datetime.now(UTC)
    with store.write() as session:
        view = session.scalars(select(FeatureViewRow).where(FeatureViewRow.name_key == name.lower()).with_for_update()).first()
        changes: list[str] = []
        if view is not None and view.name != name:
            raise Conflict(
                f"a feature view '{view.name}' already exists (names are unique ignoring case); register it as "
                f"'{view.name}' to change it (a new schema makes a new version), or choose another name",
                argument="name",
            )
        if view is None:
            status = "created"
            view = FeatureViewRow(
                name=name, name_key=name.lower(), current_version=1, description=description, owner=owner,
                tags=dict(tags or {}), created_at=now, updated_at=now,
            )
            session.add(view)
            session.flush()
            version_row = _new_version(session, view.id, 1, definition, source, now, actor)
        else:
            current = session.scalars(
                select(FeatureViewVersionRow).where(
                    FeatureViewVersionRow.view_id == view.id, FeatureViewVersionRow.version == view.current_version
                )
            ).one()
            if current.schema_hash == definition.schema_hash():
                status = "unchanged"
                version_row = current
            else:
                status = "new_version"
                changes = definition.changes_from(ViewDefinition.from_json(current.definition))
                version_row = _new_version(session, view.id, view.current_version + 1, definition, source, now, actor)
                view.current_version = version_row.version
            if description is not None:
                view.description = description
            if owner is not None:
                view.owner = owner
            if tags is not None:
                view.tags = dict(tags)
            view.updated_at = now
        if status != "unchanged":
            create_tables(session.connection(), version_row.id, definition)
        session.flush()
        vv = _make(view, version_row)
        summary = ingesting.append_file(session, vv, file, rows, actor, started)
    return FeatureViewRegistered(
        view=name, version=vv.version, status=status, changes=changes,  # type: ignore[arg-type]
        entities=[ColumnSpec(name=e.name, type=e.type) for e in definition.entities],
        timestamp_column=definition.timestamp_column, created_column=definition.created_column,
        features=[ColumnSpec(name=f.name, type=f.type) for f in definition.features],
        ttl_seconds=definition.ttl_seconds, ingest=summary, warnings=warnings,
    )


def _new_version(
    session: "Session", view_id: int, version: int, definition: ViewDefinition, source: str, now: datetime, actor: str
) -> Any:
    from mlops_mcp.core.store.tables import FeatureViewVersionRow

    row = FeatureViewVersionRow(
        view_id=view_id, version=version, definition=definition.to_json(), schema_hash=definition.schema_hash(),
        source=source, created_at=now, created_by=actor, materialized_seq=0, materialized_until=None, materialized_at=None,
    )
    session.add(row)
    session.flush()
    return row


def _check_meta(description: str | None, owner: str | None, tags: dict[str, str] | None) -> None:
    from mlops_mcp.core.errors import InvalidInput

    if description is not None and len(description) > 5000:
        raise InvalidInput("at most 5,000 characters", argument="description")
    if owner is not None and len(owner) > 200:
        raise InvalidInput("at most 200 characters", argument="owner")
    if tags is not None:
        if len(tags) > 50:
            raise InvalidInput(f"{len(tags)} tags; at most 50", argument="tags")
        for key, value in tags.items():
            if not isinstance(key, str) or not isinstance(value, str) or len(key) > 100 or len(value) > 1000:
                raise InvalidInput(f"tag {str(key)[:40]!r}: keys and values are text (100 / 1,000 characters at most)", argument="tags")


# -- listing and describing -------------------------------------------------------------------------
def list_views(store: "Store") -> "FeatureViewList":
    from sqlalchemy import func, select

    from mlops_mcp.core.features.results import FeatureViewList, ViewSummary
    from mlops_mcp.core.store.tables import FeatureIngestRow

    out = []
    with store.read() as session:
        for vv in current_views(session):
            stats = session.execute(
                select(func.coalesce(func.sum(FeatureIngestRow.rows), 0), func.min(FeatureIngestRow.min_event),
                       func.max(FeatureIngestRow.max_event), func.max(FeatureIngestRow.at))
                .where(FeatureIngestRow.version_id == vv.version_id)
            ).one()
            out.append(
                ViewSummary(
                    view=vv.name, version=vv.version, entities=vv.definition.key_names, features=len(vv.definition.features),
                    ttl_seconds=vv.definition.ttl_seconds, rows=int(stats[0]), event_from=to_datetime(stats[1]),
                    event_to=to_datetime(stats[2]), last_ingest_at=_utc(stats[3]),
                    materialized_until=to_datetime(vv.materialized_until), description=vv.description, owner=vv.owner,
                    tags=vv.tags,
                )
            )
    return FeatureViewList(views=out, count=len(out))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def describe(store: "Store", name: str, version: int | None = None) -> "FeatureViewDetail":
    """Schema, size, time range, freshness (offline and online), per-feature null share and summary,
    every version and the recent ingests. Summaries are one SQL scan of the offline table."""
    from sqlalchemy import select

    from mlops_mcp.core.features.results import (
        ColumnSpec,
        FeatureViewDetail,
        Freshness,
        IngestInfo,
        VersionSummary,
    )
    from mlops_mcp.core.store.tables import FeatureIngestRow, FeatureViewVersionRow

    with store.read() as session:
        vv = load_view(session, name, version)
        conn = session.connection()
        d = vv.definition
        n_rows, first, last, features = _feature_stats(conn, vv)
        keys = ", ".join(e.physical for e in d.entities)
        n_keys = conn.exec_driver_sql(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM {vv.offline}) k").scalar() or 0
        now = now_micros()
        ttl = d.ttl_us
        online = conn.exec_driver_sql(f"SELECT count(*) FROM {vv.online}").scalar() or 0
        stale = 0
        if ttl is not None:
            stale = conn.exec_driver_sql(f"SELECT count(*) FROM {vv.online} WHERE event_ts < {now - ttl}").scalar() or 0
        pending = conn.exec_driver_sql(f"SELECT count(*) FROM {vv.offline} WHERE seq > {vv.materialized_seq}").scalar() or 0
        ingests = session.scalars(
            select(FeatureIngestRow).where(FeatureIngestRow.version_id == vv.version_id).order_by(FeatureIngestRow.id.desc())
        ).all()
        version_rows = session.scalars(
            select(FeatureViewVersionRow).where(FeatureViewVersionRow.view_id == vv.view_id).order_by(FeatureViewVersionRow.version)
        ).all()
        versions = []
        previous: ViewDefinition | None = None
        for row in version_rows:
            definition = ViewDefinition.from_json(row.definition)
            rows = session.execute(
                select(FeatureIngestRow.rows).where(FeatureIngestRow.version_id == row.id)
            ).scalars().all()
            versions.append(
                VersionSummary(
                    version=row.version, created_at=row.created_at, created_by=row.created_by, source=row.source,
                    changes=["first version"] if previous is None else definition.changes_from(previous), rows=int(sum(rows)),
                )
            )
            previous = definition
    newest = to_datetime(last)
    return FeatureViewDetail(
        view=vv.name, version=vv.version, current_version=vv.current_version, description=vv.description, owner=vv.owner,
        tags=vv.tags, entities=[ColumnSpec(name=e.name, type=e.type) for e in d.entities],
        timestamp_column=d.timestamp_column, created_column=d.created_column, ttl_seconds=d.ttl_seconds, rows=n_rows,
        keys=int(n_keys), event_from=to_datetime(first), event_to=newest,
        freshness=Freshness(
            newest_event=newest, newest_event_age_seconds=None if last is None else (now - last) / 1e6,
            last_ingest_at=ingests[0].at if ingests else None, materialized_until=to_datetime(vv.materialized_until),
            materialized_at=vv.materialized_at, pending_rows=int(pending), online_keys=int(online), online_stale_keys=int(stale),
        ),
        features=features,
        versions=list(reversed(versions)),
        recent_ingests=[
            IngestInfo(
                ingest_id=i.id, dataset=i.dataset, rows=i.rows, at=i.at, event_from=to_datetime(i.min_event),
                event_to=to_datetime(i.max_event), assumed_utc=list(i.assumed_utc or []),
            )
            for i in ingests[:10]
        ],
    )


def _feature_stats(conn: Any, vv: ViewVersion) -> tuple[int, int | None, int | None, list[Any]]:
    """Row count, event time range and per-feature summaries in one scan."""
    from mlops_mcp.core.features.results import FeatureStats
    from mlops_mcp.core.values import rounded

    parts = ["count(*)", "min(event_ts)", "max(event_ts)"]
    for f in vv.definition.features:
        c = f.physical
        if f.type in ("int", "float"):
            parts += [f"count({c})", f"avg({c})", f"avg(1.0 * {c} * {c})", f"min({c})", f"max({c})"]
        elif f.type == "bool":
            parts += [f"count({c})", f"avg(CASE WHEN {c} THEN 1.0 ELSE 0.0 END)"]
        else:
            parts += [f"count({c})", f"count(DISTINCT {c})"]
    row = list(conn.exec_driver_sql(f"SELECT {', '.join(parts)} FROM {vv.offline}").one())
    n, first, last = int(row[0]), row[1], row[2]
    out = []
    i = 3
    for f in vv.definition.features:
        count = int(row[i])
        null_share = None if n == 0 else rounded(1 - count / n)
        if f.type in ("int", "float"):
            mean, square, low, high = row[i + 1 : i + 5]
            std = None
            if mean is not None and square is not None and count > 1:
                var = max(float(square) - float(mean) ** 2, 0.0) * count / (count - 1)
                std = rounded(var**0.5)
            out.append(FeatureStats(name=f.name, type=f.type, null_share=null_share, mean=rounded(mean), std=std,
                                    min=None if low is None else float(low), max=None if high is None else float(high)))
            i += 5
        elif f.type == "bool":
            # avg over all rows counts nulls as false: rescale to present values
            share = None if not count else rounded(float(row[i + 1]) * n / count)
            out.append(FeatureStats(name=f.name, type=f.type, null_share=null_share, true_share=share))
            i += 2
        else:
            out.append(FeatureStats(name=f.name, type=f.type, null_share=null_share, distinct=int(row[i + 1])))
            i += 2
    return n, first, last, out
