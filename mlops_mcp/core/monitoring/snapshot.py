"""One read of the store behind a scrape (and the pieces ``get_model_health`` reuses): the
rollups, where each alias points, the newest drift report per model, the running experiments and
retraining jobs. Every figure is derived from the store at read time, so any process on the store
(a replica, the exporter) reports the same numbers; each query reads a few hundred rows at most
through an index (rollups by (series, hour), alias events by (model, alias, id), drift reports by
(model, id)).

Live quality (``live_quality``) is the per-row metric of each version's labeled predictions made
in the last :data:`LIVE_WINDOW_HOURS` (by prediction time, newest label of each): accuracy for a
classifier, RMSE and MAE for a regression. It is judged against the version's training metric
with the rule ``get_model_performance`` uses (tolerance 0.05: absolute for accuracy, relative for
errors; at least 30 labels).
"""

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.monitoring import rollups

if TYPE_CHECKING:
    from mlops_mcp.core.store import Store

#: hours of prediction time the live quality figures cover (7 days)
LIVE_WINDOW_HOURS = 168
#: degradation rule, as get_model_performance applies it
TOLERANCE = 0.05
MIN_LABELED = 30
#: drifted features exported per model (the most severe first)
MAX_FEATURES = 50
#: the per-row metrics live quality reports per task, and their training counterparts
LIVE_METRICS: dict[str, tuple[str, ...]] = {"classification": ("accuracy",), "regression": ("rmse", "mae")}


@dataclass
class DriftHead:
    report_id: int
    model: str
    version: int
    created_at: Any
    drift_detected: bool
    share_drifted: float
    n_drifted: int
    n_checked: int
    drift_share: float | None = None
    #: (feature, severity = effect / threshold, drifted), most severe first
    features: list[tuple[str, float | None, bool]] = field(default_factory=list)
    #: the report's grade (none / minor / major) and one-line headline (None for older reports)
    severity: str | None = None
    headline: str | None = None


@dataclass
class Running:
    id: int
    model: str
    kind: str
    task: str
    version_a: int | None
    version_b: int
    split: float
    started_at: Any


@dataclass
class Quality:
    model: str
    version: int
    task: str
    labeled: int
    predictions: int
    metrics: dict[str, float]
    baseline: dict[str, float] | None
    degraded: bool
    reasons: list[str]

    @property
    def coverage(self) -> float | None:
        return self.labeled / self.predictions if self.predictions else None


def seconds(value: Any) -> float | None:
    if value is None:
        return None
    return rollups.seconds_of_stored(value)


class DriftCache:
    """Per-feature figures of drift reports, parsed once per report (reports never change)."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[int, tuple[float | None, list[tuple[str, float | None, bool]]]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, report_id: int) -> tuple[float | None, list[tuple[str, float | None, bool]]] | None:
        with self._lock:
            return self._items.get(report_id)

    def put(self, report_id: int, value: tuple[float | None, list[tuple[str, float | None, bool]]]) -> None:
        with self._lock:
            self._items[report_id] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _features(report: Any) -> tuple[float | None, list[tuple[str, float | None, bool]], str | None, str | None]:
    """From a stored report: its dataset rule, its most severe columns, its severity and headline."""
    data = report if isinstance(report, dict) else json.loads(report)
    out = []
    for col in data.get("columns") or []:
        if col.get("status", "ok") != "ok":
            continue
        sev = col.get("severity")
        out.append((str(col.get("column")), None if sev is None else float(sev), bool(col.get("drifted"))))
    out.sort(key=lambda f: -(f[1] if f[1] is not None and math.isfinite(f[1]) else -1.0))
    share = data.get("drift_share")
    return (None if share is None else float(share)), out[:MAX_FEATURES], data.get("severity"), data.get("headline")


def latest_drift(store: "Store", cache: DriftCache, model: str | None = None) -> list[DriftHead]:
    """The newest drift report of every model (or of one)."""
    mark = "?" if store.is_sqlite else "%s"
    where, params = ("WHERE model = " + mark, [model]) if model is not None else ("", [])
    rows = rollups.raw_query(
        store,
        "SELECT d.id, d.model, d.version, d.created_at, d.drift_detected, d.share_drifted, d.n_drifted, d.n_checked "
        f"FROM drift_reports d JOIN (SELECT MAX(id) AS id FROM drift_reports {where} GROUP BY model) m ON m.id = d.id",
        params,
    )
    heads = [DriftHead(int(r[0]), r[1], int(r[2]), r[3], bool(r[4]), float(r[5]), int(r[6]), int(r[7])) for r in rows]
    missing = [h.report_id for h in heads if cache.get(h.report_id) is None]
    if missing:
        marks = ", ".join([mark] * len(missing))
        for rid, report in rollups.raw_query(store, f"SELECT id, report FROM drift_reports WHERE id IN ({marks})", missing):
            cache.put(int(rid), _features(report))
    for h in heads:
        hit = cache.get(h.report_id)
        if hit is not None:
            h.drift_share, h.features, h.severity, h.headline = hit
    return heads


def alias_state(store: "Store", model: str | None = None) -> list[tuple[str, str, int, Any]]:
    """(model, alias, version, moved at) of every alias that points at a version now, as this
    server's alias history records it (moves made outside the server enter it when noticed)."""
    mark = "?" if store.is_sqlite else "%s"
    where, params = ("WHERE model = " + mark, [model]) if model is not None else ("", [])
    rows = rollups.raw_query(
        store,
        "SELECT e.model, e.alias, e.to_version, e.at FROM alias_events e JOIN "
        f"(SELECT MAX(id) AS id FROM alias_events {where} GROUP BY model, alias) m ON m.id = e.id",
        params,
    )
    return [(r[0], r[1], int(r[2]), r[3]) for r in rows if r[2] is not None]


def running(store: "Store", model: str | None = None) -> list[Running]:
    mark = "?" if store.is_sqlite else "%s"
    where, params = (" AND model = " + mark, [model]) if model is not None else ("", [])
    rows = rollups.raw_query(
        store,
        "SELECT id, model, kind, task, version_a, version_b, traffic_split, started_at FROM experiments "
        f"WHERE status = 'running'{where} ORDER BY id",
        params,
    )
    return [Running(int(r[0]), r[1], r[2], r[3], r[4], int(r[5]), float(r[6]), r[7]) for r in rows]


def srm_p_value(counts: tuple[int, int], split: float) -> float | None:
    """The sequential sample-ratio test of an A/B test's assignments (as get_ab_test runs it)."""
    if sum(counts) == 0:
        return None
    from mlops_mcp.core.experiments.stats import srm_check

    return float(srm_check(list(counts), (1.0 - split, split)).p_value)


def live_metrics(task: str, n: float, s1: float, s2: float) -> dict[str, float]:
    if n <= 0:
        return {}
    if task == "regression":
        return {"rmse": math.sqrt(max(s2, 0.0) / n), "mae": s1 / n}
    return {"accuracy": s1 / n}


def judge(task: str, labeled: int, live: dict[str, float], baseline: dict[str, float] | None) -> list[str]:
    """Reasons the live figures are degraded against the baseline (empty: not degraded)."""
    from mlops_mcp.core.metrics import METRICS

    if not baseline or labeled < MIN_LABELED:
        return []
    reasons = []
    for name in LIVE_METRICS.get(task, ()):
        value, base = live.get(name), baseline.get(name)
        if value is None or base is None:
            continue
        if METRICS[name].higher_is_better:
            limit = base - TOLERANCE
            if value < limit:
                reasons.append(f"live {name} {value:.4f} < baseline {base:.4f} - {TOLERANCE:g} ({labeled} labels)")
        else:
            limit = base * (1 + TOLERANCE)
            if value > limit:
                reasons.append(f"live {name} {value:.4f} > baseline {base:.4f} x {1 + TOLERANCE:g} ({labeled} labels)")
    return reasons


def live_quality(
    rows: list[tuple[Any, ...]], baseline: Callable[[str, int], dict[str, float] | None], unlabeled_baselines: bool = True
) -> list[Quality]:
    """Per (model, version) from hourly rows (series, hour, model, version, label, outcome,
    bucket, n, s1, s2) of ``pred``, ``labeled`` and ``quality``. ``unlabeled_baselines=False``
    looks baselines up only for versions with labels (a scrape then never loads MLflow for a
    store without feedback)."""
    preds: dict[tuple[str, int], float] = {}
    sums: dict[tuple[str, int], list[Any]] = {}
    for series, _h, model, version, label, _o, _b, n, s1, s2 in rows:
        key = (model, int(version))
        if series == rollups.PRED:
            preds[key] = preds.get(key, 0.0) + float(n)
        elif series == rollups.QUALITY:
            cell = sums.setdefault(key, [label, 0.0, 0.0, 0.0])
            cell[1] += float(n)
            cell[2] += float(s1)
            cell[3] += float(s2)
    out = []
    for key in sorted(set(preds) | set(sums)):
        base = baseline(*key) if unlabeled_baselines or key in sums else None
        unlabeled = "regression" if base and "rmse" in base and "accuracy" not in base else "classification"
        task, n, s1, s2 = sums.get(key, [unlabeled, 0.0, 0.0, 0.0])
        live = live_metrics(task, n, s1, s2)
        reasons = judge(task, round(n), live, base)
        out.append(Quality(key[0], key[1], task, round(n), round(preds.get(key, 0.0)), live, base, bool(reasons), reasons))
    return out


class Baselines:
    """Training metrics per version (from MLflow, immutable): fetched once per version, in the
    background for scrapes (a scrape never waits on MLflow), directly for health."""

    RETRY_SECONDS = 600.0

    def __init__(self, fetch: Callable[[str, int], dict[str, float]]) -> None:
        self._fetch = fetch
        self._items: dict[tuple[str, int], tuple[float, dict[str, float] | None]] = {}
        self._queue: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def cached(self, model: str, version: int) -> dict[str, float] | None:
        """The baseline if known; otherwise None now, and fetched in the background."""
        key = (model, int(version))
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and (hit[1] is not None or time.monotonic() - hit[0] < self.RETRY_SECONDS):
                return hit[1]
            if key not in self._queue:
                self._queue.append(key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._drain, name="mlops-baselines", daemon=True)
                self._thread.start()
        return None

    def get(self, model: str, version: int) -> dict[str, float] | None:
        """The baseline, fetched now if needed (None: the version has no training metrics)."""
        key = (model, int(version))
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and (hit[1] is not None or time.monotonic() - hit[0] < self.RETRY_SECONDS):
            return hit[1]
        return self._load(key)

    def _load(self, key: tuple[str, int]) -> dict[str, float] | None:
        try:
            found = self._fetch(*key) or None
        except Exception:
            found = None
        with self._lock:
            self._items[key] = (time.monotonic(), found)
        return found

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                key = self._queue.pop(0)
            self._load(key)
