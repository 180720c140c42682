"""A fresh server's first seconds see parallel calls (hosts fire them right after launch): every one
must be answered, in both protocol eras, whatever part of the engine each needs first."""

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.helpers import server_env

pytestmark = pytest.mark.anyio

#: first calls that each build a different part first: the store, the registry (MLflow), the
#: predictor and its router, the explainer cache, the audit log
FIRST_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_server_info", {}),
    ("list_models", {}),
    ("generate_demo_data", {"seasons": 2, "games_per_season": 60, "rule_change_season": 2022}),
    ("get_model", {"model": "nope"}),
    ("predict", {"model": "nope", "rows": [{"x": 1}]}),
    ("explain_prediction", {"model": "nope", "row": {"x": 1}}),
    ("get_drift_history", {"model": "nope"}),
    ("get_model_performance", {"model": "nope"}),
    ("get_ab_test", {"experiment_id": 1}),
    ("get_server_info", {}),
]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_parallel_first_calls_all_answer(tmp_path: Path, mode: str) -> None:
    home = tmp_path / "home"
    params = StdioServerParameters(command=sys.executable, args=["-m", "mlops_mcp", "serve"], env=server_env(home))
    answers: dict[int, Any] = {}
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]

        async def call(i: int, name: str, args: dict[str, Any]) -> None:
            answers[i] = await client.call_tool(name, args)

        with anyio.fail_after(120):  # the deadlock this guards against never answered at all
            async with anyio.create_task_group() as tg:
                for i, (name, args) in enumerate(FIRST_CALLS):
                    tg.start_soon(call, i, name, args)
        assert len(answers) == len(FIRST_CALLS)
        assert not answers[0].is_error and not answers[2].is_error
        assert answers[3].is_error and "no registered model 'nope'" in answers[3].content[0].text
        # and the server still answers afterwards
        assert not (await client.call_tool("list_models", {})).is_error


async def test_two_servers_starting_together_on_a_fresh_home(tmp_path: Path) -> None:
    """Two hosts launching the server on one new home at once: both answer, and the home stays
    usable (the store's and MLflow's first migrations ran once, not twice over each other)."""
    home = tmp_path / "home"
    params = StdioServerParameters(command=sys.executable, args=["-m", "mlops_mcp", "serve"], env=server_env(home))
    answers: list[Any] = []

    async def first_call() -> None:
        async with Client(params) as client:
            answers.append(await client.call_tool("list_models", {}))
            answers.append(await client.call_tool("get_server_info", {}))

    with anyio.fail_after(180):
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(first_call)
    assert len(answers) == 4 and not any(a.is_error for a in answers), [a.content for a in answers if a.is_error]
    async with Client(params) as client:  # a later start finds a sound home
        assert not (await client.call_tool("list_models", {})).is_error
        assert (await client.call_tool("get_server_info", {})).structured_content["schema_revision"]
