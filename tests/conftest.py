"""Shared fixtures: a fresh home per test, the server built on it, an in-memory MCP client, and a
real PostgreSQL database when MLOPS_TEST_DATABASE_URL points at a reachable server."""

import os
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


# -- a trained home, shared ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the demo data and 'nba-win' v1 (champion, gradient boosting) and v2
    (challenger, logistic regression), trained once per session. Tests that change it work on a
    copy (``tests.helpers.copy_home``): MLflow's first use and two trainings cost seconds."""
    from tests.helpers import trained_server

    server = trained_server(tmp_path_factory, challenger_alias="challenger")
    server.ops.close()
    return server.ops.settings.home
