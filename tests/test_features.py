"""The feature store through a real MCP client: register, ingest (idempotent), describe, materialize
(with progress), read online with honest statuses, build a training set, train on it (lineage),
serve by entity key (tool and REST) with the missing-feature policy; bad input of every kind,
with nothing half-written. Summaries are checked against pandas computed independently."""

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mcp import Client

from mlops_mcp.core.config import Settings
from mlops_mcp.server.app import build_server
from tests.helpers import tool_error_text

pytestmark = pytest.mark.anyio

NOW = pd.Timestamp.now(tz="UTC").floor("s")
TEAMS = ["BOS", "LAL", "NYK", "MIA", "DEN", "PHX"]


def form_rows(seed: int = 0, days: int = 40) -> pd.DataFrame:
    """Team form snapshots every 12 hours; LAL stops reporting 5 days ago (stale under a 2-day TTL),
    NYK's last row has no points, MIA has no rows at all."""
    r = np.random.default_rng(seed)
    rows = []
    for team in [t for t in TEAMS if t != "MIA"]:
        strength = r.normal(0, 1)
        for h in range(0, days * 24, 12):
            at = NOW - pd.Timedelta(hours=days * 24 - h) + pd.Timedelta(minutes=1)
            if team == "LAL" and at > NOW - pd.Timedelta(days=5):
                continue
            rows.append({"team": team, "as_of": at, "pts_avg": round(100 + 5 * strength + r.normal(0, 2), 2),
                         "win_pct": round(float(np.clip(0.5 + 0.15 * strength + r.normal(0, 0.05), 0, 1)), 3),
                         "injured": int(r.integers(0, 4)), "streak": r.random() < 0.5})
    frame = pd.DataFrame(rows)
    last_nyk = frame[frame.team == "NYK"].index.max()
    frame.loc[last_nyk, "pts_avg"] = np.nan
    return frame


def games(seed: int = 1, n: int = 300) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    form = form_rows()
    strength = form.groupby("team")["pts_avg"].mean()
    teams = r.choice([t for t in TEAMS if t != "MIA"], n)
    tip = NOW - pd.to_timedelta(r.integers(2 * 24, 35 * 24, n), unit="h")
    p = 1 / (1 + np.exp(-(strength.reindex(teams).to_numpy() - 100) / 3))
    return pd.DataFrame({"team": teams, "tip_off": tip, "home_win": (r.random(n) < p).astype(int)})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("features") / "home"
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    root = server.ops.settings.data_roots[0]
    (root / "fs").mkdir(parents=True)
    form = form_rows()
    old, new = form[form.as_of < NOW - pd.Timedelta(days=10)], form[form.as_of >= NOW - pd.Timedelta(days=10)]
    old.to_parquet(root / "fs" / "form_old.parquet")
    # the newer file as CSV with naive ISO times: taken as UTC, and said so
    new.assign(as_of=new.as_of.dt.tz_convert(None).dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(root / "fs" / "form_new.csv", index=False)
    games().to_parquet(root / "fs" / "games.parquet")
    yield server
    server.ops.close()


async def ok(c: Client, tool: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    res = await c.call_tool(tool, args, **kw)
    assert not res.is_error, f"{tool}: {tool_error_text(res)}"
    return res.structured_content  # type: ignore[return-value]


async def test_feature_store_end_to_end(served: Any) -> None:
    root = served.ops.settings.data_roots[0]
    async with Client(served) as c:
        reg = await ok(c, "register_feature_view", {
            "name": "team_form", "source": "fs/form_old.parquet", "entities": ["team"], "timestamp_column": "as_of",
            "ttl": "2d", "description": "rolling team form", "owner": "analytics", "tags": {"domain": "nba"},
        })
        assert reg["status"] == "created" and reg["version"] == 1 and reg["ttl_seconds"] == 2 * 86400
        assert [(f["name"], f["type"]) for f in reg["features"]] == [
            ("pts_avg", "float"), ("win_pct", "float"), ("injured", "int"), ("streak", "bool")]
        same = await ok(c, "register_feature_view", {
            "name": "team_form", "source": "fs/form_old.parquet", "entities": ["team"], "timestamp_column": "as_of", "ttl": "48h",
        })
        assert same["status"] == "unchanged" and same["ingest"]["skipped"] and same["ingest"]["rows"] == 0

        first = await c.call_tool("ingest_features", {"view": "team_form", "dataset": "fs/form_new.csv"})
        assert first.structured_content["ingest"]["assumed_utc"] == ["as_of"] and "taken as UTC" in first.content[0].text
        again = await ok(c, "ingest_features", {"view": "team_form", "dataset": "fs/form_new.csv"})
        assert again["ingest"]["skipped"] and "same SHA-256" in again["ingest"]["skipped_reason"]
        form = form_rows()
        assert again["total_rows"] == len(form)

        # describe: counts, range and per-feature summaries against pandas
        detail = await ok(c, "get_feature_view", {"view": "team_form"})
        assert detail["rows"] == len(form) and detail["keys"] == form.team.nunique()
        stats = {s["name"]: s for s in detail["features"]}
        assert stats["pts_avg"]["null_share"] == pytest.approx(form.pts_avg.isna().mean(), rel=1e-3)
        assert stats["pts_avg"]["mean"] == pytest.approx(form.pts_avg.mean(), rel=1e-3)
        assert stats["pts_avg"]["std"] == pytest.approx(form.pts_avg.std(), rel=1e-3)
        assert stats["injured"]["max"] == form.injured.max() and stats["injured"]["min"] == form.injured.min()
        assert stats["streak"]["true_share"] == pytest.approx(form.streak.mean(), rel=1e-3)
        assert detail["freshness"]["pending_rows"] == len(form) and detail["freshness"]["online_keys"] == 0
        assert pd.Timestamp(detail["event_to"]) == form.as_of.max()
        listed = await ok(c, "list_feature_views", {})
        assert [v["view"] for v in listed["views"]] == ["team_form"] and listed["views"][0]["owner"] == "analytics"

        progress: list[str] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        mat = await ok(c, "materialize_features", {"view": "team_form"}, progress_callback=on_progress)
        assert mat["rows_considered"] == len(form) and mat["online_keys"] == 5 and mat["stale_keys_now"] == 1
        assert progress and "rows read" in progress[-1]
        nothing = await ok(c, "materialize_features", {"view": "team_form"})
        assert nothing["rows_considered"] == 0 and nothing["keys_updated"] == 0

        before = pd.Timestamp.now(tz="UTC")
        online = await ok(c, "get_online_features", {
            "features": ["team_form:pts_avg", "team_form:streak"], "entity_keys": ["BOS", "LAL", "NYK", "MIA"]})
        after = pd.Timestamp.now(tz="UTC")
        status = {r["entity"]["team"]: {k.split(":")[1]: v["status"] for k, v in r["features"].items()} for r in online["rows"]}
        assert status == {
            "BOS": {"pts_avg": "PRESENT", "streak": "PRESENT"},
            "LAL": {"pts_avg": "OUTSIDE_MAX_AGE", "streak": "OUTSIDE_MAX_AGE"},
            "NYK": {"pts_avg": "NULL_VALUE", "streak": "PRESENT"},
            "MIA": {"pts_avg": "NOT_FOUND", "streak": "NOT_FOUND"},
        }
        bos = online["rows"][0]["features"]["team_form:pts_avg"]
        newest = form[form.team == "BOS"].sort_values("as_of").iloc[-1]
        assert bos["value"] == newest.pts_avg and pd.Timestamp(bos["event_time"]) == newest.as_of
        # the age is the read's own clock minus the event time (NOW is older: it was taken at collection)
        assert (before - newest.as_of).total_seconds() - 1 <= bos["age_seconds"] <= (after - newest.as_of).total_seconds() + 1
        lal = online["rows"][1]["features"]["team_form:pts_avg"]
        assert lal["value"] is None and lal["age_seconds"] > 2 * 86400
        assert online["status_counts"] == {"PRESENT": 3, "NULL_VALUE": 1, "NOT_FOUND": 2, "OUTSIDE_MAX_AGE": 2}

        built = await ok(c, "build_training_set", {
            "entities": "fs/games.parquet", "features": ["team_form:pts_avg", "team_form:win_pct", "team_form:injured"],
            "output": "fs/train_fs.parquet", "label": "home_win"})
        assert built["rows"] == 300 and built["view_versions"] == {"team_form": 1}
        g = games().reset_index()
        ref = pd.merge_asof(g.sort_values("tip_off"), form.sort_values("as_of"), left_on="tip_off", right_on="as_of",
                            by="team", tolerance=pd.Timedelta(days=2))
        assert [f["match_rate"] for f in built["features"]] == pytest.approx([ref["as_of"].notna().mean()] * 3, abs=1e-6)
        assert 0.8 < built["features"][0]["match_rate"] < 1  # LAL's last days find nothing within the TTL
        dup = await c.call_tool("build_training_set", {
            "entities": "fs/games.parquet", "features": ["team_form:pts_avg"], "output": "fs/train_fs.parquet"})
        assert "exists" in tool_error_text(dup) and "overwrite" in tool_error_text(dup)

        trained = await ok(c, "train_model", {
            "model": "team-win", "dataset": "fs/train_fs.parquet", "target": "home_win", "estimator": "logistic_regression",
            "alias": "champion"})
        assert trained["features"] == ["pts_avg", "win_pct", "injured"]  # keys and time left out by default
        assert trained["feature_refs"] == ["team_form:pts_avg", "team_form:win_pct", "team_form:injured"]
        tags = served.ops.registry.version("team-win", trained["version"]).tags
        assert json.loads(tags["mlops.features"])["views"]["team_form"]["version"] == 1
        version = json.loads((await c.read_resource(f"mlops://models/team-win/versions/{trained['version']}")).contents[0].text)
        assert version["feature_refs"] == trained["feature_refs"]

        keyed = await ok(c, "predict", {"model": "team-win", "entity_keys": ["BOS", "LAL", "MIA", "NYK"]})
        info = keyed["features"]
        assert info["missing_policy"] == "impute" and info["entity_keys"][2] == {"team": "MIA"}
        assert info["statuses"][1]["team_form:win_pct"] == "OUTSIDE_MAX_AGE"
        # the same model on hand-built rows (stale and missing as null) gives the same answer
        values = {r["entity"]["team"]: r["features"] for r in (await ok(c, "get_online_features", {
            "features": ["team_form:pts_avg", "team_form:win_pct", "team_form:injured"],
            "entity_keys": ["BOS", "LAL", "MIA", "NYK"]}))["rows"]}
        rows = [{k.split(":")[1]: v["value"] for k, v in values[t].items()} for t in ["BOS", "LAL", "MIA", "NYK"]]
        direct = await ok(c, "predict", {"model": "team-win", "rows": rows})
        assert [p["score"] for p in keyed["predictions"]] == pytest.approx([p["score"] for p in direct["predictions"]], abs=1e-12)

        refused = await c.call_tool("predict", {"model": "team-win", "entity_keys": ["BOS", "LAL"], "missing": "refuse"})
        text = tool_error_text(refused)
        assert "LAL team_form:pts_avg: OUTSIDE_MAX_AGE" in text and "missing='impute'" in text
        fine = await ok(c, "predict", {"model": "team-win", "entity_keys": ["BOS"], "missing": "refuse"})
        assert fine["features"]["status_counts"]["PRESENT"] == 3
        both = await c.call_tool("predict", {"model": "team-win", "rows": rows, "entity_keys": ["BOS"]})
        assert "not both" in tool_error_text(both)

        resources = json.loads((await c.read_resource("mlops://features")).contents[0].text)
        assert resources["count"] == 1
        one = json.loads((await c.read_resource("mlops://features/team_form")).contents[0].text)
        assert one["freshness"]["online_stale_keys"] == 1

        # a schema change (here the TTL) is a new version; the served model keeps working from it
        bumped = await ok(c, "register_feature_view", {
            "name": "team_form", "source": "fs/form_old.parquet", "entities": ["team"], "timestamp_column": "as_of", "ttl": "7d"})
        assert bumped["status"] == "new_version" and bumped["version"] == 2 and any("ttl" in ch for ch in bumped["changes"])
        await ok(c, "materialize_features", {"view": "team_form"})
        later = await ok(c, "predict", {"model": "team-win", "entity_keys": ["BOS"]})
        assert later["features"]["view_versions"] == {"team_form": 2}
        assert any("trained on version 1" in w for w in later["features"]["warnings"])
        old = await ok(c, "get_feature_view", {"view": "team_form", "version": 1})
        assert old["version"] == 1 and old["current_version"] == 2 and len(old["versions"]) == 2

    # the REST route takes the same form
    import httpx

    from mlops_mcp.server.http import build_http_app

    app = build_http_app(served, served.ops.settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        res = await http.post("/v1/models/team-win/predict", json={"entity_keys": ["BOS", "MIA"]})
        refused_rest = await http.post("/v1/models/team-win/predict", json={"entity_keys": ["MIA"], "missing": "refuse"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert len(body["predictions"]) == 2 and body["features"]["statuses"][1]["team_form:pts_avg"] == "NOT_FOUND"
    assert refused_rest.status_code == 422 and "NOT_FOUND" in refused_rest.json()["error"]
    trained_set = pd.read_parquet(root / "fs" / "train_fs.parquet")
    assert len(trained_set) == 300 and str(trained_set["tip_off"].dtype).startswith("datetime64")


async def test_bad_input_names_the_argument_and_writes_nothing(served: Any) -> None:
    root = served.ops.settings.data_roots[0]
    form = form_rows(seed=3, days=4)
    form.to_parquet(root / "fs" / "b_form.parquet")
    form.drop(columns=["as_of"]).to_parquet(root / "fs" / "no_time.parquet")
    bad = form.copy().astype({"injured": object})
    bad.loc[bad.index[-1], "injured"] = "many"
    bad.to_csv(root / "fs" / "bad_value.csv", index=False)
    null_key = form.copy()
    null_key.loc[null_key.index[5], "team"] = None
    null_key.to_parquet(root / "fs" / "null_key.parquet")
    form.assign(team=np.arange(len(form))).to_parquet(root / "fs" / "int_keys.parquet")
    pd.DataFrame({"team": [1, 2], "tip_off": [NOW, NOW]}).to_parquet(root / "fs" / "int_entities.parquet")
    pd.DataFrame({"team": ["BOS"], "score": [1]}).to_csv(root / "fs" / "no_ts_entities.csv", index=False)
    outside = root.parent / "elsewhere.parquet"
    form.to_parquet(outside)

    async with Client(served) as c:
        await ok(c, "register_feature_view", {"name": "b_form", "source": "fs/b_form.parquet", "entities": ["team"], "timestamp_column": "as_of"})
        rows_before = (await ok(c, "get_feature_view", {"view": "b_form"}))["rows"]

        async def fails(tool: str, args: dict[str, Any], *fragments: str) -> None:
            text = tool_error_text(await c.call_tool(tool, args))
            for fragment in fragments:
                assert fragment in text, f"{fragment!r} not in {text!r}"

        await fails("get_feature_view", {"view": "nope"}, "view: no feature view 'nope'", "b_form")
        await fails("get_online_features", {"features": ["b_form:nope"], "entity_keys": ["BOS"]},
                    "features: view 'b_form' has no feature 'nope'", "pts_avg, win_pct")
        await fails("get_online_features", {"features": ["b_form"], "entity_keys": ["BOS"]}, "features:", "'view:feature'")
        await fails("get_online_features", {"features": ["b_form:pts_avg"], "entity_keys": [7]},
                    "entity_keys: key 0: 'team' is string", "got 7")
        await fails("register_feature_view", {"name": "x", "source": "fs/no_time.parquet", "entities": ["team"], "timestamp_column": "as_of"},
                    "timestamp_column: no column 'as_of'", "pts_avg")
        await fails("register_feature_view", {"name": "x", "source": "fs/b_form.parquet", "entities": ["club"], "timestamp_column": "as_of"},
                    "entities: no column 'club'")
        await fails("register_feature_view", {"name": "B_Form", "source": "fs/b_form.parquet", "entities": ["team"], "timestamp_column": "as_of"},
                    "name: a feature view 'b_form' already exists", "ignoring case")
        await fails("register_feature_view", {"name": "x", "source": str(outside), "entities": ["team"], "timestamp_column": "as_of"},
                    "source:", "outside the data roots")
        await fails("register_feature_view", {"name": "x", "source": "fs/b_form.parquet", "entities": ["team"], "timestamp_column": "as_of", "ttl": "soon"},
                    "ttl:", "not a duration")
        await fails("ingest_features", {"view": "b_form", "dataset": "fs/bad_value.csv"},
                    "dataset: column 'injured'", "int values", "'many'")
        await fails("ingest_features", {"view": "b_form", "dataset": "fs/null_key.parquet"}, "dataset: key column 'team'", "empty in 1 row")
        await fails("ingest_features", {"view": "b_form", "dataset": "fs/int_keys.parquet"},
                    "dataset: key column 'team'", "holds integers", "keys it as string")
        await fails("build_training_set", {"entities": "fs/int_entities.parquet", "features": ["b_form:pts_avg"], "output": "fs/o.parquet"},
                    "entities: key column 'team'", "holds integers")
        await fails("build_training_set", {"entities": "fs/no_ts_entities.csv", "features": ["b_form:pts_avg"], "output": "fs/o.parquet"},
                    "entities:", "no timestamp column", "score")
        await fails("build_training_set", {"entities": "fs/games.parquet", "features": ["b_form:pts_avg"], "output": "fs/o.csv"},
                    "output:", "unsupported file type")
        await fails("materialize_features", {"view": "b_form", "end": "yesterday"}, "end:", "ISO 8601")
        await fails("predict", {"model": "team-win"}, "rows:", "entity_keys")

        assert (await ok(c, "get_feature_view", {"view": "b_form"}))["rows"] == rows_before
        assert not (root / "fs" / "o.parquet").exists()
        names = [v["view"] for v in (await ok(c, "list_feature_views", {}))["views"]]
        assert "x" not in names and "B_Form" not in names
