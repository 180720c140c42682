"""predict(model, entity_keys=[...]): a version trained on a training set is fed from the online store.

The version's lineage (tag ``mlops.features``, written by train_model from the training set's
metadata) says which reference fills which input column; the values come from the same online
read as get_online_features, and the row then takes the normal predict path (the same fitted
pipeline, imputation and encoding as in training). Policy for features that are not PRESENT:

- ``impute`` (default): they go in as null, exactly as an unmatched row went into training (the
  point-in-time join leaves a feature null when no row lies within the TTL), and the pipeline
  imputes them with what it learnt in training (median / the missing category);
- ``refuse``: the call fails, naming each key and feature that was missing or stale.
"""

from typing import TYPE_CHECKING, Any, Literal

from mlops_mcp.core.errors import InvalidInput, listing

if TYPE_CHECKING:
    from mlops_mcp.core.engine import MLOps
    from mlops_mcp.core.features.results import KeyedFeatures
    from mlops_mcp.core.serving.predictor import PredictionBatch

MissingPolicy = Literal["impute", "refuse"]


def model_lineage(ops: "MLOps", model: str) -> tuple[dict[str, Any], list[str], int]:
    """The feature lineage of the version ``model`` names now, its input columns and its number."""
    import json

    from mlops_mcp.core.features.training_set import TAG_FEATURES
    from mlops_mcp.core.models.refs import ModelRef

    ref = ModelRef.parse(model)
    mv = ops.registry.resolve(ref)
    raw = (mv.tags or {}).get(TAG_FEATURES)
    if not raw:
        raise InvalidInput(
            f"version {mv.version} of '{ref.name}' was not trained from feature references, so it cannot be served by "
            "entity key; send `rows` with its input columns, or train on a build_training_set file",
            argument="entity_keys",
        )
    spec = json.loads(raw)
    loaded = ops.registry.load(mv)
    return spec, list(loaded.schema.features), int(mv.version)


def keyed_rows(
    ops: "MLOps", model: str, entity_keys: Any, missing: str = "impute"
) -> tuple[list[dict[str, Any]], list[str], "KeyedFeatures"]:
    """The model's input rows for ``entity_keys`` from the online store, request keys for routing
    and logging, and how the features were found."""
    from mlops_mcp.core.features.online import key_columns, lookup, parse_keys, resolve
    from mlops_mcp.core.features.results import STATUSES, KeyedFeatures

    if missing not in ("impute", "refuse"):
        raise InvalidInput(f"'{missing}' is not a policy; accepted: impute, refuse", argument="missing")
    spec, inputs, version = model_lineage(ops, model)
    trained = {f["ref"]: f for f in spec["features"]}
    by_column = {f["column"]: f["ref"] for f in spec["features"]}
    store = ops.store
    store.migrate()
    with store.engine.connect() as conn:
        try:
            views, refs, columns = resolve(conn, ops.feature_views, list(trained), argument="model")
        except InvalidInput as exc:  # a view or feature the version trained on is gone
            raise InvalidInput(
                f"{exc.reason}; version {version} of the model was trained on {listing(list(trained))}: "
                "retrain it on a new training set",
                argument="model",
            ) from None
        warnings: list[str] = []
        for ref in refs:
            was, now_col = trained[ref.text], columns[ref.text]
            vv = views[ref.view.lower()]
            if now_col.type != was["type"]:
                raise InvalidInput(
                    f"'{ref.text}' was {was['type']} in version {was['version']} of '{vv.name}' (what the model trained on) "
                    f"but is {now_col.type} in the current version {vv.version}; retrain on a new training set",
                    argument="model",
                )
        for vv in views.values():
            old = spec["views"].get(vv.name, {}).get("version")
            if old is not None and old != vv.version:
                warnings.append(f"'{vv.name}' is served from version {vv.version}; the model was trained on version {old}")
        keys_needed = key_columns(list(views.values()))
        unknown = [c for c in inputs if c not in by_column and c not in keys_needed]
        if unknown:
            raise InvalidInput(
                f"the model also needs {listing(unknown)}, which are not feature-store features or keys; send `rows` instead",
                argument="entity_keys",
            )
        keys = parse_keys(entity_keys, keys_needed)
        from mlops_mcp.core.features.catalog import now_micros

        cells = lookup(conn, views, refs, columns, keys, now_micros())
    counts = dict.fromkeys(STATUSES, 0)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    statuses: list[dict[str, str]] = []
    for key, per in zip(keys, cells):
        row: dict[str, Any] = {}
        for column in inputs:
            if column in by_column:
                cell = per[by_column[column]]
                row[column] = cell.value
            else:
                row[column] = key[column]
        status = {ref: per[ref].status for ref in trained}
        for ref, s in status.items():
            counts[s] += 1
            if s != "PRESENT" and len(problems) < 10:
                problems.append(f"{_key_text(key)} {ref}: {s}")
        rows.append(row)
        statuses.append(status)
    if missing == "refuse" and any(counts[s] for s in STATUSES if s != "PRESENT"):
        bad = sum(counts[s] for s in STATUSES if s != "PRESENT")
        raise InvalidInput(
            f"{bad} feature value(s) are not PRESENT and missing='refuse': {'; '.join(problems)}"
            + (" ..." if bad > len(problems) else "")
            + ". Materialize the views (materialize_features), or use missing='impute' to impute them as in training",
            argument="entity_keys",
        )
    info = KeyedFeatures.model_construct(
        missing_policy=missing, features=list(trained), view_versions={vv.name: vv.version for vv in views.values()},
        status_counts=counts, statuses=statuses, entity_keys=keys, warnings=warnings,
    )
    return rows, [_key_text(k) for k in keys], info


def _key_text(key: dict[str, Any]) -> str:
    if len(key) == 1:
        return str(next(iter(key.values())))
    return ",".join(f"{k}={v}" for k, v in key.items())


def predict_batch(ops: "MLOps", model: str, entity_keys: Any, missing: str = "impute") -> tuple["PredictionBatch", "KeyedFeatures"]:
    rows, request_keys, info = keyed_rows(ops, model, entity_keys, missing)
    return ops.predictor.predict(model, rows, request_keys), info
