"""Retraining through the in-memory MCP client on SQLite (jobs run by the worker inside the server):
a job end to end (data window, holdout neither model trained on, the gate's numbers against an
independent computation, MLflow tags), waiting with progress, the gate's other checks and
promotion into the alias history, cancelling a running job, policies (drift trigger storm and
cooldown, decay only once enough labels exist, cron schedules), bad input, resources."""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from mcp import Client
from sklearn import metrics as skm

from mlops_mcp.core.config import Settings
from mlops_mcp.server.app import build_server
from tests.helpers import EXCLUDE, tool_error_text

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def nba(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """nba-win v1 (gradient boosting, champion) trained on the seasons before the rule change; the
    400 games after it predicted (logged) and labeled."""
    home = tmp_path_factory.mktemp("retrain") / "home"
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops = server.ops
    ops.generate_demo_data(seasons=3, games_per_season=400, rule_change_season=2023)
    trained = ops.train(model="nba-win", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE, alias="champion")
    recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
    batch = ops.predict_batch("nba-win", recent[trained.features].to_dict("records"))
    ops.log_feedback(items=[{"prediction_id": pid, "actual": int(y)} for pid, y in zip(batch.ids, recent["home_win"])])
    yield {"server": server, "ops": ops, "home": home, "trained": trained, "recent": recent}
    ops.close()


async def call(c: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    r = await c.call_tool(tool, args)
    assert not r.is_error, r.content
    return r.structured_content


async def wait_job(c: Client, job_id: int, timeout: float = 180, until: Any = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await call(c, "get_retraining_job", {"job_id": job_id})
        if (until(job) if until else job["status"] not in ("queued", "running")) or time.monotonic() > deadline:
            return job
        await anyio.sleep(0.1)


def counts(ops: Any, model: str = "nba-win") -> tuple[int, int]:
    """(versions of the model, retraining jobs in the store)."""
    from sqlalchemy import func, select

    from mlops_mcp.core.store.tables import RetrainingJobRow

    with ops.store.read() as s:
        n_jobs = int(s.scalar(select(func.count()).select_from(RetrainingJobRow)))
    return len(ops.registry.versions(model)), n_jobs


async def test_retraining_job_end_to_end(nba: dict[str, Any]) -> None:
    ops, home = nba["ops"], nba["home"]
    async with Client(nba["server"]) as c:
        started = time.perf_counter()
        r = await c.call_tool("start_retraining", {"model": "nba-win", "reason": "rule change"})
        answered = time.perf_counter() - started
        assert not r.is_error, r.content
        first = r.structured_content
        assert first["status"] in ("queued", "running") and first["job"]["task"]["status"] == "working"
        assert first["job"]["task"]["task_id"] == f"retraining-{first['job_id']}"
        assert answered < 5  # answers before any training (the budget is a benchmark, not a test)
        job = await wait_job(c, first["job_id"])

    assert job["status"] in ("succeeded", "rejected_by_gate"), job
    assert job["trigger"] == "manual" and job["reason"] == "rule change" and job["champion_version"] == 1
    assert job["task"]["status"] == "completed" and job["percent"] == 100
    data = job["data"]
    # 400 labeled predictions since v1 was trained; 25% held out, stratified; the rest + v1's 800 rows trained on
    assert data["feedback_rows"] == 400 and data["dataset"] == "nba/train.parquet" and data["dataset_rows"] == 800
    assert data["holdout_rows"] == 100 and data["holdout_source"] == "labeled predictions" and data["holdout_stratified"]
    assert data["train_rows"] == 800 + 300 - data["train_dropped_duplicates_of_holdout"]
    holdout = pd.read_parquet(home / "data" / data["holdout_dataset"])
    train = pd.read_parquet(home / "data" / data["training_dataset"])
    assert len(holdout) == 100 and len(train) == data["train_rows"]
    # stratified: the class shares of the holdout match those of the 400 labeled games
    share = nba["recent"]["home_win"].mean()
    assert abs(holdout["home_win"].mean() - share) <= 1 / 100 + 1e-9
    # neither model trained on a held-out row: no row is shared with the new training set, and
    # run_ab_test's own training-row lookup finds none for either version
    key = lambda f: set(map(tuple, f.astype(str).to_numpy()))  # noqa: E731
    assert not key(holdout) & key(train)
    verdict = job["gate"]
    assert {v["status"] for v in verdict["training_overlap"].values()} == {"none"}

    # the paired test: the same numbers as run_ab_test on the holdout, and metrics equal to sklearn's
    new = job["new_version"]
    test = next(ch for ch in verdict["checks"] if ch["check"] == "significantly_better")
    assert verdict["metric"] == "roc_auc" and test["test"] == "delong"
    async with Client(nba["server"]) as c:
        ab = await call(c, "run_ab_test", {"model": "nba-win", "variant_a": "1", "variant_b": str(new),
                                           "dataset": data["holdout_dataset"]})
    assert ab["p_value"] == pytest.approx(test["p_value"], rel=1e-12) and ab["diff"] == pytest.approx(test["diff"], rel=1e-12)
    y = holdout["home_win"].to_numpy()
    for version, value in ((1, test["champion"]), (new, test["challenger"])):
        loaded = ops.registry.load(ops.registry.version("nba-win", version))
        scores = loaded.model.predict_proba(holdout[loaded.schema.features])[:, 1]
        assert value == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-9)
    assert test["passed"] == (test["p_value"] < 0.05 and test["diff"] > 0)
    assert verdict["passed"] == (job["status"] == "succeeded")

    # the version carries the verdict and its lineage (visible in mlflow ui)
    tags = ops.registry.version("nba-win", new).tags
    assert tags["mlops.parent_version"] == "1" and tags["mlops.retraining.job_id"] == str(job["job_id"])
    assert tags["mlops.retraining.trigger"] == "manual" and tags["mlops.retraining.verdict"] == verdict["verdict"]
    assert tags["mlops.dataset"] == data["training_dataset"]
    assert json.loads(tags["mlops.retraining.data_window"])["feedback_rows"] == 400
    assert json.loads(tags["mlops.retraining.gate"])["checks"][0]["p_value"] == pytest.approx(test["p_value"])
    aliases = ops.registry.aliases("nba-win")
    assert aliases["champion"] == 1
    if job["status"] == "succeeded":
        assert aliases["challenger"] == new and job["after_gate"]["performed"][0]["alias"] == "challenger"
    else:
        assert aliases.get("challenger") != new and job["after_gate"]["performed"] == []
    assert job["timings"]["fit_seconds"] > 0 and job["timings"]["total_seconds"] >= job["timings"]["fit_seconds"]


async def test_after_the_gate_a_shadow_or_an_ab_test_starts(nba: dict[str, Any]) -> None:
    """What follows a passed gate, on the version the first test registered (no new training)."""
    from types import SimpleNamespace

    from mlops_mcp.core.retraining import runner

    ops = nba["ops"]
    new = max(int(v.version) for v in ops.registry.versions("nba-win"))
    row = SimpleNamespace(id=9001, model="nba-win", trigger="manual", options={"after_gate": "ab_test"})
    verdict = {"passed": True, "summary": "passed (test)"}
    out = runner.act(ops, row, new, verdict)
    assert [p["kind"] for p in out["performed"]] == ["alias", "ab_test"] and ops.registry.aliases("nba-win")["challenger"] == new
    async with Client(nba["server"]) as c:
        ab = await call(c, "get_ab_test", {"experiment_id": out["performed"][1]["experiment_id"]})
        assert (ab["version_a"], ab["version_b"]) == (1, new)
        await call(c, "conclude_ab_test", {"experiment_id": ab["experiment_id"], "confirm": True})
        row.options = {"after_gate": "shadow"}
        out = runner.act(ops, row, new, verdict)
        assert out["performed"][1]["kind"] == "shadow" and "shadow" in out["message"]
        again = runner.act(ops, row, new, verdict)  # one shadow per model: said, not raised
        assert again["skipped"] and "already running" in again["skipped"][0]
        await call(c, "stop_shadow", {"model": "nba-win"})
        history = await call(c, "get_model_history", {"model": "nba-win"})
        assert history["events"][0]["actor"] == "retraining job 9001" and "passed (test)" in history["events"][0]["reason"]
    rejected = runner.act(ops, row, new, {"passed": False, "summary": "rejected"})
    assert rejected["performed"] == [] and "no alias moved" in rejected["message"]


async def test_gate_checks_and_auto_promotion_into_the_alias_history(nba: dict[str, Any]) -> None:
    ops = nba["ops"]
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message))

    async with Client(nba["server"]) as c:
        gate = {"require": "non_inferior", "margin": 0.5, "metric": "accuracy", "floors": {"accuracy": 0.99},
                "guardrails": {"log_loss": 10.0}}
        await call(c, "set_retraining_policy", {"model": "nba-win", "gate": gate, "on_drift": False, "on_decay": False})
        # wait=true follows the job to its end with MCP progress notifications
        r = await c.call_tool("start_retraining", {"model": "nba-win", "reason": "floors", "wait": True},
                              progress_callback=on_progress)
        assert not r.is_error, r.content
        job = r.structured_content["job"]
        assert len(progress) >= 3 and progress[-1][0] == pytest.approx(100.0)
        assert any("training" in (m or "") for _, m in progress)
        assert job["status"] == "rejected_by_gate", job
        checks = {ch["check"]: ch for ch in job["gate"]["checks"]}
        assert not checks["floor"]["passed"] and checks["floor"]["threshold"] == 0.99
        assert checks["non_inferior"]["passed"] and checks["guardrail"]["passed"]
        assert "challenger" not in ops.registry.aliases("nba-win") or ops.registry.aliases("nba-win")["challenger"] != job["new_version"]
        # non-inferiority reads the one-sided (1 - alpha) bound: run_ab_test's interval at 2 alpha
        ab = await call(c, "run_ab_test", {"model": "nba-win", "variant_a": "1", "variant_b": str(job["new_version"]),
                                           "dataset": job["data"]["holdout_dataset"], "metric": "accuracy", "alpha": 0.1})
        assert checks["non_inferior"]["ci_low"] == pytest.approx(ab["ci_low"], rel=1e-12)
        assert checks["floor"]["challenger"] == pytest.approx(ab["variant_b"]["metric"], abs=1e-12)

        # promote only with auto_promote, recorded in the alias history with the job as the reason
        r = await c.call_tool("set_retraining_policy", {"model": "nba-win", "after_gate": "promote"})
        assert "auto_promote" in tool_error_text(r)
        await call(c, "set_retraining_policy", {"model": "nba-win", "gate": {"require": "non_inferior", "margin": 0.5},
                                                "after_gate": "promote", "auto_promote": True, "on_drift": False, "on_decay": False})
        job = (await call(c, "start_retraining", {"model": "nba-win", "reason": "promote", "wait": True}))["job"]
        assert job["status"] == "succeeded", job
        assert ops.registry.aliases("nba-win")["champion"] == job["new_version"]
        history = await call(c, "get_model_history", {"model": "nba-win"})
        move = history["events"][0]
        assert (move["alias"], move["from_version"], move["to_version"]) == ("champion", 1, job["new_version"])
        assert f"retraining job {job['job_id']}" in move["reason"] and move["actor"] == f"retraining job {job['job_id']}"
        # back to the starting state for the other tests
        await call(c, "set_model_alias", {"model": "nba-win", "alias": "champion", "version": 1, "confirm": True})
        await call(c, "set_retraining_policy", {"model": "nba-win", "on_drift": False, "on_decay": False})


def test_thresholds_follow_mlflow_metric_threshold() -> None:
    """min_absolute_change / min_relative_change read as MLflow's validate_evaluation_results does."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult

    from mlops_mcp.core.retraining.gate import threshold_checks

    rng = np.random.default_rng(3)
    for _ in range(200):
        hib = bool(rng.integers(2))
        champion = float(rng.uniform(0.1, 2.0))
        challenger = champion + float(rng.normal(0, 0.2))
        absolute = float(rng.choice([0.01, 0.05, 0.1]))
        relative = float(rng.choice([0.01, 0.05, 0.2]))
        ours = {c["check"]: c["passed"] for c in threshold_checks("m", hib, challenger, champion, absolute, relative)}
        for kind, kwargs in (("min_absolute_change", {"min_absolute_change": absolute}),
                             ("min_relative_change", {"min_relative_change": relative})):
            threshold = MetricThreshold(greater_is_better=hib, **kwargs)
            try:
                mlflow.validate_evaluation_results({"m": threshold}, EvaluationResult({"m": challenger}, {}),
                                                   EvaluationResult({"m": champion}, {}))
                theirs = True
            except Exception:
                theirs = False
            assert ours[kind] == theirs, (kind, hib, challenger, champion, kwargs)
    # hand-worked: accuracy 0.80 -> 0.83 passes +0.02 but not +5% (0.84); rmse 10 -> 9.6 passes 3% (<= 9.7)
    checks = threshold_checks("accuracy", True, 0.83, 0.80, 0.02, 0.05)
    assert [c["passed"] for c in checks] == [True, False] and checks[1]["threshold"] == pytest.approx(0.84)
    assert threshold_checks("rmse", False, 9.6, 10.0, None, 0.03)[0]["passed"]
    assert not threshold_checks("rmse", False, 9.8, 10.0, None, 0.03)[0]["passed"]
    # a zero champion: strictly better is enough (MLflow's fallback)
    assert threshold_checks("r2", True, 0.001, 0.0, None, 0.5)[0]["passed"]
    assert not threshold_checks("r2", True, 0.0, 0.0, None, 0.5)[0]["passed"]


async def test_cancel_a_running_job_stops_it_and_registers_nothing(nba: dict[str, Any]) -> None:
    import os

    ops = nba["ops"]
    versions_before, _ = counts(ops)
    async with Client(nba["server"]) as c:
        job = await call(c, "start_retraining", {"model": "nba-win", "reason": "slow", "estimator": "random_forest",
                                                 "params": {"n_estimators": 1000, "max_depth": 12}})
        job_id = job["job_id"]
        running = await wait_job(c, job_id, until=lambda j: j["stage"] == "training" or j["status"] not in ("queued", "running"))
        assert running["stage"] == "training", running
        pid = ops.retraining and __import__("mlops_mcp.core.retraining.jobs", fromlist=["x"]).get_row(ops.store, job_id).child_pid
        dry = await call(c, "cancel_retraining_job", {"job_id": job_id})
        assert dry["cancelled"] is False and "Nothing changed" in dry["message"]
        done = await call(c, "cancel_retraining_job", {"job_id": job_id, "confirm": True})
        assert done["confirmed"] and done["cancelled"], done
        job = await wait_job(c, job_id)
        assert job["status"] == "cancelled" and job["new_version"] is None and job["task"]["status"] == "cancelled"
        assert "nothing was registered" in job["message"]
        # the training process is gone, nothing was registered, no files are left
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await anyio.sleep(0.1)
        else:
            pytest.fail(f"training process {pid} still alive")
        assert counts(ops)[0] == versions_before
        assert not list((nba["home"] / "data" / "retraining" / "nba-win").glob(f"job-{job_id}-*"))
        # a finished job cannot be cancelled: a clear error
        r = await c.call_tool("cancel_retraining_job", {"job_id": job_id, "confirm": True})
        assert "already cancelled" in tool_error_text(r)


async def test_bad_input_is_refused_and_nothing_is_written(nba: dict[str, Any]) -> None:
    ops = nba["ops"]
    ops.train(model="quiet", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE,
              estimator="logistic_regression", alias="champion")
    ops.train(model="headless", dataset="nba/train.parquet", target="home_win", exclude=EXCLUDE,
              estimator="logistic_regression", alias="challenger")
    if "champion" in ops.registry.aliases("headless"):  # a model's first version may become champion
        ops.registry.client.delete_registered_model_alias("headless", "champion")
    before = counts(ops)
    async with Client(nba["server"]) as c:
        cases = [
            ("start_retraining", {"model": "nba-lose"}, "no registered model 'nba-lose'"),
            ("start_retraining", {"model": "headless"}, "has no champion"),
            ("start_retraining", {"model": "quiet"}, "0 predictions of 'quiet' were logged"),
            ("start_retraining", {"model": "nba-win", "since": "2999-01-01"}, "in the future"),
            ("start_retraining", {"model": "nba-win", "after_gate": "promote"}, "auto_promote"),
            ("start_retraining", {"model": "nba-win", "estimator": "ridge"}, "does not do classification"),
            ("start_retraining", {"model": "nba-win", "dataset": "nba/missing.parquet"}, "missing.parquet"),
            ("set_retraining_policy", {"model": "nba-win", "schedule": "every monday"}, "not a 5-field cron"),
            ("set_retraining_policy", {"model": "nba-win", "schedule": "61 * * * *"}, "not a 5-field cron"),
            ("set_retraining_policy", {"model": "nba-win", "metric": "rmse"}, "'rmse' is not a classification metric"),
            ("set_retraining_policy", {"model": "nba-win", "gate": {"floors": {"r2": 0.1}}}, "'r2' is not a classification metric"),
            ("set_retraining_policy", {"model": "nba-win", "gate": {"require": "non_inferior"}}, "needs a margin"),
            ("set_retraining_policy", {"model": "nba-win", "cooldown": "soon"}, "not a duration"),
            ("set_retraining_policy", {"model": "nba-win", "after_gate": "promote"}, "auto_promote"),
            ("get_retraining_job", {"job_id": 99999}, "no retraining job 99999"),
            ("cancel_retraining_job", {"job_id": 99999, "confirm": True}, "no retraining job 99999"),
        ]
        for tool, args, expected in cases:
            r = await c.call_tool(tool, args)
            assert expected in tool_error_text(r), (tool, args, tool_error_text(r))
        policy = await c.call_tool("get_retraining_policy", {"model": "quiet"})
        assert "has no retraining policy" in tool_error_text(policy)
        assert counts(ops) == before
        # a second job for a model with one queued or running: the existing job id comes back, nothing new
        first = await call(c, "start_retraining", {"model": "nba-win", "reason": "one"})
        second = await c.call_tool("start_retraining", {"model": "nba-win", "reason": "two"})
        text = tool_error_text(second)
        assert f"retraining job {first['job_id']} of 'nba-win' is already" in text and "get_retraining_job" in text
        assert counts(ops)[1] == before[1] + 1
        await wait_job(c, first["job_id"])


async def test_drift_policy_storm_and_cooldown_make_one_job(nba: dict[str, Any]) -> None:
    ops = nba["ops"]
    async with Client(nba["server"]) as c:
        # no cooldown: earlier tests' jobs are minutes old and would absorb the trigger
        drift_policy = {"model": "nba-win", "on_drift": True, "drift_share": 0.1, "on_decay": False}
        await call(c, "set_retraining_policy", {**drift_policy, "cooldown": "0"})
        _, jobs_before = counts(ops)
        reports = [await call(c, "check_drift", {"model": "nba-win", "dataset": "nba/recent.parquet"}) for _ in range(3)]
        assert all(r["share_drifted"] >= 0.1 for r in reports)
        listed = await call(c, "list_retraining_jobs", {"model": "nba-win", "limit": 5})
        assert counts(ops)[1] == jobs_before + 1  # three reports in a row: one job
        job = listed["jobs"][0]
        assert job["trigger"] == "drift" and f"drift report {reports[0]['report_id']}" in job["reason"]
        job = await wait_job(c, job["job_id"])
        assert job["triggers"] == 3 and job["status"] in ("succeeded", "rejected_by_gate")
        # within the cooldown a new report folds into the finished job
        policy = await call(c, "set_retraining_policy", {**drift_policy, "cooldown": "1h"})
        assert policy["cooldown"] == "1h" and policy["cooldown_seconds"] == 3600
        await call(c, "check_drift", {"model": "nba-win", "dataset": "nba/recent.parquet"})
        policy = await call(c, "get_retraining_policy", {"model": "nba-win"})
        assert counts(ops)[1] == jobs_before + 1
        assert policy["last_trigger"]["job_id"] == job["job_id"] and policy["last_trigger"]["created"] is False
        # the resources show the same
        res = await c.read_resource("mlops://models/nba-win/retraining")
        view = json.loads(res.contents[0].text)  # type: ignore[union-attr]
        assert view["policy"]["drift_share"] == 0.1 and view["jobs"][0]["job_id"] == job["job_id"]
        res = await c.read_resource("mlops://retraining/jobs")
        assert json.loads(res.contents[0].text)["jobs"][0]["job_id"] == job["job_id"]  # type: ignore[union-attr]
        await call(c, "set_retraining_policy", {"model": "nba-win", "on_drift": False, "on_decay": False})


async def test_decay_fires_only_once_enough_labels_exist(nba: dict[str, Any]) -> None:
    from mlops_mcp.core.retraining import triggers

    ops, recent = nba["ops"], nba["recent"]
    # decay is judged on labels since the model's last job (earlier tests ran some): a fresh day of games
    batch = ops.predict_batch("nba-win", recent[nba["trained"].features].to_dict("records"))
    perf = ops.performance("nba-win/1")
    assert perf.degraded  # the champion trained before the rule change does worse after it
    async with Client(nba["server"]) as c:
        await call(c, "set_retraining_policy", {"model": "nba-win", "on_drift": False, "on_decay": True,
                                                "metric": "accuracy", "min_new_labels": 10_000, "cooldown": "0"})
        _, jobs_before = counts(ops)
        await call(c, "log_feedback", {"items": [{"prediction_id": pid, "actual": int(y)}
                                                 for pid, y in zip(batch.ids, recent["home_win"])]})
        assert counts(ops)[1] == jobs_before  # the feedback batch was evaluated: 400 labels < 10,000
        assert triggers.evaluate_model(ops, "nba-win", "feedback") is None
        await call(c, "set_retraining_policy", {"model": "nba-win", "on_drift": False, "on_decay": True,
                                                "metric": "accuracy", "min_new_labels": 300, "cooldown": "0"})
        fired = triggers.evaluate_model(ops, "nba-win", "feedback")
        assert fired is not None and fired["triggers"] == ["decay"] and fired["created"], fired
        assert "live accuracy of version 1" in fired["reason"]
        job = await wait_job(c, fired["job_id"])
        assert job["trigger"] == "decay" and job["status"] in ("succeeded", "rejected_by_gate")
        # nothing new since: the same labels are not judged again
        assert triggers.evaluate_model(ops, "nba-win", "feedback") is None
        assert counts(ops)[1] == jobs_before + 1
        await call(c, "set_retraining_policy", {"model": "nba-win", "on_drift": False, "on_decay": False})


def test_cron_ticks_fire_once() -> None:
    """A tick since the last check fires (several missed ticks fire once); checked against a
    hand-worked table for '*/15 * * * *' and '0 3 * * 1' (Mondays 03:00 UTC)."""
    from types import SimpleNamespace

    from croniter import croniter

    from mlops_mcp.core.retraining.policy import next_run
    from mlops_mcp.core.retraining.triggers import _schedule_due

    t0 = datetime(2024, 10, 21, 10, 1, tzinfo=UTC)  # a Monday
    row = SimpleNamespace(schedule="*/15 * * * *", schedule_checked_at=t0)
    assert _schedule_due(row, t0 + timedelta(minutes=13)) is None
    assert _schedule_due(row, t0 + timedelta(minutes=14)) == datetime(2024, 10, 21, 10, 15, tzinfo=UTC)
    assert _schedule_due(row, t0 + timedelta(hours=2)) == datetime(2024, 10, 21, 12, 0, tzinfo=UTC)  # 8 missed: one
    weekly = SimpleNamespace(schedule="0 3 * * 1", schedule_checked_at=t0)
    assert _schedule_due(weekly, datetime(2024, 10, 28, 2, 59, tzinfo=UTC)) is None
    assert _schedule_due(weekly, datetime(2024, 10, 28, 3, 0, tzinfo=UTC)) == datetime(2024, 10, 28, 3, 0, tzinfo=UTC)
    assert next_run("0 3 * * 1", t0) == croniter("0 3 * * 1", t0).get_next(datetime) == datetime(2024, 10, 28, 3, 0, tzinfo=UTC)


async def test_schedule_fires_a_job_once_per_tick(nba: dict[str, Any]) -> None:
    from sqlalchemy import update

    from mlops_mcp.core.retraining import triggers
    from mlops_mcp.core.store.tables import RetrainingPolicyRow

    ops = nba["ops"]
    async with Client(nba["server"]) as c:
        policy = await call(c, "set_retraining_policy", {"model": "nba-win", "on_drift": False, "on_decay": False,
                                                         "schedule": "0 3 * * 1", "cooldown": "0"})
        assert policy["next_run"] is not None
        t0 = datetime.now(UTC) - timedelta(days=8)
        with ops.store.write() as s:
            s.execute(update(RetrainingPolicyRow).where(RetrainingPolicyRow.model == "nba-win").values(schedule_checked_at=t0))
        _, jobs_before = counts(ops)
        fired = triggers.evaluate_all(ops, event="schedule")["fired"]
        assert [f["triggers"] for f in fired] == [["schedule"]] and fired[0]["created"]
        assert triggers.evaluate_all(ops, event="schedule")["fired"] == []  # the same tick never fires twice
        job = await wait_job(c, fired[0]["job_id"])
        assert job["trigger"] == "schedule" and counts(ops)[1] == jobs_before + 1
        await call(c, "set_retraining_policy", {"model": "nba-win", "on_drift": False, "on_decay": False})


async def test_bad_params_are_refused_before_a_job_is_queued(nba: dict[str, Any]) -> None:
    """train_model's up-front checks apply to start_retraining too: nothing is queued."""
    ops = nba["ops"]
    async with Client(nba["server"]) as c:
        before = len((await call(c, "list_retraining_jobs", {"model": "nba-win"}))["jobs"])
        for params, fragment in (({"n_estimators": 10**12}, "cap"), ({"bogus": 1}, "bogus"), ({"max_depth": "deep"}, "max_depth")):
            r = await c.call_tool("start_retraining", {"model": "nba-win", "reason": "bad", "estimator": "random_forest", "params": params})
            assert r.is_error and "params" in r.content[0].text and fragment in r.content[0].text, r.content
        after = len((await call(c, "list_retraining_jobs", {"model": "nba-win"}))["jobs"])
    assert after == before
    assert ops is not None
