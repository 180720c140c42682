"""``mlops-mcp demo``: a newcomer's first run. A fresh home, the server started as a subprocess
over stdio, and a real MCP client session driving it step by step, printing each call and a
readable summary of its result. It grows with every capability the server gains."""

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client, StdioServerParameters


@dataclass
class Step:
    title: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    expect_error: bool = False
    show: Callable[[dict[str, Any]], Any] | None = None  # what of the result to print


def _steps(quick: bool) -> list[Step]:
    games = 300 if quick else 1230
    return [
        Step("What is this server?", "get_server_info", show=lambda r: {k: r[k] for k in ("version", "store_backend", "tracking_uri", "data_roots", "tools")}),
        Step(
            "Make a season-by-season NBA dataset with a rule change in 2024",
            "generate_demo_data",
            {"seasons": 4, "games_per_season": games, "rule_change_season": 2024},
            show=lambda r: {k: r[k] for k in ("files", "rows", "seasons", "rule_change_season")},
        ),
        Step(
            "A bad argument gets a clear error, and the server keeps running",
            "generate_demo_data",
            {"seasons": 3, "rule_change_season": 2040},
            expect_error=True,
        ),
    ]


def _fmt(value: Any, limit: int = 1600) -> str:
    text = json.dumps(value, indent=2, default=str)
    return text if len(text) <= limit else text[:limit] + "\n  ... (cut)"


async def _drive(home: str, quick: bool) -> int:
    env = {**os.environ, "MLOPS_HOME": home, "MLFLOW_DISABLE_TELEMETRY": "true", "MLOPS_LOG_LEVEL": "WARNING"}
    env.pop("MLOPS_DATABASE_URL", None)
    env.pop("MLOPS_TRACKING_URI", None)
    env.pop("MLOPS_DATA_ROOTS", None)
    server = StdioServerParameters(command=sys.executable, args=["-m", "mlops_mcp", "serve"], env=env, cwd=home)
    failures = 0
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        print(f"Connected over stdio. {len(tools)} tools: {', '.join(t.name for t in tools)}\n")
        for number, step in enumerate(_steps(quick), 1):
            print(f"[{number}] {step.title}")
            print(f"    -> {step.tool}({json.dumps(step.arguments)})")
            started = time.perf_counter()
            result = await client.call_tool(step.tool, step.arguments)
            ms = (time.perf_counter() - started) * 1000
            if result.is_error:
                text = result.content[0].text if result.content else ""
                mark = "expected error" if step.expect_error else "ERROR"
                print(f"    <- {mark} ({ms:.0f} ms): {text}\n")
                failures += 0 if step.expect_error else 1
                continue
            if step.expect_error:
                print(f"    <- unexpectedly succeeded ({ms:.0f} ms)\n")
                failures += 1
                continue
            data = result.structured_content or {}
            shown = step.show(data) if step.show else data
            print(f"    <- ok ({ms:.0f} ms)")
            print("       " + _fmt(shown).replace("\n", "\n       ") + "\n")
        audit = await client.read_resource("mlops://audit")
        entries = json.loads(audit.contents[0].text)["entries"]  # type: ignore[union-attr]
        print(f"The audit log (mlops://audit) recorded {len(entries)} mutating calls:")
        for e in entries[:10]:
            print(f"    {e['at'][:19]}  {e['tool']:<22} {e['outcome']:<6} by {e['actor']}")
    return failures


def run_demo(home: str | None = None, quick: bool = False) -> int:
    keep = home is not None
    home = os.path.abspath(home) if home else tempfile.mkdtemp(prefix="mlops-demo-")
    os.makedirs(home, exist_ok=True)
    print(f"mlops-mcp demo: home {home}\n")
    failures = anyio.run(_drive, home, quick)
    print(f"\nDemo finished: {'all steps as expected' if not failures else f'{failures} step(s) failed'}.")
    if keep:
        print(f"Everything it made is in {home}; `mlflow ui --backend-store-uri sqlite:///{home}/mlflow.db` shows it.")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return 1 if failures else 0
