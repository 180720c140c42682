"""Serve ``tools/list`` from schemas computed ahead of time, and build each tool on first call.

Why: pydantic builds an argument model and two JSON schemas per tool at registration, ~5 ms a
tool; with two dozen tools that is more than the whole start-up margin above the SDK's own import
(hosts launch stdio servers on every start). ``schemas.json`` beside this file holds every tool's
input and output schema, fingerprinted by the source of the tool modules and the versions of
``mcp`` and ``pydantic``. When the fingerprint matches, a :class:`LazyTool` answers ``tools/list``
from it and builds the real ``Tool`` on the first call (checking its schemas against the cached
ones); when it does not match, every tool is built eagerly, exactly as without the cache.

Regenerate after changing a tool: ``python -m mlops_mcp.tools.schema_cache`` (a test fails
while the file is stale).
"""

import hashlib
import json
import logging
import threading
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FILE = Path(__file__).with_name("schemas.json")


@lru_cache(maxsize=1)
def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(f"mcp={version('mcp')};pydantic={version('pydantic')}".encode())
    return digest.hexdigest()[:20]


def load() -> dict[str, Any] | None:
    """The cached schemas, or None when missing or stale."""
    try:
        data = json.loads(CACHE_FILE.read_text())
    except (OSError, ValueError):
        return None
    if data.get("fingerprint") != fingerprint():
        log.info("tool schema cache is stale; building tool schemas now (regenerate: python -m mlops_mcp.tools.schema_cache)")
        return None
    return data["tools"]


class LazyTool:
    """Stands in for an MCPServer ``Tool`` until its first call."""

    def __init__(self, mcp: Any, fn: Any, options: dict[str, Any], cached: dict[str, Any]) -> None:
        self._mcp = mcp
        self._fn = fn
        self._options = options
        self._real: Any = None
        self._lock = threading.Lock()
        self.name = options["name"]
        self.title = options.get("title")
        self.description = options.get("description") or ""
        self.annotations = options.get("annotations")
        self.icons = None
        self.meta = None
        self.parameters = cached["input_schema"]
        self.output_schema = cached["output_schema"]

    def real(self) -> Any:
        if self._real is None:
            with self._lock:
                if self._real is None:
                    from mcp.server.mcpserver.tools import Tool

                    tool = Tool.from_function(self._fn, **self._options)
                    if tool.parameters != self.parameters or tool.output_schema != self.output_schema:
                        log.warning("cached schema of tool %s differs from its code; using the code's", self.name)
                        self.parameters, self.output_schema = tool.parameters, tool.output_schema
                    self._real = tool
        return self._real

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        return await self.real().run(arguments, context, convert_result=convert_result)

    def __getattr__(self, item: str) -> Any:  # anything else the SDK reads: from the real tool
        return getattr(self.real(), item)


def snapshot(mcp: Any) -> dict[str, Any]:
    """Schemas of every tool registered on ``mcp`` (built eagerly)."""
    out = {}
    for tool in mcp._tool_manager.list_tools():
        real = tool.real() if isinstance(tool, LazyTool) else tool
        out[real.name] = {"input_schema": real.parameters, "output_schema": real.output_schema}
    return out


def write(mcp: Any) -> Path:
    CACHE_FILE.write_text(json.dumps({"fingerprint": fingerprint(), "tools": snapshot(mcp)}, indent=1, sort_keys=True) + "\n")
    return CACHE_FILE


def main() -> None:
    import tempfile

    from mlops_mcp.core.config import Settings
    from mlops_mcp.server.app import build_server

    server = build_server(Settings(home=Path(tempfile.mkdtemp()), _env_file=None), eager_tools=True)  # type: ignore[call-arg]
    print(f"wrote {write(server)} ({len(server._tool_manager.list_tools())} tools)")


if __name__ == "__main__":
    main()
