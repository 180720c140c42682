"""SHAP explanations of any registered model, in terms of the columns the user sent.

A model is seen through its inputs (:mod:`mlops_mcp.core.explain.inputs`):

* the standard pipeline ``preprocess -> model`` (every model ``train_model`` builds): tree and
  linear explainers run on the transformed matrix the estimator sees, and their values are summed
  back to the ORIGINAL input columns (the one-hot parts of ``home_team`` become one
  ``home_team`` contribution);
* any other model (a notebook's estimator or pipeline, any pyfunc) is given the raw columns as
  serving gives them. A bare scikit-learn estimator on numeric columns gets the exact tree and
  linear explainers on those columns; everything else is explained by permutation over the raw
  columns (:mod:`mlops_mcp.core.explain.permutation`).

Three rules hold for every result:

* the output space is stated (``probability``, ``log_odds``, ``raw`` or ``class_indicator``) and
  ``base_value + sum(all contributions) == output_value`` in it (checked when the explainer is
  built, and reported per call as ``additivity_error``);
* the explainer is chosen automatically and stated: exact Tree SHAP for tree ensembles (multi-class
  gradient boosting included, through its per-class margin trees), linear SHAP for linear models,
  the permutation estimator for anything else, including models SHAP cannot parse;
* whatever is not an exact Shapley value is said in ``approximation`` (the permutation estimate,
  Saabas for very deep forests, probability-space interventional Tree SHAP), and ``grouping`` says
  whether a categorical column's value is its Shapley value as one player (``whole_columns``) or
  the sum of its one-hot parts' values (``sum_of_one_hot_parts``, tree explainers on the standard
  pipeline).

Output spaces, and why:

* Binary tree boosting (sklearn ``GradientBoostingClassifier``): single rows are explained in
  PROBABILITY space with interventional Tree SHAP over a 100-row background, because "why 0.81?"
  should be answered in the unit of the 0.81. shap computes exact log-odds Shapley values against
  each background row and rescales them to that row's probability change: additive exactly, but
  not the exact Shapley values of the probability (on the demo model 2.6% median, 5.3% max
  relative L1 distance from them over 12 rows, measured with shap's ExactExplainer), so the result
  says so in ``approximation``. Global importance uses path-dependent Tree SHAP in LOG-ODDS space
  (exact, no background, ~15x faster), which keeps it inside its 1 s budget.
* ``HistGradientBoostingClassifier``: shap 0.51's interventional mode is NOT additive for it, so it
  is explained in log-odds (path-dependent, exact); the probability is reported alongside. The
  build-time additivity check makes this choice for any model, so a shap release that fixes it is
  picked up without a code change.
* Random forest classifiers: their trees average probabilities, so path-dependent Tree SHAP is
  exact in probability space with no background.
* Multi-class boosting (``GradientBoostingClassifier``, which shap refuses, and
  ``HistGradientBoostingClassifier``): the per-class raw margins (softmax logits), exact.
* Logistic regression: log-odds (the linear explainer's values are ``coef * (x - mean(background))``).
* Regressors: the raw prediction.
* Permutation: the probability of the explained class (classifiers), the prediction (regressors and
  numeric pyfunc outputs) or, for a model that only returns labels, the indicator "predicts this
  label" (its base value is the share of background rows given that label).

Grouping, measured (demo model, 100 background rows, 12 rows, exact grouped Shapley values from
shap's ExactExplainer over the 13 original columns): summing interventional Tree SHAP's one-hot
parts differs from the grouped values by 1e-8 relative L1 (median; 0.1% on the two team columns)
in log-odds, so whole-column masking for trees (2^13 model evaluations per background row) buys
nothing measurable there; the field states which one a result holds.

Heavy libraries (shap, sklearn, pandas' readers) are imported inside functions: the server imports
this module only when an explanation tool runs.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.explain.inputs import Encoded, PipelineInputs, RawInputs, coerce_record
from mlops_mcp.core.explain.permutation import PERMUTATIONS, model_rows_per_row, permutation_values
from mlops_mcp.core.explain.plot import importance_png, waterfall_png  # noqa: F401 - re-exported for callers
from mlops_mcp.core.models.pipeline import FeatureSchema, coerce_features
from mlops_mcp.core.values import plain

OutputSpace = Literal["probability", "log_odds", "raw", "class_indicator"]
ExplainerKind = Literal["tree", "linear", "permutation"]
Grouping = Literal["whole_columns", "sum_of_one_hot_parts"]

#: background rows for interventional Tree SHAP and the permutation explainer (cost grows linearly)
BACKGROUND_ROWS = 100
#: fewest background rows the permutation explainer goes down to for a slow model
MIN_BACKGROUND_ROWS = 10
#: background rows for the linear explainer, which only needs their mean (so more is free)
LINEAR_BACKGROUND_ROWS = 1000
#: rows a global importance is computed on by default
DEFAULT_SAMPLE_ROWS = 1000
#: time budgets for EXACT Tree SHAP; above them the Saabas approximation is used (and reported)
ROW_BUDGET_S = 0.05
GLOBAL_BUDGET_S = 1.0
#: time budget of the permutation explainer for one row: fewer permutations (then fewer
#: background rows) are used for models too slow to fit, and the result says so
PERMUTATION_ROW_BUDGET_S = 1.0
#: time budget for the permutation explainer over many rows; rows are subsampled to fit
PERMUTATION_GLOBAL_BUDGET_S = 10.0
#: measured on a 2-core machine (shap 0.51): path-dependent Tree SHAP costs 2.5-5 ns per unit of
#: (leaf depth)^2 summed over all leaves of all trees, per row; interventional ~8 ns per
#: (leaf x background row)
_PATH_DEPENDENT_S_PER_UNIT = 4e-9
_INTERVENTIONAL_S_PER_UNIT = 8e-9
_ADDITIVITY_TOL = 1e-6
_SEED = 0

_RESCALED = (
    "probability-space interventional Tree SHAP: shap computes exact log-odds Shapley values against each "
    "background row and rescales them to that row's probability change, so the values add up exactly but are "
    "not the exact Shapley values of the probability (the exact ones would need 2^(columns) model evaluations "
    "per background row)"
)


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
    ``probability`` the probability of ``explained_class`` (classifiers with probabilities),
    whatever the space. ``grouping`` says what a categorical column's value is: its Shapley value
    as one player (``whole_columns``) or the sum of its one-hot parts' values
    (``sum_of_one_hot_parts``).
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
    grouping: Grouping = "whole_columns"
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

    A categorical column's value per row is one number (see ``grouping``), so its importance is
    the mean of |that number| (not the sum of the parts' mean |SHAP|, which would overstate it).
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
    grouping: Grouping = "whole_columns"
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# what the model answers


Inputs = PipelineInputs | RawInputs


@dataclass
class _Answer:
    """How the model answers, read from its output on the background rows.

    ``proba``: a classifier with ``predict_proba`` (``classes``: its classes); ``value``: one number
    per row (regressors, numeric pyfunc output); ``values``: several numbers per row (a pyfunc
    returning a matrix; ``classes``: its column names); ``label``: labels only (a pyfunc or an
    estimator without probabilities).
    """

    kind: Literal["proba", "value", "values", "label"]
    classes: list[Any] | None
    call: Callable[[Any], Any]  # the model's method, on what ``inputs.model_input`` / ``x`` gives

    def read(self, model_input: Any) -> np.ndarray:
        """Outputs as floats (n, k), or labels (n,) for ``label``."""
        out = self.call(model_input)
        if hasattr(out, "to_numpy"):
            out = out.to_numpy()
        arr = np.asarray(out)
        if self.kind == "label":
            return arr.reshape(len(arr))
        arr = arr.astype(float)
        return arr.reshape(len(arr), -1)


def _answer(model: Any, inputs: Inputs, sample: Any) -> _Answer:
    """Decide how to read the model: probabilities, numbers or labels."""
    estimator = inputs.estimator if isinstance(inputs, PipelineInputs) else model
    if hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_"):
        classes = [plain(c) for c in estimator.classes_]
        return _Answer("proba", classes, estimator.predict_proba)
    out = estimator.predict(sample)
    columns = list(getattr(out, "columns", []))
    if hasattr(out, "to_numpy"):
        out = out.to_numpy()
    arr = np.asarray(out)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    numeric = arr.dtype.kind in "iuf"
    if numeric and arr.ndim == 1:
        return _Answer("value", None, estimator.predict)
    if numeric and arr.ndim == 2:
        names = (
            [str(c) for c in columns]
            if len(columns) == arr.shape[1]
            else [str(i) for i in range(arr.shape[1])]
        )
        return _Answer("values", names, estimator.predict)
    if arr.ndim == 1:
        return _Answer("label", None, estimator.predict)
    raise InvalidInput(
        f"the model's output has shape {arr.shape} and dtype {arr.dtype}: only numbers, one row of numbers "
        "or labels per input row can be explained",
        argument="model",
    )


# --------------------------------------------------------------------------------------------
# explanation methods


@dataclass
class _Method:
    """One way to compute SHAP values for this model, in one output space.

    ``values(enc, approximate)`` returns (phi (n, p_in, k) over ORIGINAL columns, base (n, k));
    ``outputs(enc)`` the model's output (n, k) in the same space, which additivity is checked
    against.
    """

    kind: ExplainerKind
    space: OutputSpace
    detail: str
    values: Callable[[Encoded, bool], tuple[np.ndarray, np.ndarray]]
    outputs: Callable[[Encoded], np.ndarray]
    grouping: Grouping = "whole_columns"
    exact_s_per_row: float = 0.0
    can_approximate: bool = False
    size: str = ""
    background_rows: int = 0
    #: what is approximate about every value this method gives (None: exact Shapley values)
    approximation: str | None = None


@dataclass
class _Entry:
    """Everything built once per model version: the inputs, the answer, the methods."""

    inputs: Inputs
    answer: _Answer
    row_method: _Method
    bulk_method: _Method
    notes: list[str] = field(default_factory=list)

    @property
    def is_classifier(self) -> bool:
        return self.answer.kind == "proba"


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


def _output_candidates(
    model: Any, is_classifier: bool, k: int, to_input: Callable[[np.ndarray], Any]
) -> list[tuple[OutputSpace, _Outputs]]:
    """The output spaces a k-output explanation of ``model`` could be in, most wanted first."""
    if not is_classifier:
        return [("raw", lambda x: np.asarray(model.predict(to_input(x)), dtype=float).reshape(len(x), -1))]
    n_classes = len(model.classes_)
    out: list[tuple[OutputSpace, _Outputs]] = []
    if k == 1 and n_classes == 2:
        out.append(
            ("probability", lambda x: np.asarray(model.predict_proba(to_input(x)), dtype=float)[:, 1:2])
        )
        if hasattr(model, "decision_function"):
            out.append(
                ("log_odds", lambda x: np.asarray(model.decision_function(to_input(x)), dtype=float)[:, None])
            )
    elif k == n_classes:
        out.append(("probability", lambda x: np.asarray(model.predict_proba(to_input(x)), dtype=float)))
        if n_classes > 2 and hasattr(model, "decision_function"):
            out.append(("raw", lambda x: np.asarray(model.decision_function(to_input(x)), dtype=float)))
    return out


def _verified(
    kind: ExplainerKind,
    detail: str,
    values: Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray]],
    inputs: Inputs,
    is_classifier: bool,
    probe: np.ndarray,
    approximate: bool = False,
    **extra: Any,
) -> _Method | None:
    """Run ``values`` (on the estimator's matrix) on a few rows and keep it only if
    base + sum(phi) equals a model output.

    Why: this is what decides the output space (probability vs log-odds vs raw) from what SHAP
    actually computes rather than from assumptions per model class, and it rejects explainers a
    given shap release gets wrong (e.g. interventional Tree SHAP on HistGradientBoosting).
    """
    phi, base = values(probe, approximate)
    total = phi.sum(axis=1) + base[None, :]
    model = inputs.estimator
    for space, outputs in _output_candidates(model, is_classifier, phi.shape[2], inputs.estimator_input):
        expected = outputs(probe)
        if expected.shape == total.shape and np.allclose(total, expected, rtol=0, atol=_ADDITIVITY_TOL):
            grouping: Grouping = (
                "sum_of_one_hot_parts" if (kind == "tree" and inputs.one_hot) else "whole_columns"
            )

            def on_columns(
                enc: Encoded, approximate: bool, _values: Any = values
            ) -> tuple[np.ndarray, np.ndarray]:
                phi, base = _values(enc.x, approximate)
                return inputs.regroup(phi), np.repeat(base[None, :], len(enc.x), axis=0)

            def on_x(enc: Encoded, _outputs: _Outputs = outputs) -> np.ndarray:
                return _outputs(enc.x)

            return _Method(
                kind=kind,
                space=space,
                detail=detail,
                values=on_columns,
                outputs=on_x,
                grouping=grouping,
                **extra,
            )
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


def _linear_method(inputs: Inputs, is_classifier: bool, x_bg: np.ndarray) -> _Method | None:
    import shap

    # an explicit masker: given a bare matrix, shap would silently keep only 100 of its rows
    explainer = shap.LinearExplainer(inputs.estimator, shap.maskers.Independent(x_bg, max_samples=len(x_bg)))
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float)).reshape(-1)

    def values(x: np.ndarray, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
        return _as_3d(explainer.shap_values(x)), base

    detail = f"shap.LinearExplainer (exact, interventional: coef * (x - mean of {len(x_bg)} background rows))"
    return _verified("linear", detail, values, inputs, is_classifier, x_bg[:5], background_rows=len(x_bg))


def _per_class_trees(model: Any, x: np.ndarray) -> dict[str, Any] | None:
    """A multi-class ``GradientBoostingClassifier`` as shap's dict model of its per-class margins.

    shap refuses it ("only supported for binary classification"), yet each boosting stage holds
    one regression tree per class whose scaled outputs add up to that class's raw margin (softmax
    logit). In shap's dict format every tree gets one output column per class, zero except its own,
    so one explainer returns all classes' exact margin values. The constant start of each margin
    (the prior's log-probabilities) is read off the model as ``decision_function - trees``; a
    custom ``init`` estimator whose start varies by row is not supported (None).
    """
    from sklearn.ensemble import GradientBoostingClassifier

    if not isinstance(model, GradientBoostingClassifier) or model.estimators_.shape[1] < 2:
        return None
    k = model.estimators_.shape[1]
    rate = float(model.learning_rate)
    trees = []
    summed = np.zeros((len(x), k))
    for stage in model.estimators_:
        for c, regressor in enumerate(stage):
            t = regressor.tree_
            values = np.zeros((t.node_count, k))
            values[:, c] = t.value[:, 0, 0] * rate
            left, right = t.children_left, t.children_right
            default = (
                np.where(np.asarray(t.missing_go_to_left).astype(bool), left, right)
                if hasattr(t, "missing_go_to_left")
                else left
            )
            trees.append(
                {
                    "children_left": left,
                    "children_right": right,
                    "children_default": default,
                    "features": t.feature,
                    "thresholds": t.threshold.astype(np.float64),
                    "values": values,
                    "node_sample_weight": t.weighted_n_node_samples.astype(np.float64),
                }
            )
            summed[:, c] += regressor.predict(x) * rate
    start = np.asarray(model.decision_function(x), dtype=float) - summed
    if not np.allclose(start, start[:1], rtol=0, atol=1e-9):
        return None
    return {
        "trees": trees,
        "base_offset": start[0],
        "tree_output": "raw_value",
        "input_dtype": np.float32,
        "internal_dtype": np.float64,
    }


def _tree_methods(
    inputs: Inputs, is_classifier: bool, x_bg: np.ndarray | None, probe: np.ndarray
) -> tuple[_Method, _Method] | str:
    """(row method, bulk method) for a tree ensemble, or why shap cannot explain it as one."""
    import shap

    model = inputs.estimator
    source = "shap.TreeExplainer"
    try:
        path = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a tree model shap handles"
        reason = f"shap.TreeExplainer cannot explain {type(model).__name__}: {str(exc).splitlines()[0][:160]}"
        try:
            tree_model = _per_class_trees(model, probe)
        except Exception:  # noqa: BLE001 - not what it looked like: keep shap's reason
            tree_model = None
        if tree_model is None:
            return reason
        path = shap.TreeExplainer(tree_model, feature_perturbation="tree_path_dependent")
        model_source = tree_model
        source = f"shap.TreeExplainer on the per-class margin trees of the {model.estimators_.shape[1]}-class {type(model).__name__}"
    else:
        model_source = model
    path_s, interv_s, size = _tree_cost(path)
    path_base = np.atleast_1d(np.asarray(path.expected_value, dtype=float)).reshape(-1)

    def path_values(x: np.ndarray, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
        return _as_3d(path.shap_values(x, check_additivity=False, approximate=approximate)), path_base

    # verify on one row with Saabas if exact would be slow: it is additive in the same space
    path_method = _verified(
        "tree",
        f"{source} (exact, path-dependent: no background needed)",
        path_values,
        inputs,
        is_classifier,
        probe[:1] if path_s > ROW_BUDGET_S else probe[:3],
        approximate=path_s > ROW_BUDGET_S,
        exact_s_per_row=path_s,
        can_approximate=True,
        size=size,
    )
    if path_method is None:
        return f"{source}'s values did not add up to the model's output"
    row_method = path_method
    if x_bg is not None and is_classifier and path_method.space != "probability" and len(model.classes_) == 2:
        cost = interv_s * len(x_bg)
        # scikit-learn's trees compare float32 inputs; shap rounds the explained rows to its model's
        # input dtype but NOT the background, so a background value just past a threshold would
        # take the other branch than in the model (measured on the demo model: 1e-3 off in
        # log-odds, and the probability explainer failed its additivity check)
        dtype = getattr(path.model, "input_dtype", np.float64)
        x_bg = np.asarray(x_bg, dtype=dtype).astype(np.float64)
        if cost <= ROW_BUDGET_S:
            try:
                interv = shap.TreeExplainer(
                    model_source, data=x_bg, model_output="probability", feature_perturbation="interventional"
                )
                interv_base = np.atleast_1d(np.asarray(interv.expected_value, dtype=float)).reshape(-1)

                def interv_values(x: np.ndarray, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
                    phi = _as_3d(interv.shap_values(x, check_additivity=False))
                    if phi.shape[2] == 2:  # "probability_doubled" models give both classes
                        return phi[:, :, 1:], interv_base[1:]
                    return phi, interv_base

                method = _verified(
                    "tree",
                    f"{source} (interventional, {len(x_bg)} background rows, probability)",
                    interv_values,
                    inputs,
                    is_classifier,
                    x_bg[:5],
                    exact_s_per_row=cost,
                    size=size,
                    background_rows=len(x_bg),
                    approximation=_RESCALED,
                )
                if method is not None and method.space == "probability":
                    row_method = method
            except Exception:  # noqa: BLE001, S110 - shap refuses some model/output combinations
                pass
    return row_method, path_method


def _black_box(inputs: Inputs, answer: _Answer) -> tuple[Callable[[Any, Any], np.ndarray], OutputSpace]:
    """The explained output as a function of (``Z``, category tables): what the permutation
    explainer evaluates. Labels are handled per call (see ``_permutation_method``)."""

    def model_input(z: np.ndarray, tables: Any) -> Any:
        return inputs.model_input(z, tables)

    if answer.kind == "proba":
        binary = len(answer.classes or []) == 2

        def proba(z: np.ndarray, tables: Any) -> np.ndarray:
            p = answer.read(model_input(z, tables))
            return p[:, 1:2] if binary else p

        return proba, "probability"

    def numbers(z: np.ndarray, tables: Any) -> np.ndarray:
        return answer.read(model_input(z, tables))

    return numbers, ("class_indicator" if answer.kind == "label" else "raw")


def _permutation_method(inputs: Inputs, answer: _Answer, z_bg: np.ndarray) -> _Method:
    """Shapley values by permutation over the ORIGINAL columns (``Z``), in this process's numpy
    (see :mod:`mlops_mcp.core.explain.permutation`), sized to ``PERMUTATION_ROW_BUDGET_S`` a row."""
    n_features = z_bg.shape[1]
    f, space = _black_box(inputs, answer)
    tables = getattr(inputs, "tables", None)

    # time one permutation's worth of model rows, then fit permutations (and if need be background
    # rows) into the per-row budget
    block = np.tile(z_bg, (min(2 * n_features + 1, max(1, 20_000 // len(z_bg))), 1))
    timings: list[float] = []
    while len(timings) < 2 and sum(timings) < 0.2:  # a fast model is timed twice (the first call warms up)
        started = time.perf_counter()
        if answer.kind == "label":
            answer.read(inputs.model_input(block, tables))
        else:
            f(block, tables)
        timings.append(time.perf_counter() - started)
    per_model_row = min(timings) / len(block)
    background_rows = len(z_bg)
    one = model_rows_per_row(n_features, background_rows, 1) * per_model_row
    fits = PERMUTATION_ROW_BUDGET_S / max(one, 1e-12)
    permutations = PERMUTATIONS if fits >= PERMUTATIONS else max(1, int(fits))
    note = None
    if one > PERMUTATION_ROW_BUDGET_S:
        background_rows = max(MIN_BACKGROUND_ROWS, int(background_rows * PERMUTATION_ROW_BUDGET_S / one))
        z_bg = z_bg[:background_rows]
    if permutations < PERMUTATIONS or background_rows < BACKGROUND_ROWS:
        note = (
            f"the model takes ~{per_model_row * 1e6:.3g} us a row, so {permutations} permutation(s) and "
            f"{background_rows} background rows fit the {PERMUTATION_ROW_BUDGET_S:g} s budget of a row"
        )
    s_per_row = model_rows_per_row(n_features, len(z_bg), permutations) * per_model_row

    def run(fz: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return permutation_values(fz, z, z_bg, permutations=permutations, seed=_SEED)

    if answer.kind == "label":

        def values(enc: Encoded, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
            """Each row: the indicator of ITS predicted label (rows grouped by label)."""
            labels = answer.read(inputs.model_input(enc.z, enc.tables))
            phi = np.zeros((len(enc.z), n_features, 1))
            base = np.zeros((len(enc.z), 1))
            for label in _distinct(labels):
                rows = (
                    np.flatnonzero(labels == label)
                    if not _is_nan(label)
                    else np.flatnonzero([_is_nan(v) for v in labels])
                )

                def indicator(z: np.ndarray, _label: Any = label) -> np.ndarray:
                    got = answer.read(inputs.model_input(z, enc.tables))
                    return (got == _label).astype(float)[:, None]

                phi[rows], base[rows] = run(indicator, enc.z[rows])
            return phi, base

        def outputs(enc: Encoded) -> np.ndarray:
            return np.ones((len(enc.z), 1))  # each row's own label is the one its output indicates

    else:

        def values(enc: Encoded, approximate: bool) -> tuple[np.ndarray, np.ndarray]:
            return run(lambda z: f(z, enc.tables), enc.z)

        def outputs(enc: Encoded) -> np.ndarray:
            return f(enc.z, enc.tables)

    model_name = type(inputs.estimator if isinstance(inputs, PipelineInputs) else inputs.model).__name__
    where = (
        "the pipeline's original columns"
        if isinstance(inputs, PipelineInputs)
        else "the raw input columns the model is given"
    )
    sampled = (
        f"permutation estimate: {permutations} random permutation(s) of the columns, each walked forward and back, "
        f"against {len(z_bg)} background rows; the values add up exactly and converge to the Shapley values as "
        f"permutations grow" + (f" ({note})" if note else "")
    )
    return _Method(
        kind="permutation",
        space=space,
        detail=(
            f"permutation explainer (shap.PermutationExplainer's algorithm) on {model_name} over {where} "
            f"({n_features}), whole columns masked, {len(z_bg)} background rows, {permutations} permutations"
        ),
        values=values,
        outputs=outputs,
        grouping="whole_columns",
        exact_s_per_row=s_per_row,
        background_rows=len(z_bg),
        approximation=sampled,
    )


def _distinct(labels: np.ndarray) -> list[Any]:
    seen: list[Any] = []
    for v in labels.tolist():
        if not any(v == s or (_is_nan(v) and _is_nan(s)) for s in seen):
            seen.append(v)
    return seen


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _inputs(model: Any, schema: FeatureSchema) -> Inputs:
    """The standard pipeline's inputs when the model is one (and its encoder can be built), else
    the raw columns."""
    steps = getattr(model, "named_steps", None)
    if steps is not None and "preprocess" in steps and "model" in steps:
        try:
            return PipelineInputs(model, schema)
        except Exception:  # noqa: BLE001, S110 - a notebook pipeline that only looks like ours
            pass
    return RawInputs(model, schema)


def _build(
    model: Any, schema: FeatureSchema, background: pd.DataFrame | None, probe: pd.DataFrame | None
) -> _Entry:
    """Pick and build the explainer for a model version (the expensive part, done once).

    Without background rows only path-dependent Tree SHAP is possible (it needs none); it is
    verified on ``probe`` (the rows being explained)."""
    inputs = _inputs(model, schema)
    if background is not None and len(background) == 0:
        background = None
    if background is not None:
        missing = [c for c in schema.features if c not in background.columns]
        if missing:
            raise InvalidInput(f"background lacks model columns: {', '.join(missing)}", argument="background")
        raw_bg = coerce_features(background[schema.features], schema, argument="background")
        small = _sample(raw_bg, BACKGROUND_ROWS).reset_index(drop=True)
    else:
        raw_bg = small = None
    rows = small if small is not None else probe
    assert rows is not None
    inputs.prepare(rows)
    enc_rows = inputs.encode(rows)
    sample_input = (
        inputs.model_input(enc_rows.z, enc_rows.tables) if isinstance(inputs, RawInputs) else enc_rows.x
    )
    answer = _answer(model, inputs, sample_input)
    is_classifier = answer.kind == "proba"
    notes: list[str] = []
    row = bulk = None
    if inputs.estimator is not None and answer.kind in ("proba", "value"):
        x_rows = enc_rows.x if enc_rows.x is not None else enc_rows.z
        x_bg = x_rows if small is not None else None
        if _is_linear(inputs.estimator):
            if raw_bg is None:
                notes.append("the linear explainer needs background rows")
            else:
                x_lin = inputs.encode(_sample(raw_bg, LINEAR_BACKGROUND_ROWS).reset_index(drop=True)).x
                try:
                    row = bulk = _linear_method(inputs, is_classifier, x_lin)
                    if row is None:
                        notes.append(
                            "the linear explainer's values did not add up; used the permutation explainer"
                        )
                except Exception as exc:  # noqa: BLE001 - shap refuses some linear models: fall back, don't fail
                    notes.append(
                        f"shap.LinearExplainer failed ({type(exc).__name__}: {exc}); used the permutation explainer"
                    )
        else:
            methods = _tree_methods(inputs, is_classifier, x_bg, x_rows)
            if isinstance(methods, str):
                notes.append(f"{methods}; used the permutation explainer")
            else:
                row, bulk = methods
    elif inputs.estimator is None:
        what = "pyfunc" if not hasattr(model, "get_params") else type(model).__name__
        notes.append(f"{what} is explained as a black box on the columns it is given")
    if row is None or bulk is None:
        if small is None:
            raise InvalidInput(
                "background rows (a sample of the data the model was trained on) are needed to explain this model",
                argument="background",
            )
        row = bulk = _permutation_method(inputs, answer, enc_rows.z)
    return _Entry(inputs=inputs, answer=answer, row_method=row, bulk_method=bulk, notes=notes)


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


def _entry(
    model: Any,
    schema: FeatureSchema,
    background: Any,
    cache: ExplainerCache | None,
    cache_key: Hashable | None,
    probe: Callable[[], pd.DataFrame] | None = None,
) -> _Entry:
    """The cached entry, or a new one. ``background`` may be a callable: it is only called (e.g.
    the reference profile read) when the entry is built."""

    def build() -> _Entry:
        rows = background() if callable(background) else background
        return _build(model, schema, rows, probe() if (rows is None and probe is not None) else None)

    if cache is None or cache_key is None:
        return build()
    return cache.get_or_build(cache_key, build)


# --------------------------------------------------------------------------------------------
# computing




def _run(method: _Method, enc: Encoded, budget_s: float) -> tuple[np.ndarray, np.ndarray, str | None]:
    """SHAP values (n, p_in, k) over original columns and base (n, k), exact if it fits the budget."""
    approximate = method.can_approximate and method.exact_s_per_row * len(enc.z) > budget_s
    note = method.approximation
    if approximate:
        note = (
            f"Saabas approximation (shap.TreeExplainer approximate=True): exact Tree SHAP of this model "
            f"({method.size}) would take ~{method.exact_s_per_row * len(enc.z):.2g} s for {len(enc.z)} row(s), "
            f"over the "
            f"{budget_s:g} s budget. Saabas values are additive (they sum to the output) but are path "
            f"attributions, not exact Shapley values."
        )
    phi, base = method.values(enc, approximate)
    return phi, base, note


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise InvalidInput(f"must be a whole number of at least 1, got {top_k!r}", argument="top_k")


def _describe(space: OutputSpace, entry: _Entry, explained_class: Any | None) -> str:
    if space == "probability":
        return f"predicted probability of class {explained_class!r}"
    if space == "log_odds":
        return f"log-odds of class {explained_class!r} (probability = 1 / (1 + exp(-log_odds)))"
    if space == "class_indicator":
        return (
            f"1 if the model predicts {explained_class!r}, else 0 (the base value is the share of background rows "
            f"predicted {explained_class!r})"
        )
    if entry.is_classifier:
        return f"raw margin (softmax logit) of class {explained_class!r}"
    if entry.answer.kind == "values":
        return f"output column {explained_class!r} of the model (the largest for this row)"
    return "the model's prediction"


def _model_input(entry: _Entry, enc: Encoded) -> Any:
    """What the model's own method (``entry.answer``) is called on: the standard pipeline's final
    estimator gets the transformed matrix, any other model the raw frame serving would give it."""
    if isinstance(entry.inputs, PipelineInputs):
        return enc.x
    return entry.inputs.decode(enc.z, enc.tables)


def _checked_row(
    row: Any, schema: FeatureSchema
) -> tuple[list[Any] | pd.DataFrame, Callable[[], pd.DataFrame]]:
    """The row checked and typed (refused before any model work): its values (a dict row, the
    hot path) or coerced frame, and how to get it as a coerced frame (to build an explainer)."""
    if isinstance(row, dict):
        from mlops_mcp.core.serving.predictor import check_columns

        check_columns([row], schema.features, argument="row")
        values = coerce_record(row, schema)
        return values, lambda: coerce_features(
            pd.DataFrame.from_records([row], columns=schema.features), schema, argument="row"
        )
    if not isinstance(row, pd.DataFrame):
        raise InvalidInput(
            f"give one row as an object of column: value, got {type(row).__name__}", argument="row"
        )
    raw = coerce_features(row, schema, argument="row")
    if len(raw) != 1:
        raise InvalidInput(f"explain one row at a time, got {len(raw)}", argument="row")
    return raw, lambda: raw


def explain_row(
    model: Any,
    schema: FeatureSchema,
    row: pd.DataFrame | dict[str, Any],
    background: Any,
    top_k: int = 10,
    cache: ExplainerCache | None = None,
    cache_key: Hashable | None = None,
    time_budget_s: float | None = None,
) -> RowExplanation:
    """Explain one prediction: base value + per-column contributions = the model's output.

    Parameters
    ----------
    model, schema : any registered model (the standard pipeline, a scikit-learn estimator or
        pipeline, an MLflow pyfunc) and its feature schema.
    row : exactly one raw row with the model's columns: a one-row DataFrame or a dict of
        column: value (the JSON form; validated like ``coerce_features`` without pandas).
    background : the version's reference sample (raw), or a callable returning it (called only
        when the explainer is built), or None: then only tree models (path-dependent Tree SHAP,
        which needs no background) can be explained.
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
    checked, as_frame = _checked_row(row, schema)
    entry = _entry(model, schema, background, cache, cache_key, probe=as_frame)
    method = entry.row_method
    answer = entry.answer
    enc = entry.inputs.encode_record(checked) if isinstance(checked, list) else entry.inputs.encode(checked)
    phi, base, note = _run(method, enc, ROW_BUDGET_S if time_budget_s is None else time_budget_s)
    explained_class = None
    probability = None
    if answer.kind == "proba":
        proba = answer.read(_model_input(entry, enc))[0]
        if method.space == "probability":  # the same numbers: don't predict twice (slow for forests)
            outputs = proba[1:] if phi.shape[2] == 1 else proba
        else:
            outputs = method.outputs(enc)[0]
        predicted = int(np.argmax(proba))
        classes = answer.classes or []
        prediction = classes[predicted]
        cls = 1 if len(classes) == 2 else predicted
        explained_class = classes[cls]
        probability = float(proba[cls])
        col = cls if phi.shape[2] > 1 else 0
    elif answer.kind == "label":
        outputs = method.outputs(enc)[0]
        prediction = answer.read(_model_input(entry, enc))[0]
        explained_class = prediction
        col = 0
    else:
        outputs = method.outputs(enc)[0]
        if answer.kind == "values":
            col = int(np.argmax(outputs))
            explained_class = (answer.classes or [])[col]
            prediction = explained_class
        else:
            col = 0
            prediction = plain(outputs[0])
    values = phi[0, :, col]
    output_value = float(outputs[col])
    base_value = float(base[0, col])
    order = np.argsort(-np.abs(values), kind="stable")
    top = order[:top_k]
    shown = enc.shown[0]
    features = entry.inputs.features
    contributions = [
        Contribution(feature=features[i], value=plain(shown[i]), shap=float(values[i])) for i in top
    ]
    rest = float(values[order[top_k:]].sum())
    error = abs(base_value + float(values.sum()) - output_value)
    return RowExplanation(
        prediction=plain(prediction),
        output_value=output_value,
        base_value=base_value,
        output_space=method.space,
        output_description=_describe(method.space, entry, explained_class),
        explainer=method.kind,
        explainer_detail="; ".join([method.detail, *entry.notes]),
        approximation=note,
        explained_class=plain(explained_class),
        probability=probability,
        contributions=contributions,
        rest=rest,
        n_rest=max(0, len(values) - top_k),
        additivity_error=error,
        background_rows=method.background_rows,
        grouping=method.grouping,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def global_importance(
    model: Any,
    schema: FeatureSchema,
    sample: pd.DataFrame,
    background: Any = None,
    cache: ExplainerCache | None = None,
    cache_key: Hashable | None = None,
    max_rows: int = DEFAULT_SAMPLE_ROWS,
    time_budget_s: float | None = None,
    argument: str = "sample",
) -> GlobalImportance:
    """Mean |SHAP| per original column over (up to ``max_rows`` of) ``sample``, largest first.
    ``argument``: what errors about the rows name (the caller's own name for them).

    ``background`` defaults to ``sample`` (then the importance is relative to that data's own
    average). Tree models use exact path-dependent Tree SHAP when it is estimated to fit
    ``time_budget_s`` (default ``GLOBAL_BUDGET_S``), else Saabas; the permutation explainer is
    subsampled to what fits ``PERMUTATION_GLOBAL_BUDGET_S``. Either is reported in
    ``approximation``. Binary classifiers: the positive class; multiclass: each row's predicted
    class; label-only models: each row's predicted label.
    """
    started = time.perf_counter()
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InvalidInput(f"must be at least 1, got {max_rows!r}", argument="max_rows")
    if sample is None or len(sample) == 0:
        raise InvalidInput("no rows to compute importance on", argument=argument)
    missing = [c for c in schema.features if c not in sample.columns]
    if missing:
        raise InvalidInput(f"lacks model columns: {', '.join(missing)}", argument=argument)
    entry = _entry(model, schema, sample if background is None else background, cache, cache_key)
    method = entry.bulk_method
    answer = entry.answer
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
    raw = coerce_features(rows, schema, argument=argument)
    enc = entry.inputs.encode(raw)
    phi, _, note = _run(method, enc, GLOBAL_BUDGET_S if time_budget_s is None else time_budget_s)
    if note:
        notes.insert(0, note)
    n_rows = len(enc.z)
    if phi.shape[2] == 1:
        per_row = phi[:, :, 0]
        if answer.kind == "proba":
            explained = f"{(answer.classes or [None, None])[1]!r} (positive class)"
        elif answer.kind == "label":
            explained = "each row's predicted label"
        else:
            explained = None
    else:
        if answer.kind == "proba" and len(answer.classes or []) == 2:
            cls = np.ones(n_rows, dtype=np.intp)
            explained = f"{(answer.classes or [None, None])[1]!r} (positive class)"
        elif answer.kind == "proba":
            cls = np.argmax(answer.read(_model_input(entry, enc)), axis=1)
            explained = "each row's predicted class"
        else:
            cls = np.argmax(method.outputs(enc), axis=1)
            explained = "each row's largest output column"
        per_row = phi[np.arange(n_rows), :, cls]
    mean_abs = np.abs(per_row).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    space = method.space
    if space == "probability":
        description = "predicted probability"
    elif space == "log_odds":
        description = "log-odds of the positive class"
    elif space == "class_indicator":
        description = "indicator that the model predicts each row's label (0 or 1)"
    elif entry.is_classifier:
        description = "raw margin (softmax logit)"
    else:
        description = "the model's prediction"
    features = entry.inputs.features
    return GlobalImportance(
        importances=[FeatureImportance(features[i], float(mean_abs[i])) for i in order],
        output_space=space,
        output_description=f"mean |SHAP| in units of the {description}",
        explainer=method.kind,
        explainer_detail="; ".join([method.detail, *entry.notes]),
        approximation=" ".join(notes) or None,
        explained_class=explained,
        n_rows=n_rows,
        background_rows=method.background_rows,
        grouping=method.grouping,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )
