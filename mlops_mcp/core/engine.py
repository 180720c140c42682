"""``MLOps``: the engine's front door. Every tool calls one of its methods; a notebook can too:

    from mlops_mcp.core import MLOps, Settings
    ops = MLOps(Settings(home="~/.mlops"))
    ops.train(model="nba-win", dataset="nba/train.parquet", target="home_win").describe()

It holds the settings and the parts built on first use (the store, the MLflow registry, the
predictor and its experiment router, the explainer cache), so that nothing heavy happens before
it is needed. Methods take typed arguments and return typed results (``core/*/results.py``);
state that must stay in step (the A/B router after an experiment starts or ends) is kept here.

Parts are built without ``functools.cached_property``: on Python 3.11 it holds a lock shared by
every instance while the getter runs, and two first calls building different parts took that lock
and ours in opposite orders (a deadlock on a fresh server). Here each part has its own lock, and a
part's builder only ever reaches parts built before it (store < registry < predictor), so locks are
always taken in that order.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_mcp import __version__
from mlops_mcp.core.config import Settings
from mlops_mcp.core.results import DemoData, ServerInfo

if TYPE_CHECKING:
    from mlops_mcp.core.audit import AuditLog
    from mlops_mcp.core.datasets import DataSource
    from mlops_mcp.core.deploy.config import ScalingSpec
    from mlops_mcp.core.deploy.results import DeploymentInfo, DeploymentList, DeployResult, UndeployResult
    from mlops_mcp.core.deploy.service import Deployments
    from mlops_mcp.core.drift.results import DriftHistory, DriftReportDetail, DriftResult
    from mlops_mcp.core.experiments.readouts import (
        ABTestReadout,
        ABTestStarted,
        ConcludeResult,
        ExperimentList,
        OfflineABResult,
        ShadowInfo,
        ShadowReport,
        ShadowStarted,
    )
    from mlops_mcp.core.experiments.router import ExperimentRouter
    from mlops_mcp.core.explain.results import Explanation, FeatureImportance
    from mlops_mcp.core.explain.shap_engine import ExplainerCache
    from mlops_mcp.core.features.online import ViewCache
    from mlops_mcp.core.features.results import (
        FeatureViewDetail,
        FeatureViewList,
        FeatureViewRegistered,
        IngestResult,
        MaterializeResult,
        OnlineFeatures,
        TrainingSetResult,
    )
    from mlops_mcp.core.feedback.results import FeedbackResult, PerformanceReport
    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.models.results import (
        AliasMove,
        Comparison,
        ModelDetail,
        ModelHistory,
        ModelList,
        RegisterResult,
        TrainResult,
        VersionDetail,
    )
    from mlops_mcp.core.monitoring.results import ModelHealth
    from mlops_mcp.core.monitoring.service import Monitoring
    from mlops_mcp.core.retraining.policy import GateSpec
    from mlops_mcp.core.retraining.results import (
        CancelResult,
        ModelRetraining,
        PolicyEvaluation,
        RetrainingJob,
        RetrainingJobList,
        RetrainingPolicy,
        RetrainingStarted,
    )
    from mlops_mcp.core.retraining.service import RetrainingService
    from mlops_mcp.core.serving.predictor import PredictionBatch, Predictor
    from mlops_mcp.core.serving.results import PredictResult
    from mlops_mcp.core.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[float, str], None]

#: who the audit log and alias history name when the engine is used as a library
LIBRARY_ACTOR = "library"


class MLOps:
    """Everything the tools call. Usable from a notebook: ``MLOps(Settings(home="~/.mlops"))``."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._parts: dict[str, Any] = {}
        self._closed = False
        self._locks: dict[str, threading.Lock] = {
            name: threading.Lock() for name in ("store", "registry", "predictor", "explainers", "retraining", "monitor", "feature_views", "deployments")
        }

    def _part(self, name: str, build: Callable[[], T], stack: str = "ml") -> T:
        """The part ``name``, built once; the libraries it needs are imported first (``core/stack.py``)."""
        part = self._parts.get(name)
        if part is None:
            from mlops_mcp.core.stack import ensure

            ensure(stack)
            with self._locks[name]:
                part = self._parts.get(name)
                if part is None:
                    part = build()
                    self._parts[name] = part
        return part

    # -- parts, built on first use ------------------------------------------------------------
    @property
    def store(self) -> "Store":
        """The relational store, migrated to the newest schema on first use."""

        def build() -> "Store":
            from mlops_mcp.core.store import Store

            store = Store(self.settings.database_url or "")
            store.migrate()
            return store

        return self._part("store", build, stack="db")

    @property
    def registry(self) -> "Registry":
        """The MLflow-backed model registry (MLflow is imported on first use)."""

        def build() -> "Registry":
            from mlops_mcp.core.models.registry import Registry

            return Registry(self.settings, self.store)

        return self._part("registry", build)

    @property
    def predictor(self) -> "Predictor":
        """Serving, with the experiment router that splits A/B traffic and mirrors shadows."""

        def build() -> "Predictor":
            from mlops_mcp.core.experiments.router import ExperimentRouter
            from mlops_mcp.core.serving.predictor import Predictor

            predictor = Predictor(self.registry, self.store, self.settings.max_predict_rows)
            predictor.router = ExperimentRouter(self.registry, self.store)
            predictor.monitor = self.monitor.recorder
            return predictor

        return self._part("predictor", build)

    @property
    def router(self) -> "ExperimentRouter":
        router = self.predictor.router
        assert router is not None
        return router  # type: ignore[return-value]

    @property
    def explainers(self) -> "ExplainerCache":
        """Explainers cached per model version (building one costs far more than using it)."""

        def build() -> "ExplainerCache":
            from mlops_mcp.core.explain.shap_engine import ExplainerCache

            return ExplainerCache(maxsize=16)

        return self._part("explainers", build, stack="shap")

    @property
    def retraining(self) -> "RetrainingService":
        """Retraining jobs and policies, and whatever runs them (built after store and registry)."""

        def build() -> "RetrainingService":
            from mlops_mcp.core.retraining.service import RetrainingService

            self.registry  # noqa: B018  (parts are built in order: store < registry < retraining)
            return RetrainingService(self)

        return self._part("retraining", build)

    def start_background(self, delay_seconds: float = 1.0) -> None:
        """What ``serve`` runs beside the protocol: the embedded retraining worker (SQLite), which
        also fails jobs a killed server left running and fires cron schedules. Off the start-up
        path: it starts after ``delay_seconds`` (the host's handshake and tool listing come first),
        and it looks in the store before building anything, so a server with no retraining work
        never loads the ML stack for it."""
        if self.settings.retraining_worker != "auto" or not (self.settings.database_url or "").startswith("sqlite"):
            return  # PostgreSQL: `mlops-mcp worker` processes run the jobs

        def start() -> None:
            if self._closed:
                return
            try:
                if not self._retraining_pending():
                    return
                service = self.retraining
                if service.runs_jobs_here:
                    service.recover_once()
                    if service.has_work():
                        service.start_worker()
            except Exception:
                log.exception("could not start the retraining worker")

        timer = threading.Timer(delay_seconds, start)
        timer.name, timer.daemon = "mlops-background-start", True
        timer.start()

    def _retraining_pending(self) -> bool:
        """Unfinished jobs or scheduled policies in the store (a store-only look)."""
        from sqlalchemy import select

        from mlops_mcp.core.retraining import ACTIVE
        from mlops_mcp.core.store.tables import RetrainingJobRow, RetrainingPolicyRow

        with self.store.read() as session:
            job = session.scalar(
                select(RetrainingJobRow.id).where(RetrainingJobRow.status.in_(ACTIVE)).limit(1)
            )
            scheduled = session.scalar(
                select(RetrainingPolicyRow.model)
                .where(RetrainingPolicyRow.enabled == True, RetrainingPolicyRow.schedule.is_not(None))  # noqa: E712
                .limit(1)
            )
        return job is not None or scheduled is not None

    @property
    def monitor(self) -> "Monitoring":
        """Metrics and health: this process's recorder and the scrape's caches. Builds nothing
        else (the store and the registry are reached on first use)."""

        def build() -> "Monitoring":
            from mlops_mcp.core.monitoring.service import Monitoring

            return Monitoring(lambda: self.store, lambda: self.registry, __version__)

        return self._part("monitor", build, stack="db")

    @property
    def feature_views(self) -> "ViewCache":
        """Feature view versions read by online lookups (versions never change: cached by id)."""

        def build() -> "ViewCache":
            from mlops_mcp.core.features.online import ViewCache

            return ViewCache()

        return self._part("feature_views", build, stack="db")

    @property
    def deployments(self) -> "Deployments":
        """Ray Serve deployments (``core/deploy``); Ray is imported only when one is asked for."""

        def build() -> "Deployments":
            from mlops_mcp.core.deploy.service import Deployments

            return Deployments(self)

        return self._part("deployments", build, stack="db")

    def close(self) -> None:
        self._closed = True
        retraining = self._parts.get("retraining")
        if retraining is not None:
            retraining.stop()
        monitor = self._parts.get("monitor")
        if monitor is not None:
            monitor.close()
        store = self._parts.get("store")
        if store is not None:
            store.dispose()

    # -- the server itself ---------------------------------------------------------------------
    def server_info(self, tools: Sequence[str] = (), toolsets: Sequence[str] = ()) -> ServerInfo:
        import platform
        from importlib.metadata import PackageNotFoundError, version

        def pkg(name: str) -> str | None:
            try:
                return version(name)
            except PackageNotFoundError:
                return None

        store_ok = self.store.ping()
        return ServerInfo(
            version=__version__,
            python=platform.python_version(),
            store_backend="sqlite" if self.store.is_sqlite else "postgresql",
            store_reachable=store_ok,
            schema_revision=self.store.revision() if store_ok else None,
            libraries={n: pkg(n) for n in ("mcp", "mlflow", "scikit-learn", "shap", "pandas", "sqlalchemy", "ray")},
            toolsets=list(toolsets),
            tools=sorted(tools),
            **self.settings.public_summary(),
        )

    def generate_demo_data(
        self,
        seasons: int = 4,
        games_per_season: int = 1230,
        first_season: int = 2021,
        rule_change_season: int | None = 2024,
        seed: int = 7,
        folder: str = "nba",
    ) -> DemoData:
        """Write the synthetic NBA dataset into ``<first data root>/<folder>`` (by default
        ``<home>/data/<folder>``); the paths returned are relative to that root, ready for ``dataset``."""
        from mlops_mcp.core.stack import ensure
        from mlops_mcp.core.synthetic import EXCLUDE, FEATURES, LABELS, write_nba_dataset

        ensure("ml")

        root = self.settings.data_roots[0]
        target = root / folder
        paths = write_nba_dataset(target, seasons, games_per_season, first_season, rule_change_season, seed)
        return DemoData(
            folder=str(target),
            files={role: str(p.relative_to(root)) for role, p in paths.items()},
            rows=seasons * games_per_season,
            seasons=list(range(first_season, first_season + seasons)),
            rule_change_season=rule_change_season,
            features=list(FEATURES),
            labels=list(LABELS),
            exclude=list(EXCLUDE),
        )

    def record_call(
        self, *, actor: str, tool: str, arguments: dict[str, Any], error: BaseException | None, seconds: float
    ) -> None:
        """Write one mutating call to the audit log."""
        from mlops_mcp.core import audit
        from mlops_mcp.core.errors import Cancelled

        audit.record(
            self.store,
            actor=actor,
            tool=tool,
            arguments=arguments,
            outcome="ok" if error is None else ("cancelled" if isinstance(error, Cancelled) else "error"),
            error=None if error is None else str(error)[:2000],
            duration_ms=seconds * 1000,
        )

    def record_tool_call(self, tool: str, error: BaseException | None, seconds: float) -> None:
        """Count one tool call for /metrics (buffered in memory, flushed to the store every second)."""
        from mlops_mcp.core.monitoring.recorder import outcome_of

        self.monitor.recorder.tool_call(tool, outcome_of(error), seconds)

    def audit_log(self, limit: int = 50, tool: str | None = None) -> "AuditLog":
        from mlops_mcp.core import audit

        return audit.log(self.store, limit=limit, tool=tool)

    # -- registry --------------------------------------------------------------------------------
    def train(
        self,
        *,
        model: str,
        dataset: "DataSource",
        target: str,
        estimator: str = "gradient_boosting",
        params: dict[str, Any] | None = None,
        test_size: float = 0.2,
        description: str | None = None,
        alias: str | None = None,
        features: list[str] | None = None,
        exclude: list[str] | None = None,
        categorical: list[str] | None = None,
        task: str | None = None,
        actor: str = LIBRARY_ACTOR,
        progress: Progress | None = None,
        cancel: "threading.Event | None" = None,
    ) -> "TrainResult":
        """Fit, evaluate, log and register a version (see ``train_model``). Setting ``cancel`` stops
        the fit (it runs in a child process) and registers nothing."""
        from mlops_mcp.core.models.results import TrainResult
        from mlops_mcp.core.models.training import train

        extra: dict[str, Any] = {"progress": progress} if progress is not None else {}
        data = train(
            self.registry, self.settings.data_roots, model=model, dataset=dataset, target=target,
            estimator=estimator, params=params, test_size=test_size, description=description, alias=alias,
            features=features, exclude=exclude, categorical=categorical, task=task, actor=actor,
            reference_rows=self.settings.reference_sample_rows, cancel=cancel, **extra,
        )
        return TrainResult.model_validate(data)

    def register(
        self,
        *,
        model: str,
        source: str,
        description: str | None = None,
        reference_dataset: "DataSource | None" = None,
        alias: str | None = None,
        tags: dict[str, str] | None = None,
        actor: str = LIBRARY_ACTOR,
    ) -> "RegisterResult":
        """Register a model trained elsewhere (see ``register_model``)."""
        from mlops_mcp.core.models.register import register
        from mlops_mcp.core.models.results import RegisterResult

        data = register(
            self.registry, self.settings.data_roots, model=model, source=source, description=description,
            reference_dataset=reference_dataset, alias=alias, tags=tags or {}, actor=actor,
            trust_pickle=self.settings.trust_pickle, reference_rows=self.settings.reference_sample_rows,
        )
        return RegisterResult.model_validate(data)

    def list_models(self) -> "ModelList":
        from mlops_mcp.core.models.catalog import list_models

        return list_models(self.registry)

    def get_model(self, model: str) -> "ModelDetail":
        from mlops_mcp.core.models.catalog import get_model

        return get_model(self.registry, model)

    def get_version(self, model: str, version: int) -> "VersionDetail":
        from mlops_mcp.core.models.catalog import get_version

        return get_version(self.registry, model, version)

    def plan_alias_move(self, model: str, alias: str, version: int) -> "AliasMove":
        """Where ``alias`` points now and where it would point (nothing changes)."""
        from mlops_mcp.core.models.refs import check_alias, check_name
        from mlops_mcp.core.models.results import AliasMove

        check_name(model)
        check_alias(alias)
        current = self.registry.aliases(model).get(alias)
        self.registry.version(model, version)  # NotFound names the versions that exist
        return AliasMove(model=model, alias=alias, from_version=current, to_version=version, changed=current != version)

    def set_alias(
        self, model: str, alias: str, version: int, reason: str | None = None, actor: str = LIBRARY_ACTOR
    ) -> "AliasMove":
        """Point ``alias`` at ``version`` (promotion); recorded in the alias history."""
        from mlops_mcp.core.models.results import AliasMove

        move = self.registry.set_alias(model, alias, version, actor, reason)
        return AliasMove.model_validate({**move, "reason": reason})

    def plan_rollback(self, model: str, alias: str = "champion", to_version: int | None = None, actor: str = LIBRARY_ACTOR) -> "AliasMove":
        from mlops_mcp.core.models.results import AliasMove

        current, target = self.registry.rollback_plan(model, alias, to_version, actor)
        return AliasMove(model=model, alias=alias, from_version=current, to_version=target, changed=current != target)

    def rollback(
        self,
        model: str,
        alias: str = "champion",
        to_version: int | None = None,
        reason: str | None = None,
        actor: str = LIBRARY_ACTOR,
    ) -> "AliasMove":
        """Move ``alias`` back along its history (or to ``to_version``)."""
        from mlops_mcp.core.models.results import AliasMove

        move = self.registry.rollback(model, alias, to_version, actor, reason)
        return AliasMove.model_validate({**move, "reason": reason})

    def history(self, model: str, limit: int = 50) -> "ModelHistory":
        from mlops_mcp.core.models.catalog import history

        return history(self.registry, model, limit)

    def compare_versions(
        self, model: str, version_a: int, version_b: int, dataset: "DataSource | None" = None, target: str | None = None
    ) -> "Comparison":
        from mlops_mcp.core.models.catalog import compare_versions

        return compare_versions(self.registry, self.settings.data_roots, model, version_a, version_b, dataset, target)

    # -- serving ---------------------------------------------------------------------------------
    def predict_batch(
        self, model: str, rows: Any, request_keys: Sequence[str | None] | None = None
    ) -> "PredictionBatch":
        """Every row predicted and logged (the REST route and ``predict`` share this path)."""
        return self.predictor.predict(model, rows, request_keys)

    def predict(
        self,
        model: str,
        rows: Any = None,
        request_keys: Sequence[str | None] | None = None,
        max_results: int = 100,
        entity_keys: Sequence[Any] | None = None,
        missing: str = "impute",
    ) -> "PredictResult":
        """Predict and log every row; the result lists at most ``max_results`` rows. With
        ``entity_keys`` instead of ``rows``, a version trained on a training set gets its inputs
        from the online feature store (``missing``: impute or refuse what is not PRESENT)."""
        from mlops_mcp.core.errors import InvalidInput
        from mlops_mcp.core.serving.predictor import summarize
        from mlops_mcp.core.serving.results import BatchSummary, PredictResult

        features = None
        if entity_keys is not None:
            if rows is not None or request_keys is not None:
                raise InvalidInput("give either rows (with request_keys) or entity_keys, not both", argument="entity_keys")
            batch, features = self.predict_by_keys_batch(model, entity_keys, missing)
        elif rows is None:
            raise InvalidInput("give rows (the model's input columns) or entity_keys (to read them from the feature store)", argument="rows")
        else:
            batch = self.predict_batch(model, rows, request_keys)
        listed = batch.rows[:max_results]
        if features is not None:
            features.statuses = features.statuses[:max_results]
            features.entity_keys = features.entity_keys[:max_results]
        return PredictResult.model_validate(
            {
                "model": batch.requested,
                "n_rows": len(batch.rows),
                "versions": sorted(set(batch.versions)),
                "latency_ms": round(batch.latency_ms, 3),
                "batch": BatchSummary.model_validate(summarize(batch)),
                "predictions": listed,
                "truncated": len(listed) < len(batch.rows),
                "warnings": batch.warnings,
                "features": features,
            }
        )

    def predict_by_keys_batch(self, model: str, entity_keys: Any, missing: str = "impute", rows: Any = None) -> Any:
        """(PredictionBatch, KeyedFeatures): inputs read from the online store by entity key (the
        REST route and ``predict`` share this path)."""
        from mlops_mcp.core.errors import InvalidInput
        from mlops_mcp.core.features.serving import predict_batch

        if rows is not None:
            raise InvalidInput("give either rows or entity_keys, not both", argument="entity_keys")
        return predict_batch(self, model, entity_keys, missing)

    # -- deployments (Ray Serve) -------------------------------------------------------------------
    def default_max_replicas(self) -> int:
        """``max_replicas`` when the caller gives none: 4, or 1 on SQLite (several replicas must all
        write the store, which needs PostgreSQL), so that a deploy on the embedded default works."""
        from mlops_mcp.core.deploy.config import DEFAULT_MAX_REPLICAS

        return 1 if self.store.is_sqlite else DEFAULT_MAX_REPLICAS

    def plan_deploy(self, model: str, scaling: "ScalingSpec") -> "DeployResult":
        """What ``deploy_model`` would do (checked, nothing started or changed)."""
        return self.deployments.plan(model, scaling)

    def deploy_model(self, model: str, scaling: "ScalingSpec") -> "DeployResult":
        """Deploy ``model`` (its champion, A/B split and shadow included) on Ray Serve, or update
        its scaling when it is deployed already."""
        return self.deployments.deploy(model, scaling)

    def get_deployment(self, model: str) -> "DeploymentInfo":
        return self.deployments.get(model)

    def list_deployments(self) -> "DeploymentList":
        return self.deployments.summary()

    def plan_undeploy(self, model: str) -> "UndeployResult":
        return self.deployments.plan_undeploy(model)

    def undeploy_model(self, model: str) -> "UndeployResult":
        """Stop serving ``model`` on Ray (the local Ray head stops with the last deployment)."""
        return self.deployments.undeploy(model)

    def export_kuberay(self, model: str, scaling: "ScalingSpec", image: str = "mlops-mcp:latest") -> str:
        """A KubeRay RayService manifest (YAML) serving ``model`` with ``scaling``."""
        from mlops_mcp.core.deploy.kuberay import manifest, to_yaml
        from mlops_mcp.core.models.refs import check_name
        from mlops_mcp.core.models.registry import ModelRef

        check_name(model)
        self.registry.resolve(ModelRef.parse(model))  # the model exists and has a champion
        try:
            from importlib.metadata import version

            ray_version = version("ray")
        except Exception:  # the manifest does not need Ray installed here
            from mlops_mcp.core.deploy.kuberay import DEFAULT_RAY_VERSION as ray_version
        return to_yaml(manifest(model, scaling, image, ray_version))

    # -- feature store ---------------------------------------------------------------------------
    def register_feature_view(
        self,
        *,
        name: str,
        source: str,
        entities: list[str],
        timestamp_column: str,
        created_column: str | None = None,
        features: list[str] | None = None,
        ttl: str | int | None = None,
        description: str | None = None,
        owner: str | None = None,
        tags: dict[str, str] | None = None,
        actor: str = LIBRARY_ACTOR,
    ) -> "FeatureViewRegistered":
        """Define a view over a source file and ingest it (a changed schema is a new version)."""
        from mlops_mcp.core.features.catalog import register
        from mlops_mcp.core.stack import ensure

        ensure("data")
        return register(
            self.store, self.settings.data_roots, name=name, source=source, entities=entities,
            timestamp_column=timestamp_column, created_column=created_column, features=features, ttl=ttl,
            description=description, owner=owner, tags=tags, actor=actor,
        )

    def list_feature_views(self) -> "FeatureViewList":
        from mlops_mcp.core.features.catalog import list_views

        return list_views(self.store)

    def get_feature_view(self, view: str, version: int | None = None) -> "FeatureViewDetail":
        from mlops_mcp.core.features.catalog import describe

        return describe(self.store, view, version)

    def ingest_features(self, view: str, dataset: str, actor: str = LIBRARY_ACTOR) -> "IngestResult":
        """Append a file to a view (one transaction; the same file again changes nothing)."""
        from mlops_mcp.core.features.ingest import ingest
        from mlops_mcp.core.stack import ensure

        ensure("data")
        return ingest(self.store, self.settings.data_roots, view=view, dataset=dataset, actor=actor)

    def materialize_features(
        self, view: str, end: str | None = None, actor: str = LIBRARY_ACTOR, progress: Progress | None = None
    ) -> "MaterializeResult":
        """Load the online table from the watermark up to ``end`` (default now)."""
        from mlops_mcp.core.features.materialize import materialize

        extra: dict[str, Any] = {"progress": progress} if progress is not None else {}
        return materialize(self.store, view=view, end=end, actor=actor, **extra)

    def get_online_features(self, features: list[str], entity_keys: Sequence[Any]) -> "OnlineFeatures":
        """Per key and feature: value, event time, age, status (the TTL enforced now)."""
        from mlops_mcp.core.features.online import read

        return read(self.store, self.feature_views, features, list(entity_keys))

    def build_training_set(
        self,
        *,
        entities: str,
        features: list[str],
        output: str,
        label: str | None = None,
        timestamp_column: str | None = None,
        overwrite: bool = False,
        actor: str = LIBRARY_ACTOR,
    ) -> "TrainingSetResult":
        """Point-in-time join of entity rows with features, written as Parquet with its lineage."""
        from mlops_mcp.core.features.training_set import build_training_set
        from mlops_mcp.core.stack import ensure

        ensure("data")
        return build_training_set(
            self.store, self.settings.data_roots, entities=entities, features=features, output=output, label=label,
            timestamp_column=timestamp_column, overwrite=overwrite, actor=actor,
        )

    # -- drift -----------------------------------------------------------------------------------
    def check_drift(
        self,
        model: str,
        *,
        dataset: "DataSource | None" = None,
        reference: "DataSource | None" = None,
        columns: list[str] | None = None,
        method: str = "auto",
        threshold: float | None = None,
        thresholds: dict[str, float] | None = None,
        alpha: float = 0.05,
        drift_share: float = 0.5,
        since: str | None = None,
        until: str | None = None,
        multivariate: bool = False,
        plot: bool = False,
        actor: str = LIBRARY_ACTOR,
    ) -> "DriftResult":
        """Check, persist and return one drift report (with its chart when ``plot``)."""
        from mlops_mcp.core.drift.results import DriftResult
        from mlops_mcp.core.drift.service import check_model_drift
        from mlops_mcp.core.stack import ensure

        ensure("plot" if plot else "ml")

        data, png = check_model_drift(
            self.registry, self.store, self.settings.data_roots, model=model, dataset=dataset, reference=reference,
            columns=columns, method=method, threshold=threshold, thresholds=thresholds, alpha=alpha,
            drift_share=drift_share, since=since, until=until, multivariate=multivariate, actor=actor, want_plot=plot,
        )
        result = DriftResult.model_validate(data)
        result.with_chart(png)
        self._retraining_event([result.model], "drift")
        return result

    def drift_history(self, model: str, limit: int = 20) -> "DriftHistory":
        from mlops_mcp.core.drift.results import DriftHistory
        from mlops_mcp.core.drift.service import history

        return DriftHistory.model_validate({"model": model, "reports": history(self.registry, self.store, model, limit)})

    def latest_drift(self, model: str) -> "DriftReportDetail":
        from mlops_mcp.core.drift.results import DriftReportDetail
        from mlops_mcp.core.drift.service import latest
        from mlops_mcp.core.errors import NotFound

        data = latest(self.store, model)
        if data is None:
            raise NotFound(f"no drift report for model '{model}' yet; run check_drift(model='{model}')", argument="model")
        return DriftReportDetail.model_validate(data)

    # -- explanations ------------------------------------------------------------------------------
    def explain(
        self,
        model: str,
        row: dict[str, Any] | None = None,
        prediction_id: str | None = None,
        top_k: int = 10,
        plot: bool = False,
    ) -> "Explanation":
        """SHAP explanation of one prediction (a row, or a logged prediction id)."""
        from mlops_mcp.core.explain.results import Explanation
        from mlops_mcp.core.explain.service import explain_prediction

        exp, context = explain_prediction(
            self.registry, self.store, self.explainers, model=model, row=row, prediction_id=prediction_id, top_k=top_k
        )
        result = Explanation.build(exp, **context)
        if plot:
            from mlops_mcp.core.explain.plot import waterfall_png
            from mlops_mcp.core.stack import ensure

            ensure("plot")

            result.with_chart(waterfall_png(exp))
        return result

    def feature_importance(
        self, model: str, dataset: "DataSource | None" = None, sample_size: int = 1000, plot: bool = False
    ) -> "FeatureImportance":
        """Mean |SHAP| per input column over the reference profile or ``dataset``."""
        from mlops_mcp.core.explain.results import FeatureImportance
        from mlops_mcp.core.explain.service import feature_importance

        imp, context = feature_importance(
            self.registry, self.explainers, self.settings.data_roots, model=model, dataset=dataset, sample_size=sample_size
        )
        result = FeatureImportance.build(imp, **context)
        if plot:
            from mlops_mcp.core.explain.plot import importance_png
            from mlops_mcp.core.stack import ensure

            ensure("plot")

            result.with_chart(importance_png(imp))
        return result

    # -- feedback and performance ----------------------------------------------------------------
    def log_feedback(
        self,
        *,
        prediction_id: str | None = None,
        actual: Any = None,
        items: Sequence[Any] | None = None,
        dataset: str | None = None,
        source: str = "user",
        comment: str | None = None,
        actor: str = LIBRARY_ACTOR,
    ) -> "FeedbackResult":
        """Attach ground truth to logged predictions (one label, a batch, or a file)."""
        from mlops_mcp.core.feedback.labels import gather_input
        from mlops_mcp.core.feedback.labels import log_feedback as write
        from mlops_mcp.core.feedback.results import FeedbackResult
        from mlops_mcp.core.stack import ensure

        ensure("ml")
        form, chunks = gather_input(prediction_id, actual, items, dataset, self.settings.data_roots)
        data = write(self.store, self.registry, chunks, source=source, comment=comment, actor=actor, form=form)
        result = FeedbackResult.model_validate(data)
        self._retraining_event(sorted({key.rsplit("/", 1)[0] for key in data.get("by_model") or {}}), "feedback")
        return result

    def performance(
        self,
        model: str,
        *,
        window: str = "1d",
        since: str | None = None,
        until: str | None = None,
        tolerance: float = 0.05,
        min_labeled: int = 30,
        max_buckets: int = 200,
        plot: bool = False,
        metric: str | None = None,
    ) -> "PerformanceReport":
        """Live quality per time bucket against the training baseline."""
        from mlops_mcp.core.feedback.performance import check_metric, model_performance, plot_performance
        from mlops_mcp.core.feedback.results import PerformanceReport

        data = model_performance(
            self.store, self.registry, model, window=window, since=since, until=until,
            tolerance=tolerance, min_labeled=min_labeled, max_buckets=max_buckets,
        )
        check_metric(data["task"], metric)
        result = PerformanceReport.model_validate(data)
        if plot:
            from mlops_mcp.core.stack import ensure

            ensure("plot")
            result.with_chart(plot_performance(data, metric))
        return result

    # -- monitoring --------------------------------------------------------------------------------
    def model_health(self, model: str) -> "ModelHealth":
        """How ``model`` is doing: aliases, 24 h traffic and latency, live quality against the
        baseline, label coverage, the newest drift report, running experiments, retraining, the
        active alerts and what to call next (see ``get_model_health``)."""
        from mlops_mcp.core.models.refs import check_name

        check_name(model)
        return self.monitor.health(model)

    def metrics_text(self) -> bytes:
        """The Prometheus exposition (``GET /metrics``); raises
        ``core.monitoring.exposition.StoreUnavailable`` (a RuntimeError) when the store cannot be read."""
        return self.monitor.metrics()

    # -- experiments -------------------------------------------------------------------------------
    def run_ab_test(
        self,
        model: str,
        dataset: "DataSource",
        variant_a: str = "champion",
        variant_b: str = "challenger",
        target: str | None = None,
        metric: str | None = None,
        alpha: float = 0.05,
    ) -> "OfflineABResult":
        """Offline, paired head-to-head of two versions on a labeled dataset."""
        from mlops_mcp.core.experiments.offline import run
        from mlops_mcp.core.experiments.readouts import OfflineABResult

        data = run(self.registry, self.settings.data_roots, model, variant_a, variant_b, dataset, target, metric, alpha)
        return OfflineABResult.model_validate(data)

    def start_ab_test(
        self,
        model: str,
        variant_a: str = "champion",
        variant_b: str = "challenger",
        traffic_split: float = 0.5,
        metric: str | None = None,
        min_samples_per_arm: int | None = None,
        alpha: float = 0.05,
        mde: float | None = None,
        actor: str = LIBRARY_ACTOR,
    ) -> "ABTestStarted":
        """Start a live A/B test; plain-name predictions are split from the next call on."""
        from mlops_mcp.core.experiments import live
        from mlops_mcp.core.experiments.readouts import ABTestStarted

        data = live.start(
            self.store, self.registry, model, variant_a, variant_b, traffic_split, metric,
            min_samples_per_arm, alpha, mde, actor=actor,
        )
        self.router.invalidate()
        message = (
            f"A/B test {data['experiment_id']} running on '{model}': a = v{data['version_a']} ({variant_a}), "
            f"b = v{data['version_b']} ({variant_b}), {traffic_split:.0%} of keys to b. Predict with model='{model}' "
            "and request_keys; log feedback; read with get_ab_test."
        )
        return ABTestStarted.model_validate({**data, "message": message})

    def get_ab_test(self, experiment_id: int, persist: bool = True) -> "ABTestReadout":
        """The live read-out; ``persist=False`` reads without counting a look."""
        from mlops_mcp.core.experiments import live
        from mlops_mcp.core.experiments.readouts import ABTestReadout

        return ABTestReadout.model_validate(_arms(live.read_out(self.store, experiment_id, persist=persist)))

    def plan_conclude(self, experiment_id: int, promote_winner: bool = False, why_not: str = "not confirmed") -> "ConcludeResult":
        """What concluding would do; nothing changes."""
        from mlops_mcp.core.experiments import live
        from mlops_mcp.core.experiments.readouts import ConcludeResult

        plan = live.conclude_plan(self.store, self.registry, experiment_id, promote_winner)
        rd = plan["readout"]
        would = f"stop A/B test {experiment_id} on '{rd['model']}'"
        if promote_winner:
            would += f" and move champion from version {plan['champion_from']} to version {plan['champion_to']}"
        return ConcludeResult.model_validate(
            {
                "experiment_id": experiment_id, "model": rd["model"], "concluded": False,
                "recommendation": rd["recommendation"], "winner": plan["winner"], "winner_version": plan["winner_version"],
                "promoted": False, "champion_from": plan["champion_from"], "champion_to": plan["champion_to"],
                "effect": rd["effect"], "always_valid_p_value": rd["always_valid_p_value"], "reasons": rd["reasons"],
                "message": f"Nothing changed ({why_not}). Would {would}; call again with confirm=true.",
            }
        )

    def conclude_ab_test(
        self, experiment_id: int, promote_winner: bool = False, reason: str | None = None, actor: str = LIBRARY_ACTOR
    ) -> "ConcludeResult":
        """Stop the test (final read-out stored) and, if asked, promote the winner."""
        from mlops_mcp.core.experiments import live
        from mlops_mcp.core.experiments.readouts import ConcludeResult

        done = live.conclude(self.store, self.registry, experiment_id, promote_winner, reason, actor)
        self.router.invalidate()
        res, exp, move = done["result"], done["experiment"], done["alias_move"]
        message = f"A/B test {experiment_id} on '{exp['model']}' concluded (recommendation: {res['recommendation']})"
        if res["winner"] is None:
            message += "; no winner declared; champion unchanged"
        elif move is None:
            message += f"; winner: {res['winner']} (version {res['winner_version']}); champion unchanged (promote_winner=false)"
        if move is not None:
            message += f"; '{exp['model']}@champion' now points at version {move['to_version']} (was {move['from_version']})"
        return ConcludeResult.model_validate(
            {
                "experiment_id": experiment_id, "model": exp["model"], "concluded": True,
                "recommendation": res["recommendation"], "winner": res["winner"], "winner_version": res["winner_version"],
                "promoted": bool(res["promoted"]),
                "champion_from": None if move is None else move["from_version"],
                "champion_to": None if move is None else move["to_version"],
                "effect": res["effect"], "always_valid_p_value": res["always_valid_p_value"], "reasons": res["reasons"],
                "message": message,
            }
        )

    def start_shadow(
        self, model: str, variant: str = "challenger", sample_rate: float = 1.0, actor: str = LIBRARY_ACTOR
    ) -> "ShadowStarted":
        from mlops_mcp.core.experiments import shadow
        from mlops_mcp.core.experiments.readouts import ShadowStarted

        data = shadow.start(self.store, self.registry, model, variant, sample_rate, actor=actor)
        self.router.invalidate()
        message = (
            f"shadow {data['experiment_id']}: version {data['shadow_version']} ({variant}) now scores "
            f"{sample_rate:.0%} of '{model}' requests answered by the champion (v{data['champion_version']})"
        )
        return ShadowStarted.model_validate({**data, "message": message})

    def shadow_report(self, model: str, experiment_id: int | None = None, wait_seconds: float = 5.0) -> "ShadowReport":
        """The shadow comparison; waits up to ``wait_seconds`` for queued mirrored rows first."""
        from mlops_mcp.core.experiments import shadow
        from mlops_mcp.core.experiments.readouts import ShadowReport

        router = self.router
        if wait_seconds > 0:
            router.drain(wait_seconds)
        row = shadow.latest(self.store, model, experiment_id)
        data = shadow.report(self.store, model, row.id, dropped=router.dropped.get(row.id, 0))
        return ShadowReport.model_validate(data)

    def stop_shadow(self, model: str, actor: str = LIBRARY_ACTOR) -> "ShadowInfo":
        from mlops_mcp.core.experiments import shadow
        from mlops_mcp.core.experiments.readouts import ShadowInfo

        data = shadow.stop(self.store, model, actor=actor)
        self.router.invalidate()
        return ShadowInfo.model_validate(data)

    def list_experiments(self, limit: int = 100) -> "ExperimentList":
        from mlops_mcp.core.experiments.common import list_experiments
        from mlops_mcp.core.experiments.readouts import ExperimentList

        items = list_experiments(self.store, limit=limit)
        return ExperimentList.model_validate({"experiments": items, "count": len(items)})

    def experiment(self, experiment_id: int) -> "ABTestReadout | ShadowReport":
        """One experiment with its current read-out (an A/B read here does not count as a look)."""
        from mlops_mcp.core.experiments.common import get_row

        row = get_row(self.store, experiment_id)
        if row.kind == "ab":
            return self.get_ab_test(experiment_id, persist=False)
        return self.shadow_report(row.model, row.id, wait_seconds=0)

    # -- retraining --------------------------------------------------------------------------------
    def _retraining_event(self, models: list[str], event: str) -> None:
        """Policies are evaluated after every drift report and feedback batch (never failing it)."""
        if not models:
            return
        try:
            self.retraining.on_event(models, event)
        except Exception:
            log.exception("retraining policy evaluation after %s failed", event)

    def set_retraining_policy(
        self,
        model: str,
        *,
        on_drift: bool = True,
        drift_share: float | None = None,
        on_decay: bool = True,
        metric: str | None = None,
        max_drop: float | None = None,
        schedule: str | None = None,
        min_new_labels: int = 200,
        cooldown: str = "24h",
        gate: "GateSpec | dict[str, Any] | None" = None,
        after_gate: str = "none",
        auto_promote: bool = False,
        enabled: bool = True,
        actor: str = LIBRARY_ACTOR,
    ) -> "RetrainingPolicy":
        """When ``model`` retrains by itself, how its challenger is gated, what follows the gate."""
        from mlops_mcp.core.retraining import policy
        from mlops_mcp.core.retraining.results import RetrainingPolicy

        data = policy.set_policy(
            self.store, self.registry, model=model, on_drift=on_drift, drift_share=drift_share, on_decay=on_decay,
            metric=metric, max_drop=max_drop, schedule=schedule, min_new_labels=min_new_labels, cooldown=cooldown,
            gate=gate, after_gate=after_gate, auto_promote=auto_promote, enabled=enabled, actor=actor,
        )
        if data["schedule"] and self.retraining.runs_jobs_here:
            self.retraining.start_worker()  # schedules need a running worker
        return RetrainingPolicy.model_validate(data)

    def get_retraining_policy(self, model: str) -> "RetrainingPolicy":
        from mlops_mcp.core.errors import NotFound
        from mlops_mcp.core.retraining import policy
        from mlops_mcp.core.retraining.results import RetrainingPolicy

        task, _ = policy.model_task(self.registry, model)
        row = policy.get_row(self.store, model)
        if row is None:
            raise NotFound(
                f"model '{model}' has no retraining policy; set one with set_retraining_policy (or retrain now with start_retraining)",
                argument="model",
            )
        return RetrainingPolicy.model_validate(policy.view(row, task))

    def _check_training_params(self, model: str, estimator: str | None, params: dict[str, Any] | None) -> None:
        """The checks train_model makes up front (names, the operator's caps, values), made before a
        retraining job is queued, so a bad ``params`` is refused now rather than failing the job."""
        if not params and not estimator:
            return
        from mlops_mcp.core.errors import InvalidInput, NotFound
        from mlops_mcp.core.models.pipeline import TrainingLimits, make_estimator
        from mlops_mcp.core.models.refs import ModelRef
        from mlops_mcp.core.models.registry import TAG_ESTIMATOR, TAG_TASK

        try:
            tags = self.registry.resolve(ModelRef.parse(model)).tags or {}
        except NotFound:
            return  # no champion: the job's own checks say what is missing
        name, task = estimator or tags.get(TAG_ESTIMATOR), tags.get(TAG_TASK)
        if not name or not task:
            return
        candidate = make_estimator(name, task, params or {}, TrainingLimits.from_settings(self.settings))
        validate = getattr(candidate, "_validate_params", None)  # scikit-learn's own value checks, without fitting
        if callable(validate):
            try:
                validate()
            except (ValueError, TypeError) as exc:
                raise InvalidInput(str(exc).splitlines()[0][:500], argument="params") from None

    def start_retraining(
        self,
        model: str,
        reason: str | None = None,
        *,
        dataset: str | None = None,
        use_feedback: bool = True,
        since: str | None = None,
        estimator: str | None = None,
        params: dict[str, Any] | None = None,
        after_gate: str | None = None,
        auto_promote: bool | None = None,
        wait: bool = False,
        wait_seconds: float = 600.0,
        actor: str = LIBRARY_ACTOR,
        progress: Progress | None = None,
    ) -> "RetrainingStarted":
        """Queue a retraining job (answers at once); with ``wait`` also follow it to its end."""
        from mlops_mcp.core.retraining.jobs import view
        from mlops_mcp.core.retraining.results import RetrainingJob, RetrainingStarted
        from mlops_mcp.core.retraining.service import MAX_WAIT_SECONDS

        if not 0 < wait_seconds <= MAX_WAIT_SECONDS:
            from mlops_mcp.core.errors import InvalidInput

            raise InvalidInput(f"{wait_seconds!r} is outside (0, {MAX_WAIT_SECONDS}] seconds", argument="wait_seconds")
        service = self.retraining
        self._check_training_params(model, estimator, params)
        row, _ = service.start(
            model, reason, actor, dataset=dataset, use_feedback=use_feedback, since=since, estimator=estimator,
            params=params, after_gate=after_gate, auto_promote=auto_promote,
        )
        data = service.wait(row.id, wait_seconds, progress) if wait else view(row)
        job = RetrainingJob.model_validate(data)
        if job.status in ("queued", "running"):
            where = "a `mlops-mcp worker` process" if service.postgres else "the worker inside this server"
            if not service.postgres and not service.runs_jobs_here:
                where = "a server with MLOPS_RETRAINING_WORKER=auto"
            message = (
                f"Retraining job {job.job_id} for '{model}' is {job.status} ({where} runs it; stage {job.stage}). "
                f"Follow it with get_retraining_job(job_id={job.job_id})."
            )
        else:
            message = job.describe()
        return RetrainingStarted(job_id=job.job_id, status=job.status, model=model, message=message, job=job)

    def get_retraining_job(self, job_id: int) -> "RetrainingJob":
        from mlops_mcp.core.retraining.results import RetrainingJob

        return RetrainingJob.model_validate(self.retraining.get(job_id))

    def list_retraining_jobs(self, model: str | None = None, status: str | None = None, limit: int = 20) -> "RetrainingJobList":
        from mlops_mcp.core.retraining import jobs
        from mlops_mcp.core.retraining.results import RetrainingJobList

        if model is not None:
            self.registry.registered_model(model)
        self.retraining.recover_once()
        rows = jobs.list_rows(self.store, model, status, limit)
        return RetrainingJobList.model_validate({"jobs": [_job_summary(r) for r in rows], "count": len(rows)})

    def plan_cancel_retraining(self, job_id: int, why_not: str = "not confirmed") -> "CancelResult":
        """What cancelling would do (raises Conflict when the job cannot be cancelled)."""
        from mlops_mcp.core.retraining import jobs
        from mlops_mcp.core.retraining.results import CancelResult

        row = jobs.get_row(self.store, job_id)
        jobs.check_cancellable(row)
        what = "withdraw it from the queue" if row.status == "queued" else f"stop its training process (stage {row.stage}, {row.percent:.0f}%) and remove anything it registered"
        return CancelResult(
            job_id=row.id, model=row.model, status=row.status, confirmed=False, cancelled=False,
            message=f"Nothing changed ({why_not}). Cancelling retraining job {row.id} of '{row.model}' would {what}; call again with confirm=true.",
        )

    def cancel_retraining_job(self, job_id: int, wait_seconds: float = 15.0) -> "CancelResult":
        """Cancel: a queued job at once; a running one is stopped (its child killed) and cleaned up."""
        from mlops_mcp.core.retraining.results import CancelResult

        service = self.retraining
        data = service.cancel(job_id)
        if data["status"] == "running" and wait_seconds > 0:
            data = service.wait(job_id, wait_seconds)
        done = data["status"] == "cancelled"
        text = data.get("message") or ""
        message = (
            f"Retraining job {job_id} of '{data['model']}' is cancelled: {text}" if done
            else f"Cancel of retraining job {job_id} requested; it is {data['status']} ({text}). Check get_retraining_job."
        )
        return CancelResult(job_id=job_id, model=data["model"], status=data["status"], confirmed=True,
                            cancelled=done or data["cancel_requested"], message=message)

    def model_retraining(self, model: str, limit: int = 20) -> "ModelRetraining":
        """A model's policy and recent jobs (resource mlops://models/{name}/retraining)."""
        from mlops_mcp.core.retraining import jobs, policy
        from mlops_mcp.core.retraining.results import ModelRetraining, RetrainingPolicy

        task, _ = policy.model_task(self.registry, model)
        row = policy.get_row(self.store, model)
        rows = jobs.list_rows(self.store, model, None, limit)
        active = next((r.id for r in rows if r.status in ("queued", "running")), None)
        return ModelRetraining(
            model=model, policy=None if row is None else RetrainingPolicy.model_validate(policy.view(row, task)),
            active_job_id=active, jobs=[_job_summary(r) for r in rows],  # type: ignore[misc]
        )

    def evaluate_retraining_policies(self, model: str | None = None) -> "PolicyEvaluation":
        """Evaluate every enabled policy now (or one model's): drift, decay and schedule triggers."""
        import time as _time

        from mlops_mcp.core.retraining import triggers
        from mlops_mcp.core.retraining.results import PolicyEvaluation

        if model is not None:
            started = _time.perf_counter()
            out = triggers.evaluate_model(self, model)
            return PolicyEvaluation(evaluated=1, fired=[out] if out else [], seconds=_time.perf_counter() - started)
        return PolicyEvaluation.model_validate(triggers.evaluate_all(self))


def _job_summary(row: Any) -> dict[str, Any]:
    return {
        "job_id": row.id, "model": row.model, "status": row.status, "stage": row.stage, "percent": row.percent,
        "trigger": row.trigger, "reason": row.reason, "new_version": row.new_version,
        "champion_version": row.champion_version, "verdict": (row.gate or {}).get("verdict"), "message": row.message,
        "created_at": row.created_at, "finished_at": row.finished_at,
    }


def _arms(data: dict[str, Any]) -> dict[str, Any]:
    """The read-out's ``arms`` mapping as ``arm_a`` / ``arm_b``."""
    arms = data.get("arms") or {}
    return {**data, "arm_a": arms.get("a"), "arm_b": arms.get("b")} if arms else data
