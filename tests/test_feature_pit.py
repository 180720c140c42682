"""The point-in-time join and the online store against an independent reference, on SQLite and on
PostgreSQL: pandas ``merge_asof(by=keys, direction="backward", tolerance=ttl)`` with the right side
sorted by (event_ts, created_ts, ingestion order), which picks, among rows with equal event times,
the last one: the newest created time, then the latest ingested (the documented semantics; a
missing created time counts as the oldest).

The data is made to hit every corner: event and entity times on a coarse grid (ties, exact
equality), entity times placed exactly at ``event + ttl`` (the inclusive TTL boundary) and one
microsecond past it, duplicate entity rows, missing created times, late rows (ingested later
with older event times and newer created times), keys with no history, a composite key, a view
without TTL, null feature values of every type, entity rows without a time.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_mcp.core import MLOps, Settings

H = 3600 * 10**6  # one hour in microseconds
BASE = 1_700_000_000 * 10**6  # 2023-11-14T22:13:20Z
TTL_HOURS = 24
TEAMS = [f"T{i:02d}" for i in range(10)]


@pytest.fixture(params=["sqlite", "postgresql"])
def ops(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = MLOps(Settings(home=tmp_path / "home", database_url=url, _env_file=None))  # type: ignore[call-arg]
    engine.settings.data_roots[0].mkdir(parents=True, exist_ok=True)
    yield engine
    engine.close()


def _ts(micros: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(micros, unit="us", utc=True))


def feature_rows(r: np.random.Generator, n: int, late: bool) -> pd.DataFrame:
    """Rows of view 'form' (key: team) on an hourly grid, with ties and missing values."""
    event = BASE + r.integers(0, 120, n) * H
    created = event + r.integers(0, 6, n) * H  # ties on (event, created) happen
    if late:  # written long after the fact, about old events
        created = created + 200 * H
    created_null = r.random(n) < 0.2
    frame = pd.DataFrame(
        {
            "team": r.choice(TEAMS, n),
            "as_of": _ts(event),
            "written": _ts(np.where(created_null, 0, created)).where(~created_null, pd.NaT),
            "pts": np.where(r.random(n) < 0.1, np.nan, np.round(r.normal(100, 10, n), 3)),
            # small counts mostly, and some huge or negative values (int64 travels exactly)
            "wins": pd.array(np.where(r.random(n) < 0.1, -1, np.where(r.random(n) < 0.2, r.integers(-(2**62), 2**62, n),
                                                                      r.integers(0, 60, n))), dtype="Int64"),
            "coach": pd.array(np.where(r.random(n) < 0.1, None, r.choice(["a", "b", "c", ""], n)), dtype=object),
            "hot": pd.array(np.where(r.random(n) < 0.1, None, r.random(n) < 0.5), dtype="boolean"),
        }
    )
    frame.loc[frame["wins"] == -1, "wins"] = pd.NA
    return frame


def season_rows(r: np.random.Generator, n: int) -> pd.DataFrame:
    """Rows of view 'season_stats' (key: team + season), no TTL, naive ISO text times (taken as UTC)."""
    event = BASE + r.integers(0, 120, n) * H
    return pd.DataFrame(
        {
            "team": r.choice(TEAMS[:6], n),
            "season": r.choice([2023, 2024], n),
            "at": pd.to_datetime(event, unit="us").strftime("%Y-%m-%dT%H:%M:%S"),
            "elo": np.round(r.normal(1500, 50, n), 2),
        }
    )


def entity_rows(r: np.random.Generator, form: pd.DataFrame, n: int) -> pd.DataFrame:
    times = BASE + r.integers(0, 140, n) * H
    teams = r.choice(TEAMS + ["NOHIST1", "NOHIST2"], n)
    # exact TTL boundaries and one microsecond past them, at real feature rows
    picks = r.choice(len(form), n // 5, replace=False)
    ev = form["as_of"].iloc[picks].array.as_unit("us").asi8
    times[: n // 10] = ev[: n // 10] + TTL_HOURS * H
    times[n // 10 : n // 5] = ev[n // 10 :] + TTL_HOURS * H + 1
    teams[: n // 5] = form["team"].iloc[picks].to_numpy()
    frame = pd.DataFrame({"team": teams, "season": r.choice([2023, 2024], n), "tip_off": _ts(times), "home_win": r.integers(0, 2, n)})
    frame.loc[r.random(n) < 0.02, "tip_off"] = pd.NaT
    dupes = frame.sample(n // 10, random_state=int(r.integers(0, 1000)))
    return pd.concat([frame, dupes]).sample(frac=1.0, random_state=1).reset_index(drop=True)


def micros(series: pd.Series) -> np.ndarray:
    return pd.to_datetime(series, utc=True, format="ISO8601").array.as_unit("us").asi8


def reference(entities: pd.DataFrame, rows: pd.DataFrame, keys: list[str], features: list[str], ttl: int | None, created: str | None, event: str) -> pd.DataFrame:
    """The documented semantics through pandas merge_asof (independent of our SQL)."""
    right = rows.copy()
    right["_seq"] = np.arange(len(right))
    right["_ev"] = micros(right[event])
    right["_c"] = micros(right[created]) if created else 0
    if created:
        right.loc[right[created].isna(), "_c"] = np.iinfo(np.int64).min  # a missing created time is the oldest
    right = right.sort_values(["_ev", "_c", "_seq"], kind="stable")  # merge_asof takes the last of equal times
    left = entities.copy()
    left["_row"] = np.arange(len(left))
    left["_ts"] = micros(left["tip_off"])
    usable = left[left["tip_off"].notna()].sort_values("_ts", kind="stable")
    merged = pd.merge_asof(
        usable[["_row", "_ts", *keys]], right[["_ev", *keys, *features]], left_on="_ts", right_on="_ev", by=keys,
        direction="backward", tolerance=ttl, allow_exact_matches=True,
    ).set_index("_row")
    return merged.reindex(np.arange(len(entities)))


def same(ours: pd.Series, theirs: pd.Series) -> None:
    a = [None if pd.isna(v) else v for v in ours.tolist()]
    b = [None if pd.isna(v) else v for v in theirs.tolist()]
    mismatches = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y or type(x) is not type(y) and not (
        isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool) and not isinstance(y, bool))]
    assert not mismatches, f"{ours.name}: {len(mismatches)} rows differ, e.g. {mismatches[:5]}"


@pytest.mark.parametrize("seed", [1, 2])
def test_training_set_equals_merge_asof(ops: MLOps, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if seed == 2:  # the bulk path: the index dropped and built again after a large append
        from mlops_mcp.core.features import ingest

        monkeypatch.setattr(ingest, "REBUILD_MIN_ROWS", 100)
    r = np.random.default_rng(seed)
    root = ops.settings.data_roots[0]
    first, late = feature_rows(r, 700, late=False), feature_rows(r, 300, late=True)
    first.to_parquet(root / "form1.parquet")
    late.to_parquet(root / "form2.parquet")
    seasons = season_rows(r, 300)
    seasons.to_csv(root / "seasons.csv", index=False)
    entities = entity_rows(r, first, 600)
    entities.to_parquet(root / "games.parquet")

    reg = ops.register_feature_view(
        name="form", source="form1.parquet", entities=["team"], timestamp_column="as_of", created_column="written",
        ttl=f"{TTL_HOURS}h",
    )
    assert [(f.name, f.type) for f in reg.features] == [("pts", "float"), ("wins", "int"), ("coach", "string"), ("hot", "bool")]
    assert ops.ingest_features("form", "form2.parquet").ingest.rows == 300
    sreg = ops.register_feature_view(name="season_stats", source="seasons.csv", entities=["team", "season"], timestamp_column="at")
    assert sreg.ingest.assumed_utc == ["at"] and sreg.ttl_seconds is None

    out = ops.build_training_set(
        entities="games.parquet", features=["form:*", "season_stats:elo"], output="sets/train.parquet", label="home_win"
    )
    got = pd.read_parquet(root / "sets" / "train.parquet")
    assert out.rows == len(entities) == len(got)
    assert list(got.columns) == [*entities.columns, "pts", "wins", "coach", "hot", "elo"]
    # every entity row kept, duplicates too, in order
    for column in ("team", "season", "home_win"):
        assert got[column].tolist() == entities[column].tolist()

    everything = pd.concat([first, late], ignore_index=True)
    want = reference(entities, everything, ["team"], ["pts", "wins", "coach", "hot"], TTL_HOURS * H, "written", "as_of")
    for column in ("pts", "wins", "coach", "hot"):
        same(got[column], want[column])
    want_elo = reference(entities, seasons, ["team", "season"], ["elo"], None, None, "at")
    same(got["elo"], want_elo["elo"])

    # numbers only take the other fetch path on both backends (binary arrays / float64 rows)
    ops.build_training_set(entities="games.parquet", features=["form:pts", "form:wins", "form:hot", "season_stats:elo"],
                           output="sets/numbers.parquet")
    numbers = pd.read_parquet(root / "sets" / "numbers.parquet")
    for column in ("pts", "wins", "hot"):
        same(numbers[column], want[column])
    same(numbers["elo"], want_elo["elo"])

    rates = {f.feature: f.match_rate for f in out.features}
    assert rates["form:pts"] == pytest.approx(want["_ev"].notna().mean(), abs=1e-6)
    assert rates["season_stats:elo"] == pytest.approx(want_elo["_ev"].notna().mean(), abs=1e-6)
    assert out.view_versions == {"form": 1, "season_stats": 1}
    assert out.rows_without_time == int(entities["tip_off"].isna().sum())
    # composite keys online: the newest row per (team, season)
    ops.materialize_features("season_stats")
    keys = [{"team": "T00", "season": 2023}, {"team": "T05", "season": 2024}, {"team": "T09", "season": 2024}]
    online = ops.get_online_features(["season_stats:elo"], keys)
    newest = seasons.assign(_ev=micros(seasons["at"]), _seq=np.arange(len(seasons))).sort_values(["_ev", "_seq"])
    newest = newest.groupby(["team", "season"]).tail(1).set_index(["team", "season"])["elo"]
    for key, row in zip(keys, online.rows):
        cell = row.features["season_stats:elo"]
        if (key["team"], key["season"]) in newest.index:
            assert cell.status == "PRESENT" and cell.value == newest.loc[(key["team"], key["season"])]
        else:
            assert cell.status == "NOT_FOUND"
    with pytest.raises(ValueError, match="key 0: missing season"):
        ops.get_online_features(["season_stats:elo"], [{"team": "T00"}])

    # the corners really were exercised: matches exactly at the TTL boundary, duplicates, keys
    # without history, rows matching nothing, ties on the event time
    assert ((want["_ts"] - want["_ev"]) == TTL_HOURS * H).sum() > 0
    assert 0 < want["_ev"].notna().mean() < 1
    assert entities.duplicated().any() and entities["team"].str.startswith("NOHIST").any()
    assert everything.duplicated(["team", "as_of"]).any() and everything.duplicated(["team", "as_of", "written"]).any()


def test_online_store_equals_newest_row_and_is_incremental(ops: MLOps) -> None:
    """Materializing in two steps, with late rows in between, gives the newest row per key by
    (event, created, ingestion order) among rows up to the end: what a full recompute gives."""
    r = np.random.default_rng(5)
    root = ops.settings.data_roots[0]
    first, late = feature_rows(r, 500, late=False), feature_rows(r, 300, late=True)
    first.to_parquet(root / "a.parquet")
    late.to_parquet(root / "b.parquet")
    ops.register_feature_view(name="form", source="a.parquet", entities=["team"], timestamp_column="as_of", created_column="written")
    cut = BASE + 60 * H
    step = ops.materialize_features("form", end=pd.Timestamp(cut, unit="us", tz="UTC").isoformat())
    assert step.start is None and step.rows_considered == int((micros(first["as_of"]) <= cut).sum())
    ops.ingest_features("form", "b.parquet")
    again = ops.materialize_features("form", end=pd.Timestamp(BASE + 200 * H, unit="us", tz="UTC").isoformat())
    assert again.start is not None
    # rows read the second time: the new file, plus the first file's rows after the first cut
    assert again.rows_considered == len(late) + int((micros(first["as_of"]) > cut).sum())

    rows = pd.concat([first, late], ignore_index=True)
    rows["_seq"] = np.arange(len(rows))
    rows["_ev"] = micros(rows["as_of"])
    rows["_c"] = np.where(rows["written"].isna(), np.iinfo(np.int64).min, micros(rows["written"].fillna(pd.Timestamp(0, tz="UTC"))))
    newest = rows.sort_values(["_ev", "_c", "_seq"]).groupby("team").tail(1).set_index("team")
    online = ops.get_online_features(["form:pts", "form:wins", "form:coach", "form:hot"], TEAMS + ["NOHIST"])
    for row in online.rows:
        team = row.entity["team"]
        if team not in newest.index:
            assert {v.status for v in row.features.values()} == {"NOT_FOUND"}
            continue
        want = newest.loc[team]
        for name in ("pts", "wins", "coach", "hot"):
            cell = row.features[f"form:{name}"]
            expected = None if pd.isna(want[name]) else want[name]
            assert cell.status == ("NULL_VALUE" if expected is None else "PRESENT"), (team, name)
            assert cell.value == expected, (team, name, cell.value, expected)
            if name == "hot" and expected is not None:
                assert isinstance(cell.value, bool)
            assert pd.Timestamp(cell.event_time) == pd.Timestamp(int(want["_ev"]), unit="us", tz="UTC")

    with pytest.raises(ValueError, match="only moves forward"):
        ops.materialize_features("form", end=pd.Timestamp(cut, unit="us", tz="UTC").isoformat())


def test_concurrent_ingests_lose_nothing_and_double_nothing(ops: MLOps, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six threads: the same file four times and two other files at once. Each file lands exactly
    once, whole (SQLite: one writer at a time; PostgreSQL: the view's row is locked). The index is
    rebuilt after large appends (threshold lowered here) without changing what the join sees."""
    import threading

    from mlops_mcp.core.features import ingest

    monkeypatch.setattr(ingest, "REBUILD_MIN_ROWS", 100)
    r = np.random.default_rng(9)
    root = ops.settings.data_roots[0]
    files = {name: feature_rows(r, n, late=False) for name, n in (("base", 300), ("same", 200), ("x", 250), ("y", 150))}
    for name, frame in files.items():
        frame.to_parquet(root / f"{name}.parquet")
    ops.register_feature_view(name="form", source="base.parquet", entities=["team"], timestamp_column="as_of", created_column="written")
    errors: list[BaseException] = []

    def send(name: str) -> None:
        try:
            ops.ingest_features("form", f"{name}.parquet")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in ["same"] * 4 + ["x", "y"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    detail = ops.get_feature_view("form")
    assert detail.rows == 300 + 200 + 250 + 150
    assert sorted(i.rows for i in detail.recent_ingests) == [150, 200, 250, 300]
