"""Experiments through a real MCP client: offline A/B (checked against sklearn + stats), live A/B
(deterministic assignment, split, pinning, logged arms, read-out equal to the statistics computed
by hand on the joined rows, running minimum of the always-valid p-value, SRM on a forced skew,
conclude + promote with confirmation, concluding twice), shadows (answers unchanged, shadow answers
logged and equal to the version's own, a failing and slow shadow not felt by the caller), resources
and bad input."""

import json
import time
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from mcp import Client
from mcp.types import ElicitResult
from sklearn import metrics as skm

from mlops_mcp.core.errors import InvalidInput
from tests.helpers import EXCLUDE, tool_error_text, trained_server

pytestmark = pytest.mark.anyio
TARGET = "home_win"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two models with two versions each (v1 gradient boosting = champion, v2 logistic = challenger):
    'ab' for the live A/B flow, 'sh' for shadows and the SRM check."""
    server = trained_server(tmp_path_factory, models=("ab", "sh"), challenger_alias="challenger")
    yield server
    server.ops.close()


@pytest.fixture
async def mc(shared: Any) -> Any:
    async with Client(shared) as c:
        yield c


def recent(server: Any) -> tuple[list[dict[str, Any]], list[int]]:
    frame = pd.read_parquet(server.ops.settings.data_roots[0] / "nba" / "recent.parquet")
    rows = json.loads(frame.drop(columns=EXCLUDE + [TARGET]).to_json(orient="records"))
    return rows, frame[TARGET].astype(int).tolist()


def cycled(server: Any, n: int) -> tuple[list[dict[str, Any]], list[int]]:
    rows, y = recent(server)
    return [rows[i % len(rows)] for i in range(n)], [y[i % len(y)] for i in range(n)]


def logged(server: Any, model: str, experiment_id: int | None = None) -> pd.DataFrame:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import Prediction

    q = select(Prediction.id, Prediction.version, Prediction.variant, Prediction.experiment_id, Prediction.request_key,
               Prediction.output).where(Prediction.model == model)
    if experiment_id is not None:
        q = q.where(Prediction.experiment_id == experiment_id)
    with server.ops.store.read() as s:
        return pd.DataFrame(s.execute(q).all(), columns=["id", "version", "variant", "experiment_id", "request_key", "output"])


async def ok(c: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    res = await c.call_tool(tool, args)
    assert not res.is_error, (tool, res.content)
    return res.structured_content


async def err(c: Client, tool: str, args: dict[str, Any]) -> str:
    return tool_error_text(await c.call_tool(tool, args))


# -- offline ----------------------------------------------------------------------------------------
async def test_run_ab_test_matches_sklearn_and_stats(mc: Client, shared: Any) -> None:
    from mlops_mcp.core.experiments import stats
    from mlops_mcp.core.models.pipeline import coerce_features

    out = await ok(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet", "variant_a": "1", "variant_b": "v2"})
    assert out["metric"] == "roc_auc" and out["test"] == "delong" and out["variant_a"]["version"] == 1
    frame = pd.read_parquet(shared.ops.settings.data_roots[0] / "nba" / "recent.parquet")
    reg = shared.ops.registry
    a, b = (reg.load(reg.version("ab", v)) for v in (1, 2))
    X = coerce_features(frame[a.schema.features], a.schema)
    pa, pb = a.model.predict_proba(X)[:, 1], b.model.predict_proba(X)[:, 1]
    assert out["variant_a"]["metric"] == pytest.approx(skm.roc_auc_score(frame[TARGET], pa), abs=1e-12)
    assert out["variant_b"]["metric"] == pytest.approx(skm.roc_auc_score(frame[TARGET], pb), abs=1e-12)
    ref = stats.delong(frame[TARGET].to_numpy(), pa, pb)
    assert out["p_value"] == pytest.approx(ref.p_value) and out["ci_low"] == pytest.approx(ref.ci_low)
    assert out["n"] == len(frame) and out["verdict"] in ("a_better", "b_better", "no_significant_difference")
    assert out["verdict_text"] in out["reason"] or out["verdict"] != "no_significant_difference"

    acc = await ok(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet", "metric": "accuracy",
                                        "variant_a": "2", "variant_b": "1"})
    assert acc["test"].startswith("mcnemar") and acc["variant_a"]["version"] == 2 and acc["variant_b"]["version"] == 1
    y = frame[TARGET].to_numpy()
    assert acc["variant_b"]["metric"] == pytest.approx(float(np.mean(a.model.predict(X) == y)))
    only_a = int(np.sum((b.model.predict(X) == y) & (a.model.predict(X) != y)))
    assert acc["discordant"]["only_a_correct"] == only_a


async def test_run_ab_test_warns_when_evaluated_rows_are_training_rows(mc: Client, shared: Any) -> None:
    """Issue 11: run_ab_test on the models' own training file said "a better" without a word. Both
    versions were trained on nba/train.parquet (80% of it; 20% held out): the overlap is counted per
    version from the row hashes kept with the reference profile, equal to the rows each was trained
    on (the synthetic rows are all distinct), and the reason says so. A held-out file has none."""
    reg = shared.ops.registry
    n_train = {v: int(reg.client.get_run(reg.version("ab", v).run_id).data.params["n_train"]) for v in (1, 2)}
    frame = pd.read_parquet(shared.ops.settings.data_roots[0] / "nba" / "train.parquet")
    assert not frame.drop(columns=EXCLUDE).duplicated().any()
    out = await ok(mc, "run_ab_test", {"model": "ab", "dataset": "nba/train.parquet", "variant_a": "1", "variant_b": "2",
                                        "metric": "accuracy"})
    overlap = out["training_overlap"]
    for arm, version in (("a", 1), ("b", 2)):
        o = overlap[arm]
        assert (o["version"], o["status"], o["matched_on"]) == (version, "overlap", "features+target")
        assert o["overlapping_rows"] == o["training_rows"] == n_train[version]
        assert o["share"] == pytest.approx(n_train[version] / out["n"])
    assert out["n"] == len(frame)
    assert "Caution" in out["reason"] and f"{n_train[1]:,} (80%) are training rows of version 1 (a)" in out["reason"]

    held_out = await ok(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet"})
    assert {o["status"] for o in held_out["training_overlap"].values()} == {"none"}
    assert held_out["training_overlap"]["a"]["overlapping_rows"] == 0 and "Caution" not in held_out["reason"]

    # rows copied from the training file into new data are found; the label column may be renamed
    root = shared.ops.settings.data_roots[0]
    recent = pd.read_parquet(root / "nba" / "recent.parquet")
    mixed = pd.concat([recent, frame.head(40)], ignore_index=True).rename(columns={TARGET: "outcome"})
    mixed.to_csv(root / "nba" / "mixed.csv", index=False)
    out = await ok(mc, "run_ab_test", {"model": "ab", "dataset": "nba/mixed.csv", "target": "outcome"})
    # which of those 40 were training rows: train_model's split (test_size 0.2, seed 42, stratified), redone
    from sklearn.model_selection import train_test_split

    train_idx, _ = train_test_split(frame.index, test_size=0.2, random_state=42, stratify=frame[TARGET])
    expected = int(np.isin(frame.index[:40], train_idx).sum())
    assert 0 < expected < 40
    assert out["training_overlap"]["a"]["overlapping_rows"] == out["training_overlap"]["b"]["overlapping_rows"] == expected
    assert out["training_overlap"]["a"]["share"] == pytest.approx(expected / len(mixed))


async def test_training_overlap_of_registered_versions(mc: Client, shared: Any) -> None:
    """register_model with reference_dataset keeps hashes of every reference row on the model's
    input columns (its target is unknown): rows are matched on features. Without reference data:
    unknown."""
    reg = shared.ops.registry
    run_id = reg.version("ab", 1).run_id
    await ok(mc, "register_model", {"model": "ovl", "source": f"runs:/{run_id}/model", "reference_dataset": "nba/recent.parquet"})
    await ok(mc, "register_model", {"model": "ovl", "source": f"runs:/{run_id}/model"})
    out = await ok(mc, "run_ab_test", {"model": "ovl", "dataset": "nba/recent.parquet", "variant_a": "1", "variant_b": "2",
                                        "target": TARGET, "metric": "accuracy"})
    a, b = out["training_overlap"]["a"], out["training_overlap"]["b"]
    recent = pd.read_parquet(shared.ops.settings.data_roots[0] / "nba" / "recent.parquet")
    assert (a["status"], a["matched_on"], a["overlapping_rows"], a["training_rows"]) == ("overlap", "features", len(recent), len(recent))
    assert (b["status"], b["overlapping_rows"], b["share"], b["matched_on"]) == ("unknown", None, None, None)
    assert "training rows of version 1 (a)" in out["reason"] and "version 2 (b)" not in out["reason"]


async def test_run_ab_test_bad_input(mc: Client, shared: Any) -> None:
    text = await err(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet", "variant_a": "1", "variant_b": "v1"})
    assert "variant_b" in text and "both point at version 1" in text
    text = await err(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet", "variant_b": "nope"})
    assert "variant_b" in text and "no alias 'nope'" in text and "champion" in text
    text = await err(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet", "variant_b": "9"})
    assert "variant_b" in text and "no version 9" in text
    text = await err(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet", "metric": "rmse"})
    assert "metric" in text and "classification" in text
    root = shared.ops.settings.data_roots[0]
    pd.read_parquet(root / "nba" / "recent.parquet").drop(columns=[TARGET]).to_parquet(root / "nba" / "unlabeled.parquet")
    text = await err(mc, "run_ab_test", {"model": "ab", "dataset": "nba/unlabeled.parquet"})
    assert "dataset" in text and "no column 'home_win'" in text
    text = await err(mc, "run_ab_test", {"model": "ab", "dataset": "nba/recent.parquet", "target": "label"})
    assert text.count("target") and "no column 'label'" in text


# -- live A/B ---------------------------------------------------------------------------------------
async def test_start_ab_test_bad_input_changes_nothing(mc: Client, shared: Any) -> None:
    cases = [
        ({"variant_b": "champion"}, "variant_b", "both point at version"),
        ({"variant_a": "canary"}, "variant_a", "no alias 'canary'"),
        ({"variant_b": "7"}, "variant_b", "no version 7"),
        ({"traffic_split": 1.0}, "traffic_split", ""),
        ({"traffic_split": 0}, "traffic_split", ""),
        ({"metric": "roc_auc"}, "metric", ""),
        ({"metric": "mae"}, "metric", "accuracy"),
    ]
    for extra, argument, words in cases:
        text = await err(mc, "start_ab_test", {"model": "ab", **extra})
        assert argument in text and words in text, (extra, text)
    from mlops_mcp.core.experiments.common import list_experiments

    before = list_experiments(shared.ops.store)
    text = await err(mc, "start_ab_test", {"model": "nope"})
    assert "model" in text and "no registered model 'nope'" in text
    from mlops_mcp.core.experiments import live

    with pytest.raises(InvalidInput, match="traffic_split"):
        live.start(shared.ops.store, shared.ops.registry, "ab", traffic_split=1.5)
    assert list_experiments(shared.ops.store) == before


@pytest.mark.slow
async def test_live_ab_flow(mc: Client, shared: Any) -> None:
    from mlops_mcp.core.experiments import stats

    ops = shared.ops
    started = await ok(mc, "start_ab_test", {"model": "ab", "traffic_split": 0.3})
    eid = started["experiment_id"]
    assert (started["version_a"], started["version_b"], started["metric"], started["mde"]) == (1, 2, "accuracy", 0.02)
    text = await err(mc, "start_ab_test", {"model": "ab"})
    assert "model" in text and f"A/B test {eid} is already running" in text

    # pinned: moving the challenger alias during the test does not change arm b
    ops.registry.set_alias("ab", "challenger", 1, "test", "pinning check")

    n = 2000
    rows, y = cycled(shared, n)
    keys = [f"user-{i}" for i in range(n)]
    first = await ok(mc, "predict", {"model": "ab", "rows": rows, "request_keys": keys, "max_results": 0})
    assert first["versions"] == [1, 2]
    log = logged(shared, "ab", eid)
    assert len(log) == n and set(log["variant"]) == {"a", "b"}
    assert (log["version"] == log["variant"].map({"a": 1, "b": 2})).all()  # pinned versions
    share_b = float((log["variant"] == "b").mean())
    assert abs(share_b - 0.3) < 0.035, share_b  # 3.4 standard errors
    arm_of = dict(zip(log["request_key"], log["variant"]))

    # the same key gets the same arm on every call; the plain name is split, explicit refs are not
    again = await ok(mc, "predict", {"model": "ab", "rows": rows[:300], "request_keys": keys[:300], "max_results": 300})
    assert [p["variant"] for p in again["predictions"]] == [arm_of[k] for k in keys[:300]]
    pinned = await ok(mc, "predict", {"model": "ab/2", "rows": rows[:20], "request_keys": keys[:20], "max_results": 20})
    assert {p["variant"] for p in pinned["predictions"]} == {None} and pinned["versions"] == [2]
    other = await ok(mc, "predict", {"model": "ab@challenger", "rows": rows[:20], "max_results": 20})
    assert other["versions"] == [1] and {p["variant"] for p in other["predictions"]} == {"challenger"}
    champion = await ok(mc, "predict", {"model": "ab@champion", "rows": rows[:20], "request_keys": keys[:20], "max_results": 20})
    assert {p["variant"] for p in champion["predictions"]} == {"champion"}  # named alias: answered as asked
    random_rows = await ok(mc, "predict", {"model": "ab", "rows": rows[:40], "max_results": 40})  # no keys: random arm
    assert {p["variant"] for p in random_rows["predictions"]} <= {"a", "b"}
    ops.registry.set_alias("ab", "challenger", 2, "test", "restore")

    # feedback: the true outcome for every prediction of the test
    log = logged(shared, "ab", eid)
    truth = {}
    for r, k, t in zip(rows, keys, y):
        truth[k] = t
    ids_y = [{"prediction_id": pid, "actual": truth[k] if isinstance(k, str) else 1}
             for pid, k in zip(log["id"], log["request_key"])]
    fb = await ok(mc, "log_feedback", {"items": ids_y})
    assert fb["logged"] == len(log)

    read = await ok(mc, "get_ab_test", {"experiment_id": eid})
    # by hand: join predictions and feedback with pandas, outcome = prediction == label
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import Feedback

    with ops.store.read() as s:
        fbf = pd.DataFrame(s.execute(select(Feedback.prediction_id, Feedback.actual).where(Feedback.is_latest == True)).all(),  # noqa: E712
                           columns=["id", "actual"])
    joined = log.merge(fbf, on="id")
    joined["correct"] = (joined["output"].astype(int) == joined["actual"].astype(int)).astype(int)
    arms = {v: joined[joined["variant"] == v]["correct"] for v in ("a", "b")}
    a = stats.ArmData.from_binary(int(arms["a"].sum()), len(arms["a"]))
    b = stats.ArmData.from_binary(int(arms["b"].sum()), len(arms["b"]))
    ref = stats.live_summary(a, b, (0.7, 0.3), alpha=0.05, mde=0.02)
    assert read["arm_a"]["n_labeled"] == a.n and read["arm_b"]["n_labeled"] == b.n
    assert read["arm_a"]["n_assigned"] + read["arm_b"]["n_assigned"] == len(log)
    assert read["arm_a"]["metric"] == pytest.approx(a.mean) and read["arm_b"]["se"] == pytest.approx(ref.arm_b.se)
    assert read["effect"]["diff"] == pytest.approx(ref.diff) and read["effect"]["ci_low"] == pytest.approx(ref.ci_low)
    assert read["effect"]["relative"] == pytest.approx(ref.relative_effect)
    assert read["p_value"] == pytest.approx(ref.p_value) and read["test"] == "two_proportion_z"
    assert read["always_valid_p_value"] == pytest.approx(ref.always_valid_p_value)
    assert read["power"]["samples_needed_a"] == ref.samples_needed_a and read["power"]["power_reached"] == pytest.approx(ref.power_reached)
    assert read["srm"]["mismatch"] is False and read["looks"] == 1
    # sized for the always-valid rule (mixture tuned from mde = 0.02); the SRM check is sequential
    power = read["power"]
    assert power["method"] == "msprt_boundary" and power["mixture_tau2"] == pytest.approx(stats.mixture_variance(0.02))
    assert (power["required_n_a"], power["fixed_horizon_n_a"]) == (ref.required_n_a, ref.fixed_horizon_n_a)
    assert power["required_n_a"] > power["fixed_horizon_n_a"]
    counts = [int((log["variant"] == v).sum()) for v in ("a", "b")]
    assert read["srm"]["test"] == "sequential_multinomial"
    assert read["srm"]["p_value"] == pytest.approx(stats.srm_check(counts, [0.7, 0.3]).p_value)
    assert read["recommendation"] == ref.recommendation and read["reasons"]

    # correct the labels so that b is always right and a always wrong: the always-valid p-value falls,
    # b wins; then relabel to make the fresh p-value large again: the stored running minimum stays
    def forced_label(i: int, variant: str, out: Any) -> int:  # b right 80% of the time, a 50%
        right = i % 5 != 0 if variant == "b" else i % 2 == 0
        return int(out) if right else 1 - int(out)

    forced = [{"prediction_id": pid, "actual": forced_label(i, var, out)}
              for i, (pid, var, out) in enumerate(zip(log["id"], log["variant"], log["output"]))]
    await ok(mc, "log_feedback", {"items": forced, "source": "user"})
    won = await ok(mc, "get_ab_test", {"experiment_id": eid})
    assert won["recommendation"] == "b_wins" and won["always_valid_p_value"] < 1e-6 and won["looks"] == 2
    await ok(mc, "log_feedback", {"items": ids_y, "source": "user"})
    later = await ok(mc, "get_ab_test", {"experiment_id": eid})
    assert later["always_valid_p_value"] == pytest.approx(won["always_valid_p_value"]) and later["looks"] == 3
    await ok(mc, "log_feedback", {"items": forced, "source": "user"})

    # conclude: without confirmation nothing changes; with it champion moves to b
    dry = await ok(mc, "conclude_ab_test", {"experiment_id": eid, "promote_winner": True})
    assert dry["concluded"] is False and dry["winner"] == "b" and dry["champion_to"] == 2 and "confirm=true" in dry["message"]
    assert ops.registry.aliases("ab")["champion"] == 1
    done = await ok(mc, "conclude_ab_test", {"experiment_id": eid, "promote_winner": True, "reason": "b wins", "confirm": True})
    assert done["concluded"] and done["promoted"] and (done["champion_from"], done["champion_to"]) == (1, 2)
    assert ops.registry.aliases("ab")["champion"] == 2
    assert ops.registry.history("ab")[0]["reason"] == "b wins"
    text = await err(mc, "conclude_ab_test", {"experiment_id": eid, "confirm": True})
    assert "experiment_id" in text and "already concluded" in text
    final = await ok(mc, "get_ab_test", {"experiment_id": eid})
    assert final["status"] == "concluded" and final["recommendation"] == "b_wins"

    # the test is over: the plain name goes to the (new) champion alone
    after = await ok(mc, "predict", {"model": "ab", "rows": rows[:10], "request_keys": keys[:10], "max_results": 10})
    assert after["versions"] == [2] and {p["variant"] for p in after["predictions"]} == {"champion"}

    # resources
    listing = json.loads((await mc.read_resource("mlops://experiments")).contents[0].text)
    assert any(e["experiment_id"] == eid and e["status"] == "concluded" for e in listing["experiments"])
    one = json.loads((await mc.read_resource(f"mlops://experiments/{eid}")).contents[0].text)
    assert one["recommendation"] == "b_wins" and one["arm_b"]["version"] == 2


async def test_conclude_without_winner_refuses_promotion_and_elicits(shared: Any) -> None:
    asked: list[str] = []

    async def accept(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with Client(shared, elicitation_callback=accept, mode="legacy") as c:
        started = await ok(c, "start_ab_test", {"model": "sh", "variant_a": "1", "variant_b": "2"})
        eid = started["experiment_id"]
        text = await err(c, "conclude_ab_test", {"experiment_id": eid, "promote_winner": True})
        assert "promote_winner" in text and "no winner" in text
        assert shared.ops.registry.aliases("sh")["champion"] == 1
        done = await ok(c, "conclude_ab_test", {"experiment_id": eid})
        assert done["concluded"] and not done["promoted"] and done["recommendation"] == "keep_running"
    assert asked and f"Stop A/B test {eid}" in asked[-1]


async def test_srm_flags_forced_skew(mc: Client, shared: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_mcp.core.experiments import router as router_module

    started = await ok(mc, "start_ab_test", {"model": "sh", "variant_a": "1", "variant_b": "2"})
    eid = started["experiment_id"]
    # broken assignment: 62% of keys land in a although the split is 50/50
    monkeypatch.setattr(router_module, "arm_for", lambda e, key, split, rng=None: "a" if router_module.bucket(e, key) < 0.62 else "b")
    rows, _ = cycled(shared, 1000)
    await ok(mc, "predict", {"model": "sh", "rows": rows, "request_keys": [f"k{i}" for i in range(1000)], "max_results": 0})
    read = await ok(mc, "get_ab_test", {"experiment_id": eid})
    assert read["srm"]["mismatch"] is True and read["srm"]["p_value"] < 0.001
    assert read["recommendation"] == "investigate_assignment" and "sample ratio mismatch" in read["reasons"][0]
    await ok(mc, "conclude_ab_test", {"experiment_id": eid, "confirm": True})
    text = await err(mc, "get_ab_test", {"experiment_id": 999})
    assert "experiment_id" in text and "no A/B test with id 999" in text


async def test_concurrent_looks_keep_the_running_minimum(
    mc: Client, shared: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 get_ab_test calls at once, all reading the row before any writes: each look is counted, and
    the stored always-valid p-value is the smallest any of them saw, whatever order they write in."""
    import threading

    from mlops_mcp.core.experiments import live
    from mlops_mcp.core.store.tables import ExperimentRow

    eid = (await ok(mc, "start_ab_test", {"model": "sh", "variant_a": "1", "variant_b": "2"}))["experiment_id"]
    real, calls, lock = live.compute, [], threading.Lock()
    everyone_read = threading.Barrier(8, timeout=20)

    def compute(row: Any, rows: Any) -> dict[str, Any]:
        with lock:
            i = len(calls)
            calls.append(i)
        summary = real(row, rows)
        everyone_read.wait()  # all 8 have read the row (always_valid_p still empty)
        time.sleep(0.05 * i)  # ...and write in order of rising p: the last writer holds the largest
        previous = 1.0 if row.always_valid_p is None else row.always_valid_p
        summary["always_valid_p_value"] = min(previous, 0.01 * (i + 1))
        return summary

    monkeypatch.setattr(live, "compute", compute)
    seen: list[float] = []

    async def look() -> None:
        seen.append((await ok(mc, "get_ab_test", {"experiment_id": eid}))["always_valid_p_value"])

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(look)
    monkeypatch.undo()
    with shared.ops.store.read() as s:
        row = s.get(ExperimentRow, eid)
        stored, looks = row.always_valid_p, row.looks
    assert sorted(seen) == pytest.approx([0.01 * (i + 1) for i in range(8)])
    assert stored == pytest.approx(min(seen)) and looks == 8
    await ok(mc, "conclude_ab_test", {"experiment_id": eid, "confirm": True})


def test_router_does_not_keep_a_snapshot_read_before_invalidate() -> None:
    """A read that began before invalidate() (a test concluded meanwhile) answers its caller but is
    not cached: the next call reads again and sees the test gone."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from mlops_mcp.core.experiments.router import ExperimentRouter

    running = [SimpleNamespace(id=7, kind="ab", model="m", version_a=1, version_b=2, traffic_split=0.5)]
    reads: list[int] = []

    class Store:
        @contextmanager
        def read(self) -> Any:
            reads.append(1)
            snapshot = list(running)
            if len(reads) == 1:  # concluded (and the cache invalidated) while this read is under way
                running.clear()
                router.invalidate()
            yield SimpleNamespace(scalars=lambda query: snapshot)

    router = ExperimentRouter(registry=None, store=Store(), ttl=3600)  # type: ignore[arg-type]
    assert "m" in router.active()[0]
    assert router.active()[0] == {} and len(reads) == 2
    assert router.active()[0] == {} and len(reads) == 2  # a snapshot taken after invalidate() is cached


# -- shadow -----------------------------------------------------------------------------------------
async def test_shadow_mirrors_without_changing_answers(mc: Client, shared: Any) -> None:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import ShadowPredictionRow

    text = await err(mc, "start_shadow", {"model": "sh", "variant": "champion"})
    assert "variant" in text and "champion" in text
    text = await err(mc, "start_shadow", {"model": "sh", "sample_rate": 0})
    assert "sample_rate" in text
    text = await err(mc, "stop_shadow", {"model": "sh"})
    assert "model" in text and "no shadow is running" in text

    rows, y = recent(shared)
    rows, y = rows[:120], y[:120]
    before = await ok(mc, "predict", {"model": "sh/1", "rows": rows, "max_results": 120})
    started = await ok(mc, "start_shadow", {"model": "sh", "variant": "challenger"})
    sid = started["experiment_id"]
    assert started["shadow_version"] == 2 and started["champion_version"] == 1
    text = await err(mc, "start_shadow", {"model": "sh"})
    assert f"shadow {sid} (version 2) is already running" in text

    served = await ok(mc, "predict", {"model": "sh", "rows": rows, "max_results": 120})
    assert served["versions"] == [1]
    assert [p["prediction"] for p in served["predictions"]] == [p["prediction"] for p in before["predictions"]]
    assert [p["score"] for p in served["predictions"]] == [p["score"] for p in before["predictions"]]

    report = await ok(mc, "get_shadow_report", {"model": "sh"})
    assert report["mirrored"] == 120 and report["compared"] == 120 and report["shadow_errors"] == 0
    with shared.ops.store.read() as s:
        shadow_rows = s.execute(select(ShadowPredictionRow.prediction_id, ShadowPredictionRow.output, ShadowPredictionRow.score)
                                .where(ShadowPredictionRow.experiment_id == sid)).all()
    by_id = {pid: (out, score) for pid, out, score in shadow_rows}
    v2 = await ok(mc, "predict", {"model": "sh/2", "rows": rows, "max_results": 120})
    for primary, direct in zip(served["predictions"], v2["predictions"]):
        assert by_id[primary["prediction_id"]][0] == direct["prediction"]
        assert by_id[primary["prediction_id"]][1] == pytest.approx(direct["score"])
    agree = np.mean([p["prediction"] == q["prediction"] for p, q in zip(served["predictions"], v2["predictions"])])
    assert report["agreement_rate"] == pytest.approx(agree)
    assert report["agreement_ci_low"] <= agree <= report["agreement_ci_high"]
    assert report["latency_shadow_p50_ms"] is not None and report["n_labeled"] == 0

    await ok(mc, "log_feedback", {"items": [{"prediction_id": p["prediction_id"], "actual": t} for p, t in zip(served["predictions"], y)]})
    labeled = await ok(mc, "get_shadow_report", {"model": "sh"})
    assert labeled["n_labeled"] == 120 and labeled["metric"] == "accuracy"
    assert labeled["metric_primary"] == pytest.approx(np.mean([p["prediction"] == t for p, t in zip(served["predictions"], y)]))
    assert labeled["metric_shadow"] == pytest.approx(np.mean([p["prediction"] == t for p, t in zip(v2["predictions"], y)]))
    assert labeled["labeled_test"]["test"].startswith("mcnemar")

    # a failing, slow shadow: the caller neither waits nor sees the error
    reg = shared.ops.registry
    loaded = reg.load(reg.version("sh", 2))
    saved = loaded.model, loaded.encoder

    class Exploding:
        def predict_proba(self, X: Any) -> Any:
            time.sleep(1.0)
            raise RuntimeError("shadow model exploded")

        predict = predict_proba

    loaded.model, loaded.encoder = Exploding(), None
    try:
        t0 = time.perf_counter()
        res = await ok(mc, "predict", {"model": "sh", "rows": rows[:30], "max_results": 30})
        elapsed = time.perf_counter() - t0
        assert elapsed < 0.8, elapsed
        assert [p["prediction"] for p in res["predictions"]] == [p["prediction"] for p in before["predictions"][:30]]
        broken = await ok(mc, "get_shadow_report", {"model": "sh"})
    finally:
        loaded.model, loaded.encoder = saved
    assert broken["shadow_errors"] == 30 and broken["mirrored"] == 150
    assert any("shadow model exploded" in e for e in broken["error_examples"])

    one = json.loads((await mc.read_resource(f"mlops://experiments/{sid}")).contents[0].text)
    assert one["kind"] == "shadow" and one["shadow_errors"] == 30
    stopped = await ok(mc, "stop_shadow", {"model": "sh"})
    assert stopped["status"] == "stopped"
    await ok(mc, "predict", {"model": "sh", "rows": rows[:5]})
    final = await ok(mc, "get_shadow_report", {"model": "sh"})
    assert final["mirrored"] == 150 and final["status"] == "stopped"


async def test_sample_rate_and_assignment_helpers(shared: Any) -> None:
    from mlops_mcp.core.experiments.router import arm_for, bucket

    assert bucket(1, "x") == bucket(1, "x") and bucket(1, "x") != bucket(2, "x")
    arms = [arm_for(7, f"k{i}", 0.5) for i in range(4000)]
    assert abs(arms.count("b") / 4000 - 0.5) < 0.03
    assert all(arm_for(7, f"k{i}", 0.5) == arms[i] for i in range(200))


async def test_http_predict_route_is_split(shared: Any) -> None:
    """The REST route for applications goes through the same router: split by key, logged arms."""
    import httpx

    from mlops_mcp.server.http import build_http_app

    ops = shared.ops
    app = build_http_app(shared, ops.settings)
    async with Client(shared) as c:
        ab = await ok(c, "start_ab_test", {"model": "sh", "variant_a": "1", "variant_b": "2", "traffic_split": 0.5})
    rows, _ = cycled(shared, 200)
    keys = [f"http-{i}" for i in range(200)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        res = await http.post("/v1/models/sh/predict", json={"rows": rows, "request_keys": keys})
        again = await http.post("/v1/models/sh/predict", json={"rows": rows[:50], "request_keys": keys[:50]})
    assert res.status_code == 200, res.text
    first = res.json()["predictions"]
    assert {p["variant"] for p in first} == {"a", "b"}
    assert [p["variant"] for p in again.json()["predictions"]] == [p["variant"] for p in first[:50]]
    log = logged(shared, "sh", ab["experiment_id"])
    assert len(log) == 250 and set(log["version"]) == {1, 2}
    async with Client(shared) as c:
        await ok(c, "conclude_ab_test", {"experiment_id": ab["experiment_id"], "confirm": True})
