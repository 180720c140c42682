"""Training and registering versions: fit the standard pipeline, evaluate it on a held-out split,
log it to MLflow with its reference profile, register a version, and optionally point an alias.

Order matters for "nothing half-written": the run gets its model and reference artifacts first,
the version is created last (with a tag pointing at the reference), and if the alias move fails
the new version is deleted again.
"""

import logging
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp import __version__
from mlops_mcp.core.datasets import DataSource, keep_inline, load_dataset
from mlops_mcp.core.errors import Cancelled, InvalidInput, listing
from mlops_mcp.core.models.pipeline import (
    ESTIMATORS,
    FeatureSchema,
    TrainingLimits,
    build_pipeline,
    coerce_features,
    infer_schema,
    infer_task,
)
from mlops_mcp.core.models.profile import (
    ARTIFACT_DIR,
    PREDICTION_COLUMN,
    RowHashes,
    sample_rows,
    write_profile,
)
from mlops_mcp.core.models.registry import (
    TAG_DATASET,
    TAG_ESTIMATOR,
    TAG_REFERENCE,
    TAG_TARGET,
    TAG_TASK,
    Registry,
    check_alias,
    check_name,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
MIN_ROWS = 20


def _noop(_: float, __: str) -> None:
    return None


def classification_metrics(y_true: Any, y_pred: Any, proba: "np.ndarray | None", classes: list[Any]) -> dict[str, float]:
    """accuracy, f1 (binary: positive class = classes[1]; multiclass: macro), roc_auc, log_loss."""
    from sklearn import metrics

    out = {"accuracy": float(metrics.accuracy_score(y_true, y_pred))}
    binary = len(classes) == 2
    out["f1"] = float(
        metrics.f1_score(y_true, y_pred, pos_label=classes[1]) if binary else metrics.f1_score(y_true, y_pred, average="macro")
    )
    if proba is not None and len(set(y_true)) > 1:
        try:
            out["roc_auc"] = float(
                metrics.roc_auc_score(y_true, proba[:, 1])
                if binary
                else metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
            )
        except ValueError:
            pass
        out["log_loss"] = float(metrics.log_loss(y_true, proba, labels=classes))
    return out


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """rmse, mae, r2."""
    import numpy as np
    from sklearn import metrics

    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
    }


def check_known_labels(y: Any, classes: list[Any] | None, label: str, argument: str) -> None:
    """Refuse labels a classifier cannot predict: sklearn's metrics would fail (or, worse, score
    them silently as errors), so the caller hears which values are unknown and which it knows."""
    if classes is None:
        return
    unknown = sorted({str(v) for v in set(list(y))} - {str(c) for c in classes})
    if unknown:
        raise InvalidInput(
            f"'{label}' holds values the model does not know as classes: {listing(unknown)}; classes: {listing(classes)}",
            argument=argument,
        )


def evaluate(model: Any, task: str, X: "pd.DataFrame", y: "pd.Series", classes: list[Any] | None) -> dict[str, float]:
    pred = model.predict(X)
    if task == "classification":
        proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
        return classification_metrics(y, pred, proba, classes or sorted(set(y)))
    return regression_metrics(y, pred)


def prediction_scores(model: Any, task: str, X: "pd.DataFrame") -> "np.ndarray":
    """One number per row: P(positive class) for binary classifiers, P(predicted class) for
    multiclass, the value for regression. What prediction drift and performance compare."""
    if task == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    return model.predict(X).astype(float)


def pip_requirements() -> list[str]:
    """Pinned to what is installed, given explicitly: MLflow otherwise spends ~3 s per version
    inferring them in a subprocess."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")]


def train(
    registry: Registry,
    roots: list[Path],
    *,
    model: str,
    dataset: DataSource,
    target: str,
    estimator: str = "gradient_boosting",
    params: dict[str, Any] | None = None,
    test_size: float = 0.2,
    description: str | None = None,
    alias: str | None = None,
    features: list[str] | None = None,
    exclude: list[str] | None = None,
    categorical: list[str] | None = None,
    task: str | None = None,
    seed: int = 42,
    actor: str = "unknown",
    reference_rows: int = 50_000,
    progress: Progress = _noop,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Train, evaluate, log and register one version. Returns a summary for the caller.

    The fit runs in a child process (see ``fitting``), bounded by the operator's caps on
    hyper-parameters and MLOPS_MAX_TRAIN_SECONDS; setting ``cancel`` (the MCP request was
    cancelled) stops it at once, and nothing is registered unless the version was already created."""
    from sklearn.model_selection import train_test_split

    check_name(model)
    if alias is not None:
        check_alias(alias)
    if estimator not in ESTIMATORS:
        raise InvalidInput(f"unknown estimator '{estimator}'; accepted: {listing(ESTIMATORS)}", argument="estimator")
    if not 0.05 <= test_size <= 0.5:
        raise InvalidInput(f"{test_size} is outside 0.05..0.5 (the share of rows held out for evaluation)", argument="test_size")

    progress(0.0, "reading data")
    from mlops_mcp.core.models.fitting import warm_up

    warm_up()
    data = load_dataset(dataset, roots)
    if data.path is None:  # inline rows: kept as a file, so lineage (and retraining) can read them again
        data = keep_inline(data, roots, model)
    frame = data.frame
    from mlops_mcp.core.features.training_set import (
        feature_refs,
        lineage_for,
        read_lineage,
        training_exclusions,
    )

    lineage = None if data.path is None else read_lineage(data.path)  # a build_training_set file: keys and time are not inputs; refs become lineage
    if lineage is not None and features is None:
        exclude = [*(exclude or []), *(c for c in training_exclusions(lineage) if c not in (exclude or []))]
    if target not in frame.columns:
        raise InvalidInput(f"no column '{target}' in {data.name}; columns: {listing(frame.columns, 60)}", argument="target")
    n_missing_target = int(frame[target].isna().sum())
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise InvalidInput(f"only {len(frame)} rows with a target value; at least {MIN_ROWS} are needed", argument="dataset")
    y = frame[target]
    task_ = infer_task(y, task)
    if task_ == "classification":
        counts = y.value_counts()
        if len(counts) < 2:
            raise InvalidInput(
                f"target '{target}' has a single class ({counts.index[0]!r} in all {len(y)} rows); "
                "a classifier needs at least two",
                argument="target",
            )
        if counts.min() < 2:
            rare = counts[counts < 2].index.tolist()
            raise InvalidInput(f"classes {listing(rare)} have fewer than 2 rows; drop or merge them", argument="target")
    else:
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(y):
            raise InvalidInput(f"target '{target}' is not numeric; regression needs numbers", argument="target")
    schema = infer_schema(frame, target, features=features, categorical=categorical, exclude=exclude, leave_out_dates=True)
    schema.task = task_
    X = coerce_features(frame[schema.features], schema, argument="dataset")
    warnings = _date_warnings(frame, schema) + _warnings(frame, schema, n_missing_target)
    dates_left_out = [c for c in schema.dates if c not in schema.features]

    stratify = y if task_ == "classification" else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as exc:  # e.g. a held-out share too small to hold every class
        raise InvalidInput(f"cannot split {len(y)} rows for evaluation: {exc}", argument="test_size") from None
    settings = registry.settings
    pipeline = build_pipeline(estimator, task_, schema, params, TrainingLimits.from_settings(settings))
    progress(0.1, f"training {estimator} on {len(X_train)} rows, {len(schema.features)} features")
    from mlops_mcp.core.models.fitting import fit_in_child

    fit = fit_in_child(pipeline, X_train, y_train, timeout=settings.max_train_seconds, cancel=cancel, name=estimator)
    pipeline, train_seconds = fit.fitted, fit.wall_seconds
    warnings.extend(f"while fitting: {w}" for w in fit.warnings)
    _check_cancel(cancel)
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])] or None
    schema.classes = classes
    progress(0.7, "evaluating on the held-out split")
    metrics = evaluate(pipeline, task_, X_test, y_test, classes)
    perfect = [k for k in ("roc_auc", "accuracy", "r2") if metrics.get(k, 0.0) >= 0.999]
    if perfect:
        warnings.append(
            f"held-out {perfect[0]} is {metrics[perfect[0]]:.4f}: nearly perfect, which usually means a feature leaks "
            "the target (another label, an outcome recorded after the fact); check `features` and exclude it"
        )

    progress(0.8, "logging to MLflow and registering")
    reg_started = time.perf_counter()
    # date columns left out of the features stay in the reference: drift checks them as time
    reference = sample_rows(frame[schema.features + dates_left_out + [target]], reference_rows, seed)
    reference[PREDICTION_COLUMN] = prediction_scores(pipeline, task_, coerce_features(reference[schema.features], schema))
    # every training row (not the held-out split), so run_ab_test can tell in-sample evaluation
    hash_kinds = {**schema.kinds, target: "numeric" if task_ == "regression" else "categorical"}
    row_hashes = RowHashes.of(frame.loc[X_train.index], schema.features + [target], hash_kinds, target)
    run_params = {
        "estimator": estimator,
        "task": task_,
        "target": target,
        "dataset": data.name,
        "test_size": test_size,
        "n_rows": len(frame),
        "n_train": len(X_train),
        "n_test": len(X_test),
        "n_features": len(schema.features),
        **{f"model.{k}": v for k, v in sorted((params or {}).items())},
    }
    feature_tags = lineage_for(lineage, schema.features)
    version = log_and_register(
        registry,
        model=model,
        fitted=pipeline,
        schema=schema,
        reference=reference,
        n_source_rows=len(frame),
        row_hashes=row_hashes,
        params=run_params,
        metrics={**metrics, "train_seconds": train_seconds},
        tags={TAG_TASK: task_, TAG_TARGET: target, TAG_ESTIMATOR: estimator, TAG_DATASET: data.name, **feature_tags},
        description=description,
        example=frame.loc[X_train.index[:50], schema.features],  # raw dtypes: the signature a notebook meets
        cancel=cancel,
    )
    register_seconds = time.perf_counter() - reg_started
    try:
        if alias is not None:
            alias_result = registry.set_alias(model, alias, version, actor, reason=f"train_model {estimator}")
        else:
            alias_result = registry.first_champion(model, version, actor, via=f"train_model {estimator}")
    except BaseException:
        registry.client.delete_model_version(model, str(version))
        raise
    progress(1.0, f"registered {model} version {version}")
    return {
        "model": model,
        "version": version,
        "task": task_,
        "estimator": estimator,
        "target": target,
        "metrics": metrics,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "features": schema.features,
        "categorical": schema.categorical,
        "dates_left_out": dates_left_out,
        "classes": classes,
        "alias": alias_result,
        "auto_champion": alias is None and alias_result is not None,
        "train_seconds": round(train_seconds, 3),
        "register_seconds": round(register_seconds, 3),
        "reference_rows": len(reference),
        "warnings": warnings,
        "feature_refs": feature_refs(feature_tags),
    }


def log_and_register(
    registry: Registry,
    *,
    model: str,
    fitted: Any,
    schema: FeatureSchema,
    reference: "pd.DataFrame | None",
    n_source_rows: int,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    description: str | None,
    example: "pd.DataFrame | None",
    row_hashes: RowHashes | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Log a fitted scikit-learn model and its reference (with ``row_hashes`` of its training rows,
    when known) to a new run, then create the version. Returns the new version number. A ``cancel``
    set before the version is created stops here (the run is marked failed, no version exists)."""
    import mlflow.sklearn
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature

    client = registry.client
    run = client.create_run(
        registry.experiment_id(model), run_name=f"{model}-{int(time.time())}",
        tags={"mlops.created_by": f"mlops-mcp {__version__}"},
    )
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        with tempfile.TemporaryDirectory(prefix="mlops-register-") as tmp:
            target = Path(tmp) / "model"
            with warnings.catch_warnings():  # MLflow's hint about integer columns; the raw dtypes are intended
                warnings.simplefilter("ignore", UserWarning)
                signature = None if example is None else infer_signature(example, fitted.predict(example))
            # cloudpickle, not skops: skops costs ~0.7 s per version, and these are models this server
            # fitted itself into its own artifact store (MLflow's warning about pickles is silenced here).
            sk_log = logging.getLogger("mlflow.sklearn")
            level = sk_log.level
            sk_log.setLevel(logging.ERROR)
            try:
                mlflow.sklearn.save_model(
                    fitted,
                    str(target),
                    signature=signature,
                    pip_requirements=pip_requirements(),
                    serialization_format="cloudpickle",
                )
            finally:
                sk_log.setLevel(level)
            client.log_artifacts(run_id, str(target), "model")
            if reference is not None:
                write_profile(Path(tmp) / ARTIFACT_DIR, reference, schema, n_source_rows, row_hashes)
                client.log_artifacts(run_id, str(Path(tmp) / ARTIFACT_DIR), ARTIFACT_DIR)
        source = f"{run.info.artifact_uri}/model"
        version_tags = dict(tags)
        if reference is not None:
            version_tags[TAG_REFERENCE] = f"{run.info.artifact_uri}/{ARTIFACT_DIR}"
        _check_cancel(cancel)
        registry.ensure_model(model)
        mv = client.create_model_version(model, source=source, run_id=run_id, tags=version_tags, description=description)
        client.set_terminated(run_id)
        return int(mv.version)
    except BaseException:
        try:
            client.set_terminated(run_id, status="FAILED")
        except Exception:
            log.warning("could not mark run %s failed", run_id)
        raise


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("training was cancelled; nothing was registered")


def _date_warnings(frame: "pd.DataFrame", schema: FeatureSchema) -> list[str]:
    """What happened to each date column, and how to use one."""
    out: list[str] = []
    for col in schema.dates:
        example = frame[col].dropna().iloc[0]
        if col in schema.features:
            out.append(
                f"'{col}' holds dates (e.g. '{example}') and is used as categories, as asked: a date not in the "
                "training data matches none of them, and predict says so in its warnings"
            )
        else:
            out.append(
                f"'{col}' holds dates (e.g. '{example}') and was left out of the features: raw dates would be one "
                "category per day, matching no date after the training data. To use it, derive columns from it in "
                "the data (day of week, month, days since a start date, days to an event) and train on those, or "
                f"name it in categorical=['{col}'] to use each date as a category. Drift checks still cover it"
            )
    return out


def _warnings(frame: "pd.DataFrame", schema: FeatureSchema, n_missing_target: int) -> list[str]:
    """What a careful reviewer would point out before trusting the numbers."""
    out: list[str] = []
    if n_missing_target:
        out.append(f"{n_missing_target} rows had no target value and were left out")
    n = len(frame)
    for col in schema.features:
        series = frame[col]
        if n >= 50 and series.nunique(dropna=True) == n:
            out.append(f"'{col}' is unique in every row (an identifier?); consider exclude=['{col}']")
        elif schema.kinds[col] == "categorical" and series.nunique() > 200:
            out.append(f"'{col}' has {series.nunique()} categories; one-hot encoding it makes the model large")
        if series.nunique(dropna=True) <= 1:
            out.append(f"'{col}' is constant; it carries no information")
        missing = float(series.isna().mean())
        if missing > 0.3:
            out.append(f"'{col}' is missing in {missing:.0%} of rows (imputed)")
    return out[:20]

