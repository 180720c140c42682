"""Startup: spawn ``mlops-mcp serve`` (stdio) until ``tools/list`` has answered, several times.

Budget: 0.8 s median on a 2-core machine. Compared with a bare MCPServer with one tool (the floor
the SDK sets) and, when installed, MLflow's own ``mlflow mcp run``.
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


def main() -> None:
    home = tempfile.mkdtemp(prefix="mlops-bench-")
    env = {**os.environ, "MLOPS_HOME": home, "MLFLOW_DISABLE_TELEMETRY": "true"}
    rows = []
    ours = _series(sys.executable, ["-m", "mlops_mcp", "serve"], env)
    rows.append(["mlops-mcp serve", *_fmt(ours)])
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(BARE)
    rows.append(["bare MCPServer, 1 tool", *_fmt(_series(sys.executable, [f.name], env))])
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable))
    if mlflow and os.environ.get("BENCH_MLFLOW_MCP", "1") == "1":
        try:
            rows.append(["mlflow mcp run", *_fmt(_series(mlflow, ["mcp", "run"], env, runs=3))])
        except Exception as exc:  # its MCP extra may not be installed
            rows.append([f"mlflow mcp run (failed: {type(exc).__name__})", "-", "-", "-", "-"])
    print(table("startup: spawn to tools/list over stdio (ms)", ["server", "median", "min", "max", "sd"], rows))
    verdict = "meets" if statistics.median(ours) <= 0.8 else "MISSES"
    print(f"budget 800 ms median: {verdict} ({statistics.median(ours) * 1000:.0f} ms)")
    shutil.rmtree(home, ignore_errors=True)
