"""Monitoring through a real MCP client and the store: every /metrics figure checked against an
independent count of the store's tables (and sklearn for the live metric), get_model_health's
numbers and alerts, label corrections, A/B and shadow figures against get_ab_test and
get_shadow_report, the MCP App link, bad input (unknown model, unreachable store, label values
Prometheus must escape), and the rollups the migration backfills equal to the ones written live."""

import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pandas as pd
import pytest
from mcp import Client
from sklearn.metrics import accuracy_score
from sqlalchemy import func, select

from mlops_mcp.core.config import Settings
from mlops_mcp.core.monitoring import rollups
from mlops_mcp.core.monitoring.results import HEALTH_APP_URI
from mlops_mcp.core.store.tables import Feedback, Prediction
from mlops_mcp.server.app import build_server
from tests.helpers import EXCLUDE, copy_home, sample, scrape_samples, tool_error_text

pytestmark = pytest.mark.anyio

MODEL = "nba-win"


@pytest.fixture(scope="module")
def mon(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = copy_home(trained_home, tmp_path_factory.mktemp("monitoring") / "home")
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
    features = [c for c in recent.columns if c not in [*EXCLUDE, "home_win"]]
    yield {"server": server, "ops": server.ops, "recent": recent, "features": features, "state": {}}
    server.ops.close()


def rows(mon: dict[str, Any], start: int, n: int) -> list[dict[str, Any]]:
    return mon["recent"][mon["features"]].iloc[start : start + n].to_dict("records")


def count(ops: Any, *where: Any) -> int:
    with ops.store.read() as s:
        return int(s.scalar(select(func.count()).select_from(Prediction).where(*where)))


def scrape(ops: Any) -> dict[Any, float]:
    return scrape_samples(ops.metrics_text().decode())


def independent_accuracy(ops: Any, version: int) -> tuple[float, int]:
    """Accuracy of the newest label of every labeled prediction of ``version``, joined here."""
    with ops.store.read() as s:
        pairs = s.execute(
            select(Prediction.output, Feedback.actual)
            .join(Feedback, Feedback.prediction_id == Prediction.id)
            .where(Feedback.is_latest == True, Prediction.model == MODEL, Prediction.version == version)  # noqa: E712
        ).all()
    return accuracy_score([a for _, a in pairs], [o for o, _ in pairs]), len(pairs)


async def test_metrics_equal_the_store_counts(mon: dict[str, Any]) -> None:
    ops, truth = mon["ops"], mon["recent"]["home_win"].astype(int).tolist()
    champion_ids: list[str] = []
    async with Client(mon["server"]) as c:
        for i in range(5):
            r = await c.call_tool("predict", {"model": MODEL, "rows": rows(mon, 40 * i, 40)})
            assert not r.is_error, r.content
            champion_ids += [p["prediction_id"] for p in r.structured_content["predictions"]]
        for i in range(2):
            assert not (await c.call_tool("predict", {"model": f"{MODEL}/2", "rows": rows(mon, 200 + 40 * i, 40)})).is_error
        assert not (await c.call_tool("predict", {"model": f"{MODEL}@challenger", "rows": rows(mon, 100, 40)})).is_error
        bad = rows(mon, 0, 1)
        bad[0].pop(mon["features"][0])
        assert (await c.call_tool("predict", {"model": MODEL, "rows": bad})).is_error  # invalid_input, a real model
        assert (await c.call_tool("predict", {"model": "no-such-model", "rows": rows(mon, 0, 1)})).is_error
        for _ in range(2):
            assert not (await c.call_tool("get_server_info", {})).is_error
        items = [{"prediction_id": pid, "actual": y} for pid, y in zip(champion_ids[:150], truth[:150])]
        assert not (await c.call_tool("log_feedback", {"items": items})).is_error
        # corrections: the same source again, ten labels flipped
        fixes = [{"prediction_id": pid, "actual": 1 - y} for pid, y in zip(champion_ids[:10], truth[:10])]
        r = await c.call_tool("log_feedback", {"items": fixes})
        assert r.structured_content["corrected"] == 10

    s = scrape(ops)
    v1 = (Prediction.model == MODEL, Prediction.version == 1)
    assert sample(s, "mlops_predictions_total", model=MODEL, version=1, variant="champion") == count(ops, *v1, Prediction.variant == "champion") == 200
    assert sample(s, "mlops_predictions_total", model=MODEL, version=2, variant="") == count(ops, Prediction.version == 2, Prediction.variant.is_(None)) == 80
    assert sample(s, "mlops_predictions_total", model=MODEL, version=2, variant="challenger") == 40
    # one request per successful predict call; the sum of their latencies as the log recorded them
    with ops.store.read() as sess:
        batches = sess.execute(select(Prediction.latency_ms).where(Prediction.model == MODEL).distinct()).scalars().all()
    assert sample(s, "mlops_prediction_latency_seconds_count", model=MODEL) == len(batches) == 8
    assert sample(s, "mlops_prediction_latency_seconds_sum", model=MODEL) == pytest.approx(sum(batches) / 1000, rel=1e-9)
    assert sample(s, "mlops_prediction_latency_seconds_bucket", model=MODEL, le="+Inf") == 8
    assert sample(s, "mlops_prediction_errors_total", model=MODEL, reason="invalid_input") == 1
    assert sample(s, "mlops_prediction_errors_total", model="", reason="not_found") == 1  # a typo is never a label
    assert sample(s, "mlops_tool_calls_total", tool="predict", outcome="ok") == 8
    assert sample(s, "mlops_tool_calls_total", tool="predict", outcome="error") == 2
    assert sample(s, "mlops_tool_calls_total", tool="get_server_info", outcome="ok") == 2
    assert sample(s, "mlops_tool_call_duration_seconds_count", tool="predict") == 10
    with ops.store.read() as sess:
        labels = sess.scalar(select(func.count()).select_from(Feedback))
        labeled = sess.scalar(select(func.count(func.distinct(Feedback.prediction_id))))
    assert sample(s, "mlops_feedback_labels_total", model=MODEL, version=1) == labels == 160
    assert sample(s, "mlops_labeled_predictions_total", model=MODEL, version=1) == labeled == 150
    assert sample(s, "mlops_label_lag_seconds_count", model=MODEL) == 150
    acc, n = independent_accuracy(ops, 1)
    assert n == 150
    assert sample(s, "mlops_live_metric", model=MODEL, version=1, metric="accuracy") == pytest.approx(acc, abs=1e-12)
    assert sample(s, "mlops_live_labeled_predictions", model=MODEL, version=1) == 150
    assert sample(s, "mlops_label_coverage_ratio", model=MODEL, version=1) == pytest.approx(150 / 200)
    assert sample(s, "mlops_model_info", model=MODEL, version=1, alias="champion") == 1
    assert sample(s, "mlops_alias_version", model=MODEL, alias="challenger") == 2
    # the training baseline arrives from MLflow in the background (a scrape never waits on it)
    deadline = time.monotonic() + 20
    while sample(s, "mlops_baseline_metric", model=MODEL, version=1, metric="accuracy") is None and time.monotonic() < deadline:
        await anyio.sleep(0.1)
        s = scrape(ops)
    base = ops.get_version(MODEL, 1).metrics["accuracy"]
    assert sample(s, "mlops_baseline_metric", model=MODEL, version=1, metric="accuracy") == pytest.approx(base)
    assert sample(s, "mlops_quality_degraded", model=MODEL, version=1) == float(acc < base - 0.05)
    mon["state"].update(accuracy=acc, baseline=base)


async def test_health_through_the_client(mon: dict[str, Any]) -> None:
    ops = mon["ops"]
    async with Client(mon["server"]) as c:
        r = await c.call_tool("get_model_health", {"model": MODEL})
        assert not r.is_error, r.content
        h = r.structured_content
        assert len(json.dumps(h)) < 5000  # well under 2,000 tokens
        text = r.content[0].text
        assert f"'{MODEL}' health" in text and "champion v1" in text
        assert h["aliases"] == {"champion": 1, "challenger": 2}
        t = h["traffic"]
        assert t["predictions"] == count(ops, Prediction.model == MODEL) == 320
        assert t["by_version"] == {"1": 200, "2": 120}
        assert sum(t["hourly"]) == 320 and len(t["hourly"]) == 24
        assert t["requests"] == 8 and t["errors"] == 1 and t["error_rate"] == pytest.approx(1 / 9, abs=1e-4)
        assert 0 < t["latency"]["p50_ms"] <= t["latency"]["p95_ms"] <= t["latency"]["p99_ms"] <= 2500
        q = h["quality"][0]
        assert q["version"] == 1 and q["labeled"] == 150 and q["predictions"] == 200
        assert q["live"]["accuracy"] == pytest.approx(mon["state"]["accuracy"], abs=1e-4)
        assert q["baseline"]["accuracy"] == pytest.approx(mon["state"]["baseline"], abs=1e-4)
        assert q["degraded"] == (mon["state"]["accuracy"] < mon["state"]["baseline"] - 0.05)
        assert h["drift"] is None and any(call.startswith("check_drift") for call in h["next_calls"])
        names = {a["name"] for a in h["alerts"]}
        assert ("MLOpsQualityDegraded" in names) == q["degraded"]
        # the error share is 1 in 9 requests: above 5%, the rules file's PredictionErrors
        assert "MLOpsPredictionErrors" in names and h["status"] == "critical"
        assert "9 prediction requests, 8 answered (320 rows), 1 failed (11.1% of requests)" in text
        # v1 is the first champion: there is nothing to roll back to, so no rollback is suggested
        assert ops.registry.rollback_candidate(MODEL) is None
        assert not any(call.startswith("rollback_model") for call in h["next_calls"])

        # a drifted check (the rule change moved the features; a low drift_share makes it dataset drift)
        d = await c.call_tool("check_drift", {"model": MODEL, "dataset": "nba/recent.parquet", "drift_share": 0.2})
        assert not d.is_error and d.structured_content["drift_detected"] is True
        report = d.structured_content
        h = (await c.call_tool("get_model_health", {"model": MODEL})).structured_content
        # once the champion moves to v2 (and the challenger alias with it) the report on v1 is history:
        # no alert, and a check of the version serving now is suggested
        promoted = await c.call_tool("set_model_alias", {"model": MODEL, "alias": "champion", "version": 2, "confirm": True})
        assert not promoted.is_error, promoted.content
        moved = (await c.call_tool("get_model_health", {"model": MODEL})).structured_content
        back = await c.call_tool("set_model_alias", {"model": MODEL, "alias": "champion", "version": 1, "confirm": True})
        assert not back.is_error, back.content
    assert moved["drift"]["version"] == 1 and moved["aliases"] == {"champion": 2, "challenger": 2}
    assert "MLOpsDriftDetected" not in {a["name"] for a in moved["alerts"]}
    assert f"check_drift(model='{MODEL}')" in moved["next_calls"]
    drift = h["drift"]
    assert drift["report_id"] == report["report_id"] and drift["drift_detected"] is True
    assert drift["n_drifted"] == report["n_drifted"] and drift["share_drifted"] == pytest.approx(report["share_drifted"], abs=1e-4)
    ranked = sorted((c for c in report["columns"] if c["severity"] is not None), key=lambda c: -c["severity"])
    assert [f["feature"] for f in drift["top_features"]] == [c["column"] for c in ranked[:8]]
    alert = next(a for a in h["alerts"] if a["name"] == "MLOpsDriftDetected")
    assert "check_drift" in alert["runbook"] and MODEL in alert["summary"]
    s = scrape(ops)
    assert sample(s, "mlops_drift_detected", model=MODEL, version=1) == 1
    assert sample(s, "mlops_drift_share_threshold", model=MODEL) == 0.2
    top = ranked[0]
    assert sample(s, "mlops_drift_feature_severity", model=MODEL, feature=top["column"]) == pytest.approx(top["severity"])
    assert sample(s, "mlops_drift_feature_drifted", model=MODEL, feature=top["column"]) == float(top["drifted"])


async def test_health_bad_input(mon: dict[str, Any]) -> None:
    async with Client(mon["server"]) as c:
        err = tool_error_text(await c.call_tool("get_model_health", {"model": "nba-loss"}))
        assert "no registered model 'nba-loss'" in err and f"models: {MODEL}" in err
        err = tool_error_text(await c.call_tool("get_model_health", {"model": "bad name!"}))
        assert "model" in err and "not a valid model name" in err


async def test_health_links_its_app(mon: dict[str, Any]) -> None:
    async with Client(mon["server"]) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert tools["get_model_health"].meta == {"ui": {"resourceUri": HEALTH_APP_URI}}
        assert tools["predict"].meta is None
        read = await c.read_resource(HEALTH_APP_URI)
        content = read.contents[0]
        assert content.mime_type == "text/html;profile=mcp-app"
        html = content.text
        # self-contained: no script, style, image or font from anywhere (the default app CSP allows none)
        assert "<script src" not in html and "<link" not in html and "@import" not in html and "url(" not in html
        assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
        for tool in ("get_model_health", "get_model_performance", "get_model_history"):
            assert f'"{tool}"' in html and tools[tool].annotations.read_only_hint


async def test_ab_and_shadow_figures_match_their_reports(mon: dict[str, Any]) -> None:
    ops = mon["ops"]
    async with Client(mon["server"]) as c:
        r = await c.call_tool("start_shadow", {"model": MODEL, "variant": "challenger"})
        assert not r.is_error, r.content
        r = await c.call_tool("start_ab_test", {"model": MODEL, "traffic_split": 0.3})
        assert not r.is_error, r.content
        ab_id = r.structured_content["experiment_id"]
        for i in range(4):
            batch = rows(mon, 60 * i, 60)
            keys = [f"user-{60 * i + j}" for j in range(60)]
            assert not (await c.call_tool("predict", {"model": MODEL, "rows": batch, "request_keys": keys})).is_error
        shadow = (await c.call_tool("get_shadow_report", {"model": MODEL})).structured_content
        ab = (await c.call_tool("get_ab_test", {"experiment_id": ab_id})).structured_content
        health = (await c.call_tool("get_model_health", {"model": MODEL})).structured_content
    s = scrape(ops)
    assert shadow["compared"] > 0
    assert sample(s, "mlops_shadow_compared_predictions", model=MODEL, version=2) == shadow["compared"]
    assert sample(s, "mlops_shadow_agreement_ratio", model=MODEL, version=2) == pytest.approx(shadow["agreement_rate"], abs=1e-9)
    for arm, version in (("a", 1), ("b", 2)):
        assert sample(s, "mlops_ab_predictions", model=MODEL, arm=arm, version=version) == ab[f"arm_{arm}"]["n_assigned"]
    assert ab["arm_a"]["n_assigned"] + ab["arm_b"]["n_assigned"] == 240
    assert sample(s, "mlops_ab_sample_ratio_p_value", model=MODEL) == pytest.approx(ab["srm"]["p_value"], rel=1e-9)
    kinds = {e["kind"]: e for e in health["experiments"]}
    assert kinds["ab"]["predictions_a"] == ab["arm_a"]["n_assigned"] and kinds["shadow"]["compared"] == shadow["compared"]
    assert kinds["shadow"]["agreement"] == pytest.approx(shadow["agreement_rate"], abs=1e-4)


def test_rebuild_gives_the_rollups_written_live(mon: dict[str, Any]) -> None:
    """What the migration backfills from the tables equals what the live writes added (so a store
    upgraded with history reports the same counters as one that had monitoring from the start)."""
    ops = mon["ops"]
    store = ops.store
    mon["server"].ops.router.drain(10)

    def derived(conn: Any) -> dict[tuple[Any, ...], tuple[float, float, float]]:
        names = ", ".join(f"'{x}'" for x in rollups.DERIVED)
        got = conn.exec_driver_sql(
            f"SELECT series, hour, model, version, label, outcome, bucket, SUM(n), SUM(s1), SUM(s2) FROM metric_rollups "
            f"WHERE series IN ({names}) GROUP BY series, hour, model, version, label, outcome, bucket"
        ).all()
        return {tuple(r[:7]): (round(r[7], 6), round(r[8], 6), round(r[9], 6)) for r in got if abs(r[7]) + abs(r[8]) > 1e-12}

    with store.engine.connect() as conn:
        trans = conn.begin()
        live = derived(conn)
        rollups.rebuild(conn, store.is_sqlite)
        rebuilt = derived(conn)
        trans.rollback()
    assert {k[0] for k in live} >= {"pred", "req_lat", "labels", "labeled", "quality", "label_lag", "ab_arm", "shadow"}
    assert rebuilt == live


def test_migration_backfills_a_store_with_history(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from mlops_mcp.core.store import Store, upgrade

    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(store.engine, "0005")
    t0 = datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    records = [
        {"id": f"p{i}", "model": "m", "version": 1 + i % 2, "variant": "champion", "experiment_id": None, "request_key": None,
         "inputs": {}, "output": i % 2, "score": 0.5, "probabilities": {"0": 0.5, "1": 0.5}, "latency_ms": 2.0 + i // 10,
         "batch_size": 10, "created_at": t0 + timedelta(hours=i // 10)}
        for i in range(30)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(Prediction), records)
    store.migrate()
    totals = {(r[0], r[1], r[2], r[3]): r[6] for r in rollups.fetch(store, ("pred",))}
    assert totals == {("pred", "m", 1, "champion"): 15, ("pred", "m", 2, "champion"): 15}
    lat = rollups.fetch(store, ("req_lat",))
    assert sum(r[6] for r in lat) == pytest.approx(3)  # three batches of ten rows
    hours = {r[1] for r in rollups.fetch(store, ("pred",), since_hour=1)}
    assert hours == {rollups.hour_of(t0) + k for k in range(3)}
    store.dispose()


def test_label_values_are_escaped(tmp_path: Path) -> None:
    """Names Prometheus must escape in label values (quote, backslash, newline): a model registered
    outside this server, a dataset column. They round-trip through the exposition and its parser."""
    from datetime import UTC, datetime

    from mlops_mcp.core.engine import MLOps
    from mlops_mcp.core.store.tables import AliasEvent, DriftReportRow

    ops = MLOps(Settings(home=tmp_path / "home", _env_file=None))  # type: ignore[call-arg]
    name = 'we"ird\\model\nname'
    column = 'pts "per" game\\avg\n2'
    tally = rollups.Tally()
    tally.add(rollups.PRED, model=name, version=3, label="champion", hour=rollups.hour_of(time.time()), n=7)
    with ops.store.write() as session:
        rollups.write(session.connection(), tally, ops.store.is_sqlite)
        session.add(AliasEvent(model=name, alias="champion", from_version=None, to_version=3, kind="observed",
                               at=datetime.now(UTC), actor="test", reason=None))
        session.add(DriftReportRow(
            model=name, version=3, created_at=datetime.now(UTC), actor="test", reference_source="r", current_source="c",
            n_reference=1, n_current=1, method="auto", drift_detected=True, share_drifted=1.0, n_drifted=1, n_checked=1,
            drifted_columns=[column], prediction_drifted=None,
            report={"drift_share": 0.5, "columns": [{"column": column, "status": "ok", "severity": 2.5, "drifted": True}]},
        ))
    text = ops.metrics_text().decode()
    assert 'model="we\\"ird\\\\model\\nname"' in text  # escaped as the text format requires
    s = scrape_samples(text)
    assert sample(s, "mlops_predictions_total", model=name, version=3, variant="champion") == 7
    assert sample(s, "mlops_model_info", model=name, version=3, alias="champion") == 1
    assert sample(s, "mlops_drift_feature_severity", model=name, feature=column) == 2.5
    ops.close()


async def test_metrics_answer_503_when_the_store_is_unreachable(tmp_path: Path) -> None:
    from mlops_mcp.server.http import build_http_app

    settings = Settings(home=tmp_path / "home", database_url="postgresql://nobody@127.0.0.1:1/none", _env_file=None)  # type: ignore[call-arg]
    server = build_server(settings)
    app = build_http_app(server, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        for _ in range(2):  # and again: the server keeps answering
            r = await http.get("/metrics")
            assert r.status_code == 503
            assert r.text.startswith("store unreachable:") and "OperationalError" in r.text
    server.ops.close()


def test_next_calls_suggest_a_rollback_only_where_one_works() -> None:
    from mlops_mcp.core.monitoring.health import _next_calls
    from mlops_mcp.core.monitoring.results import Traffic

    traffic = Traffic(window_hours=24, predictions=10, requests=2, errors=0, error_rate=0.0, latency=None, by_version={}, hourly=[0] * 24)
    fired = [{"name": "MLOpsQualityDegraded"}]
    without = _next_calls("m", {"champion": 1}, traffic, [], None, [], fired, time.time(), None)
    with_target = _next_calls("m", {"champion": 2}, traffic, [], None, [], fired, time.time(), 1)
    assert not any(c.startswith("rollback_model") for c in without)
    assert "rollback_model(model='m')" in with_target
