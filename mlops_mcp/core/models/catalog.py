"""Read-only views of the registry, shaped for people and assistants: models, versions with their
metrics and reference, side-by-side comparisons."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_mcp.core.datasets import DataSource, load_dataset
from mlops_mcp.core.errors import InvalidInput, listing
from mlops_mcp.core.models.registry import (
    TAG_ESTIMATOR,
    TAG_REFERENCE,
    TAG_TARGET,
    TAG_TASK,
    Registry,
    check_name,
)
from mlops_mcp.core.models.results import (
    AliasEventInfo,
    Comparison,
    ModelDetail,
    ModelHistory,
    ModelList,
    ModelSummary,
    VersionDetail,
    VersionInfo,
    VersionSchema,
)

MAX_VERSIONS_SHOWN = 50


def _when(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def version_view(registry: Registry, mv: Any, aliases_of: dict[int, list[str]]) -> VersionInfo:
    tags = dict(mv.tags or {})
    reference = None
    if tags.get(TAG_REFERENCE):
        folder = registry.reference_dir(mv)
        if folder is not None:
            from mlops_mcp.core.models.profile import read_profile

            reference = read_profile(folder).summary()
    return VersionInfo.model_validate(
        {
            "version": int(mv.version),
            "aliases": sorted(aliases_of.get(int(mv.version), [])),
            "created_at": _when(mv.creation_timestamp),
            "description": mv.description or None,
            "task": tags.get(TAG_TASK),
            "estimator": tags.get(TAG_ESTIMATOR),
            "target": tags.get(TAG_TARGET),
            "metrics": {k: round(v, 6) for k, v in registry.run_metrics(mv.run_id).items()},
            "run_id": mv.run_id,
            "source": mv.source,
            # internal mlops.* tags are shown elsewhere; lineage and the retraining verdict are for people
            "tags": {k: v for k, v in tags.items() if not k.startswith("mlops.") or k.startswith(("mlops.retraining.", "mlops.parent_version", "mlops.dataset"))},
            "reference": reference,
            "feature_refs": _feature_refs(tags),
        }
    )


def _feature_refs(tags: dict[str, str]) -> list[str] | None:
    from mlops_mcp.core.features.training_set import feature_refs

    return feature_refs(tags)


def list_models(registry: Registry) -> ModelList:
    out = []
    for m in sorted(registry.search_models(), key=lambda m: m.name):
        latest = max((int(v.version) for v in (m.latest_versions or [])), default=None)
        versions = registry.versions(m.name)
        out.append(
            ModelSummary(
                model=m.name,
                description=m.description or None,
                versions=len(versions),
                latest_version=latest or (int(versions[0].version) if versions else None),
                aliases={a: int(v) for a, v in (m.aliases or {}).items()},
                updated_at=_when(m.last_updated_timestamp),
            )
        )
    return ModelList(models=out, count=len(out))


def get_model(registry: Registry, name: str) -> ModelDetail:
    model = registry.registered_model(name)
    aliases = {a: int(v) for a, v in (model.aliases or {}).items()}
    aliases_of: dict[int, list[str]] = {}
    for a, v in aliases.items():
        aliases_of.setdefault(v, []).append(a)
    versions = registry.versions(name)
    return ModelDetail(
        model=model.name,
        description=model.description or None,
        aliases=aliases,
        version_count=len(versions),
        versions=[version_view(registry, mv, aliases_of) for mv in versions[:MAX_VERSIONS_SHOWN]],
        tracking_uri=registry.settings.tracking_uri,
    )


def get_version(registry: Registry, name: str, version: int) -> VersionDetail:
    check_name(name)
    mv = registry.version(name, version)
    aliases_of: dict[int, list[str]] = {}
    for a, v in registry.aliases(name).items():
        aliases_of.setdefault(v, []).append(a)
    view = version_view(registry, mv, aliases_of)
    loaded = registry.load(mv)
    schema = VersionSchema(features=loaded.schema.features, kinds=dict(loaded.schema.kinds), classes=loaded.classes)
    return VersionDetail(**dict(view), model=name, input_schema=schema)


def history(registry: Registry, name: str, limit: int = 50) -> ModelHistory:
    """Alias events newest first (moves made outside the server are noticed and recorded first)."""
    events = registry.history(name)[:limit]
    return ModelHistory(
        model=name,
        aliases=registry.aliases(name),
        events=[AliasEventInfo.model_validate(e) for e in events],
        versions=[int(v.version) for v in registry.versions(name)],
    )


def compare_versions(
    registry: Registry, roots: list[Path], name: str, version_a: int, version_b: int, dataset: DataSource | None, target: str | None
) -> Comparison:
    """Training metrics side by side; with a labeled dataset, both evaluated on it now."""
    from mlops_mcp.core.models.training import check_known_labels, evaluate

    if version_a == version_b:
        raise InvalidInput(f"version_a and version_b are both {version_a}; compare two different versions", argument="version_b")
    mv_a = registry.version(name, version_a, argument="version_a")
    mv_b = registry.version(name, version_b, argument="version_b")
    train_a, train_b = registry.run_metrics(mv_a.run_id), registry.run_metrics(mv_b.run_id)
    keys = sorted((set(train_a) | set(train_b)) - {"train_seconds"})
    result: dict[str, Any] = {
        "model": name,
        "version_a": version_a,
        "version_b": version_b,
        "training_metrics": [
            {"metric": k, "a": train_a.get(k), "b": train_b.get(k), "diff": _diff(train_a.get(k), train_b.get(k))} for k in keys
        ],
        "dataset_metrics": None,
        "dataset": None,
        "n_rows": None,
    }
    if dataset is None:
        return Comparison.model_validate(result)
    a, b = registry.load(mv_a), registry.load(mv_b)
    explicit_target = target is not None
    target = target or (mv_a.tags or {}).get(TAG_TARGET) or a.schema.target
    if not target:
        raise InvalidInput("the versions do not record their target; pass target", argument="target")
    data = load_dataset(dataset, roots)
    frame = data.frame
    if target not in frame.columns:
        raise InvalidInput(f"no column '{target}' in {data.name}; columns: {listing(frame.columns, 60)}", argument="target")
    frame = frame[frame[target].notna()]
    if frame.empty:
        raise InvalidInput(f"'{data.name}' has no rows with a value in '{target}'", argument="dataset")
    for loaded in (a, b):
        if loaded.task == "classification":
            check_known_labels(frame[target], loaded.classes, target, "target" if explicit_target else "dataset")
    from mlops_mcp.core.models.pipeline import coerce_features

    scores = {}
    for label, loaded in (("a", a), ("b", b)):
        missing = [c for c in loaded.schema.features if c not in frame.columns]
        if missing:
            raise InvalidInput(f"'{data.name}' lacks columns version {loaded.version} needs: {listing(missing)}", argument="dataset")
        X = coerce_features(frame[loaded.schema.features], loaded.schema, argument="dataset")
        scores[label] = evaluate(loaded.model, loaded.task, X, frame[target], loaded.classes)
    keys = sorted(set(scores["a"]) | set(scores["b"]))
    result.update(
        dataset=data.name,
        n_rows=len(frame),
        dataset_metrics=[
            {"metric": k, "a": scores["a"].get(k), "b": scores["b"].get(k), "diff": _diff(scores["a"].get(k), scores["b"].get(k))}
            for k in keys
        ],
    )
    return Comparison.model_validate(result)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 6)
