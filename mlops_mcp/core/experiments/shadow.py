"""Shadow deployments: start, stop, report.

The shadow version scores a sample of live requests off the request path (see
:mod:`mlops_mcp.core.experiments.router`); its answers are in ``shadow_predictions``, keyed by the
primary's ``prediction_id``. The report joins them to the primary's logged prediction and, where
it exists, the newest label, and summarises with
:func:`mlops_mcp.core.experiments.stats.shadow_summary` (primary = a, shadow = b).
"""

from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import Conflict, InvalidInput, NotFound

from .common import get_row, load_version, now, resolve_variant, running, same_features, view

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.store import Store

ERRORS_SHOWN = 5


def start(store: "Store", registry: "Registry", model: str, variant: str = "challenger", sample_rate: float = 1.0,
          actor: str = "library") -> dict[str, Any]:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from mlops_mcp.core.models.registry import ModelRef, check_name
    from mlops_mcp.core.store.tables import ExperimentRow

    check_name(model, "model")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not 0 < sample_rate <= 1:
        raise InvalidInput(
            f"must be in (0, 1]: the share of live requests the shadow also scores (1.0 = all); got {sample_rate!r}",
            argument="sample_rate",
        )
    registry.registered_model(model)
    existing = running(store, model, "shadow")
    if existing is not None:
        raise Conflict(
            f"shadow {existing.id} (version {existing.version_b}) is already running on '{model}'; stop it with stop_shadow first",
            argument="model",
        )
    version = resolve_variant(registry, model, variant, "variant")
    champion = int(registry.resolve(ModelRef(model, alias="champion"), argument="model").version)
    if champion == version:
        raise InvalidInput(
            f"'{variant}' points at version {version}, which is the champion that answers the live traffic; "
            "shadow a different version",
            argument="variant",
        )
    shadow_model = load_version(registry, model, version, "variant")
    same_features(load_version(registry, model, champion, "model"), shadow_model, "variant")
    record = {
        "model": model, "kind": "shadow", "status": "running", "task": shadow_model.task, "variant_a": None,
        "variant_b": str(variant), "version_a": None, "version_b": version, "traffic_split": float(sample_rate),
        "metric": None, "alpha": 0.05, "looks": 0, "started_at": now(), "started_by": actor,
    }
    try:
        with store.write() as session:
            new_id = session.execute(insert(ExperimentRow).returning(ExperimentRow.id), [record]).scalar_one()
    except IntegrityError:
        raise Conflict(f"another shadow was started on '{model}' at the same moment", argument="model") from None
    return {**view(get_row(store, new_id)), "champion_version": champion}


def stop(store: "Store", model: str, actor: str = "library") -> dict[str, Any]:
    from sqlalchemy import update

    from mlops_mcp.core.store.tables import ExperimentRow

    row = running(store, model, "shadow")
    if row is None:
        raise NotFound(f"no shadow is running on '{model}'; start one with start_shadow", argument="model")
    with store.write() as session:
        done = session.execute(
            update(ExperimentRow).where(ExperimentRow.id == row.id, ExperimentRow.status == "running")
            .values(status="stopped", ended_at=now(), ended_by=actor)
        ).rowcount
    if not done:
        raise Conflict(f"shadow {row.id} on '{model}' was stopped by another call just now", argument="model")
    return view(get_row(store, row.id))


def latest(store: "Store", model: str, experiment_id: int | None = None) -> Any:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import ExperimentRow

    if experiment_id is not None:
        row = get_row(store, experiment_id, kind="shadow")
        if row.model != model:
            raise InvalidInput(f"shadow {experiment_id} belongs to '{row.model}', not '{model}'", argument="experiment_id")
        return row
    with store.read() as s:
        row = s.scalars(
            select(ExperimentRow).where(ExperimentRow.model == model, ExperimentRow.kind == "shadow").order_by(ExperimentRow.id.desc())
        ).first()
    if row is None:
        raise NotFound(f"'{model}' has never had a shadow; start one with start_shadow", argument="model")
    return row


def report(store: "Store", model: str, experiment_id: int | None = None, alpha: float = 0.05, dropped: int = 0) -> dict[str, Any]:
    import numpy as np
    from sqlalchemy import and_, select

    from mlops_mcp.core.store.tables import Feedback, Prediction, ShadowPredictionRow

    from . import stats

    row = latest(store, model, experiment_id)
    S, P, F = ShadowPredictionRow, Prediction, Feedback
    q = (
        select(S.output, S.score, S.latency_ms, S.error, P.output, P.score, P.latency_ms, F.actual)
        .select_from(S)
        .join(P, P.id == S.prediction_id)
        .outerjoin(F, and_(F.prediction_id == S.prediction_id, F.is_latest == True))  # noqa: E712
        .where(S.experiment_id == row.id)
    )
    with store.read() as s:
        rows = s.execute(q).all()
        errors = s.execute(
            select(S.error).where(S.experiment_id == row.id, S.error.is_not(None)).group_by(S.error).limit(ERRORS_SHOWN)
        ).scalars().all()
    ok = [r for r in rows if r[3] is None]
    n_errors = len(rows) - len(ok)
    task = row.task
    if task == "classification":
        prim = np.array([str(r[4]) for r in ok], dtype=object)
        shad = np.array([str(r[0]) for r in ok], dtype=object)
        y = np.array([None if r[7] is None else str(r[7]) for r in ok], dtype=object)
    else:
        prim = np.array([float(r[4]) for r in ok], dtype=float)
        shad = np.array([float(r[0]) for r in ok], dtype=float)
        y = np.array([np.nan if r[7] is None else float(r[7]) for r in ok], dtype=float)
    summ = stats.shadow_summary(
        task, prim, shad,
        latency_primary_ms=[r[6] for r in ok], latency_shadow_ms=[r[2] for r in ok],
        y_true=y, alpha=alpha,
    ).to_dict()
    out: dict[str, Any] = {**view(row), "mirrored": len(rows), "compared": summ["n"], "shadow_errors": n_errors,
                           "error_examples": list(errors), "dropped_queue_full": dropped}
    test = summ.pop("labeled_test")
    summ.pop("n")
    out.update(summ)
    out["labeled_test"] = None if test is None else {
        k: test[k] for k in ("test", "p_value", "diff", "ci_low", "ci_high", "only_a_correct", "only_b_correct", "note")
    }
    # score differences (shadow - primary) for classifiers with scores: how far the probabilities move
    if task == "classification":
        pairs = [(r[5], r[1]) for r in ok if r[5] is not None and r[1] is not None]
        if pairs:
            d = np.array([b - a for a, b in pairs], dtype=float)
            qs = np.quantile(d, [0.05, 0.5, 0.95])
            out["score_diff"] = {"mean": float(d.mean()), "abs_mean": float(np.abs(d).mean()), "p05": float(qs[0]),
                                 "p50": float(qs[1]), "p95": float(qs[2]), "abs_max": float(np.abs(d).max())}
    notes = list(out.get("notes") or [])
    if n_errors:
        notes.append(f"{n_errors} mirrored rows failed in the shadow (the callers were not affected); see error_examples")
    if dropped:
        notes.append(f"{dropped} rows were not mirrored because the shadow queue was full (this process)")
    out["notes"] = notes
    return out
