"""Typed results of the feature store."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from mlops_mcp.core.results import Result, Scalar

Status = Literal["PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"]
STATUSES: tuple[str, ...] = ("PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


class ColumnSpec(Result):
    name: str
    type: str = Field(description="int, float, bool or string")


class IngestSummary(Result):
    ingest_id: int | None = Field(description="the ingest that holds these rows (the earlier one when skipped)")
    dataset: str
    sha256: str = Field(description="content hash: the same file sent again is recognised by it")
    rows: int = Field(description="rows appended now (0 when skipped)")
    skipped: bool = Field(description="true: this exact file was ingested before; nothing was written")
    skipped_reason: str | None = None
    assumed_utc: list[str] = Field(description="timestamp columns with values written without a zone, taken as UTC")
    event_from: datetime | None = Field(description="earliest event time in the file (UTC)")
    event_to: datetime | None = Field(description="latest event time in the file (UTC)")
    seconds: float

    def describe(self) -> str:
        if self.skipped:
            return f"'{self.dataset}' skipped: {self.skipped_reason}"
        text = f"{self.rows:,} rows from '{self.dataset}' (events {self.event_from:%Y-%m-%d %H:%M} to {self.event_to:%Y-%m-%d %H:%M} UTC) in {self.seconds:.2f} s"
        if self.assumed_utc:
            text += f"; times without a zone in {', '.join(self.assumed_utc)} were taken as UTC"
        return text


class FeatureViewRegistered(Result):
    view: str
    version: int
    status: Literal["created", "new_version", "unchanged"] = Field(
        description="created: a new view; new_version: the schema changed; unchanged: same schema (metadata may be updated)"
    )
    changes: list[str] = Field(description="what changed from the previous version")
    entities: list[ColumnSpec]
    timestamp_column: str
    created_column: str | None
    features: list[ColumnSpec]
    ttl_seconds: int | None = Field(description="rows older than this (relative to the time asked about) are not used; null = no limit")
    ingest: IngestSummary
    warnings: list[str]

    def describe(self) -> str:
        head = {
            "created": f"Registered feature view '{self.view}' (version 1)",
            "new_version": f"Feature view '{self.view}' is now at version {self.version} ({'; '.join(self.changes)})",
            "unchanged": f"Feature view '{self.view}' unchanged at version {self.version}",
        }[self.status]
        ttl = "no TTL" if self.ttl_seconds is None else f"TTL {_age(self.ttl_seconds)}"
        text = (
            f"{head}: keys {', '.join(e.name for e in self.entities)}, event time '{self.timestamp_column}', "
            f"{len(self.features)} features, {ttl}. Ingest: {self.ingest.describe()}."
        )
        if self.warnings:
            text += " Warnings: " + " | ".join(self.warnings[:5])
        return text + f" Next: materialize_features(view='{self.view}') to serve online, or build_training_set."


class ViewSummary(Result):
    view: str
    version: int
    entities: list[str]
    features: int = Field(description="number of features")
    ttl_seconds: int | None
    rows: int = Field(description="rows in the offline store (this version)")
    event_from: datetime | None
    event_to: datetime | None
    last_ingest_at: datetime | None
    materialized_until: datetime | None = Field(description="the online table holds rows with event times up to here")
    description: str | None
    owner: str | None
    tags: dict[str, str]


class FeatureViewList(Result):
    views: list[ViewSummary]
    count: int

    def describe(self) -> str:
        if not self.views:
            return "No feature views yet. Register one with register_feature_view."
        lines = [
            f"- {v.view} v{v.version}: keys {', '.join(v.entities)}, {v.features} features, {v.rows:,} rows"
            + (f", events to {v.event_to:%Y-%m-%d %H:%M}" if v.event_to else "")
            + (f", online to {v.materialized_until:%Y-%m-%d %H:%M}" if v.materialized_until else ", not materialized")
            for v in self.views[:50]
        ]
        return f"{self.count} feature view(s):\n" + "\n".join(lines)


class FeatureStats(Result):
    name: str
    type: str
    null_share: float | None = Field(description="share of offline rows where the value is missing")
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    true_share: float | None = Field(default=None, description="bool features: share of true among present values")
    distinct: int | None = Field(default=None, description="string features: number of distinct values")


class Freshness(Result):
    newest_event: datetime | None = Field(description="the latest event time in the offline store")
    newest_event_age_seconds: float | None
    last_ingest_at: datetime | None
    materialized_until: datetime | None = Field(description="online rows have event times up to here")
    materialized_at: datetime | None
    pending_rows: int = Field(description="offline rows ingested since the last materialization")
    online_keys: int
    online_stale_keys: int = Field(description="online keys whose newest row is older than the TTL now (served as OUTSIDE_MAX_AGE)")


class VersionSummary(Result):
    version: int
    created_at: datetime
    created_by: str
    source: str
    changes: list[str]
    rows: int


class IngestInfo(Result):
    ingest_id: int
    dataset: str
    rows: int
    at: datetime
    event_from: datetime | None
    event_to: datetime | None
    assumed_utc: list[str]


class FeatureViewDetail(Result):
    view: str
    version: int
    current_version: int
    description: str | None
    owner: str | None
    tags: dict[str, str]
    entities: list[ColumnSpec]
    timestamp_column: str
    created_column: str | None
    ttl_seconds: int | None
    rows: int
    keys: int = Field(description="distinct entity keys in the offline store")
    event_from: datetime | None
    event_to: datetime | None
    freshness: Freshness
    features: list[FeatureStats]
    versions: list[VersionSummary] = Field(description="every version, newest first")
    recent_ingests: list[IngestInfo] = Field(description="up to 10, newest first")

    def describe(self) -> str:
        f = self.freshness
        ttl = "no TTL" if self.ttl_seconds is None else f"TTL {_age(self.ttl_seconds)}"
        text = (
            f"Feature view '{self.view}' v{self.version} (current v{self.current_version}): keys "
            f"{', '.join(e.name for e in self.entities)}, {len(self.features)} features, {ttl}; {self.rows:,} rows, "
            f"{self.keys:,} keys"
        )
        if self.event_from and self.event_to:
            text += f", events {self.event_from:%Y-%m-%d %H:%M} to {self.event_to:%Y-%m-%d %H:%M} UTC (newest {_age(f.newest_event_age_seconds)} old)"
        online = (
            f"online to {f.materialized_until:%Y-%m-%d %H:%M}: {f.online_keys:,} keys, {f.online_stale_keys:,} older than the TTL now"
            if f.materialized_until
            else "not materialized yet"
        )
        text += f"; {online}; {f.pending_rows:,} rows not yet materialized."
        nulls = [s for s in self.features if s.null_share]
        if nulls:
            worst = sorted(nulls, key=lambda s: -(s.null_share or 0))[:5]
            text += " Most missing: " + ", ".join(f"{s.name} {s.null_share:.1%}" for s in worst) + "."
        return text


class IngestResult(Result):
    view: str
    version: int
    ingest: IngestSummary
    total_rows: int = Field(description="rows in the view's offline store after this ingest")

    def describe(self) -> str:
        return f"Feature view '{self.view}' v{self.version}: {self.ingest.describe()}; {self.total_rows:,} rows in all."


class MaterializeResult(Result):
    view: str
    version: int
    start: datetime | None = Field(description="the previous watermark (event time); null on the first run")
    end: datetime = Field(description="rows with event times up to here are now online")
    end_capped: bool = Field(description="true when the requested end was in the future and now was used instead")
    rows_considered: int = Field(description="offline rows read in this run (new since the watermark)")
    keys_updated: int = Field(description="online keys inserted or replaced by a newer row")
    online_keys: int
    stale_keys_now: int = Field(description="online keys already older than the TTL at this moment")
    seconds: float

    def describe(self) -> str:
        since = "from the start" if self.start is None else f"from {self.start:%Y-%m-%d %H:%M:%S}"
        text = (
            f"Materialized '{self.view}' v{self.version} {since} to {self.end:%Y-%m-%d %H:%M:%S} UTC"
            + (" (now: the end asked for was in the future)" if self.end_capped else "")
            + f": {self.rows_considered:,} new rows read, {self.keys_updated:,} keys updated, {self.online_keys:,} keys online "
            f"in {self.seconds:.2f} s."
        )
        if self.stale_keys_now:
            text += f" {self.stale_keys_now:,} keys are older than the TTL and will read as OUTSIDE_MAX_AGE."
        return text


class FeatureValue(Result):
    value: Scalar | None = Field(description="null unless status is PRESENT")
    status: Status = Field(
        description="PRESENT; NULL_VALUE (the newest row has no value); NOT_FOUND (no row for this key online); "
        "OUTSIDE_MAX_AGE (the newest row is older than the view's TTL now: withheld, as training would not have seen it)"
    )
    event_time: datetime | None = Field(description="event time of the row the value comes from")
    age_seconds: float | None = Field(description="now - event_time")


class OnlineRow(Result):
    entity: dict[str, Scalar] = Field(description="the key, as key column -> value")
    features: dict[str, FeatureValue] = Field(description="'view:feature' -> value and status")


class OnlineFeatures(Result):
    features: list[str] = Field(description="the references read, in order")
    rows: list[OnlineRow] = Field(description="one per entity key, in the order asked")
    status_counts: dict[str, int]
    view_versions: dict[str, int] = Field(description="view -> the version read")
    read_at: datetime = Field(description="the 'now' ages and TTLs were measured against")

    def describe(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.status_counts.items() if v)
        lines = [f"{len(self.rows)} key(s) x {len(self.features)} feature(s) read at {self.read_at:%Y-%m-%d %H:%M:%S} UTC: {counts}."]
        for row in self.rows[:10]:
            key = ", ".join(f"{k}={v}" for k, v in row.entity.items())
            parts = [
                f"{ref.split(':', 1)[1]}={fv.value!r}" if fv.status == "PRESENT" else f"{ref.split(':', 1)[1]}: {fv.status}"
                for ref, fv in list(row.features.items())[:8]
            ]
            lines.append(f"- {key}: " + "; ".join(parts))
        return "\n".join(lines)


class FeatureMatch(Result):
    feature: str = Field(description="'view:feature'")
    column: str = Field(description="its column in the training set")
    type: str
    view_version: int
    match_rate: float = Field(description="share of entity rows that found a feature row of this view within the TTL")
    filled_rate: float = Field(description="share of entity rows with a value (matched and not null)")


class TrainingSetResult(Result):
    output: str = Field(description="the Parquet file written, relative to its data root")
    training_set_id: int
    rows: int = Field(description="equal to the entity rows: every one is kept, in order")
    columns: list[str]
    timestamp_column: str
    assumed_utc: bool = Field(description="entity times without a zone were taken as UTC")
    label: str | None
    entity_columns: list[str] = Field(description="the key columns used for the join")
    features: list[FeatureMatch]
    view_versions: dict[str, int] = Field(description="view -> version used")
    ttl_seconds: dict[str, int | None] = Field(description="view -> TTL applied (null = no limit)")
    rows_without_match: int = Field(description="entity rows that matched no view at all (their features are null)")
    rows_without_time: int = Field(description="entity rows with no timestamp (kept, features null)")
    backend: str = Field(description="where the point-in-time join ran: sqlite or postgresql")
    seconds: float

    def describe(self) -> str:
        worst = sorted(self.features, key=lambda f: f.match_rate)[:3]
        text = (
            f"Wrote {self.rows:,} rows x {len(self.columns)} columns to '{self.output}' (training set {self.training_set_id}) "
            f"in {self.seconds:.2f} s, point-in-time on '{self.timestamp_column}' ({self.backend}); views "
            + ", ".join(f"{v} v{n}" for v, n in self.view_versions.items())
            + ". Lowest match rates: "
            + ", ".join(f"{f.feature} {f.match_rate:.1%}" for f in worst)
            + "."
        )
        if self.assumed_utc:
            text += f" Times in '{self.timestamp_column}' had no zone and were taken as UTC."
        if self.rows_without_match:
            text += f" {self.rows_without_match:,} rows matched nothing (features null, rows kept)."
        target = self.label or "<label>"
        return text + f" Next: train_model(model=..., dataset='{self.output}', target='{target}') records these features as lineage."


class KeyedFeatures(Result):
    """How a prediction by entity key got its inputs."""

    missing_policy: Literal["impute", "refuse"] = Field(
        description="impute: missing or stale features go in as null and the model imputes them as in training; refuse: any such feature fails the call"
    )
    features: list[str] = Field(description="the model's feature references")
    view_versions: dict[str, int] = Field(description="view -> version read online")
    status_counts: dict[str, int]
    statuses: list[dict[str, Status]] = Field(description="per listed prediction: 'view:feature' -> status")
    entity_keys: list[dict[str, Scalar]] = Field(description="per listed prediction: its key")
    warnings: list[str]
