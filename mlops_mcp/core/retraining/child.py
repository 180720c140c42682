"""The work of one retraining job, run in a child process of the runner: assemble the data, train
and register the version (``core/models/training.train``), judge it at the gate, tag the verdict.

Why a child process: the fit holds the CPU (and, for the thread-based estimators, the GIL) for as
long as it takes, and cancelling must stop it at once. Killing the child is that stop; the runner
then removes whatever the child had registered (``runner.discard``). The child never moves an
alias: that happens in the runner, after the verdict, past the point where a cancel is accepted.

The child watches a pipe from its parent: when the parent dies (kill -9 of the worker) the pipe
reaches end-of-file and the child exits at once, so nothing is registered by an orphan.
"""

import logging
import os
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PRELOAD = (
    "mlops_mcp.core.retraining._preload",
)

TAG_JOB = "mlops.retraining.job_id"
TAG_TRIGGER = "mlops.retraining.trigger"
TAG_WINDOW = "mlops.retraining.data_window"
TAG_HOLDOUT = "mlops.retraining.holdout"
TAG_VERDICT = "mlops.retraining.verdict"
TAG_GATE = "mlops.retraining.gate"
MAX_TAG = 5000


def main(settings_data: dict[str, Any], job_id: int, results: Any, control: Any) -> None:
    """Entry point of the child (multiprocessing target). Sends ('progress', stage, percent,
    message) messages and one final ('done', result) or ('error', kind, message)."""
    _watch_parent(control)
    try:
        result = run(settings_data, job_id, lambda stage, pct, msg: results.send(("progress", stage, pct, msg)))
        results.send(("done", result))
    except BaseException as exc:  # reported to the runner, which records it on the job
        from mlops_mcp.core.errors import MLOpsError

        if isinstance(exc, MLOpsError):
            results.send(("error", "invalid", str(exc)))
        else:
            log.error("retraining job %s failed:\n%s", job_id, traceback.format_exc())
            results.send(("error", "internal", f"{type(exc).__name__}: {str(exc)[:500]}"))
    finally:
        results.close()


def _watch_parent(control: Any) -> None:
    """Exit as soon as the parent's end of ``control`` closes (the parent died)."""

    def watch() -> None:
        try:
            while True:
                control.recv()  # the parent never sends; EOF means it is gone
        except (EOFError, OSError):
            os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run(settings_data: dict[str, Any], job_id: int, progress: Any) -> dict[str, Any]:
    """All stages of the job, in this process; returns what the runner records."""
    import pandas as pd

    from mlops_mcp.core.config import Settings
    from mlops_mcp.core.datasets import read_frame, resolve_path
    from mlops_mcp.core.models.profile import read_row_hashes, read_schema
    from mlops_mcp.core.models.registry import TAG_PARENT, Registry
    from mlops_mcp.core.models.training import train
    from mlops_mcp.core.retraining import data as data_mod
    from mlops_mcp.core.retraining import jobs
    from mlops_mcp.core.retraining.gate import judge
    from mlops_mcp.core.retraining.policy import parse_gate
    from mlops_mcp.core.store import Store

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    settings = Settings(**settings_data, _env_file=None)  # type: ignore[call-arg]
    store = Store(settings.database_url or "")
    store._migrated = True  # the runner's process migrated it; alembic costs ~0.3 s per process
    registry = Registry(settings, store)
    row = jobs.get_row(store, job_id)
    opts = row.options
    model, task, target = row.model, opts["task"], opts["target"]
    gate = parse_gate(opts.get("gate"))
    roots = settings.data_roots

    progress("assembling_data", 2.0, "reading the training data and the labeled predictions")
    since = datetime.fromisoformat(opts["since"])
    until = row.started_at or datetime.now(UTC)
    champion = row.champion_version
    champion_hashes = None
    if champion is not None:
        folder = registry.reference_dir(registry.version(model, champion))
        champion_hashes = read_row_hashes(folder)
        schema = read_schema(folder) if folder is not None else registry.load(registry.version(model, champion)).schema
    else:
        schema = registry.load(registry.versions(model)[0]).schema
    timings["open_seconds"] = round(time.perf_counter() - clock, 3)  # store, MLflow client, champion's schema and hashes
    base = None
    if opts.get("dataset"):
        base = read_frame(resolve_path(opts["dataset"], roots))
    step = time.perf_counter()
    feedback = (
        data_mod.labeled_inputs(store, model, since, until, schema.features) if opts.get("use_feedback", True) else pd.DataFrame()
    )
    timings["feedback_seconds"] = round(time.perf_counter() - step, 3)  # labeled predictions out of the store
    timings["read_seconds"] = round(time.perf_counter() - clock, 3)
    step = time.perf_counter()
    ts = data_mod.assemble(
        base, feedback, schema=schema, target=target, task=task, champion_hashes=champion_hashes,
        holdout_fraction=gate.holdout_fraction, min_holdout_rows=gate.min_holdout_rows, seed=job_id,
        base_source=opts.get("dataset"),
    )
    folder_rel = Path("retraining") / model
    out_dir = roots[0] / folder_rel
    out_dir.mkdir(parents=True, exist_ok=True)
    train_rel = str(folder_rel / f"job-{job_id}-train.parquet")
    hold_rel = str(folder_rel / f"job-{job_id}-holdout.parquet")
    ts.train.to_parquet(roots[0] / train_rel, index=False)
    ts.holdout.to_parquet(roots[0] / hold_rel, index=False)
    window = {
        "since": since.isoformat(), "until": until.isoformat(),
        "feedback_first": _iso(feedback[data_mod.AT].min()) if len(feedback) else None,
        "feedback_last": _iso(feedback[data_mod.AT].max()) if len(feedback) else None,
    }
    summary = {**ts.summary, "window": window, "training_dataset": train_rel, "holdout_dataset": hold_rel}
    timings["assemble_seconds"] = round(time.perf_counter() - step, 3)
    progress("assembling_data", 12.0, f"{len(ts.train):,} training rows, {len(ts.holdout):,} held out", )

    def train_progress(fraction: float, message: str) -> None:
        stage = "registering" if fraction >= 0.8 else "training"
        progress(stage, 15.0 + 70.0 * min(max(fraction, 0.0), 1.0), message)

    step = time.perf_counter()
    trained = train(
        registry, roots, model=model, dataset=train_rel, target=target, estimator=opts["estimator"],
        params=opts.get("params") or None, description=_description(row),
        alias=None, features=schema.features, categorical=schema.categorical, task=task,
        actor=f"retraining job {job_id}", reference_rows=settings.reference_sample_rows, progress=train_progress,
    )
    new_version = int(trained["version"])
    timings["train_seconds"] = round(time.perf_counter() - step, 3)
    timings["fit_seconds"] = float(trained.get("train_seconds") or 0.0)
    timings["register_seconds"] = float(trained.get("register_seconds") or 0.0)

    progress("gating", 86.0, f"version {new_version} registered; judging it against the champion on the holdout")
    step = time.perf_counter()
    verdict = judge(
        registry, roots, model=model, champion_version=champion, new_version=new_version, holdout_path=hold_rel,
        holdout=ts.holdout, target=target, task=task, gate=gate,
    )
    timings["gate_seconds"] = round(time.perf_counter() - step, 3)
    step = time.perf_counter()
    import json

    compact = {
        "verdict": verdict["verdict"], "metric": verdict["metric"],
        "checks": [{k: c.get(k) for k in ("check", "metric", "passed", "challenger", "champion", "threshold", "p_value")}
                   for c in verdict["checks"]],
    }
    tags = {
        TAG_JOB: str(job_id),
        TAG_TRIGGER: row.trigger,
        TAG_WINDOW: json.dumps({"dataset": opts.get("dataset"), **window, "feedback_rows": ts.summary["feedback_rows"]})[:MAX_TAG],
        TAG_HOLDOUT: f"{hold_rel} ({len(ts.holdout)} rows, {ts.summary['holdout_source']})"[:MAX_TAG],
        TAG_VERDICT: verdict["verdict"],
        TAG_GATE: json.dumps(compact, default=float)[:MAX_TAG],
    }
    if champion is not None:
        tags[TAG_PARENT] = str(champion)
    for key, value in tags.items():
        registry.client.set_model_version_tag(model, str(new_version), key, value)
    timings["tag_seconds"] = round(time.perf_counter() - step, 3)
    return {
        "new_version": new_version,
        "data": summary,
        "gate": verdict,
        "timings": timings,
        "train": {k: trained.get(k) for k in ("metrics", "n_train", "n_test", "estimator", "warnings")},
    }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return value.isoformat()
    except AttributeError:
        return str(value)


def _description(row: Any) -> str:
    text = f"retraining job {row.id} ({row.trigger})"
    if row.reason:
        text += f": {row.reason}"
    if row.champion_version is not None:
        text += f"; parent version {row.champion_version}"
    return text[:2000]
