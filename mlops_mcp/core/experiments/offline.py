"""Offline A/B test (``run_ab_test``): two versions predict the same labeled rows, compared paired.

Default metric: ``roc_auc`` for binary classifiers with probabilities (DeLong), ``accuracy`` for
other classifiers (McNemar mid-p), ``rmse`` for regression (paired bootstrap). Rows whose label is
missing are dropped (and counted).

Evaluating on a version's own training rows measures how well it remembers them, not how it does on
new data, and favours the version that fits its training data more closely. So the evaluated rows
are looked up in each version's training-row hashes (kept with its reference profile) and the
overlap is reported per version (``training_overlap``), with a sentence in the reason when there is
any; a version without hashes (registered without reference data, or from before they were kept)
says ``unknown``.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import InvalidInput, listing

from .common import resolve_pair

if TYPE_CHECKING:
    from mlops_mcp.core.datasets import DataSource
    from mlops_mcp.core.models.registry import LoadedModel, Registry

MAX_ROWS = 1_000_000


def default_metric(loaded: "LoadedModel", has_proba: bool) -> str:
    if loaded.task == "regression":
        return "rmse"
    if has_proba and loaded.classes is not None and len(loaded.classes) == 2:
        return "roc_auc"
    return "accuracy"


def _has_proba(loaded: "LoadedModel") -> bool:
    return loaded.flavor == "sklearn" and hasattr(loaded.model, "predict_proba")


def _predict(loaded: "LoadedModel", X: Any, want_proba: bool, classes: list[Any] | None) -> tuple[Any, Any]:
    import numpy as np

    with loaded.lock:
        pred = np.asarray(loaded.model.predict(X))
        proba = None
        if want_proba:
            proba = np.asarray(loaded.model.predict_proba(X), dtype=float)
    if pred.ndim > 1:
        pred = pred[:, 0]
    if proba is not None and classes is not None and loaded.classes is not None and list(loaded.classes) != list(classes):
        order = [list(loaded.classes).index(c) for c in classes]  # b's columns in a's class order
        proba = proba[:, order]
    return pred, proba


def training_overlap(
    registry: "Registry", model: str, version: int, frame: Any, label: str, cache: dict[Any, Any] | None = None
) -> dict[str, Any]:
    """How many rows of ``frame`` (the evaluated rows, ``label`` their target) are training rows of
    the version: matched on the columns its row hashes were made from (features + target, or
    features alone for a model registered from elsewhere). ``cache`` shares the evaluated rows'
    hashes between versions hashed the same way. The profile is found from the version's current
    tags (a reference attached after registration counts)."""
    from mlops_mcp.core.models.profile import hash_rows, read_row_hashes

    out: dict[str, Any] = {"version": version, "status": "unknown", "overlapping_rows": None, "share": None,
                           "training_rows": None, "matched_on": None}
    hashes = read_row_hashes(registry.reference_dir(registry.version(model, version)))
    if hashes is None:
        return out
    features = [c for c in hashes.columns if c != hashes.target]
    if any(c not in frame.columns for c in features):
        return out
    # the evaluated label stands in for the training target, whatever its name in this file
    sub = frame[features + ([label] if hashes.target else [])]
    sub = sub.set_axis(hashes.columns if hashes.target else features, axis=1)
    key = (tuple(hashes.columns), tuple(sorted(hashes.kinds.items())), hashes.target)
    evaluated = None if cache is None else cache.get(key)
    if evaluated is None:
        evaluated = hash_rows(sub, hashes.columns, hashes.kinds)
        if cache is not None:
            cache[key] = evaluated
    rows = hashes.count_in(evaluated)
    out.update(
        status="overlap" if rows else "none",
        overlapping_rows=rows,
        share=rows / len(frame) if len(frame) else 0.0,
        training_rows=hashes.rows,
        matched_on="features+target" if hashes.target else "features",
    )
    return out


def _overlap_sentence(overlap: dict[str, dict[str, Any]], n: int) -> str:
    parts = [
        f"{o['overlapping_rows']:,} ({o['share']:.0%}) are training rows of version {o['version']} ({arm})"
        for arm, o in overlap.items()
        if o["status"] == "overlap"
    ]
    if not parts:
        return ""
    return (
        f"Caution: of the {n:,} evaluated rows, {' and '.join(parts)}: on those the metric is in-sample and "
        "favours the version that fits its training data more closely; evaluate on rows neither version was "
        "trained on"
    )


def run(
    registry: "Registry",
    roots: list[Path],
    model: str,
    variant_a: str,
    variant_b: str,
    dataset: "DataSource",
    target: str | None = None,
    metric: str | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    from mlops_mcp.core.datasets import load_dataset
    from mlops_mcp.core.models.pipeline import coerce_features
    from mlops_mcp.core.models.registry import TAG_TARGET
    from mlops_mcp.core.models.training import check_known_labels

    from . import stats

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise InvalidInput(f"must be between 0 and 0.5, e.g. 0.05; got {alpha!r}", argument="alpha")
    a, b = resolve_pair(registry, model, variant_a, variant_b, "compare two different versions")
    version_a, version_b = a.version, b.version
    if metric is not None:
        from mlops_mcp.core.metrics import metric as registry_metric

        registry_metric(metric, task=a.task)  # names the model's task's metrics when it is not one
    has_proba = _has_proba(a) and _has_proba(b)
    name = stats.metric_name(metric) if metric is not None else default_metric(a, has_proba)
    if name in ("roc_auc", "log_loss") and not has_proba:
        raise InvalidInput(f"{name} needs class probabilities from both versions; use accuracy or f1", argument="metric")

    data = load_dataset(dataset, roots)
    mv_tags = registry.version(model, version_a).tags or {}
    label = target or mv_tags.get(TAG_TARGET) or a.schema.target
    if not label:
        raise InvalidInput("the versions do not record their target column; pass target", argument="target")
    frame = data.frame
    if label not in frame.columns:
        argument = "target" if target else "dataset"
        hint = "" if target else " (the target the versions were trained on); pass target if it has another name"
        raise InvalidInput(
            f"'{data.name}' has no column '{label}'{hint}; a labeled dataset is needed. Columns: {listing(frame.columns, 40)}",
            argument=argument,
        )
    missing = [c for c in a.schema.features if c not in frame.columns]
    if missing:
        raise InvalidInput(f"'{data.name}' lacks input columns the versions need: {listing(missing)}", argument="dataset")
    n_read = len(frame)
    frame = frame[frame[label].notna()]
    if len(frame) < 2:
        raise InvalidInput(f"'{data.name}' has {len(frame)} rows with a value in '{label}'; need at least 2", argument="dataset")
    n_unlabeled = n_read - len(frame)
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0)
    X = coerce_features(frame[a.schema.features], a.schema, argument="dataset")
    y = frame[label].to_numpy()
    want_proba = name in ("roc_auc", "log_loss")
    classes = list(a.classes) if a.classes is not None else None
    pred_a, proba_a = _predict(a, X, want_proba, classes)
    pred_b, proba_b = _predict(b, X, want_proba, classes)
    if a.task == "classification":
        check_known_labels(y, classes, label, "target" if target else "dataset")
    result = stats.compare_offline(
        a.task, name, y, pred_a, pred_b, proba_a, proba_b, alpha,
        classes=classes if want_proba else None,
    )
    d = result.to_dict()
    detail = d.pop("detail")
    cache: dict[Any, Any] = {}
    overlap = {arm: training_overlap(registry, model, v, frame, label, cache) for arm, v in (("a", version_a), ("b", version_b))}
    warning = _overlap_sentence(overlap, len(frame))
    if warning:
        d["reason"] = f"{d['reason']}. {warning}"
    verdict_word = {"a_better": "a better", "b_better": "b better", "no_significant_difference": "no significant difference"}
    return {
        "model": model,
        "variant_a": {"variant": str(variant_a), "version": version_a, "metric": d["metric_a"]},
        "variant_b": {"variant": str(variant_b), "version": version_b, "metric": d["metric_b"]},
        "dataset": data.name,
        "target": label,
        "n": d["n"],
        "rows_without_label": n_unlabeled,
        "metric": d["metric"],
        "higher_is_better": d["higher_is_better"],
        "diff": d["diff"],
        "ci_low": d["ci_low"],
        "ci_high": d["ci_high"],
        "p_value": d["p_value"],
        "test": d["test"],
        "alpha": d["alpha"],
        "verdict": d["verdict"],
        "verdict_text": verdict_word[d["verdict"]],
        "reason": d["reason"],
        "discordant": None if detail.get("only_a_correct") is None else {
            "only_a_correct": detail["only_a_correct"], "only_b_correct": detail["only_b_correct"]},
        "training_overlap": overlap,
    }
