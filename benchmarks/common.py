"""Helpers shared by the benchmarks: timing over repeats, a plain-text table, a scratch PostgreSQL
database, and starting servers on loopback (a free port, waiting until one answers)."""

import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class Timing:
    median: float
    low: float
    high: float
    runs: int

    def fmt(self, unit: str = "ms") -> str:
        k = 1000.0 if unit == "ms" else 1.0
        return f"{self.median * k:.1f} {unit} (min {self.low * k:.1f}, max {self.high * k:.1f}, n={self.runs})"


def measure(fn: Callable[[], object], runs: int = 7, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return Timing(statistics.median(times), min(times), max(times), runs)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [f"\n## {title}", "  ".join(h.ljust(w) for h, w in zip(cells[0], widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells[1:]]
    return "\n".join(out)


def scratch_postgres(admin: str) -> tuple[str, Callable[[], None]]:
    """A new database on the PostgreSQL server at ``admin`` (a URL): its URL and a function that drops it."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from mlops_mcp.core.store import normalize_url

    url = make_url(normalize_url(admin))
    name = f"mlops_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until ``url`` answers (any status below 500); fails at once if ``proc`` exits."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited ({proc.returncode})")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)
