"""Feature store tools: define feature views over data files, ingest and materialize them, read
features online, and build point-in-time correct training sets. Serving by key is `predict`'s
`entity_keys` argument."""

import functools
from typing import Annotated

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from mlops_mcp.core.features.definitions import MAX_TTL_SECONDS
from mlops_mcp.core.features.results import (
    FeatureViewDetail,
    FeatureViewList,
    FeatureViewRegistered,
    IngestResult,
    MaterializeResult,
    OnlineFeatures,
    TrainingSetResult,
)
from mlops_mcp.core.limits import MAX_ID
from mlops_mcp.tools.args import DataPathArg, EntityKeysArg, TimeArg
from mlops_mcp.tools.context import caller, engine, progress_reporter

ViewArg = Annotated[str, Field(min_length=1, max_length=64, description="feature view name, e.g. 'team_form'")]
Column = Annotated[str, Field(min_length=1, max_length=140)]
FeatureRefs = Annotated[
    list[Annotated[str, Field(min_length=3, max_length=200)]],
    Field(
        min_length=1,
        max_length=500,
        description="feature references 'view:feature' (or 'view:*' for all of a view's features), e.g. "
        "['team_form:pts_avg_5', 'injuries:*']",
    ),
]


def register_feature_view(
    name: Annotated[str, Field(min_length=1, max_length=64, description="view name: a letter, then letters, digits, '_' or '-', e.g. 'team_form'")],
    source: Annotated[str, Field(min_length=1, max_length=1024, description="CSV or Parquet in a data root holding the feature rows; ingested now")],
    entities: Annotated[
        list[Column],
        Field(min_length=1, max_length=4, description="entity key column(s), optionally typed: ['team'] or ['game_id:string'] (types: int, string)"),
    ],
    timestamp_column: Annotated[str, Field(min_length=1, max_length=128, description="event time column: when each row's values were true")],
    ctx: Context,
    created_column: Annotated[
        str | None, Field(max_length=128, description="optional time the row was written; breaks ties between rows with the same event time (newest wins)")
    ] = None,
    features: Annotated[
        list[Column] | None,
        Field(max_length=500, description="feature columns, optionally typed ('pts', 'injured:bool'; types int, float, bool, string); default: every other column"),
    ] = None,
    ttl: Annotated[
        Annotated[str, Field(max_length=40)] | Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS)] | None,
        Field(description="how old a row may be and still count, as a duration ('36h', '2d', '90m') or seconds; default: no limit"),
    ] = None,
    description: Annotated[str | None, Field(max_length=5000)] = None,
    owner: Annotated[str | None, Field(max_length=200)] = None,
    tags: Annotated[dict[str, Annotated[str, Field(max_length=1000)]] | None, Field(max_length=50)] = None,
) -> FeatureViewRegistered:
    """Define a feature view (a named set of typed features keyed by entity columns and stamped with
    an event time) over a CSV/Parquet file in the data roots, and ingest that file into the store.

    Types are inferred unless given ('name:type'). Times without a zone are taken as UTC (the result
    says so); rows without a key or event time, or values that do not fit their type, refuse the
    whole file. Registering the same name again with the same schema changes nothing (the file is
    ingested only if it is new; description, owner and tags are updated); a different schema
    (keys, timestamps, features, types or TTL) makes version N+1 with its own data, filled from
    `source`; training sets record the versions they used. Names are unique ignoring case.
    Example: register_feature_view(name="team_form", source="features/team_form.parquet",
    entities=["team"], timestamp_column="as_of", ttl="7d", owner="analytics").
    """
    return engine(ctx).register_feature_view(
        name=name, source=source, entities=entities, timestamp_column=timestamp_column, created_column=created_column,
        features=features, ttl=ttl, description=description, owner=owner, tags=tags, actor=caller(ctx),
    )


def list_feature_views(ctx: Context) -> FeatureViewList:
    """Every feature view at its current version: keys, number of features, TTL, rows, event time
    range, last ingest and how far the online table is materialized. Details: get_feature_view."""
    return engine(ctx).list_feature_views()


def get_feature_view(
    view: ViewArg,
    ctx: Context,
    version: Annotated[int | None, Field(ge=1, le=MAX_ID, description="a past version (default: the current one)")] = None,
) -> FeatureViewDetail:
    """One feature view: its schema (keys, timestamps, typed features, TTL), row and key counts, event
    time range, freshness (newest event and its age, last ingest, online watermark, keys online and
    how many are already older than the TTL, rows not yet materialized), per-feature null share and
    summary (mean/std/min/max, share true, distinct values), every version with what changed, and
    the recent ingests. Example: get_feature_view(view="team_form")."""
    return engine(ctx).get_feature_view(view, version)


def ingest_features(view: ViewArg, dataset: DataPathArg, ctx: Context) -> IngestResult:
    """Append a CSV/Parquet file's rows to a feature view's offline store (its current version), in
    one transaction: the file is checked whole first (columns, key types, event times, value
    types), so nothing is half-ingested. Sending the same file again (same content, any name)
    changes nothing and says when it was ingested. New rows reach the online store with
    materialize_features. Example: ingest_features(view="team_form", dataset="features/team_form_2025-03.csv").
    """
    return engine(ctx).ingest_features(view, dataset, actor=caller(ctx))


async def materialize_features(view: ViewArg, ctx: Context, end: TimeArg = None) -> MaterializeResult:
    """Load a view's online table (the newest row per key, what get_online_features and predict by
    key read) with rows whose event time is up to `end` (default: now; never later than now),
    incrementally from the previous run's watermark: only rows ingested since, and older rows
    that were in the future last time, are read; a late row never overwrites a newer one.
    Reports progress. Example: materialize_features(view="team_form").
    """
    ops = engine(ctx)
    work = functools.partial(ops.materialize_features, view, end, caller(ctx), progress_reporter(ctx))
    return await anyio.to_thread.run_sync(work)


def get_online_features(features: FeatureRefs, entity_keys: EntityKeysArg, ctx: Context) -> OnlineFeatures:
    """Read features for entity keys from the online store: per key and feature the value, its event
    time, its age and a status: PRESENT, NULL_VALUE (the newest row has no value), NOT_FOUND (no
    row for the key; materialize_features first?) or OUTSIDE_MAX_AGE (the newest row is older than
    the view's TTL now: the value is withheld, because a training set would not have used it).
    Example: get_online_features(features=["team_form:pts_avg_5", "team_form:win_pct"], entity_keys=["BOS", "LAL"]).
    """
    return engine(ctx).get_online_features(features, entity_keys)


async def build_training_set(
    entities: Annotated[
        str,
        Field(min_length=1, max_length=1024, description="CSV/Parquet in a data root: the key column(s) of the views, a timestamp (as of when), optionally the label"),
    ],
    features: FeatureRefs,
    output: Annotated[str, Field(min_length=1, max_length=1024, description="Parquet path to write, inside a data root, e.g. 'nba/training_set.parquet'")],
    ctx: Context,
    label: Annotated[str | None, Field(max_length=256, description="label column in `entities` (checked and recorded)")] = None,
    timestamp_column: Annotated[
        str | None, Field(max_length=256, description="the entities' time column (default: their only datetime/ISO-time column)")
    ] = None,
    overwrite: Annotated[bool, Field(description="replace `output` if it exists")] = False,
) -> TrainingSetResult:
    """Join features to entity rows as of each row's time, with no leakage from the future: per row
    and view, the newest feature row with the same key and `time - ttl <= event time <= time`
    (ties: newest created time, then the latest ingested). EVERY entity row is kept, duplicates
    too, in order; features are null where nothing qualifies. Columns are named after the feature
    (prefixed 'view__' on a clash). Writes Parquet into the data roots with its lineage (feature
    references and view versions): train_model on it records them, and the version can then be
    served with predict(model, entity_keys=[...]). Returns per-feature match rates.
    Example: build_training_set(entities="nba/games.csv", features=["team_form:*"], output="nba/train_fs.parquet", label="home_win").
    """
    ops = engine(ctx)
    work = functools.partial(
        ops.build_training_set, entities=entities, features=features, output=output, label=label,
        timestamp_column=timestamp_column, overwrite=overwrite, actor=caller(ctx),
    )
    return await anyio.to_thread.run_sync(work)
