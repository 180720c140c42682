"""build_training_set: entity rows + feature references -> a point-in-time correct Parquet file, and
the lineage it carries (read back by train_model, served from by predict(entity_keys=...)).

Column names: a feature keeps its name unless two requested features share it or an entity
column has it; then it is ``<view>__<feature>``. The same naming (``assign_columns``) is used when
serving by key, so training and serving cannot disagree on which value feeds which input.
"""

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import Conflict, InvalidInput, listing
from mlops_mcp.core.features.catalog import ViewVersion, load_view
from mlops_mcp.core.features.definitions import Column, FeatureRef, parse_refs

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from mlops_mcp.core.features.results import TrainingSetResult
    from mlops_mcp.core.store import Store

#: the Parquet metadata key holding a training set's lineage
METADATA_KEY = b"mlops.feature_set"
#: the model version tag holding it once a model is trained on the file
TAG_FEATURES = "mlops.features"
MAX_ENTITY_ROWS = 20_000_000
FORMAT = 1


@dataclass
class Resolved:
    """Feature references resolved against the views' current versions."""

    refs: list[FeatureRef]  # expanded ('view:*' -> every feature), in order
    views: dict[str, ViewVersion]  # by view name as referenced (canonical name)
    columns: dict[str, Column]  # ref text -> the view's column

    def by_view(self) -> dict[str, list[FeatureRef]]:
        out: dict[str, list[FeatureRef]] = {}
        for ref in self.refs:
            out.setdefault(ref.view, []).append(ref)
        return out


def resolve_refs(session: "Session", features: Any, argument: str = "features") -> Resolved:
    """Parse and check references; unknown views and features are errors listing what exists."""
    refs = parse_refs(features, argument)
    views: dict[str, ViewVersion] = {}
    expanded: list[FeatureRef] = []
    columns: dict[str, Column] = {}
    for ref in refs:
        vv = views.get(ref.view.lower())
        if vv is None:
            vv = load_view(session, ref.view, argument=argument)
            views[ref.view.lower()] = vv
        names = [f.name for f in vv.definition.features] if ref.feature == "*" else [ref.feature]
        for name in names:
            column = vv.definition.feature(name, vv.name, argument)
            full = FeatureRef(vv.name, name)
            if full.text in columns:
                raise InvalidInput(f"'{full.text}' is asked for twice", argument=argument)
            expanded.append(full)
            columns[full.text] = column
    return Resolved(expanded, {vv.name: vv for vv in views.values()}, columns)


def assign_columns(refs: list[FeatureRef], taken: list[str]) -> dict[str, str]:
    """ref text -> output column: the feature's name, or '<view>__<feature>' where it would clash
    with another requested feature or with one of ``taken`` (the entity dataset's columns)."""
    names = [r.feature for r in refs]
    out: dict[str, str] = {}
    for ref in refs:
        clash = names.count(ref.feature) > 1 or ref.feature in taken
        out[ref.text] = f"{ref.view}__{ref.feature}" if clash else ref.feature
    used = list(out.values())
    still = sorted({c for c in used if used.count(c) > 1 or c in taken})
    if still:
        raise InvalidInput(f"feature columns {listing(still)} would clash even with the view prefix; rename them", argument="features")
    return out


def build_training_set(
    store: "Store",
    roots: list[Path],
    *,
    entities: str,
    features: list[str],
    output: str,
    label: str | None = None,
    timestamp_column: str | None = None,
    overwrite: bool = False,
    actor: str = "library",
) -> "TrainingSetResult":
    import numpy as np
    import pandas as pd

    from mlops_mcp.core.datasets import resolve_path
    from mlops_mcp.core.features.pit import JoinInput, JoinView, point_in_time
    from mlops_mcp.core.features.results import FeatureMatch, TrainingSetResult
    from mlops_mcp.core.features.sources import Times, read_table, to_micros
    from mlops_mcp.core.store.tables import TrainingSetRow

    started = time.perf_counter()
    target = resolve_path(output, roots, argument="output", suffixes=(".parquet", ".pq"), must_exist=False)
    if target.exists() and not overwrite:
        raise Conflict(f"'{output}' exists; choose another name or pass overwrite=true", argument="output")
    if target.exists() and not target.is_file():
        raise InvalidInput(f"'{output}' exists and is not a regular file", argument="output")
    with store.read() as session:
        resolved = resolve_refs(session, features)
    source = resolve_path(entities, roots, argument="entities")

    # the key columns every view needs, with their types
    key_types: dict[str, str] = {}
    for vv in resolved.views.values():
        for e in vv.definition.entities:
            if key_types.setdefault(e.name, e.type) != e.type:
                raise InvalidInput(
                    f"key '{e.name}' is {e.type} in view '{vv.name}' but {key_types[e.name]} in another view; "
                    "views joined together must agree on a key's type",
                    argument="features",
                )
    text = [k for k, t in key_types.items() if t == "string"]
    frame = read_table(source, "entities", text)
    if len(frame) > MAX_ENTITY_ROWS:
        raise InvalidInput(f"{len(frame):,} entity rows; at most {MAX_ENTITY_ROWS:,} per training set", argument="entities")
    where = f"'{entities}'"
    for key in key_types:
        if key not in frame.columns:
            needing = [vv.name for vv in resolved.views.values() if key in vv.definition.key_names]
            raise InvalidInput(
                f"no column '{key}' in {where} (the key of view(s) {listing(needing)}); its columns: {listing(frame.columns, 60)}",
                argument="entities",
            )
    ts_column = _timestamp_column(frame, timestamp_column, set(key_types) | ({label} if label else set()), where)
    if label is not None:
        if label not in frame.columns:
            raise InvalidInput(f"no column '{label}' in {where}; its columns: {listing(frame.columns, 60)}", argument="label")
        if label in key_types or label == ts_column:
            raise InvalidInput(f"'{label}' is a key or the timestamp, not a label", argument="label")
    times: Times = to_micros(frame[ts_column], ts_column, "entities", where)
    keys = {k: _entity_key(frame[k], t, k, where) for k, t in key_types.items()}
    names = assign_columns(resolved.refs, list(frame.columns))

    by_view = resolved.by_view()
    join_views = [JoinView(resolved.views[v], [resolved.columns[r.text] for r in refs]) for v, refs in by_view.items()]
    data = JoinInput(len(frame), keys, key_types, times)
    with store.read() as session:
        outputs = point_in_time(session.connection(), data, join_views)
        backend = session.connection().dialect.name

    result = frame.copy()
    # the join's time, as it was used: UTC datetimes (text in a CSV becomes a real timestamp)
    result[ts_column] = pd.Series(
        np.where(times.null, np.iinfo(np.int64).min, times.micros).astype("datetime64[us]"), index=frame.index
    ).dt.tz_localize("UTC")
    matches: list[FeatureMatch] = []
    any_match = np.zeros(len(frame), dtype=bool)
    n = max(len(frame), 1)
    for (view, refs), out in zip(by_view.items(), outputs):
        vv = resolved.views[view]
        any_match |= out.matched
        matched_rate = float(out.matched.sum()) / n
        for ref, values in zip(refs, out.columns):
            column = names[ref.text]
            result[column] = values
            filled = int(pd.notna(result[column]).sum())
            matches.append(
                FeatureMatch(
                    feature=ref.text, column=column, type=resolved.columns[ref.text].type, view_version=vv.version,
                    match_rate=round(matched_rate, 6), filled_rate=round(filled / n, 6),
                )
            )
    spec = lineage_spec(resolved, names, list(key_types), ts_column, label)
    relative = _relative(target, roots)
    with store.write() as session:
        row = TrainingSetRow(
            output=relative[:1024], entities=entities[:1024], spec=spec, rows=len(result), created_at=datetime.now(UTC),
            actor=actor[:200],
        )
        session.add(row)
        session.flush()
        spec["training_set_id"] = row.id
        row.spec = dict(spec)
        _write_parquet(result, target, spec)
    return TrainingSetResult(
        output=relative, training_set_id=row.id, rows=len(result), columns=list(result.columns), timestamp_column=ts_column,
        assumed_utc=times.assumed_utc, label=label, entity_columns=list(key_types), features=matches,
        view_versions={v: resolved.views[v].version for v in by_view},
        ttl_seconds={v: resolved.views[v].definition.ttl_seconds for v in by_view},
        rows_without_match=int((~any_match).sum()), rows_without_time=int(times.null.sum()), backend=backend,
        seconds=round(time.perf_counter() - started, 3),
    )


def _timestamp_column(frame: "pd.DataFrame", given: str | None, not_these: set[str], where: str) -> str:
    """The named column, else the entity dataset's only time column."""
    if given is not None:
        if given not in frame.columns:
            raise InvalidInput(f"no column '{given}' in {where}; its columns: {listing(frame.columns, 60)}", argument="timestamp_column")
        return given
    from mlops_mcp.core.features.sources import is_time_like

    found = [c for c in frame.columns if c not in not_these and is_time_like(frame[c])]
    if not found:
        raise InvalidInput(
            f"{where} has no timestamp column (datetimes or ISO 8601 text); its columns: {listing(frame.columns, 60)}. "
            "Every entity row needs the time its features are wanted as of",
            argument="entities",
        )
    if len(found) > 1:
        raise InvalidInput(f"{where} has several time columns ({listing(found)}); name one with timestamp_column", argument="timestamp_column")
    return found[0]


def _entity_key(series: "pd.Series", kind: str, column: str, where: str) -> Any:
    """An entity key column for the join: its type must be the view's; missing keys are allowed
    (that row matches nothing and is kept)."""
    from mlops_mcp.core.features.sources import convert, infer_type

    found = infer_type(series, key=True) if series.notna().any() else kind
    if found != kind:
        shown = {None: "times", "string": "text", "int": "integers", "float": "fractional numbers", "bool": "booleans"}
        raise InvalidInput(
            f"key column '{column}' of {where} holds {shown.get(found, found)}, but the views key it as {kind}; "
            "key types must match",
            argument="entities",
        )
    return convert(series, kind, column, "entities", where)


def lineage_spec(resolved: Resolved, names: dict[str, str], keys: list[str], ts: str, label: str | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "entities": keys,
        "timestamp_column": ts,
        "label": label,
        "features": [
            {
                "ref": ref.text, "view": ref.view, "feature": ref.feature, "column": names[ref.text],
                "type": resolved.columns[ref.text].type, "version": resolved.views[ref.view].version,
            }
            for ref in resolved.refs
        ],
        "views": {
            name: {
                "version": vv.version, "ttl_seconds": vv.definition.ttl_seconds, "entities": vv.definition.key_names,
            }
            for name, vv in resolved.views.items()
        },
        "built_at": datetime.now(UTC).isoformat(),
    }


def _relative(path: Path, roots: list[Path]) -> str:
    for root in roots:
        real = Path(root).resolve()
        if path == real or path.is_relative_to(real):
            return str(path.relative_to(real))
    return str(path)


def _write_parquet(frame: "pd.DataFrame", target: Path, spec: dict[str, Any]) -> None:
    """Written beside the target and renamed into place: a reader never sees half a file."""
    import warnings

    import pyarrow as pa
    import pyarrow.parquet as pq

    with warnings.catch_warnings():  # pyarrow reads Series.values of tz-aware columns (pandas 3 deprecates it)
        warnings.filterwarnings("ignore", message=".*drops timezone information.*")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(spec, separators=(",", ":")).encode()
    table = table.replace_schema_metadata(metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


# -- lineage, as train_model and serving read it --------------------------------------------------
def read_lineage(path: Path) -> dict[str, Any] | None:
    """The lineage of a training set file, or None for any other file."""
    if path.suffix.lower() not in (".parquet", ".pq"):
        return None
    try:
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):  # not Parquet, or unreadable: not a training set
        return None
    raw = metadata.get(METADATA_KEY)
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except ValueError:
        return None
    return spec if isinstance(spec, dict) and spec.get("format") == FORMAT else None


def training_exclusions(spec: dict[str, Any]) -> list[str]:
    """Columns of a training set that are not model inputs by default: the keys and the time."""
    return [*spec.get("entities", []), spec["timestamp_column"]]


def lineage_tag(spec: dict[str, Any]) -> str:
    return json.dumps(spec, separators=(",", ":"))


def lineage_for(spec: dict[str, Any] | None, inputs: list[str]) -> dict[str, str]:
    """The version tags recording the feature references a model trained on (only those that are
    among its ``inputs``); empty when the data was not a training set or no feature is used."""
    if spec is None:
        return {}
    used = [f for f in spec["features"] if f["column"] in inputs]
    if not used:
        return {}
    views = {f["view"] for f in used}
    kept = {**spec, "features": used, "views": {k: v for k, v in spec["views"].items() if k in views}}
    return {TAG_FEATURES: lineage_tag(kept)}


def feature_refs(tags: dict[str, str]) -> list[str] | None:
    """The 'view:feature' references recorded in version tags (None: not trained from features)."""
    raw = tags.get(TAG_FEATURES)
    return None if not raw else [f["ref"] for f in json.loads(raw)["features"]]
