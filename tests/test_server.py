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
from tests.helpers import tool_error_text

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
    visible diff. A missing snapshot fails too (deleting it must not make the test pass); write
    it deliberately with MLOPS_UPDATE_SNAPSHOT=1 after an intended change."""
    eager = build_server(settings, eager_tools=True)
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
    if os.environ.get("MLOPS_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing: write it with MLOPS_UPDATE_SNAPSHOT=1 and review the diff"
    expected = json.loads(SNAPSHOT.read_text())
    assert sorted(current) == sorted(expected), "tools added or removed: update the snapshot deliberately"
    for name in current:
        assert current[name] == expected[name], f"schema of {name} changed: update the snapshot deliberately"


async def test_tool_list_is_served_from_a_cache_built_on_first_start(settings: Settings) -> None:
    """The first server on a home builds every schema and writes the cache; the next one lists from
    it without building any tool, and both listings equal what the code builds."""
    from mlops_mcp.tools.catalog import fingerprint

    cache = settings.home / "cache" / "tool-schemas" / f"{fingerprint()}.json"
    assert not cache.exists()
    async with Client(build_server(settings, eager_tools=True)) as c:
        eager = {t.name: t.model_dump() for t in (await c.list_tools()).tools}
    async with Client(build_server(settings)) as c:
        first = {t.name: t.model_dump() for t in (await c.list_tools()).tools}
    assert cache.exists() and first == eager
    cold = build_server(settings)
    async with Client(cold) as c:
        assert {t.name: t.model_dump() for t in (await c.list_tools()).tools} == eager
        assert cold.catalog.built == set(), "listing from the cache must not build tools"
        assert not (await c.call_tool("get_server_info", {})).is_error
        assert cold.catalog.built == {"get_server_info"}
    # a damaged cache (truncated, or valid JSON of another shape) is ignored and rewritten, never trusted
    for damaged in (
        '{"fingerprint": "%s", "tools": {"get_server_info": {"input_schema": 1}}' % fingerprint(),
        "[1, 2]",
        '"tools"',
        '{"fingerprint": "%s", "tools": ["get_server_info"]}' % fingerprint(),
        '{"fingerprint": "%s", "tools": {"get_server_info": 7}}' % fingerprint(),
    ):
        cache.write_text(damaged)
        async with Client(build_server(settings)) as c:
            assert {t.name: t.model_dump() for t in (await c.list_tools()).tools} == eager, damaged
        rewritten = json.loads(cache.read_text())["tools"]["get_server_info"]
        assert rewritten["input_schema"] == eager["get_server_info"]["input_schema"], damaged


def test_every_tool_is_declared_consistently() -> None:
    """One row per tool: its function takes ctx, destructive tools confirm, names are unique and
    verb_noun, every toolset is known and in lifecycle order."""
    from mlops_mcp.tools import TOOLS, TOOLSETS

    names = [s.name for s in TOOLS]
    assert len(names) == len(set(names))
    for spec in TOOLS:
        spec.check()
        assert spec.toolset in TOOLSETS and spec.name == spec.name.lower() and spec.name.isidentifier()
        assert not (spec.read_only and spec.destructive)
    order = [TOOLSETS.index(s.toolset) for s in TOOLS]
    assert order == sorted(order), "rows are grouped by toolset in lifecycle order"


async def test_toolsets_select_tools_and_combine_with_read_only(home: Path) -> None:
    server = build_server(Settings(home=home, toolsets="drift,explain", _env_file=None))  # type: ignore[call-arg]
    async with Client(server) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == {"get_server_info", "generate_demo_data", "check_drift", "get_drift_history",
                         "explain_prediction", "get_feature_importance"}
        info = (await c.call_tool("get_server_info", {})).structured_content
        assert info["toolsets"] == ["server", "drift", "explain"] and sorted(info["tools"]) == sorted(names)
        hidden = await c.call_tool("predict", {"model": "x", "rows": [{}]})
        assert hidden.is_error and "predict" in tool_error_text(hidden)
    read_only = build_server(Settings(home=home, toolsets="drift", read_only=True, _env_file=None))  # type: ignore[call-arg]
    async with Client(read_only) as c:
        assert {t.name for t in (await c.list_tools()).tools} == {"get_server_info", "get_drift_history"}
    with pytest.raises(ValueError, match="unknown toolset.*drfit.*accepted: server, registry"):
        build_server(Settings(home=home, toolsets="drfit", _env_file=None))  # type: ignore[call-arg]


async def test_argument_errors_read_alike(client: Client) -> None:
    """Argument, what was given, what is accepted: no raw pydantic text, no URL; unknown arguments refused."""
    cases = [
        ("generate_demo_data", {"seasons": "many"}, ["seasons: got 'many'; expected an integer"]),
        ("generate_demo_data", {"seasons": 99}, ["seasons: got 99; expected a number <= 20"]),
        ("predict", {"model": "m", "rows": {"pace": 1}}, ["rows: got an object with keys pace; expected a list"]),
        ("train_model", {"model": "m", "dataset": "d.csv", "target": "y", "estimator": "xgboost"},
         ["estimator: got 'xgboost'; expected one of 'logistic_regression'", "'hist_gradient_boosting'"]),
        ("train_model", {"model": "m", "dataset": "d.csv"}, ["target: missing; this argument is required"]),
        ("get_model", {"model": "m", "verbose": True}, ["verbose: not an argument of get_model; accepted: model"]),
        ("set_model_alias", {"model": "m", "alias": "a", "version": 2**63}, ["version: got 9223372036854775808; expected a number <= 2147483647"]),
    ]
    for tool, args, fragments in cases:
        text = tool_error_text(await client.call_tool(tool, args))
        assert "pydantic" not in text and "http" not in text, text
        for fragment in fragments:
            assert fragment in text, f"{fragment!r} not in {text!r}"


def test_core_imports_no_mcp() -> None:
    """core/ is a library: no module in it imports the MCP SDK (checked on the source, all of it)."""
    import ast

    core = Path(__file__).resolve().parent.parent / "mlops_mcp" / "core"
    offenders = []
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            if any(n == "mcp" or n.startswith("mcp.") for n in names):
                offenders.append(str(path.relative_to(core)))
    assert offenders == []


def test_domain_errors_are_builtin_errors_too() -> None:
    from mlops_mcp.core.errors import Conflict, Forbidden, InvalidInput, NotFound

    assert isinstance(InvalidInput("x"), ValueError) and isinstance(NotFound("x"), LookupError)
    assert isinstance(Forbidden("x"), PermissionError) and isinstance(Conflict("x"), RuntimeError)
    assert str(NotFound("no model 'm'", argument="model")) == "model: no model 'm'"


def test_one_metric_registry() -> None:
    """The live-test metric names a tool accepts are the registry's per-row metrics, and the names
    every part reports are the registry's."""
    from typing import get_args

    from mlops_mcp.core.experiments.readouts import LiveMetric
    from mlops_mcp.core.experiments.stats import METRICS as STATS_METRICS
    from mlops_mcp.core.metrics import METRICS, REPORTED

    assert set(get_args(LiveMetric)) == {m.name for m in METRICS.values() if m.per_row}
    assert set(STATS_METRICS) == set(METRICS)
    assert all(name in METRICS for names in REPORTED.values() for name in names)


async def test_served_output_schemas_accept_the_results(client: Client) -> None:
    """tools/list serves compacted schemas (no per-field titles, type lists); they must still be
    valid JSON Schema and accept what the tools return."""
    import jsonschema

    tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert '"title"' not in json.dumps(tool.output_schema).replace('"title": {', "")
    calls = [("get_server_info", {}), ("generate_demo_data", {"seasons": 2, "games_per_season": 60, "rule_change_season": 2022}),
             ("list_models", {})]
    for name, args in calls:
        result = await client.call_tool(name, args)
        assert not result.is_error, result.content
        jsonschema.validate(result.structured_content, tools[name].output_schema)


async def test_huge_numbers_and_missing_prompt_arguments_get_clear_errors(client: Client) -> None:
    """Ids and versions at or beyond 2**63 are refused by the schema (tools) or named (resources);
    a prompt asked for without its argument names the argument (the SDK said "Internal server error")."""
    from mcp.shared.exceptions import MCPError

    for tool, args in (("get_ab_test", {"experiment_id": 2**63}), ("compare_model_versions", {"model": "m", "version_a": 1, "version_b": 2**64})):
        text = tool_error_text(await client.call_tool(tool, args))
        assert "expected a number <= 2147483647" in text and "internal" not in text
    with pytest.raises(MCPError, match="version must be a number from 1 to 2147483647"):
        await client.read_resource("mlops://models/m/versions/9223372036854775808")
    with pytest.raises(MCPError, match="experiment id must be a number"):
        await client.read_resource("mlops://experiments/99999999999999999999")
    with pytest.raises(MCPError, match="needs the argument.*model"):
        await client.get_prompt("investigate_drift", {})
    prompt = await client.get_prompt("investigate_drift", {"model": "nba-win"})
    assert "check_drift(model='nba-win')" in prompt.messages[0].content.text


def test_cli_names_every_toolset() -> None:
    from mlops_mcp.server.cli import TOOLSET_NAMES
    from mlops_mcp.tools import TOOLSETS

    assert TOOLSET_NAMES == TOOLSETS
