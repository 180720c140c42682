"""Date and datetime columns in training (issue 11): found whether typed or text, left out of the
features by default with a warning that says how to use them, kept in the reference sample for
drift, named in predict's column errors, and an unseen date at predict time is reported, never
silent. Through a real MCP client."""

import datetime
import json
from typing import Any

import pandas as pd
import pytest
from mcp import Client

from mlops_mcp.core.config import Settings
from mlops_mcp.core.models.pipeline import date_kind
from mlops_mcp.server.app import build_server
from tests.helpers import tool_error_text

pytestmark = pytest.mark.anyio
DROP = ["game_id", "season", "point_margin"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("dates") / "home"
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    server.ops.generate_demo_data(seasons=3, games_per_season=200, rule_change_season=2023)
    root = server.ops.settings.data_roots[0]
    frame = pd.read_parquet(root / "nba" / "train.parquet").drop(columns=DROP)
    typed = frame.assign(game_date=pd.to_datetime(frame["game_date"]), tipoff=pd.to_datetime(frame["game_date"]) + pd.Timedelta(hours=19))
    typed["played_on"] = typed["game_date"].dt.date  # Python date objects, as Parquet's date32 arrives
    typed.to_parquet(root / "typed.parquet")
    us = frame.assign(game_date=pd.to_datetime(frame["game_date"]).dt.strftime("%m/%d/%Y"))
    us.to_csv(root / "us.csv", index=False)  # text dates, US style, from a CSV
    yield server
    server.ops.close()


def rows_of(server: Any, name: str, n: int = 3) -> list[dict[str, Any]]:
    root = server.ops.settings.data_roots[0]
    frame = pd.read_parquet(root / name) if name.endswith(".parquet") else pd.read_csv(root / name)
    return json.loads(frame.drop(columns=["home_win"]).head(n).to_json(orient="records", date_format="iso"))


def test_date_kind_finds_dates_and_nothing_else() -> None:
    s = pd.Series
    assert date_kind(s(pd.to_datetime(["2024-01-02", "2024-01-03"]))) == "typed"
    assert date_kind(s(pd.period_range("2024-01", periods=3, freq="M"))) == "typed"
    assert date_kind(s([datetime.date(2024, 1, 2), None])) == "date objects"
    for text in (["2024-01-02", "2024-01-03"], ["01/02/2024", "12/31/2023"], ["2024-01-02T19:30:00Z", "2024-01-03 08:00"],
                 ["2.1.2024", "31.12.2023"]):
        assert date_kind(s(text)) == "text", text
    for other in (["BOS", "LAL"], ["1", "2"], ["2024", "2023"], ["March", "April"], ["2024-13-45", "2024-01-02"],
                  ["A-1-2024", "B"], [1.5, 2.5], [True, False], [None, None]):
        assert date_kind(s(other)) is None, other


async def test_dates_are_left_out_with_a_warning_and_kept_for_drift(srv: Any) -> None:
    async with Client(srv) as c:
        for dataset, dates in (("typed.parquet", ["game_date", "tipoff", "played_on"]), ("us.csv", ["game_date"])):
            r = await c.call_tool("train_model", {"model": f"dates-{dataset.split('.')[0]}", "dataset": dataset,
                                                  "target": "home_win", "estimator": "logistic_regression"})
            assert not r.is_error, r.content
            out = r.structured_content
            assert sorted(out["dates_left_out"]) == sorted(dates)
            assert not set(dates) & set(out["features"]) and "home_team" in out["categorical"]
            for col in dates:
                [w] = [w for w in out["warnings"] if w.startswith(f"'{col}' holds dates")]
                assert "left out of the features" in w and "day of week" in w and f"categorical=['{col}']" in w
            reg = srv.ops.registry
            profile = reg.reference(reg.version(out["model"], out["version"]))
            assert set(dates) <= set(profile.sample.columns) and sorted(profile.schema.dates) == sorted(dates)

            rows = rows_of(srv, dataset)
            text = tool_error_text(await c.call_tool("predict", {"model": out["model"], "rows": rows}))
            assert "unknown" in text and ("holds dates, left out of the features" in text or "hold dates, left out" in text), text
            assert all(f"'{col}'" in text for col in dates)
            bare = [{k: v for k, v in row.items() if k not in dates} for row in rows]
            ok = await c.call_tool("predict", {"model": out["model"], "rows": bare})
            assert not ok.is_error and ok.structured_content["warnings"] == []


async def test_a_date_named_as_a_feature_is_refused_with_what_to_do(srv: Any) -> None:
    async with Client(srv) as c:
        r = await c.call_tool("train_model", {"model": "dates-named", "dataset": "us.csv", "target": "home_win",
                                              "features": ["home_rating", "game_date"]})
    text = tool_error_text(r)
    assert "features" in text and "'game_date' holds dates" in text and "Derive columns" in text and "`categorical`" in text


async def test_dates_as_categories_when_asked_and_unseen_dates_are_reported(srv: Any) -> None:
    async with Client(srv) as c:
        r = await c.call_tool("train_model", {"model": "dates-cat", "dataset": "us.csv", "target": "home_win",
                                              "estimator": "logistic_regression", "categorical": ["game_date"]})
        assert not r.is_error, r.content
        out = r.structured_content
        assert "game_date" in out["categorical"] and out["dates_left_out"] == []
        assert any("used as categories, as asked" in w for w in out["warnings"])
        rows = rows_of(srv, "us.csv", 4)
        seen = await c.call_tool("predict", {"model": "dates-cat", "rows": rows})
        assert not seen.is_error and seen.structured_content["warnings"] == []
        rows[1]["game_date"] = "06/01/2031"
        rows[3]["game_date"] = "06/02/2031"
        unseen = await c.call_tool("predict", {"model": "dates-cat", "rows": rows})
        assert not unseen.is_error, unseen.content
        [w] = unseen.structured_content["warnings"]
        assert w.startswith("'game_date': 2 of 4 rows have dates the model never saw") and "'06/01/2031'" in w
