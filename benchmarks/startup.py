"""Startup: spawn ``mlops-mcp serve`` (stdio) until ``tools/list`` has answered, several times;
and the size of ``tools/list`` per toolset (what a host puts in front of the model).

Budget: at most 100 ms over a bare MCPServer with one tool (the floor the SDK sets: importing
``mcp`` alone is 0.5-0.8 s here). Compared with that floor and, when installed, MLflow's own
``mlflow mcp run``. "first start" is a home whose tool-schema cache does not exist yet (it is
built and written then: once per install or upgrade).
"""

import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time

import anyio
from mcp import Client, StdioServerParameters

from benchmarks.common import table

RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "9"))
BARE = textwrap.dedent(
    """
    from mcp.server.mcpserver import MCPServer
    mcp = MCPServer("bare")
    @mcp.tool()
    def ping(x: int) -> int:
        return x
    mcp.run()
    """
)


async def _once(command: str, args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    async with Client(StdioServerParameters(command=command, args=args, env=env)) as client:
        await client.list_tools()
    return time.perf_counter() - started


def _series(command: str, args: list[str], env: dict[str, str], runs: int = RUNS) -> list[float]:
    async def go() -> list[float]:
        await _once(command, args, env)  # warm the OS file cache and .pyc files
        return [await _once(command, args, env) for _ in range(runs)]

    return anyio.run(go)


def _fmt(times: list[float]) -> list[str]:
    return [
        f"{statistics.median(times) * 1000:.0f}",
        f"{min(times) * 1000:.0f}",
        f"{max(times) * 1000:.0f}",
        f"{statistics.pstdev(times) * 1000:.0f}",
    ]


def _first_starts(runs: int) -> list[float]:
    """Each start on a new home: no schema cache yet."""

    async def go() -> list[float]:
        times = []
        for _ in range(runs):
            home = tempfile.mkdtemp(prefix="mlops-bench-cold-")
            env = {**os.environ, "MLOPS_HOME": home, "MLFLOW_DISABLE_TELEMETRY": "true"}
            times.append(await _once(sys.executable, ["-m", "mlops_mcp", "serve"], env))
            shutil.rmtree(home, ignore_errors=True)
        return times

    return anyio.run(go)


def tool_list_sizes() -> list[list[str]]:
    """Characters of the tools/list JSON per toolset (descriptions, input and output schemas)."""
    import json

    from mcp import Client as InMemory

    from mlops_mcp.core.config import Settings
    from mlops_mcp.server.app import build_server
    from mlops_mcp.tools import TOOLSETS

    rows = []
    home = tempfile.mkdtemp(prefix="mlops-bench-size-")

    async def size(toolsets: list[str] | None) -> list[str]:
        server = build_server(Settings(home=home, _env_file=None), toolsets=toolsets)  # type: ignore[call-arg]
        async with InMemory(server) as c:
            tools = (await c.list_tools()).tools
        dumped = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
        desc = sum(len(t.get("description", "")) for t in dumped)
        inp = sum(len(json.dumps(t.get("inputSchema", {}))) for t in dumped)
        out = sum(len(json.dumps(t.get("outputSchema", {}))) for t in dumped)
        return [",".join(toolsets or ["all"]), str(len(tools)), f"{len(json.dumps(dumped)):,}", f"{desc:,}", f"{inp:,}", f"{out:,}"]

    for sets in [None, *[[t] for t in TOOLSETS if t != "server"]]:
        rows.append(anyio.run(size, sets))
    shutil.rmtree(home, ignore_errors=True)
    return rows


def main() -> None:
    home = tempfile.mkdtemp(prefix="mlops-bench-")
    env = {**os.environ, "MLOPS_HOME": home, "MLFLOW_DISABLE_TELEMETRY": "true"}
    rows = []
    ours = _series(sys.executable, ["-m", "mlops_mcp", "serve"], env)
    rows.append(["mlops-mcp serve", *_fmt(ours)])
    rows.append(["mlops-mcp serve, first start (builds the schema cache)", *_fmt(_first_starts(max(3, RUNS // 3)))])
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(BARE)
    bare = _series(sys.executable, [f.name], env)
    rows.append(["bare MCPServer, 1 tool", *_fmt(bare)])
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable))
    if mlflow and os.environ.get("BENCH_MLFLOW_MCP", "1") == "1":
        try:
            rows.append(["mlflow mcp run", *_fmt(_series(mlflow, ["mcp", "run"], env, runs=3))])
        except Exception as exc:  # its MCP extra may not be installed
            rows.append([f"mlflow mcp run (failed: {type(exc).__name__})", "-", "-", "-", "-"])
    print(table("startup: spawn to tools/list over stdio (ms)", ["server", "median", "min", "max", "sd"], rows))
    over = (statistics.median(ours) - statistics.median(bare)) * 1000
    print(f"budget: at most 100 ms over the bare server: {'meets' if over <= 100 else 'MISSES'} ({over:+.0f} ms)")
    print(table(
        "tools/list size per toolset (characters of JSON; the 'server' toolset is always included)",
        ["toolsets", "tools", "total", "descriptions", "input schemas", "output schemas"], tool_list_sizes(),
    ))
    shutil.rmtree(home, ignore_errors=True)
