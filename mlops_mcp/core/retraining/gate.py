"""The gate a retrained version passes before anything moves: every check on one holdout neither
model trained on, evaluated with run_ab_test's own code (``core/experiments/offline.run``).

1. floors: an absolute floor per metric (a ceiling for losses) on the challenger alone;
2. relative to the champion, MLflow's ``MetricThreshold`` semantics: ``min_absolute_change``
   (challenger >= champion + x when higher is better, <= champion - x otherwise) and
   ``min_relative_change`` ((challenger - champion) / |champion| >= x in the metric's direction;
   a zero champion falls back to "strictly better by 1e-10");
3. the paired test: ``better`` = run_ab_test's verdict is b_better at ``alpha``; ``non_inferior`` =
   the one-sided (1 - alpha) bound of the difference (the two-sided 1 - 2 alpha interval of the same
   test) stays within ``margin`` of the champion;
4. guardrails: other metrics may not get worse than the champion's by more than their tolerance.
Without a champion only the floors apply. Every check is kept with its numbers.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.retraining.policy import GateSpec

if TYPE_CHECKING:
    from mlops_mcp.core.models.registry import Registry


def better_or_equal(value: float, bound: float, higher_is_better: bool) -> bool:
    return value >= bound if higher_is_better else value <= bound


def threshold_checks(
    metric: str, higher_is_better: bool, challenger: float, champion: float,
    min_absolute_change: float | None, min_relative_change: float | None,
) -> list[dict[str, Any]]:
    """MLflow MetricThreshold's comparison rules, one check each."""
    out = []
    sign = 1.0 if higher_is_better else -1.0
    if min_absolute_change is not None:
        bound = champion + sign * min_absolute_change
        out.append(_check(
            "min_absolute_change", metric, better_or_equal(challenger, bound, higher_is_better), challenger, champion, bound,
            f"{metric} {challenger:.4f} must be {'>=' if higher_is_better else '<='} champion {champion:.4f} "
            f"{'+' if higher_is_better else '-'} {min_absolute_change:g} = {bound:.4f}",
        ))
    if min_relative_change is not None:
        if champion == 0:
            bound = sign * 1e-10
            passed = better_or_equal(challenger, bound, higher_is_better)
            text = f"champion {metric} is 0: the challenger must simply be better (it is {challenger:.4g})"
            change = None
        else:
            change = sign * (challenger - champion) / abs(champion)
            passed = change >= min_relative_change
            bound = champion + sign * min_relative_change * abs(champion)
            text = (
                f"relative change of {metric} {change:+.2%} in its better direction must be >= {min_relative_change:.2%} "
                f"(challenger {challenger:.4f}, champion {champion:.4f}; bound {bound:.4f})"
            )
        check = _check("min_relative_change", metric, passed, challenger, champion, bound, text)
        check["relative_change"] = change
        out.append(check)
    return out


def _check(kind: str, metric: str, passed: bool, challenger: float | None, champion: float | None,
           threshold: float | None, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "check": kind, "metric": metric, "passed": bool(passed), "challenger": challenger, "champion": champion,
        "threshold": threshold, "detail": detail, **extra,
    }


def holdout_metrics(loaded: Any, task: str, holdout: Any, target: str) -> dict[str, float]:
    """The challenger's own metrics on the holdout, with the training code's metric functions."""
    from mlops_mcp.core.models.pipeline import coerce_features
    from mlops_mcp.core.models.training import evaluate

    X = coerce_features(holdout[loaded.schema.features], loaded.schema, argument="dataset")
    metrics = evaluate(loaded.model, task, X, holdout[target], loaded.classes)
    if "rmse" in metrics:
        metrics["mse"] = metrics["rmse"] ** 2
    return metrics


def judge(
    registry: "Registry",
    roots: list[Path],
    *,
    model: str,
    champion_version: int | None,
    new_version: int,
    holdout_path: str,
    holdout: Any,
    target: str,
    task: str,
    gate: GateSpec,
) -> dict[str, Any]:
    """The verdict: every check with its numbers, passed only when all pass."""
    from mlops_mcp.core.experiments import offline, stats

    b = registry.load(registry.version(model, new_version))
    own = holdout_metrics(b, task, holdout, target)
    checks: list[dict[str, Any]] = []
    for metric, floor in gate.floors.items():
        hib = stats.metric_direction(metric)
        value = own.get(metric)
        checks.append(_check(
            "floor", metric, value is not None and better_or_equal(value, floor, hib), value, None, floor,
            f"{metric} {value if value is None else round(value, 4)} must be {'>=' if hib else '<='} {floor:g}",
        ))
    test: dict[str, Any] | None = None
    overlap = None
    metric = gate.metric
    if champion_version is None:
        metric = metric or ("rmse" if task == "regression" else "accuracy")
        note = "no champion to compare with: only the floors apply" + ("" if gate.floors else " (none were set)")
    else:
        a = registry.load(registry.version(model, champion_version))
        if metric is None:
            metric = offline.default_metric(a, offline._has_proba(a) and offline._has_proba(b))
        alpha = gate.alpha if gate.require == "better" else 2 * gate.alpha
        run = offline.run(registry, roots, model, str(champion_version), str(new_version), holdout_path, target, metric, alpha)
        overlap = run["training_overlap"]
        hib = run["higher_is_better"]
        va, vb = run["variant_a"]["metric"], run["variant_b"]["metric"]
        test = {k: run[k] for k in ("metric", "higher_is_better", "diff", "ci_low", "ci_high", "p_value", "test", "alpha", "n", "verdict", "reason")}
        test["champion"], test["challenger"] = va, vb
        if gate.require == "better":
            checks.append(_check(
                "significantly_better", metric, run["verdict"] == "b_better", vb, va, gate.alpha,
                run["reason"], p_value=run["p_value"], test=run["test"], diff=run["diff"], ci_low=run["ci_low"], ci_high=run["ci_high"],
            ))
        else:
            margin = float(gate.margin or 0.0)
            bound = run["ci_low"] if hib else run["ci_high"]
            passed = bound is not None and (bound > -margin if hib else bound < margin)
            checks.append(_check(
                "non_inferior", metric, passed, vb, va, margin,
                f"one-sided {1 - gate.alpha:.0%} bound of {metric} b - a is {bound if bound is None else round(bound, 4)}; "
                f"it must stay {'above' if hib else 'below'} {'-' if hib else '+'}{margin:g} ({run['test']}, n = {run['n']})",
                p_value=run["p_value"], test=run["test"], diff=run["diff"], ci_low=run["ci_low"], ci_high=run["ci_high"],
            ))
        checks.extend(threshold_checks(metric, hib, vb, va, gate.min_absolute_change, gate.min_relative_change))
        for g_metric, tolerance in gate.guardrails.items():
            g = offline.run(registry, roots, model, str(champion_version), str(new_version), holdout_path, target, g_metric, gate.alpha)
            g_hib = g["higher_is_better"]
            ga, gb = g["variant_a"]["metric"], g["variant_b"]["metric"]
            worse_by = (ga - gb) if g_hib else (gb - ga)
            checks.append(_check(
                "guardrail", g_metric, worse_by <= tolerance, gb, ga, tolerance,
                f"{g_metric}: challenger {gb:.4f} vs champion {ga:.4f}, worse by {worse_by:+.4f} (tolerance {tolerance:g}; "
                f"{g['test']} p = {g['p_value']:.3g})",
                diff=g["diff"], ci_low=g["ci_low"], ci_high=g["ci_high"], p_value=g["p_value"],
            ))
        note = None
    passed = all(c["passed"] for c in checks)
    failed = [f"{c['check']} ({c['metric']})" for c in checks if not c["passed"]]
    summary = (
        f"passed: {len(checks)} check(s) on {len(holdout):,} held-out rows" if passed
        else f"rejected: failed {', '.join(failed)} on {len(holdout):,} held-out rows"
    )
    if test is not None:
        summary += f"; {test['metric']} champion {test['champion']:.4f} -> challenger {test['challenger']:.4f}, p = {test['p_value']:.3g}"
    return {
        "passed": passed,
        "verdict": "passed" if passed else "rejected",
        "summary": summary,
        "metric": metric,
        "checks": checks,
        "test": test,
        "challenger_metrics": {k: round(v, 6) for k, v in own.items()},
        "holdout": {"dataset": holdout_path, "rows": len(holdout)},
        "training_overlap": overlap,
        "gate": gate.model_dump(mode="json"),
        "note": note,
    }
