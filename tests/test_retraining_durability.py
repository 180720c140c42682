"""Retraining jobs survive their worker being killed (kill -9 during training), on both stores:
SQLite with the worker inside a real `mlops-mcp serve` process, PostgreSQL with real
`mlops-mcp worker` processes (procrastinate). After the restart the job is failed (not retried),
its training process is gone, no version of it is left and no alias moved. On PostgreSQL the
queue's own locks are checked too: a second run of a model and a burst of policy evaluations each
wait in the queue once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pytest
from mcp import Client

from mlops_mcp.core.config import Settings
from mlops_mcp.core.engine import MLOps
from mlops_mcp.server.app import build_server
from tests.helpers import EXCLUDE, HttpServer, server_env, tool_error_text

pytestmark = pytest.mark.anyio

#: slow enough to be killed while it fits (random forests fit tree by tree)
SLOW = {"estimator": "random_forest", "params": {"n_estimators": 1000, "max_depth": 12}}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the demo data and a champion (logistic regression), made once (MLflow's first
    use in a fresh home is slow) and copied by each test."""
    home = tmp_path_factory.mktemp("template") / "home"
    ops = MLOps(Settings(home=home, retraining_worker="off", _env_file=None))  # type: ignore[call-arg]
    try:
        ops.generate_demo_data(seasons=3, games_per_season=300, rule_change_season=2023)
        ops.train(model="nba-win", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE,
                  estimator="logistic_regression", alias="champion")
    finally:
        ops.close()
    return home


def prepare(template: Path, home: Path, database_url: str | None = None) -> None:
    """A copy of the template home, and its 300 post-change games predicted and labeled in the store."""
    import shutil

    shutil.copytree(template, home)
    if database_url is None:
        database_url = f"sqlite:///{home / 'mlops.db'}"  # the copy's own store
    ops = MLOps(Settings(home=home, database_url=database_url, retraining_worker="off", _env_file=None))  # type: ignore[call-arg]
    try:
        features = ops.get_version("nba-win", 1).input_schema.features
        recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
        batch = ops.predict_batch("nba-win", recent[features].to_dict("records"))
        ops.log_feedback(items=[{"prediction_id": p, "actual": int(y)} for p, y in zip(batch.ids, recent["home_win"])])
    finally:
        ops.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} outlived its worker"
        time.sleep(0.1)


def job_row(ops: MLOps, job_id: int) -> Any:
    from mlops_mcp.core.retraining import jobs

    return jobs.get_row(ops.store, job_id)


async def poll(c: Client, job_id: int, until: Any, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await c.call_tool("get_retraining_job", {"job_id": job_id})
        assert not r.is_error, r.content
        job = r.structured_content
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        await anyio.sleep(0.2)


def assert_nothing_left(ops: MLOps, home: Path, job_id: int, versions: set[int]) -> None:
    assert {int(v.version) for v in ops.registry.versions("nba-win")} == versions
    assert ops.registry.aliases("nba-win") == {"champion": 1}
    assert not list((home / "data" / "retraining" / "nba-win").glob(f"job-{job_id}-*"))


async def test_kill_9_of_the_server_during_training_sqlite(tmp_path: Path, template: Path) -> None:
    home = tmp_path / "home"
    prepare(template, home)
    server = HttpServer(home)
    try:
        server.wait_ready()
        async with Client(f"{server.url}/mcp") as c:
            r = await c.call_tool("start_retraining", {"model": "nba-win", "reason": "killed", **SLOW})
            assert not r.is_error, r.content
            job_id = r.structured_content["job_id"]
            await poll(c, job_id, lambda j: j["stage"] == "training")
        ops = MLOps(Settings(home=home, retraining_worker="off", _env_file=None))  # type: ignore[call-arg]
        child = job_row(ops, job_id).child_pid
        assert child and alive(child)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        wait_gone(child)  # the training process noticed its parent die and exited
        assert job_row(ops, job_id).status == "running"  # nobody has looked yet
    finally:
        server.stop()
    restarted = HttpServer(home)
    try:
        restarted.wait_ready()
        async with Client(f"{restarted.url}/mcp") as c:
            job = await poll(c, job_id, lambda j: j["status"] != "running", timeout=30)
            assert job["status"] == "failed" and job["task"]["status"] == "failed"
            assert "stopped during stage 'training'" in job["message"] and job["new_version"] is None
            # nothing half-made is left, nothing moved; the model can be retrained again
            r = await c.call_tool("get_model_history", {"model": "nba-win"})
            assert [(e["alias"], e["kind"], e["to_version"]) for e in r.structured_content["events"]] == [("champion", "set", 1)]
        assert_nothing_left(ops, home, job_id, {1})
        ops.close()
    finally:
        restarted.stop()


def start_worker(home: Path, database_url: str, name: str) -> subprocess.Popen[bytes]:
    env = server_env(home, MLOPS_DATABASE_URL=database_url, MLOPS_RETRAINING_STALE_SECONDS="4", MLOPS_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "mlops_mcp", "worker", "--concurrency", "2", "--name", name],
                            env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def procrastinate_jobs(ops: MLOps, task: str) -> list[tuple[int, str]]:
    from sqlalchemy import text

    with ops.store.read() as s:
        return [(r[0], r[1]) for r in s.execute(
            text("SELECT id, status FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"), {"t": task})]


@pytest.mark.postgres
async def test_procrastinate_workers_kill_9_and_queue_locks_postgres(tmp_path: Path, template: Path, postgres_url: str) -> None:
    from mlops_mcp.core.retraining.queue import TASK_EVALUATE, TASK_RUN

    home = tmp_path / "home"
    prepare(template, home, postgres_url)
    server = build_server(Settings(home=home, database_url=postgres_url, _env_file=None))  # type: ignore[call-arg]
    ops = server.ops
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with Client(server) as c:
            # no worker yet: the job waits in procrastinate's queue
            r = await c.call_tool("start_retraining", {"model": "nba-win", "reason": "killed", **SLOW})
            assert not r.is_error, r.content
            job_id = r.structured_content["job_id"]
            assert r.structured_content["status"] == "queued" and "mlops-mcp worker" in r.structured_content["message"]
            again = await c.call_tool("start_retraining", {"model": "nba-win"})
            assert f"retraining job {job_id} of 'nba-win' is already queued" in tool_error_text(again)
            # procrastinate's queueing lock: one run of a model waits in the queue, however often asked
            assert ops.retraining.deferrer().run("nba-win") is None
            assert [s for _, s in procrastinate_jobs(ops, TASK_RUN)] == ["todo"]
            # a burst of drift reports: one policy evaluation waits in the queue
            r = await c.call_tool("set_retraining_policy", {"model": "nba-win", "drift_share": 0.1, "on_decay": False, "cooldown": "0"})
            assert not r.is_error, r.content
            for _ in range(3):
                r = await c.call_tool("check_drift", {"model": "nba-win", "dataset": "nba/recent.parquet"})
                assert not r.is_error and r.structured_content["share_drifted"] >= 0.1
            assert [s for _, s in procrastinate_jobs(ops, TASK_EVALUATE)] == ["todo"]

            workers.append(start_worker(home, postgres_url, "w1"))
            await poll(c, job_id, lambda j: j["stage"] == "training", timeout=240)
            child = job_row(ops, job_id).child_pid
            # the evaluation ran on the worker too: the drift trigger folded into the running job
            folded = await poll(c, job_id, lambda j: j["triggers"] == 2, timeout=60)
            assert folded["status"] == "running"
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            wait_gone(child)

            workers.append(start_worker(home, postgres_url, "w2"))
            job = await poll(c, job_id, lambda j: j["status"] != "running", timeout=60)
            assert job["status"] == "failed" and "stopped during stage 'training'" in job["message"]
            assert_nothing_left(ops, home, job_id, {1})
            # procrastinate's record of the dead worker's job is failed too (stalled: no heartbeat)
            deadline = time.monotonic() + 60
            while [s for _, s in procrastinate_jobs(ops, TASK_RUN)] != ["failed"]:
                assert time.monotonic() < deadline, procrastinate_jobs(ops, TASK_RUN)
                await anyio.sleep(0.5)

            # the second worker runs the next job to its end
            r = await c.call_tool("start_retraining", {"model": "nba-win", "reason": "after the crash"})
            assert not r.is_error, r.content
            done = await poll(c, r.structured_content["job_id"], lambda j: j["status"] not in ("queued", "running"), timeout=240)
            assert done["status"] in ("succeeded", "rejected_by_gate"), done
            assert done["worker"] and done["worker"].endswith(f":{workers[1].pid}")
            assert {int(v.version) for v in ops.registry.versions("nba-win")} == {1, done["new_version"]}
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                try:
                    w.wait(20)
                except subprocess.TimeoutExpired:
                    w.kill()
        ops.close()
