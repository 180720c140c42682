"""Ray Serve deployments for real (issue 17): a local Ray head, a PostgreSQL store, a real MCP
client. Under concurrent load the deployment scales 1 -> 2 replicas and back to 1 after the load
stops; no request fails; every answered row is in the prediction log exactly once; a promotion
made during the load is served by every replica within 2 s. The head is stopped at the end (the
last undeploy stops it; a finalizer makes sure even when the test fails)."""

import http.client
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

pytest.importorskip("ray.serve", reason='the Ray Serve tests need the serve extra: pip install "mlops-mcp[serve]"')

from mlops_mcp.core.config import Settings  # noqa: E402
from mlops_mcp.core.deploy import cluster  # noqa: E402
from mlops_mcp.server.app import build_server  # noqa: E402
from tests.helpers import EXCLUDE, copy_home, free_port, tool_error_text  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TOKEN = "deploy-test-token"
CLIENTS = 8
AB_KEYS, AB_REPEATS = 12, 4
AB_REQUESTS = AB_KEYS * AB_REPEATS


def _rows(home: Path, n: int) -> list[dict[str, Any]]:
    import pandas as pd

    frame = pd.read_parquet(home / "data" / "nba" / "train.parquet").drop(columns=[*EXCLUDE, "home_win"], errors="ignore")
    return json.loads(frame.head(n).to_json(orient="records", date_format="iso"))


class Load:
    """CLIENTS threads posting 1-row requests back to back, recording (time, status, version, rows)."""

    def __init__(self, url: str, rows: list[dict[str, Any]]) -> None:
        from urllib.parse import urlsplit

        self.parts = urlsplit(url)
        self.rows = rows
        self.stop = threading.Event()
        self.records: list[tuple[float, int, int | None, int]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def client(self, i: int) -> None:
        conn = http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=60)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        n = 0
        while not self.stop.is_set():
            row = self.rows[(i * 7919 + n) % len(self.rows)]
            body = json.dumps({"rows": [row], "request_keys": [f"c{i}-{n}"]}).encode()
            n += 1
            try:
                conn.request("POST", self.parts.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status, data = 0, b""
                conn.close()
                conn = http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=60)
            version, answered = None, 0
            if status == 200:
                predictions = json.loads(data)["predictions"]
                version, answered = predictions[0]["version"], len(predictions)
            with self.lock:
                self.records.append((time.monotonic(), status, version, answered))
        conn.close()

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)


async def _status(c: Client, model: str) -> dict[str, Any]:
    r = await c.call_tool("get_deployment", {"model": model})
    assert not r.is_error, r.content
    return r.structured_content  # type: ignore[return-value]


async def _wait(c: Client, model: str, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info = await _status(c, model)
        if predicate(info):
            return info
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {info}"
        await anyio.sleep(0.5)


@pytest.fixture
def ray_settings(trained_home: Path, tmp_path: Path, postgres_url: str) -> Any:
    home = copy_home(trained_home, tmp_path / "home")
    settings = Settings(  # type: ignore[call-arg]
        home=home, database_url=postgres_url, ray_serve_port=free_port(), ray_num_cpus=2, auth_token=TOKEN, _env_file=None,
    )
    yield settings
    cluster.stop_local_head(settings)  # whatever happened, no Ray process outlives the test


async def test_autoscaling_promotion_and_log_under_load(ray_settings: Settings) -> None:
    server = build_server(ray_settings)
    ops = server.ops
    model = "nba-win"
    try:
        async with Client(server) as c:
            r = await c.call_tool("deploy_model", {
                "model": model, "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
                "upscale_delay_s": 1, "downscale_delay_s": 60, "max_ongoing_requests": 4, "cpus_per_replica": 0.5,
                "confirm": True,
            })
            assert not r.is_error, r.content
            out = r.structured_content
            assert out["action"] == "deployed" and out["deployment"]["replicas_running"] == 1
            url = out["deployment"]["url"]
            head = cluster.read_head(ray_settings)
            assert head is not None and head["address"].startswith("127.0.0.1:")

            # deploying again updates the scaling, and says so
            r = await c.call_tool("deploy_model", {
                "model": model, "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
                "upscale_delay_s": 1, "downscale_delay_s": 2, "max_ongoing_requests": 4, "cpus_per_replica": 0.5,
                "confirm": True,
            })
            assert not r.is_error, r.content
            out = r.structured_content
            assert out["action"] == "updated" and "already deployed" in out["message"]
            assert out["previous"]["downscale_delay_s"] == 60 and out["deployment"]["scaling"]["downscale_delay_s"] == 2
            listed = (await c.call_tool("list_deployments", {})).structured_content
            assert [d["model"] for d in listed["deployments"]] == [model]

            # the same token rule as the built-in route
            rows = _rows(ray_settings.home, 200)
            conn = http.client.HTTPConnection("127.0.0.1", ray_settings.ray_serve_port, timeout=30)
            conn.request("POST", f"/v1/models/{model}/predict", body=json.dumps({"rows": rows[:1]}),
                         headers={"Content-Type": "application/json"})
            refused = conn.getresponse()
            assert refused.status == 401 and "Bearer" in refused.read().decode()
            conn.close()

            with Load(url, rows) as load:
                up = await _wait(c, model, lambda i: i["replicas_running"] == 2, 60, "a second replica")
                assert up["replicas_target"] == 2 and up["champion_version"] == 1
                # an A/B split assigns a request key to the same arm whichever replica answers
                r = await c.call_tool("start_ab_test", {"model": model, "traffic_split": 0.5})
                assert not r.is_error, r.content
                experiment = r.structured_content["experiment_id"]
                await anyio.sleep(1.5)  # replicas re-read running experiments at least every second
                arms = await anyio.to_thread.run_sync(_arms_by_key, url, rows[0])
                assert all(len(seen) == 1 for seen in arms.values()), arms
                assert {v for seen in arms.values() for v in seen} == {"a", "b"}, arms
                from mlops_mcp.core.experiments.router import arm_for

                assert {k: seen.pop() for k, seen in arms.items()} == {k: arm_for(experiment, k, 0.5) for k in arms}
                r = await c.call_tool("conclude_ab_test", {"experiment_id": experiment, "confirm": True})
                assert not r.is_error, r.content
                await anyio.sleep(1.5)
                r = await c.call_tool("set_model_alias", {"model": model, "alias": "champion", "version": 2, "confirm": True})
                assert not r.is_error, r.content
                promoted = time.monotonic()
                await anyio.sleep(5)
            records = load.records
            failed = [rec for rec in records if rec[1] != 200]
            assert failed == [], f"{len(failed)} of {len(records)} requests failed, e.g. {failed[:3]}"
            late_old = [rec for rec in records if rec[0] > promoted + 2 and rec[2] != 2]
            assert late_old == [], f"{len(late_old)} answers from the old version more than 2 s after the promotion"
            assert any(rec[2] == 2 for rec in records) and any(rec[2] == 1 for rec in records)

            answered = sum(rec[3] for rec in records) + AB_REQUESTS  # the load's rows and the A/B probes
            from sqlalchemy import func, select

            from mlops_mcp.core.store.tables import Prediction

            with ops.store.read() as session:
                logged = session.execute(select(func.count()).select_from(Prediction).where(Prediction.model == model)).scalar_one()
                distinct = session.execute(select(func.count(func.distinct(Prediction.id))).where(Prediction.model == model)).scalar_one()
            assert logged == answered == distinct, (logged, answered, distinct)

            down = await _wait(c, model, lambda i: i["replicas_running"] == 1 and i["replicas_target"] == 1, 60, "back to 1 replica")
            assert down["champion_version"] == 2 and down["traffic"]["requests"] > 0

            r = await c.call_tool("undeploy_model", {"model": model, "confirm": True})
            assert not r.is_error, r.content
            assert r.structured_content["undeployed"] and r.structured_content["ray_stopped"]
            r = await c.call_tool("undeploy_model", {"model": model, "confirm": True})
            assert "not deployed" in tool_error_text(r)
        _gone(int(head["pgid"]))
    finally:
        ops.close()


def _arms_by_key(url: str, row: dict[str, Any], keys: int = AB_KEYS, repeats: int = AB_REPEATS) -> dict[str, set[str]]:
    """Each key sent ``repeats`` times on fresh connections (so the proxy spreads them over the
    replicas): the set of arms each key got."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    seen: dict[str, set[str]] = {}
    for _ in range(repeats):
        for k in range(keys):
            key = f"ab-key-{k}"
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            conn.request("POST", parts.path, body=json.dumps({"rows": [row], "request_keys": [key]}),
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
            response = conn.getresponse()
            assert response.status == 200, response.read()
            seen.setdefault(key, set()).add(json.loads(response.read())["predictions"][0]["variant"])
            conn.close()
    return seen


def _gone(pgid: int, timeout: float = 20.0) -> None:
    """No live process is left in the head's process group (zombies awaiting their reaper aside)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(pid)
        if not alive:
            return
        assert time.monotonic() < deadline, f"Ray processes left in group {pgid}: {alive}"
        time.sleep(0.5)
