"""Routing live traffic into experiments: A/B assignment and shadow mirroring.

Assignment. While an A/B test runs on a model, every request for the model's default route (the
plain name, i.e. its ``champion``) is split between the two pinned arm versions. A row with a
request key goes to arm b when ``sha256("<experiment id>:<key>")`` read as a number in [0, 1) is
below ``traffic_split``: the same key always gets the same arm within a test (and an independent
draw in the next test, because the experiment id is hashed too). A row without a key gets a
random arm (its ``request_key`` stays null in the log, which records that it was random). The arm
(``a``/``b``) and the experiment id are logged with the prediction. Explicit ``name@alias`` (other
than champion) and ``name/version`` requests are never split: they ask for something specific.

Shadows. After the answer is logged, a sample of the rows (``sample_rate``) is put on a bounded
queue and scored by the shadow version on one background thread; its answers go to
``shadow_predictions``. The caller never waits: a full queue drops the batch (counted), a slow or
failing shadow only delays or fails its own log rows (errors are recorded per row).

The running experiments are cached for ``ttl`` seconds (so a predict costs no extra query), and
the cache is dropped at once when this process starts or ends one; other processes notice within
``ttl``.
"""

import hashlib
import logging
import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.models.registry import ModelRef
from mlops_mcp.core.serving.predictor import Assignment

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.serving.predictor import PredictionBatch
    from mlops_mcp.core.store import Store

log = logging.getLogger(__name__)

QUEUE_BATCHES = 256


def bucket(experiment_id: int, key: str) -> float:
    """The key's position in [0, 1) for this experiment (uniform, stable across processes)."""
    digest = hashlib.sha256(f"{experiment_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_for(experiment_id: int, key: str | None, split: float, rng: random.Random | None = None) -> str:
    """'b' with probability ``split`` (deterministic by key; random without one), else 'a'."""
    u = bucket(experiment_id, key) if key is not None else (rng or random).random()
    return "b" if u < split else "a"


@dataclass(frozen=True)
class ActiveAB:
    id: int
    version_a: int
    version_b: int
    split: float


@dataclass(frozen=True)
class ActiveShadow:
    id: int
    version: int
    sample_rate: float


@dataclass
class ShadowJob:
    experiment: ActiveShadow
    model: str
    rows: list[dict[str, Any]]
    prediction_ids: list[str]
    primary_versions: list[int]
    #: what the primary answered for each row (the shadow agreement metric compares with it)
    primary_outputs: list[Any] = field(default_factory=list)


class ExperimentRouter:
    """The :class:`~mlops_mcp.core.serving.predictor.Router` the predictor uses."""

    def __init__(self, registry: "Registry", store: "Store", ttl: float = 1.0) -> None:
        self.registry = registry
        self.store = store
        self.ttl = ttl
        self._cache: tuple[dict[str, ActiveAB], dict[str, ActiveShadow]] | None = None
        self._loaded_at = 0.0
        self._generation = 0  # bumped by invalidate(): a read begun before it must not be cached
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._queue: queue.Queue[ShadowJob] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._worker: threading.Thread | None = None
        self.dropped: dict[int, int] = {}  # shadow experiment id -> rows dropped (queue full), this process

    # -- the cache of running experiments ------------------------------------------------------------
    def invalidate(self) -> None:
        with self._lock:
            self._cache = None
            self._generation += 1

    def active(self) -> tuple[dict[str, ActiveAB], dict[str, ActiveShadow]]:
        with self._lock:
            if self._cache is not None and time.monotonic() - self._loaded_at < self.ttl:
                return self._cache
            generation = self._generation
        from sqlalchemy import select

        from mlops_mcp.core.store.tables import ExperimentRow

        ab: dict[str, ActiveAB] = {}
        shadow: dict[str, ActiveShadow] = {}
        with self.store.read() as s:
            for row in s.scalars(select(ExperimentRow).where(ExperimentRow.status == "running")):
                if row.kind == "ab" and row.version_a is not None:
                    ab[row.model] = ActiveAB(row.id, row.version_a, row.version_b, row.traffic_split)
                elif row.kind == "shadow":
                    shadow[row.model] = ActiveShadow(row.id, row.version_b, row.traffic_split)
        with self._lock:
            # An invalidate() during the read may have started or ended a test after our snapshot was
            # taken: answer with it this once, but do not keep it for ttl seconds.
            if self._generation == generation:
                self._cache = (ab, shadow)
                self._loaded_at = time.monotonic()
        return ab, shadow

    @staticmethod
    def _default_route(ref: ModelRef) -> bool:
        return ref.default  # a plain name; 'name@champion' and 'name/3' are answered as asked

    # -- Router protocol --------------------------------------------------------------------------
    def route(self, ref: ModelRef, version: int, n_rows: int, request_keys: Sequence[str | None]) -> list[Assignment] | None:
        if not self._default_route(ref):
            return None
        test = self.active()[0].get(ref.name)
        if test is None:
            return None
        rows: dict[str, list[int]] = {"a": [], "b": []}
        for i, key in enumerate(request_keys):
            rows[arm_for(test.id, key, test.split, self._rng)].append(i)
        return [
            Assignment(version=v, variant=arm, rows=rows[arm], experiment_id=test.id)
            for arm, v in (("a", test.version_a), ("b", test.version_b))
            if rows[arm]
        ]

    def after(self, ref: ModelRef, rows: list[dict[str, Any]], result: "PredictionBatch") -> None:
        if not self._default_route(ref):
            return
        shadow = self.active()[1].get(ref.name)
        if shadow is None:
            return
        picked = [
            i for i, v in enumerate(result.versions)
            if v != shadow.version and (shadow.sample_rate >= 1.0 or self._rng.random() < shadow.sample_rate)
        ]
        if not picked:
            return
        job = ShadowJob(
            shadow, ref.name, [rows[i] for i in picked], [result.ids[i] for i in picked], [result.versions[i] for i in picked],
            [result.rows[i].get("prediction") for i in picked],
        )
        self._ensure_worker()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped[shadow.id] = self.dropped.get(shadow.id, 0) + len(picked)
            log.warning("shadow queue full: dropped %d mirrored rows of %s", len(picked), ref.name)

    # -- the shadow worker ------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="mlops-shadow", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._score(job)
            except Exception:  # never let one batch stop the worker
                log.exception("shadow scoring failed for %s", job.model)
            finally:
                self._queue.task_done()

    def _score(self, job: ShadowJob) -> None:
        from sqlalchemy import insert

        from mlops_mcp.core.monitoring import rollups
        from mlops_mcp.core.serving.predictor import prepare, score_rows
        from mlops_mcp.core.store.tables import ShadowPredictionRow

        from .common import now

        started = time.perf_counter()
        outputs: list[dict[str, Any]] | None = None
        error: str | None = None
        task = "classification"
        try:
            loaded = self.registry.load(self.registry.version(job.model, job.experiment.version))
            task = loaded.task
            outputs = score_rows(loaded, prepare(loaded, job.rows))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("shadow version %s/%d failed: %s", job.model, job.experiment.version, error)
        latency = (time.perf_counter() - started) * 1000
        at = now()
        records = [
            {
                "experiment_id": job.experiment.id,
                "prediction_id": pid,
                "model": job.model,
                "version": job.experiment.version,
                "primary_version": pv,
                "output": None if outputs is None else outputs[i]["prediction"],
                "score": None if outputs is None else outputs[i].get("score"),
                "latency_ms": None if outputs is None else latency,
                "error": error,
                "created_at": at,
            }
            for i, (pid, pv) in enumerate(zip(job.prediction_ids, job.primary_versions))
        ]
        with self.store.write() as session:
            session.execute(insert(ShadowPredictionRow), records)
            rollups.write(session.connection(), _shadow_tally(job, outputs, task), self.store.is_sqlite, shard=0)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait (up to ``timeout`` seconds) until every queued shadow batch is logged."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def _shadow_tally(job: ShadowJob, outputs: list[dict[str, Any]] | None, task: str) -> Any:
    """What a scored (or failed) shadow batch adds to the metric rollups: rows compared and how
    many agreed with the primary (or the sum of |shadow - primary|), or rows failed."""
    from mlops_mcp.core.monitoring import rollups

    tally = rollups.Tally()
    key = {"model": job.model, "version": job.experiment.id}
    if outputs is None:
        tally.add(rollups.SHADOW_ERR, n=float(len(job.prediction_ids)), **key)
        return tally
    if len(job.primary_outputs) != len(outputs):
        return tally
    s1 = sum(rollups.shadow_sums(task, p, o["prediction"]) for p, o in zip(job.primary_outputs, outputs))
    tally.add(rollups.SHADOW, label=task, n=float(len(outputs)), s1=s1, **key)
    return tally
