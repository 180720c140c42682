"""Serving throughput: the built-in REST route against the Ray Serve deployment at 1 and 2
replicas, same model, same machine, same run (``python -m benchmarks deploy``).

Workloads: 1-row requests from 1, 8 and 32 concurrent clients, and 1,000-row batches from 1 and 8.
Every request is predicted and logged to the store (PostgreSQL: two replicas need a store several
processes can write; set MLOPS_BENCH_DATABASE_URL or MLOPS_TEST_DATABASE_URL to an admin URL, a
scratch database is created and dropped). Needs the serve extra (``pip install "mlops-mcp[serve]"``).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import free_port, table, wait_http
from benchmarks.load import run_load

SECONDS = float(os.environ.get("MLOPS_BENCH_SECONDS", "6"))
WORKLOADS = (("1 row", 1, 1), ("1 row", 1, 8), ("1 row", 1, 32), ("1,000 rows", 1000, 1), ("1,000 rows", 1000, 8))


def _measure(label: str, url: str, bodies: dict[int, bytes], out: list[list[object]]) -> None:
    run_load(url, bodies[1], 4, 1.0)  # warm-up: models loaded, connections open
    for workload, n, clients in WORKLOADS:
        r = run_load(url, bodies[n], clients, SECONDS)
        out.append([
            label, workload, clients, f"{r['rps']:.0f}", f"{r['rps'] * n:,.0f}",
            f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-", f"{r['p99_ms']:.1f}" if r["p99_ms"] is not None else "-",
            r["failed"],
        ])
        print(f"  {label:<22} {workload:<10} {clients:>2} clients: {r['rps']:.0f} req/s, p50 {r['p50_ms']} ms", flush=True)


def main() -> None:
    admin = os.environ.get("MLOPS_BENCH_DATABASE_URL") or os.environ.get("MLOPS_TEST_DATABASE_URL")
    if not admin:
        print("deploy benchmark: set MLOPS_BENCH_DATABASE_URL (a PostgreSQL admin URL); skipped", file=sys.stderr)
        return
    try:
        import ray.serve  # noqa: F401
    except ImportError:
        print('deploy benchmark: needs the serve extra (pip install "mlops-mcp[serve]"); skipped', file=sys.stderr)
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from benchmarks.common import scratch_postgres
    from mlops_mcp.core.config import Settings
    from mlops_mcp.core.deploy.cluster import stop_local_head
    from mlops_mcp.core.deploy.config import ScalingSpec
    from mlops_mcp.core.engine import MLOps
    from mlops_mcp.core.synthetic import EXCLUDE

    url, drop = scratch_postgres(admin)
    home = Path(tempfile.mkdtemp(prefix="mlops-bench-deploy-"))
    serve_port, http_port = free_port(), free_port()
    settings = Settings(home=home, database_url=url, ray_serve_port=serve_port, _env_file=None)  # type: ignore[call-arg]
    ops = MLOps(settings)
    proc = None
    rows_out: list[list[object]] = []
    try:
        ops.generate_demo_data(seasons=3, games_per_season=400, rule_change_season=2022)
        ops.train(model="bench", dataset="nba/train.parquet", target="home_win", exclude=list(EXCLUDE), alias="champion")
        import pandas as pd

        frame = pd.read_parquet(home / "data" / "nba" / "train.parquet").drop(columns=[*EXCLUDE, "home_win"], errors="ignore")
        records = json.loads(frame.head(1000).to_json(orient="records", date_format="iso"))
        bodies = {1: json.dumps({"rows": records[:1]}).encode(), 1000: json.dumps({"rows": records[:1000]}).encode()}

        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
        env.update({"MLOPS_HOME": str(home), "MLOPS_DATABASE_URL": url, "MLFLOW_DISABLE_TELEMETRY": "true", "MLOPS_LOG_LEVEL": "WARNING"})
        proc = subprocess.Popen([sys.executable, "-m", "mlops_mcp", "serve", "--http", "--port", str(http_port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{http_port}/health/live", proc)
        print("built-in route (mlops-mcp serve --http, one process):", flush=True)
        _measure("built-in route", f"http://127.0.0.1:{http_port}/v1/models/bench/predict", bodies, rows_out)
        proc.terminate()
        proc.wait(20)
        proc = None

        for replicas in (1, 2):
            spec = ScalingSpec(min_replicas=replicas, max_replicas=replicas, cpus_per_replica=1.0, max_ongoing_requests=32,
                               target_ongoing_requests=16)
            started = time.perf_counter()
            result = ops.deploy_model("bench", spec)
            print(f"Ray Serve, {replicas} replica(s): {result.action} in {time.perf_counter() - started:.1f} s", flush=True)
            assert result.deployment is not None and result.deployment.url is not None
            _measure(f"Ray Serve, {replicas} replica(s)", result.deployment.url, bodies, rows_out)
        ops.undeploy_model("bench")
    finally:
        if proc is not None:
            proc.terminate()
        stop_local_head(settings)
        ops.close()
        drop()
    print(table(
        f"Serving on {os.cpu_count()} CPUs, every request predicted and logged to PostgreSQL ({SECONDS:g} s per cell)",
        ["server", "request", "clients", "req/s", "rows/s", "p50 ms", "p99 ms", "failed"],
        rows_out,
    ))


if __name__ == "__main__":
    main()
