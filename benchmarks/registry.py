"""Registry and serving: what registering a version adds beyond training, and predict latency.

Compared with what a user would otherwise write: ``mlflow.sklearn.log_model(...,
registered_model_name=...)`` with MLflow's defaults (it infers pip requirements in a subprocess),
and calling the loaded model directly. Budgets: registration <= 1 s beyond training; predict of
1 row through an in-memory MCP client <= 15 ms median (warm); 10,000 rows with logging <= 1.5 s.
"""

import json
import os
import tempfile
import time

import anyio

from benchmarks.common import measure, table

EXCLUDE = ["game_id", "season", "game_date", "point_margin"]


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import pandas as pd
    from mcp import Client

    from mlops_mcp.core.config import Settings
    from mlops_mcp.server.app import build_server

    home = tempfile.mkdtemp(prefix="mlops-bench-registry-")
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops = server.ops
    ops.generate_demo_data(seasons=4, games_per_season=1230, rule_change_season=2024)
    ops.train(model="warmup", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE)  # MLflow DB creation

    regs, trains = [], []
    for i in range(5):
        r = ops.train(model="nba-win", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE,
                      estimator="logistic_regression", alias="champion" if i == 0 else None)
        regs.append(r.register_seconds)
        trains.append(r.train_seconds)
    regs.sort()
    ours_reg = regs[len(regs) // 2]

    # the alternative: MLflow's fluent API with its defaults, same fitted pipeline
    import mlflow
    import mlflow.sklearn

    from mlops_mcp.core.models.pipeline import build_pipeline, coerce_features, infer_schema

    frame = pd.read_parquet(os.path.join(home, "data", "nba", "train.parquet"))
    schema = infer_schema(frame, "home_win", exclude=EXCLUDE)
    X = coerce_features(frame[schema.features], schema)
    pipe = build_pipeline("logistic_regression", "classification", schema).fit(X, frame["home_win"])
    mlflow.set_tracking_uri(ops.settings.tracking_uri)
    mlflow.set_experiment("bench-fluent")
    fluent = []
    for _ in range(3):
        started = time.perf_counter()
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                pipe, name="model", registered_model_name="fluent", input_example=X.head(5),
                serialization_format="cloudpickle",  # its skops default refuses this plain pipeline
            )
        fluent.append(time.perf_counter() - started)
    fluent.sort()

    rows = json.loads(pd.read_parquet(os.path.join(home, "data", "nba", "recent.parquet")).drop(columns=EXCLUDE + ["home_win"]).to_json(orient="records"))
    big = (rows * (10_000 // len(rows) + 1))[:10_000]

    ops.train(model="nba-gb", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE,
              estimator="gradient_boosting", params={"n_estimators": 200}, alias="champion")

    async def client_timings() -> tuple[list[float], list[float]]:
        async with Client(server) as c:
            for _ in range(3):
                await c.call_tool("explain_prediction", {"model": "nba-gb", "row": rows[0]})
            for i in range(30):
                t = time.perf_counter()
                res = await c.call_tool("explain_prediction", {"model": "nba-gb", "row": rows[i]})
                explain.append(time.perf_counter() - t)
                assert not res.is_error, res.content
            explain.sort()
            for _ in range(5):
                await c.call_tool("predict", {"model": "nba-win", "rows": rows[:1]})
            one = []
            for i in range(50):
                t = time.perf_counter()
                res = await c.call_tool("predict", {"model": "nba-win", "rows": rows[i : i + 1]})
                one.append(time.perf_counter() - t)
                assert not res.is_error
            many = []
            for _ in range(3):
                t = time.perf_counter()
                res = await c.call_tool("predict", {"model": "nba-win", "rows": big, "max_results": 0})
                many.append(time.perf_counter() - t)
                assert res.structured_content["n_rows"] == 10_000
            return sorted(one), sorted(many)

    explain: list[float] = []
    one, many = anyio.run(client_timings)
    loaded = ops.registry.load(ops.registry.resolve(__import__("mlops_mcp.core.models.registry", fromlist=["ModelRef"]).ModelRef.parse("nba-win")))
    direct = measure(lambda: loaded.model.predict_proba(coerce_features(pd.DataFrame(rows[:1])[schema.features], schema)), runs=50)
    pyfunc = mlflow.pyfunc.load_model(ops.registry.client.get_model_version_download_uri("nba-win", "1"))
    pyfunc_t = measure(lambda: pyfunc.predict(pd.DataFrame(rows[:1])[schema.features]), runs=50)

    print(table(
        "registry: registering a trained version (median)",
        ["what", "seconds", "budget"],
        [
            ["mlops-mcp: log + register + reference profile (+prepared drift reference)", f"{ours_reg:.3f}", "<= 1.0"],
            ["mlflow.sklearn.log_model(registered_model_name=..., input_example), inferred requirements", f"{fluent[1]:.3f}", "-"],
            ["(training itself, logistic regression, 3,690 rows)", f"{sorted(trains)[2]:.3f}", "-"],
        ],
    ))
    print(table(
        "serving: predict through an in-memory MCP client (model warm)",
        ["what", "median", "p95", "budget"],
        [
            ["predict, 1 row, logged", f"{one[len(one) // 2] * 1000:.1f} ms", f"{one[int(len(one) * 0.95)] * 1000:.1f} ms", "<= 15 ms"],
            ["predict, 10,000 rows, logged", f"{many[1]:.3f} s", "-", "<= 1.5 s"],
            ["explain_prediction, 1 row, 200-tree gradient boosting (warm)", f"{explain[len(explain) // 2] * 1000:.1f} ms",
             f"{explain[int(len(explain) * 0.95)] * 1000:.1f} ms", "<= 25 ms"],
            ["sklearn pipeline.predict_proba directly, 1 row (no MCP, no log)", direct.fmt(), "-", "-"],
            ["mlflow.pyfunc model.predict directly, 1 row (no MCP, no log)", pyfunc_t.fmt(), "-", "-"],
        ],
    ))
