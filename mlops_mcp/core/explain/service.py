"""Explanations of registered versions: one prediction (given its row or its logged id) or the
model as a whole, with explainers cached per version and the background drawn from the
version's reference profile."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.datasets import DataSource, load_dataset
from mlops_mcp.core.errors import InvalidInput, NotFound
from mlops_mcp.core.models.profile import PREDICTION_COLUMN
from mlops_mcp.core.models.registry import LoadedModel, ModelRef, Registry

if TYPE_CHECKING:
    import pandas as pd

    from mlops_mcp.core.explain.shap_engine import ExplainerCache
    from mlops_mcp.core.store import Store


def logged_prediction(store: "Store", prediction_id: str) -> Any:
    from mlops_mcp.core.store.tables import Prediction

    if not isinstance(prediction_id, str) or not prediction_id.strip():
        raise InvalidInput("give the prediction_id that predict returned", argument="prediction_id")
    with store.read() as session:
        row = session.get(Prediction, prediction_id.strip())
    if row is None:
        raise NotFound(f"no logged prediction '{prediction_id}'; ids come from predict results", argument="prediction_id")
    return row


def _reference_sample(registry: Registry, mv: Any, loaded: LoadedModel) -> "pd.DataFrame | None":
    """The version's reference rows (its model columns), or None when it was registered without
    a reference profile. Read only when an explainer is built (the profile itself is cached)."""
    if registry.reference_dir(mv) is None:
        return None
    sample = registry.reference(mv).sample
    return sample[[c for c in loaded.schema.features if c in sample.columns]]


def _needs_reference(mv: Any, loaded: LoadedModel) -> InvalidInput:
    model = type(loaded.model).__name__ if loaded.flavor == "sklearn" else f"{loaded.flavor} model"
    return InvalidInput(
        f"{mv.name}/{mv.version} ({model}) has no reference profile, and explaining it needs background "
        "rows to compare against (a sample of the data it was trained on; only tree models can be explained "
        "without them). Register it again with its training rows: "
        f"register_model(model='{mv.name}', source='models:/{mv.name}/{mv.version}', "
        "reference_dataset='<CSV/Parquet of training rows>')",
        argument="model",
    )


def _key(mv: Any) -> tuple[str, int, int]:
    return (mv.name, int(mv.version), int(mv.creation_timestamp or 0))


def explain_prediction(
    registry: Registry,
    store: "Store",
    cache: "ExplainerCache",
    *,
    model: str,
    row: dict[str, Any] | None,
    prediction_id: str | None,
    top_k: int,
) -> tuple[Any, dict[str, Any]]:
    """(the engine's RowExplanation, context: model, version, prediction_id)."""
    from mlops_mcp.core.explain.shap_engine import explain_row

    if (row is None) == (prediction_id is None):
        raise InvalidInput("give exactly one of `row` (feature values) or `prediction_id` (a logged prediction)", argument="row")
    ref = ModelRef.parse(model)
    if prediction_id is not None:
        logged = logged_prediction(store, prediction_id)
        if logged.model != ref.name:
            raise InvalidInput(
                f"prediction '{prediction_id}' was made by model '{logged.model}', not '{ref.name}'", argument="prediction_id"
            )
        mv = registry.version(logged.model, logged.version)  # the version that served it, wherever aliases point now
        row = logged.inputs
    else:
        mv = registry.resolve_recent(ref)  # as predict resolves it (an alias lookup reused for up to 1 s)
    loaded = registry.load(mv)
    if not isinstance(row, dict):
        raise InvalidInput("`row` must be an object of column: value", argument="row")
    try:
        explanation = explain_row(
            loaded.model,
            loaded.schema,
            row,
            lambda: _reference_sample(registry, mv, loaded),  # read only when the explainer is built
            top_k=top_k,
            cache=cache,
            cache_key=_key(mv),
        )
    except InvalidInput as exc:
        if exc.argument == "background":
            raise _needs_reference(mv, loaded) from None
        raise
    return explanation, {"model": mv.name, "version": int(mv.version), "prediction_id": prediction_id}


def feature_importance(
    registry: Registry,
    cache: "ExplainerCache",
    roots: list[Path],
    *,
    model: str,
    dataset: DataSource | None,
    sample_size: int,
) -> tuple[Any, dict[str, Any]]:
    from mlops_mcp.core.explain.shap_engine import global_importance

    mv = registry.resolve(ModelRef.parse(model))
    loaded = registry.load(mv)
    reference = _reference_sample(registry, mv, loaded)
    if dataset is None:
        if reference is None:
            raise InvalidInput(
                f"{mv.name}/{mv.version} has no reference profile to compute importance over; give `dataset` "
                "(rows with the model's columns, which then also serve as the background rows), or register "
                f"it again with reference_dataset (register_model(model='{mv.name}', "
                f"source='models:/{mv.name}/{mv.version}', reference_dataset=...))",
                argument="dataset",
            )
        sample, source = reference, f"reference profile of {mv.name}/{mv.version}"
    else:
        data = load_dataset(dataset, roots)
        frame = data.frame
        missing = [c for c in loaded.schema.features if c not in frame.columns]
        if missing:
            raise InvalidInput(f"lacks the model's columns {missing[:10]}", argument="dataset")
        sample, source = frame[loaded.schema.features], data.name
    if len(sample) > sample_size:
        sample = sample.sample(n=sample_size, random_state=0)
    sample = sample.drop(columns=[PREDICTION_COLUMN], errors="ignore")
    cache_key: Any = _key(mv)
    if reference is None:
        # the rows themselves are the background (sound for an average over them); not cached, as
        # the background depends on the dataset
        source = f"{dataset} (also the background rows: {mv.name}/{mv.version} has no reference profile)"
        cache_key = None
    importance = global_importance(
        loaded.model, loaded.schema, sample, reference, cache=cache, cache_key=cache_key, max_rows=sample_size,
        argument="dataset" if dataset is not None else "model",
    )
    return importance, {"model": mv.name, "version": int(mv.version), "source": source}
