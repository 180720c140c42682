"""Serving: the built-in REST route (every prediction logged) against MLflow's own scoring server
(``mlflow models serve --env-manager local``, which logs nothing), same model version, same rows,
on loopback, same run.

Setup: nba-win v1 (gradient boosting, champion) trained on the demo data in a scratch home (SQLite
store; ``BENCH_SERVING_DATABASE_URL=postgresql://...`` puts the store on PostgreSQL instead: a
scratch database is created and dropped). Both servers run as subprocesses with one worker each.
Load: :func:`benchmarks.load.run_load` (wrk when installed) for ``BENCH_SERVING_SECONDS`` (default
8) per cell, after a 2 s warm-up: 1-row requests at 1, 8 and 32 concurrent clients, and 1,000-row
batches at 1 client. After the load the store's row count is compared with the rows answered.
Then 10,000 rows through the engine's ``predict`` (what the tool and the route call) logged and not
logged (median of 7).

Budgets (issue 17): 1,000-row batches >= 0.8x MLflow's throughput; 10,000 rows logged <= 250 ms;
8 clients >= 1 client's throughput with p99 < 50 ms; every prediction logged exactly once.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import free_port, measure, scratch_postgres, table, wait_http
from benchmarks.load import run_load

SECONDS = float(os.environ.get("BENCH_SERVING_SECONDS", "8"))
DATABASE_URL = os.environ.get("BENCH_SERVING_DATABASE_URL")
EXCLUDE = ["game_id", "season", "game_date", "point_margin"]
MODEL = "nba-win"


def main() -> None:
    import pandas as pd

    from mlops_mcp.core.config import Settings
    from mlops_mcp.core.engine import MLOps

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    home = tmp / "home"
    db_url, drop = (scratch_postgres(DATABASE_URL) if DATABASE_URL else (None, None))
    settings = Settings(home=home, database_url=db_url, _env_file=None)  # type: ignore[call-arg]
    ops = MLOps(settings)
    procs: list[subprocess.Popen] = []
    try:
        ops.generate_demo_data()
        ops.train(model=MODEL, dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, alias="champion")
        recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
        features = [c for c in recent.columns if c not in [*EXCLUDE, "home_win"]]
        rows = json.loads(recent[features].to_json(orient="records"))
        rows = (rows * (1 + 10_000 // len(rows)))[:10_000]

        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
        env.update(MLOPS_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true", MLOPS_LOG_LEVEL="WARNING")
        if db_url:
            env["MLOPS_DATABASE_URL"] = db_url
        ours_port, mlflow_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "mlops_mcp", "serve", "--http", "--port", str(ours_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        bin_dir = str(Path(sys.executable).parent)  # mlflow starts `uvicorn` from the PATH
        mlflow_env = {**env, "MLFLOW_TRACKING_URI": str(settings.tracking_uri), "PATH": f"{bin_dir}:{env.get('PATH', '')}"}
        procs.append(subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", f"models:/{MODEL}/1",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mlflow_port), "--workers", "1"],
            env=mlflow_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        ours = f"http://127.0.0.1:{ours_port}/v1/models/{MODEL}/predict"
        theirs = f"http://127.0.0.1:{mlflow_port}/invocations"
        wait_http(f"http://127.0.0.1:{ours_port}/health/live", procs[0])
        wait_http(f"http://127.0.0.1:{mlflow_port}/ping", procs[1])
        for url, body in ((ours, {"rows": rows[:1]}), (theirs, {"dataframe_records": rows[:1]})):
            r = httpx.post(url, json=body, timeout=120)
            assert r.status_code == 200, r.text

        from sqlalchemy import func, select

        from mlops_mcp.core.store.tables import Prediction

        def logged() -> int:
            with ops.store.read() as s:
                return int(s.scalar(select(func.count()).select_from(Prediction)) or 0)

        cells = [("1 row", 1, 1), ("1 row", 8, 1), ("1 row", 32, 1), ("1,000 rows", 1, 1000), ("1,000 rows", 8, 1000)]
        results = []
        answered_rows = 0  # rows of the answers wrk counted (warm-ups included); in-flight ones at each stop are extra
        in_flight = 0
        before = logged()
        for label, clients, size in cells:
            batch = rows[:size]
            mine = json.dumps({"rows": batch}).encode()
            other = json.dumps({"dataframe_records": batch}).encode()
            for seconds in (2, SECONDS):  # warm-up, then the measured run
                a = run_load(ours, mine, clients, seconds)
                answered_rows += (a["requests"] - a["failed"]) * size
                in_flight += clients * size
            run_load(theirs, other, clients, 2)
            b = run_load(theirs, other, clients, SECONDS)
            results.append((label, clients, size, a, b))
        after = logged()

        out = []
        for label, clients, size, a, b in results:
            out.append([
                f"{label}, {clients} client{'s' if clients > 1 else ''}",
                f"{a['rps']:.0f}", f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f}",
                f"{b['rps']:.0f}", f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f}",
                f"{a['rps'] / b['rps']:.2f}x", f"{a['failed']} / {b['failed']}",
            ])
        backend = "PostgreSQL" if db_url else "SQLite"
        print(table(
            f"REST predictions, built-in route (logged, {backend} store) vs mlflow models serve (not logged), "
            f"{SECONDS:.0f} s per cell, load by {results[0][3].get('tool', 'run_load')}",
            ["requests", "built-in req/s", "p50 / p99 ms", "mlflow req/s", "p50 / p99 ms", "ratio", "failed"],
            out,
        ))
        one = next(a for label, c, s, a, b in results if s == 1 and c == 1)
        eight = next(a for label, c, s, a, b in results if s == 1 and c == 8)
        print(f"8 clients / 1 client throughput: {eight['rps'] / one['rps']:.2f}x; 8-client p99 {eight['p99_ms']:.1f} ms")
        extra = after - before - answered_rows
        print(f"rows answered {answered_rows:,}; rows logged {after - before:,} "
              f"({extra:+,}: requests still in flight when a run stopped, at most {in_flight:,})")

        # 10,000 rows through predict, logged and not, interleaved (same engine call the tool and the route make)
        import statistics

        predictor = ops.predictor
        predictor.predict(MODEL, rows[:10])
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(7):
            for log_it in (True, False):
                t = time.perf_counter()
                predictor.predict(MODEL, rows, log_predictions=log_it)
                times[log_it].append(time.perf_counter() - t)
        logged_ms, bare_ms = (statistics.median(times[k]) * 1000 for k in (True, False))
        tool = measure(lambda: ops.predict(MODEL, rows), runs=3)
        print(table(
            f"10,000 rows through predict ({backend} store; medians of 7, logged and not interleaved)",
            ["", "time"],
            [["logged", f"{logged_ms:.0f} ms (min {min(times[True]) * 1000:.0f})"],
             ["not logged", f"{bare_ms:.0f} ms (min {min(times[False]) * 1000:.0f})"],
             ["the log's share", f"{(logged_ms - bare_ms) / logged_ms:.0%}"],
             ["the predict tool's engine call (adds the summary and result)", tool.fmt()]],
        ))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        ops.close()
        if drop is not None:
            drop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
