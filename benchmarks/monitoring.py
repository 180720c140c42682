"""Monitoring: /metrics, get_model_health and the cost metrics add to serving, with 1,000,000
logged predictions.

Setup (SQLite by default; PostgreSQL with BENCH_MONITORING_DATABASE_URL=postgresql://..., where a
scratch database is created and dropped):
nba-win v1 (champion) and v2 (challenger) trained on the demo data; BENCH_MONITORING_PREDICTIONS
(default 1,000,000) one-row predictions bulk-inserted over 30 days (80% v1, 20% v2), 200,000 of
them labeled through log_feedback (the real path, which writes its rollups), the rollups of the
bulk-inserted predictions rebuilt (what the migration does to a store with history: timed), a drift
report, a running A/B test and shadow. Rows:
- a scrape of /metrics (the HTTP route, in process) and the engine call behind it; for comparison the
  scrape-time count a store without rollups would need (COUNT(*) GROUP BY model, version, variant);
- get_model_health through the MCP tool (in-memory client);
- a 1-row predict with and without the rollup write in its transaction (interleaved, same run), and
  the in-memory count of a tool call;
- log_feedback of 20,000 labels with and without counting them.
Targets: scrape <= 50 ms; get_model_health <= 300 ms; metrics add <= 0.2 ms to a 1-row predict.
"""

import asyncio
import io
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import measure, scratch_postgres, table

N_PRED = int(os.environ.get("BENCH_MONITORING_PREDICTIONS", "1000000"))
N_LABELS = int(os.environ.get("BENCH_MONITORING_LABELS", "200000"))
DATABASE_URL = os.environ.get("BENCH_MONITORING_DATABASE_URL")
EXCLUDE = ["game_id", "season", "game_date", "point_margin"]


def bulk_insert(store: Any, n: int, end: datetime, seed: int = 1) -> list[str]:
    """One-row predictions over the 30 days before ``end``: raw executemany (SQLite) or COPY (PostgreSQL)."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, 30 * 86400, n))
    scores = rng.random(n)
    versions = np.where(rng.random(n) < 0.8, 1, 2)
    latency = rng.uniform(1.0, 20.0, n)
    ids = [uuid.uuid4().hex for _ in range(n)]
    start = end - timedelta(days=30)
    cols = "id, model, version, variant, experiment_id, request_key, inputs, output, score, probabilities, latency_ms, batch_size, created_at"
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        step = 100_000
        for lo in range(0, n, step):
            rows = []
            for i in range(lo, min(n, lo + step)):
                s = float(scores[i])
                ts = start + timedelta(seconds=float(offsets[i]))
                variant = "champion" if versions[i] == 1 else "challenger"
                probs = json.dumps({"0": round(1 - s, 6), "1": round(s, 6)})
                rows.append((ids[i], "nba-win", int(versions[i]), variant, "{}", "1" if s > 0.5 else "0", s, probs, float(latency[i]), ts))
            if store.is_sqlite:
                cur.execute("BEGIN IMMEDIATE")
                cur.executemany(
                    f"INSERT INTO predictions ({cols}) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, 1, ?)",
                    [(*r[:9], r[9].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in rows],
                )
                cur.execute("COMMIT")
            else:
                buf = io.StringIO()
                for r in rows:
                    buf.write("\t".join([r[0], r[1], str(r[2]), r[3], "\\N", "\\N", r[4], r[5], repr(r[6]), r[7], repr(r[8]), "1", r[9].isoformat()]) + "\n")
                with cur.copy(f"COPY predictions ({cols}) FROM STDIN") as copy:
                    copy.write(buf.getvalue())
                raw.commit()
    finally:
        raw.close()
    return ids


def interleaved(a: Any, b: Any, runs: int) -> tuple[float, float]:
    """Medians of ``a`` and ``b`` measured alternately (the machine's noise hits both alike)."""
    ta, tb = [], []
    for _ in range(runs):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


async def run() -> None:
    url, drop = scratch_postgres(DATABASE_URL) if DATABASE_URL else (None, lambda: None)
    try:
        await measure_all(url)
    finally:
        drop()


async def measure_all(url: str | None) -> None:
    import httpx
    from mcp import Client

    from mlops_mcp.core.config import Settings
    from mlops_mcp.core.feedback import labels as labels_module
    from mlops_mcp.core.monitoring import rollups
    from mlops_mcp.core.monitoring.recorder import Recorder
    from mlops_mcp.server.app import build_server
    from mlops_mcp.server.http import build_http_app

    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        home = Path(tmp)
        settings = Settings(home=home, database_url=url, _env_file=None)  # type: ignore[call-arg]
        server = build_server(settings)
        ops = server.ops
        store = ops.store
        backend = "SQLite" if store.is_sqlite else "PostgreSQL"
        ops.generate_demo_data(seasons=3, games_per_season=300, rule_change_season=2023)
        for estimator, alias in (("logistic_regression", "champion"), ("gradient_boosting", "challenger")):
            ops.train(model="nba-win", dataset="nba/train.parquet", target="home_win", estimator=estimator, exclude=EXCLUDE, alias=alias)
        t = time.perf_counter()
        ids = bulk_insert(store, N_PRED, datetime.now(UTC))
        insert_s = time.perf_counter() - t

        rng = np.random.default_rng(2)
        chosen = rng.choice(len(ids), size=min(N_LABELS, len(ids)), replace=False)
        pd.DataFrame({"prediction_id": [ids[i] for i in chosen], "actual": rng.integers(0, 2, len(chosen))}).to_parquet(
            home / "data" / "labels.parquet"
        )
        t = time.perf_counter()
        ops.log_feedback(dataset="labels.parquet", source="bench")
        labels_s = time.perf_counter() - t
        t = time.perf_counter()
        with store.engine.begin() as conn:
            written = rollups.rebuild(conn, store.is_sqlite)
        rebuild_s = time.perf_counter() - t
        ops.check_drift("nba-win", dataset="nba/recent.parquet")
        ops.start_shadow("nba-win", "challenger")
        ops.start_ab_test("nba-win", traffic_split=0.2)
        recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
        features = [c for c in recent.columns if c not in [*EXCLUDE, "home_win"]]
        records = recent[features].to_dict("records")
        for i in range(0, 200, 20):  # live traffic: arms, mirrored rows
            ops.predict_batch("nba-win", records[i : i + 20], [f"user-{i + j}" for j in range(20)])
        ops.router.drain(30)

        rows: list[list[Any]] = []
        ops.metrics_text()
        await asyncio.sleep(3)  # the training baselines arrive from MLflow in the background
        body = ops.metrics_text()
        engine_t = measure(ops.metrics_text, runs=30, warmup=3)
        app = build_http_app(server, settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            times = []
            for _ in range(33):
                t = time.perf_counter()
                r = await http.get("/metrics")
                times.append(time.perf_counter() - t)
                assert r.status_code == 200
        http_ms = statistics.median(times[3:]) * 1000
        series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        rows.append([f"GET /metrics ({series} samples, {len(body):,} bytes)", f"{http_ms:.1f} ms", "<= 50 ms"])
        rows.append(["  the engine's scrape (ops.metrics_text)", engine_t.fmt(), ""])

        def naive() -> None:
            with store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT model, version, variant, COUNT(*) FROM predictions GROUP BY model, version, variant").all()

        rows.append(["  without rollups: COUNT(*) GROUP BY model, version, variant at scrape time", measure(naive, runs=5).fmt(), ""])

        async with Client(server) as c:
            times = []
            for _ in range(13):
                t = time.perf_counter()
                r = await c.call_tool("get_model_health", {"model": "nba-win"})
                times.append(time.perf_counter() - t)
                assert not r.is_error, r.content
            tokens = len(json.dumps(r.structured_content)) / 4
        h = r.structured_content
        rows.append([
            f"get_model_health (MCP tool; {h['traffic']['predictions']:,} predictions in 24 h, ~{tokens:.0f} tokens)",
            f"{statistics.median(times[3:]) * 1000:.1f} ms", "<= 300 ms",
        ])

        # a 1-row predict (the champion's name; A/B and shadow stopped so both arms do the same work)
        ops.stop_shadow("nba-win")
        ops.conclude_ab_test(int(h["experiments"][0]["experiment_id"]) if h["experiments"][0]["kind"] == "ab" else int(h["experiments"][1]["experiment_id"]))
        predictor = ops.predictor
        recorder = predictor.monitor
        row = records[:1]

        def with_metrics() -> None:
            predictor.monitor = recorder
            ops.predict_batch("nba-win", row)

        def without() -> None:
            predictor.monitor = None
            ops.predict_batch("nba-win", row)

        with_s, without_s = interleaved(with_metrics, without, runs=1000)
        predictor.monitor = recorder
        rows.append(["predict, 1 row, with metrics (rollup rows in the same transaction)", f"{with_s * 1000:.3f} ms", ""])
        rows.append(["predict, 1 row, without", f"{without_s * 1000:.3f} ms", ""])
        rows.append(["  difference of the medians (1,000 alternating calls each)", f"{(with_s - without_s) * 1000:+.3f} ms", "<= 0.2 ms"])
        # the added work itself, timed alone inside a write transaction (no model, no noise from it)
        outputs = [{"version": 1, "variant": "champion", "experiment_id": None, "prediction": 1}]
        alone = []
        for _ in range(500):
            with store.write() as session:
                conn = session.connection()
                t = time.perf_counter()
                recorder.predictions(conn, store.is_sqlite, "nba-win", outputs, 3.0, datetime.now(UTC))
                alone.append(time.perf_counter() - t)
        rows.append(["  the rollup write alone (tally + one upsert statement, in the transaction)", f"{statistics.median(alone) * 1000:.3f} ms", "<= 0.2 ms"])
        buffer = Recorder(lambda: store)
        tool_t = measure(lambda: [buffer.tool_call("predict", "ok", 0.004) for _ in range(1000)], runs=5)
        rows.append(["counting a tool call (in memory, flushed every second)", f"{tool_t.median * 1e6 / 1000:.2f} µs", ""])
        buffer.close()

        # labels: with and without their rollups, alternating, on fresh predictions each time
        original = labels_module._count
        fresh = bulk_insert(store, 40_000, datetime.now(UTC), seed=5)
        timings: dict[str, list[float]] = {"with": [], "without": []}
        for k in range(8):
            name = "with" if k % 2 == 0 else "without"
            labels_module._count = original if name == "with" else (lambda *a, **kw: None)
            items = [{"prediction_id": p, "actual": int(i % 2)} for i, p in enumerate(fresh[5000 * k : 5000 * (k + 1)])]
            t = time.perf_counter()
            ops.log_feedback(items=items)
            timings[name].append(time.perf_counter() - t)
        labels_module._count = original
        w, wo = statistics.median(timings["with"]), statistics.median(timings["without"])
        rows.append(["log_feedback 5,000 labels, with rollups / without (medians of 4, alternating)", f"{w:.3f} s / {wo:.3f} s", ""])
        rows.append([f"setup: {N_LABELS:,} labels through log_feedback", f"{labels_s:.1f} s", ""])
        rows.append([f"setup: rebuild the rollups of {N_PRED:,} predictions (the migration's backfill; {written:,} rows)", f"{rebuild_s:.1f} s", ""])
        print(table(
            f"Monitoring, {backend} ({N_PRED:,} predictions bulk-inserted in {insert_s:.1f} s)", ["operation", "time", "target"], rows
        ))
        ops.close()


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    asyncio.run(run())


if __name__ == "__main__":
    main()
