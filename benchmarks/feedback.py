"""Feedback and live performance, on SQLite and PostgreSQL side by side.

Setup per store: nba-win v1 trained on the demo data, then BENCH_FEEDBACK_PREDICTIONS (default
1,000,000) predictions bulk-inserted over 30 days. Rows:
- log_feedback of BENCH_FEEDBACK_LABELS (default 100,000) labels from a Parquet file, through the
  MCP tool (in-memory client; includes the type check, unknown-id lookup, corrections, audit row);
- the same file again (every label is now a correction);
- get_model_performance over all predictions (half of them labeled), window 1d and 1h, through the
  MCP tool; and, for comparison, what a user would otherwise write: pandas.read_sql of both tables,
  a merge on prediction_id keeping the newest label, and sklearn metrics per day.
PostgreSQL runs when BENCH_FEEDBACK_DATABASE_URL (or MLOPS_TEST_DATABASE_URL) names a server: a
fresh database is created there and dropped afterwards. Targets: 100k labels <= 5 s on SQLite and
at most twice the SQLite time on PostgreSQL; report over 1M predictions <= 3 s.
"""

import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import scratch_postgres, table

N_PRED = int(os.environ.get("BENCH_FEEDBACK_PREDICTIONS", "1000000"))
N_LABELS = int(os.environ.get("BENCH_FEEDBACK_LABELS", "100000"))
PG_URL = os.environ.get("BENCH_FEEDBACK_DATABASE_URL") or os.environ.get("MLOPS_TEST_DATABASE_URL")


def bulk_insert_predictions(store: object, n: int, seed: int = 1) -> list[str]:
    """Raw DBAPI bulk load (executemany on SQLite, COPY on PostgreSQL): ~1M rows in seconds."""
    rng = np.random.default_rng(seed)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    offsets = np.sort(rng.uniform(0, 30 * 86400, n))
    scores = rng.random(n)
    ids = [uuid.uuid4().hex for _ in range(n)]
    raw = store.engine.raw_connection()  # type: ignore[attr-defined]
    try:
        cur = raw.cursor()
        step = 100_000
        for lo in range(0, n, step):
            rows = []
            for i in range(lo, min(n, lo + step)):
                s = float(scores[i])
                ts = (start + timedelta(seconds=float(offsets[i]))).strftime("%Y-%m-%d %H:%M:%S.%f")
                rows.append((ids[i], "1" if s > 0.5 else "0", s, json.dumps({"0": round(1 - s, 6), "1": round(s, 6)}), ts))
            if store.is_sqlite:  # type: ignore[attr-defined]
                cur.execute("BEGIN IMMEDIATE")
                cur.executemany(
                    "INSERT INTO predictions (id, model, version, variant, experiment_id, request_key, inputs, output, score, "
                    "probabilities, latency_ms, batch_size, created_at) VALUES (?, 'nba-win', 1, 'champion', NULL, NULL, '{}', ?, ?, ?, 1.0, 100, ?)",
                    rows,
                )
                cur.execute("COMMIT")
            else:
                with cur.copy(
                    "COPY predictions (id, model, version, variant, inputs, output, score, probabilities, latency_ms, batch_size, created_at) "
                    "FROM STDIN"
                ) as copy:
                    for pid, out, s, probs, ts in rows:
                        copy.write_row((pid, "nba-win", 1, "champion", "{}", out, s, probs, 1.0, 100, ts + "+00"))
                raw.commit()
        if not store.is_sqlite:  # type: ignore[attr-defined]
            cur.execute("ANALYZE predictions")
            raw.commit()
    finally:
        raw.close()
    return ids


def naive_pandas(store: object) -> float:
    """What a user would write without the tool: read both tables, join, metrics per day."""
    from sklearn import metrics

    t = time.perf_counter()
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        p = pd.read_sql("SELECT id, created_at, output, score FROM predictions WHERE model = 'nba-win'", conn)
        f = pd.read_sql("SELECT prediction_id, actual, id AS fid FROM feedback WHERE model = 'nba-win'", conn)
    f = f.sort_values("fid").drop_duplicates("prediction_id", keep="last")
    m = p.merge(f, left_on="id", right_on="prediction_id")
    m["day"] = pd.to_datetime(m["created_at"]).dt.floor("D")
    for _, g in m.groupby("day"):
        y = g["actual"].astype(int).to_numpy()
        pred = g["output"].astype(int).to_numpy()
        metrics.accuracy_score(y, pred)
        metrics.f1_score(y, pred)
        metrics.roc_auc_score(y, g["score"].to_numpy())
    return time.perf_counter() - t


async def run_store(database_url: str | None) -> tuple[dict[str, tuple[str, object]], float]:
    """Every figure for one store: {row label: (time, result)}, and the setup time."""
    from mcp import Client

    from mlops_mcp.core.config import Settings
    from mlops_mcp.server.app import build_server

    out: dict[str, tuple[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
        home = Path(tmp)
        server = build_server(Settings(home=home, database_url=database_url, _env_file=None))  # type: ignore[call-arg]
        ops = server.ops
        ops.generate_demo_data(seasons=3, games_per_season=300, rule_change_season=2023)
        ops.train(
            model="nba-win", dataset="nba/train.parquet", target="home_win", estimator="logistic_regression",
            exclude=["game_id", "season", "game_date", "point_margin"], alias="champion",
        )
        t = time.perf_counter()
        ids = bulk_insert_predictions(ops.store, N_PRED)
        setup_s = time.perf_counter() - t

        rng = np.random.default_rng(2)
        chosen = rng.choice(len(ids), size=min(N_LABELS, len(ids)), replace=False)
        labels = pd.DataFrame({"prediction_id": [ids[i] for i in chosen], "actual": rng.integers(0, 2, len(chosen))})
        labels.to_parquet(home / "data" / "labels.parquet")
        rest = np.setdiff1d(np.arange(len(ids)), chosen)[: max(0, len(ids) // 2 - len(chosen))]
        more = pd.DataFrame({"prediction_id": [ids[i] for i in rest], "actual": rng.integers(0, 2, len(rest))})
        more.to_parquet(home / "data" / "more_labels.parquet")

        async with Client(server) as c:
            t = time.perf_counter()
            r = await c.call_tool("log_feedback", {"dataset": "labels.parquet", "source": "bench"})
            assert not r.is_error, r.content
            out[f"log_feedback: {len(labels):,} labels (Parquet)"] = (f"{time.perf_counter() - t:.2f} s", r.structured_content["logged"])
            t = time.perf_counter()
            r = await c.call_tool("log_feedback", {"dataset": "labels.parquet", "source": "bench"})
            assert not r.is_error, r.content
            out[f"log_feedback: same {len(labels):,} again (all corrections)"] = (
                f"{time.perf_counter() - t:.2f} s", r.structured_content["corrected"])
            if len(more):
                t = time.perf_counter()
                r = await c.call_tool("log_feedback", {"dataset": "more_labels.parquet", "source": "bench"})
                assert not r.is_error, r.content
                out[f"log_feedback: {len(more):,} more labels"] = (f"{time.perf_counter() - t:.2f} s", r.structured_content["logged"])
            for window in ("1d", "1h"):
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    r = await c.call_tool("get_model_performance", {"model": "nba-win", "window": window})
                    times.append(time.perf_counter() - t)
                    assert not r.is_error, r.content
                rep = r.structured_content
                out[f"get_model_performance {window}: {rep['overall']['predictions']:,} predictions, "
                    f"{rep['overall']['labeled']:,} labeled, {len(rep['buckets'])} buckets"] = (
                    f"{min(times):.2f} s (median {sorted(times)[1]:.2f})", rep["overall"]["metrics"].get("accuracy"))
            t = time.perf_counter()
            r = await c.call_tool("get_model_performance", {"model": "nba-win", "window": "1d", "plot": True})
            out["get_model_performance 1d + PNG chart"] = (f"{time.perf_counter() - t:.2f} s", len(r.content[1].data))
        naive = naive_pandas(ops.store)
        out["pandas read_sql + merge + sklearn per day (what a user would write)"] = (f"{naive:.2f} s", "")
        ops.close()
    return out, setup_s


async def run() -> None:
    stores: list[tuple[str, dict[str, tuple[str, object]], float]] = []
    figures, setup = await run_store(None)
    stores.append(("SQLite", figures, setup))
    if PG_URL:
        url, drop = scratch_postgres(PG_URL)
        try:
            figures, setup = await run_store(url)
        finally:
            drop()  # type: ignore[operator]
        stores.append(("PostgreSQL", figures, setup))
    targets = {0: "<= 5 s; PostgreSQL <= 2x SQLite", 3: "<= 3 s", 4: "<= 3 s"}
    rows = []
    for i, label in enumerate(stores[0][1]):
        row: list[object] = [label]
        for _, figures, _ in stores:
            time_, result = figures.get(label, ("", ""))
            row += [time_, result]
        rows.append([*row, targets.get(i, "")])
    header = ["operation"] + [f"{name} {col}" for name, _, _ in stores for col in ("time", "result")] + ["target"]
    setups = ", ".join(f"{name} {s:.1f} s" for name, _, s in stores)
    print(table(f"Feedback and performance ({N_PRED:,} predictions inserted: {setups})", header, rows))


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    asyncio.run(run())


if __name__ == "__main__":
    main()
