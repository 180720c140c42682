"""Issue 11, "your own models": models a notebook logs to MLflow and registers with register_model
(a plain scikit-learn estimator, the notebook's own pipeline, a custom pyfunc; with or without a
reference dataset) are explained through a real MCP client on their raw input columns."""

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mcp import Client

from tests.helpers import tool_error_text, trained_server

pytestmark = pytest.mark.anyio
NUMERIC = ["home_rating", "away_rating", "pace", "home_injuries"]
TEAMS = ["home_team", "away_team"]


def _label_pyfunc(fitted: Any) -> Any:
    import mlflow.pyfunc

    class Labels(mlflow.pyfunc.PythonModel):
        def __init__(self, model: Any) -> None:
            self.model = model

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return np.where(self.model.predict(model_input[NUMERIC]) == 1, "home", "away")

    return Labels(fitted)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = trained_server(tmp_path_factory, models=())
    yield server
    server.ops.close()


@pytest.fixture
async def mc(shared: Any) -> Any:
    async with Client(shared) as c:
        yield c


def train_frame(server: Any) -> pd.DataFrame:
    frame = pd.read_parquet(server.ops.settings.data_roots[0] / "nba" / "train.parquet")
    return frame.astype({c: float for c in NUMERIC})


def log_model(server: Any, name: str, save: Any) -> str:
    """What a notebook does: save the model into a run's artifacts; returns the runs:/ URI."""
    registry = server.ops.registry
    client = registry.client
    run = client.create_run(registry.experiment_id(name))
    with tempfile.TemporaryDirectory() as tmp:
        save(str(Path(tmp) / "model"))
        client.log_artifacts(run.info.run_id, str(Path(tmp) / "model"), "model")
    client.set_terminated(run.info.run_id)
    return f"runs:/{run.info.run_id}/model"


def write_reference(server: Any, frame: pd.DataFrame, name: str) -> str:
    frame.to_parquet(server.ops.settings.data_roots[0] / f"{name}.parquet")
    return f"{name}.parquet"


def first_rows(frame: pd.DataFrame, columns: list[str], n: int = 3) -> list[dict[str, Any]]:
    return json.loads(frame[columns].iloc[-n:].to_json(orient="records"))


def reference_background(server: Any, model: str, version: int, columns: list[str]) -> pd.DataFrame:
    """The 100 background rows the engine draws from a version's reference profile."""
    sample = server.ops.registry.reference(server.ops.registry.version(model, version)).sample[columns]
    return sample if len(sample) <= 100 else sample.sample(n=100, random_state=0)


async def register(mc: Client, model: str, source: str, reference: str | None) -> int:
    args = {"model": model, "source": source} | ({"reference_dataset": reference} if reference else {})
    res = await mc.call_tool("register_model", args)
    assert not res.is_error, res.content
    return res.structured_content["version"]


async def test_notebook_estimator_gets_exact_tree_shap_on_raw_columns(mc: Client, shared: Any) -> None:
    import mlflow.sklearn
    import shap
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    frame = train_frame(shared)
    est = RandomForestClassifier(n_estimators=30, max_depth=5, random_state=0).fit(
        frame[NUMERIC], frame["home_win"]
    )
    source = log_model(
        shared,
        "nb-forest",
        lambda p: mlflow.sklearn.save_model(
            est,
            p,
            signature=infer_signature(frame[NUMERIC]),
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        ),
    )
    version = await register(
        mc, "nb-forest", source, write_reference(shared, frame[NUMERIC], "nb_forest_ref")
    )
    row = first_rows(frame, NUMERIC)[0]
    res = await mc.call_tool(
        "explain_prediction", {"model": f"nb-forest/{version}", "row": row, "top_k": 4, "plot": True}
    )
    assert not res.is_error, res.content
    e = res.structured_content
    assert (
        e["explainer"] == "tree" and e["output_space"] == "probability" and e["grouping"] == "whole_columns"
    )
    assert e["approximation"] is None and e["additivity_error"] < 1e-6
    x = pd.DataFrame([row])[NUMERIC]
    assert e["output_value"] == pytest.approx(float(est.predict_proba(x)[0, 1]), abs=1e-12)
    phi = np.asarray(shap.TreeExplainer(est).shap_values(x.to_numpy(), check_additivity=False))[0, :, 1]
    got = {c["feature"]: c["shap"] for c in e["contributions"]}
    for j, feature in enumerate(NUMERIC):
        assert got[feature] == pytest.approx(float(phi[j]), abs=1e-9)
    assert any(c.type == "image" for c in res.content)

    imp = (
        await mc.call_tool("get_feature_importance", {"model": f"nb-forest/{version}", "sample_size": 200})
    ).structured_content
    assert (
        imp["explainer"] == "tree"
        and imp["n_rows"] == 200
        and {i["feature"] for i in imp["importances"]} == set(NUMERIC)
    )


async def test_notebook_pipeline_is_explained_by_permutation_on_raw_columns(mc: Client, shared: Any) -> None:
    """Its own one-hot encoder inside: permutation over the raw columns (each masked whole), with
    100 background rows from the reference profile; by row and by a logged prediction_id."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = train_frame(shared)
    columns = TEAMS + NUMERIC
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), TEAMS), (StandardScaler(), NUMERIC)),
        LogisticRegression(max_iter=500),
    ).fit(frame[columns], frame["home_win"])
    source = log_model(
        shared,
        "nb-pipe",
        lambda p: mlflow.sklearn.save_model(
            pipe,
            p,
            signature=infer_signature(frame[columns]),
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        ),
    )
    version = await register(mc, "nb-pipe", source, write_reference(shared, frame[columns], "nb_pipe_ref"))
    await mc.call_tool(
        "set_model_alias", {"model": "nb-pipe", "alias": "champion", "version": version, "confirm": True}
    )

    rows = first_rows(frame, columns)
    served = (await mc.call_tool("predict", {"model": "nb-pipe", "rows": rows})).structured_content[
        "predictions"
    ][0]
    res = await mc.call_tool(
        "explain_prediction", {"model": "nb-pipe", "prediction_id": served["prediction_id"], "top_k": 6}
    )
    assert not res.is_error, res.content
    e = res.structured_content
    assert (
        e["explainer"] == "permutation"
        and e["output_space"] == "probability"
        and e["grouping"] == "whole_columns"
    )
    assert "raw input columns" in e["explainer_detail"] and "permutation estimate" in e["approximation"]
    assert e["background_rows"] == 100 and e["version"] == version
    assert {c["feature"] for c in e["contributions"]} == set(columns)
    assert e["output_value"] == pytest.approx(served["score"], abs=1e-9)
    background = reference_background(shared, "nb-pipe", version, columns)
    assert e["base_value"] == pytest.approx(float(pipe.predict_proba(background)[:, 1].mean()), abs=1e-9)
    assert e["base_value"] + sum(c["shap"] for c in e["contributions"]) + e["rest"] == pytest.approx(
        e["output_value"], abs=1e-6
    )

    by_row = (
        await mc.call_tool("explain_prediction", {"model": "nb-pipe", "row": rows[0], "top_k": 6})
    ).structured_content
    assert by_row["contributions"] == e["contributions"]  # same version, same seed, same values


async def test_custom_pyfunc_with_labels_is_explained_as_a_class_indicator(mc: Client, shared: Any) -> None:
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    frame = train_frame(shared)
    fitted = LogisticRegression().fit(frame[NUMERIC], frame["home_win"])
    model = _label_pyfunc(fitted)
    source = log_model(
        shared,
        "nb-labels",
        lambda p: mlflow.pyfunc.save_model(
            p,
            python_model=model,
            signature=infer_signature(frame[NUMERIC], np.array(["home"])),
            pip_requirements=["scikit-learn"],
        ),
    )
    version = await register(
        mc, "nb-labels", source, write_reference(shared, frame[NUMERIC], "nb_labels_ref")
    )
    row = first_rows(frame, NUMERIC)[1]
    e = (
        await mc.call_tool("explain_prediction", {"model": f"nb-labels/{version}", "row": row})
    ).structured_content
    predicted = "home" if fitted.predict(pd.DataFrame([row]))[0] == 1 else "away"
    assert e["explainer"] == "permutation" and e["output_space"] == "class_indicator"
    assert e["prediction"] == predicted and e["output_value"] == 1.0 and e["probability"] is None
    background = reference_background(shared, "nb-labels", version, NUMERIC)
    share = float(np.mean(np.where(fitted.predict(background) == 1, "home", "away") == predicted))
    assert e["base_value"] == pytest.approx(share, abs=1e-12)
    assert "pyfunc" in e["explainer_detail"]


async def test_without_a_reference_profile(mc: Client, shared: Any) -> None:
    """Tree models need no background (path-dependent Tree SHAP); anything else gets a message
    saying what to register; importance can use a dataset as its own background, and says so."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.neighbors import KNeighborsRegressor

    frame = train_frame(shared)
    x, y = frame[NUMERIC], frame["home_rating"] - frame["away_rating"] + 0.1 * frame["pace"]
    tree = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(x, y)
    knn = KNeighborsRegressor(n_neighbors=10).fit(x, y)
    tree_v = await register(
        mc,
        "nb-tree",
        log_model(
            shared,
            "nb-tree",
            lambda p: mlflow.sklearn.save_model(
                tree,
                p,
                signature=infer_signature(x),
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
            ),
        ),
        None,
    )
    knn_v = await register(
        mc,
        "nb-knn",
        log_model(
            shared,
            "nb-knn",
            lambda p: mlflow.sklearn.save_model(
                knn,
                p,
                signature=infer_signature(x),
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
            ),
        ),
        None,
    )
    row = first_rows(frame, NUMERIC)[0]

    e = (
        await mc.call_tool("explain_prediction", {"model": f"nb-tree/{tree_v}", "row": row})
    ).structured_content
    assert e["explainer"] == "tree" and e["background_rows"] == 0 and e["output_space"] == "raw"
    assert e["output_value"] == pytest.approx(float(tree.predict(pd.DataFrame([row]))[0]), abs=1e-9)

    text = tool_error_text(await mc.call_tool("explain_prediction", {"model": f"nb-knn/{knn_v}", "row": row}))
    assert "model" in text and "no reference profile" in text and "KNeighborsRegressor" in text
    assert f"register_model(model='nb-knn', source='models:/nb-knn/{knn_v}', reference_dataset=" in text

    text = tool_error_text(await mc.call_tool("get_feature_importance", {"model": f"nb-knn/{knn_v}"}))
    assert "dataset" in text and "no reference profile" in text
    imp = await mc.call_tool(
        "get_feature_importance",
        {"model": f"nb-knn/{knn_v}", "dataset": "nba/recent.parquet", "sample_size": 30},
    )
    assert not imp.is_error, imp.content
    out = imp.structured_content
    assert (
        out["explainer"] == "permutation"
        and "also the background rows" in out["source"]
        and out["n_rows"] == 30
    )
