"""A small HTTP load generator for the serving benchmarks: ``clients`` threads, each on its own
keep-alive connection, POST the same body back to back for ``seconds``; latencies are measured per
request on the client side (what an application sees). Standard library only, so that it measures
the server, not a client library's overhead; a failed request (an error status or a broken
connection) is counted, never retried."""

import http.client
import threading
import time
from urllib.parse import urlsplit


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_load(url: str, body: bytes, clients: int, seconds: float, headers: dict[str, str] | None = None) -> dict:
    """POST ``body`` to ``url`` from ``clients`` concurrent clients for ``seconds``.

    Returns {"requests": n, "failed": f, "rps": ..., "p50_ms": ..., "p99_ms": ...}: answered
    requests (2xx), failures, answered requests per second over the run, and client-side latency
    percentiles in milliseconds of the answered ones.
    """
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    sent = {"Content-Type": "application/json", **(headers or {})}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=sent)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
            if ok:
                latencies[i].append((time.perf_counter() - t0) * 1000)
            else:
                failures[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    answered = [x for per in latencies for x in per]
    return {
        "requests": len(answered),
        "failed": sum(failures),
        "rps": len(answered) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": _percentile(answered, 0.50),
        "p99_ms": _percentile(answered, 0.99),
    }
