"""The model registry: MLflow's, through its public client API, with aliases (never stages).

MLflow knows where an alias points now, not where it pointed before: every move made here is also
written to the store's ``alias_events``, and moves made outside (a notebook's ``MlflowClient``)
are noticed and recorded as ``observed`` the next time the alias is read here. Rollback walks
that history.
"""

import logging
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.config import Settings
from mlops_mcp.core.errors import Conflict, InvalidInput, NotFound, listing
from mlops_mcp.core.models.pipeline import FeatureSchema
from mlops_mcp.core.models.profile import ReferenceProfile, read_profile, read_schema
from mlops_mcp.core.models.refs import DEFAULT_ALIAS, ModelRef, check_alias, check_name  # noqa: F401  (re-exported)
from mlops_mcp.core.values import plain

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from sqlalchemy.orm import Session

    from mlops_mcp.core.store import Store

log = logging.getLogger(__name__)

EXPERIMENT_PREFIX = "mlops-mcp/"
TAG_REFERENCE = "mlops.reference"
TAG_TASK = "mlops.task"
TAG_TARGET = "mlops.target"
TAG_ESTIMATOR = "mlops.estimator"
TAG_DATASET = "mlops.dataset"
TAG_PARENT = "mlops.parent_version"


@dataclass
class AliasTransaction:
    """The store session an alias move is recorded in, and how to undo its MLflow moves."""

    session: "Session"
    undo: list[Callable[[], None]]


@dataclass
class LoadedModel:
    """A version ready to serve: the fitted model, what it expects, and what it is."""

    name: str
    version: int
    model: Any  # a scikit-learn estimator/pipeline, or an MLflow pyfunc model
    flavor: str  # "sklearn" or "pyfunc"
    schema: FeatureSchema
    task: str
    classes: list[Any] | None
    run_id: str | None
    reference_dir: Path | None
    encoder: Any = None  # FastEncoder for our pipelines, verified against sklearn at load
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def is_pipeline(self) -> bool:
        return self.flavor == "sklearn" and hasattr(self.model, "named_steps") and "preprocess" in self.model.named_steps


class Registry:
    """All registry reads and alias moves. One per engine; thread-safe."""

    def __init__(self, settings: Settings, store: "Store") -> None:
        self.settings = settings
        self.store = store
        self._cache: OrderedDict[tuple[str, int, int, str | None], LoadedModel] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._load_locks: dict[Any, threading.Lock] = {}
        self._alias_locks: dict[tuple[str, str], threading.RLock] = {}
        self._profiles: OrderedDict[tuple[str, int, int], ReferenceProfile] = OrderedDict()
        self._held = threading.local()  # alias transactions this thread is inside
        self.cache_size = 16
        #: serving's recent lookups: (name, alias, version) -> (ModelVersion, expiry on the monotonic clock)
        self._resolved: dict[tuple[str, str | None, int | None], tuple["ModelVersion", float]] = {}
        self._resolved_generation = 0

    # -- MLflow access ------------------------------------------------------------------------
    @cached_property
    def client(self) -> "MlflowClient":
        import os

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow import MlflowClient

        from mlops_mcp.core.locks import interprocess_lock, sqlite_path

        uri = self.settings.tracking_uri or ""
        db_file = sqlite_path(uri)
        if db_file is None:
            return MlflowClient(tracking_uri=uri, registry_uri=uri)
        # MLflow creates and migrates its SQLite database on first use: two servers starting on one
        # home at once left it half-migrated for good. One process at a time does it.
        db_file.parent.mkdir(parents=True, exist_ok=True)
        with interprocess_lock(db_file.with_name(db_file.name + ".init.lock")):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)  # the tracking store: created/migrated here
            client.search_registered_models(max_results=1)  # the registry store
        return client

    def experiment_id(self, model: str) -> str:
        """The MLflow experiment holding this model's training runs (created on first use)."""
        name = EXPERIMENT_PREFIX + model
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = None
        uri = self.settings.tracking_uri or ""
        if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
            assert self.settings.artifact_root is not None
            self.settings.artifact_root.mkdir(parents=True, exist_ok=True)
            location = self.settings.artifact_root.as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another call
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def model_names(self) -> list[str]:
        return sorted(m.name for m in self.search_models())

    def search_models(self) -> list[Any]:
        out: list[Any] = []
        token = None
        while True:
            page = self.client.search_registered_models(max_results=200, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    def ensure_model(self, name: str) -> None:
        """Create the registered model unless it exists (a concurrent creation is fine)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name, tags={"mlops.created_by": "mlops-mcp"})
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in (exc.error_code or "") and "already exists" not in str(exc):
                raise

    def registered_model(self, name: str, argument: str = "model") -> Any:
        from mlflow.exceptions import MlflowException

        check_name(name, argument)
        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if _is_not_found(exc):
                raise NotFound(
                    f"no registered model '{name}'; models: {listing(self.model_names())}. "
                    "Train one with train_model or register one with register_model",
                    argument=argument,
                ) from None
            raise

    def versions(self, name: str) -> list["ModelVersion"]:
        """All versions, newest first."""
        found = self.client.search_model_versions(f"name = '{name}'", max_results=10_000)
        return sorted(found, key=lambda v: int(v.version), reverse=True)

    def version(self, name: str, version: int, argument: str = "version") -> "ModelVersion":
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if not _is_not_found(exc):
                raise
        self.registered_model(name)
        existing = [int(v.version) for v in self.versions(name)]
        raise NotFound(f"model '{name}' has no version {version}; versions: {listing(existing)}", argument=argument)

    def aliases(self, name: str) -> dict[str, int]:
        model = self.registered_model(name)
        return {a: int(v) for a, v in (model.aliases or {}).items()}

    def resolve(self, ref: ModelRef, argument: str = "model") -> "ModelVersion":
        """The ModelVersion a reference points at now (an alias is looked up on every call, so a
        move made anywhere takes effect on the very next prediction)."""
        from mlflow.exceptions import MlflowException

        if ref.version is not None:
            return self.version(ref.name, ref.version, argument=argument)
        assert ref.alias is not None
        try:
            return self.client.get_model_version_by_alias(ref.name, ref.alias)
        except MlflowException as exc:
            if not _is_not_found(exc):
                raise
        aliases = self.aliases(ref.name)  # raises NotFound for an unknown model
        versions = [int(v.version) for v in self.versions(ref.name)]
        hint = f"aliases: {listing(f'{a} -> v{v}' for a, v in sorted(aliases.items()))}"
        if not aliases:
            hint = "it has no aliases yet; promote a version with set_model_alias"
        raise NotFound(
            f"model '{ref.name}' has no alias '{ref.alias}'; {hint}; versions: {listing(versions)}. "
            f"Use '{ref.name}/<version>' to name a version directly",
            argument=argument,
        )

    def resolve_recent(self, ref: ModelRef, max_age: float | None = None, argument: str = "model") -> "ModelVersion":
        """:meth:`resolve`, reusing a lookup at most ``max_age`` seconds old: serving's hot path,
        where asking MLflow was most of a 1-row prediction's time. Alias moves made through this
        registry forget every reused lookup, so they apply on the next call; moves made elsewhere
        apply within ``max_age`` (default: the ``alias_cache_seconds`` setting). Failed lookups are
        never reused."""
        if max_age is None:
            max_age = self.settings.alias_cache_seconds
        if max_age <= 0:
            return self.resolve(ref, argument)
        key = (ref.name, ref.alias, ref.version)
        now = time.monotonic()
        with self._cache_lock:
            hit = self._resolved.get(key)
            if hit is not None and hit[1] > now:
                return hit[0]
            generation = self._resolved_generation
        mv = self.resolve(ref, argument)
        with self._cache_lock:
            if generation == self._resolved_generation:  # no move began meanwhile
                if len(self._resolved) >= 4096:
                    self._resolved.clear()
                self._resolved[key] = (mv, now + max_age)
        return mv

    def forget_resolved(self) -> None:
        """Drop serving's reused lookups (after an alias move, or a version deleted)."""
        with self._cache_lock:
            self._resolved_generation += 1
            self._resolved.clear()

    # -- loading ------------------------------------------------------------------------------
    def load(self, mv: "ModelVersion") -> LoadedModel:
        """The served form of a version, cached per (name, version, creation time, reference): a
        reference profile attached after a first load (register_model with reference_dataset, or
        from outside) gives a new entry, with the reference's schema and fast encoder."""
        key = (mv.name, int(mv.version), int(mv.creation_timestamp or 0), (mv.tags or {}).get(TAG_REFERENCE))
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            with self._cache_lock:
                hit = self._cache.get(key)
                if hit is not None:
                    return hit
            loaded = self._load(mv)
            with self._cache_lock:
                self._cache[key] = loaded
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return loaded

    def _load(self, mv: "ModelVersion") -> LoadedModel:
        import mlflow.artifacts
        import yaml

        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=self.client.get_model_version_download_uri(mv.name, mv.version),
                tracking_uri=self.settings.tracking_uri,
            )
        )
        meta = yaml.safe_load((local / "MLmodel").read_text()) if (local / "MLmodel").exists() else {}
        flavors = meta.get("flavors", {})
        if "sklearn" in flavors:
            import mlflow.sklearn

            model: Any = mlflow.sklearn.load_model(str(local))
            flavor = "sklearn"
        else:
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(local))
            flavor = "pyfunc"
        reference_dir = self.reference_dir(mv)
        schema = read_schema(reference_dir) if reference_dir else _schema_from_model(model, meta, flavor)
        tags = mv.tags or {}
        task = tags.get(TAG_TASK) or schema.task or ("classification" if hasattr(model, "predict_proba") else "regression")
        classes = list(getattr(model, "classes_", [])) or schema.classes
        classes = [plain(c) for c in classes] if classes else None
        loaded = LoadedModel(mv.name, int(mv.version), model, flavor, schema, task, classes, mv.run_id, reference_dir)
        if loaded.is_pipeline and reference_dir is not None:
            loaded.encoder = _verified_encoder(model, schema, reference_dir)
        return loaded

    # -- reference profiles -------------------------------------------------------------------
    def reference_dir(self, mv: "ModelVersion") -> Path | None:
        """Local copy of the version's reference profile (downloaded once), or None if it has none.

        The cache folder is named by the reference's artifact URI as well as name and version: a
        model deleted and registered again reuses version numbers, never artifact locations."""
        import hashlib
        import os
        import tempfile

        uri = (mv.tags or {}).get(TAG_REFERENCE)
        if not uri:
            return None
        digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
        target = self.settings.home / "cache" / "reference" / mv.name / f"{mv.version}-{digest}"
        if (target / "schema.json").exists():
            return target
        with self._key_lock(("reference", str(target))):
            if (target / "schema.json").exists():
                return target
            import mlflow.artifacts

            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            try:
                mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp), tracking_uri=self.settings.tracking_uri)
                inner = next((p.parent for p in tmp.rglob("schema.json")), None)
                if inner is None:
                    log.warning("reference profile of %s/%s at %s has no schema.json", mv.name, mv.version, uri)
                    return None
                try:
                    os.replace(inner, target)  # atomic; another process may have won the race
                except OSError:
                    if not (target / "schema.json").exists():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return target

    def _key_lock(self, key: Any) -> threading.Lock:
        with self._cache_lock:
            return self._load_locks.setdefault(key, threading.Lock())

    def reference(self, mv: "ModelVersion", argument: str = "model") -> ReferenceProfile:
        """The version's reference profile, read once per version (profiles never change)."""
        key = (mv.name, int(mv.version), int(mv.creation_timestamp or 0))
        with self._cache_lock:
            hit = self._profiles.get(key)
        if hit is not None:
            return hit
        profile = self._read_reference(mv, argument)
        with self._cache_lock:
            self._profiles[key] = profile
            while len(self._profiles) > self.cache_size:
                self._profiles.popitem(last=False)
        return profile

    def _read_reference(self, mv: "ModelVersion", argument: str) -> ReferenceProfile:
        folder = self.reference_dir(mv)
        if folder is None:
            raise NotFound(
                f"version {mv.version} of '{mv.name}' has no reference profile (it was registered without "
                "reference_dataset); pass reference data explicitly, or register it again with reference_dataset",
                argument=argument,
            )
        return read_profile(folder)

    # -- alias moves and their history --------------------------------------------------------
    def alias_lock(self, name: str, alias: str) -> "threading.RLock":
        """The in-process half of :meth:`alias_transaction` (threads of this server queue here,
        so only one of them at a time waits for the store's cross-process lock)."""
        with self._cache_lock:
            return self._alias_locks.setdefault((name, alias), threading.RLock())

    @contextmanager
    def alias_transaction(self, name: str, alias: str) -> Iterator["AliasTransaction"]:
        """Read, move in MLflow and record as one step, serialised against every other mover of
        this alias: threads of this process (a lock) and other server processes on the same store
        (the store's write lock on SQLite, an advisory lock on PostgreSQL, held until the event is
        committed). So concurrent promotions cannot break the history's from -> to chain, a move
        made by another server is never mistaken for one made outside, and MLflow never sees two
        writers of one alias at once. Re-entrant within a thread; if the transaction fails, the
        MLflow moves made inside it are undone (no move without its event)."""
        key = (name, alias)
        with self.alias_lock(name, alias):
            held: dict[tuple[str, str], AliasTransaction] = self._held.__dict__.setdefault("txns", {})
            if key in held:
                yield held[key]
                return
            undo: list[Callable[[], None]] = []
            self.forget_resolved()  # lookups that begin now are not kept (the alias is moving)
            try:
                with self.store.write() as session:
                    self.store.hold(session, f"mlops.alias:{name}@{alias}")
                    held[key] = AliasTransaction(session, undo)
                    try:
                        yield held[key]
                    finally:
                        del held[key]
            except BaseException:
                for step in reversed(undo):
                    try:
                        step()
                    except Exception:
                        log.exception("could not undo an alias move of %s@%s in MLflow", name, alias)
                raise
            finally:
                self.forget_resolved()  # the next call sees where the alias points now

    def set_alias(self, name: str, alias: str, version: int, actor: str, reason: str | None, kind: str = "set") -> dict[str, Any]:
        """Point ``alias`` at ``version`` and record the move; returns from/to versions."""
        check_alias(alias)
        self.version(name, version)  # NotFound names the versions that exist
        with self.alias_transaction(name, alias) as txn:
            current = self._sync_alias(txn, name, alias, actor)
            if current == version:
                return {"model": name, "alias": alias, "from_version": current, "to_version": version, "changed": False}
            self._move(txn, name, alias, current, version, kind, actor, reason)
        return {"model": name, "alias": alias, "from_version": current, "to_version": version, "changed": True}

    def set_alias_if_unset(self, name: str, alias: str, version: int, actor: str, reason: str) -> dict[str, Any] | None:
        """Point ``alias`` at ``version`` only if it has never pointed anywhere (no alias in MLflow,
        no event in its history): the check and the move are one step, so of two first versions
        registered at once only one gets it. Returns the move, or None when it was not made."""
        check_alias(alias)
        with self.alias_transaction(name, alias) as txn:
            if self.aliases(name).get(alias) is not None or self.alias_events(name, alias, session=txn.session):
                return None
            self._move(txn, name, alias, None, version, "set", actor, reason)
        return {"model": name, "alias": alias, "from_version": None, "to_version": version, "changed": True}

    def first_champion(self, name: str, version: int, actor: str, via: str) -> dict[str, Any] | None:
        """A model that has never had a champion gets one: its new version, so that its plain name
        works at once (every tool takes ``name`` to mean ``name@champion``). Recorded in the alias
        history with the reason; once a model has (or had) a champion, it moves only by
        promotion. Returns the move, or None when the model already has one (or had one)."""
        return self.set_alias_if_unset(
            name, DEFAULT_ALIAS, version, actor,
            reason=f"version {version} ({via}) made champion automatically: '{name}' had no champion yet, so its "
            "plain name now serves this version; later versions become champion only by promotion (set_model_alias)",
        )

    def rollback(self, name: str, alias: str, to_version: int | None, actor: str, reason: str | None) -> dict[str, Any]:
        """Plan and move in one locked step (see :meth:`rollback_target`)."""
        with self.alias_transaction(name, alias):
            current, target = self.rollback_plan(name, alias, to_version, actor)
            move = self.set_alias(name, alias, target, actor, reason, kind="rollback")
        return {**move, "from_version": current}

    def rollback_plan(self, name: str, alias: str, to_version: int | None, actor: str) -> tuple[int | None, int]:
        if to_version is not None:
            self.version(name, to_version, argument="to_version")
            return self.sync_alias(name, alias, actor), to_version
        return self.rollback_target(name, alias)

    def _move(
        self, txn: "AliasTransaction", name: str, alias: str, current: int | None, version: int | None, kind: str,
        actor: str, reason: str | None,
    ) -> None:
        """Move in MLflow and add the event to the alias transaction (committed when it ends; if
        that fails the MLflow move is undone: no event without the move, no move without the event)."""
        from mlops_mcp.core.store.tables import AliasEvent

        if version is None:
            self.client.delete_registered_model_alias(name, alias)
        else:
            self.client.set_registered_model_alias(name, alias, str(version))
        if current is None:
            txn.undo.append(lambda: self.client.delete_registered_model_alias(name, alias))
        else:
            txn.undo.append(lambda: self.client.set_registered_model_alias(name, alias, str(current)))
        txn.session.add(
            AliasEvent(
                model=name, alias=alias, from_version=current, to_version=version,
                kind=kind, at=datetime.now(UTC), actor=actor, reason=reason,
            )
        )
        txn.session.flush()

    def sync_alias(self, name: str, alias: str, actor: str) -> int | None:
        """Where the alias points in MLflow now; a move made outside this server is recorded.

        The common case (MLflow and the history agree) needs no lock; a disagreement is checked
        again under the alias transaction, where a move another server is making right now has
        either finished (and agrees) or not begun."""
        held = self._held.__dict__.get("txns", {}).get((name, alias))
        if held is None:
            current = self.aliases(name).get(alias)
            last = self.alias_events(name, alias)[-1:]
            if (last[0].to_version if last else None) == current:
                return current
        with self.alias_transaction(name, alias) as txn:
            return self._sync_alias(txn, name, alias, actor)

    def _sync_alias(self, txn: "AliasTransaction", name: str, alias: str, actor: str) -> int | None:
        current = self.aliases(name).get(alias)
        last = self.alias_events(name, alias, session=txn.session)[-1:] or None
        recorded = last[0].to_version if last else None
        if current != recorded and (last is not None or current is not None):
            from mlops_mcp.core.store.tables import AliasEvent

            txn.session.add(
                AliasEvent(
                    model=name, alias=alias, from_version=recorded, to_version=current, kind="observed",
                    at=datetime.now(UTC), actor="outside mlops-mcp",
                    reason=f"noticed while {actor} used the model: moved outside this server",
                )
            )
            txn.session.flush()
        return current

    def alias_events(self, name: str, alias: str | None = None, session: "Session | None" = None) -> list[Any]:
        """The recorded moves of a model's aliases (one alias, or all), oldest first."""
        from sqlalchemy import select

        from mlops_mcp.core.store.tables import AliasEvent

        query = select(AliasEvent).where(AliasEvent.model == name)
        if alias is not None:
            query = query.where(AliasEvent.alias == alias)
        query = query.order_by(AliasEvent.id)
        if session is not None:
            return list(session.scalars(query).all())
        with self.store.read() as own:
            return list(own.scalars(query).all())

    def rollback_target(self, name: str, alias: str) -> tuple[int | None, int]:
        """(current version, version to go back to). Rollbacks undo promotions one by one, so
        after v1 -> v2 -> v3, two rollbacks lead to v2 and then v1."""
        current = self.sync_alias(name, alias, "rollback")
        if current is None:
            aliases = self.aliases(name)
            raise NotFound(f"model '{name}' has no alias '{alias}' to roll back; aliases: {listing(aliases)}", argument="alias")
        held = self._held.__dict__.get("txns", {}).get((name, alias))
        target = _rollback_version(self.alias_events(name, alias, session=held.session if held else None), current)
        if target is None:
            raise Conflict(
                f"'{name}@{alias}' (now v{current}) has no earlier version in its history to roll back to; "
                "pass to_version to choose one",
                argument="alias",
            )
        return current, target

    def rollback_candidate(self, name: str, alias: str = "champion") -> int | None:
        """The version a rollback would go back to now, or None; reads only (for suggestions:
        a move made outside this server is recorded by the rollback itself, not here)."""
        current = self.aliases(name).get(alias)
        return None if current is None else _rollback_version(self.alias_events(name, alias), current)

    def history(self, name: str) -> list[dict[str, Any]]:
        self.registered_model(name)
        for alias in self.aliases(name):
            self.sync_alias(name, alias, "history")
        return [
            {
                "alias": e.alias, "from_version": e.from_version, "to_version": e.to_version, "kind": e.kind,
                "at": e.at, "actor": e.actor, "reason": e.reason,
            }
            for e in reversed(self.alias_events(name))
        ]

    def run_metrics(self, run_id: str | None) -> dict[str, float]:
        if not run_id:
            return {}
        try:
            return dict(self.client.get_run(run_id).data.metrics)
        except Exception:  # a run deleted or on another tracking server
            return {}


def _verified_encoder(model: Any, schema: FeatureSchema, reference_dir: Path) -> Any:
    """The numpy fast path for a pipeline, or None if it does not reproduce sklearn exactly."""
    try:
        from mlops_mcp.core.models.encoding import FastEncoder
        from mlops_mcp.core.models.pipeline import coerce_features
        from mlops_mcp.core.models.profile import read_profile

        sample = read_profile(reference_dir).sample.head(500)
        encoder = FastEncoder(model, schema)
        encoder.check(coerce_features(sample[schema.features], schema))
        return encoder if encoder.fast else None
    except Exception:  # any surprise: serve through sklearn itself
        log.warning("fast encoder unavailable for this model; using the sklearn transform", exc_info=True)
        return None


def _is_not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "") or ""
    return "RESOURCE_DOES_NOT_EXIST" in code or "NOT_FOUND" in code or "not found" in str(exc).lower()




def _schema_from_model(model: Any, meta: dict[str, Any], flavor: str) -> FeatureSchema:
    """For versions registered without a reference: the input schema from the MLflow signature,
    else from scikit-learn's ``feature_names_in_``."""
    import json

    inputs = (meta.get("signature") or {}).get("inputs")
    if inputs:
        spec = json.loads(inputs) if isinstance(inputs, str) else inputs
        names = [c.get("name") for c in spec if c.get("name")]
        if names:
            kinds = {c["name"]: ("categorical" if c.get("type") in ("string", "boolean") else "numeric") for c in spec if c.get("name")}
            return FeatureSchema(features=names, kinds=kinds, dtypes={n: str(kinds[n]) for n in names})  # type: ignore[arg-type]
    names_in = getattr(model, "feature_names_in_", None)
    if names_in is not None:
        names = [str(n) for n in names_in]
        return FeatureSchema(features=names, kinds={n: "numeric" for n in names}, dtypes={n: "float64" for n in names})
    raise InvalidInput(
        "the model has no input schema (no MLflow signature, no feature names); register it with "
        "reference_dataset so its columns are known",
        argument="model",
    )


def _rollback_version(events: list[Any], current: int) -> int | None:
    """Where a rollback of an alias now at ``current`` goes, from its recorded moves (oldest first).
    Rollbacks undo promotions one by one, so after v1 -> v2 -> v3, two rollbacks lead to v2 and then v1."""
    stack: list[int | None] = []
    for e in events:
        if e.kind == "rollback":
            # back to the newest place the alias held that version (an explicit to_version may
            # skip several steps); a version never held before replaces the top
            if e.to_version in stack:
                del stack[len(stack) - stack[::-1].index(e.to_version) :]
            elif stack:
                stack[-1] = e.to_version
            continue
        if not stack and e.from_version is not None:
            stack.append(e.from_version)
        if e.to_version is None:
            stack = []
        else:
            stack.append(e.to_version)
    previous = [v for v in stack[:-1] if v is not None and v != current]
    return previous[-1] if previous else None
