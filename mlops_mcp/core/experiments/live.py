"""Live A/B tests: start, read out, conclude.

Outcomes come from joining the test's logged predictions (``predictions.experiment_id``, arm in
``variant``) to the newest label of each (``feedback.is_latest``). Per row: correct or not
(``accuracy``, a proportion), or a loss (``log_loss`` from the logged probabilities; ``mae`` =
absolute error, ``mse`` = squared error for regression), averaged per arm. The statistics are
:func:`mlops_mcp.core.experiments.stats.live_summary`: two-proportion z / Welch t, the always-valid
mSPRT p-value (its running minimum is kept on the experiment row, so it only falls between looks),
SRM, power and a recommendation.

Two sample-ratio checks run: on assignments (every logged prediction of the test, labeled or not:
broken routing or logging) and, inside ``live_summary``, on labeled rows (labels arriving for one
arm more than the other). Both are the sequential multinomial test (always valid, so reading the
test every day does not raise its false alarms). Either one mismatching makes the recommendation
``investigate_assignment``. The sample size and power reported are those of the always-valid rule
that calls the winner (its mixture tuned from the test's ``mde``), not of a single classic look.
"""

import json
import math
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import Conflict, InvalidInput

from .common import get_row, now, resolve_pair, view

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.store import Store

DEFAULT_MIN_SAMPLES = 100
DEFAULT_ACCURACY_MDE = 0.02
RELATIVE_LOSS_MDE = 0.05


def _metric(task: str, metric: str | None) -> str:
    from mlops_mcp.core.metrics import LIVE_DEFAULT
    from mlops_mcp.core.metrics import metric as registry_metric

    if metric is None:
        return LIVE_DEFAULT[task]
    return registry_metric(metric, task=task, per_row=True).name


def _default_mde(registry: "Registry", model: str, version: int, metric: str) -> float:
    """accuracy: 0.02 (two points); a loss: 5% of the incumbent's training value of it."""
    if metric == "accuracy":
        return DEFAULT_ACCURACY_MDE
    try:
        metrics = registry.run_metrics(registry.version(model, version).run_id)
    except Exception:
        metrics = {}
    base = metrics.get(metric)
    if base is None and metric == "mse" and metrics.get("rmse") is not None:
        base = metrics["rmse"] ** 2
    if base is None or not math.isfinite(base) or base <= 0:
        raise InvalidInput(
            f"no training {metric} recorded for version {version} to scale a default from; give mde "
            f"(the smallest difference in {metric} worth detecting, in its own units)",
            argument="mde",
        )
    return float(base) * RELATIVE_LOSS_MDE


def start(
    store: "Store",
    registry: "Registry",
    model: str,
    variant_a: str = "champion",
    variant_b: str = "challenger",
    traffic_split: float = 0.5,
    metric: str | None = None,
    min_samples_per_arm: int | None = None,
    alpha: float = 0.05,
    mde: float | None = None,
    actor: str = "library",
) -> dict[str, Any]:
    """Start a live A/B test on ``model``; arms pinned to the versions the variants point at now."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from mlops_mcp.core.models.registry import check_name
    from mlops_mcp.core.store.tables import ExperimentRow

    from .common import running

    check_name(model, "model")
    if isinstance(traffic_split, bool) or not isinstance(traffic_split, (int, float)) or not 0 < traffic_split < 1:
        raise InvalidInput(
            f"must be strictly between 0 and 1 (the share of requests sent to variant_b, e.g. 0.5 or 0.1); got {traffic_split!r}",
            argument="traffic_split",
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise InvalidInput(f"must be between 0 and 0.5, e.g. 0.05; got {alpha!r}", argument="alpha")
    bad_min = isinstance(min_samples_per_arm, bool) or not isinstance(min_samples_per_arm, int) or min_samples_per_arm < 2
    if min_samples_per_arm is not None and bad_min:
        raise InvalidInput(f"must be a whole number >= 2; got {min_samples_per_arm!r}", argument="min_samples_per_arm")
    if mde is not None and (isinstance(mde, bool) or not isinstance(mde, (int, float)) or not math.isfinite(mde) or mde <= 0):
        raise InvalidInput(
            f"must be a positive number in the metric's units (e.g. 0.02 = two accuracy points); got {mde!r}", argument="mde"
        )
    registry.registered_model(model)
    existing = running(store, model, "ab")
    if existing is not None:
        raise Conflict(
            f"A/B test {existing.id} is already running on '{model}' (v{existing.version_a} vs v{existing.version_b}, "
            f"since {existing.started_at:%Y-%m-%d %H:%M} UTC); conclude it with conclude_ab_test first",
            argument="model",
        )
    loaded_a, loaded_b = resolve_pair(registry, model, variant_a, variant_b, "an A/B test needs two different versions")
    version_a, version_b = loaded_a.version, loaded_b.version
    name = _metric(loaded_a.task, metric)
    if name == "log_loss" and not (loaded_a.flavor == "sklearn" and hasattr(loaded_a.model, "predict_proba")
                                   and loaded_b.flavor == "sklearn" and hasattr(loaded_b.model, "predict_proba")):
        raise InvalidInput("log_loss needs class probabilities from both versions; use accuracy", argument="metric")
    mde_v = float(mde) if mde is not None else _default_mde(registry, model, version_a, name)
    record = {
        "model": model, "kind": "ab", "status": "running", "task": loaded_a.task,
        "variant_a": str(variant_a), "variant_b": str(variant_b), "version_a": version_a, "version_b": version_b,
        "traffic_split": float(traffic_split), "metric": name, "alpha": float(alpha), "mde": mde_v,
        "min_samples_per_arm": min_samples_per_arm or DEFAULT_MIN_SAMPLES, "always_valid_p": None, "looks": 0,
        "started_at": now(), "started_by": actor,
    }
    try:
        with store.write() as session:
            new_id = session.execute(insert(ExperimentRow).returning(ExperimentRow.id), [record]).scalar_one()
    except IntegrityError:
        raise Conflict(f"another A/B test was started on '{model}' at the same moment; see list of experiments", argument="model") from None
    return view(get_row(store, new_id))


# -- reading the outcomes -------------------------------------------------------------------------
def joined_rows(store: "Store", experiment_id: int) -> list[tuple[str, Any, Any, Any]]:
    """(variant, output, probabilities, actual or None) of every prediction of the test."""
    from sqlalchemy import and_, select

    from mlops_mcp.core.store.tables import Feedback, Prediction

    q = (
        select(Prediction.variant, Prediction.output, Prediction.probabilities, Feedback.actual)
        .select_from(Prediction)
        .outerjoin(Feedback, and_(Feedback.prediction_id == Prediction.id, Feedback.is_latest == True))  # noqa: E712
        .where(Prediction.experiment_id == experiment_id)
    )
    with store.read() as s:
        return [tuple(r) for r in s.execute(q)]  # type: ignore[misc]


def _same_label(output: Any, actual: Any) -> bool:
    if output == actual and type(output) is not bool and type(actual) is not bool:
        return True
    return str(output) == str(actual) or json.dumps(output) == json.dumps(actual)


def row_outcome(metric: str, output: Any, probabilities: Any, actual: Any) -> float | None:
    """One row's outcome: 1/0 correct (accuracy) or its loss; None when it cannot be measured."""
    if actual is None:
        return None
    if metric == "accuracy":
        return 1.0 if _same_label(output, actual) else 0.0
    if metric == "log_loss":
        if not isinstance(probabilities, dict):
            return None
        p = probabilities.get(str(actual))
        if p is None:
            p = next((v for k, v in probabilities.items() if _same_label(k, actual)), None)
        if p is None:
            return None
        return -math.log(min(1.0, max(float(p), 2.220446049250313e-16)))
    try:
        err = float(output) - float(actual)
    except (TypeError, ValueError):
        return None
    return abs(err) if metric == "mae" else err * err


def outcomes(rows: list[tuple[str, Any, Any, Any]], metric: str) -> tuple[dict[str, int], dict[str, list[float]]]:
    """Assigned counts per arm and measured outcomes per arm."""
    assigned = {"a": 0, "b": 0}
    values: dict[str, list[float]] = {"a": [], "b": []}
    for variant, output, probabilities, actual in rows:
        if variant not in assigned:
            continue
        assigned[variant] += 1
        v = row_outcome(metric, output, probabilities, actual)
        if v is not None:
            values[variant].append(v)
    return assigned, values


def read_out(store: "Store", experiment_id: int, persist: bool = True) -> dict[str, Any]:
    """Everything get_ab_test reports. With ``persist`` the look is counted and the always-valid
    p-value's running minimum stored (it can only fall)."""
    from sqlalchemy import case, update

    from mlops_mcp.core.store.tables import ExperimentRow

    row = get_row(store, experiment_id, kind="ab")
    if row.status != "running" and row.result:
        return {**view(row), **row.result, "status": row.status}
    summary = compute(row, joined_rows(store, experiment_id))
    if persist and row.status == "running":
        new_p = summary["always_valid_p_value"]
        # Both in SQL, not from the row read above: concurrent looks each count, and a look that read
        # an older minimum cannot raise the one a faster look already stored.
        col = ExperimentRow.always_valid_p
        with store.write() as session:
            values: dict[str, Any] = {"looks": ExperimentRow.looks + 1}
            if new_p is not None:
                values["always_valid_p"] = case((col.is_(None), new_p), (col > new_p, new_p), else_=col)
            session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(**values))
        row = get_row(store, experiment_id)
    return {**view(row), **summary}


def compute(row: Any, rows: list[tuple[str, Any, Any, Any]]) -> dict[str, Any]:
    from . import stats

    metric = row.metric
    assigned, values = outcomes(rows, metric)
    binary = metric == "accuracy"
    if binary:
        arm_a = stats.ArmData.from_binary(int(sum(values["a"])), len(values["a"]))
        arm_b = stats.ArmData.from_binary(int(sum(values["b"])), len(values["b"]))
    else:
        arm_a = stats.ArmData.from_values(values["a"], binary=False)
        arm_b = stats.ArmData.from_values(values["b"], binary=False)
    split = (1.0 - row.traffic_split, row.traffic_split)
    hib = stats.metric_direction(metric)
    res = stats.live_summary(
        arm_a, arm_b, split, alpha=row.alpha, mde=row.mde, higher_is_better=hib,
        previous_always_valid_p=row.always_valid_p, min_samples_per_arm=row.min_samples_per_arm or DEFAULT_MIN_SAMPLES,
    )
    srm = stats.srm_check([assigned["a"], assigned["b"]], split)
    recommendation = res.recommendation
    # live_summary's own SRM check runs on labeled outcomes; say so, beside the check on assignments
    reasons = ["labeled outcomes: " + r if r == res.srm.reason else r for r in res.reasons]
    if srm.mismatch:
        recommendation = "investigate_assignment"
        reasons.insert(0, "assignments: " + srm.reason)
    d = res.to_dict()
    arms = {}
    for arm, variant, version, summ in (("a", row.variant_a, row.version_a, d["arm_a"]), ("b", row.variant_b, row.version_b, d["arm_b"])):
        arms[arm] = {
            "variant": variant, "version": version, "n_assigned": assigned[arm], "n_labeled": summ["n"],
            "metric": summ["mean"], "se": summ["se"],
        }
    return {
        "metric": metric,
        "higher_is_better": hib,
        "outcome": {
            "accuracy": "share of labeled predictions that were right",
            "log_loss": "mean -log p(true class) of labeled predictions",
            "mae": "mean absolute error of labeled predictions",
            "mse": "mean squared error of labeled predictions",
        }[metric],
        "arms": arms,
        "effect": {
            "diff": d["diff"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
            "relative": d["relative_effect"], "relative_ci_low": d["relative_ci_low"], "relative_ci_high": d["relative_ci_high"],
        },
        "test": d["test"],
        "p_value": d["p_value"],
        "always_valid_p_value": d["always_valid_p_value"],
        "always_valid_ci_low": d["always_valid_ci_low"],
        "always_valid_ci_high": d["always_valid_ci_high"],
        "srm": {
            "p_value": srm.p_value, "mismatch": srm.mismatch, "threshold": srm.threshold,
            "observed_share_b": srm.observed_shares[1] if sum(srm.counts) else None, "expected_share_b": row.traffic_split,
            "labeled_mismatch": d["srm"]["mismatch"], "reason": srm.reason, "test": srm.test,
        },
        "power": {
            "mde": row.mde, "power_reached": d["power_reached"], "required_n_a": d["required_n_a"],
            "required_n_b": d["required_n_b"], "samples_needed_a": d["samples_needed_a"], "samples_needed_b": d["samples_needed_b"],
            "method": d["sizing"], "mixture_tau2": d["mixture_tau2"],
            "fixed_horizon_n_a": d["fixed_horizon_n_a"], "fixed_horizon_n_b": d["fixed_horizon_n_b"],
        },
        "recommendation": recommendation,
        "reasons": reasons,
    }


# -- concluding -----------------------------------------------------------------------------------
def conclude_plan(store: "Store", registry: "Registry", experiment_id: int, promote_winner: bool) -> dict[str, Any]:
    """What concluding would do (nothing is changed): the read-out, the winner, the alias move."""
    row = get_row(store, experiment_id, kind="ab")
    if row.status != "running":
        raise Conflict(
            f"A/B test {experiment_id} on '{row.model}' was already {row.status} at "
            f"{row.ended_at:%Y-%m-%d %H:%M} UTC by {row.ended_by}; nothing to do",
            argument="experiment_id",
        )
    out = read_out(store, experiment_id, persist=False)
    rec = out["recommendation"]
    winner = {"b_wins": "b", "a_wins": "a"}.get(rec)
    plan: dict[str, Any] = {"readout": out, "winner": winner, "winner_version": None, "champion_from": None, "champion_to": None}
    if winner is not None:
        plan["winner_version"] = row.version_b if winner == "b" else row.version_a
    if promote_winner:
        if winner is None:
            raise Conflict(
                f"A/B test {experiment_id} has no winner to promote (recommendation: {rec}; "
                f"{out['reasons'][0] if out['reasons'] else ''}). Conclude without promote_winner, or keep it running",
                argument="promote_winner",
            )
        plan["champion_from"] = registry.aliases(row.model).get("champion")
        plan["champion_to"] = plan["winner_version"]
    return plan


def conclude(
    store: "Store", registry: "Registry", experiment_id: int, promote_winner: bool, reason: str | None, actor: str
) -> dict[str, Any]:
    """Stop the test (status ``concluded``, the final read-out stored) and, if asked, point
    ``champion`` at the winner. If the alias move fails the test is reopened, so neither half is
    left done alone."""
    from sqlalchemy import update

    from mlops_mcp.core.store.tables import ExperimentRow

    plan = conclude_plan(store, registry, experiment_id, promote_winner)
    readout = plan["readout"]
    result = {k: readout[k] for k in ("metric", "higher_is_better", "outcome", "arms", "effect", "test", "p_value", "always_valid_p_value",
                                        "always_valid_ci_low", "always_valid_ci_high", "srm", "power", "recommendation", "reasons")}
    result = json.loads(json.dumps({**result, "winner": plan["winner"], "winner_version": plan["winner_version"],
                                    "promoted": False}, default=str))
    at = now()
    with store.write() as session:
        done = session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id, ExperimentRow.status == "running")
            .values(status="concluded", ended_at=at, ended_by=actor, reason=reason, result=result,
                    always_valid_p=readout["always_valid_p_value"])
        ).rowcount
    if not done:
        raise Conflict(f"A/B test {experiment_id} was concluded by another call just now", argument="experiment_id")
    move = None
    if promote_winner:
        try:
            move = registry.set_alias(registry_name(store, experiment_id), "champion", plan["winner_version"], actor,
                                      reason or f"winner of A/B test {experiment_id}")
        except BaseException:
            with store.write() as session:
                session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(
                    status="running", ended_at=None, ended_by=None, reason=None, result=None))
            raise
        result["promoted"] = True
        with store.write() as session:
            session.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(result=result))
    row = get_row(store, experiment_id)
    return {"experiment": view(row), "result": result, "alias_move": move}


def registry_name(store: "Store", experiment_id: int) -> str:
    return get_row(store, experiment_id).model
