"""What tests share besides fixtures: reading tool errors, a server with a trained model, subprocess
servers, free ports. Imported by the tests (conftest.py keeps only fixtures)."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_mcp.core.config import Settings
from mlops_mcp.core.synthetic import EXCLUDE as DEMO_EXCLUDE
from mlops_mcp.server.app import build_server

#: the repository's root folder
ROOT = Path(__file__).resolve().parent.parent
#: the demo data's non-feature columns, as a list (train_model's `exclude`)
EXCLUDE = list(DEMO_EXCLUDE)


def tool_error_text(result: Any) -> str:
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return " ".join(getattr(c, "text", "") for c in result.content)


def trained_server(
    tmp_path_factory: pytest.TempPathFactory, models: tuple[str, ...] = ("nba-win",), challenger_alias: str | None = None,
    seasons: int = 3, games_per_season: int = 300, rule_change_season: int = 2023,
) -> Any:
    """A server on a fresh home with the synthetic NBA data and, per model, version 1 (gradient
    boosting, champion) and version 2 (logistic regression; `challenger_alias` if given).
    MLflow's first use is slow, so test modules share one through a module-scoped fixture."""
    home = tmp_path_factory.mktemp("shared") / "home"
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops = server.ops
    ops.generate_demo_data(seasons=seasons, games_per_season=games_per_season, rule_change_season=rule_change_season)
    for name in models:
        ops.train(model=name, dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, alias="champion")
        ops.train(model=name, dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE,
                  estimator="logistic_regression", alias=challenger_alias)
    return server


# -- subprocess servers -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update({"MLOPS_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", **extra})
    return env


class HttpServer:
    def __init__(self, home: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # output to a file, never a pipe nobody reads: under load the access log alone fills a pipe's
        # 64 KB in seconds, and the server then blocks on its next log line
        self.output = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_mcp", "serve", "--http", "--port", str(self.port), *args],
            env=server_env(home, **env),
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, n: int = 2000) -> str:
        self.output.seek(0)
        return self.output.read().decode(errors="replace")[-n:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError("HTTP server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def copy_home(source: Path, target: Path) -> Path:
    """A private copy of a home (store, MLflow database, data). Model artifacts stay where MLflow
    recorded them, in the source home, which the tests only read."""
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("cache"))
    return target


def scrape_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text -> {(sample name, labels): value}, parsed by prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: Any) -> float | None:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))
