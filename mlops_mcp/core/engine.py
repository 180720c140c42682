"""``MLOps``: the engine's front door. One per server (or per script), holding the settings and
the lazily opened store and registry, so that nothing heavy happens before it is needed."""

import logging
import threading
from functools import cached_property
from typing import Any

from mlops_mcp import __version__
from mlops_mcp.core.config import Settings

log = logging.getLogger(__name__)


class MLOps:
    """Everything the tools call. Usable from a notebook: ``MLOps(Settings(home="~/.mlops"))``."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._lock = threading.RLock()  # properties build on each other

    @cached_property
    def store(self) -> Any:
        """The relational store, migrated to the newest schema on first use."""
        from mlops_mcp.core.store import Store

        with self._lock:
            store = Store(self.settings.database_url or "")
            store.migrate()
            return store

    @cached_property
    def registry(self) -> Any:
        """The MLflow-backed model registry (MLflow is imported on first use)."""
        from mlops_mcp.core.models.registry import Registry

        with self._lock:
            return Registry(self.settings, self.store)

    @cached_property
    def predictor(self) -> Any:
        from mlops_mcp.core.experiments.router import ExperimentRouter
        from mlops_mcp.core.serving import Predictor

        with self._lock:
            predictor = Predictor(self.registry, self.store, self.settings.max_predict_rows)
            predictor.router = ExperimentRouter(self.registry, self.store)  # A/B split + shadow mirroring
            return predictor

    # -- registry operations (what the tools call) ---------------------------------------------
    def train(self, actor: str = "library", progress: Any = None, **kwargs: Any) -> dict[str, Any]:
        from mlops_mcp.core.models.training import train

        extra = {"progress": progress} if progress is not None else {}
        return train(
            self.registry, self.settings.data_roots, actor=actor,
            reference_rows=self.settings.reference_sample_rows, **extra, **kwargs,
        )

    def register(self, actor: str = "library", **kwargs: Any) -> dict[str, Any]:
        from mlops_mcp.core.models.register import register

        return register(
            self.registry, self.settings.data_roots, actor=actor, trust_pickle=self.settings.trust_pickle,
            reference_rows=self.settings.reference_sample_rows, **kwargs,
        )

    def list_models(self) -> list[dict[str, Any]]:
        from mlops_mcp.core.models.catalog import list_models

        return list_models(self.registry)

    def get_model(self, name: str) -> dict[str, Any]:
        from mlops_mcp.core.models.catalog import get_model

        return get_model(self.registry, name)

    def get_version(self, name: str, version: int) -> dict[str, Any]:
        from mlops_mcp.core.models.catalog import get_version

        return get_version(self.registry, name, version)

    def compare_versions(self, name: str, version_a: int, version_b: int, dataset: str | None = None, target: str | None = None) -> dict[str, Any]:
        from mlops_mcp.core.models.catalog import compare_versions

        return compare_versions(self.registry, self.settings.data_roots, name, version_a, version_b, dataset, target)

    def predict(self, model: str, rows: Any, request_keys: Any = None) -> Any:
        return self.predictor.predict(model, rows, request_keys)

    def check_drift(self, actor: str = "library", want_plot: bool = False, **kwargs: Any) -> tuple[dict[str, Any], bytes | None]:
        from mlops_mcp.core.drift.service import check_model_drift

        return check_model_drift(
            self.registry, self.store, self.settings.data_roots, actor=actor, want_plot=want_plot, **kwargs
        )

    def drift_history(self, model: str, limit: int = 20) -> list[dict[str, Any]]:
        from mlops_mcp.core.drift.service import history

        return history(self.registry, self.store, model, limit)

    @cached_property
    def explainers(self) -> Any:
        """Explainers cached per model version (building one costs far more than using it)."""
        from mlops_mcp.core.explain.shap_engine import ExplainerCache

        return ExplainerCache(maxsize=16)

    def explain(self, model: str, row: dict[str, Any] | None = None, prediction_id: str | None = None, top_k: int = 10) -> tuple[Any, dict[str, Any]]:
        from mlops_mcp.core.explain.service import explain_prediction

        return explain_prediction(
            self.registry, self.store, self.explainers, model=model, row=row, prediction_id=prediction_id, top_k=top_k
        )

    def feature_importance(self, model: str, dataset: str | None = None, sample_size: int = 1000) -> tuple[Any, dict[str, Any]]:
        from mlops_mcp.core.explain.service import feature_importance

        return feature_importance(
            self.registry, self.explainers, self.settings.data_roots, model=model, dataset=dataset, sample_size=sample_size
        )

    def server_info(self) -> dict[str, Any]:
        import platform
        from importlib.metadata import PackageNotFoundError, version

        def pkg(name: str) -> str | None:
            try:
                return version(name)
            except PackageNotFoundError:
                return None

        store_ok = self.store.ping()
        return {
            "version": __version__,
            "python": platform.python_version(),
            "store_backend": "sqlite" if self.store.is_sqlite else "postgresql",
            "store_reachable": store_ok,
            "schema_revision": self.store.revision() if store_ok else None,
            "libraries": {n: pkg(n) for n in ("mcp", "mlflow", "scikit-learn", "shap", "pandas", "sqlalchemy")},
            **self.settings.public_summary(),
        }

    def generate_demo_data(
        self,
        seasons: int = 4,
        games_per_season: int = 1230,
        first_season: int = 2021,
        rule_change_season: int | None = 2024,
        seed: int = 7,
        folder: str = "nba",
    ) -> dict[str, Any]:
        """Write the synthetic NBA dataset into ``<first data root>/<folder>`` (by default
        ``<home>/data/<folder>``); the paths returned are relative to that root, ready for ``dataset``."""
        from mlops_mcp.core.synthetic import FEATURES, LABELS, write_nba_dataset

        root = self.settings.data_roots[0]
        target = root / folder
        paths = write_nba_dataset(target, seasons, games_per_season, first_season, rule_change_season, seed)
        return {
            "folder": str(target),
            "files": {role: str(p.relative_to(root)) for role, p in paths.items()},
            "rows": seasons * games_per_season,
            "seasons": list(range(first_season, first_season + seasons)),
            "rule_change_season": rule_change_season,
            "features": list(FEATURES),
            "labels": list(LABELS),
        }

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.dispose()
