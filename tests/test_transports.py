"""The real transports: stdio in both protocol eras, stdout purity, streamable HTTP with its guards."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.helpers import HttpServer, free_port, server_env

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_both_protocol_eras(home: Path, mode: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "mlops_mcp", "serve"], env=server_env(home))
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"get_server_info", "generate_demo_data"} <= names
        result = await client.call_tool("get_server_info", {})
        assert not result.is_error and result.structured_content["home"] == str(home.resolve())
        bad = await client.call_tool("generate_demo_data", {"seasons": 3, "rule_change_season": 1990})
        assert bad.is_error


def test_stdout_carries_only_json_rpc(home: Path) -> None:
    """Everything on stdout must be a JSON-RPC message, even while tools import the ML stack."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_server_info", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "generate_demo_data", "arguments": {"seasons": 2, "games_per_season": 60, "rule_change_season": 2022}}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}},
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_mcp", "serve"],
        env=server_env(home, MLOPS_LOG_LEVEL="DEBUG"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout
    for m in messages:
        proc.stdin.write((json.dumps(m) + "\n").encode())
    proc.stdin.flush()
    parsed = []
    while {1, 2, 3, 4, 5} - {p.get("id") for p in parsed}:
        line = proc.stdout.readline()
        assert line, f"server closed stdout early: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        if line.strip():
            parsed.append(json.loads(line))  # raises on any stray output
    proc.stdin.close()
    rest = proc.stdout.read().decode()
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    proc.wait(30)
    parsed += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert all(p.get("jsonrpc") == "2.0" for p in parsed)
    by_id = {p.get("id"): p for p in parsed}
    assert by_id[4]["result"]["structuredContent"]["rows"] == 120
    assert stderr, "logs go to stderr"


async def test_http_token_host_and_health(home: Path) -> None:
    server = HttpServer(home, MLOPS_AUTH_TOKEN="s3cret-token")
    try:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/health")).status_code == 401
            wrong = await http.get("/health", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and "bearer" in wrong.headers["www-authenticate"].lower()
            assert (await http.post("/mcp", json={})).status_code == 401
            rebind = await http.get("/health", headers={"Host": "evil.example:80", "Authorization": "Bearer s3cret-token"})
            assert rebind.status_code == 421
            origin = await http.get(
                "/health", headers={"Origin": "http://evil.example", "Authorization": "Bearer s3cret-token"}
            )
            assert origin.status_code == 403
            ok = await http.get("/health", headers={"Authorization": "Bearer s3cret-token"})
            assert ok.status_code == 200 and ok.json()["store_reachable"] is True
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        for mode in ("auto", "legacy"):
            authed = httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-token"}, timeout=60)
            async with Client(streamable_http_client(f"{server.url}/mcp", http_client=authed), mode=mode) as c:  # type: ignore[arg-type]
                info = await c.call_tool("get_server_info", {})
                assert not info.is_error and info.structured_content["auth_required"] is True
            await authed.aclose()
    finally:
        server.stop()


def test_http_refuses_public_bind_without_token(home: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_mcp", "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port())],
        env=server_env(home),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert b"MLOPS_AUTH_TOKEN" in proc.stderr


def test_cli_version_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "mlops_mcp", "--version"], capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout.decode().startswith("mlops-mcp ")
    for cmd in (["--help"], ["serve", "--help"], ["demo", "--help"], ["db", "--help"]):
        res = subprocess.run([sys.executable, "-m", "mlops_mcp", *cmd], capture_output=True, timeout=30)
        assert res.returncode == 0 and b"usage" in res.stdout.lower()


def test_db_upgrade_command(home: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mlops_mcp", "db", "upgrade"], env=server_env(home), capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert b"revision" in out.stdout and (home / "mlops.db").exists()


async def test_rest_predict_route_with_auth_and_errors(home: Path) -> None:
    """Applications: POST /v1/models/{name}/predict behind the same token, logged like the tool."""
    from mlops_mcp.core import MLOps, Settings

    ops = MLOps(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops.generate_demo_data(seasons=2, games_per_season=150, rule_change_season=2022)
    exclude = ["game_id", "season", "game_date", "point_margin"]
    ops.train(model="rest", dataset="nba/train.parquet", target="home_win", exclude=exclude, estimator="logistic_regression", alias="champion")
    import pandas as pd

    rows = json.loads(pd.read_parquet(home / "data" / "nba" / "recent.parquet").drop(columns=exclude + ["home_win"]).head(5).to_json(orient="records"))
    ops.close()
    server = HttpServer(home, MLOPS_AUTH_TOKEN="app-token")
    auth = {"Authorization": "Bearer app-token"}
    try:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            assert (await http.post("/v1/models/rest/predict", json={"rows": rows})).status_code == 401
            ok = await http.post("/v1/models/rest/predict", json={"rows": rows, "request_keys": list("abcde")}, headers=auth)
            assert ok.status_code == 200, ok.text
            body = ok.json()
            assert body["model"] == "rest" and len(body["predictions"]) == 5
            assert {p["version"] for p in body["predictions"]} == {1} and all(len(p["prediction_id"]) == 32 for p in body["predictions"])
            pinned = await http.post("/v1/models/rest/predict", json={"rows": rows[:1], "version": 1}, headers=auth)
            assert pinned.status_code == 200 and pinned.json()["model"] == "rest/1"
            missing = await http.post("/v1/models/nope/predict", json={"rows": rows}, headers=auth)
            assert missing.status_code == 404 and "rest" in missing.json()["error"]
            bad = await http.post("/v1/models/rest/predict", json={"rows": [{"pace": 1}]}, headers=auth)
            assert bad.status_code == 422 and "rows" in bad.json()["error"]
            not_json = await http.post("/v1/models/rest/predict", content=b"{", headers=auth)
            assert not_json.status_code == 400
            huge = await http.post("/v1/models/rest/predict", json={"rows": rows[:1], "version": 2**63}, headers=auth)
            assert huge.status_code == 422 and "2147483647" in huge.json()["error"]
    finally:
        server.stop()
    ops = MLOps(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    from sqlalchemy import func, select

    from mlops_mcp.core.store.tables import Prediction

    with ops.store.read() as session:
        assert session.scalar(select(func.count()).select_from(Prediction).where(Prediction.model == "rest")) == 6
    ops.close()
