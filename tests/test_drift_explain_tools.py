"""check_drift, get_drift_history, explain_prediction and get_feature_importance through a real
MCP client, checked against scipy and shap run directly."""

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mcp import Client

from tests.helpers import EXCLUDE, tool_error_text, trained_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = trained_server(tmp_path_factory, seasons=4, games_per_season=400, rule_change_season=2024)
    yield server
    server.ops.close()


@pytest.fixture
async def mc(shared: Any) -> Any:
    async with Client(shared) as c:
        yield c


def data(server: Any, name: str) -> pd.DataFrame:
    return pd.read_parquet(server.ops.settings.data_roots[0] / "nba" / f"{name}.parquet")


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.drop(columns=EXCLUDE + ["home_win"]).to_json(orient="records"))


async def test_rule_change_drift_is_found_and_matches_scipy(mc: Client, shared: Any) -> None:
    from scipy import stats

    res = await mc.call_tool("check_drift", {"model": "nba-win", "dataset": "nba/recent.parquet", "plot": True})
    assert not res.is_error, res.content
    report = res.structured_content
    by_col = {c["column"]: c for c in report["columns"]}
    for drifted in ("pace", "home_three_rate", "away_three_rate"):
        assert by_col[drifted]["drifted"] is True
    for clean in ("home_rest_days", "away_injuries", "home_back_to_back"):
        assert by_col[clean]["drifted"] is False
    assert report["ranked"][0] in ("pace", "home_three_rate", "away_three_rate")
    assert report["prediction_drift"] is not None and report["prediction_drift"]["column"] == "__prediction__"
    assert any(c.type == "image" for c in res.content)
    # the rule-change question gets "yes, major" (it got dataset_drift: False with 5 of 13 drifted)
    assert report["drift_detected"] is True and report["severity"] == "major"
    assert report["prediction_drift"]["drifted"] is True and report["severity_reasons"][0].startswith("the prediction drifted")
    assert report["headline"].startswith("major drift: ") and "prediction drifted" in report["headline"]
    assert report["importance_source"].startswith("feature_importances_") and "importance" in report["severity_rule"]
    assert by_col["home_rest_days"]["method"] == "chi2" and by_col["pace"]["verdict"] == "drifted"
    assert {e["column"] for e in report["not_checked"]} == set(EXCLUDE + ["home_win"])
    assert "the target of nba-win/1" in {e["column"]: e["reason"] for e in report["not_checked"]}["home_win"]

    # the tool rounds to 4 significant digits; the engine's numbers are scipy's (tests/test_drift_engine.py)
    reference = shared.ops.registry.reference(shared.ops.registry.version("nba-win", 1)).sample
    current = data(shared, "recent")
    ks = stats.ks_2samp(reference["pace"], current["pace"])
    assert by_col["pace"]["statistic"] == pytest.approx(ks.statistic, rel=5e-4)
    assert by_col["pace"]["p_value"] == pytest.approx(ks.pvalue, rel=5e-4, abs=1e-300)
    w = stats.wasserstein_distance(reference["pace"], current["pace"]) / reference["pace"].std(ddof=0)
    assert by_col["pace"]["effect_size"] == pytest.approx(w, rel=5e-4)
    assert by_col["pace"]["effect_lower"] <= by_col["pace"]["effect_size"] <= by_col["pace"]["effect_upper"]


async def test_no_drift_on_the_training_seasons(mc: Client) -> None:
    res = (await mc.call_tool("check_drift", {"model": "nba-win", "dataset": "nba/train.parquet"})).structured_content
    assert res["drift_detected"] is False and res["n_drifted"] == 0
    assert res["severity"] == "none" and res["headline"].startswith("no drift") and res["prediction_drift"]["drifted"] is False


async def test_logged_predictions_are_the_default_current_data(mc: Client, shared: Any) -> None:
    await mc.call_tool("predict", {"model": "nba-win", "rows": rows_of(data(shared, "recent").head(300))})
    res = (await mc.call_tool("check_drift", {"model": "nba-win", "columns": ["pace", "home_rest_days"]})).structured_content
    assert res["n_current"] == 300 and "predictions logged" in res["current_source"]
    assert [c["column"] for c in res["columns"]] == ["pace", "home_rest_days"]
    assert res["columns"][0]["drifted"] is True
    history = (await mc.call_tool("get_drift_history", {"model": "nba-win"})).structured_content["reports"]
    assert history[0]["report_id"] == res["report_id"] and history[0]["drifted_columns"] == ["pace"]
    assert history[0]["severity"] == res["severity"] == "major" and history[0]["headline"] == res["headline"]
    latest = json.loads((await mc.read_resource("mlops://drift/nba-win/latest")).contents[0].text)
    assert latest["report_id"] == res["report_id"] and latest["report"]["columns"][0]["column"] == "pace"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ({"model": "nba-win", "dataset": "nba/recent.parquet", "columns": ["nope"]}, ["columns", "nope"]),
        ({"model": "nba-win", "since": "yesterday"}, ["since", "ISO 8601"]),
        ({"model": "nba-win", "since": "2020-01-01", "until": "2020-01-02"}, ["dataset", "no predictions logged"]),
        ({"model": "nba-win", "dataset": "nba/recent.parquet", "method": "ks", "threshold": 0.2}, ["threshold", "distance"]),
        ({"model": "ghost"}, ["model", "nba-win"]),
        ({"model": "nba-win", "dataset": "../x.csv"}, ["dataset", ".."]),
    ],
)
async def test_drift_bad_input(mc: Client, args: dict[str, Any], fragments: list[str]) -> None:
    text = tool_error_text(await mc.call_tool("check_drift", args))
    for f in fragments:
        assert f in text, (f, text)


async def test_explain_matches_shap_directly_and_is_additive(mc: Client, shared: Any) -> None:
    import shap

    rows = rows_of(data(shared, "recent").head(3))
    served = (await mc.call_tool("predict", {"model": "nba-win", "rows": rows})).structured_content["predictions"][0]
    exp = await mc.call_tool("explain_prediction", {"model": "nba-win", "prediction_id": served["prediction_id"], "top_k": 50, "plot": True})
    assert not exp.is_error, exp.content
    e = exp.structured_content
    # probability space (it fell back to log-odds before: shap's background was not rounded to the
    # float32 the trees compare, so the probability values failed the additivity check)
    assert e["version"] == 1 and e["output_space"] == "probability" and e["background_rows"] == 100
    assert e["grouping"] == "sum_of_one_hot_parts" and "rescales" in e["approximation"]
    total = e["base_value"] + sum(c["shap"] for c in e["contributions"]) + e["rest"]
    assert total == pytest.approx(e["output_value"], abs=1e-6)
    assert e["output_value"] == pytest.approx(served["score"], abs=1e-9)
    assert e["probability"] == pytest.approx(served["score"], abs=1e-9)
    assert {c["feature"] for c in e["contributions"]} == set(rows[0])
    assert any(c.type == "image" for c in exp.content)

    # independent: shap's own TreeExplainer in probability space on the transformed features
    loaded = shared.ops.registry.load(shared.ops.registry.version("nba-win", 1))
    pre, est = loaded.model.named_steps["preprocess"], loaded.model.named_steps["model"]
    from mlops_mcp.core.models.pipeline import coerce_features, feature_sources

    background = shared.ops.registry.reference(shared.ops.registry.version("nba-win", 1)).sample[loaded.schema.features]
    bg = pre.transform(coerce_features(background.sample(n=100, random_state=0), loaded.schema))
    bg = bg.astype(np.float32).astype(np.float64)  # what sklearn's trees compare (shap rounds only x)
    x = pre.transform(coerce_features(pd.DataFrame([rows[0]])[loaded.schema.features], loaded.schema))
    explainer = shap.TreeExplainer(est, data=bg, model_output="probability", feature_perturbation="interventional")
    phi = np.asarray(explainer.shap_values(x))
    phi = phi[..., 1] if phi.ndim == 3 else phi
    grouped: dict[str, float] = {}
    for source, value in zip(feature_sources(loaded.model), phi[0]):
        grouped[source] = grouped.get(source, 0.0) + float(value)
    ours = {c["feature"]: c["shap"] for c in e["contributions"]}
    for feature, value in grouped.items():
        assert ours[feature] == pytest.approx(value, abs=1e-6)


async def test_explain_by_id_uses_the_version_that_served(mc: Client, shared: Any) -> None:
    rows = rows_of(data(shared, "recent").head(1))
    served = (await mc.call_tool("predict", {"model": "nba-win", "rows": rows})).structured_content["predictions"][0]
    assert served["version"] == 1
    await mc.call_tool("set_model_alias", {"model": "nba-win", "alias": "champion", "version": 2, "confirm": True})
    try:
        by_id = (await mc.call_tool("explain_prediction", {"model": "nba-win", "prediction_id": served["prediction_id"]})).structured_content
        by_row = (await mc.call_tool("explain_prediction", {"model": "nba-win", "row": rows[0]})).structured_content
        assert by_id["version"] == 1 and by_row["version"] == 2
        assert by_row["explainer"] == "linear"
    finally:
        await mc.call_tool("set_model_alias", {"model": "nba-win", "alias": "champion", "version": 1, "confirm": True})


async def test_feature_importance_ranks_original_columns(mc: Client) -> None:
    res = await mc.call_tool("get_feature_importance", {"model": "nba-win", "sample_size": 300, "plot": True})
    imp = res.structured_content
    names = [i["feature"] for i in imp["importances"]]
    assert imp["n_rows"] == 300 and "home_team" in names and len(names) == 13
    assert imp["grouping"] == "sum_of_one_hot_parts" and imp["explainer"] == "tree"
    values = [i["mean_abs_shap"] for i in imp["importances"]]
    assert values == sorted(values, reverse=True)
    assert set(names[:2]) == {"home_rating", "away_rating"}  # the strongest signal in the generator


async def test_explain_bad_input(mc: Client, shared: Any) -> None:
    row = rows_of(data(shared, "recent").head(1))[0]
    assert "exactly one" in tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win"}))
    assert "exactly one" in tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win", "row": row, "prediction_id": "x"}))
    assert "no logged prediction" in tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win", "prediction_id": "x"}))
    text = tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win", "row": dict(row, extra=1)}))
    assert "row" in text and "extra" in text
    text = tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win", "row": dict(row, pace="fast")}))
    assert "'pace' is numeric" in text


# --------------------------------------------------------------------------- review fixes: logged inputs, broken feeds, bad files


def now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


async def test_logged_numeric_strings_are_read_with_the_schema(mc: Client, shared: Any) -> None:
    from scipy import stats

    since = now_iso()
    rows = rows_of(data(shared, "recent").head(300))
    for row in rows:
        row["pace"] = str(row["pace"])  # predict accepts numeric strings and logs them as sent
    served = await mc.call_tool("predict", {"model": "nba-win", "rows": rows})
    assert not served.is_error, served.content
    res = (await mc.call_tool("check_drift", {"model": "nba-win", "since": since})).structured_content
    by_col = {c["column"]: c for c in res["columns"]}
    assert by_col["pace"]["status"] == "ok" and by_col["pace"]["drifted"] is True, by_col["pace"]
    assert res["n_checked"] == 13 and all(c["status"] == "ok" for c in res["columns"])
    reference = shared.ops.registry.reference(shared.ops.registry.version("nba-win", 1)).sample
    ks = stats.ks_2samp(reference["pace"], [float(r["pace"]) for r in rows])
    assert by_col["pace"]["statistic"] == pytest.approx(ks.statistic, rel=5e-4)


def test_logged_values_the_schema_refuses_become_missing(shared: Any) -> None:
    from mlops_mcp.core.drift.service import coerce_logged
    from mlops_mcp.core.models.profile import PREDICTION_COLUMN, prepared_reference

    registry = shared.ops.registry
    mv = registry.version("nba-win", 1)
    loaded = registry.load(mv)
    frame = data(shared, "recent").head(5)[loaded.schema.features].astype(object)
    frame.loc[0, "pace"] = "1_00"  # Python's float() (the one-row fast path) took it; pandas does not
    frame.loc[1, "pace"] = "99.5"
    frame[PREDICTION_COLUMN] = 0.5
    out = coerce_logged(frame, loaded.schema, prepared_reference(registry.reference_dir(mv)))
    assert out["pace"].dtype == "float64" and np.isnan(out.loc[0, "pace"]) and out.loc[1, "pace"] == 99.5
    assert out["home_team"].tolist() == frame["home_team"].tolist() and out[PREDICTION_COLUMN].tolist() == [0.5] * 5


async def test_prediction_drift_uses_only_the_reference_versions_scores(mc: Client, shared: Any) -> None:
    from scipy import stats

    since = now_iso()
    rows = rows_of(data(shared, "recent").head(200))
    other = await mc.call_tool("predict", {"model": "nba-win/2", "rows": rows[:120]})
    assert not other.is_error and other.structured_content["predictions"][0]["version"] == 2
    res = (await mc.call_tool("check_drift", {"model": "nba-win", "since": since})).structured_content
    assert res["version"] == 1 and res["n_current"] == 120 and res["prediction_drift"] is None
    assert res["n_checked"] == 13  # the inputs of version 2's predictions still count
    latest = json.loads((await mc.read_resource("mlops://drift/nba-win/latest")).contents[0].text)
    assert latest["report_id"] == res["report_id"] and latest["prediction_drifted"] is None
    assert any("none of the 120 logged predictions was served by version 1" in n for n in latest["report"]["notes"])

    own = (await mc.call_tool("predict", {"model": "nba-win", "rows": rows[120:]})).structured_content["predictions"]
    assert {p["version"] for p in own} == {1}
    res = (await mc.call_tool("check_drift", {"model": "nba-win", "since": since})).structured_content
    assert res["n_current"] == 200 and res["prediction_drift"]["n_current"] == 80
    reference = shared.ops.registry.reference(shared.ops.registry.version("nba-win", 1)).sample
    ks = stats.ks_2samp(reference["__prediction__"], [p["score"] for p in own])
    assert res["prediction_drift"]["statistic"] == pytest.approx(ks.statistic, rel=5e-4)
    notes = json.loads((await mc.read_resource("mlops://drift/nba-win/latest")).contents[0].text)["report"]["notes"]
    assert any("80 logged predictions served by version 1; 120 served by other versions" in n for n in notes), notes


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
async def test_a_feature_gone_all_missing_is_flagged(mc: Client, shared: Any, suffix: str) -> None:
    broken = data(shared, "train").assign(home_team=None)  # a feed that stopped sending home_team
    path = shared.ops.settings.data_roots[0] / "nba" / f"broken_feed.{suffix}"
    if suffix == "parquet":
        broken.to_parquet(path)
    else:
        broken.to_csv(path, index=False)  # read back, the empty column is float NaN under a string feature
    res = await mc.call_tool("check_drift", {"model": "nba-win", "dataset": f"nba/broken_feed.{suffix}", "plot": True})
    assert not res.is_error, res.content
    report = res.structured_content
    team = {c["column"]: c for c in report["columns"]}["home_team"]
    assert team["status"] == "ok" and team["drifted"] is True and team["reason"] == "all values missing in current data"
    assert team["effect_size"] == 1.0 and team["missing_current"] == len(broken) and team["n_current"] == 0
    assert report["n_checked"] == 13 and report["n_drifted"] == 1 and report["ranked"][0] == "home_team"
    assert report["drift_detected"] is True  # 1 of 13 columns, but a broken feed is drift
    assert report["severity"] == "major" and "home_team went all missing (a broken feed)" in report["severity_reasons"]
    assert team["drifted_on"] == ["missing_share"]


async def test_drift_dataset_that_is_not_a_parquet_file(mc: Client, shared: Any) -> None:
    folder = shared.ops.settings.data_roots[0] / "nba"
    (folder / "a_folder.parquet").mkdir(exist_ok=True)
    (folder / "garbage.parquet").write_bytes(b"this is not parquet")
    text = tool_error_text(await mc.call_tool("check_drift", {"model": "nba-win", "dataset": "nba/a_folder.parquet"}))
    assert "dataset" in text and "'nba/a_folder.parquet' is a folder, not a file" in text, text  # refused by resolve_path
    text = tool_error_text(await mc.call_tool("check_drift", {"model": "nba-win", "dataset": "nba/garbage.parquet"}))
    assert "dataset" in text and "cannot read 'garbage.parquet' as Parquet" in text, text
    assert str(folder) not in text


async def test_drift_on_inline_rows(mc: Client, shared: Any) -> None:
    """check_drift takes current (and reference) data inline too; the result names them so."""
    frame = pd.read_parquet(shared.ops.settings.data_roots[0] / "nba" / "recent.parquet").head(300)
    rows = json.loads(frame.to_json(orient="records"))
    res = await mc.call_tool("check_drift", {"model": "nba-win", "dataset": rows})
    assert not res.is_error, res.content
    report = res.structured_content
    assert report["current_source"] == "300 inline rows" and report["n_current"] == 300
    assert "pace" in [c["column"] for c in report["columns"] if c["drifted"]]
