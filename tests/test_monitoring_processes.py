"""Several processes on one store: two server processes take predictions and tool calls at the
same time, and both (and ``mlops-mcp exporter``) then report the same totals, equal to what was
sent and to the rows in the store; on SQLite and on PostgreSQL. The exporter answers 503 with the
reason while its store is unreachable, and keeps running."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pandas as pd
import pytest
from mcp import Client
from sqlalchemy import func, select

from mlops_mcp.core.config import Settings
from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.store import Store
from mlops_mcp.core.store.tables import Prediction
from mlops_mcp.server.app import build_server
from tests.helpers import EXCLUDE, HttpServer, copy_home, free_port, sample, scrape_samples, server_env

MODEL = "nba-win"


class Exporter:
    def __init__(self, home: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_mcp", "exporter", "--port", str(self.port)],
            env=server_env(home, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                httpx.get(self.url + "/", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("exporter did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def totals(url: str) -> dict[str, float]:
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return totals_of(r.text)


def totals_of(text: str) -> dict[str, float]:
    s = scrape_samples(text)
    return {
        "rows": sum(v for (name, labels), v in s.items() if name == "mlops_predictions_total" and ("model", MODEL) in labels),
        "requests": sample(s, "mlops_prediction_latency_seconds_count", model=MODEL) or 0.0,
        "errors": sample(s, "mlops_prediction_errors_total", model=MODEL, reason="invalid_input") or 0.0,
        "tool_calls": sample(s, "mlops_tool_calls_total", tool="get_server_info", outcome="ok") or 0.0,
    }


class Backend:
    """One store (a copy of the trained home, on SQLite or on PostgreSQL) with its two server
    processes: an HTTP server (a subprocess) and this test's own engine (an in-memory MCP server:
    it has the ML stack loaded already, which saves a second server's seconds of imports), plus
    the exporter."""

    def __init__(self, name: str, home: Path, url: str | None) -> None:
        self.name = name
        env = {"MLOPS_DATABASE_URL": url} if url else {}
        self.url = url or f"sqlite:///{home / 'mlops.db'}"
        self.store = Store(self.url)
        self.store.migrate()  # as `mlops-mcp db upgrade` would, before the replicas start
        self.server = HttpServer(home, **env)
        self.exporter = Exporter(home, **env)
        self.local = build_server(Settings(home=home, database_url=self.url, _env_file=None))  # type: ignore[call-arg]
        recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
        self.records = recent[[c for c in recent.columns if c not in [*EXCLUDE, "home_win"]]].to_dict("records")

    def warm(self) -> None:
        """Started, and MLflow's first load done in the server, before the concurrent part."""
        self.server.wait_ready()
        self.exporter.wait_ready()
        r = httpx.post(f"{self.server.url}/v1/models/{MODEL}/predict", json={"rows": self.records[:1]}, timeout=120)
        assert r.status_code == 200, r.text
        self.local.ops.predict_batch(MODEL, self.records[:1])

    def close(self) -> None:
        self.server.stop()
        self.exporter.stop()
        self.local.ops.close()
        self.store.dispose()


def test_two_server_processes_writing_report_the_same_totals(
    trained_home: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """On SQLite, and on PostgreSQL when the tests have one: both processes take predictions and
    tool calls at once, then both and the exporter report the store's totals. The backends'
    processes start together (their imports overlap), then each is driven in turn."""
    urls: dict[str, str | None] = {"sqlite": None}
    if os.environ.get("MLOPS_TEST_DATABASE_URL"):
        urls["postgresql"] = request.getfixturevalue("postgres_url")
    backends: list[Backend] = []
    try:
        for name, url in urls.items():
            backends.append(Backend(name, copy_home(trained_home, tmp_path / name), url))
        warming = [threading.Thread(target=b.warm) for b in backends]
        for t in warming:
            t.start()
        for t in warming:
            t.join()
        for b in backends:
            drive_and_compare(b)
    finally:
        for b in backends:
            b.close()


def drive_and_compare(b: Backend) -> None:
    server, exporter, local, ops, records = b.server, b.exporter, b.local, b.local.ops, b.records
    sent = {"rows": 2, "requests": 2}  # the warm-up
    lock = threading.Lock()

    def batches(seed: int) -> list[list[dict[str, Any]]]:
        out = []
        for i in range(25):
            n = 1 + (seed * 7 + i) % 4
            start = (seed * 31 + i * 5) % (len(records) - n)
            out.append(records[start : start + n])
        return out

    def remote(seed: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for rows in batches(seed):
                r = http.post(f"/v1/models/{MODEL}/predict", json={"rows": rows})
                assert r.status_code == 200, r.text
                with lock:
                    sent["rows"] += len(rows)
                    sent["requests"] += 1
            assert http.post(f"/v1/models/{MODEL}/predict", json={"rows": [{"pace": 1}]}).status_code == 422

    def here(seed: int) -> None:
        for rows in batches(seed):
            ops.predict_batch(MODEL, rows)
            with lock:
                sent["rows"] += len(rows)
                sent["requests"] += 1
        with pytest.raises(InvalidInput):
            ops.predict_batch(MODEL, [{"pace": 1}])

    async def tool_calls() -> None:
        async with Client(f"{server.url}/mcp") as remote_client, Client(local) as local_client:
            for _ in range(3):
                assert not (await remote_client.call_tool("get_server_info", {})).is_error
                assert not (await local_client.call_tool("get_server_info", {})).is_error

    threads = [threading.Thread(target=remote, args=(k,)) for k in (0, 1)]
    threads += [threading.Thread(target=here, args=(k,)) for k in (2, 3)]
    for t in threads:
        t.start()
    anyio.run(tool_calls)
    for t in threads:
        t.join()

    expected = {"rows": sent["rows"], "requests": sent["requests"], "errors": 4, "tool_calls": 6}
    with b.store.read() as sess:
        assert sess.scalar(select(func.count()).select_from(Prediction).where(Prediction.model == MODEL)) == sent["rows"]
    seen: list[dict[str, float]] = []
    deadline = time.monotonic() + 15  # the server's tool calls reach the store within a flush (1 s)
    while time.monotonic() < deadline:
        seen = [totals(server.url), totals(exporter.url), totals_of(ops.metrics_text().decode())]
        if all(t == expected for t in seen):
            break
        time.sleep(0.3)
    assert seen == [expected] * 3, b.name


def test_exporter_answers_503_while_the_store_is_unreachable(tmp_path: Path) -> None:
    exporter = Exporter(tmp_path / "home", MLOPS_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    try:
        exporter.wait_ready()
        for _ in range(2):
            r = httpx.get(exporter.url + "/metrics", timeout=30)
            assert r.status_code == 503 and r.text.startswith("store unreachable:")
            assert "could not be opened" in r.text or "could not be read" in r.text
        assert exporter.proc.poll() is None  # still serving
        assert httpx.get(exporter.url + "/", timeout=5).status_code == 200
    finally:
        exporter.stop()


def test_exporter_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlops_mcp", "exporter", "--host", "0.0.0.0", "--port", str(free_port())],
        env=server_env(tmp_path / "home"), capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2 and "MLOPS_AUTH_TOKEN" in done.stderr
