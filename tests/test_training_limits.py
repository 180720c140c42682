"""Bounded training (issue 12, point 6): hyper-parameters that decide how long a fit runs are capped
by the operator's settings (never the caller's), a fit longer than MLOPS_MAX_TRAIN_SECONDS is
stopped, and cancelling the MCP request kills the fit at once and registers nothing. Through a real
MCP client; the fit's child process is watched from outside."""

import os
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from mcp import Client

from mlops_mcp.core.config import Settings
from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.models.fitting import running_fits
from mlops_mcp.core.models.pipeline import TrainingLimits, make_estimator
from mlops_mcp.server.app import build_server
from tests.helpers import EXCLUDE, tool_error_text

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("limits") / "home"
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    server.ops.generate_demo_data(seasons=3, games_per_season=300, rule_change_season=2023)
    root = server.ops.settings.data_roots[0]
    train = pd.read_parquet(root / "nba" / "train.parquet").drop(columns=EXCLUDE)
    rng = np.random.default_rng(0)
    big = pd.concat([train] * 40, ignore_index=True)
    numeric = big.select_dtypes("number").columns.drop("home_win")
    big[numeric] = big[numeric] + rng.normal(0, 0.1, (len(big), len(numeric)))
    big.to_parquet(root / "big.parquet")  # ~29k rows: slow enough with 1,000 deep trees
    yield server
    server.ops.close()


def versions_of(server: Any, name: str) -> list[int]:
    return [int(v.version) for v in server.ops.registry.client.search_model_versions(f"name = '{name}'")]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"  # a zombie has stopped running
    except FileNotFoundError:
        return True


@pytest.mark.parametrize(
    ("estimator", "params", "expected"),
    [
        ("random_forest", {"n_estimators": 10**7}, "n_estimators=10000000 is above this server's cap of 1000 for random_forest"),
        ("gradient_boosting", {"max_depth": 500}, "max_depth=500 is above this server's cap of 32"),
        ("hist_gradient_boosting", {"max_iter": 1e9}, "max_iter=1000000000 is above this server's cap of 10000"),
        ("logistic_regression", {"max_iter": 10**6}, "MLOPS_MAX_ITER"),
        ("random_forest", {"n_jobs": 10**6}, "n_jobs=1000000 is above this server's cap"),
    ],
)
async def test_capped_hyper_parameters_are_refused(srv: Any, estimator: str, params: dict[str, Any], expected: str) -> None:
    async with Client(srv) as c:
        r = await c.call_tool("train_model", {"model": "capped", "dataset": "nba/train.parquet", "target": "home_win",
                                              "exclude": EXCLUDE, "estimator": estimator, "params": params})
    text = tool_error_text(r)
    assert "params" in text and expected in text, text
    assert "MLOPS_MAX_" in text
    assert versions_of(srv, "capped") == []


def test_caps_are_the_operators_and_apply_to_defaults_too() -> None:
    low = TrainingLimits(n_estimators=50, max_iter=100, max_depth=4, n_jobs=2)
    with pytest.raises(InvalidInput, match=r"n_estimators=200 \(the default of random_forest\) is above this server's cap of 50"):
        make_estimator("random_forest", "classification", {}, low)
    with pytest.raises(InvalidInput, match="max_iter=1000 .the default of logistic_regression. .*MLOPS_MAX_ITER"):
        make_estimator("logistic_regression", "classification", {}, low)
    assert make_estimator("random_forest", "classification", {"n_estimators": 50, "max_depth": None}, low).n_estimators == 50
    with pytest.raises(InvalidInput, match="n_jobs=-1 is above"):
        make_estimator("random_forest", "classification", {"n_estimators": 10, "n_jobs": -1}, TrainingLimits(n_jobs=0))
    settings = Settings(_env_file=None, max_n_estimators=7, max_iter=8, max_depth=9, max_train_jobs=3)  # type: ignore[call-arg]
    assert TrainingLimits.from_settings(settings) == TrainingLimits(7, 8, 9, 3)


def test_caps_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_MAX_N_ESTIMATORS", "5000")
    monkeypatch.setenv("MLOPS_MAX_TRAIN_SECONDS", "90")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.max_n_estimators == 5000 and s.max_train_seconds == 90
    assert s.max_iter == 10_000 and s.max_depth == 32 and s.max_train_jobs == (os.cpu_count() or 1)


async def test_cancelling_the_request_kills_the_fit_and_registers_nothing(srv: Any) -> None:
    args = {"model": "cancel-me", "dataset": "big.parquet", "target": "home_win", "estimator": "gradient_boosting",
            "params": {"n_estimators": 1000, "max_depth": 12}}
    seen: list[int] = []
    async with Client(srv) as c:
        async with anyio.create_task_group() as tg:

            async def train() -> None:
                await c.call_tool("train_model", args)
                pytest.fail("the training finished before it was cancelled")

            tg.start_soon(train)
            with anyio.fail_after(120):
                while not running_fits():
                    await anyio.sleep(0.05)
            seen = running_fits()
            await anyio.sleep(1.0)  # well into the fit
            tg.cancel_scope.cancel()  # the client abandons the call: it sends notifications/cancelled
        with anyio.fail_after(60):
            while not all(_gone(pid) for pid in seen) or running_fits():
                await anyio.sleep(0.05)
        assert versions_of(srv, "cancel-me") == []
        listed = await c.call_tool("list_models", {})
        assert "cancel-me" not in {m["name"] for m in listed.structured_content["models"]}
        # the server is unharmed: the next training works
        ok = await c.call_tool("train_model", {"model": "after-cancel", "dataset": "nba/train.parquet", "target": "home_win",
                                               "exclude": EXCLUDE, "estimator": "logistic_regression"})
        assert not ok.is_error, ok.content


async def test_a_fit_past_the_time_limit_is_stopped(srv: Any) -> None:
    settings = srv.ops.settings
    saved = settings.max_train_seconds
    settings.max_train_seconds = 1.0
    try:
        started = time.monotonic()
        async with Client(srv) as c:
            r = await c.call_tool("train_model", {"model": "too-slow", "dataset": "big.parquet", "target": "home_win",
                                                  "estimator": "gradient_boosting", "params": {"n_estimators": 1000, "max_depth": 12}})
        text = tool_error_text(r)
        assert "longer than 1 s" in text and "MLOPS_MAX_TRAIN_SECONDS" in text and "nothing was registered" in text
        assert time.monotonic() - started < 60  # stopped, not run to the end (which takes minutes)
    finally:
        settings.max_train_seconds = saved
    assert versions_of(srv, "too-slow") == [] and running_fits() == []


async def test_fit_warnings_reach_the_result(srv: Any) -> None:
    async with Client(srv) as c:
        r = await c.call_tool("train_model", {"model": "unconverged", "dataset": "nba/train.parquet", "target": "home_win",
                                              "exclude": EXCLUDE, "estimator": "logistic_regression", "params": {"max_iter": 2}})
    assert not r.is_error, r.content
    assert any("ConvergenceWarning" in w for w in r.structured_content["warnings"])


def test_the_fitted_model_equals_an_in_process_fit(srv: Any, tmp_path: Path) -> None:
    """The child-process fit changes nothing: same predictions as sklearn fitting here."""
    from mlops_mcp.core.models.fitting import fit_in_child

    root = srv.ops.settings.data_roots[0]
    frame = pd.read_parquet(root / "nba" / "train.parquet")
    X = frame.drop(columns=EXCLUDE + ["home_win", "home_team", "away_team"])
    y = frame["home_win"]
    here = make_estimator("gradient_boosting", "classification", {"n_estimators": 30}).fit(X, y)
    there = fit_in_child(make_estimator("gradient_boosting", "classification", {"n_estimators": 30}), X, y, timeout=120)
    np.testing.assert_array_equal(here.predict_proba(X), there.fitted.predict_proba(X))
    assert there.fit_seconds <= there.wall_seconds
