"""Alias moves from two server processes on one store (issue 12, point 3): the history's
from -> to chain stays intact, nothing is recorded as moved 'outside', and no move fails. Real
processes, on SQLite (a shared home) and on PostgreSQL."""

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_mcp.core.config import Settings
from mlops_mcp.core.engine import MLOps
from tests.helpers import ROOT, server_env

MOVES = 40


def _setup(home: Path, url: str | None) -> MLOps:
    """A model with three versions (sources need not be loadable: moving an alias never loads)."""
    ops = MLOps(Settings(home=home, database_url=url, _env_file=None))  # type: ignore[call-arg]
    reg = ops.registry
    reg.ensure_model("race")
    for _ in range(3):
        reg.client.create_model_version("race", source=(home / "nowhere").as_uri())
    return ops


def _run_two(home: Path, url: str | None) -> None:
    ops = _setup(home, url)
    start = time.time() + 8  # both processes import MLflow first, then start together
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.alias_mover", str(home), url or "", "race", str(MOVES), str(start), str(w)],
            cwd=ROOT, env=server_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(2)
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    errors = [e for o in outputs for e in o["errors"]]
    assert errors == [], errors
    reg = ops.registry
    events = reg.alias_events("race", "champion")
    kinds = sorted({e.kind for e in events})
    assert kinds == ["set"], f"moves recorded as {kinds}"
    broken = [(a.to_version, b.from_version) for a, b in itertools.pairwise(events) if b.from_version != a.to_version]
    assert broken == [], f"{len(broken)} breaks in the from -> to chain, e.g. {broken[:5]}"
    assert events[0].from_version is None
    assert events[-1].to_version == reg.aliases("race")["champion"]
    assert sum(o["moves"] for o in outputs) == 2 * MOVES
    ops.close()


def test_two_processes_moving_one_alias_on_sqlite(tmp_path: Path) -> None:
    _run_two(tmp_path / "home", None)


@pytest.mark.postgres
def test_two_processes_moving_one_alias_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _run_two(tmp_path / "home", postgres_url)
