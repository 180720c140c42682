"""Feedback through the in-memory MCP client: the NBA story end to end (the model's accuracy falls
after the rule change), the three input forms, corrections with history, unknown ids, wrong types
(nothing written), the chart as image content next to the structured result, the resource, and 8
concurrent writers on SQLite and PostgreSQL."""

import base64
import json
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from mcp import Client
from sklearn import metrics as skm

from mlops_mcp.core.config import Settings
from mlops_mcp.core.feedback.labels import feedback_history, iter_dataset, log_feedback
from mlops_mcp.server.app import build_server
from tests.helpers import EXCLUDE, tool_error_text
from tests.test_performance import insert_predictions, utc

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def nba(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server with nba-win v1 (champion) trained on the seasons before the rule change, and the
    post-change games predicted (logged) once. 400 games a season: with 200 the 80-row holdout
    makes the training baseline a coin flip (0.51) and the story untestable."""
    home = tmp_path_factory.mktemp("nba-home")
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops = server.ops
    ops.generate_demo_data(seasons=3, games_per_season=400, rule_change_season=2023)
    trained = ops.train(model="nba-win", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, alias="champion")
    recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
    batch = ops.predict_batch("nba-win", recent[trained.features].to_dict("records"))
    yield {"server": server, "ops": ops, "home": home, "trained": trained, "recent": recent, "batch": batch}
    ops.close()


def feedback_rows(ops: Any) -> int:
    from sqlalchemy import func, select

    from mlops_mcp.core.store.tables import Feedback

    with ops.store.read() as s:
        return int(s.scalar(select(func.count()).select_from(Feedback)))


async def test_nba_feedback_shows_decay_after_rule_change(nba: dict[str, Any]) -> None:
    batch, recent, trained = nba["batch"], nba["recent"], nba["trained"]
    truth = recent["home_win"].astype(int).tolist()
    items = [{"prediction_id": pid, "actual": y} for pid, y in zip(batch.ids, truth)]
    async with Client(nba["server"]) as c:
        r = await c.call_tool("log_feedback", {"items": items, "source": "box_scores"})
        assert not r.is_error, r.content
        assert r.structured_content["logged"] == len(items) and r.structured_content["unknown"] == 0
        assert r.structured_content["by_model"] == {"nba-win/1": len(items)}

        r = await c.call_tool("get_model_performance", {"model": "nba-win", "window": "1d"})
        assert not r.is_error, r.content
        rep = r.structured_content
    preds = np.array([row["prediction"] for row in batch.rows])
    scores = np.array([row["score"] for row in batch.rows])
    y = np.array(truth)
    live = rep["overall"]["metrics"]
    assert rep["overall"]["labeled"] == len(y) and rep["overall"]["label_coverage"] == 1.0
    assert live["accuracy"] == pytest.approx(skm.accuracy_score(y, preds), abs=1e-6)
    assert live["f1"] == pytest.approx(skm.f1_score(y, preds), abs=1e-6)
    assert live["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-4)
    assert rep["baseline"]["version"] == 1
    assert rep["baseline"]["metrics"]["accuracy"] == pytest.approx(trained.metrics["accuracy"], abs=1e-6)
    # the story: trained before the rule change, it does worse after it
    assert live["accuracy"] < rep["baseline"]["metrics"]["accuracy"] - 0.05
    assert rep["degraded"] is True and any("accuracy" in reason for reason in rep["reasons"])


async def test_plot_returns_image_and_structured_result(nba: dict[str, Any]) -> None:
    async with Client(nba["server"]) as c:
        r = await c.call_tool("get_model_performance", {"model": "nba-win", "window": "6h", "plot": True, "metric": "roc_auc"})
        assert not r.is_error, r.content
        kinds = [b.type for b in r.content]
        assert kinds == ["text", "image"]
        png = base64.b64decode(r.content[1].data)
        assert r.content[1].mime_type == "image/png" and png[:4] == b"\x89PNG"
        assert r.structured_content["model"] == "nba-win" and "overall" in r.structured_content
        assert r.structured_content["window"] == "6h" and "Degraded" in r.content[0].text

        bad = await c.call_tool("get_model_performance", {"model": "nba-win", "metric": "rmse", "plot": True})
        assert "metric" in tool_error_text(bad) and "accuracy" in tool_error_text(bad)
        bad = await c.call_tool("get_model_performance", {"model": "nba-win", "since": "last tuesday"})
        assert "since" in tool_error_text(bad) and "ISO 8601" in tool_error_text(bad)
        bad = await c.call_tool("get_model_performance", {"model": "no-such-model"})
        assert "nba-win" in tool_error_text(bad)

        res = await c.read_resource("mlops://models/nba-win/performance")
        data = json.loads(res.contents[0].text)
        assert data["overall"]["predictions"] >= len(nba["batch"].ids) and "degraded" in data


async def test_single_label_corrections_keep_history(nba: dict[str, Any]) -> None:
    ops = nba["ops"]
    pid = nba["batch"].ids[0]
    async with Client(nba["server"]) as c:
        first = await c.call_tool("log_feedback", {"prediction_id": pid, "actual": 0, "source": "user", "comment": "first guess"})
        assert first.structured_content["logged"] == 1
        again = await c.call_tool("log_feedback", {"prediction_id": pid, "actual": "1"})  # "1" -> class 1
        assert again.structured_content == {**again.structured_content, "logged": 1, "corrected": 1}
    history = [h for h in feedback_history(ops.store, pid) if h["source"] == "user"]
    assert [h["actual"] for h in history[-2:]] == [0, 1] and history[-2]["comment"] == "first guess"
    assert [h["is_current"] for h in history[-2:]] == [False, True]
    latest = [h for h in feedback_history(ops.store, pid) if h["is_latest"]]
    assert len(latest) == 1 and latest[0]["actual"] == 1 and latest[0]["source"] == "user"


async def test_unknown_ids_reported_and_wrong_type_writes_nothing(nba: dict[str, Any]) -> None:
    ops, ids = nba["ops"], nba["batch"].ids
    async with Client(nba["server"]) as c:
        items = [{"prediction_id": ids[1], "actual": 1}] + [{"prediction_id": f"missing{i}", "actual": 1} for i in range(15)]
        r = await c.call_tool("log_feedback", {"items": items, "source": "unknowns"})
        out = r.structured_content
        assert out["logged"] == 1 and out["unknown"] == 15 and len(out["unknown_ids"]) == 10
        assert out["unknown_ids"][0] == "missing0"

        before = feedback_rows(ops)
        bad = [{"prediction_id": ids[2], "actual": 1}, {"prediction_id": ids[3], "actual": "win"}]
        text = tool_error_text(await c.call_tool("log_feedback", {"items": bad}))
        assert "items[1]" in text and "'win'" in text and "classes: 0, 1" in text and "nothing was written" in text
        text = tool_error_text(await c.call_tool("log_feedback", {"prediction_id": ids[2], "actual": 2.5}))
        assert text.startswith("Error executing tool log_feedback: actual:") and "classes: 0, 1" in text
        assert feedback_rows(ops) == before

        none = tool_error_text(await c.call_tool("log_feedback", {}))
        assert "exactly one of" in none and "got none of them" in none
        two = tool_error_text(await c.call_tool("log_feedback", {"prediction_id": ids[2], "actual": 1, "dataset": "x.csv"}))
        assert "prediction_id and dataset" in two
        missing_actual = tool_error_text(await c.call_tool("log_feedback", {"prediction_id": ids[2]}))
        assert "actual" in missing_actual
        too_many = await c.call_tool("log_feedback", {"items": [{"prediction_id": "a", "actual": 1}] * 10_001})
        assert "items" in tool_error_text(too_many)
        assert feedback_rows(ops) == before


async def test_dataset_forms_stream_and_roll_back(nba: dict[str, Any], tmp_path: Path) -> None:
    ops, ids, home = nba["ops"], nba["batch"].ids, nba["home"]
    truth = nba["recent"]["home_win"].astype(int).tolist()
    folder = home / "data" / "labels"
    folder.mkdir(exist_ok=True)
    pd.DataFrame({"prediction_id": ids[:50], "actual": truth[:50], "extra": 1}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"prediction_id": ids[50:80] + ["nope"], "actual": truth[50:80] + [1]}).to_csv(folder / "b.csv", index=False)
    pd.DataFrame({"prediction_id": ids[:5], "label": 1}).to_csv(folder / "wrong_columns.csv", index=False)
    async with Client(nba["server"]) as c:
        r = await c.call_tool("log_feedback", {"dataset": "labels/a.parquet", "source": "files"})
        assert r.structured_content["logged"] == 50 and r.structured_content["rows_read"] == 50
        r = await c.call_tool("log_feedback", {"dataset": "labels/b.csv", "source": "files"})
        assert r.structured_content["logged"] == 30 and r.structured_content["unknown_ids"] == ["nope"]
        text = tool_error_text(await c.call_tool("log_feedback", {"dataset": "labels/wrong_columns.csv"}))
        assert "no column 'actual'" in text and "label" in text
        text = tool_error_text(await c.call_tool("log_feedback", {"dataset": "../../etc/passwd.csv"}))
        assert "dataset" in text

    # streamed in chunks of 7: a bad value in the last chunk rolls back the chunks already written
    values = truth[:30] + ["draw"]
    pd.DataFrame({"prediction_id": ids[:31], "actual": values}).to_csv(folder / "late_error.csv", index=False)
    chunks = list(iter_dataset(folder / "late_error.csv", chunk=7))
    assert len(chunks) == 5
    before = feedback_rows(ops)
    with pytest.raises(Exception, match="row 31 of the dataset.*'draw'"):
        log_feedback(ops.store, ops.registry, iter(chunks), source="chunks", form="dataset")
    assert feedback_rows(ops) == before


async def test_boolean_classes_accept_true_one_and_text(nba: dict[str, Any]) -> None:
    """A model trained on a bool target predicts true/false: labels given as true/false, 1/0 or
    "TRUE"/"false" all name those classes (and are stored as the bool class)."""
    ops, home, trained = nba["ops"], nba["home"], nba["trained"]
    frame = pd.read_parquet(home / "data" / "nba" / "train.parquet")
    frame.assign(home_win=frame.home_win.astype(bool)).to_parquet(home / "data" / "nba" / "train_bool.parquet")
    out = ops.train(model="nba-bool", dataset="nba/train_bool.parquet", target="home_win", exclude=EXCLUDE,
                    alias="champion")
    assert sorted(out.classes) == [False, True]
    rows = nba["recent"][trained.features].head(4).to_dict("records")
    async with Client(nba["server"]) as c:
        p = await c.call_tool("predict", {"model": "nba-bool", "rows": json.loads(json.dumps(rows, default=str))})
        assert not p.is_error, p.content
        preds = p.structured_content["predictions"]
        assert all(isinstance(x["prediction"], bool) for x in preds)
        ids = [x["prediction_id"] for x in preds]
        for pid, actual in zip(ids, [True, 1, "TRUE", 0]):
            r = await c.call_tool("log_feedback", {"prediction_id": pid, "actual": actual})
            assert not r.is_error, (actual, r.content)
            assert r.structured_content["logged"] == 1
        r = await c.call_tool("log_feedback", {"items": [{"prediction_id": ids[3], "actual": "false"}]})
        assert r.structured_content["corrected"] == 1
        text = tool_error_text(await c.call_tool("log_feedback", {"prediction_id": ids[0], "actual": 2}))
        assert "classes: False, True" in text
        rep = await c.call_tool("get_model_performance", {"model": "nba-bool"})
        assert not rep.is_error, rep.content
        assert rep.structured_content["overall"]["labeled"] == 4
    latest = [h["actual"] for pid in ids for h in feedback_history(ops.store, pid) if h["is_latest"]]
    assert latest == [True, True, True, False] and all(type(v) is bool for v in latest)


async def test_performance_unknown_version_is_not_found(nba: dict[str, Any]) -> None:
    async with Client(nba["server"]) as c:
        text = tool_error_text(await c.call_tool("get_model_performance", {"model": "nba-win/99"}))
        assert "version" in text and "no version 99" in text and "versions: 1" in text
        # an argument the tool does not take is refused, never silently dropped
        text = tool_error_text(await c.call_tool("get_model_performance", {"model": "nba-win", "version": 99}))
        assert "version: not an argument of get_model_performance" in text and "window" in text


# -- concurrency -------------------------------------------------------------------------------------
async def _concurrent_writers(server: Any) -> None:
    """8 writers x 1,000 labels, all at once; each also corrects the same 50 shared predictions."""
    ops = server.ops
    times = [{"created_at": utc(2031, 1, 1, i % 24), "output": 1, "score": 0.7} for i in range(8 * 950 + 50)]
    ids = insert_predictions(ops.store, "conc", times)
    shared, own = ids[:50], ids[50:]
    results: list[dict[str, Any]] = []

    async with Client(server) as c:

        async def writer(w: int) -> None:
            mine = own[w * 950 : (w + 1) * 950] + shared
            items = [{"prediction_id": p, "actual": w % 2} for p in mine]
            r = await c.call_tool("log_feedback", {"items": items, "source": "load"})
            assert not r.is_error, r.content
            results.append(r.structured_content)

        async with anyio.create_task_group() as tg:
            for w in range(8):
                tg.start_soon(writer, w)

    from sqlalchemy import func, select

    from mlops_mcp.core.store.tables import Feedback

    assert sum(r["logged"] for r in results) == 8000
    assert sum(r["corrected"] for r in results) == 7 * 50  # every writer but the first corrected the shared ones
    with ops.store.read() as s:
        assert s.scalar(select(func.count()).select_from(Feedback).where(Feedback.model == "conc")) == 8000
        current = s.scalar(select(func.count()).select_from(Feedback).where(Feedback.model == "conc", Feedback.is_current == True))  # noqa: E712
        latest = s.scalar(select(func.count()).select_from(Feedback).where(Feedback.model == "conc", Feedback.is_latest == True))  # noqa: E712
    assert current == latest == 8 * 950 + 50
    rep = (await _report(server))["overall"]
    assert rep["predictions"] == 7650 and rep["labeled"] == 7650


async def _report(server: Any) -> dict[str, Any]:
    from mlops_mcp.core.feedback.performance import model_performance

    return await anyio.to_thread.run_sync(lambda: model_performance(server.ops.store, server.ops.registry, "conc"))


async def test_concurrent_writers_lose_nothing_sqlite(server: Any) -> None:
    await _concurrent_writers(server)


@pytest.mark.postgres
async def test_concurrent_writers_lose_nothing_postgres(postgres_url: str, tmp_path: Path) -> None:
    server = build_server(Settings(home=tmp_path / "pg-home", database_url=postgres_url, _env_file=None))  # type: ignore[call-arg]
    try:
        assert not server.ops.store.is_sqlite
        await _concurrent_writers(server)
    finally:
        server.ops.close()


# -- the same guarantees on both stores (issue 12, point 7: PostgreSQL writes set-based) ----------
def _scenario(store: Any, folder: Path) -> list[Any]:
    """Streamed file with repeats across chunks, a second pass, another source, unknown ids, and a
    bad value in the last chunk: every summary and the final table, for comparison across stores."""
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import Feedback

    times = [{"id": f"p{i:03d}", "created_at": utc(2031, 2, 1, i % 24), "output": i % 2, "score": 0.6} for i in range(40)]
    insert_predictions(store, "stores", times)
    ids = [t["id"] for t in times]
    # p000 three times in different chunks (7 rows each), p001 twice in one chunk
    file_ids = ids[:20] + ["p000", "p001", "p001", "ghost1"] + ids[20:30] + ["p000", "ghost2"]
    actuals = [i % 2 for i in range(len(file_ids))]
    pd.DataFrame({"prediction_id": file_ids, "actual": actuals}).to_csv(folder / "labels.csv", index=False)
    out = [log_feedback(store, None, iter_dataset(folder / "labels.csv", chunk=7), source="files", form="dataset")]
    out.append(log_feedback(store, None, iter_dataset(folder / "labels.csv", chunk=7), source="files", form="dataset"))
    out.append(log_feedback(store, None, [(ids[:5], [1, 1, 1, 1, 1])], source="audit", form="items"))
    pd.DataFrame({"prediction_id": ids[30:40], "actual": [0] * 9 + ["draw"]}).to_csv(folder / "bad.csv", index=False)
    with pytest.raises(Exception, match="row 10 of the dataset.*'draw'.*nothing was written"):
        log_feedback(store, None, iter_dataset(folder / "bad.csv", chunk=3), source="files", form="dataset")
    out.append(log_feedback(store, None, [(ids[30:32], [1, 0])], source="files", form="items"))  # the store is usable
    with store.read() as s:
        rows = s.execute(
            select(Feedback.prediction_id, Feedback.actual, Feedback.source, Feedback.is_current, Feedback.is_latest,
                   Feedback.version, Feedback.output, Feedback.score, Feedback.predicted_at).order_by(Feedback.id)
        ).all()
    out.append([tuple(r) for r in rows])
    return out


@pytest.mark.postgres
def test_postgres_keeps_the_sqlite_guarantees_label_for_label(postgres_url: str, tmp_path: Path) -> None:
    from mlops_mcp.core.store import Store

    sqlite = Store(f"sqlite:///{tmp_path / 'a.db'}")
    postgres = Store(postgres_url)
    try:
        expected = _scenario(sqlite, tmp_path)
        got = _scenario(postgres, tmp_path)
    finally:
        sqlite.dispose()
        postgres.dispose()
    first, second, other, after_error, table = expected
    assert first["logged"] == 34 and first["unknown"] == 2 and first["corrected"] == 4  # in-call repeats
    assert second["logged"] == 34 and second["corrected"] == 34  # every label again: all corrections
    assert other["corrected"] == 0 and after_error["logged"] == 2
    latest = {r[0]: r for r in table if r[4]}
    assert len(latest) == 32 and all(latest[p][2] == "audit" for p in ("p000", "p004"))
    current_files = [r for r in table if r[3] and r[2] == "files"]
    assert len(current_files) == 32 and len({r[0] for r in current_files}) == 32
    assert got == expected
