"""HTTP hardening (issues 11 and 12): open probes without data, tokens that cannot fail open, bad
bind values refused at start-up, one body limit for /mcp and REST, read-only mode on REST."""

import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import EXCLUDE, HttpServer, free_port, server_env

pytestmark = pytest.mark.anyio

TOKEN = "probe-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start(home: Path, *args: str, **env: str) -> HttpServer:
    server = HttpServer(home, *args, **env)
    try:
        server.wait_ready(60)
    except BaseException:
        server.stop()
        raise
    return server


def serve(home: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[bytes]:
    """Run `serve` expecting it to refuse to start (a timeout means it started: the bug)."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_mcp", "serve", *args],
        env=server_env(home, **env),
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# -- B: probes ----------------------------------------------------------------------------------
async def test_probes_are_open_and_bare_while_details_need_the_token(home: Path) -> None:
    server = start(home, "--host", "0.0.0.0", MLOPS_AUTH_TOKEN=TOKEN)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            # A kubelet probes the pod IP: the Host header is not an allowed name, and there is no token.
            for headers in ({}, {"Host": "10.12.0.7:8765"}):
                for path in ("/health/live", "/health/ready"):
                    answer = await http.get(path, headers=headers)
                    assert answer.status_code == 200 and answer.json() == {"status": "ok"}, (
                        path,
                        answer.text,
                    )
                assert (await http.head("/health/live", headers=headers)).status_code == 200
            # The detailed answer stays behind the token (and the Host check).
            assert (await http.get("/health")).status_code == 401
            assert (await http.get("/health", headers={**AUTH, "Host": "10.12.0.7:8765"})).status_code == 421
            detail = await http.get("/health", headers=AUTH)
            assert detail.status_code == 200 and detail.json()["store_reachable"] is True
            assert "version" in detail.json()
            # The probes open nothing else: a probe path with another method, or a neighbour, is guarded.
            assert (await http.post("/health/live")).status_code == 401
            assert (await http.get("/health/live/../../mcp")).status_code in (401, 404)
            assert (await http.get("/health/liveness")).status_code == 401
    finally:
        server.stop()


async def test_readiness_reports_an_unreachable_store_without_details(home: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nobody listens there
    server = start(home, MLOPS_DATABASE_URL=dead, MLOPS_AUTH_TOKEN=TOKEN)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            assert (await http.get("/health/live")).json() == {"status": "ok"}
            ready = await http.get("/health/ready")
            assert ready.status_code == 503 and ready.json() == {"status": "unavailable"}
            detail = await http.get("/health", headers=AUTH)
            assert detail.status_code == 503 and detail.json()["store_reachable"] is False
    finally:
        server.stop()


# -- D2: empty tokens ---------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
def test_empty_or_blank_token_stops_every_command(home: Path, token: str) -> None:
    """Issue 12.2: an empty token must not mean 'no authentication' on any path that reads it."""
    port = str(free_port())
    for args in (
        ["serve", "--http", "--host", "0.0.0.0", "--port", port],
        ["serve", "--http", "--port", port],
        ["serve"],
        ["db", "current"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "mlops_mcp", *args],
            env=server_env(home, MLOPS_AUTH_TOKEN=token),
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        err = out.stderr.decode()
        assert out.returncode == 2, (args, err[-1500:])
        assert "MLOPS_AUTH_TOKEN" in err and "empty" in err and "Traceback" not in err, err
        assert out.stdout == b""


def test_empty_token_in_a_dotenv_file_stops_start_up(home: Path, tmp_path: Path) -> None:
    """The .env file is read by the same settings validation as the environment."""
    (tmp_path / ".env").write_text("MLOPS_AUTH_TOKEN=\n")
    out = subprocess.run(
        [sys.executable, "-m", "mlops_mcp", "serve", "--http", "--port", str(free_port())],
        env=server_env(home), cwd=tmp_path, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 2 and b"MLOPS_AUTH_TOKEN" in out.stderr, out.stderr[-1500:]


def test_token_validation_in_settings() -> None:
    from pydantic import ValidationError

    from mlops_mcp.core.config import Settings

    for bad in ("", " ", "\n", "caf\u00e9", "tab\tinside"):
        with pytest.raises(ValidationError, match="auth_token"):
            Settings(auth_token=bad, _env_file=None)  # type: ignore[call-arg]
    token = Settings(auth_token=" from-a-secret-file\n", _env_file=None).auth_token  # type: ignore[call-arg]
    assert token is not None and token.get_secret_value() == "from-a-secret-file"


async def test_token_read_from_a_secret_file_with_a_newline_works(home: Path) -> None:
    server = start(home, MLOPS_AUTH_TOKEN=f"{TOKEN}\n")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.get("/health", headers=AUTH)).status_code == 200
            assert (await http.get("/health")).status_code == 401
    finally:
        server.stop()


# -- D: bind values -----------------------------------------------------------------------------
@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_bad_bind_values_are_startup_errors(home: Path, busy_port: int) -> None:
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["--port", "70000"], {}, "--port"),
        (["--port", "0"], {}, "--port"),
        (["--port", "http"], {}, "--port"),
        ([], {"MLOPS_HTTP_PORT": "0"}, "MLOPS_HTTP_PORT"),
        ([], {"MLOPS_HTTP_PORT": "99999"}, "MLOPS_HTTP_PORT"),
        (["--host", "127.0.0.1:9000"], {}, "MLOPS_HTTP_HOST"),
        (["--host", "http://127.0.0.1"], {}, "MLOPS_HTTP_HOST"),
        (["--host", ""], {}, "MLOPS_HTTP_HOST"),
        (["--host", "no-such-host.invalid"], {"MLOPS_AUTH_TOKEN": TOKEN}, "cannot resolve"),
        (["--host", "203.0.113.5"], {"MLOPS_AUTH_TOKEN": TOKEN}, "not an address of this machine"),
        (["--port", str(busy_port)], {}, "in use"),
        ([], {"MLOPS_ALLOWED_HOSTS": "*"}, "MLOPS_AUTH_TOKEN"),
    ]
    for args, env, expected in cases:
        out = serve(home, "--http", *args, **env)
        err = out.stderr.decode()
        assert out.returncode == 2, (args, env, err[-1500:])
        assert expected in err and "Traceback" not in err, (args, env, err[-1500:])
    assert not (home / "mlops.db").exists(), "a refused start must not create the store"


def test_loopback_names_need_no_token(home: Path) -> None:
    """The loopback test resolves the address: 127.0.0.2 and 'localhost' are loopback, so no token is
    needed; '0.0.0.0' and a LAN name are not (checked above through the refusal message)."""
    from mlops_mcp.core.config import Settings
    from mlops_mcp.server.http import check_bind

    for host in ("127.0.0.1", "localhost", "127.0.0.2"):
        check_bind(Settings(home=home, http_host=host, http_port=free_port(), _env_file=None))  # type: ignore[call-arg]
    from mlops_mcp.core.errors import Forbidden

    with pytest.raises(Forbidden, match="MLOPS_AUTH_TOKEN"):
        check_bind(Settings(home=home, http_host="0.0.0.0", http_port=free_port(), _env_file=None))  # type: ignore[call-arg]


async def test_websocket_requests_are_guarded_too(home: Path) -> None:
    """The guard covered only 'http' scopes; a websocket handshake passed through untouched."""
    from mlops_mcp.core.config import Settings
    from mlops_mcp.server.app import build_server
    from mlops_mcp.server.http import build_http_app

    settings = Settings(home=home, auth_token=TOKEN, _env_file=None)  # type: ignore[call-arg]
    mcp = build_server(settings)
    try:
        app = build_http_app(mcp, settings)
        sent: list[dict[str, Any]] = []
        scope = {
            "type": "websocket",
            "path": "/mcp",
            "raw_path": b"/mcp",
            "query_string": b"",
            "scheme": "ws",
            "headers": [(b"host", b"127.0.0.1:8765")],
            "server": ("127.0.0.1", 8765),
            "client": ("127.0.0.1", 1),
            "subprotocols": [],
            "asgi": {"version": "3.0"},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent and sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008
    finally:
        mcp.ops.close()


# -- D5: body limit -----------------------------------------------------------------------------
LIMIT = 64 * 1024


@pytest.fixture
async def limited(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    server = start(home, MLOPS_AUTH_TOKEN=TOKEN, MLOPS_MAX_REQUEST_BYTES=str(LIMIT))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=AUTH) as http:
            yield http
    finally:
        server.stop()


async def test_rest_body_limit_answers_413_before_parsing(limited: httpx.AsyncClient) -> None:
    """Issue 12.5: the same limit and the same 413 as /mcp, whether the size is declared or streamed."""
    big = b"{" + b" " * (LIMIT + 10)  # not even JSON: a 413 proves the limit comes before parsing
    declared = await limited.post(
        "/v1/models/any/predict", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413, declared.text
    assert "MLOPS_MAX_REQUEST_BYTES" in declared.json()["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for _ in range(LIMIT // 4096 + 4):
            yield b" " * 4096

    streamed = await limited.post("/v1/models/any/predict", content=chunks())
    assert streamed.status_code == 413, streamed.text
    mcp = await limited.post(
        "/mcp",
        content=big,
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    assert mcp.status_code == 413
    # Just under the limit is read and parsed: an unknown model, not a size error.
    rows = [{"x": 1}] * ((LIMIT - 100) // 10)
    body = json.dumps({"rows": rows}).encode()
    assert len(body) < LIMIT
    under = await limited.post(
        "/v1/models/nope/predict", content=body, headers={"Content-Type": "application/json"}
    )
    assert under.status_code == 404, under.text


async def test_unauthenticated_bodies_are_never_read(home: Path) -> None:
    server = start(home, MLOPS_AUTH_TOKEN=TOKEN, MLOPS_MAX_REQUEST_BYTES=str(LIMIT))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            answer = await http.post("/v1/models/any/predict", content=b" " * (LIMIT * 4))
            assert answer.status_code == 401
    finally:
        server.stop()


def test_max_request_bytes_is_bounded() -> None:
    from pydantic import ValidationError

    from mlops_mcp.core.config import Settings

    for bad in (0, 100, 2 * 1024**3):
        with pytest.raises(ValidationError, match="max_request_bytes"):
            Settings(max_request_bytes=bad, _env_file=None)  # type: ignore[call-arg]
    assert Settings(_env_file=None).max_request_bytes == 4 * 1024 * 1024  # type: ignore[call-arg]


# -- D8: read-only mode on REST -----------------------------------------------------------------
def _count_predictions(home: Path, model: str) -> int:
    from sqlalchemy import func, select

    from mlops_mcp.core import MLOps, Settings
    from mlops_mcp.core.store.tables import Prediction

    ops = MLOps(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    try:
        with ops.store.read() as session:
            return int(
                session.scalar(select(func.count()).select_from(Prediction).where(Prediction.model == model))
                or 0
            )
    finally:
        ops.close()


async def test_read_only_mode_refuses_rest_predict_unless_allowed(home: Path) -> None:
    """Issue 12.8: read-only mode refuses REST predictions (they write the prediction log) unless the
    operator sets MLOPS_READ_ONLY_PREDICT=true."""
    from mlops_mcp.core import MLOps, Settings

    ops = MLOps(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops.generate_demo_data(seasons=2, games_per_season=80, rule_change_season=2022)
    ops.train(
        model="ro",
        dataset="nba/train.parquet",
        target="home_win",
        exclude=EXCLUDE,
        estimator="logistic_regression",
        alias="champion",
    )
    import pandas as pd

    frame = (
        pd.read_parquet(home / "data" / "nba" / "recent.parquet").drop(columns=[*EXCLUDE, "home_win"]).head(3)
    )
    rows = json.loads(frame.to_json(orient="records"))
    ops.close()
    refusing = HttpServer(home, "--read-only", MLOPS_AUTH_TOKEN=TOKEN)
    serving = HttpServer(home, "--read-only", MLOPS_AUTH_TOKEN=TOKEN, MLOPS_READ_ONLY_PREDICT="true")
    try:
        refusing.wait_ready(60)
        serving.wait_ready(60)
        async with httpx.AsyncClient(timeout=60, headers=AUTH) as http:
            refused = await http.post(f"{refusing.url}/v1/models/ro/predict", json={"rows": rows})
            assert refused.status_code == 403, refused.text
            assert (
                refused.json()["kind"] == "forbidden" and "MLOPS_READ_ONLY_PREDICT" in refused.json()["error"]
            )
            assert _count_predictions(home, "ro") == 0
            served = await http.post(f"{serving.url}/v1/models/ro/predict", json={"rows": rows})
            assert served.status_code == 200, served.text
            assert len(served.json()["predictions"]) == 3
            assert _count_predictions(home, "ro") == 3
            health = await http.get(f"{serving.url}/health")
            assert health.json()["read_only"] is True and health.json()["read_only_predict"] is True
    finally:
        refusing.stop()
        serving.stop()
