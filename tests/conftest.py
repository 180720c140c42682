"""Shared fixtures: a fresh home per test, the server built on it, an in-memory MCP client, and a
real PostgreSQL database when MLOPS_TEST_DATABASE_URL points at a reachable server."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Tests must not pick up a developer's .env or server configuration.
for _var in [v for v in os.environ if v.startswith("MLOPS_") and v not in ("MLOPS_TEST_DATABASE_URL", "MLOPS_UPDATE_SNAPSHOT")]:
    del os.environ[_var]
os.environ.pop("MLFLOW_TRACKING_URI", None)

from mcp import Client  # noqa: E402

from mlops_mcp.core.config import Settings  # noqa: E402
from mlops_mcp.server.app import build_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def server(settings: Settings) -> Any:
    mcp = build_server(settings)
    yield mcp
    mcp.ops.close()


@pytest.fixture
async def client(server: Any) -> AsyncIterator[Client]:
    async with Client(server) as c:
        yield c


def tool_error_text(result: Any) -> str:
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return " ".join(getattr(c, "text", "") for c in result.content)


# -- a shared trained model, per test module -----------------------------------------------------
EXCLUDE = ["game_id", "season", "game_date", "point_margin"]


def trained_server(
    tmp_path_factory: pytest.TempPathFactory, models: tuple[str, ...] = ("nba-win",), challenger_alias: str | None = None,
    seasons: int = 3, games_per_season: int = 300, rule_change_season: int = 2023,
) -> Any:
    """A server on a fresh home with the synthetic NBA data and, per model, version 1 (gradient
    boosting, champion) and version 2 (logistic regression; `challenger_alias` if given).
    MLflow's first use is slow, so test modules share one through a module-scoped fixture."""
    home = tmp_path_factory.mktemp("shared") / "home"
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops = server.ops
    ops.generate_demo_data(seasons=seasons, games_per_season=games_per_season, rule_change_season=rule_change_season)
    for name in models:
        ops.train(model=name, dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, alias="champion")
        ops.train(model=name, dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE,
                  estimator="logistic_regression", alias=challenger_alias)
    return server


# -- PostgreSQL ---------------------------------------------------------------------------------
def _pg_admin_url() -> str | None:
    return os.environ.get("MLOPS_TEST_DATABASE_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    admin = _pg_admin_url()
    if not admin:
        pytest.skip("MLOPS_TEST_DATABASE_URL not set (no PostgreSQL to test against)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from mlops_mcp.core.store import normalize_url

    admin_url = make_url(normalize_url(admin))
    name = f"mlops_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


# -- subprocess servers -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update({"MLOPS_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", **extra})
    return env


class HttpServer:
    def __init__(self, home: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_mcp", "serve", "--http", "--port", str(self.port), *args],
            env=server_env(home, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError("HTTP server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
