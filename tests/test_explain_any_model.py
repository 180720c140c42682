"""The explanation engine on models it did not train (issue 11, "your own models"), on multi-class
tree models (issue 11), and what a categorical column's value is (issue 13, point 7).

Independent references: shap run directly on the same matrices, a brute-force Shapley value over
all coalitions of a tree's conditional expectations (no shap), and shap's ExactExplainer over the
original columns for grouped values.
"""

from itertools import combinations
from math import factorial
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.explain.permutation import permutation_values
from mlops_mcp.core.explain.shap_engine import explain_row, global_importance
from mlops_mcp.core.models.encoding import FastEncoder
from mlops_mcp.core.models.pipeline import build_pipeline, coerce_features, feature_sources, infer_schema
from mlops_mcp.core.synthetic import FEATURES, generate_games

TOL = 1e-6


def _additive(exp: Any) -> float:
    return abs(exp.base_value + sum(c.shap for c in exp.contributions) + exp.rest - exp.output_value)


@pytest.fixture(scope="module")
def games() -> pd.DataFrame:
    return generate_games(seasons=2, seed=11)


@pytest.fixture(scope="module")
def schema(games):
    return infer_schema(games[list(FEATURES) + ["home_win"]], "home_win")


@pytest.fixture(scope="module")
def X(games, schema) -> pd.DataFrame:
    return games[schema.features]


@pytest.fixture(scope="module")
def three_way(games) -> pd.Series:
    return pd.cut(games["point_margin"], [-100, -6, 6, 100], labels=["away", "close", "home"]).astype(str)


NUMERIC = ["home_rating", "away_rating", "pace", "home_injuries"]


# ------------------------------------------------------------------ brute-force path-dependent SHAP


def _conditional(tree: Any, x: np.ndarray, known: set[int], node: int = 0) -> float:
    """E[tree(X) | X_known = x_known] the path-dependent way: follow x on known features, else
    average both children weighted by their training cover (Lundberg et al. 2018, Algorithm 1)."""
    left, right = tree.children_left[node], tree.children_right[node]
    if left < 0:
        return float(tree.value[node, 0, 0])
    feature = tree.feature[node]
    if feature in known:
        return _conditional(tree, x, known, left if x[feature] <= tree.threshold[node] else right)
    wl, wr = tree.weighted_n_node_samples[left], tree.weighted_n_node_samples[right]
    return (wl * _conditional(tree, x, known, left) + wr * _conditional(tree, x, known, right)) / (wl + wr)


def _shapley(v: Any, p: int) -> np.ndarray:
    """Exact Shapley values of the set function v over p players (all 2^p coalitions)."""
    phi = np.zeros(p)
    for j in range(p):
        others = [i for i in range(p) if i != j]
        for size in range(p):
            weight = factorial(size) * factorial(p - size - 1) / factorial(p)
            for coalition in combinations(others, size):
                s = set(coalition)
                phi[j] += weight * (v(s | {j}) - v(s))
    return phi


def test_multiclass_gradient_boosting_is_exact_tree_shap(games, three_way):
    """Issue 11: shap refuses multi-class GradientBoostingClassifier, and the engine used to fall
    back to a permutation explainer (6.6 s for the first row). Now: exact path-dependent Tree SHAP
    of each class's raw margin, checked against a brute-force Shapley value of the trees' own
    conditional expectations (no shap involved)."""
    frame = games[NUMERIC]
    schema = infer_schema(frame.assign(y=three_way), "y")
    pipe = build_pipeline(
        "gradient_boosting", "classification", schema, {"n_estimators": 15, "max_depth": 2}
    ).fit(frame, three_way)
    row = frame.iloc[[9]]
    exp = explain_row(pipe, schema, row, frame.iloc[:100], top_k=len(NUMERIC))
    model = pipe.named_steps["model"]
    assert exp.explainer == "tree" and exp.output_space == "raw" and exp.approximation is None
    assert "per-class margin trees" in exp.explainer_detail and "3-class" in exp.explainer_detail
    assert exp.grouping == "whole_columns"  # numeric columns only: one model column each

    x = pipe.named_steps["preprocess"].transform(row).astype(np.float32)[0]
    predicted = int(np.argmax(model.predict_proba(x[None, :])[0]))
    assert exp.explained_class == model.classes_[predicted] == exp.prediction
    assert exp.probability == pytest.approx(float(model.predict_proba(x[None, :])[0, predicted]), abs=1e-12)
    margin = float(model.decision_function(x[None, :])[0, predicted])
    assert exp.output_value == pytest.approx(margin, abs=1e-9)
    assert _additive(exp) < TOL

    trees = [stage[predicted].tree_ for stage in model.estimators_]
    rate = model.learning_rate
    start = margin - rate * sum(_conditional(t, x, set(range(len(x)))) for t in trees)

    def v(known: set[int]) -> float:
        return start + rate * sum(_conditional(t, x, known) for t in trees)

    expected = _shapley(v, len(x))
    got = {c.feature: c.shap for c in exp.contributions}
    for j, feature in enumerate(NUMERIC):
        assert got[feature] == pytest.approx(expected[j], abs=1e-9)
    assert exp.base_value == pytest.approx(v(set()), abs=1e-9)

    imp = global_importance(pipe, schema, frame.iloc[:300], frame.iloc[:100])
    assert imp.explainer == "tree" and imp.n_rows == 300 and imp.approximation is None
    assert imp.explained_class == "each row's predicted class"


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "random_forest"])
def test_other_multiclass_trees_are_exact(estimator, schema, X, three_way):
    """HistGradientBoosting (per-class margins) and random forests (per-class probabilities) are
    explained exactly by shap; the engine's values equal shap's run directly, summed per column."""
    import shap

    params = (
        {"max_iter": 15, "max_leaf_nodes": 8}
        if estimator.startswith("hist")
        else {"n_estimators": 20, "max_depth": 5}
    )
    pipe = build_pipeline(estimator, "classification", schema, params).fit(X, three_way)
    row = X.iloc[[9]]
    exp = explain_row(pipe, schema, row, X.iloc[:100], top_k=len(schema.features))
    assert exp.explainer == "tree" and exp.approximation is None
    assert exp.output_space == ("raw" if estimator.startswith("hist") else "probability")
    assert exp.grouping == "sum_of_one_hot_parts"
    assert _additive(exp) < TOL
    model = pipe.named_steps["model"]
    x = pipe.named_steps["preprocess"].transform(coerce_features(row, schema))
    k = list(model.classes_).index(exp.explained_class)
    phi = np.asarray(shap.TreeExplainer(model).shap_values(x, check_additivity=False))[0, :, k]
    grouped = pd.Series(phi, index=feature_sources(pipe)).groupby(level=0).sum()
    for c in exp.contributions:
        assert c.shap == pytest.approx(float(grouped[c.feature]), abs=1e-9)


# ---------------------------------------------------------------------------- models given raw columns


class LabelModel:
    """A pyfunc-like model that only returns labels (as a custom MLflow pyfunc may)."""

    def __init__(self, fitted: Any) -> None:
        self.fitted = fitted

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.where(self.fitted.predict(frame[NUMERIC]) == 1, "home", "away")


class ScoreModel:
    """A pyfunc-like model returning one number per row."""

    def __init__(self, fitted: Any) -> None:
        self.fitted = fitted

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        return pd.Series(self.fitted.predict_proba(frame[NUMERIC])[:, 1] * 100.0)


def _raw_schema(frame: pd.DataFrame) -> Any:
    return infer_schema(frame, target=None)


def test_bare_estimator_on_numeric_columns_gets_exact_tree_shap(games):
    """A notebook's RandomForestClassifier fitted on a DataFrame: the raw columns are what its trees
    split on, so Tree SHAP applies to them directly (no permutation, no grouping question)."""
    import shap
    from sklearn.ensemble import RandomForestClassifier

    frame = games[NUMERIC]
    model = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(frame, games["home_win"])
    schema = _raw_schema(frame)
    row = {"home_rating": 3.5, "away_rating": -1.0, "pace": 101.0, "home_injuries": 2}
    exp = explain_row(model, schema, row, frame.iloc[:100], top_k=4)
    assert exp.explainer == "tree" and exp.output_space == "probability" and exp.grouping == "whole_columns"
    assert exp.approximation is None and _additive(exp) < TOL
    x = pd.DataFrame([row])[NUMERIC].astype(float)
    assert exp.output_value == pytest.approx(float(model.predict_proba(x)[0, 1]), abs=1e-12)
    phi = np.asarray(shap.TreeExplainer(model).shap_values(x.to_numpy(), check_additivity=False))[0, :, 1]
    got = {c.feature: c.shap for c in exp.contributions}
    for j, feature in enumerate(NUMERIC):
        assert got[feature] == pytest.approx(float(phi[j]), abs=1e-9)
    assert {c.feature: c.value for c in exp.contributions}["home_injuries"] == 2.0


@pytest.fixture(scope="module")
def notebook_pipeline(games) -> tuple[Any, pd.DataFrame]:
    """A notebook's own sklearn pipeline on raw columns (its own one-hot encoder, not ours)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = games[["home_team", "away_team", *NUMERIC]]
    pipe = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["home_team", "away_team"]), (StandardScaler(), NUMERIC)
        ),
        LogisticRegression(max_iter=500),
    ).fit(frame, games["home_win"])
    return pipe, frame


def test_notebook_pipeline_is_explained_by_permutation_on_raw_columns(notebook_pipeline, monkeypatch):
    """Refused before ("not a pipeline trained by train_model"). Now: permutation over the raw
    columns it is given, each column masked whole; the values equal shap.PermutationExplainer run
    directly on the same columns (coded by hand here), background and seed. (The 1 s row budget is
    lifted so that a loaded machine cannot lower the engine's 10 permutations.)"""
    import shap

    from mlops_mcp.core.explain import shap_engine

    monkeypatch.setattr(shap_engine, "PERMUTATION_ROW_BUDGET_S", float("inf"))
    pipe, frame = notebook_pipeline
    schema = _raw_schema(frame)
    background = frame.iloc[:100]
    row = frame.iloc[[7]]
    exp = explain_row(pipe, schema, row, background, top_k=len(schema.features))
    assert (
        exp.explainer == "permutation"
        and exp.output_space == "probability"
        and exp.grouping == "whole_columns"
    )
    assert "raw input columns" in exp.explainer_detail and "Pipeline" in exp.explainer_detail
    assert exp.output_value == pytest.approx(float(pipe.predict_proba(row)[0, 1]), abs=1e-12)
    assert exp.base_value == pytest.approx(float(pipe.predict_proba(background)[:, 1].mean()), abs=1e-12)
    assert _additive(exp) < TOL

    # shap directly on the raw columns: categoricals coded by their position among the
    # background's values (any coding gives the same values), decoded before the model sees them
    teams = {c: sorted(background[c].unique()) for c in ["home_team", "away_team"]}

    def code(f: pd.DataFrame) -> np.ndarray:
        return np.column_stack(
            [
                f[c].map({t: i for i, t in enumerate(teams[c])}) if c in teams else f[c]
                for c in schema.features
            ]
        ).astype(float)

    def model(z: np.ndarray) -> np.ndarray:
        decoded = pd.DataFrame(
            {
                c: (np.asarray(teams[c], dtype=object)[z[:, j].astype(int)] if c in teams else z[:, j])
                for j, c in enumerate(schema.features)
            }
        )
        return pipe.predict_proba(decoded)[:, 1]

    direct = shap.PermutationExplainer(
        model, shap.maskers.Independent(code(background), max_samples=100), seed=0
    )(code(row), max_evals=10 * (2 * len(schema.features) + 1), silent=True)
    got = {c.feature: c.shap for c in exp.contributions}
    for feature, value in zip(schema.features, direct.values[0]):
        assert got[feature] == pytest.approx(float(value), abs=1e-9)


def test_unseen_category_reaches_the_model_as_itself(notebook_pipeline):
    """A value the background never had is passed to the model as that value (here: unknown to its
    encoder, so all-zero one-hot), exactly as serving passes it."""
    pipe, frame = notebook_pipeline
    schema = _raw_schema(frame)
    row = dict(frame.iloc[7].to_dict(), home_team="XXX")
    exp = explain_row(pipe, schema, row, frame.iloc[:100], top_k=10)
    assert exp.output_value == pytest.approx(float(pipe.predict_proba(pd.DataFrame([row]))[0, 1]), abs=1e-12)
    assert {c.feature: c.value for c in exp.contributions}["home_team"] == "XXX"
    assert _additive(exp) < TOL


def test_pyfunc_numbers_and_labels(games):
    """Any model with predict(DataFrame): numbers are explained as they are ('raw'); labels as the
    indicator of the predicted label, whose base value is the share of background rows given it."""
    from sklearn.linear_model import LogisticRegression

    frame = games[NUMERIC]
    fitted = LogisticRegression().fit(frame, games["home_win"])
    schema = _raw_schema(frame)
    background = frame.iloc[:100]
    row = frame.iloc[[3]]

    scores = explain_row(ScoreModel(fitted), schema, row, background, top_k=4)
    assert scores.explainer == "permutation" and scores.output_space == "raw" and scores.probability is None
    assert scores.output_value == pytest.approx(float(fitted.predict_proba(row)[0, 1] * 100), abs=1e-9)
    assert scores.prediction == pytest.approx(scores.output_value)
    assert scores.base_value == pytest.approx(
        float(fitted.predict_proba(background)[:, 1].mean() * 100), abs=1e-9
    )
    assert _additive(scores) < TOL

    labels = explain_row(LabelModel(fitted), schema, row, background, top_k=4)
    predicted = "home" if fitted.predict(row)[0] == 1 else "away"
    assert (
        labels.output_space == "class_indicator" and labels.prediction == predicted == labels.explained_class
    )
    assert labels.output_value == 1.0
    share = float(np.mean(LabelModel(fitted).predict(background) == predicted))
    assert labels.base_value == pytest.approx(share, abs=1e-12)
    assert _additive(labels) < TOL
    assert "share of background rows" in labels.output_description

    imp = global_importance(LabelModel(fitted), schema, frame.iloc[:30], background)
    assert (
        imp.output_space == "class_indicator"
        and imp.explained_class == "each row's predicted label"
        and imp.n_rows == 30
    )


def test_without_background_only_trees_are_explained(games, notebook_pipeline):
    """No reference profile: path-dependent Tree SHAP needs no background, anything else is
    refused with the argument named (the service turns it into what to register)."""
    from sklearn.ensemble import GradientBoostingRegressor

    frame = games[NUMERIC]
    model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(frame, games["point_margin"])
    schema = _raw_schema(frame)
    exp = explain_row(model, schema, frame.iloc[[5]], None)
    assert (
        exp.explainer == "tree"
        and exp.background_rows == 0
        and "no background needed" in exp.explainer_detail
    )
    assert exp.output_value == pytest.approx(float(model.predict(frame.iloc[[5]])[0]), abs=1e-9)
    assert _additive(exp) < TOL

    pipe, raw = notebook_pipeline
    with pytest.raises(InvalidInput) as info:
        explain_row(pipe, _raw_schema(raw), raw.iloc[[5]], None)
    assert info.value.argument == "background"


# ------------------------------------------------------------------------------------- grouping


def test_grouping_is_stated_and_what_it_means(games):
    """Issue 13 point 7: with trees on one-hot columns a categorical column's value is the SUM of its
    parts' Shapley values, which can differ from its Shapley value as one player; the result says
    which it holds. Here a tiny tree model on one 3-valued column and one number: the grouped value
    (shap's ExactExplainer over the 2 original columns, log-odds) differs from the sum of parts,
    and the engine's per-column values are exactly that sum."""
    import shap

    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], n), "x": rng.normal(size=n)})
    logit = (
        np.where(frame["colour"] == "red", 1.5, np.where(frame["colour"] == "green", -1.0, 0.0)) * frame["x"]
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    schema = infer_schema(frame.assign(y=y), "y")
    pipe = build_pipeline(
        "gradient_boosting", "classification", schema, {"n_estimators": 30, "max_depth": 3}
    ).fit(frame, y)
    background = frame.iloc[:100]
    imp = global_importance(pipe, schema, frame.iloc[100:140], background)  # path-dependent log-odds
    assert imp.grouping == "sum_of_one_hot_parts"

    encoder = FastEncoder(pipe, schema)
    model = pipe.named_steps["model"]
    z_bg = encoder.encode(coerce_features(background, schema))
    rows = frame.iloc[100:110]
    z = encoder.encode(coerce_features(rows, schema))
    grouped = shap.explainers.ExactExplainer(
        lambda zz: model.decision_function(encoder.transform(zz)),
        shap.maskers.Independent(z_bg, max_samples=100),
    )(z).values
    parts = shap.TreeExplainer(
        model, data=encoder.transform(z_bg), feature_perturbation="interventional"
    ).shap_values(encoder.transform(z))
    summed = encoder.regroup(np.asarray(parts)[..., None])[..., 0]
    assert np.abs(summed - grouped).max() > 1e-3  # the two notions really differ on this model
    np.testing.assert_allclose(summed.sum(axis=1), grouped.sum(axis=1), atol=1e-6)  # both add up


def test_permutation_values_equal_shap_for_many_rows_and_outputs():
    """The numpy permutation estimator against shap.PermutationExplainer on several rows (the random
    stream continues across rows), several outputs, tied values and a never-varying column."""
    import shap
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    x[:, 3] = np.round(x[:, 3])
    x[:, 4] = 1.0  # never varies: gets exactly 0
    y = np.digitize(x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=600) * 0.5, [-0.5, 0.5])
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x, y)
    background, rows = x[:40], x[100:104]
    values, base = permutation_values(model.predict_proba, rows, background, permutations=4, seed=3)
    direct = shap.PermutationExplainer(
        model.predict_proba, shap.maskers.Independent(background, max_samples=40), seed=3
    )(rows, max_evals=4 * (2 * 4 + 1), silent=True)
    np.testing.assert_allclose(values, direct.values, atol=1e-12)
    np.testing.assert_allclose(base, direct.base_values, atol=1e-12)
    assert np.all(values[:, 4] == 0)
    np.testing.assert_allclose(values.sum(axis=1) + base, model.predict_proba(rows), atol=1e-12)


def test_permutation_explanations_are_reproducible_under_concurrency(games):
    """The permutation estimate draws from its own seeded stream (no global RNG, no lock): the same
    row explained from 6 threads at once, through one cached explainer, gives identical values."""
    import threading

    from sklearn.linear_model import LogisticRegression

    from mlops_mcp.core.explain.shap_engine import ExplainerCache

    frame = games[NUMERIC]
    model = ScoreModel(LogisticRegression().fit(frame, games["home_win"]))
    schema = _raw_schema(frame)
    cache = ExplainerCache()
    row = {c: float(frame[c].iloc[11]) for c in NUMERIC}
    results: list[Any] = []
    errors: list[Exception] = []

    def work() -> None:
        try:
            results.append(
                explain_row(model, schema, dict(row), frame.iloc[:100], top_k=4, cache=cache, cache_key="s")
            )
        except Exception as exc:  # noqa: BLE001 - pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6 and cache.misses == 1
    first = [(c.feature, c.shap) for c in results[0].contributions]
    assert all([(c.feature, c.shap) for c in r.contributions] == first for r in results)
    assert (
        explain_row(model, schema, row, None, top_k=4, cache=cache, cache_key="s").contributions
        == results[0].contributions
    )
