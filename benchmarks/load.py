"""An HTTP load generator for the serving benchmarks: ``clients`` connections (kept alive) each POST
``body`` back to back for ``seconds``; requests per second and latency percentiles.

wrk (``apt-get install wrk``) when it is on the PATH: it is written in C and leaves the (2-core)
machine's CPU to the servers under test, and it is what the issue's figures were measured with.
Otherwise Python threads with ``http.client``, which cost the server CPU and so understate the
throughput of whatever they measure (both sides of a comparison equally).
"""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlsplit

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = io.open(os.getenv("LOAD_BODY_FILE"), "rb"):read()
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('LOADRESULT {"requests": %%d, "failed": %%d, "seconds": %%f, "p50_us": %%f, "p99_us": %%f}\\n',
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_load(url: str, body: bytes, clients: int, seconds: float, headers: dict[str, str] | None = None) -> dict:
    """``{"requests": n, "failed": f, "rps": ..., "p50_ms": ..., "p99_ms": ...}``: ``requests`` counts
    answers with status 2xx or not, ``failed`` the non-2xx answers and socket errors, ``rps`` the
    successful answers per second."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    if shutil.which("wrk") and os.environ.get("MLOPS_BENCH_LOAD", "wrk") == "wrk":
        return _wrk(url, body, clients, seconds, headers)
    return _python(url, body, clients, seconds, headers)


def _wrk(url: str, body: bytes, clients: int, seconds: float, headers: dict[str, str]) -> dict:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    with tempfile.TemporaryDirectory() as tmp:
        script, payload = os.path.join(tmp, "post.lua"), os.path.join(tmp, "body")
        with open(script, "w") as f:
            f.write(_WRK_SCRIPT % {"headers": lines})
        with open(payload, "wb") as f:
            f.write(body)
        threads = max(1, min(clients, 2))
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--latency",
             "--timeout", "10s", "-s", script, url],
            capture_output=True, text=True, env={**os.environ, "LOAD_BODY_FILE": payload}, timeout=seconds + 60,
        )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("LOADRESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    r = json.loads(line[len("LOADRESULT "):])
    ok = r["requests"] - r["failed"]
    return {
        "requests": r["requests"], "failed": r["failed"], "rps": ok / r["seconds"],
        "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "tool": "wrk",
    }


def _python(url: str, body: bytes, clients: int, seconds: float, headers: dict[str, str]) -> dict:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine: list[float] = []
        bad = 0
        start.wait()
        while time.perf_counter() < deadline[0]:
            t = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status // 100 == 2:
                    mine.append(time.perf_counter() - t)
                else:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.close()
        with lock:
            latencies.extend(mine)
            failed[0] += bad

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "requests": len(latencies) + failed[0], "failed": failed[0], "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"), "p99_ms": pct(0.99), "tool": "python",
    }
