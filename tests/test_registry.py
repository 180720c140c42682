"""The registry through a real MCP client: train, promote, predict, roll back; MLflow seen from
outside; concurrency; confirmation; bad input. Numbers are checked against the model loaded
independently with mlflow.sklearn."""

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pytest
from mcp import Client
from mcp.types import ElicitResult

from tests.helpers import EXCLUDE, tool_error_text, trained_server

pytestmark = pytest.mark.anyio

FEATURES_DROP = EXCLUDE + ["home_win"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One home with data and a two-version model, shared by the module (MLflow setup is slow)."""
    server = trained_server(tmp_path_factory)
    yield server
    server.ops.close()


@pytest.fixture
async def mc(shared: Any) -> Any:
    async with Client(shared) as c:
        yield c


def recent_rows(server: Any, n: int = 5) -> list[dict[str, Any]]:
    frame = pd.read_parquet(server.ops.settings.data_roots[0] / "nba" / "recent.parquet")
    return json.loads(frame.drop(columns=FEATURES_DROP).head(n).to_json(orient="records"))


def prediction_count(server: Any, model: str) -> int:
    from sqlalchemy import func, select

    from mlops_mcp.core.store.tables import Prediction

    with server.ops.store.read() as s:
        return int(s.scalar(select(func.count()).select_from(Prediction).where(Prediction.model == model)))


async def test_train_promote_predict_rollback_cycle(mc: Client, shared: Any) -> None:
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    first = await mc.call_tool(
        "train_model",
        {"model": "cycle", "dataset": "nba/train.parquet", "target": "home_win", "exclude": EXCLUDE, "alias": "champion"},
        progress_callback=on_progress,
    )
    assert not first.is_error, first.content
    v1 = first.structured_content
    assert v1["version"] == 1 and v1["task"] == "classification" and v1["alias"]["to_version"] == 1
    assert set(v1["metrics"]) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert 0.5 < v1["metrics"]["accuracy"] < 0.8 and progress and progress[-1] == 100.0
    assert v1["reference_rows"] == 600 and "home_team" in v1["categorical"]

    second = await mc.call_tool(
        "train_model",
        {"model": "cycle", "dataset": "nba/train.parquet", "target": "home_win", "exclude": EXCLUDE, "estimator": "random_forest",
         "params": {"n_estimators": 20, "max_depth": 4}},
    )
    assert second.structured_content["version"] == 2

    rows = recent_rows(shared, 3)
    before = await mc.call_tool("predict", {"model": "cycle", "rows": rows})
    assert {p["version"] for p in before.structured_content["predictions"]} == {1}

    promote = await mc.call_tool("set_model_alias", {"model": "cycle", "alias": "champion", "version": 2, "reason": "try rf", "confirm": True})
    assert promote.structured_content["changed"] and promote.structured_content["from_version"] == 1
    after = await mc.call_tool("predict", {"model": "cycle", "rows": rows})
    assert {p["version"] for p in after.structured_content["predictions"]} == {2}

    assert shared.ops.registry.rollback_candidate("cycle") == 1  # what get_model_health's suggestion relies on
    back = await mc.call_tool("rollback_model", {"model": "cycle", "reason": "rf worse", "confirm": True})
    assert back.structured_content["from_version"] == 2 and back.structured_content["to_version"] == 1
    again = await mc.call_tool("predict", {"model": "cycle", "rows": rows})
    assert {p["version"] for p in again.structured_content["predictions"]} == {1}
    assert [p["probabilities"] for p in again.structured_content["predictions"]] == [
        p["probabilities"] for p in before.structured_content["predictions"]
    ]

    assert shared.ops.registry.rollback_candidate("cycle") is None
    nothing = await mc.call_tool("rollback_model", {"model": "cycle", "confirm": True})
    assert "no earlier version" in tool_error_text(nothing)

    history = (await mc.call_tool("get_model_history", {"model": "cycle"})).structured_content
    kinds = [(e["kind"], e["from_version"], e["to_version"]) for e in history["events"]]
    assert kinds == [("rollback", 2, 1), ("set", 1, 2), ("set", None, 1)]
    assert history["events"][0]["reason"] == "rf worse" and history["aliases"] == {"champion": 1}


async def test_served_probabilities_equal_the_model_loaded_independently(mc: Client, shared: Any) -> None:
    """The fast serving path must give exactly what MLflow's own loader + sklearn give."""
    import mlflow.sklearn

    from mlops_mcp.core.models.pipeline import coerce_features

    rows = recent_rows(shared, 40)
    result = (await mc.call_tool("predict", {"model": "nba-win/1", "rows": rows})).structured_content
    client = shared.ops.registry.client
    source = client.get_model_version_download_uri("nba-win", "1")
    pipeline = mlflow.sklearn.load_model(source)
    schema = shared.ops.registry.load(shared.ops.registry.version("nba-win", 1)).schema
    expected = pipeline.predict_proba(coerce_features(pd.DataFrame(rows)[schema.features], schema))[:, 1]
    got = [p["probabilities"]["1"] for p in result["predictions"]]
    assert got == pytest.approx(expected.round(6).tolist(), abs=1e-6)
    assert [p["score"] for p in result["predictions"]] == pytest.approx(expected.tolist(), abs=1e-12)


async def test_dry_run_without_confirmation_changes_nothing(mc: Client, shared: Any) -> None:
    res = await mc.call_tool("set_model_alias", {"model": "nba-win", "alias": "champion", "version": 2})
    data = res.structured_content
    assert data["confirmed"] is False and data["changed"] is False and "confirm=true" in data["message"]
    assert shared.ops.registry.aliases("nba-win")["champion"] == 1


async def test_elicitation_asks_and_respects_the_answer(shared: Any) -> None:
    asked: list[str] = []

    def answer(value: bool) -> Any:
        async def callback(context: Any, params: Any) -> ElicitResult:
            asked.append(params.message)
            return ElicitResult(action="accept", content={"confirm": value})

        return callback

    async with Client(shared, elicitation_callback=answer(False), mode="legacy") as c:
        res = await c.call_tool("set_model_alias", {"model": "nba-win", "alias": "staging", "version": 2})
        assert res.structured_content["changed"] is False
    assert "staging" in asked[-1] and "version 2" in asked[-1]
    assert "staging" not in shared.ops.registry.aliases("nba-win")
    for mode in ("legacy", "auto"):
        async with Client(shared, elicitation_callback=answer(True), mode=mode) as c:
            res = await c.call_tool("set_model_alias", {"model": "nba-win", "alias": f"staging-{mode}", "version": 2})
            assert res.structured_content["changed"] is True, (mode, res)
        assert shared.ops.registry.aliases("nba-win")[f"staging-{mode}"] == 2

    async def decline(context: Any, params: Any) -> ElicitResult:
        return ElicitResult(action="decline")

    async with Client(shared, elicitation_callback=decline) as c:
        res = await c.call_tool("rollback_model", {"model": "nba-win", "alias": "staging-auto", "to_version": 1})
        assert res.structured_content["changed"] is False and "decline" in res.structured_content["message"]
    assert shared.ops.registry.aliases("nba-win")["staging-auto"] == 2


async def test_alias_moved_by_plain_mlflow_client_is_seen(mc: Client, shared: Any) -> None:
    from mlflow import MlflowClient

    outside = MlflowClient(tracking_uri=shared.ops.settings.tracking_uri)
    outside.set_registered_model_alias("nba-win", "canary", "1")
    rows = recent_rows(shared, 2)
    first = await mc.call_tool("predict", {"model": "nba-win@canary", "rows": rows})
    assert {p["version"] for p in first.structured_content["predictions"]} == {1}
    await mc.call_tool("get_model_history", {"model": "nba-win"})  # reading the history notices the move
    outside.set_registered_model_alias("nba-win", "canary", "2")
    # serving reuses an alias lookup for up to MLOPS_ALIAS_CACHE_SECONDS: a move made outside applies within it
    moved_at = time.monotonic()
    while True:
        second = await mc.call_tool("predict", {"model": "nba-win@canary", "rows": rows})
        if {p["version"] for p in second.structured_content["predictions"]} == {2}:
            break
        assert time.monotonic() - moved_at < shared.ops.settings.alias_cache_seconds + 1.0, "the outside move was not seen"
        await anyio.sleep(0.05)
    history = (await mc.call_tool("get_model_history", {"model": "nba-win"})).structured_content
    observed = [e for e in history["events"] if e["alias"] == "canary"]
    assert [(e["kind"], e["from_version"], e["to_version"]) for e in observed] == [("observed", 1, 2), ("observed", None, 1)]
    back = await mc.call_tool("rollback_model", {"model": "nba-win", "alias": "canary", "confirm": True})
    assert back.structured_content["to_version"] == 1


async def test_concurrent_predicts_log_every_row(mc: Client, shared: Any) -> None:
    rows = recent_rows(shared, 25)
    before = prediction_count(shared, "nba-win")
    ids: list[str] = []

    async def one(i: int) -> None:
        res = await mc.call_tool("predict", {"model": "nba-win", "rows": rows, "request_keys": [f"t{i}-{j}" for j in range(25)]})
        assert not res.is_error, res.content
        ids.extend(p["prediction_id"] for p in res.structured_content["predictions"])

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(one, i)
    assert len(set(ids)) == 200
    assert prediction_count(shared, "nba-win") - before == 200


async def test_large_batch_is_summarised_and_fully_logged(mc: Client, shared: Any) -> None:
    rows = recent_rows(shared, 300)
    before = prediction_count(shared, "nba-win")
    res = (await mc.call_tool("predict", {"model": "nba-win", "rows": rows, "max_results": 10})).structured_content
    assert res["n_rows"] == 300 and len(res["predictions"]) == 10 and res["truncated"] is True
    assert sum(res["batch"]["predicted_classes"].values()) == 300
    assert prediction_count(shared, "nba-win") - before == 300


async def test_list_get_and_compare(mc: Client) -> None:
    models = (await mc.call_tool("list_models", {})).structured_content
    entry = next(m for m in models["models"] if m["model"] == "nba-win")
    assert entry["versions"] >= 2 and entry["aliases"]["champion"] == 1
    detail = (await mc.call_tool("get_model", {"model": "nba-win"})).structured_content
    v1 = next(v for v in detail["versions"] if v["version"] == 1)
    assert v1["estimator"] == "gradient_boosting" and v1["reference"]["rows"] == 600 and "accuracy" in v1["metrics"]
    cmp = (await mc.call_tool("compare_model_versions", {"model": "nba-win", "version_a": 1, "version_b": 2, "dataset": "nba/recent.parquet"})).structured_content
    assert cmp["n_rows"] == 300 and {m["metric"] for m in cmp["dataset_metrics"]} >= {"accuracy", "roc_auc"}
    acc = next(m for m in cmp["dataset_metrics"] if m["metric"] == "accuracy")
    assert acc["diff"] == pytest.approx(acc["b"] - acc["a"], abs=1e-6)


async def test_compare_refuses_labels_the_model_cannot_predict(mc: Client, shared: Any) -> None:
    data_dir = shared.ops.settings.data_roots[0]
    frame = pd.read_parquet(data_dir / "nba" / "recent.parquet").head(50).copy()
    frame["home_win"] = frame["home_win"].astype(int).where(frame.index % 2 == 0, 2)  # '2' is no class of the model
    frame.to_csv(data_dir / "odd_labels.csv", index=False)
    for tool, args in (
        ("compare_model_versions", {"model": "nba-win", "version_a": 1, "version_b": 2, "dataset": "odd_labels.csv"}),
        ("run_ab_test", {"model": "nba-win", "variant_a": "1", "variant_b": "2", "dataset": "odd_labels.csv"}),
    ):
        text = tool_error_text(await mc.call_tool(tool, args))
        assert "does not know as classes: 2" in text and "dataset" in text, (tool, text)


async def test_register_from_run_and_skops_and_refuse_pickle(mc: Client, shared: Any, tmp_path: Path) -> None:
    mv = shared.ops.registry.version("nba-win", 1)
    from_run = await mc.call_tool("register_model", {"model": "imported", "source": f"runs:/{mv.run_id}/model", "reference_dataset": "nba/train.parquet"})
    assert not from_run.is_error, from_run.content
    rows = recent_rows(shared, 2)
    served = await mc.call_tool("predict", {"model": "imported/1", "rows": rows})
    assert not served.is_error, served.content
    # the version was loaded before its reference was attached: the served form must have it now
    imported = shared.ops.registry.load(shared.ops.registry.version("imported", 1))
    assert imported.reference_dir is not None and imported.encoder is not None

    import joblib
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    data_dir = shared.ops.settings.data_roots[0]
    frame = pd.read_parquet(data_dir / "nba" / "train.parquet")
    cols = ["home_rating", "away_rating", "pace"]
    est = LogisticRegression().fit(frame[cols], frame["home_win"])
    sio.dump(est, data_dir / "lr.skops")
    frame[cols].to_csv(data_dir / "lr_ref.csv", index=False)
    skops_res = await mc.call_tool("register_model", {"model": "skops-lr", "source": "lr.skops", "reference_dataset": "lr_ref.csv", "alias": "champion"})
    assert not skops_res.is_error, skops_res.content
    pred = await mc.call_tool("predict", {"model": "skops-lr", "rows": [{"home_rating": 3.0, "away_rating": -1.0, "pace": 100.0}]})
    expected = est.predict_proba(pd.DataFrame([{"home_rating": 3.0, "away_rating": -1.0, "pace": 100.0}]))[0, 1]
    assert pred.structured_content["predictions"][0]["score"] == pytest.approx(expected, abs=1e-12)

    joblib.dump(est, data_dir / "lr.pkl")
    refused = await mc.call_tool("register_model", {"model": "pickled", "source": "lr.pkl"})
    text = tool_error_text(refused)
    assert "source" in text and "MLOPS_TRUST_PICKLE" in text and "arbitrary code" in text
    assert "pickled" not in {m["model"] for m in (await mc.call_tool("list_models", {})).structured_content["models"]}


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("predict", {"model": "nope", "rows": [{"a": 1}]}, ["model", "nba-win"]),
        ("predict", {"model": "nba-win/99", "rows": [{"a": 1}]}, ["version", "99", "versions: 2, 1"]),
        ("predict", {"model": "nba-win@ghost", "rows": [{"a": 1}]}, ["alias 'ghost'", "champion -> v1"]),
        ("predict", {"model": "nba-win", "rows": [{"pace": 100}]}, ["rows", "missing", "home_team"]),
        ("predict", {"model": "nba-win", "rows": []}, ["rows", "at least 1 item"]),
        ("get_model", {"model": "missing-model"}, ["model", "no registered model", "nba-win"]),
        ("train_model", {"model": "x", "dataset": "../../etc/passwd", "target": "y"}, ["dataset", ".."]),
        ("train_model", {"model": "x", "dataset": "/etc/passwd", "target": "y"}, ["dataset", "outside the data roots"]),
        ("train_model", {"model": "x", "dataset": "nba/train.parquet", "target": "winner"}, ["target", "home_win"]),
        ("train_model", {"model": "x", "dataset": "nba/train.parquet", "target": "home_win", "estimator": "ridge"}, ["estimator", "classification"]),
        ("train_model", {"model": "bad name!", "dataset": "nba/train.parquet", "target": "home_win"}, ["model", "valid model name"]),
        ("set_model_alias", {"model": "nba-win", "alias": "champion", "version": 42, "confirm": True}, ["version", "42"]),
        ("set_model_alias", {"model": "nba-win", "alias": "v3", "version": 1, "confirm": True}, ["alias", "reserved"]),
        ("compare_model_versions", {"model": "nba-win", "version_a": 1, "version_b": 1}, ["version_b", "different"]),
    ],
)
async def test_bad_input_gets_a_clear_error(mc: Client, tool: str, args: dict[str, Any], expected: list[str]) -> None:
    text = tool_error_text(await mc.call_tool(tool, args))
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in {text!r}"


async def test_predict_row_problems(mc: Client, shared: Any) -> None:
    rows = recent_rows(shared, 2)
    wrong_type = [dict(rows[0], pace="fast")]
    assert "'pace' is numeric but got 'fast'" in tool_error_text(await mc.call_tool("predict", {"model": "nba-win", "rows": wrong_type}))
    extra = [dict(rows[0], weather="rain")]
    extra_text = tool_error_text(await mc.call_tool("predict", {"model": "nba-win", "rows": extra}))
    assert "row 0" in extra_text and "unknown" in extra_text and "weather" in extra_text
    text = tool_error_text(await mc.call_tool("predict", {"model": "nba-win", "rows": [rows[0]] * 10_001}))
    assert "rows" in text and "at most 10000" in text
    keys = await mc.call_tool("predict", {"model": "nba-win", "rows": rows, "request_keys": ["only-one"]})
    assert "request_keys" in tool_error_text(keys)
    with_null = [dict(rows[0], pace=None, home_team=None)]
    assert not (await mc.call_tool("predict", {"model": "nba-win", "rows": with_null})).is_error


async def test_failed_training_registers_nothing(mc: Client, shared: Any) -> None:
    data_dir = shared.ops.settings.data_roots[0]
    frame = pd.read_parquet(data_dir / "nba" / "train.parquet")
    frame.assign(home_win=1).to_parquet(data_dir / "one_class.parquet")
    frame.assign(pace=float("nan")).to_parquet(data_dir / "nan_col.parquet")
    single = await mc.call_tool("train_model", {"model": "broken", "dataset": "one_class.parquet", "target": "home_win", "exclude": EXCLUDE})
    assert "single class" in tool_error_text(single)
    nan_col = await mc.call_tool("train_model", {"model": "broken", "dataset": "nan_col.parquet", "target": "home_win", "exclude": EXCLUDE})
    assert "'pace' is empty" in tool_error_text(nan_col)
    names = {m["model"] for m in (await mc.call_tool("list_models", {})).structured_content["models"]}
    assert "broken" not in names


async def test_model_resources_and_prompts(mc: Client) -> None:
    listing = json.loads((await mc.read_resource("mlops://models")).contents[0].text)
    assert "nba-win" in {m["model"] for m in listing["models"]}
    model = json.loads((await mc.read_resource("mlops://models/nba-win")).contents[0].text)
    assert model["aliases"]["champion"] == 1 and model["version_count"] >= 2
    version = json.loads((await mc.read_resource("mlops://models/nba-win/versions/1")).contents[0].text)
    assert version["version"] == 1 and "home_team" in version["input_schema"]["features"]
    with pytest.raises(Exception, match="no registered model"):
        await mc.read_resource("mlops://models/ghost")
    templates = {t.uri_template for t in (await mc.list_resource_templates()).resource_templates}
    assert {"mlops://models/{name}", "mlops://models/{name}/versions/{version}", "mlops://drift/{name}/latest"} <= templates
    prompts = {p.name for p in (await mc.list_prompts()).prompts}
    assert {"investigate_drift", "safe_rollout", "model_health_review"} <= prompts
    prompt = await mc.get_prompt("safe_rollout", {"model": "nba-win", "candidate_version": "2"})
    assert "version 2 of 'nba-win'" in prompt.messages[0].content.text


def test_a_notebook_can_use_the_model_with_plain_mlflow(shared: Any) -> None:
    """Visible in MLflow and usable without this package: pyfunc on raw data, the registry's alias."""
    import mlflow.pyfunc
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=shared.ops.settings.tracking_uri)
    champion = client.get_model_version_by_alias("nba-win", "champion")
    model = mlflow.pyfunc.load_model(client.get_model_version_download_uri("nba-win", champion.version))
    raw = pd.read_parquet(shared.ops.settings.data_roots[0] / "nba" / "recent.parquet").drop(columns=FEATURES_DROP).head(20)
    labels = model.predict(raw)
    assert len(labels) == 20 and set(labels) <= {0, 1}
    run = client.get_run(champion.run_id)
    assert {"accuracy", "roc_auc"} <= set(run.data.metrics) and run.data.params["estimator"]
    artifacts = {a.path for a in client.list_artifacts(champion.run_id)}
    assert {"model", "mlops_reference"} <= artifacts


async def test_crafted_model_files_cannot_run_code(mc: Client, shared: Any, tmp_path: Path) -> None:
    """Regression: a .skops file smuggling a function (numpy's runstring in a FunctionTransformer),
    and an MLflow model folder holding a pickle, must be refused before anything is executed."""
    import mlflow.sklearn
    import numpy as np
    import skops.io as sio
    from numpy.testing._private.utils import runstring
    from sklearn.dummy import DummyRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    data_dir = shared.ops.settings.data_roots[0]
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    ft = FunctionTransformer(func=np.vectorize(runstring, otypes=[object]), kw_args={"dict": {}}, validate=False)
    ft.feature_names_in_ = np.array(["code"], dtype=object)
    ft.n_features_in_ = 1
    sio.dump(Pipeline([("f", ft), ("m", DummyRegressor().fit(np.zeros((3, 1)), [0, 0, 0]))]), data_dir / "evil.skops")
    pd.DataFrame({"code": [code] * 3}).to_csv(data_dir / "evil_ref.csv", index=False)
    res = await mc.call_tool("register_model", {"model": "evil", "source": "evil.skops", "reference_dataset": "evil_ref.csv"})
    text = tool_error_text(res)
    assert "source" in text and "not scikit-learn estimators" in text and "runstring" in text

    class Evil:
        def __reduce__(self) -> Any:
            return (exec, (code,))

    mlflow.sklearn.save_model(Evil(), str(data_dir / "evil_model"), serialization_format="pickle")
    marker.unlink(missing_ok=True)  # MLflow's own save_model round-trips (runs) the payload while writing it
    res = await mc.call_tool("register_model", {"model": "evil", "source": "evil_model"})
    assert "MLOPS_TRUST_PICKLE" in tool_error_text(res)
    assert not marker.exists()
    assert "evil" not in {m["model"] for m in (await mc.call_tool("list_models", {})).structured_content["models"]}


async def test_skops_mlflow_folder_registers(mc: Client, shared: Any) -> None:
    import mlflow.sklearn
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    data_dir = shared.ops.settings.data_roots[0]
    frame = pd.read_parquet(data_dir / "nba" / "train.parquet")
    cols = ["home_rating", "away_rating"]
    est = LogisticRegression().fit(frame[cols], frame["home_win"])
    trusted = sio.get_untrusted_types(data=sio.dumps(est))
    mlflow.sklearn.save_model(est, str(data_dir / "lr_model"), serialization_format="skops", skops_trusted_types=trusted)
    frame[cols].to_parquet(data_dir / "lr_model_ref.parquet")
    res = await mc.call_tool("register_model", {"model": "folder-lr", "source": "lr_model", "reference_dataset": "lr_model_ref.parquet"})
    assert not res.is_error, res.content
    pred = await mc.call_tool("predict", {"model": f"folder-lr/{res.structured_content['version']}", "rows": [{"home_rating": 1.0, "away_rating": 0.0}]})
    assert pred.structured_content["predictions"][0]["score"] == pytest.approx(est.predict_proba(pd.DataFrame([{"home_rating": 1.0, "away_rating": 0.0}]))[0, 1])


def test_rollback_after_an_explicit_rollback_follows_the_history(shared: Any) -> None:
    reg = shared.ops.registry
    for _ in range(2):
        shared.ops.train(model="hist", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, estimator="logistic_regression")
    shared.ops.train(model="hist", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, estimator="logistic_regression")
    shared.ops.train(model="hist", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, estimator="logistic_regression")
    reg.set_alias("hist", "champion", 1, "t", None)
    reg.set_alias("hist", "champion", 2, "t", None)
    reg.set_alias("hist", "champion", 3, "t", None)
    reg.rollback("hist", "champion", 1, "t", "skip two")  # 3 -> 1 explicitly
    reg.set_alias("hist", "champion", 4, "t", None)
    assert reg.rollback_target("hist", "champion") == (4, 1)


def test_concurrent_alias_moves_keep_an_unbroken_history(shared: Any) -> None:
    import threading

    from mlops_mcp.core.store.tables import AliasEvent

    reg = shared.ops.registry
    barrier = threading.Barrier(3)

    def move(v: int) -> None:
        barrier.wait()
        reg.set_alias("nba-win", "race", v, f"t{v}", None)

    for _ in range(3):
        threads = [threading.Thread(target=move, args=(v,)) for v in (1, 2, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    events = [e for e in reg.alias_events("nba-win", "race")]
    assert all(isinstance(e, AliasEvent) for e in events)
    assert [e.kind for e in events] == ["set"] * len(events)  # nothing mistaken for an outside move
    for before, after in zip(events, events[1:]):
        assert after.from_version == before.to_version
    assert events[-1].to_version == reg.aliases("nba-win")["race"]


def test_reference_cache_is_safe_under_concurrency_and_recreation(shared: Any) -> None:
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    reg = shared.ops.registry
    mv = reg.version("nba-win", 2)
    shutil.rmtree(shared.ops.settings.home / "cache" / "reference" / "nba-win", ignore_errors=True)
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: reg.reference_dir(mv), range(16)))
    assert len(set(folders)) == 1 and (folders[0] / "schema.json").exists()

    # a model deleted and registered again reuses version numbers, never the cached profile
    shared.ops.train(model="again", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, estimator="logistic_regression")
    first = reg.reference_dir(reg.version("again", 1))
    reg.client.delete_registered_model("again")
    shared.ops.train(model="again", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE + ["pace"], estimator="logistic_regression")
    second = reg.reference_dir(reg.version("again", 1))
    assert first != second
    assert "pace" not in reg.load(reg.version("again", 1)).schema.features


async def test_more_bad_input_found_in_review(mc: Client, shared: Any) -> None:
    row = recent_rows(shared, 1)[0]
    for value in ("inf", "1e999", "-inf", 1e308, -3e39):
        for n in (1, 300):  # the single-row fast path and the DataFrame path
            text = tool_error_text(await mc.call_tool("predict", {"model": "nba-win", "rows": [dict(row, pace=value)] * n}))
            assert "'pace' has an infinite or too large value" in text and "internal" not in text
    text = tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win", "row": dict(row, home_rating=1e308)}))
    assert "'home_rating' has an infinite or too large value" in text
    typo = await mc.call_tool("train_model", {"model": "typo", "dataset": "nba/train.parquet", "target": "home_win",
                                              "exclude": ["game_id", "season", "game_date", "point_margn"]})
    assert "exclude: not in the data: 'point_margn' (did you mean 'point_margin'?)" in tool_error_text(typo)
    text = tool_error_text(await mc.call_tool("predict", {"model": "nba-win", "rows": [dict(row, pace="x" * 100_000)]}))
    assert "'pace' is numeric" in text and len(text) < 1_000
    text = tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win", "row": dict(row, pace="inf")}))
    assert "infinite" in text
    bad_params = await mc.call_tool("train_model", {"model": "bad-params", "dataset": "nba/train.parquet", "target": "home_win",
                                                     "exclude": EXCLUDE, "params": {"max_depth": -1}})
    assert "params" in tool_error_text(bad_params) and "max_depth" in tool_error_text(bad_params)
    dup = await mc.call_tool("train_model", {"model": "dup", "dataset": "nba/train.parquet", "target": "home_win", "features": ["pace", "pace"]})
    assert "named twice" in tool_error_text(dup)


async def test_non_regular_files_are_refused_without_blocking(mc: Client, shared: Any) -> None:
    """A FIFO (or a folder) inside a data root: every tool answers at once with a clear error."""
    import os

    root = shared.ops.settings.data_roots[0]
    os.mkfifo(root / "pipe.parquet")
    os.mkfifo(root / "pipe.skops")
    folder = root / "fifo-model"
    folder.mkdir()
    os.mkfifo(folder / "MLmodel")
    (root / "dir.csv").mkdir()
    try:
        calls = [
            ("train_model", {"model": "fifo", "dataset": "pipe.parquet", "target": "home_win"}, "pipe.parquet' is a FIFO"),
            ("register_model", {"model": "fifo", "source": "pipe.skops"}, "pipe.skops' is a FIFO"),
            ("register_model", {"model": "fifo", "source": "fifo-model"}, "MLmodel' is a FIFO"),
            ("log_feedback", {"dataset": "pipe.parquet"}, "pipe.parquet' is a FIFO"),
            ("log_feedback", {"dataset": "dir.csv"}, "'dir.csv' is a folder, not a file"),
            ("check_drift", {"model": "nba-win", "dataset": "pipe.parquet"}, "pipe.parquet' is a FIFO"),
            ("compare_model_versions", {"model": "nba-win", "version_a": 1, "version_b": 2, "dataset": "dir.csv"}, "is a folder"),
        ]
        for tool, args, expected in calls:
            with anyio.fail_after(20):
                text = tool_error_text(await mc.call_tool(tool, args))
            assert expected in text and "internal error" not in text, (tool, text)
    finally:
        for p in (root / "pipe.parquet", root / "pipe.skops", folder / "MLmodel"):
            p.unlink()
        folder.rmdir()
        (root / "dir.csv").rmdir()


async def test_lists_and_objects_are_refused_as_categorical_values(mc: Client, shared: Any) -> None:
    rows = recent_rows(shared, 1)
    before = prediction_count(shared, "nba-win")
    for value, kind in ((["BOS", "LAL"], "a list"), ({"team": "BOS"}, "an object")):
        for n in (1, 300):  # the single-row fast path and the DataFrame path
            text = tool_error_text(await mc.call_tool("predict", {"model": "nba-win", "rows": [dict(rows[0], home_team=value)] * n}))
            assert f"'home_team' is categorical but got {kind}" in text, text
        text = tool_error_text(await mc.call_tool("explain_prediction", {"model": "nba-win", "row": dict(rows[0], home_team=value)}))
        assert "categorical but got" in text
    assert prediction_count(shared, "nba-win") == before  # nothing was logged
    ok = await mc.call_tool("predict", {"model": "nba-win", "rows": [dict(rows[0], home_team=17, away_team=True)]})
    assert not ok.is_error, ok.content


async def test_a_first_version_without_alias_becomes_champion(mc: Client, shared: Any) -> None:
    """Issue 11: the plain name works after the first train_model/register_model without `alias`;
    the move is in the history with its reason; later versions move the champion only by promotion."""
    args = {"model": "first", "dataset": "nba/train.parquet", "target": "home_win", "exclude": EXCLUDE, "estimator": "logistic_regression"}
    first = (await mc.call_tool("train_model", args)).structured_content
    assert first["auto_champion"] is True
    assert {k: v for k, v in first["alias"].items() if k != "reason"} == {
        "model": "first", "alias": "champion", "from_version": None, "to_version": 1, "changed": True
    }
    served = await mc.call_tool("predict", {"model": "first", "rows": recent_rows(shared, 2)})
    assert not served.is_error, served.content
    assert {p["version"] for p in served.structured_content["predictions"]} == {1}
    second = (await mc.call_tool("train_model", args)).structured_content
    assert second["auto_champion"] is False and second["alias"] is None
    history = (await mc.call_tool("get_model_history", {"model": "first"})).structured_content
    assert history["aliases"] == {"champion": 1}
    [event] = history["events"]
    assert (event["kind"], event["from_version"], event["to_version"]) == ("set", None, 1)
    assert "made champion automatically" in event["reason"] and "had no champion yet" in event["reason"]

    # an explicit alias is honoured as given (no champion added)
    explicit = (await mc.call_tool("train_model", {**args, "model": "first-explicit", "alias": "challenger"})).structured_content
    assert explicit["auto_champion"] is False and shared.ops.registry.aliases("first-explicit") == {"challenger": 1}

    # register_model too
    mv = shared.ops.registry.version("nba-win", 2)
    reg = (await mc.call_tool("register_model", {"model": "first-imported", "source": f"runs:/{mv.run_id}/model"})).structured_content
    assert reg["auto_champion"] is True and reg["alias"]["to_version"] == 1
    assert not (await mc.call_tool("predict", {"model": "first-imported", "rows": recent_rows(shared, 1)})).is_error

    # a champion removed on purpose is not put back by the next version
    shared.ops.registry.client.delete_registered_model_alias("first", "champion")
    shared.ops.registry.history("first")  # the removal is noticed (observed)
    third = (await mc.call_tool("train_model", args)).structured_content
    assert third["auto_champion"] is False and "champion" not in shared.ops.registry.aliases("first")


def test_only_one_of_concurrent_first_versions_becomes_champion(shared: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    reg = shared.ops.registry
    reg.ensure_model("first-race")
    for _ in range(4):
        reg.client.create_model_version("first-race", source=(shared.ops.settings.home / "nowhere").as_uri())
    with ThreadPoolExecutor(4) as pool:
        moves = list(pool.map(lambda v: reg.first_champion("first-race", v, "t", "test"), [1, 2, 3, 4]))
    made = [m for m in moves if m is not None]
    assert len(made) == 1 and reg.aliases("first-race") == {"champion": made[0]["to_version"]}
    assert len(reg.alias_events("first-race", "champion")) == 1


async def test_small_data_can_be_given_inline(mc: Client, shared: Any) -> None:
    """Wherever a dataset is taken, a list of row objects works too (issue 11), up to a stated size."""
    frame = pd.read_parquet(shared.ops.settings.data_roots[0] / "nba" / "train.parquet").head(400)
    rows = json.loads(frame.drop(columns=["game_id", "game_date"]).to_json(orient="records"))
    trained = await mc.call_tool("train_model", {"model": "inline", "dataset": rows, "target": "home_win",
                                                 "exclude": ["season", "point_margin"], "estimator": "logistic_regression"})
    assert not trained.is_error, trained.content
    assert trained.structured_content["n_train"] + trained.structured_content["n_test"] == 400
    # the rows are kept as a file inside the first data root, and the version's lineage names it
    lineage = shared.ops.registry.version("inline", 1).tags["mlops.dataset"]
    assert lineage.startswith("inline/inline/") and (shared.ops.settings.data_roots[0] / lineage).is_file()
    labeled = rows[:150]
    compared = await mc.call_tool("compare_model_versions", {"model": "nba-win", "version_a": 1, "version_b": 2, "dataset": labeled})
    assert not compared.is_error and compared.structured_content["n_rows"] == 150
    assert compared.structured_content["dataset"] == "150 inline rows"
    ab = await mc.call_tool("run_ab_test", {"model": "nba-win", "variant_a": "1", "variant_b": "2", "dataset": labeled})
    assert not ab.is_error and ab.structured_content["n"] == 150
    imp = await mc.call_tool("get_feature_importance", {"model": "nba-win", "dataset": labeled[:50], "sample_size": 50})
    assert not imp.is_error and imp.structured_content["n_rows"] == 50
    # a value the model cannot read is named by the caller's argument, not an internal one
    bad = [{**r, "home_rating": "high"} for r in labeled[:5]]
    text = tool_error_text(await mc.call_tool("get_feature_importance", {"model": "nba-win", "dataset": bad}))
    assert "get_feature_importance: dataset: " in text and "home_rating" in text, text
    too_many = await mc.call_tool("compare_model_versions", {"model": "nba-win", "version_a": 1, "version_b": 2, "dataset": [{}] * 10_001})
    assert "dataset" in tool_error_text(too_many) and "10000" in tool_error_text(too_many)
    not_rows = await mc.call_tool("compare_model_versions", {"model": "nba-win", "version_a": 1, "version_b": 2, "dataset": [1, 2]})
    assert "dataset" in tool_error_text(not_rows)


async def test_a_failed_first_registration_leaves_no_empty_model(mc: Client) -> None:
    res = await mc.call_tool("register_model", {"model": "r3", "source": "models:/nba-win/1", "reference_dataset": [{"zzz": 1}]})
    assert "reference_dataset" in tool_error_text(res) and "lacks the model's columns" in tool_error_text(res)
    models = (await mc.call_tool("list_models", {})).structured_content["models"]
    assert "r3" not in {m["model"] for m in models}
