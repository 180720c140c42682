"""The explanation engine (core/explain/shap_engine.py) checked against shap run by hand and a hand-worked case.

Each test rebuilds what the engine does independently: transform with the fitted preprocessor,
call shap directly, sum one-hot parts back with ``feature_sources``, and compare.
"""

import struct
import threading

import numpy as np
import pandas as pd
import pytest

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.explain.plot import importance_png, waterfall_png
from mlops_mcp.core.explain.shap_engine import ExplainerCache, explain_row, global_importance
from mlops_mcp.core.models.encoding import FastEncoder
from mlops_mcp.core.models.pipeline import build_pipeline, coerce_features, feature_sources, infer_schema
from mlops_mcp.core.synthetic import FEATURES, generate_games

TOL = 1e-6


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
def background(X) -> pd.DataFrame:
    """Exactly 100 rows, so the engine uses all of them (no subsampling) and shap-direct can too."""
    return X.iloc[:100]


def _fit(estimator, schema, X, y, task="classification", **params):
    pipe = build_pipeline(estimator, task, schema, params or None)
    return pipe.fit(X, y)


@pytest.fixture(scope="module")
def gbc(schema, X, games):
    return _fit("gradient_boosting", schema, X, games["home_win"], n_estimators=60)


def _transform(pipe, schema, frame) -> np.ndarray:
    return np.asarray(pipe.named_steps["preprocess"].transform(coerce_features(frame, schema)), dtype=float)


def _regroup(pipe, schema, phi: np.ndarray) -> pd.DataFrame:
    """By hand: sum transformed-column SHAP values per original column (rows x features)."""
    frame = pd.DataFrame(phi, columns=feature_sources(pipe))
    return frame.T.groupby(level=0).sum().T[schema.features]


def _additive(exp) -> float:
    return abs(exp.base_value + sum(c.shap for c in exp.contributions) + exp.rest - exp.output_value)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ------------------------------------------------------------------------------------- encoder


def test_fast_transform_matches_sklearn(gbc, schema, X):
    rows = X.iloc[:50].copy()
    rows.loc[rows.index[0], "pace"] = np.nan  # imputed with the median
    rows.loc[rows.index[1], "home_team"] = None  # -> "__missing__", unknown to the encoder
    rows.loc[rows.index[2], "away_team"] = "XXX"  # unknown category -> all zeros
    raw = coerce_features(rows, schema)
    encoder = FastEncoder(gbc, schema)
    encoder.check(raw)
    assert encoder.fast
    expected = np.asarray(gbc.named_steps["preprocess"].transform(raw))
    np.testing.assert_allclose(encoder.transform(encoder.encode(raw)), expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------- tree models


def test_gradient_boosting_row_matches_shap_direct(gbc, schema, X, background):
    import shap

    row = X.iloc[[321]]
    exp = explain_row(gbc, schema, row, background, top_k=len(schema.features))
    assert exp.explainer == "tree"
    assert exp.output_space == "probability"
    # shap's probability-space interventional values rescale exact log-odds values: said, not hidden
    assert exp.approximation is not None and "rescales" in exp.approximation
    assert exp.grouping == "sum_of_one_hot_parts"  # tree values on one-hot parts, summed per column
    assert exp.explained_class == 1

    model = gbc.named_steps["model"]
    x_row, x_bg = _transform(gbc, schema, row), _transform(gbc, schema, background)
    x_bg = x_bg.astype(np.float32).astype(np.float64)  # what sklearn's trees compare (shap rounds only x)
    direct = shap.TreeExplainer(
        model, data=x_bg, model_output="probability", feature_perturbation="interventional"
    )
    phi = np.asarray(direct.shap_values(x_row))
    expected = _regroup(gbc, schema, phi).iloc[0]
    got = {c.feature: c.shap for c in exp.contributions}
    for feature in schema.features:
        assert got[feature] == pytest.approx(expected[feature], abs=1e-9)
    assert exp.base_value == pytest.approx(float(np.mean(model.predict_proba(x_bg)[:, 1])), abs=1e-9)
    proba = float(model.predict_proba(x_row)[0, 1])
    assert exp.output_value == pytest.approx(proba, abs=1e-12)
    assert exp.probability == pytest.approx(proba, abs=1e-12)
    assert _additive(exp) < TOL
    assert exp.rest == 0.0 and exp.n_rest == 0
    # raw values of the row are reported, categoricals as strings
    values = {c.feature: c.value for c in exp.contributions}
    assert values["home_team"] == row["home_team"].iloc[0]
    assert values["pace"] == pytest.approx(float(row["pace"].iloc[0]))


def test_top_k_and_rest(gbc, schema, X, background):
    exp = explain_row(gbc, schema, X.iloc[[5]], background, top_k=3)
    assert len(exp.contributions) == 3 and exp.n_rest == len(schema.features) - 3
    shaps = [abs(c.shap) for c in exp.contributions]
    assert shaps == sorted(shaps, reverse=True)
    full = explain_row(gbc, schema, X.iloc[[5]], background, top_k=100)
    others = sorted(full.contributions, key=lambda c: -abs(c.shap))[3:]
    assert exp.rest == pytest.approx(sum(c.shap for c in others), abs=1e-12)
    assert _additive(exp) < TOL
    d = exp.to_dict()
    assert set(d["contributions"][0]) == {"feature", "value", "shap"}


def test_gradient_boosting_global_importance_matches_shap_direct(gbc, schema, X, background):
    import shap

    sample = X.iloc[200:600]
    imp = global_importance(gbc, schema, sample, background)
    assert imp.explainer == "tree" and imp.output_space == "log_odds" and imp.n_rows == 400
    assert imp.approximation is None and imp.grouping == "sum_of_one_hot_parts"
    direct = shap.TreeExplainer(gbc.named_steps["model"])  # path-dependent, log-odds
    phi = np.asarray(direct.shap_values(_transform(gbc, schema, sample)))
    grouped = _regroup(gbc, schema, phi)
    expected = grouped.abs().mean()
    got = {i.feature: i.mean_abs_shap for i in imp.importances}
    for feature in schema.features:
        assert got[feature] == pytest.approx(expected[feature], abs=1e-9)
    values = [i.mean_abs_shap for i in imp.importances]
    assert values == sorted(values, reverse=True)
    # a one-hot column's importance is mean |sum of parts|, strictly less than sum of mean |parts| here
    parts = pd.DataFrame(phi, columns=feature_sources(gbc))["home_team"].abs().mean().sum()
    assert got["home_team"] < parts


def test_hist_gradient_boosting_is_log_odds_and_exact(schema, X, games, background):
    import shap

    pipe = _fit("hist_gradient_boosting", schema, X, games["home_win"], max_iter=15, max_leaf_nodes=15)
    row = X.iloc[[17]]
    exp = explain_row(pipe, schema, row, background, top_k=20)
    # shap 0.51's interventional mode is not additive for HistGradientBoosting: the engine rejects it
    assert exp.explainer == "tree" and exp.output_space == "log_odds"
    model = pipe.named_steps["model"]
    x_row = _transform(pipe, schema, row)
    assert exp.output_value == pytest.approx(float(model.decision_function(x_row)[0]), abs=1e-9)
    assert exp.probability == pytest.approx(1 / (1 + np.exp(-exp.output_value)), abs=1e-9)
    assert _additive(exp) < TOL
    phi = np.asarray(shap.TreeExplainer(model).shap_values(x_row))
    expected = _regroup(pipe, schema, phi).iloc[0]
    for c in exp.contributions:
        assert c.shap == pytest.approx(expected[c.feature], abs=1e-9)


@pytest.mark.slow
def test_deep_random_forest_uses_reported_approximation(schema, X, games, background):
    import shap

    pipe = _fit("random_forest", schema, X, games["home_win"], n_estimators=200)  # fully grown trees
    row = X.iloc[[44]]
    exp = explain_row(pipe, schema, row, background)
    assert exp.explainer == "tree" and exp.output_space == "probability"
    assert exp.approximation is not None
    assert "Saabas" in exp.approximation and "200 trees" in exp.approximation
    assert _additive(exp) < TOL
    imp = global_importance(pipe, schema, X.iloc[:300], background)
    assert imp.approximation is not None and "Saabas" in imp.approximation

    # with an unlimited budget the same row is explained exactly, and matches shap direct
    exact = explain_row(pipe, schema, row, background, top_k=20, time_budget_s=float("inf"))
    assert exact.approximation is None
    model = pipe.named_steps["model"]
    x_row = _transform(pipe, schema, row)
    phi = np.asarray(shap.TreeExplainer(model).shap_values(x_row, check_additivity=False))[..., 1]
    expected = _regroup(pipe, schema, phi).iloc[0]
    for c in exact.contributions:
        assert c.shap == pytest.approx(expected[c.feature], abs=1e-9)
    assert _additive(exact) < TOL
    assert exact.output_value == pytest.approx(float(model.predict_proba(x_row)[0, 1]), abs=1e-9)


def test_shallow_random_forest_is_exact(schema, X, games, background):
    pipe = _fit("random_forest", schema, X, games["home_win"], n_estimators=30, max_depth=4)
    exp = explain_row(pipe, schema, X.iloc[[3]], background)
    assert exp.approximation is None and exp.output_space == "probability"
    assert _additive(exp) < TOL


@pytest.fixture(scope="module")
def three_way(games) -> pd.Series:
    return pd.cut(games["point_margin"], [-100, -6, 6, 100], labels=["away", "close", "home"]).astype(str)


def test_multiclass_linear_explains_predicted_class(schema, X, three_way, background):
    pipe = _fit("logistic_regression", schema, X, three_way)
    row = X.iloc[[9]]
    exp = explain_row(pipe, schema, row, background)
    predicted = pipe.predict(row)[0]
    assert exp.prediction == predicted and exp.explained_class == predicted
    assert exp.explainer == "linear" and exp.output_space == "raw" and "softmax" in exp.output_description
    model = pipe.named_steps["model"]
    k = list(model.classes_).index(predicted)
    margin = model.decision_function(_transform(pipe, schema, row))[0, k]
    assert exp.output_value == pytest.approx(float(margin), abs=1e-9)
    assert exp.probability == pytest.approx(float(pipe.predict_proba(row)[0, k]), abs=1e-12)
    assert _additive(exp) < TOL
    imp = global_importance(pipe, schema, X.iloc[:200], background)
    assert imp.explained_class == "each row's predicted class"
    assert len(imp.importances) == len(schema.features)


def test_regression_is_raw(games, background):
    schema = infer_schema(games[list(FEATURES) + ["point_margin"]], "point_margin")
    X = games[schema.features]
    pipe = _fit("gradient_boosting", schema, X, games["point_margin"], task="regression", n_estimators=30)
    exp = explain_row(pipe, schema, X.iloc[[12]], background)
    assert exp.output_space == "raw" and exp.explained_class is None and exp.probability is None
    assert exp.prediction == pytest.approx(float(pipe.predict(X.iloc[[12]])[0]))
    assert _additive(exp) < TOL


# ------------------------------------------------------------------------------- linear models


def test_linear_hand_built_one_hot_regrouping():
    """Logistic regression on one numeric and one 3-category column: the linear explainer's value
    is coef * (x - background mean) on the transformed columns, which we compute by hand."""
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame({"x": rng.normal(5, 2, n), "colour": rng.choice(["red", "green", "blue"], n)})
    logit = 0.8 * (frame["x"] - 5) + frame["colour"].map({"red": 1.0, "green": -0.5, "blue": 0.0})
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    schema = infer_schema(frame, "y")
    pipe = _fit("logistic_regression", schema, frame[schema.features], frame["y"])
    row = pd.DataFrame({"x": [7.5], "colour": ["green"]})
    exp = explain_row(pipe, schema, row, frame[schema.features])  # 300 rows: all used
    assert exp.explainer == "linear" and exp.output_space == "log_odds"
    # linear SHAP is additive over parts, so the sum of the one-hot parts IS the grouped value
    assert exp.grouping == "whole_columns" and exp.approximation is None

    model = pipe.named_steps["model"]
    scaler = pipe.named_steps["preprocess"].named_transformers_["num"].named_steps["scale"]
    encoder = pipe.named_steps["preprocess"].named_transformers_["cat"].named_steps["onehot"]
    cats = list(encoder.categories_[0])
    coef = model.coef_[0]  # [x, blue, green, red]
    xs = (frame["x"].to_numpy() - scaler.mean_[0]) / scaler.scale_[0]
    onehot = np.stack([(frame["colour"] == c).to_numpy(float) for c in cats], axis=1)
    row_xs = (7.5 - scaler.mean_[0]) / scaler.scale_[0]
    row_onehot = np.array([c == "green" for c in cats], dtype=float)
    phi_x = coef[0] * (row_xs - xs.mean())
    phi_colour = float(np.sum(coef[1:] * (row_onehot - onehot.mean(axis=0))))
    got = {c.feature: c.shap for c in exp.contributions}
    assert got["x"] == pytest.approx(phi_x, abs=1e-9)
    assert got["colour"] == pytest.approx(phi_colour, abs=1e-9)
    base = model.intercept_[0] + coef[0] * xs.mean() + np.sum(coef[1:] * onehot.mean(axis=0))
    assert exp.base_value == pytest.approx(base, abs=1e-9)
    assert exp.output_value == pytest.approx(model.intercept_[0] + coef[0] * row_xs + coef[2], abs=1e-9)
    assert _additive(exp) < TOL
    assert exp.probability == pytest.approx(1 / (1 + np.exp(-exp.output_value)), abs=1e-12)
    assert {c.feature: c.value for c in exp.contributions} == {"x": 7.5, "colour": "green"}


def test_linear_regression_is_raw(games, background):
    schema = infer_schema(games[list(FEATURES) + ["point_margin"]], "point_margin")
    X = games[schema.features]
    pipe = _fit("ridge", schema, X, games["point_margin"], task="regression")
    exp = explain_row(pipe, schema, X.iloc[[2]], background)
    assert exp.explainer == "linear" and exp.output_space == "raw"
    assert exp.output_value == pytest.approx(float(pipe.predict(X.iloc[[2]])[0]), abs=1e-9)
    assert _additive(exp) < TOL


# ------------------------------------------------------------------------- permutation fallback


@pytest.mark.slow
def test_unsupported_model_falls_back_to_permutation_and_matches_shap(schema, X, games, background, monkeypatch):
    """KNN: shap has no exact explainer for it. The engine's permutation estimate (whole columns
    masked, in numpy) equals shap.PermutationExplainer run directly on the same columns, background
    and seed. (KNN is slow enough that a loaded machine would fit fewer than 10 permutations into
    the 1 s row budget; the budget is lifted so both run shap's default 10.)"""
    import shap
    from sklearn.neighbors import KNeighborsClassifier

    from mlops_mcp.core.explain import shap_engine

    monkeypatch.setattr(shap_engine, "PERMUTATION_ROW_BUDGET_S", float("inf"))

    pipe = build_pipeline("logistic_regression", "classification", schema)
    pipe.set_params(model=KNeighborsClassifier(n_neighbors=25)).fit(X.iloc[:400], games["home_win"].iloc[:400])
    row = X.iloc[[8]]
    exp = explain_row(pipe, schema, row, background, top_k=len(schema.features))
    assert exp.explainer == "permutation" and exp.output_space == "probability"
    assert exp.grouping == "whole_columns" and "permutation estimate" in exp.approximation
    assert "cannot explain KNeighborsClassifier" in exp.explainer_detail
    assert exp.output_value == pytest.approx(float(pipe.predict_proba(row)[0, 1]), abs=1e-12)
    # the permutation explainer's own additivity: base (mean over background) + values = output
    assert exp.base_value == pytest.approx(float(pipe.predict_proba(background)[:, 1].mean()), abs=1e-9)
    assert _additive(exp) < TOL

    # shap directly: one column per original feature (categoricals as codes), the model behind it
    encoder = FastEncoder(pipe, schema)
    z_bg = encoder.encode(coerce_features(background, schema))
    z_row = encoder.encode(coerce_features(row, schema))
    model = pipe.named_steps["model"]
    direct = shap.PermutationExplainer(
        lambda z: model.predict_proba(encoder.transform(z))[:, 1], shap.maskers.Independent(z_bg, max_samples=100), seed=0
    )(z_row, max_evals=10 * (2 * len(schema.features) + 1), silent=True)
    got = {c.feature: c.shap for c in exp.contributions}
    for feature, value in zip(schema.features, direct.values[0]):
        assert got[feature] == pytest.approx(float(value), abs=1e-12)
    assert exp.base_value == pytest.approx(float(np.asarray(direct.base_values).reshape(-1)[0]), abs=1e-12)

    imp = global_importance(pipe, schema, X.iloc[:4], background)
    assert imp.explainer == "permutation" and imp.n_rows == 4 and imp.output_space == "probability"


# ----------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "mutate, argument",
    [
        (lambda r: r.drop(columns=["pace"]), "row"),
        (lambda r: r.assign(extra=1), "row"),
        (lambda r: r.assign(pace="fast"), "row"),
    ],
)
def test_bad_rows_are_refused(gbc, schema, X, background, mutate, argument):
    with pytest.raises(InvalidInput) as info:
        explain_row(gbc, schema, mutate(X.iloc[[0]].copy()), background)
    assert info.value.argument == argument


def test_two_rows_and_bad_top_k_are_refused(gbc, schema, X, background):
    with pytest.raises(InvalidInput) as info:
        explain_row(gbc, schema, X.iloc[:2], background)
    assert info.value.argument == "row"
    for top_k in (0, -3, 2.5, True):
        with pytest.raises(InvalidInput) as info:
            explain_row(gbc, schema, X.iloc[[0]], background, top_k=top_k)
        assert info.value.argument == "top_k"
    with pytest.raises(InvalidInput) as info:
        global_importance(gbc, schema, X.iloc[:0], background)
    assert info.value.argument == "sample"


def test_missing_values_in_row_are_explained(gbc, schema, X, background):
    row = X.iloc[[0]].copy()
    row["pace"] = None
    row["home_team"] = None
    exp = explain_row(gbc, schema, row, background, top_k=20)
    values = {c.feature: c.value for c in exp.contributions}
    assert values["pace"] is None and values["home_team"] is None
    assert _additive(exp) < TOL


# --------------------------------------------------------------------------------------- cache


def test_cache_reuses_and_evicts(gbc, schema, X, background):
    cache = ExplainerCache(maxsize=2)
    for key in ["a", "a", "b", "a", "c"]:
        explain_row(gbc, schema, X.iloc[[0]], background, cache=cache, cache_key=key)
    assert cache.misses == 3 and cache.hits == 2
    assert len(cache) == 2 and "a" in cache and "c" in cache and "b" not in cache  # LRU: b was oldest
    cache.invalidate("a")
    assert "a" not in cache
    cache.invalidate()
    assert len(cache) == 0


def test_cache_builds_once_under_concurrency(gbc, schema, X, background):
    cache = ExplainerCache()
    results, errors = [], []

    def work(i: int) -> None:
        try:
            results.append(explain_row(gbc, schema, X.iloc[[i]], background, cache=cache, cache_key=("m", 1)))
        except Exception as exc:  # noqa: BLE001 - pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cache.misses == 1 and cache.hits == 7
    assert all(_additive(r) < TOL for r in results)


# --------------------------------------------------------------------------------------- plots


def test_plots_are_png(gbc, schema, X, background):
    exp = explain_row(gbc, schema, X.iloc[[1]], background, top_k=5)
    assert _png_size(waterfall_png(exp)) == (800, 500)
    imp = global_importance(gbc, schema, X.iloc[:100], background)
    assert _png_size(importance_png(imp)) == (800, 500)
