"""The server through an in-memory MCP client: tools, annotations, structured results, errors,
audit, read-only mode, and the checked-in snapshot of every tool's schema."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mlops_mcp.core.config import Settings
from mlops_mcp.server.app import build_server
from tests.conftest import tool_error_text

pytestmark = pytest.mark.anyio
SNAPSHOT = Path(__file__).parent / "snapshots" / "tools.json"


async def test_lists_tools_with_annotations_and_output_schema(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    info = tools["get_server_info"]
    assert info.annotations is not None and info.annotations.read_only_hint is True
    assert info.output_schema is not None and "store_reachable" in info.output_schema["properties"]
    gen = tools["generate_demo_data"]
    assert gen.annotations.read_only_hint is False and gen.annotations.idempotent_hint is True
    for tool in tools.values():
        assert tool.description and len(tool.description) > 60, f"{tool.name} needs a real description"
        assert tool.output_schema is not None, f"{tool.name} has no structured output"


async def test_server_info_reports_store_and_roots(client: Client, settings: Settings) -> None:
    result = await client.call_tool("get_server_info", {})
    assert not result.is_error
    info = result.structured_content
    assert info["store_backend"] == "sqlite" and info["store_reachable"] is True
    assert info["schema_revision"] is not None
    assert info["home"] == str(settings.home)
    assert info["data_roots"][0] == str(settings.home / "data")
    assert "get_server_info" in info["tools"]


async def test_generate_demo_data_writes_known_files(client: Client, settings: Settings) -> None:
    result = await client.call_tool("generate_demo_data", {"seasons": 3, "games_per_season": 100, "rule_change_season": 2023})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["rows"] == 300 and data["seasons"] == [2021, 2022, 2023]
    import pandas as pd

    train = pd.read_parquet(settings.home / "data" / data["files"]["train"])
    recent = pd.read_parquet(settings.home / "data" / data["files"]["recent"])
    assert set(train["season"]) == {2021, 2022} and set(recent["season"]) == {2023}
    assert len(train) == 200 and len(recent) == 100


async def test_bad_arguments_name_the_argument_and_server_survives(client: Client) -> None:
    bad_range = await client.call_tool("generate_demo_data", {"seasons": 1})
    assert "seasons" in tool_error_text(bad_range)
    bad_logic = await client.call_tool("generate_demo_data", {"seasons": 3, "rule_change_season": 2040})
    text = tool_error_text(bad_logic)
    assert "rule_change_season" in text and "2021..2023" in text
    bad_folder = await client.call_tool("generate_demo_data", {"folder": "../escape"})
    assert "folder" in tool_error_text(bad_folder)
    assert not (await client.call_tool("get_server_info", {})).is_error


async def test_unexpected_exception_gives_error_id_and_server_keeps_running(
    client: Client, server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> dict[str, Any]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(server.ops, "server_info", boom)
    result = await client.call_tool("get_server_info", {})
    text = tool_error_text(result)
    assert "error id" in text and "secret internal detail" not in text
    error_id = text.split("error id ")[1].split(")")[0]
    assert any(error_id in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert not (await client.call_tool("get_server_info", {})).is_error


async def test_mutating_calls_are_audited_with_outcome(client: Client) -> None:
    await client.call_tool("generate_demo_data", {"seasons": 2, "games_per_season": 60, "rule_change_season": 2022})
    await client.call_tool("generate_demo_data", {"seasons": 2, "rule_change_season": 2099})
    await client.call_tool("get_server_info", {})  # read-only: not audited
    audit = await client.read_resource("mlops://audit")
    entries = json.loads(audit.contents[0].text)["entries"]
    assert [e["tool"] for e in entries] == ["generate_demo_data", "generate_demo_data"]
    assert [e["outcome"] for e in entries] == ["error", "ok"]
    assert entries[0]["arguments"]["rule_change_season"] == 2099
    assert "2099" in entries[0]["error"] and entries[1]["error"] is None
    assert entries[1]["actor"] and entries[1]["duration_ms"] >= 0


async def test_read_only_mode_registers_only_read_only_tools(home: Path) -> None:
    server = build_server(Settings(home=home, read_only=True, _env_file=None))  # type: ignore[call-arg]
    async with Client(server) as c:
        tools = (await c.list_tools()).tools
        assert tools and all(t.annotations.read_only_hint for t in tools)
        assert "generate_demo_data" not in {t.name for t in tools}
        info = (await c.call_tool("get_server_info", {})).structured_content
        assert info["read_only"] is True
        missing = await c.call_tool("generate_demo_data", {})
        assert missing.is_error


async def test_tool_schemas_match_snapshot(settings: Settings) -> None:
    """Names, arguments, annotations and output schemas are a public interface: a change must be a
    visible diff. Regenerate with MLOPS_UPDATE_SNAPSHOT=1 after an intended change (this also
    rewrites the start-up schema cache, mlops_mcp/tools/schemas.json)."""
    from mlops_mcp.tools import schema_cache

    eager = build_server(settings, eager_tools=True)
    if os.environ.get("MLOPS_UPDATE_SNAPSHOT") == "1":
        schema_cache.write(eager)
    async with Client(eager) as client:
        tools = sorted((await client.list_tools()).tools, key=lambda t: t.name)
    current = {
        t.name: {
            "title": t.title,
            "annotations": t.annotations.model_dump(exclude_none=True) if t.annotations else None,
            "input_schema": t.input_schema,
            "output_schema": t.output_schema,
        }
        for t in tools
    }
    if os.environ.get("MLOPS_UPDATE_SNAPSHOT") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert sorted(current) == sorted(expected), "tools added or removed: update the snapshot deliberately"
    for name in current:
        assert current[name] == expected[name], f"schema of {name} changed: update the snapshot deliberately"


async def test_startup_schema_cache_is_fresh_and_equals_the_code(client: Client, server: Any, settings: Settings) -> None:
    """tools/list is served from mlops_mcp/tools/schemas.json; it must equal what the code builds."""
    from mlops_mcp.tools import schema_cache
    from mlops_mcp.tools.schema_cache import LazyTool

    assert schema_cache.load() is not None, "stale: run python -m mlops_mcp.tools.schema_cache"
    assert all(isinstance(t, LazyTool) for t in server._tool_manager.list_tools())
    lazy = {t.name: (t.input_schema, t.output_schema, t.annotations) for t in (await client.list_tools()).tools}
    async with Client(build_server(settings, eager_tools=True)) as eager_client:
        eager = {t.name: (t.input_schema, t.output_schema, t.annotations) for t in (await eager_client.list_tools()).tools}
    assert lazy == eager
