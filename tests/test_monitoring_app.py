"""The model health MCP App in a real browser: headless Chromium loads it in a minimal host page
(tests/app_host.html) that implements the host side of the bridge against a running MCP server
(streamable HTTP); the test reads what the page shows (model, champion, the tool's numbers, the
most drifted feature, quality points, alias history), refreshes it through the bridge after more
traffic, checks that the app asked only for read-only tools and broke no CSP rule, and saves a
screenshot (test-artifacts/model_health_app.png, or $MLOPS_TEST_ARTIFACTS).

Needs Debian's ``chromium`` package; ``.ci/run`` installs it. Driven through the Chrome DevTools
protocol (the ``websockets`` client; no browser automation package).
"""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mcp import Client

from mlops_mcp.core.config import Settings
from mlops_mcp.core.monitoring.results import HEALTH_APP_URI
from mlops_mcp.server.app import build_server
from mlops_mcp.server.http import build_http_app
from tests.helpers import EXCLUDE, copy_home, free_port

ROOT = Path(__file__).resolve().parent.parent
HOST_PAGE = Path(__file__).with_name("app_host.html")
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's 'chromium' package (headless browser): apt-get install chromium"
)
MODEL = "nba-win"


# -- the MCP server, over real streamable HTTP, in this process -------------------------------------
class ServerThread:
    def __init__(self, server: Any, settings: Settings) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        config = uvicorn.Config(build_http_app(server, settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.uvicorn.started:
            assert time.monotonic() < deadline, "HTTP server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(10)


# -- the host's backend: the page, the app's HTML, and an MCP session the page's bridge uses ------------
class HostBackend:
    """Serves the host page and proxies the app's requests to the MCP server over one MCP client
    session (held by an event loop on its own thread)."""

    def __init__(self, mcp_url: str) -> None:
        self.mcp_url = mcp_url
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.calls: list[str] = []
        self.initial: dict[str, Any] = {}
        self.tools: dict[str, Any] = {}
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self._stop = asyncio.run_coroutine_threadsafe(self._stop_event(), self.loop).result(10)
        self._session = asyncio.run_coroutine_threadsafe(self._hold(), self.loop)
        assert self.ready.wait(30), "MCP session did not open"
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    async def _stop_event(self) -> asyncio.Event:
        return asyncio.Event()

    async def _hold(self) -> None:
        async with Client(self.mcp_url) as client:
            self.client = client
            self.tools = {t.name: t for t in (await client.list_tools()).tools}
            self.ready.set()
            await self._stop.wait()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = self.run(self.client.call_tool(name, arguments))
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)

    def prepare(self, arguments: dict[str, Any]) -> None:
        """What a host has when it renders the app: the tool's input and result, the app's HTML."""
        html = self.run(self.client.read_resource(HEALTH_APP_URI)).contents[0].text
        self.initial = {"arguments": arguments, "result": self.call_tool("get_model_health", arguments), "html": html}

    def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "tools/call":
            name = params.get("name", "")
            self.calls.append(name)
            tool = self.tools.get(name)
            if tool is None or not (tool.annotations and tool.annotations.read_only_hint):
                return {"error": {"code": -32000, "message": f"this host lets apps call read-only tools only, not {name}"}}
            return {"result": self.call_tool(name, params.get("arguments") or {})}
        if method == "resources/read":
            result = self.run(self.client.read_resource(params["uri"]))
            return {"result": result.model_dump(by_alias=True, mode="json", exclude_none=True)}
        return {"error": {"code": -32601, "message": method}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/":
                    self._send(HOST_PAGE.read_bytes(), "text/html; charset=utf-8")
                elif self.path == "/initial":
                    self._send(json.dumps(backend.initial).encode(), "application/json")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._send(json.dumps(backend.rpc(body["method"], body.get("params") or {})).encode(), "application/json")

        return Handler

    def close(self) -> None:
        self.http.shutdown()
        self.loop.call_soon_threadsafe(self._stop.set)
        self._session.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


# -- Chromium over the DevTools protocol ------------------------------------------------------------
class Browser:
    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",  # type: ignore[list-item]
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1020,1300",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            assert self.proc.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)
        port, path = active.read_text().splitlines()[:2]
        self._connection = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=20)
        self.ws = self._connection.__enter__()
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = False) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}\nhost log: {self.evaluate('JSON.stringify(window.hostLog)')}")
            time.sleep(0.1)

    def console(self) -> list[str]:
        out = []
        for e in self.events:
            if e.get("method") == "Runtime.consoleAPICalled":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"]))
            elif e.get("method") == "Log.entryAdded":
                out.append(e["params"]["entry"]["text"])
        return out

    def close(self) -> None:
        try:
            self._connection.__exit__(None, None, None)
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def app(expr: str) -> str:
    """An expression evaluated in the app's document (the host page's iframe)."""
    return f"(() => {{ const f = document.getElementById('app'); const d = f && f.contentDocument; return {expr}; }})()"


def text(browser: Browser, element_id: str) -> str:
    return browser.evaluate(app(f"d.getElementById('{element_id}').textContent"))


def test_model_health_app_in_chromium(trained_home: Path, tmp_path: Path) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]
    server = build_server(settings)
    ops = server.ops
    recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
    features = [c for c in recent.columns if c not in [*EXCLUDE, "home_win"]]
    batch = ops.predict_batch(MODEL, recent[features].iloc[:120].to_dict("records"))
    ops.predict_batch(MODEL, recent[features].iloc[120:160].to_dict("records"))
    ops.log_feedback(items=[{"prediction_id": p, "actual": int(y)} for p, y in zip(batch.ids, recent["home_win"].iloc[:120])])
    ops.set_alias(MODEL, "challenger", 1, reason="test: move the challenger")
    drift = ops.check_drift(MODEL, dataset="nba/recent.parquet", drift_share=0.2)

    http = ServerThread(server, settings)
    backend = HostBackend(http.url)
    browser = Browser(tmp_path / "chromium-profile")
    try:
        backend.prepare({"model": MODEL})
        health = backend.initial["result"]["structuredContent"]
        browser.send("Page.navigate", {"url": backend.url + "/"}, session=True)
        browser.wait_for(app("d && d.getElementById('history-table') && d.getElementById('history-table').tBodies[0].rows.length > 0"))
        browser.wait_for(app("d.querySelectorAll('#quality-chart circle').length > 0"))

        assert text(browser, "model") == MODEL
        assert text(browser, "status") == health["status"]
        assert f"champion v{health['aliases']['champion']}" in text(browser, "champion")
        assert text(browser, "predictions") == f"{health['traffic']['predictions']:,}" == "160"
        assert text(browser, "requests") == f"{health['traffic']['requests']:,}" == "2"
        p95 = health["traffic"]["latency"]["p95_ms"]
        assert text(browser, "p95") == (f"{p95:.2f} ms" if p95 < 10 else f"{p95:.1f} ms")
        cov = health["quality"][0]["label_coverage"]
        assert text(browser, "coverage") == f"{100 * cov:.1f}%"
        top = health["drift"]["top_features"][0]["feature"]
        assert top == max((c for c in drift.columns if c.severity is not None), key=lambda c: c.severity).column
        assert browser.evaluate(app("d.querySelector('#drift-chart [data-feature]').getAttribute('data-feature')")) == top
        assert f"report {drift.report_id}" in text(browser, "drift-head")
        assert "MLOpsDriftDetected" in text(browser, "alerts")
        assert browser.evaluate(app("d.querySelectorAll('#quality-table tbody tr[data-version=\"1\"]').length")) >= 1
        assert browser.evaluate(app("d.querySelectorAll('#traffic-chart rect').length")) == 24
        history = browser.evaluate(app("Array.from(d.querySelectorAll('#history-table tbody tr')).map(r => r.textContent)"))
        assert any("challenger" in row and "v2 → v1" in row for row in history)
        # the quality chart's point is the live accuracy get_model_performance reports for today
        perf = backend.call_tool("get_model_performance", {"model": MODEL, "window": "1d"})["structuredContent"]
        points = browser.evaluate(app("Array.from(d.querySelectorAll('#quality-chart circle')).map(c => Number(c.getAttribute('data-value')))"))
        assert points[-1] == pytest.approx(perf["buckets"][-1]["metrics"]["accuracy"])

        # more traffic, then the app's Refresh button: it calls get_model_health through the bridge
        ops.predict_batch(MODEL, recent[features].iloc[160:190].to_dict("records"))
        before = len(backend.calls)
        browser.evaluate(app("d.getElementById('refresh').click() || true"))
        browser.wait_for(app("d.getElementById('predictions').textContent === '190'"))
        assert "get_model_health" in backend.calls[before:]
        assert set(backend.calls) == {"get_model_health", "get_model_performance", "get_model_history"}
        assert all(backend.tools[name].annotations.read_only_hint for name in backend.calls)
        assert text(browser, "error") == ""
        problems = [m for m in browser.console() if "Content Security Policy" in m or "Refused" in m or "Uncaught" in m]
        assert not problems, problems

        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)
        png = base64.b64decode(shot["data"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
        folder = Path(os.environ.get("MLOPS_TEST_ARTIFACTS") or ROOT / "test-artifacts")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model_health_app.png").write_bytes(png)
    finally:
        browser.close()
        backend.close()
        http.stop()
        ops.close()
