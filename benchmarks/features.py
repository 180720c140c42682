"""Feature store: training sets, online reads and materialization, against pandas and Feast.

Data (seeded): 2 views x 10 float features, BENCH_FS_ROWS feature rows each (default 2,500,000,
so 5,000,000 in all) over BENCH_FS_KEYS integer keys (default 50,000) and one year, with a created
time; BENCH_FS_ENTITIES entity rows (default 1,000,000); TTL 30 days.

Rows:
- build_training_set on SQLite (the embedded default) and, when MLOPS_TEST_DATABASE_URL points at
  a PostgreSQL server, on PostgreSQL (a fresh database), from the files already ingested;
- pandas merge_asof on the same data, already in memory: per view, right side sorted by
  (event_ts, created_ts), left by time, merge_asof(by=key, direction="backward", tolerance=ttl),
  original order restored; also with reading the Parquet files; and a check that every value of
  our training set equals pandas' (budget: ours <= 2x the in-memory merge_asof);
- Feast's file offline store (dask) on the same Parquet files, run from ``.venv-feast`` (Feast pins
  pandas < 3, so it is never a dependency of this project; see FEAST_HINT); its row count shows
  whether it kept every entity row;
- get_online_features, 1 key x 10 features, in process (median of 2,000 calls; budget 2 ms) and
  through an in-memory MCP client, and Feast's SQLite online store on the same question;
- materialize_features of BENCH_FS_MATERIALIZE rows (default 1,000,000) on SQLite (budget 10 s);
- ingest speed (register_feature_view of each 2.5M-row file), for information.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import table

ROWS = int(os.environ.get("BENCH_FS_ROWS", "2500000"))
KEYS = int(os.environ.get("BENCH_FS_KEYS", "50000"))
ENTITIES = int(os.environ.get("BENCH_FS_ENTITIES", "1000000"))
MATERIALIZE = int(os.environ.get("BENCH_FS_MATERIALIZE", "1000000"))
TTL_DAYS = 30
ROOT = Path(__file__).resolve().parent.parent
FEAST_PY = ROOT / ".venv-feast" / "bin" / "python"
FEAST_HINT = 'python3.11 -m venv .venv-feast && .venv-feast/bin/pip install feast "pandas<3"'
YEAR_US = 365 * 86400 * 10**6
START = pd.Timestamp("2024-01-01", tz="UTC")


def view_frame(j: int, n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    event = START.value // 1000 + r.integers(0, YEAR_US, n)
    created = event + r.integers(0, 3600 * 10**6, n)
    data: dict[str, object] = {
        "key": r.integers(0, KEYS, n),
        "event_ts": pd.to_datetime(event, unit="us", utc=True),
        "created_ts": pd.to_datetime(created, unit="us", utc=True),
    }
    for i in range(10):
        data[f"f{j}_{i}"] = r.normal(size=n)
    return pd.DataFrame(data)


def entity_frame(n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    ts = START.value // 1000 + r.integers(0, YEAR_US + 30 * 86400 * 10**6, n)
    return pd.DataFrame({"key": r.integers(0, KEYS, n), "ts": pd.to_datetime(ts, unit="us", utc=True), "label": r.integers(0, 2, n)})


def pandas_pit(entities: pd.DataFrame, views: list[pd.DataFrame], ttl: pd.Timedelta) -> pd.DataFrame:
    """What a user would write: merge_asof per view, the right side sorted by (event_ts, created_ts)."""
    out = entities.copy()
    left = entities[["key", "ts"]].assign(_row=np.arange(len(entities))).sort_values("ts", kind="stable")
    for v in views:
        right = v.sort_values(["event_ts", "created_ts"], kind="stable")
        merged = pd.merge_asof(
            left, right.drop(columns=["created_ts"]), left_on="ts", right_on="event_ts", by="key",
            direction="backward", tolerance=ttl,
        ).sort_values("_row")
        for c in v.columns:
            if c.startswith("f"):
                out[c] = merged[c].to_numpy()
    return out


FEAST = textwrap.dedent(
    """
    import json, statistics, sys, tempfile, time, resource
    from datetime import timedelta, datetime, timezone
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64
    cfg = json.loads(sys.argv[1])
    d = tempfile.mkdtemp(prefix="feast-bench-")
    repo = RepoConfig(project="bench", registry=f"{d}/registry.db", provider="local",
                      offline_store={"type": "file"}, online_store={"type": "sqlite", "path": f"{d}/online.db"},
                      entity_key_serialization_version=3)
    store = FeatureStore(config=repo)
    key = Entity(name="key", join_keys=["key"], value_type=ValueType.INT64)
    views = [FeatureView(name=f"v{j}", entities=[key], ttl=timedelta(days=cfg["ttl_days"]),
                         schema=[Field(name=f"f{j}_{i}", dtype=Float64) for i in range(10)],
                         source=FileSource(path=p, timestamp_field="event_ts", created_timestamp_column="created_ts"))
             for j, p in enumerate(cfg["views"])]
    small = FeatureView(name="small", entities=[key], ttl=timedelta(days=3650),
                        schema=[Field(name=f"f0_{i}", dtype=Float64) for i in range(10)],
                        source=FileSource(path=cfg["small"], timestamp_field="event_ts", created_timestamp_column="created_ts"))
    store.apply([key, *views, small])
    out = {}
    entity_df = pd.read_parquet(cfg["entities"])[["key", "ts"]].rename(columns={"ts": "event_timestamp"})
    feats = [f"v{j}:f{j}_{i}" for j in range(len(views)) for i in range(10)]
    try:
        t = time.perf_counter()
        df = store.get_historical_features(entity_df=entity_df, features=feats).to_df()
        out["offline_seconds"] = time.perf_counter() - t
        out["offline_rows"] = len(df)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except Exception as exc:
        out["offline_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    t = time.perf_counter()
    store.materialize(datetime(2000, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc), feature_views=["small"])
    out["materialize_small_seconds"] = time.perf_counter() - t
    refs = [f"small:f0_{i}" for i in range(10)]
    times = []
    for k in range(1000):
        t = time.perf_counter(); store.get_online_features(features=refs, entity_rows=[{"key": k % 1000}]).to_dict(); times.append(time.perf_counter() - t)
    out["online_ms"] = statistics.median(times[100:]) * 1000
    print(json.dumps(out))
    """
)


def run_feast(cfg: dict[str, object]) -> dict[str, object]:
    proc = subprocess.run([str(FEAST_PY), "-c", FEAST, json.dumps(cfg)], capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        killed = " (killed: out of memory?)" if proc.returncode < 0 else ""
        raise RuntimeError(f"exit {proc.returncode}{killed} {last}".strip())
    return json.loads(proc.stdout.strip().splitlines()[-1])


def identical(ours: pd.DataFrame, theirs: pd.DataFrame, columns: list[str]) -> str:
    bad = [c for c in columns if not np.array_equal(ours[c].to_numpy(dtype=float), theirs[c].to_numpy(dtype=float), equal_nan=True)]
    return "identical" if not bad else f"DIFFERENT in {len(bad)} columns"


def main() -> None:
    from mlops_mcp.core import MLOps, Settings

    with tempfile.TemporaryDirectory(prefix="mlops-fs-bench-") as d:
        tmp = Path(d)
        data = tmp / "data"
        data.mkdir()
        t = time.perf_counter()
        views = [view_frame(j, ROWS, 10 + j) for j in range(2)]
        for j, v in enumerate(views):
            v.to_parquet(data / f"v{j}.parquet")
        entities = entity_frame(ENTITIES, 3)
        entities.to_parquet(data / "entities.parquet")
        small = view_frame(0, 10_000, 5).assign(key=np.arange(10_000) % 1000)
        small.to_parquet(data / "small.parquet")
        mat = view_frame(0, MATERIALIZE, 7)
        mat.to_parquet(data / "mat.parquet")
        print(f"generated 2 x {ROWS:,} feature rows, {ENTITIES:,} entity rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        ttl = pd.Timedelta(days=TTL_DAYS)
        features = [f"v{j}:*" for j in range(2)]
        columns = [f"f{j}_{i}" for j in range(2) for i in range(10)]

        # pandas, in memory and from the files
        t = time.perf_counter()
        reference = pandas_pit(entities, views, ttl)
        pandas_memory = time.perf_counter() - t
        t = time.perf_counter()
        pandas_pit(pd.read_parquet(data / "entities.parquet"), [pd.read_parquet(data / f"v{j}.parquet") for j in range(2)], ttl)
        pandas_files = time.perf_counter() - t

        rows: list[list[object]] = []
        ingest_rows: list[list[object]] = []
        online_rows: list[list[object]] = []
        backends: list[tuple[str, str | None]] = [("sqlite", None)]
        admin = os.environ.get("MLOPS_TEST_DATABASE_URL")
        pg_name = None
        if admin:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            from mlops_mcp.core.store import normalize_url

            pg_name = f"mlops_bench_{uuid.uuid4().hex[:8]}"
            admin_url = make_url(normalize_url(admin))
            with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
            backends.append(("postgresql", admin_url.set(database=pg_name).render_as_string(hide_password=False)))
        try:
            for backend, url in backends:
                ops = MLOps(Settings(home=tmp / f"home-{backend}", database_url=url, data_roots=[data], _env_file=None))  # type: ignore[call-arg]
                for j in range(2):
                    t = time.perf_counter()
                    ops.register_feature_view(name=f"v{j}", source=f"v{j}.parquet", entities=["key"], timestamp_column="event_ts",
                                              created_column="created_ts", ttl=f"{TTL_DAYS}d")
                    ingest_rows.append([backend, f"register + ingest {ROWS:,} rows x 10 features", f"{time.perf_counter() - t:.1f} s"])
                t = time.perf_counter()
                result = ops.build_training_set(entities="entities.parquet", features=features, output=f"train_{backend}.parquet", overwrite=True)
                ours = time.perf_counter() - t
                got = pd.read_parquet(data / f"train_{backend}.parquet")
                same = identical(got, reference, columns)
                rows.append([f"mlops-mcp build_training_set ({backend})", f"{ours:.1f}", f"{ours / pandas_memory:.2f}x",
                             f"{result.rows:,}", same + f", match {result.features[0].match_rate:.1%}"])
                if backend == "sqlite":
                    ops.register_feature_view(name="small", source="small.parquet", entities=["key"], timestamp_column="event_ts",
                                              created_column="created_ts")
                    ops.materialize_features("small")
                    refs = [f"small:f0_{i}" for i in range(10)]
                    ops.get_online_features(refs, [1])
                    times = []
                    for k in range(2000):
                        s = time.perf_counter()
                        ops.get_online_features(refs, [k % 1000])
                        times.append(time.perf_counter() - s)
                    online_rows.append(["mlops-mcp get_online_features, in process (SQLite)", f"{statistics.median(times) * 1000:.2f} ms",
                                        f"p95 {np.percentile(times, 95) * 1000:.2f} ms"])
                    online_rows.append(["mlops-mcp get_online_features, in-memory MCP client", f"{_mcp_online(ops, refs):.2f} ms", ""])
                    ops.register_feature_view(name="mat", source="mat.parquet", entities=["key"], timestamp_column="event_ts",
                                              created_column="created_ts")
                    t = time.perf_counter()
                    m = ops.materialize_features("mat")
                    mat_seconds = time.perf_counter() - t
                    ingest_rows.append(["sqlite", f"materialize_features, {MATERIALIZE:,} rows -> {m.online_keys:,} keys (budget 10 s)", f"{mat_seconds:.1f} s"])
                ops.close()
        finally:
            if pg_name:
                with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))

        rows.append(["pandas merge_asof, data in memory (sort + asof + reorder)", f"{pandas_memory:.1f}", "1.00x", f"{len(reference):,}", "reference"])
        rows.append(["pandas merge_asof, reading the Parquet files", f"{pandas_files:.1f}", f"{pandas_files / pandas_memory:.2f}x", f"{len(reference):,}", ""])
        if FEAST_PY.exists():
            try:
                feast = run_feast({"views": [str(data / f"v{j}.parquet") for j in range(2)], "entities": str(data / "entities.parquet"),
                                   "small": str(data / "small.parquet"), "ttl_days": TTL_DAYS})
                if "offline_seconds" in feast:
                    kept = int(feast["offline_rows"])  # type: ignore[arg-type]
                    rows.append(["Feast file offline store (dask), own venv", f"{feast['offline_seconds']:.1f}",
                                 f"{float(feast['offline_seconds']) / pandas_memory:.2f}x", f"{kept:,}",  # type: ignore[arg-type]
                                 f"peak RSS {feast['peak_rss_mb']:.0f} MB" + ("" if kept == ENTITIES else f"; {ENTITIES - kept:,} entity rows dropped")])
                else:
                    rows.append(["Feast file offline store (dask), own venv", "failed", "", "", str(feast.get("offline_error"))])
                online_rows.append(["Feast get_online_features, SQLite online store", f"{feast['online_ms']:.2f} ms",
                                    f"materialize 10,000 rows: {feast['materialize_small_seconds']:.1f} s"])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                rows.append(["Feast file offline store (dask), own venv", f"failed: {exc}", "", "", ""])
        else:
            print(f"Feast rows skipped: create the venv with\n  {FEAST_HINT}", file=sys.stderr)

        print(table(f"build_training_set: {ENTITIES:,} entity rows x 2 views x 10 features ({2 * ROWS:,} feature rows, {KEYS:,} keys, TTL {TTL_DAYS}d)",
                    ["how", "seconds", "vs pandas in memory", "rows out", "check"], rows))
        print(table("Online reads: 1 key x 10 features (median)", ["how", "latency", ""], online_rows))
        print(table("Ingest and materialize", ["backend", "what", "time"], ingest_rows))


def _mcp_online(ops: object, refs: list[str]) -> float:
    from mcp import Client

    from mlops_mcp.server.app import build_server

    server = build_server(ops=ops)  # type: ignore[arg-type]

    async def run() -> float:
        async with Client(server) as c:
            await c.call_tool("get_online_features", {"features": refs, "entity_keys": [1]})
            times = []
            for k in range(300):
                s = time.perf_counter()
                await c.call_tool("get_online_features", {"features": refs, "entity_keys": [k % 1000]})
                times.append(time.perf_counter() - s)
            return statistics.median(times) * 1000

    return asyncio.run(run())
