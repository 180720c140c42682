"""Explanations of registered versions: one prediction (given its row or its logged id) or the
model as a whole, with explainers cached per version and the background drawn from the
version's reference profile."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.datasets import read_frame, resolve_path
from mlops_mcp.core.errors import InvalidInput, NotFound
from mlops_mcp.core.models.profile import PREDICTION_COLUMN
from mlops_mcp.core.models.registry import LoadedModel, ModelRef, Registry
from mlops_mcp.core.serving.predictor import check_columns

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


def _explainable(loaded: LoadedModel) -> None:
    if not loaded.is_pipeline:
        raise InvalidInput(
            f"{loaded.name}/{loaded.version} is not a pipeline trained by train_model; explanations need "
            "its preprocessing to map encoded features back to input columns",
            argument="model",
        )


def _background(registry: Registry, mv: Any, loaded: LoadedModel) -> "pd.DataFrame":
    sample = registry.reference(mv).sample
    return sample[[c for c in loaded.schema.features]]


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
    import pandas as pd

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
        mv = registry.resolve(ref)
    loaded = registry.load(mv)
    _explainable(loaded)
    assert row is not None
    if not isinstance(row, dict):
        raise InvalidInput("`row` must be an object of column: value", argument="row")
    check_columns([row], loaded.schema.features, argument="row")
    frame = pd.DataFrame.from_records([row], columns=loaded.schema.features)
    key = (mv.name, int(mv.version), int(mv.creation_timestamp or 0))
    explanation = explain_row(
        loaded.model, loaded.schema, frame, _background(registry, mv, loaded), top_k=top_k, cache=cache, cache_key=key
    )
    return explanation, {"model": mv.name, "version": int(mv.version), "prediction_id": prediction_id}


def feature_importance(
    registry: Registry,
    cache: "ExplainerCache",
    roots: list[Path],
    *,
    model: str,
    dataset: str | None,
    sample_size: int,
) -> tuple[Any, dict[str, Any]]:
    from mlops_mcp.core.explain.shap_engine import global_importance

    mv = registry.resolve(ModelRef.parse(model))
    loaded = registry.load(mv)
    _explainable(loaded)
    background = _background(registry, mv, loaded)
    if dataset is None:
        sample, source = background, f"reference profile of {mv.name}/{mv.version}"
    else:
        frame = read_frame(resolve_path(dataset, roots))
        missing = [c for c in loaded.schema.features if c not in frame.columns]
        if missing:
            raise InvalidInput(f"lacks the model's columns {missing[:10]}", argument="dataset")
        sample, source = frame[loaded.schema.features], dataset
    if len(sample) > sample_size:
        sample = sample.sample(n=sample_size, random_state=0)
    sample = sample.drop(columns=[PREDICTION_COLUMN], errors="ignore")
    key = (mv.name, int(mv.version), int(mv.creation_timestamp or 0))
    importance = global_importance(
        loaded.model, loaded.schema, sample, background, cache=cache, cache_key=key, max_rows=sample_size
    )
    return importance, {"model": mv.name, "version": int(mv.version), "source": source}
