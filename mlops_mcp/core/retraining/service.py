"""The retraining part of the engine: plans and starts jobs (validating everything before a row is
written), reads and cancels them, keeps policies, reacts to drift reports and feedback, and hands
work to whatever runs it (the embedded worker on SQLite, procrastinate workers on PostgreSQL).
"""

import ast
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import Conflict, InvalidInput, listing
from mlops_mcp.core.retraining import ACTIVE, AFTER_GATE, jobs
from mlops_mcp.core.retraining import policy as policy_mod

if TYPE_CHECKING:
    from mlops_mcp.core.engine import MLOps

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 3600


class RetrainingService:
    def __init__(self, ops: "MLOps") -> None:
        self.ops = ops
        self.postgres = not ops.store.is_sqlite
        self._lock = threading.Lock()
        self._worker: Any = None
        self._deferrer: Any = None
        self._recovered = False
        self._facts: dict[tuple[str, int], Any] = {}  # facts of a version never change

    # -- where work goes ----------------------------------------------------------------------
    @property
    def runs_jobs_here(self) -> bool:
        return not self.postgres and self.ops.settings.retraining_worker == "auto"

    def start_worker(self) -> None:
        """Start the embedded worker (SQLite, retraining_worker=auto); a no-op elsewhere."""
        if not self.runs_jobs_here:
            return
        with self._lock:
            if self._worker is None:
                from mlops_mcp.core.retraining.embedded import EmbeddedWorker

                self._worker = EmbeddedWorker(self.ops)
            self._worker.start()

    def stop(self) -> None:
        with self._lock:
            worker, deferrer = self._worker, self._deferrer
            self._deferrer = None
        if worker is not None:
            worker.stop()
        if deferrer is not None:
            deferrer.close()

    def deferrer(self) -> Any:
        with self._lock:
            if self._deferrer is None:
                from mlops_mcp.core.retraining.queue import Deferrer

                self._deferrer = Deferrer(self.ops)
            return self._deferrer

    def recover_once(self) -> None:
        """Fail jobs whose runner died before anything else reads them (a restart after kill -9)."""
        if self._recovered:
            return
        self._recovered = True
        from mlops_mcp.core.retraining import runner

        try:
            runner.recover(self.ops)
        except Exception:
            log.exception("could not check for interrupted retraining jobs")

    def dispatch(self, row: Any) -> None:
        if self.postgres:
            queue_id = self.deferrer().run(row.model)
            if queue_id is not None:
                from sqlalchemy import update

                from mlops_mcp.core.store.tables import RetrainingJobRow as J

                with self.ops.store.write() as s:
                    s.execute(update(J).where(J.id == row.id).values(queue_job_id=queue_id))
        elif self.runs_jobs_here:
            self.start_worker()
            self._worker.wake()

    # -- planning -------------------------------------------------------------------------------
    def plan(
        self,
        model: str,
        *,
        dataset: str | None = None,
        use_feedback: bool = True,
        since: str | datetime | None = None,
        estimator: str | None = None,
        params: dict[str, Any] | None = None,
        after_gate: str | None = None,
        auto_promote: bool | None = None,
    ) -> tuple[dict[str, Any], int | None]:
        """Everything a job needs, checked now (bad input never becomes a queued job)."""
        from mlops_mcp.core.datasets import resolve_path
        from mlops_mcp.core.models.pipeline import ESTIMATORS
        from mlops_mcp.core.models.registry import (
            TAG_DATASET,
            TAG_ESTIMATOR,
            TAG_TARGET,
            TAG_TASK,
            check_name,
        )
        from mlops_mcp.core.retraining import data
        from mlops_mcp.core.times import now as utcnow
        from mlops_mcp.core.times import parse_time

        ops = self.ops
        registry = ops.registry
        check_name(model)
        aliases = registry.aliases(model)  # NotFound names the models that exist
        champion = aliases.get("champion")
        if champion is None and dataset is None:
            versions = [int(v.version) for v in registry.versions(model)]
            raise InvalidInput(
                f"model '{model}' has no champion to retrain from (versions: {listing(versions)}; aliases: "
                f"{listing(f'{a} -> v{v}' for a, v in sorted(aliases.items()))}); give a labeled dataset, or promote a "
                "version with set_model_alias first",
                argument="dataset",
            )
        source = registry.version(model, champion) if champion is not None else registry.versions(model)[0]
        tags = source.tags or {}
        target = tags.get(TAG_TARGET)
        task = tags.get(TAG_TASK)
        if not target or task not in ("classification", "regression"):
            raise InvalidInput(
                f"version {source.version} of '{model}' records no target/task (it was not trained by train_model), so its "
                "training cannot be repeated; train a version with train_model first",
                argument="model",
            )
        champion_estimator = tags.get(TAG_ESTIMATOR)
        chosen = estimator or champion_estimator
        if chosen is None:
            raise InvalidInput(f"version {source.version} records no estimator; pass estimator", argument="estimator")
        if chosen not in ESTIMATORS:
            raise InvalidInput(f"unknown estimator '{chosen}'; accepted: {listing(ESTIMATORS)}", argument="estimator")
        if task not in ESTIMATORS[chosen][0]:
            others = [n for n, (t, _) in ESTIMATORS.items() if task in t]
            raise InvalidInput(f"'{chosen}' does not do {task}; for {task} use one of: {listing(others)}", argument="estimator")
        if params is None:
            params = _run_params(registry, source.run_id) if chosen == champion_estimator else {}
        elif not isinstance(params, dict) or len(params) > 50:
            raise InvalidInput("give at most 50 hyper-parameters as an object, e.g. {\"max_depth\": 3}", argument="params")
        notes: list[str] = []
        dataset_given = dataset is not None
        base = dataset
        if base is None:
            lineage = tags.get(TAG_DATASET)
            if lineage:
                try:
                    resolve_path(lineage, ops.settings.data_roots)
                    base = lineage
                except Exception as exc:
                    if not use_feedback:
                        raise InvalidInput(
                            f"the champion's training dataset '{lineage}' cannot be read ({exc}); pass dataset", argument="dataset"
                        ) from None
                    notes.append(f"the champion's training dataset '{lineage}' is not readable ({exc}); training on labeled predictions only")
            else:
                notes.append("the champion records no training dataset; training on labeled predictions only")
        else:
            resolve_path(base, ops.settings.data_roots)
        start = parse_time(since, "since")
        if start is None:
            start = datetime.fromtimestamp(int(source.creation_timestamp or 0) / 1000, UTC)
        until = utcnow()
        if start >= until:
            raise InvalidInput(f"since ({start.isoformat()}) is in the future", argument="since")
        counts = None
        if use_feedback:
            counts = data.counts(ops.store, model, start, until)
            if counts.labeled == 0 and not dataset_given:
                raise InvalidInput(
                    f"no labeled predictions to learn from since {start:%Y-%m-%d %H:%M:%S} UTC: {counts.explain(model, start)}. "
                    "Log ground truth with log_feedback, pass an earlier since, or give a labeled dataset",
                    argument="since",
                )
        elif base is None:
            raise InvalidInput("use_feedback=false leaves no training data: give a dataset", argument="dataset")
        row = policy_mod.get_row(ops.store, model)
        gate = policy_mod.parse_gate(row.gate if row is not None else None)
        policy_mod.check_gate(gate, task)
        after = after_gate if after_gate is not None else (row.after_gate if row is not None else "none")
        promote_ok = auto_promote if auto_promote is not None else bool(row is not None and row.auto_promote)
        if after not in AFTER_GATE:
            raise InvalidInput(f"{after!r} is not accepted; accepted: {listing(AFTER_GATE)}", argument="after_gate")
        if after == "promote" and not promote_ok:
            raise InvalidInput(
                "after_gate='promote' moves the champion without asking anyone: it needs auto_promote=true as well",
                argument="auto_promote",
            )
        options = {
            "dataset": base,
            "dataset_given": dataset_given,
            "use_feedback": bool(use_feedback),
            "since": start.isoformat(),
            "estimator": chosen,
            "params": params,
            "task": task,
            "target": target,
            "gate": gate.model_dump(mode="json"),
            "after_gate": after,
            "auto_promote": bool(promote_ok),
            "labeled_at_start": None if counts is None else counts.labeled,
            "predictions_at_start": None if counts is None else counts.predictions,
            "notes": notes,
        }
        return options, champion

    # -- jobs -----------------------------------------------------------------------------------
    def start(
        self, model: str, reason: str | None, actor: str, *, trigger: str = "manual", **plan_args: Any
    ) -> tuple[Any, bool]:
        if reason is not None and len(reason) > 1000:
            raise InvalidInput(f"at most 1000 characters; got {len(reason)}", argument="reason")
        self.recover_once()
        active = jobs.active_for(self.ops.store, model)
        if active is not None and trigger == "manual":
            raise self._busy(active)
        options, champion = self.plan(model, **plan_args)
        row, created = jobs.create(
            self.ops.store, model=model, trigger=trigger, reason=reason, actor=actor, options=options,
            champion_version=champion,
        )
        if not created:
            raise self._busy(row)
        self.dispatch(row)
        return jobs.get_row(self.ops.store, row.id), True

    @staticmethod
    def _busy(row: Any) -> Conflict:
        return Conflict(
            f"retraining job {row.id} of '{row.model}' is already {row.status} (stage {row.stage}, {row.percent:.0f}%); "
            f"nothing new was started: follow it with get_retraining_job(job_id={row.id}) or cancel it with cancel_retraining_job",
            argument="model",
        )

    def trigger(self, model: str, trigger: str, reason: str, policy_row: Any) -> tuple[Any, bool]:
        """A policy fired: a new job, or the active / recent job it folds into."""
        active = jobs.active_for(self.ops.store, model)
        if active is None:
            options, champion = self.plan(model, after_gate=policy_row.after_gate, auto_promote=policy_row.auto_promote)
        else:
            options, champion = {}, None
        row, created = jobs.create(
            self.ops.store, model=model, trigger=trigger, reason=reason, actor=f"retraining policy ({policy_row.updated_by})",
            options=options, champion_version=champion, cooldown_seconds=policy_row.cooldown_seconds,
        )
        if created:
            self.dispatch(row)
        return row, created

    def get(self, job_id: int) -> dict[str, Any]:
        self.recover_once()
        return jobs.view(jobs.get_row(self.ops.store, job_id))

    def cancel(self, job_id: int) -> dict[str, Any]:
        row = jobs.request_cancel(self.ops.store, job_id)
        if self.postgres and row.queue_job_id is not None and row.status == "cancelled":
            self.deferrer().cancel(row.queue_job_id)
        return jobs.view(row)

    def wait(self, job_id: int, timeout: float, progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
        """Poll until the job finishes or ``timeout`` seconds pass, reporting progress as it moves."""
        deadline = time.monotonic() + timeout
        last: tuple[str, float] | None = None
        while True:
            row = jobs.get_row(self.ops.store, job_id)
            if progress is not None and (row.stage, row.percent) != last:
                last = (row.stage, row.percent)
                progress(min(row.percent, 100.0) / 100.0, f"{row.status}: {row.stage} - {row.message or ''}"[:300])
            if row.status not in ACTIVE or time.monotonic() >= deadline:
                return jobs.view(row)
            time.sleep(0.25)

    def version_created(self, model: str, version: int) -> datetime | None:
        key = (model, version)
        if ("created",) + key not in self._facts:
            try:
                created = self.ops.registry.version(model, version).creation_timestamp
                self._facts[("created",) + key] = datetime.fromtimestamp(int(created) / 1000, UTC)  # type: ignore[index]
            except Exception:
                return None
        return self._facts[("created",) + key]  # type: ignore[index]

    def champion_facts(self, model: str, version: int) -> tuple[str, list[Any] | None, dict[str, float]]:
        """(task, classes, training metrics) of a version, as get_model_performance reads them; cached."""
        key = (model, version)
        if key not in self._facts:
            from mlops_mcp.core.feedback.performance import _baseline

            _, baseline, task, classes = _baseline(self.ops.registry, model, version, [version])
            self._facts[key] = (task or "classification", classes, baseline)
        return self._facts[key]

    # -- events -----------------------------------------------------------------------------------
    def has_work(self) -> bool:
        """Queued jobs, or policies with a schedule: the embedded worker is needed from the start."""
        from sqlalchemy import select

        from mlops_mcp.core.store.tables import RetrainingJobRow as J
        from mlops_mcp.core.store.tables import RetrainingPolicyRow as P

        with self.ops.store.read() as s:
            queued = s.scalar(select(J.id).where(J.status == "queued").limit(1))
            scheduled = s.scalar(select(P.model).where(P.enabled == True, P.schedule.is_not(None)).limit(1))  # noqa: E712
        return queued is not None or scheduled is not None

    def has_policy(self, model: str) -> bool:
        row = policy_mod.get_row(self.ops.store, model)
        return row is not None and row.enabled

    def on_event(self, models: list[str], event: str) -> None:
        """After a drift report or a feedback batch: evaluate the models' policies (inline on SQLite,
        by a worker on PostgreSQL). Never fails the call that caused it."""
        for model in models:
            try:
                if not self.has_policy(model):
                    continue
                if self.postgres:
                    self.deferrer().evaluate(model, event)
                else:
                    from mlops_mcp.core.retraining import triggers

                    triggers.evaluate_model(self.ops, model, event)
            except Exception:
                log.exception("evaluating the retraining policy of %s after %s failed", model, event)


def _run_params(registry: Any, run_id: str | None) -> dict[str, Any]:
    """The champion's estimator hyper-parameters, as train_model logged them ('model.<name>')."""
    if not run_id:
        return {}
    try:
        params = registry.client.get_run(run_id).data.params
    except Exception:
        return {}
    out: dict[str, Any] = {}
    for key, text in params.items():
        if key.startswith("model."):
            try:
                out[key[6:]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                out[key[6:]] = text
    return out
