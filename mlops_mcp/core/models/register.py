"""Registering models trained elsewhere: an MLflow run or model URI, an MLflow model folder or a
``.skops`` file inside the data roots, or (only when trusted) a pickle.

A ``.skops`` file is loaded with only scikit-learn's and numpy's own types trusted; pickles run
arbitrary code when loaded, so they are refused unless ``MLOPS_TRUST_PICKLE=true``.
"""

import logging
from pathlib import Path
from typing import Any

from mlops_mcp.core.datasets import DataSource, load_dataset, open_regular, resolve_path
from mlops_mcp.core.errors import Forbidden, InvalidInput, NotFound, listing
from mlops_mcp.core.models.pipeline import FeatureSchema, coerce_features, infer_schema
from mlops_mcp.core.models.profile import (
    ARTIFACT_DIR,
    PREDICTION_COLUMN,
    RowHashes,
    sample_rows,
    write_profile,
)
from mlops_mcp.core.models.registry import TAG_REFERENCE, TAG_TASK, Registry, check_alias, check_name

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".skops", ".joblib", ".pkl", ".pickle", "")


def register(
    registry: Registry,
    roots: list[Path],
    *,
    model: str,
    source: str,
    description: str | None,
    reference_dataset: DataSource | None,
    alias: str | None,
    tags: dict[str, str],
    actor: str,
    trust_pickle: bool,
    reference_rows: int,
) -> dict[str, Any]:

    check_name(model)
    if alias is not None:
        check_alias(alias)
    bad_tags = [k for k in tags if k.startswith("mlops.")]
    if bad_tags:
        raise InvalidInput(f"tag names starting with 'mlops.' are reserved: {listing(bad_tags)}", argument="tags")
    reference_frame = None
    if reference_dataset is not None:
        reference_frame = load_dataset(reference_dataset, roots, argument="reference_dataset").frame

    existed = _exists(registry, model)
    try:
        version = _register(
            registry, roots, model, source, description, reference_frame, tags, trust_pickle, reference_rows
        )
    except BaseException:
        if not existed:  # a failed first registration leaves no empty model behind
            _drop_if_empty(registry, model)
        raise
    try:
        if alias is not None:
            alias_result = registry.set_alias(model, alias, version, actor, reason=f"register_model from {source}")
        else:
            alias_result = registry.first_champion(model, version, actor, via=f"register_model from {source}")
    except BaseException:
        registry.client.delete_model_version(model, str(version))
        raise
    return {"model": model, "version": version, "source": source, "alias": alias_result,
            "auto_champion": alias is None and alias_result is not None,
            "reference_rows": None if reference_frame is None else min(len(reference_frame), reference_rows)}


def _exists(registry: Registry, model: str) -> bool:
    try:
        registry.registered_model(model)
        return True
    except NotFound:
        return False


def _drop_if_empty(registry: Registry, model: str) -> None:
    try:
        if not registry.versions(model):
            registry.client.delete_registered_model(model)
    except Exception:  # cleaning up must not hide the error being reported
        log.warning("could not remove the empty registered model %s", model, exc_info=True)


def _register(
    registry: Registry,
    roots: list[Path],
    model: str,
    source: str,
    description: str | None,
    reference_frame: Any,
    tags: dict[str, str],
    trust_pickle: bool,
    reference_rows: int,
) -> int:
    """The new version's number (registered from a URI or a local file, with its reference)."""
    from mlops_mcp.core.models.training import log_and_register

    if source.startswith(("runs:/", "models:/")):
        version = _register_uri(registry, model, source, description, tags)
        if reference_frame is not None:
            _attach_reference(registry, model, version, reference_frame, reference_rows)
    else:
        path = resolve_path(source, roots, argument="source", suffixes=MODEL_SUFFIXES)
        fitted = _load_local(path, trust_pickle)
        schema, reference = _schema_and_reference(fitted, reference_frame, reference_rows)
        task = "classification" if hasattr(fitted, "predict_proba") else "regression"
        schema.task = task
        if not schema.features:
            raise InvalidInput(
                f"'{path.name}' does not record its input columns; pass reference_dataset "
                "(rows with the model's input columns) so it can be served and checked for drift",
                argument="reference_dataset",
            )
        example = coerce_features(reference[schema.features].head(50), schema) if reference is not None else None
        version = log_and_register(
            registry,
            model=model,
            fitted=fitted,
            schema=schema,
            reference=reference,
            n_source_rows=len(reference_frame) if reference_frame is not None else 0,
            row_hashes=None if reference_frame is None else _feature_row_hashes(reference_frame, schema),
            params={"source": source},
            metrics={},
            tags={**tags, TAG_TASK: task, "mlops.source": source},
            description=description,
            example=example,
        )
    return version


def _register_uri(registry: Registry, model: str, source: str, description: str | None, tags: dict[str, str]) -> int:
    from mlflow.exceptions import MlflowException

    client = registry.client
    run_id = None
    if source.startswith("runs:/"):
        rest = source[len("runs:/") :]
        run_id = rest.split("/", 1)[0]
        try:
            client.get_run(run_id)
        except MlflowException:
            raise NotFound(f"no MLflow run '{run_id}' on {registry.settings.tracking_uri}", argument="source") from None
    else:
        from mlops_mcp.core.models.registry import ModelRef

        ref = ModelRef.parse(source, argument="source")
        mv = registry.resolve(ref, argument="source")
        source = registry.client.get_model_version_download_uri(mv.name, mv.version)
        run_id = mv.run_id
    registry.ensure_model(model)
    try:
        mv = client.create_model_version(model, source=source, run_id=run_id, tags=tags, description=description)
    except MlflowException as exc:
        raise InvalidInput(f"MLflow refused '{source}': {exc.message}", argument="source") from None
    try:
        registry.load(mv)
    except Exception as exc:
        client.delete_model_version(model, mv.version)
        raise InvalidInput(f"'{source}' is not a loadable MLflow model: {exc}", argument="source") from None
    return int(mv.version)


def _load_local(path: Path, trust_pickle: bool) -> Any:
    if path.is_dir():
        return _load_mlflow_folder(path, trust_pickle)
    suffix = path.suffix.lower()
    if suffix == ".skops":
        return load_skops(_read_bytes(path), path.name)
    if suffix in (".pkl", ".pickle", ".joblib"):
        if not trust_pickle:
            raise Forbidden(
                f"'{path.name}' is a pickle: loading one runs arbitrary code. Save the model with skops "
                "(skops.io.dump) or as an MLflow model in skops format, or set MLOPS_TRUST_PICKLE=true for files you trust",
                argument="source",
            )
        import joblib

        return joblib.load(path)
    raise InvalidInput(
        f"'{path.name}': accepted sources are runs:/..., models:/..., an MLflow model folder, a .skops file "
        "(or .pkl/.joblib with MLOPS_TRUST_PICKLE=true)",
        argument="source",
    )


def _load_mlflow_folder(path: Path, trust_pickle: bool) -> Any:
    """An MLflow sklearn model folder. Its MLmodel file is data the folder's author wrote, so it is
    not trusted: a skops model is loaded with our allowlist (never with the trusted types the
    MLmodel file lists), a pickled one only when pickles are trusted."""
    import yaml

    mlmodel = path / "MLmodel"
    if not mlmodel.exists() and not mlmodel.is_symlink():
        raise InvalidInput(f"'{path.name}' is a folder without an MLmodel file (not an MLflow model)", argument="source")
    try:
        meta = yaml.safe_load(_read_bytes(mlmodel, limit=1 << 20)) or {}
        flavor = (meta.get("flavors") or {}).get("sklearn") or {}
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise InvalidInput(f"cannot read the MLmodel file of '{path.name}': {exc}", argument="source") from None
    if not flavor:
        raise InvalidInput(f"'{path.name}' is not a scikit-learn MLflow model (no 'sklearn' flavor)", argument="source")
    file_name = str(flavor.get("pickled_model", ""))
    model_file = (path / file_name).resolve()
    if not file_name or not model_file.is_file() or not model_file.is_relative_to(path.resolve()):
        raise InvalidInput(f"'{path.name}': the MLmodel file names no model file inside the folder", argument="source")
    if flavor.get("serialization_format") == "skops":
        return load_skops(_read_bytes(model_file), path.name)
    if not trust_pickle:
        raise Forbidden(
            f"'{path.name}' holds a {flavor.get('serialization_format', 'pickle')} model: loading it runs arbitrary "
            "code. Save it with serialization_format='skops', or set MLOPS_TRUST_PICKLE=true for folders you trust",
            argument="source",
        )
    import mlflow.sklearn

    try:
        return mlflow.sklearn.load_model(str(path))
    except Exception as exc:
        raise InvalidInput(f"cannot load the MLflow model in '{path.name}': {exc}", argument="source") from None


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file (never a FIFO or device: see ``open_regular``)."""
    with open_regular(path, argument="source") as fh:
        data = fh.read(limit + 1 if limit else -1)
    if limit and len(data) > limit:
        raise InvalidInput(f"'{path.name}' is larger than {limit:,} bytes", argument="source")
    return data


#: Types a skops file may need beyond skops' own safe list. Everything else is refused: skops
#: trusts a type by reconstructing it, and functions or callable wrappers (numpy.vectorize,
#: numpy.testing's runstring, ...) would let a file run code. Tree node arrays from a malicious
#: file can crash the process but not run code; tree models cannot be loaded without them.
SKOPS_EXTRA_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


def load_skops(data: bytes, name: str) -> Any:
    """Load skops bytes with only estimator classes and the types above trusted (one read of the
    bytes for both the check and the load, so the file cannot change in between)."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise InvalidInput(f"'{name}' is not a readable skops file: {exc}", argument="source") from None
    refused = [t for t in untrusted if t not in SKOPS_EXTRA_TYPES and not _is_estimator_class(t)]
    if refused:
        raise Forbidden(
            f"'{name}' contains types that are not scikit-learn estimators: {listing(refused)}; loading them "
            "could run code, so the file is refused",
            argument="source",
        )
    return sio.loads(data, trusted=list(untrusted))


def _is_estimator_class(dotted: str) -> bool:
    """A class (not a function) defined in scikit-learn that derives from BaseEstimator."""
    import importlib
    import inspect

    from sklearn.base import BaseEstimator

    module_name, _, attr = dotted.rpartition(".")
    if not module_name.startswith("sklearn."):
        return False
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return False
    return inspect.isclass(obj) and issubclass(obj, BaseEstimator)


def _schema_and_reference(
    fitted: Any, frame: Any, reference_rows: int
) -> tuple[FeatureSchema, Any]:
    names = getattr(fitted, "feature_names_in_", None)
    if frame is None:
        if names is None:
            return FeatureSchema(features=[], kinds={}, dtypes={}), None
        cols = [str(n) for n in names]
        return FeatureSchema(features=cols, kinds={c: "numeric" for c in cols}, dtypes={c: "float64" for c in cols}), None
    features = [str(n) for n in names] if names is not None else None
    if features is not None:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise InvalidInput(f"reference data lacks the model's columns {listing(missing)}", argument="reference_dataset")
    schema = infer_schema(frame, target=None, features=features)
    sample = sample_rows(frame[schema.features], reference_rows)
    from mlops_mcp.core.models.training import prediction_scores

    task = "classification" if hasattr(fitted, "predict_proba") else "regression"
    try:
        sample[PREDICTION_COLUMN] = prediction_scores(fitted, task, coerce_features(sample[schema.features], schema))
    except Exception as exc:
        raise InvalidInput(f"the model cannot predict on the reference data: {exc}", argument="reference_dataset") from None
    return schema, sample


def _attach_reference(registry: Registry, model: str, version: int, frame: Any, reference_rows: int) -> None:
    """Give a version registered from a URI its reference profile: a new run holds it."""
    import tempfile

    mv = registry.version(model, version)
    loaded = registry.load(mv)
    missing = [c for c in loaded.schema.features if c not in frame.columns]
    if missing:
        registry.client.delete_model_version(model, str(version))
        raise InvalidInput(f"reference data lacks the model's columns {listing(missing)}", argument="reference_dataset")
    schema = infer_schema(frame, target=None, features=loaded.schema.features)
    sample = sample_rows(frame[schema.features], reference_rows)
    client = registry.client
    run = client.create_run(registry.experiment_id(model), run_name=f"{model}-v{version}-reference")
    with tempfile.TemporaryDirectory() as tmp:
        write_profile(Path(tmp) / ARTIFACT_DIR, sample, schema, len(frame), _feature_row_hashes(frame, schema))
        client.log_artifacts(run.info.run_id, str(Path(tmp) / ARTIFACT_DIR), ARTIFACT_DIR)
    client.set_terminated(run.info.run_id)
    client.set_model_version_tag(model, str(version), TAG_REFERENCE, f"{run.info.artifact_uri}/{ARTIFACT_DIR}")


def _feature_row_hashes(frame: Any, schema: FeatureSchema) -> RowHashes:
    """Hashes of every reference row on the model's input columns. The target of a model registered
    from elsewhere is unknown, so rows are matched on their features alone."""
    return RowHashes.of(frame, schema.features, dict(schema.kinds), None)
