"""The engine's monitoring part: the process's recorder, the caches a scrape keeps, and the two
reads (the Prometheus text, a model's health). Built without touching the store or the registry:
both are reached through callables on first use, so a scrape needs neither MLflow nor the ML stack
(training baselines are fetched from MLflow in the background)."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from mlops_mcp.core.monitoring.recorder import Recorder
from mlops_mcp.core.monitoring.snapshot import Baselines, DriftCache

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.monitoring.results import ModelHealth
    from mlops_mcp.core.store import Store

#: training metrics kept as baselines (the live per-row metrics' counterparts)
BASELINE_METRICS = ("accuracy", "rmse", "mae")


class Monitoring:
    def __init__(self, store: Callable[[], "Store"], registry: Callable[[], "Registry"], version: str) -> None:
        self._store = store
        self._registry = registry
        self.version = version
        self.recorder = Recorder(store)
        self.drift_cache = DriftCache()
        self.baselines = Baselines(self._fetch_baseline)

    def _fetch_baseline(self, model: str, version: int) -> dict[str, float]:
        registry = self._registry()
        metrics = registry.run_metrics(registry.version(model, version).run_id)
        return {k: float(v) for k, v in metrics.items() if k in BASELINE_METRICS}

    def metrics(self) -> bytes:
        """The exposition text; raises :class:`~.exposition.StoreUnavailable` with the reason."""
        from mlops_mcp.core.monitoring.exposition import StoreUnavailable, collect, render

        self.recorder.flush()  # this process's buffered tool calls count in its own scrape
        try:
            store = self._store()
        except Exception as exc:
            raise StoreUnavailable(f"the store could not be opened ({type(exc).__name__}: {str(exc)[:300]})") from exc
        return render(collect(store, self.drift_cache, self.baselines, self.version))

    def health(self, model: str) -> "ModelHealth":
        from mlops_mcp.core.monitoring.health import model_health

        self.recorder.flush()  # this process's buffered prediction errors count in its own read-out
        return model_health(self._store(), self._registry(), self.baselines, self.drift_cache, model)

    def close(self) -> None:
        self.recorder.close()
