"""The prediction log's fast path (group commit, bulk inserts, JSON built per column), on SQLite and
on PostgreSQL: every answered prediction is logged exactly once, with what was sent and answered,
readable by the log's readers; concurrent requests share transactions; and a server killed with
SIGKILL under load has logged every prediction it answered."""

import json
import math
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pandas as pd
import pytest
from mcp import Client
from sqlalchemy import func, select

from mlops_mcp.core.config import Settings
from mlops_mcp.core.serving.jsonrows import json_records
from mlops_mcp.core.store import Store
from mlops_mcp.core.store.tables import Prediction
from mlops_mcp.core.values import plain
from mlops_mcp.server.app import build_server
from tests.helpers import EXCLUDE, HttpServer, copy_home

MODEL = "nba-win"


def backends(request: pytest.FixtureRequest) -> dict[str, str | None]:
    urls: dict[str, str | None] = {"sqlite": None}
    if os.environ.get("MLOPS_TEST_DATABASE_URL"):
        urls["postgresql"] = request.getfixturevalue("postgres_url")
    return urls


def demo_records(home: Path) -> list[dict[str, Any]]:
    recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
    rows = json.loads(recent[[c for c in recent.columns if c not in [*EXCLUDE, "home_win"]]].to_json(orient="records"))
    return (rows * (1 + 2000 // len(rows)))[:2000]


# -- JSON built column by column equals JSON built row by row ------------------------------------------
def test_json_records_match_row_by_row_encoding() -> None:
    rng = np.random.default_rng(7)
    n = 300
    special = [0.0, -0.0, 98.0, 1e22, 1e-7, 5e-324, 1.7976931348623157e308, float("nan"), float("inf"), -float("inf"), None]
    rows = []
    for i in range(n):
        rows.append({
            "f": float(rng.normal()) if i % 7 else special[i % len(special)],
            "whole": float(i),  # whole floats must read back as floats
            "i": int(rng.integers(-(2**40), 2**40)) if i % 5 else None,
            "big": 2**70 if i == 3 else i,  # beyond 64 bits: value by value
            "b": bool(i % 2) if i % 3 else None,
            "s": ["BOS", 'say "hi"\n', "é\u2028", None][i % 4],
            "mixed": [1, "1", 1.5, True, None, np.float64(2.5), np.int64(3)][i % 7],
            "np": np.float32(i / 3),
            "when": datetime(2024, 1, 1, tzinfo=UTC) if i % 2 else None,
        })
    got = [json.loads(t) for t in json_records(rows)]
    want = [json.loads(json.dumps(plain(r))) for r in rows]  # what the row-by-row log stored
    assert len(got) == n
    for g, w in zip(got, want):
        assert set(g) == set(w)
        for k in w:
            a, b = g[k], w[k]
            assert type(a) is type(b), (k, a, b)
            assert a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=1e-6) and k == "np"), (k, a, b)
    # fewer rows than the vectorised threshold, and rows with different keys, take the row-by-row path
    assert [json.loads(t) for t in json_records(rows[:3])] == want[:3]
    odd = rows[:299] + [{"x": 1}]
    assert [json.loads(t) for t in json_records(odd)][-1] == {"x": 1}


# -- exactly once, with what was sent, under concurrency --------------------------------------------------
def test_concurrent_requests_are_logged_exactly_once_and_readable(
    trained_home: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Threads send predictions of 1 to 300 rows at once (as the REST route's worker threads do) and
    an MCP client calls `predict` meanwhile; the store then holds exactly the answered rows, each
    with its inputs, output, probabilities and time as sent and answered, and requests shared
    transactions. The server is fresh: its first calls (migration, model load) are concurrent too.
    Then `log_feedback` and `check_drift` read the log."""
    for name, url in backends(request).items():
        home = copy_home(trained_home, tmp_path / name)
        server = build_server(Settings(home=home, database_url=url, _env_file=None))  # type: ignore[call-arg]
        ops = server.ops
        try:
            records = demo_records(home)
            # no warm-up: the first calls (store migration on PostgreSQL, model load) come concurrently too
            answered: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
            lock = threading.Lock()
            errors: list[BaseException] = []
            groups_before, rows_before = ops.predictor.log.groups, ops.predictor.log.rows

            def client(seed: int) -> None:
                rng = np.random.default_rng(seed)
                try:
                    for _ in range(12):
                        size = int(rng.choice([1, 1, 1, 5, 40, 300]))
                        start = int(rng.integers(0, len(records) - size))
                        sent = records[start : start + size]
                        batch = ops.predict_batch(MODEL, sent)
                        with lock:
                            for row, out in zip(sent, batch.rows):
                                answered[out["prediction_id"]] = (row, out)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            async def mcp_calls() -> list[str]:
                ids: list[str] = []
                async with Client(server) as c:
                    for i in range(5):
                        r = await c.call_tool("predict", {"model": MODEL, "rows": records[i : i + 3]})
                        assert not r.is_error, r.content
                        ids += [p["prediction_id"] for p in r.structured_content["predictions"]]
                return ids

            threads = [threading.Thread(target=client, args=(s,)) for s in range(8)]
            for t in threads:
                t.start()
            mcp_ids = anyio.run(mcp_calls)
            for t in threads:
                t.join()
            assert not errors, errors
            log = ops.predictor.log
            n_requests = 8 * 12 + 5
            assert log.rows - rows_before == len(answered) + len(mcp_ids)
            assert log.groups - groups_before < n_requests, "concurrent requests should share transactions"

            with ops.store.read() as s:
                total = s.scalar(select(func.count()).select_from(Prediction))
                stored = {p.id: p for p in s.scalars(select(Prediction).where(Prediction.id.in_(list(answered)[:2000])))}
            assert total == len(answered) + len(mcp_ids)  # exactly once each
            assert len(answered) == len(set(answered))
            for pid, p in stored.items():
                row, out = answered[pid]
                assert p.inputs == row
                assert p.output == out["prediction"] and p.probabilities == out["probabilities"]
                assert p.score == pytest.approx(out["score"]) and p.version == out["version"] == 1
                assert p.created_at.tzinfo is not None and abs((datetime.now(UTC) - p.created_at).total_seconds()) < 600

            # readers of the log: feedback joins on the ids, drift reads the logged inputs
            async def readers() -> None:
                async with Client(server) as c:
                    items = [{"prediction_id": pid, "actual": 1} for pid in list(answered)[:50]]
                    r = await c.call_tool("log_feedback", {"items": items})
                    assert not r.is_error, r.content
                    assert r.structured_content["logged"] == 50 and r.structured_content["unknown"] == 0
                    r = await c.call_tool("check_drift", {"model": MODEL})
                    assert not r.is_error, r.content
                    assert r.structured_content["n_current"] >= 1000

            anyio.run(readers)
        finally:
            ops.close()


# -- kill -9 under load --------------------------------------------------------------------------------
def test_answered_predictions_survive_kill_9(trained_home: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two server processes on one store take REST predictions from 8 clients; one is killed with
    SIGKILL in the middle of the load. Every prediction_id a client got back is in the store,
    exactly once; the surviving server keeps answering. The servers of both backends start together
    (their imports overlap), then each backend is driven in turn."""
    setups: list[tuple[str, str, list[HttpServer]]] = []
    try:
        for name, url in backends(request).items():
            home = copy_home(trained_home, tmp_path / f"kill-{name}")
            env = {"MLOPS_DATABASE_URL": url} if url else {}
            store_url = url or f"sqlite:///{home / 'mlops.db'}"
            store = Store(store_url)
            store.migrate()
            store.dispose()
            setups.append((name, store_url, [HttpServer(home, **env), HttpServer(home, **env)]))
        records = demo_records(trained_home)
        for _, _, servers in setups:
            for s in servers:
                s.wait_ready(90)
        for name, store_url, servers in setups:
            kill_under_load(name, store_url, servers, records)
    finally:
        for _, _, servers in setups:
            for s in servers:
                if s.proc.poll() is None:
                    s.stop()


def kill_under_load(name: str, store_url: str, servers: list[HttpServer], records: list[dict[str, Any]]) -> None:
    for s in servers:
        r = httpx.post(f"{s.url}/v1/models/{MODEL}/predict", json={"rows": records[:1]}, timeout=120)
        assert r.status_code == 200, r.text
    victim, survivor = servers
    answered: list[str] = []
    survivor_failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(i: int) -> None:
        target = victim if i % 2 else survivor
        with httpx.Client(timeout=30) as http:
            k = 0
            while not stop.is_set():
                k += 1
                rows = records[(i * 37 + k) % 500 : (i * 37 + k) % 500 + (1 + k % 4)]
                try:
                    r = http.post(f"{target.url}/v1/models/{MODEL}/predict", json={"rows": rows})
                except httpx.HTTPError as exc:
                    if target is victim:
                        return  # the victim is gone
                    survivor_failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    if target is survivor:
                        survivor_failures.append(r.text)
                    continue
                with lock:
                    answered.extend(p["prediction_id"] for p in r.json()["predictions"])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    victim.proc.kill()  # SIGKILL: no shutdown code runs
    victim.proc.wait(10)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)
    assert not survivor_failures, survivor_failures[:3]
    assert len(answered) > 50
    store = Store(store_url)
    try:
        with store.read() as s:
            found: set[str] = set()
            for start in range(0, len(answered), 2000):
                found |= set(s.scalars(select(Prediction.id).where(Prediction.id.in_(answered[start : start + 2000]))))
            total = s.scalar(select(func.count()).select_from(Prediction))
    finally:
        store.dispose()
    missing = set(answered) - found
    assert not missing, f"{len(missing)} answered predictions are not in the store ({name})"
    assert len(set(answered)) == len(answered)
    assert total >= len(answered)  # rows committed whose answer the kill cut off may exist too


# -- a failing request fails alone ---------------------------------------------------------------------
def test_a_failing_request_in_a_group_fails_alone(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A group whose transaction fails (here: one request reuses a logged prediction id) is written
    again request by request: the others are committed, the culprit gets its own error."""
    from mlops_mcp.core.serving.log import LogEntry, PredictionLog
    from mlops_mcp.core.serving.predictor import prediction_ids

    for name, url in backends(request).items():
        store = Store(url or f"sqlite:///{tmp_path / f'{name}.db'}")
        try:
            log = PredictionLog(store)
            at = log.stamp(datetime.now(UTC))

            def entry(ids: list[str]) -> LogEntry:
                return LogEntry([(i, MODEL, 1, None, None, None, '{"x":1}', "1", 0.5, "null", 1.0, len(ids), at) for i in ids])

            first = prediction_ids(2)
            log.append(entry(first))
            good_a, bad, good_b = entry(prediction_ids(3)), entry([prediction_ids(1)[0], first[0]]), entry(prediction_ids(1))
            log._commit([good_a, bad, good_b])
            assert good_a.done and bad.done and good_b.done
            assert good_a.error is None and good_b.error is None and bad.error is not None
            with store.read() as s:
                ids = set(s.scalars(select(Prediction.id)))
            assert ids == {*first, *(r[0] for r in good_a.rows), *(r[0] for r in good_b.rows)}
        finally:
            store.dispose()
