"""``mlops-mcp demo``: a newcomer's first run. A fresh home, the server started as a subprocess
over stdio, and a real MCP client session driving it step by step, printing each call and the
text the server answers with (what a person, or a host that shows only text, reads). It grows
with every capability the server gains.

The home is kept afterwards (default ``./mlops-demo``), so ``mlflow ui`` and a host can be pointed
at what the demo made; a later run starts it afresh, but only deletes a folder the demo made.
"""

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from mlops_mcp.core.synthetic import EXCLUDE as DEMO_EXCLUDE


@dataclass
class Step:
    title: str
    tool: str
    arguments: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] = field(default_factory=dict)
    expect_error: bool = False
    show: Callable[[dict[str, Any]], Any] | None = None  # extra structured detail to print after the text
    keep: str | None = None  # remember the structured result under this name for later steps


EXCLUDE = list(DEMO_EXCLUDE)
DEFAULT_HOME = "mlops-demo"
MARKER = ".mlops-demo"  # a home holding this file was made by the demo and may be started afresh


def _pick(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda r: {k: r.get(k) for k in keys}


def _games(state: dict[str, Any], n: int, offset: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    import pandas as pd

    frame = pd.read_parquet(os.path.join(state["home"], "data", "nba", "recent.parquet")).iloc[offset : offset + n]
    keys = [f"game-{g}" for g in frame["game_id"]]
    rows = json.loads(frame.drop(columns=EXCLUDE + ["home_win"]).to_json(orient="records"))
    return rows, keys


def _predict_args(n: int, offset: int = 0) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def build(state: dict[str, Any]) -> dict[str, Any]:
        rows, keys = _games(state, n, offset)
        return {"model": "nba-win", "rows": rows, "request_keys": keys, "max_results": n}

    return build


def _feedback_args(*batches: tuple[str, int]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The true outcome of every game a kept predict batch scored (batch name, row offset)."""

    def build(state: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd

        games = pd.read_parquet(os.path.join(state["home"], "data", "nba", "recent.parquet"))
        items = []
        for name, offset in batches:
            for i, p in enumerate(state[name]["predictions"]):
                items.append({"prediction_id": p["prediction_id"], "actual": int(games["home_win"].iloc[offset + i])})
        return {"items": items, "source": "box_scores"}

    return build


def _show_performance(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("predictions", "labeled", "label_coverage", "metrics")
    overall = r.get("overall") or {}
    return {
        "overall": {k: overall.get(k) for k in keys},
        "training_baseline": r.get("baseline"),
        "degraded": r.get("degraded"),
        "reasons": r.get("reasons"),
    }


def _show_predictions(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "versions": r["versions"],
        "batch": r["batch"],
        "first": [{k: p[k] for k in ("prediction_id", "prediction", "score", "version")} for p in r["predictions"][:2]],
    }


def _show_drift(r: dict[str, Any]) -> dict[str, Any]:
    by_name = {c["column"]: c for c in r["columns"]}
    drifted = [
        f"{name}: effect {by_name[name]['effect_size']:.3f} ({by_name[name]['effect_metric']}), p_adj {by_name[name]['p_adjusted']:.2g}"
        for name in r["ranked"] if by_name.get(name, {}).get("drifted")
    ]
    return {
        "current": r["current_source"],
        "drifted_columns": drifted,
        "clean_columns": r["n_checked"] - r["n_drifted"],
        "prediction_drifted": (r["prediction_drift"] or {}).get("drifted"),
        "dataset_drift": f"{r['drift_detected']} ({r['n_drifted']}/{r['n_checked']} columns drifted; "
        f"the dataset-level flag needs a share of at least {r['drift_share']})",
    }


def _show_explanation(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "prediction": r["prediction"], "probability": round(r["probability"] or 0, 4), "space": r["output_space"],
        "base_value": round(r["base_value"], 4), "explainer": r["explainer"],
        "top": [f"{c['feature']}={c['value']}: {c['shap']:+.4f}" for c in r["contributions"]],
        "rest": round(r["rest"], 4),
    }


def _steps(quick: bool) -> list[Step]:
    games = 300 if quick else 1230
    train = {"model": "nba-win", "dataset": "nba/train.parquet", "target": "home_win", "exclude": EXCLUDE}
    return [
        Step("What is this server?", "get_server_info"),
        Step(
            "Make a season-by-season NBA dataset with a rule change in 2024 (more threes, faster pace)",
            "generate_demo_data",
            {"seasons": 4, "games_per_season": games, "rule_change_season": 2024},
        ),
        Step("Train version 1 (gradient boosting) on the seasons before the change; make it champion", "train_model",
             {**train, "alias": "champion", "description": "GBM on 2021-2023"}),
        Step("Train version 2 (logistic regression) as the challenger", "train_model",
             {**train, "estimator": "logistic_regression", "alias": "challenger"}),
        Step("Compare both on the 2024 season", "compare_model_versions",
             {"model": "nba-win", "version_a": 1, "version_b": 2, "dataset": "nba/recent.parquet"}),
        Step("Promote version 2 without confirming: a dry run, nothing changes", "set_model_alias",
             {"model": "nba-win", "alias": "champion", "version": 2}),
        Step("Promote version 2, confirmed", "set_model_alias",
             {"model": "nba-win", "alias": "champion", "version": 2, "reason": "better on 2024", "confirm": True}),
        Step("Predict 50 games of 2024 with the champion (every prediction is logged)", "predict", _predict_args(50), keep="batch1"),
        Step("Roll the champion back", "rollback_model", {"model": "nba-win", "reason": "demo rollback", "confirm": True}),
        Step("Predict 150 more games: version 1 answers again", "predict", _predict_args(150, 50), keep="batch2"),
        Step("Why did it say that? Explain the first logged prediction (by the version that made it)", "explain_prediction",
             lambda s: {"model": "nba-win", "prediction_id": s["batch1"]["predictions"][0]["prediction_id"], "top_k": 5}),
        Step("What matters overall? (mean |SHAP| over 1,000 reference rows)", "get_feature_importance",
             {"model": "nba-win", "sample_size": 1000}),
        Step("Is the champion drifting since the rule change? (its reference vs 2024 games)", "check_drift",
             {"model": "nba-win", "dataset": "nba/recent.parquet"}),
        Step("The same question on live traffic: the inputs of the predictions just logged", "check_drift",
             {"model": "nba-win"}),
        Step("Drift history", "get_drift_history", {"model": "nba-win"}),
        Step("Box scores arrive: log the true outcome of the 200 predicted games", "log_feedback",
             _feedback_args(("batch1", 0), ("batch2", 50))),
        Step("How is it really doing? Live accuracy against its training baseline", "get_model_performance",
             {"model": "nba-win", "window": "1d"}),
        Step("Is the challenger really better? Offline paired test on the 2024 season", "run_ab_test",
             {"model": "nba-win", "variant_a": "champion", "variant_b": "challenger", "dataset": "nba/recent.parquet"}),
        Step("Start a live A/B test: plain 'nba-win' requests split 50/50 by request key", "start_ab_test",
             {"model": "nba-win", "traffic_split": 0.5}, keep="ab"),
        Step("Live traffic: 300 games", "predict", _predict_args(300), keep="ab_batch"),
        Step("Their outcomes arrive", "log_feedback", _feedback_args(("ab_batch", 0))),
        Step("Read the test: effect, classic and always-valid p-values, sample ratio, power", "get_ab_test",
             lambda s: {"experiment_id": s["ab"]["experiment_id"]}),
        Step("Stop it here (the demo has too little traffic for a winner; a champion moves only on a clear one)",
             "conclude_ab_test",
             lambda s: {"experiment_id": s["ab"]["experiment_id"], "reason": "demo", "confirm": True}),
        Step("Shadow the challenger: it scores live traffic, its answers are logged, never returned", "start_shadow",
             {"model": "nba-win", "variant": "challenger"}),
        Step("Live traffic: 100 games (the champion answers)", "predict", _predict_args(100, 100)),
        Step("Shadow report: agreement, differences, latency, errors", "get_shadow_report", {"model": "nba-win"}),
        Step("Stop the shadow", "stop_shadow", {"model": "nba-win"}),
        Step("The alias history that makes rollback possible", "get_model_history", {"model": "nba-win"}),
        Step("Bad input gets a clear error naming the argument, and the server keeps running", "predict",
             {"model": "nba-win", "rows": [{"pace": 101.0}]}, expect_error=True),
        Step("Unknown models are named with what exists", "get_model", {"model": "nba-loss"}, expect_error=True),
    ]


def _fmt_args(arguments: dict[str, Any]) -> str:
    shown = {k: (f"[{len(v)} rows]" if k in ("rows", "request_keys", "items") and isinstance(v, list) else v) for k, v in arguments.items()}
    return json.dumps(shown)


def _fmt(value: Any, limit: int = 1600) -> str:
    text = json.dumps(value, indent=2, default=str)
    return text if len(text) <= limit else text[:limit] + "\n  ... (cut)"


async def _drive(home: str, quick: bool) -> int:
    env = {
        **os.environ, "MLOPS_HOME": home, "MLFLOW_DISABLE_TELEMETRY": "true", "MLOPS_LOG_LEVEL": "WARNING",
        "MLFLOW_LOGGING_LEVEL": "ERROR",
    }
    env.pop("MLOPS_DATABASE_URL", None)
    env.pop("MLOPS_TRACKING_URI", None)
    env.pop("MLOPS_DATA_ROOTS", None)
    server = StdioServerParameters(command=sys.executable, args=["-m", "mlops_mcp", "serve"], env=env, cwd=home)
    failures = 0
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        print(f"Connected over stdio. {len(tools)} tools: {', '.join(t.name for t in tools)}\n")
        state: dict[str, Any] = {"home": home}
        for number, step in enumerate(_steps(quick), 1):
            arguments = step.arguments(state) if callable(step.arguments) else step.arguments
            print(f"[{number}] {step.title}")
            print(f"    -> {step.tool}({_fmt_args(arguments)})")
            started = time.perf_counter()
            result = await client.call_tool(step.tool, arguments)
            ms = (time.perf_counter() - started) * 1000
            if result.is_error:
                text = result.content[0].text if result.content else ""
                mark = "expected error" if step.expect_error else "ERROR"
                print(f"    <- {mark} ({ms:.0f} ms): {text}\n")
                failures += 0 if step.expect_error else 1
                continue
            if step.expect_error:
                print(f"    <- unexpectedly succeeded ({ms:.0f} ms)\n")
                failures += 1
                continue
            data = result.structured_content or {}
            if step.keep:
                state[step.keep] = data
            text = "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")
            images = sum(1 for c in result.content if getattr(c, "type", "") == "image")
            print(f"    <- ok ({ms:.0f} ms)" + (f", with {images} PNG chart(s)" if images else ""))
            print("       " + text.replace("\n", "\n       "))
            if step.show:
                print("       " + _fmt(step.show(data)).replace("\n", "\n       "))
            print()
        audit = await client.read_resource("mlops://audit")
        entries = json.loads(audit.contents[0].text)["entries"]  # type: ignore[union-attr]
        shown = entries[:12]
        print(f"The audit log (mlops://audit) recorded {len(entries)} mutating calls; the newest {len(shown)}:")
        for e in shown:
            print(f"    {e['at'][:19].replace('T', ' ')} UTC  {e['tool']:<22} {e['outcome']:<6} {e['duration_ms']:>8.1f} ms  by {e['actor']}")
    return failures


def prepare_home(home: str | None) -> str:
    """The demo's home, empty: ``home`` or ``./mlops-demo``. A folder the demo made before (it holds
    the marker file) is started afresh; any other non-empty folder is refused, never deleted."""
    path = os.path.abspath(home or DEFAULT_HOME)
    if os.path.isdir(path) and os.listdir(path):
        if not os.path.exists(os.path.join(path, MARKER)):
            raise SystemExit(
                f"mlops-mcp demo: {path} exists and was not made by the demo; give an empty or new folder with --home"
            )
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, MARKER), "w") as fh:
        fh.write("made by `mlops-mcp demo`; the next demo run deletes and remakes this folder\n")
    return path


def run_demo(home: str | None = None, quick: bool = False) -> int:
    home = prepare_home(home)
    print(f"mlops-mcp demo: home {home}\n")
    failures = anyio.run(_drive, home, quick)
    print(f"\nDemo finished: {'all steps as expected' if not failures else f'{failures} step(s) failed'}.")
    print(
        f"Everything it made is kept in {home}. See it in the MLflow UI:\n"
        f"    mlflow ui --backend-store-uri sqlite:///{home}/mlflow.db\n"
        f"or point a host at it: MLOPS_HOME={home} mlops-mcp serve"
    )
    return 1 if failures else 0
