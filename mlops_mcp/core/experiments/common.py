"""What live A/B tests and shadows share: resolving a variant to a pinned version, reading an
experiment row, and its plain view."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import InvalidInput, NotFound, listing

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import LoadedModel, Registry
    from mlops_mcp.core.store import Store
    from mlops_mcp.core.store.tables import ExperimentRow


def now() -> datetime:
    return datetime.now(UTC)


def resolve_variant(registry: "Registry", model: str, variant: str | int, argument: str) -> int:
    """A variant is an alias ('champion', 'challenger') or a version ('3', 'v3', 3) of ``model``;
    returns the version number it points at now."""
    from mlops_mcp.core.models.registry import ModelRef, check_name

    check_name(model, "model")
    text = str(variant).strip() if variant is not None else ""
    if not text:
        raise InvalidInput("give an alias (e.g. 'champion', 'challenger') or a version number (e.g. '3')", argument=argument)
    digits = text[1:] if text[:1] in ("v", "V") and text[1:].isdigit() else text
    if digits.isdigit():
        version = int(digits)
        if version < 1:
            raise InvalidInput(f"'{text}' is not a version number (versions start at 1)", argument=argument)
        registry.version(model, version, argument=argument)
        return version
    mv = registry.resolve(ModelRef.parse(f"{model}@{text}", argument=argument), argument=argument)
    return int(mv.version)


def load_version(registry: "Registry", model: str, version: int, argument: str) -> "LoadedModel":
    return registry.load(registry.version(model, version, argument=argument))


def get_row(store: "Store", experiment_id: int, kind: str | None = None, argument: str = "experiment_id") -> "ExperimentRow":
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import ExperimentRow

    with store.read() as s:
        row = s.get(ExperimentRow, experiment_id)
        if row is None or (kind is not None and row.kind != kind):
            q = select(ExperimentRow.id, ExperimentRow.model, ExperimentRow.status).order_by(ExperimentRow.id.desc()).limit(20)
            if kind is not None:
                q = q.where(ExperimentRow.kind == kind)
            known = [f"{i} ({m}, {st})" for i, m, st in s.execute(q)]
            what = "A/B test" if kind == "ab" else "shadow" if kind == "shadow" else "experiment"
            raise NotFound(f"no {what} with id {experiment_id}; recent: {listing(known)}", argument=argument)
        return row


def running(store: "Store", model: str, kind: str) -> "ExperimentRow | None":
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import ExperimentRow

    with store.read() as s:
        return s.scalars(
            select(ExperimentRow).where(ExperimentRow.model == model, ExperimentRow.kind == kind, ExperimentRow.status == "running")
        ).first()


def view(row: "ExperimentRow") -> dict[str, Any]:
    """The experiment's configuration and state (no statistics)."""
    out: dict[str, Any] = {
        "experiment_id": row.id,
        "model": row.model,
        "kind": row.kind,
        "status": row.status,
        "task": row.task,
        "started_at": row.started_at,
        "started_by": row.started_by,
        "ended_at": row.ended_at,
        "ended_by": row.ended_by,
        "reason": row.reason,
    }
    if row.kind == "ab":
        out.update(
            variant_a=row.variant_a, version_a=row.version_a, variant_b=row.variant_b, version_b=row.version_b,
            traffic_split=row.traffic_split, metric=row.metric, alpha=row.alpha, mde=row.mde,
            min_samples_per_arm=row.min_samples_per_arm, always_valid_p_value=row.always_valid_p, looks=row.looks,
        )
    else:
        out.update(variant=row.variant_b, shadow_version=row.version_b, sample_rate=row.traffic_split)
    return out


def list_experiments(store: "Store", model: str | None = None, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import ExperimentRow

    q = select(ExperimentRow).order_by(ExperimentRow.id.desc()).limit(limit)
    if model is not None:
        q = q.where(ExperimentRow.model == model)
    if status is not None:
        q = q.where(ExperimentRow.status == status)
    with store.read() as s:
        return [view(r) for r in s.scalars(q)]


def same_features(a: "LoadedModel", b: "LoadedModel", argument: str) -> None:
    if set(a.schema.features) != set(b.schema.features):
        only_a = sorted(set(a.schema.features) - set(b.schema.features))
        only_b = sorted(set(b.schema.features) - set(a.schema.features))
        raise InvalidInput(
            f"versions {a.version} and {b.version} take different input columns (only in {a.version}: "
            f"{listing(only_a)}; only in {b.version}: {listing(only_b)}), so they cannot answer the same requests",
            argument=argument,
        )
    if a.task != b.task:
        raise InvalidInput(f"version {a.version} is {a.task} but version {b.version} is {b.task}", argument=argument)


def resolve_pair(
    registry: "Registry", model: str, variant_a: str | int, variant_b: str | int, purpose: str
) -> tuple["LoadedModel", "LoadedModel"]:
    """Both variants of an experiment, loaded: two different versions with the same inputs."""
    version_a = resolve_variant(registry, model, variant_a, "variant_a")
    version_b = resolve_variant(registry, model, variant_b, "variant_b")
    if version_a == version_b:
        raise InvalidInput(
            f"variant_a ('{variant_a}') and variant_b ('{variant_b}') both point at version {version_a}; {purpose}",
            argument="variant_b",
        )
    a = load_version(registry, model, version_a, "variant_a")
    b = load_version(registry, model, version_b, "variant_b")
    same_features(a, b, "variant_b")
    return a, b
