"""SHAP explanations of the standard pipeline, in terms of the columns the user sent.

Every model the server trains is ``preprocess -> model`` (see :mod:`mlops_mcp.core.models.pipeline`), so an
explanation is computed on the transformed matrix the model sees and then summed back to the
ORIGINAL input columns with :func:`~mlops_mcp.core.models.pipeline.feature_sources` (the one-hot parts of
``home_team`` become one ``home_team`` contribution). Three rules hold for every result:

* the explained output space is stated (``probability``, ``log_odds`` or ``raw``) and
  ``base_value + sum(all contributions) == output_value`` in that space (checked when the explainer
  is built, and reported per call as ``additivity_error``);
* the explainer is chosen automatically and reported: exact Tree SHAP for tree ensembles, the
  linear explainer for linear models, the permutation explainer (over the original columns, with
  a 100-row background) for anything else, including models SHAP cannot parse;
* when exact Tree SHAP would blow the time budget (deep random forests), the result says which
  approximation was used instead.

Output spaces, and why:

* Binary tree boosting (sklearn ``GradientBoostingClassifier``): single rows are explained in
  PROBABILITY space with interventional Tree SHAP over a 100-row background (exact, additive to
  1e-8, about 1-2 ms a row for 200 trees), because "why 0.81?" should be answered in the unit of
  the 0.81. Global importance over many rows uses path-dependent Tree SHAP in LOG-ODDS space: it
  needs no background and is ~15x faster (0.1 s vs 1.8 s for 1,000 rows), which is what keeps it
  inside its 1 s budget. Both results state their space.
* ``HistGradientBoostingClassifier``: shap 0.51's interventional mode is NOT additive for it
  (errors of 0.1 in probability, measured), so it is explained in log-odds (path-dependent, exact);
  the probability is reported alongside. The build-time additivity check makes this choice for any
  model, so a shap release that fixes it is picked up without a code change.
* Random forest classifiers: their trees already average probabilities, so path-dependent Tree
  SHAP is exact in probability space with no background.
* Logistic regression: log-odds (the space in which it is linear; the linear explainer's values
  are ``coef * (x - mean(background))``), probability reported alongside.
* Regressors: the raw prediction. Multiclass margins (softmax logits) are ``raw`` too.
* Permutation explainer: probability of the explained class (classifiers) or the prediction.

Heavy libraries (shap, sklearn, matplotlib) are imported inside functions: the server imports
this module only when an explanation tool runs.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.models.encoding import FastEncoder
from mlops_mcp.core.models.pipeline import FeatureSchema, coerce_features

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

OutputSpace = Literal["probability", "log_odds", "raw"]
ExplainerKind = Literal["tree", "linear", "permutation"]

#: background rows for interventional Tree SHAP and the permutation explainer (cost grows linearly)
BACKGROUND_ROWS = 100
#: background rows for the linear explainer, which only needs their mean (so more is free)
LINEAR_BACKGROUND_ROWS = 1000
#: rows a global importance is computed on by default
DEFAULT_SAMPLE_ROWS = 1000
#: time budgets for EXACT Tree SHAP; above them the Saabas approximation is used (and reported)
ROW_BUDGET_S = 0.05
GLOBAL_BUDGET_S = 1.0
#: time budget for the (slow) permutation explainer over many rows; rows are subsampled to fit
PERMUTATION_GLOBAL_BUDGET_S = 10.0
#: measured on a 2-core machine (shap 0.51): path-dependent Tree SHAP costs 2.5-5 ns per unit of
#: (leaf depth)^2 summed over all leaves of all trees, per row; interventional ~8 ns per
#: (leaf x background row)
_PATH_DEPENDENT_S_PER_UNIT = 4e-9
_INTERVENTIONAL_S_PER_UNIT = 8e-9
_ADDITIVITY_TOL = 1e-6
_SEED = 0


# --------------------------------------------------------------------------------------------
# results


@dataclass
class Contribution:
    """One original input column's share of the explained output."""

    feature: str
    value: Any
    shap: float


@dataclass
class RowExplanation:
    """Why the model gave this output for this row.

    ``base_value + sum(c.shap for c in contributions) + rest == output_value`` (in
    ``output_space``); ``prediction`` is what the model predicts (a class label or a number) and
    ``probability`` the probability of ``explained_class`` (classifiers), whatever the space.
    """

    prediction: Any
    output_value: float
    base_value: float
    output_space: OutputSpace
    output_description: str
    explainer: ExplainerKind
    explainer_detail: str
    approximation: str | None
    explained_class: Any | None
    probability: float | None
    contributions: list[Contribution]
    rest: float
    n_rest: int
    additivity_error: float
    background_rows: int
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FeatureImportance:
    feature: str
    mean_abs_shap: float


@dataclass
class GlobalImportance:
    """Mean |SHAP| per original column over ``n_rows`` rows, largest first.

    A categorical column's value per row is the sum of its one-hot parts, so its importance is the
    mean of |sum of parts| (not the sum of the parts' mean |SHAP|, which would overstate it).
    """

    importances: list[FeatureImportance]
    output_space: OutputSpace
    output_description: str
    explainer: ExplainerKind
    explainer_detail: str
    approximation: str | None
    explained_class: str | None
    n_rows: int
    background_rows: int
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# raw rows <-> the matrix the model sees


# --------------------------------------------------------------------------------------------
# explanation methods


@dataclass
class _Method:
    """One way to compute SHAP values for this model, in one output space.

    ``values(x, approximate)`` returns (phi (n, p, k), base (k,)) where x is the transformed matrix
    (``on_z`` False) or ``Z`` (``on_z`` True); ``outputs(x)`` the model's output (n, k) in the
    same space, which is what additivity is checked against.
    """

    kind: ExplainerKind
    space: OutputSpace
    detail: str
    values: Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray]]
    outputs: Callable[[np.ndarray], np.ndarray]
    on_z: bool = False
    exact_s_per_row: float = 0.0
    can_approximate: bool = False
    size: str = ""
    background_rows: int = 0


@dataclass
class _Entry:
    """Everything built once per model version: the encoder, the methods, the background."""

    encoder: FastEncoder
    model: Any
    is_classifier: bool
    classes: list[Any]
    row_method: _Method
    bulk_method: _Method
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    return frame if len(frame) <= n else frame.sample(n=n, random_state=_SEED)


def _as_3d(values: Any) -> np.ndarray:
    if isinstance(values, list):  # old-style per-output list
        arr = np.stack([np.asarray(v, dtype=float) for v in values], axis=-1)
    else:
        arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :, None]
    elif arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


_Outputs = Callable[[np.ndarray], np.ndarray]


def _output_candidates(model: Any, is_classifier: bool, k: int) -> list[tuple[OutputSpace, _Outputs]]:
    """The output spaces a k-output explanation of ``model`` could be in, most wanted first."""
    if not is_classifier:
        return [("raw", lambda x: np.asarray(model.predict(x), dtype=float).reshape(len(x), -1))]
    n_classes = len(model.classes_)
    out: list[tuple[OutputSpace, _Outputs]] = []
    if k == 1 and n_classes == 2:
        out.append(("probability", lambda x: np.asarray(model.predict_proba(x), dtype=float)[:, 1:2]))
        if hasattr(model, "decision_function"):
            out.append(("log_odds", lambda x: np.asarray(model.decision_function(x), dtype=float)[:, None]))
    elif k == n_classes:
        out.append(("probability", lambda x: np.asarray(model.predict_proba(x), dtype=float)))
        if n_classes > 2 and hasattr(model, "decision_function"):
            out.append(("raw", lambda x: np.asarray(model.decision_function(x), dtype=float)))
    return out


def _verified(
    kind: ExplainerKind,
    detail: str,
    values: Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray]],
    model: Any,
    is_classifier: bool,
    probe: np.ndarray,
    approximate: bool = False,
    **extra: Any,
) -> _Method | None:
    """Run ``values`` on a few rows and keep it only if base + sum(phi) equals a model output.

    Why: this is what decides the output space (probability vs log-odds vs raw) from what SHAP
    actually computes rather than from assumptions per model class, and it rejects explainers a
    given shap release gets wrong (e.g. interventional Tree SHAP on HistGradientBoosting).
    """
    phi, base = values(probe, approximate)
    total = phi.sum(axis=1) + base[None, :]
    for space, outputs in _output_candidates(model, is_classifier, phi.shape[2]):
        expected = outputs(probe)
        if expected.shape == total.shape and np.allclose(total, expected, rtol=0, atol=_ADDITIVITY_TOL):
            return _Method(kind=kind, space=space, detail=detail, values=values, outputs=outputs, **extra)
    return None


def _leaf_depths(children_left: np.ndarray, children_right: np.ndarray) -> np.ndarray:
    """Depth of every leaf of one tree (level by level, so a 50-level tree is 50 numpy steps)."""
    depths = []
    frontier = np.array([0])
    level = 0
    while frontier.size:
        left, right = children_left[frontier], children_right[frontier]
        leaf = left < 0
        depths.append(np.full(int(leaf.sum()), level))
        frontier = np.concatenate([left[~leaf], right[~leaf]])
        level += 1
    return np.concatenate(depths)


def _tree_cost(explainer: Any) -> tuple[float, float, str]:
    """Estimated seconds per row of exact Tree SHAP, path-dependent and interventional (the latter
    per background row), and a size description.

    Path-dependent Tree SHAP is O(leaves x depth^2) per tree and row; the sum over leaves of
    depth^2 predicts it within a factor 2 (2.5-5 ns a unit, measured on sklearn forests of depth 4
    to 56, gradient boosting and histogram boosting; 4 ns is used); interventional Tree SHAP walks
    each tree once per background row (~8 ns per leaf and row).
    Read from shap's parsed trees, so this works for any tree library shap understands.
    """
    trees = getattr(explainer.model, "trees", None) or []
    leaves = path_units = max_depth = 0
    for tree in trees:
        depths = _leaf_depths(np.asarray(tree.children_left), np.asarray(tree.children_right))
        leaves += depths.size
        path_units += int((np.maximum(depths, 1).astype(np.int64) ** 2).sum())
        max_depth = max(max_depth, int(depths.max(initial=0)))
    size = f"{len(trees)} trees, {leaves:,} leaves, depth up to {max_depth}"
    return path_units * _PATH_DEPENDENT_S_PER_UNIT, leaves * _INTERVENTIONAL_S_PER_UNIT, size


def _is_linear(model: Any) -> bool:
    from sklearn.linear_model._base import LinearClassifierMixin, LinearModel

    return isinstance(model, (LinearModel, LinearClassifierMixin)) and hasattr(model, "coef_")


def _linear_method(model: Any, is_classifier: bool, x_bg: np.ndarray) -> _Method | None:
    import shap

    # an explicit masker: given a bare matrix, shap would silently keep only 100 of its rows
    explainer = shap.LinearExplainer(model, shap.maskers.Independent(x_bg, max_samples=len(x_bg)))
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float)).reshape(-1)

    def values(x: np.ndarray, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
        return _as_3d(explainer.shap_values(x)), base

    detail = f"shap.LinearExplainer (interventional: coef * (x - mean of {len(x_bg)} background rows))"
    return _verified("linear", detail, values, model, is_classifier, x_bg[:5], background_rows=len(x_bg))


def _tree_methods(model: Any, is_classifier: bool, x_bg: np.ndarray) -> tuple[_Method, _Method] | str:
    """(row method, bulk method) for a tree ensemble, or why shap cannot explain it as one."""
    import shap

    try:
        path = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a tree model shap handles"
        return f"shap.TreeExplainer cannot explain {type(model).__name__}: {str(exc).splitlines()[0][:160]}"
    path_s, interv_s, size = _tree_cost(path)
    path_base = np.atleast_1d(np.asarray(path.expected_value, dtype=float)).reshape(-1)

    def path_values(x: np.ndarray, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
        return _as_3d(path.shap_values(x, check_additivity=False, approximate=approximate)), path_base

    # verify on one row with Saabas if exact would be slow: it is additive in the same space
    path_method = _verified(
        "tree",
        "shap.TreeExplainer (exact, path-dependent: no background needed)",
        path_values,
        model,
        is_classifier,
        x_bg[:1] if path_s > ROW_BUDGET_S else x_bg[:3],
        approximate=path_s > ROW_BUDGET_S,
        exact_s_per_row=path_s,
        can_approximate=True,
        size=size,
    )
    if path_method is None:
        return "shap.TreeExplainer's values did not add up to the model's output"
    row_method = path_method
    if is_classifier and path_method.space != "probability" and len(model.classes_) == 2:
        cost = interv_s * len(x_bg)
        if cost <= ROW_BUDGET_S:
            try:
                interv = shap.TreeExplainer(
                    model, data=x_bg, model_output="probability", feature_perturbation="interventional"
                )
                interv_base = np.atleast_1d(np.asarray(interv.expected_value, dtype=float)).reshape(-1)

                def interv_values(x: np.ndarray, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
                    phi = _as_3d(interv.shap_values(x, check_additivity=False))
                    if phi.shape[2] == 2:  # "probability_doubled" models give both classes
                        return phi[:, :, 1:], interv_base[1:]
                    return phi, interv_base

                method = _verified(
                    "tree",
                    f"shap.TreeExplainer (exact, interventional, {len(x_bg)} background rows)",
                    interv_values,
                    model,
                    is_classifier,
                    x_bg[:5],
                    exact_s_per_row=cost,
                    size=size,
                    background_rows=len(x_bg),
                )
                if method is not None and method.space == "probability":
                    row_method = method
            except Exception:  # noqa: BLE001 - shap refuses some model/output combinations
                pass
    return row_method, path_method


def _permutation_method(encoder: FastEncoder, model: Any, is_classifier: bool, z_bg: np.ndarray) -> _Method:
    """Model-agnostic Shapley values by permutation over the ORIGINAL columns (Z space)."""
    n_features = len(encoder.features)
    max_evals = 10 * (2 * n_features + 1)  # 10 forward/backward permutations

    if is_classifier:
        binary = len(model.classes_) == 2

        def f(z: np.ndarray) -> np.ndarray:
            proba = np.asarray(model.predict_proba(encoder.transform(z)), dtype=float)
            return proba[:, 1] if binary else proba

        space: OutputSpace = "probability"
    else:

        def f(z: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict(encoder.transform(z)), dtype=float)

        space = "raw"

    def outputs(z: np.ndarray) -> np.ndarray:
        return f(z).reshape(len(z), -1)

    lock = threading.Lock()

    def values(z: np.ndarray, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
        import shap

        with lock:  # the explainer seeds numpy's global RNG: one call at a time keeps results reproducible
            masker = shap.maskers.Independent(z_bg, max_samples=len(z_bg))
            explainer = shap.PermutationExplainer(f, masker, seed=_SEED)
            result = explainer(z, max_evals=max_evals, silent=True)
        phi = _as_3d(result.values)
        base = np.asarray(result.base_values, dtype=float).reshape(len(z), -1)[0]
        return phi, base

    started = time.perf_counter()
    f(z_bg)
    per_prediction = (time.perf_counter() - started) / len(z_bg)
    return _Method(
        kind="permutation",
        space=space,
        detail=(
            f"shap.PermutationExplainer over the {n_features} original columns, {len(z_bg)} background rows, "
            f"{max_evals} evaluations per row"
        ),
        values=values,
        outputs=outputs,
        on_z=True,
        exact_s_per_row=per_prediction * max_evals * len(z_bg),
        background_rows=len(z_bg),
    )


def _build(pipeline: Pipeline, schema: FeatureSchema, background: pd.DataFrame | None) -> _Entry:
    """Pick and build the explainer for a model version (the expensive part, done once)."""
    if background is None or len(background) == 0:
        raise InvalidInput(
            "a reference sample (background rows) is needed to explain this model", argument="background"
        )
    missing = [c for c in schema.features if c not in background.columns]
    if missing:
        raise InvalidInput(f"background lacks model columns: {', '.join(missing)}", argument="background")
    raw_bg = coerce_features(background[schema.features], schema, argument="background")
    encoder = FastEncoder(pipeline, schema)
    small = _sample(raw_bg, BACKGROUND_ROWS).reset_index(drop=True)
    encoder.check(small)
    z_bg = encoder.encode(small)
    x_bg = encoder.transform(z_bg)
    model = pipeline.named_steps["model"]
    is_classifier = hasattr(model, "predict_proba") and hasattr(model, "classes_")
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    notes: list[str] = []
    row = bulk = None
    if _is_linear(model):
        x_lin = encoder.transform(encoder.encode(_sample(raw_bg, LINEAR_BACKGROUND_ROWS)))
        try:
            row = bulk = _linear_method(model, is_classifier, x_lin)
        except Exception as exc:  # noqa: BLE001 - shap refuses some linear models: fall back, don't fail
            notes.append(
                f"shap.LinearExplainer failed ({type(exc).__name__}: {exc}); used the permutation explainer"
            )
    else:
        methods = _tree_methods(model, is_classifier, x_bg)
        if isinstance(methods, str):
            notes.append(f"{methods}; used the permutation explainer")
        else:
            row, bulk = methods
    if row is None or bulk is None:
        row = bulk = _permutation_method(encoder, model, is_classifier, z_bg)
        if not notes:
            notes.append("the linear explainer's values did not add up; used the permutation explainer")
    return _Entry(encoder=encoder, model=model, is_classifier=is_classifier, classes=classes,
                  row_method=row, bulk_method=bulk, notes=notes)


# --------------------------------------------------------------------------------------------
# cache


class ExplainerCache:
    """Built explainers per model version, least recently used dropped beyond ``maxsize``.

    Keyed by whatever identifies an immutable model version, e.g. ``("nba-win", 3)``: a version's
    pipeline and reference sample never change, so the entry never goes stale. Thread-safe; two
    concurrent first calls for one key build it once.
    """

    def __init__(self, maxsize: int = 16) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_build(self, key: Hashable, build: Callable[[], _Entry]) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return entry
            try:
                entry = build()
            finally:
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self.misses += 1
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
            return entry

    def invalidate(self, key: Hashable | None = None) -> None:
        """Drop one entry, or all of them (``key=None``)."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _entry(pipeline: Pipeline, schema: FeatureSchema, background: pd.DataFrame | None,
           cache: ExplainerCache | None, cache_key: Hashable | None) -> _Entry:
    if cache is None or cache_key is None:
        return _build(pipeline, schema, background)
    return cache.get_or_build(cache_key, lambda: _build(pipeline, schema, background))


# --------------------------------------------------------------------------------------------
# computing


def _plain(value: Any) -> Any:
    """JSON-friendly scalar: numpy -> python, NaN -> None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _run(
    entry: _Entry, method: _Method, z: np.ndarray, x: np.ndarray, budget_s: float
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """SHAP values (n, p_in, k) over original columns and base (k,), exact if it fits the budget."""
    approximate = method.can_approximate and method.exact_s_per_row * len(z) > budget_s
    note = None
    if approximate:
        note = (
            f"Saabas approximation (shap.TreeExplainer approximate=True): exact Tree SHAP of this model "
            f"({method.size}) would take ~{method.exact_s_per_row * len(z):.2g} s for {len(z)} row(s), "
            f"over the "
            f"{budget_s:g} s budget. Saabas values are additive (they sum to the output) but are path "
            f"attributions, not exact Shapley values."
        )
    if method.on_z:  # already over the original columns
        phi, base = method.values(z, approximate)
        return phi, base, note
    phi, base = method.values(x, approximate)
    return entry.encoder.regroup(phi), base, note


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise InvalidInput(f"must be a whole number of at least 1, got {top_k!r}", argument="top_k")


def _describe(space: OutputSpace, entry: _Entry, explained_class: Any | None) -> str:
    if space == "probability":
        return f"predicted probability of class {explained_class!r}"
    if space == "log_odds":
        return f"log-odds of class {explained_class!r} (probability = 1 / (1 + exp(-log_odds)))"
    if entry.is_classifier:
        return f"raw margin (softmax logit) of class {explained_class!r}"
    return "the model's prediction"


def explain_row(
    pipeline: Pipeline,
    schema: FeatureSchema,
    row: pd.DataFrame,
    background: pd.DataFrame | None,
    top_k: int = 10,
    cache: ExplainerCache | None = None,
    cache_key: Hashable | None = None,
    time_budget_s: float | None = None,
) -> RowExplanation:
    """Explain one prediction: base value + per-column contributions = the model's output.

    Parameters
    ----------
    pipeline, schema : the fitted standard pipeline and its feature schema.
    row : exactly one raw row with the model's columns (validated by ``coerce_features``).
    background : the version's reference sample (raw); 100 rows of it are the background.
    top_k : how many columns to list (largest |SHAP| first); the others are summed in ``rest``.
    cache, cache_key : reuse the built explainer across calls, e.g. ``("nba-win", 3)``.
    time_budget_s : exact Tree SHAP is used when it is estimated to fit in this budget
        (default ``ROW_BUDGET_S``), else the Saabas approximation (reported in ``approximation``).

    Binary classifiers explain the positive class ``classes_[1]``; multiclass ones the predicted
    class. Example::

        exp = explain_row(pipe, schema, games.iloc[[4412]][schema.features], reference, top_k=5)
        exp.base_value + sum(c.shap for c in exp.contributions) + exp.rest == exp.output_value
    """
    started = time.perf_counter()
    _check_top_k(top_k)
    raw = coerce_features(row, schema, argument="row")
    if len(raw) != 1:
        raise InvalidInput(f"explain one row at a time, got {len(raw)}", argument="row")
    entry = _entry(pipeline, schema, background, cache, cache_key)
    method = entry.row_method
    z = entry.encoder.encode(raw)
    x = entry.encoder.transform(z)
    phi, base, note = _run(entry, method, z, x, ROW_BUDGET_S if time_budget_s is None else time_budget_s)
    model = entry.model
    explained_class = None
    probability = None
    if entry.is_classifier:
        proba = np.asarray(model.predict_proba(x), dtype=float)[0]
        if method.space == "probability":  # the same numbers: don't predict twice (slow for forests)
            outputs = proba[1:] if phi.shape[2] == 1 else proba
        else:
            outputs = method.outputs(z if method.on_z else x)[0]
        predicted = int(np.argmax(proba))
        prediction = entry.classes[predicted]
        cls = 1 if len(entry.classes) == 2 else predicted
        explained_class = entry.classes[cls]
        probability = float(proba[cls])
        col = cls if phi.shape[2] > 1 else 0
    else:
        outputs = method.outputs(z if method.on_z else x)[0]
        prediction = _plain(outputs[0])
        col = 0
    values = phi[0, :, col]
    output_value = float(outputs[col])
    base_value = float(base[col])
    order = np.argsort(-np.abs(values), kind="stable")
    top = order[:top_k]
    contributions = [
        Contribution(feature=entry.encoder.features[i], value=_plain(raw.iat[0, i]), shap=float(values[i]))
        for i in top
    ]
    rest = float(values[order[top_k:]].sum())
    error = abs(base_value + float(values.sum()) - output_value)
    return RowExplanation(
        prediction=_plain(prediction),
        output_value=output_value,
        base_value=base_value,
        output_space=method.space,
        output_description=_describe(method.space, entry, explained_class),
        explainer=method.kind,
        explainer_detail="; ".join([method.detail, *entry.notes]),
        approximation=note,
        explained_class=_plain(explained_class),
        probability=probability,
        contributions=contributions,
        rest=rest,
        n_rest=max(0, len(values) - top_k),
        additivity_error=error,
        background_rows=method.background_rows,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def global_importance(
    pipeline: Pipeline,
    schema: FeatureSchema,
    sample: pd.DataFrame,
    background: pd.DataFrame | None = None,
    cache: ExplainerCache | None = None,
    cache_key: Hashable | None = None,
    max_rows: int = DEFAULT_SAMPLE_ROWS,
    time_budget_s: float | None = None,
) -> GlobalImportance:
    """Mean |SHAP| per original column over (up to ``max_rows`` of) ``sample``, largest first.

    ``background`` defaults to ``sample``. Tree models use exact path-dependent Tree SHAP when it
    is estimated to fit ``time_budget_s`` (default ``GLOBAL_BUDGET_S``), else Saabas; the
    permutation explainer is subsampled to what fits ``PERMUTATION_GLOBAL_BUDGET_S``. Either is
    reported in ``approximation``. Binary classifiers: the positive class; multiclass: each row's
    predicted class.
    """
    started = time.perf_counter()
    if not isinstance(max_rows, int) or max_rows < 1:
        raise InvalidInput(f"must be at least 1, got {max_rows!r}", argument="max_rows")
    if sample is None or len(sample) == 0:
        raise InvalidInput("no rows to compute importance on", argument="sample")
    missing = [c for c in schema.features if c not in sample.columns]
    if missing:
        raise InvalidInput(f"lacks model columns: {', '.join(missing)}", argument="sample")
    entry = _entry(pipeline, schema, sample if background is None else background, cache, cache_key)
    method = entry.bulk_method
    rows = _sample(sample[schema.features], max_rows)
    notes: list[str] = []
    if method.kind == "permutation":
        fits = int(PERMUTATION_GLOBAL_BUDGET_S / max(method.exact_s_per_row, 1e-9))
        n = max(min(len(rows), fits), min(len(rows), 20))
        if n < len(rows):
            notes.append(
                f"permutation explainer on a random {n}-row subsample of the {len(rows)} rows "
                f"(~{method.exact_s_per_row:.2g} s a row; budget {PERMUTATION_GLOBAL_BUDGET_S:g} s)"
            )
            rows = rows.sample(n=n, random_state=_SEED)
    raw = coerce_features(rows, schema, argument="sample")
    z = entry.encoder.encode(raw)
    x = entry.encoder.transform(z)
    phi, _, note = _run(entry, method, z, x, GLOBAL_BUDGET_S if time_budget_s is None else time_budget_s)
    if note:
        notes.append(note)
    if phi.shape[2] == 1:
        per_row = phi[:, :, 0]
        explained = f"{entry.classes[1]!r} (positive class)" if entry.is_classifier else None
    else:
        if entry.is_classifier and len(entry.classes) == 2:
            cls = np.ones(len(x), dtype=np.intp)
            explained = f"{entry.classes[1]!r} (positive class)"
        else:
            cls = np.argmax(np.asarray(entry.model.predict_proba(x)), axis=1)
            explained = "each row's predicted class"
        per_row = phi[np.arange(len(x)), :, cls]
    mean_abs = np.abs(per_row).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    space = method.space
    if space == "probability":
        description = "predicted probability"
    elif space == "log_odds":
        description = "log-odds of the positive class"
    elif entry.is_classifier:
        description = "raw margin (softmax logit)"
    else:
        description = "the model's prediction"
    return GlobalImportance(
        importances=[FeatureImportance(entry.encoder.features[i], float(mean_abs[i])) for i in order],
        output_space=space,
        output_description=f"mean |SHAP| in units of the {description}",
        explainer=method.kind,
        explainer_detail="; ".join([method.detail, *entry.notes]),
        approximation=" ".join(notes) or None,
        explained_class=explained,
        n_rows=len(x),
        background_rows=method.background_rows,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


# --------------------------------------------------------------------------------------------
# charts


def _figure() -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    fig.clear()
    return buffer.getvalue()


def _label(feature: str, value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = "missing" if value is None else str(value)
    label = f"{feature} = {text}"
    return label if len(label) <= 40 else label[:39] + "…"


def waterfall_png(explanation: RowExplanation) -> bytes:
    """A waterfall chart (800x500 PNG): base value, then each listed contribution and the rest,
    ending at the model's output; red pushes the output up, blue down.

    Uses a bare ``Figure`` with the Agg canvas (no pyplot state), so it is thread-safe and leaves
    nothing open.
    """
    items = [(_label(c.feature, c.value), c.shap) for c in explanation.contributions]
    if explanation.n_rest:
        items.append((f"{explanation.n_rest} other features", explanation.rest))
    fig, ax = _figure()
    start = explanation.base_value
    y_positions = list(range(len(items)))[::-1]
    for y, (label, value) in zip(y_positions, items):
        ax.barh(y, value, left=start, color="#d62728" if value >= 0 else "#1f77b4", height=0.6)
        align = "left" if value >= 0 else "right"
        ax.text(start + value, y, f" {value:+.3g} ", va="center", ha=align, fontsize=8)
        start += value
    ax.set_yticks(y_positions)
    ax.set_yticklabels([label for label, _ in items], fontsize=8)
    ax.axvline(explanation.base_value, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(explanation.output_value, color="black", linewidth=0.8)
    space = explanation.output_space.replace("_", "-")
    ax.set_xlabel(f"{space}: base {explanation.base_value:.3g} -> output {explanation.output_value:.3g}")
    title = f"Why {explanation.output_value:.3g}? ({explanation.output_description})"
    ax.set_title(title if len(title) <= 90 else title[:89] + "…", fontsize=10)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
    fig.tight_layout()
    return _png(fig)


def importance_png(importance: GlobalImportance, top_k: int = 20) -> bytes:
    """A horizontal bar chart (800x500 PNG) of the ``top_k`` largest mean |SHAP| values."""
    _check_top_k(top_k)
    items = importance.importances[:top_k]
    fig, ax = _figure()
    y_positions = list(range(len(items)))[::-1]
    ax.barh(y_positions, [i.mean_abs_shap for i in items], color="#1f77b4", height=0.6)
    ax.set_yticks(y_positions)
    ax.set_yticklabels([i.feature for i in items], fontsize=8)
    ax.set_xlabel(f"mean |SHAP| ({importance.output_space.replace('_', '-')}), {importance.n_rows} rows")
    ax.set_title(f"Feature importance ({importance.explainer} explainer)", fontsize=10)
    fig.tight_layout()
    return _png(fig)
