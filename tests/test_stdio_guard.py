"""The stdio protocol stream is untouchable: whatever any library prints (Python or native code,
threads, child processes, at start-up or at exit) goes to stderr, never onto the JSON-RPC stream.

Servers here run without PYTHONUNBUFFERED, as hosts launch them: then Python's stdout is block
buffered and a library's print can sit in the buffer until the interpreter exits.
"""

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EXCLUDE, ROOT, free_port, server_env

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}


def host_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment a host gives the server: no PYTHONUNBUFFERED (stdout block-buffered)."""
    env = server_env(home, **extra)
    env.pop("PYTHONUNBUFFERED", None)
    return env


class RawSession:
    """A stdio server driven line by line, so that every byte on its stdout can be inspected."""

    def __init__(self, env: dict[str, str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_mcp", "serve"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_path.open("wb"),
        )
        self.lines: list[bytes] = []
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 1
        assert self.request_raw(INIT)["result"]["serverInfo"]["name"] == "mlops-mcp"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self._queue.put(line)
        self._queue.put(b"")  # end of file

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def request_raw(self, message: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
        self.send(message)
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if not line:
                raise AssertionError(f"server closed stdout early; stderr: {self.stderr()[-3000:]}")
            self.lines.append(line)
            if line.strip():
                parsed = json.loads(line)  # any stray output fails here, with the line in the error
                if parsed.get("id") == message["id"]:
                    return parsed

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        answer = self.request_raw(
            {
                "jsonrpc": "2.0",
                "id": self._next_id,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        )
        result = answer["result"]
        assert not result.get("isError"), result
        return result["structuredContent"]

    def close(self) -> list[bytes]:
        """End the session as a host does (close stdin), wait for exit, return every stdout line."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(120)
        while (line := self._queue.get(timeout=30)) != b"":
            self.lines.append(line)
        return self.lines

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def assert_only_json_rpc(lines: list[bytes]) -> None:
    stray = []
    for line in lines:
        if not line.strip():
            continue
        try:
            ok = json.loads(line).get("jsonrpc") == "2.0"
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            stray.append(line)
    assert not stray, f"{len(stray)} non-JSON-RPC line(s) on the protocol stream, first: {stray[:3]}"


# -- a real MLflow tracking server on loopback ---------------------------------------------------
class MlflowServer:
    """`mlflow server` (installed with mlflow) on a free loopback port with a temporary store.
    It takes a while to start: tests start it, do their own set-up, then wait for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = (root / "server.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_"))}
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1],
             "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "artifacts")],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow server did not answer /health in {timeout} s")
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(20)
        self.log.close()


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    (tmp_path / "mlflow-server").mkdir()
    server = MlflowServer(tmp_path / "mlflow-server")
    try:
        yield server
    finally:
        server.stop()


def test_verbose_training_against_an_mlflow_server_keeps_stdout_pure(
    home: Path, tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    """Issue 11: MLflow prints "View run ... at:" with an HTTP tracking URI, scikit-learn prints its
    iteration table: all of it goes to stderr, none onto the protocol stream."""
    session = RawSession(host_env(home, MLOPS_TRACKING_URI=mlflow_server.url), tmp_path / "stderr.log")
    try:
        session.call(
            "generate_demo_data", {"seasons": 2, "games_per_season": 100, "rule_change_season": 2022}
        )
        mlflow_url = mlflow_server.wait_ready()
        common = {"dataset": "nba/train.parquet", "target": "home_win", "exclude": EXCLUDE}
        trained = session.call(
            "train_model",
            {
                "model": "loud-gb",
                "estimator": "gradient_boosting",
                "params": {"verbose": 1, "n_estimators": 20},
                **common,
            },
        )
        lines = session.close()
    finally:
        session.kill()
    assert trained["version"] == 1 and trained["estimator"] == "gradient_boosting"
    assert_only_json_rpc(lines)
    # The noise was really produced (so the test cannot pass by silence) and went to stderr.
    stderr = session.stderr()
    assert "View run" in stderr and mlflow_url in stderr
    assert "Train Loss" in stderr
    # The model is in the team server's registry, not in a local file store.
    with urllib.request.urlopen(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/get?name=loud-gb", timeout=10
    ) as r:
        assert json.load(r)["registered_model"]["name"] == "loud-gb"


SITECUSTOMIZE = '''
"""A noisy library, as some native extensions are: it writes straight to descriptor 1 (no Python
stdout involved) when scikit-learn is imported, from a thread, and again at interpreter exit."""
import atexit, os, sys, threading

_fired = []

def _noisy(event, args):
    if event == "import" and args and str(args[0]).startswith("sklearn") and not _fired:
        _fired.append(1)
        os.write(1, b"NATIVE-NOISE on import\\n")
        t = threading.Thread(target=os.write, args=(1, b"NATIVE-NOISE from a thread\\n"))
        t.start()
        t.join()
        atexit.register(os.write, 1, b"NATIVE-NOISE at exit\\n")

sys.addaudithook(_noisy)
'''


def test_native_writes_to_descriptor_1_never_reach_the_protocol(home: Path, tmp_path: Path) -> None:
    """A library loaded by the server (here through sitecustomize, so the server's code has no test
    hook) writes to fd 1 directly during a tool call, from a thread, and in an atexit handler; and a
    random forest prints from its worker threads (verbose=2)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    pythonpath = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    session = RawSession(host_env(home, PYTHONPATH=pythonpath), tmp_path / "stderr.log")
    try:
        session.call("generate_demo_data", {"seasons": 2, "games_per_season": 60, "rule_change_season": 2022})
        trained = session.call(
            "train_model",
            {
                "model": "threads",
                "dataset": "nba/train.parquet",
                "target": "home_win",
                "exclude": EXCLUDE,
                "estimator": "random_forest",
                "params": {"verbose": 2, "n_estimators": 6, "n_jobs": 2},
            },
        )
        lines = session.close()
    finally:
        session.kill()
    assert trained["version"] == 1
    assert_only_json_rpc(lines)
    stderr = session.stderr()
    for noise in ("on import", "from a thread", "at exit"):
        assert f"NATIVE-NOISE {noise}" in stderr
    assert "building tree 6 of 6" in stderr


GUARD_SCRIPT = r"""
import atexit, ctypes, ctypes.util, os, subprocess, sys, threading
from mlops_mcp.server.stdio import guard_stdio

print("PY-PRINT before the guard, still in the buffer", end="\n")  # block-buffered: not yet written
pipes = guard_stdio()
print("PY-PRINT after the guard")
sys.__stdout__.write("PY-DUNDER-STDOUT\n")
os.write(1, b"FD1-WRITE\n")
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.printf(b"LIBC-PRINTF unflushed\n")  # C stdio buffer, flushed by exit()
threading.Thread(target=os.write, args=(1, b"THREAD-WRITE\n")).start()
subprocess.run(["sh", "-c", "echo CHILD-ECHO; cat"], check=True)  # its stdin must be empty, not ours
subprocess.run([sys.executable, "-c", "print('CHILD-PYTHON')"], check=True)
from joblib import Parallel, delayed  # loky worker processes, as scikit-learn's n_jobs uses them
Parallel(n_jobs=2, backend="loky")(delayed(os.write)(1, b"LOKY-WORKER\n") for _ in range(2))
atexit.register(os.write, 1, b"ATEXIT-WRITE\n")
atexit.register(print, "ATEXIT-PRINT")
assert sys.stdin.read() == ""
pipes.writer.write(b'{"jsonrpc":"2.0","method":"protocol"}\n')
pipes.writer.flush()
received = pipes.reader.readline()
pipes.writer.write(b'{"jsonrpc":"2.0","method":"echo","params":' + received.strip() + b'}\n')
pipes.writer.flush()
"""


def test_guard_function_routes_every_writer_to_stderr(tmp_path: Path) -> None:
    """The guard alone, in a fresh process: Python prints (buffered before and after), writes to
    fd 1, C stdio, threads, child processes (shell, Python, loky workers), atexit handlers."""
    if shutil.which("sh") is None:
        pytest.skip("needs a POSIX shell")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(
            [sys.executable, "-c", GUARD_SCRIPT],
            input=b'{"seen":1}\n',
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            timeout=60,
        )
        err.seek(0)
        stderr = err.read().decode()
    assert proc.returncode == 0, stderr
    assert proc.stdout.decode().splitlines() == [
        '{"jsonrpc":"2.0","method":"protocol"}',
        '{"jsonrpc":"2.0","method":"echo","params":{"seen":1}}',
    ]
    for noise in (
        "PY-PRINT before",
        "PY-PRINT after",
        "PY-DUNDER-STDOUT",
        "FD1-WRITE",
        "LIBC-PRINTF",
        "THREAD-WRITE",
        "CHILD-ECHO",
        "CHILD-PYTHON",
        "LOKY-WORKER",
        "ATEXIT-WRITE",
        "ATEXIT-PRINT",
    ):
        assert noise in stderr, f"{noise} lost (should be on stderr): {stderr!r}"


def test_guard_keeps_protocol_pipes_out_of_child_processes(tmp_path: Path) -> None:
    """The protocol duplicates are close-on-exec: a lingering child (e.g. a loky worker) must not
    hold the client's pipe open, or the client never sees end-of-file when the server exits."""
    script = (
        "import subprocess, sys\n"
        "from mlops_mcp.server.stdio import guard_stdio\n"
        "pipes = guard_stdio()\n"
        "child = subprocess.Popen(['sleep', '30'])\n"
        "pipes.writer.write(b'%d\\n' % child.pid); pipes.writer.flush()\n"
    )
    if shutil.which("sleep") is None:
        pytest.skip("needs sleep(1)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # run() returns at end-of-file on stdout: with the pipe inherited by the child, only after 30 s.
    proc = subprocess.run(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=20,
    )
    child = int(proc.stdout)
    os.kill(child, signal.SIGTERM)
