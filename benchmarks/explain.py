"""Explanations: the engine (core/explain.py) against calling shap directly on the same model.

Model: the standard pipeline with GradientBoostingClassifier(n_estimators=200), trained on the
synthetic NBA games (4 seasons); reference sample = 1,000 training rows.

Budgets: a warm single-row explanation well under 10 ms in the engine (the MCP tool's end-to-end
budget is 25 ms median); global importance on 1,000 rows at most 1 s.
shap direct = what a user would write: ``preprocess.transform`` the raw rows, then a
``shap.TreeExplainer`` (built on each call, or built once and kept), then ``explainer(X)``; no
regrouping of the one-hot columns (which the engine also does). The single-row comparison uses
the engine's own choice (interventional, probability space, 100 background rows) and shap's
default (path-dependent, log-odds); global importance compares path-dependent log-odds.
"""

import os
from collections.abc import Callable
from typing import Any

from benchmarks.common import measure, table

RUNS = int(os.environ.get("BENCH_EXPLAIN_RUNS", "30"))


def main() -> None:
    import itertools
    import warnings

    import shap

    from mlops_mcp.core.explain.shap_engine import ExplainerCache, explain_row, global_importance
    from mlops_mcp.core.models.pipeline import build_pipeline, infer_schema
    from mlops_mcp.core.synthetic import FEATURES, generate_games

    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    games = generate_games()
    schema = infer_schema(games[list(FEATURES) + ["home_win"]], "home_win")
    X = games[schema.features]
    pipe = build_pipeline("gradient_boosting", "classification", schema, {"n_estimators": 200})
    pipe.fit(X, games["home_win"])
    pre, model = pipe.named_steps["preprocess"], pipe.named_steps["model"]
    reference = X.sample(n=1000, random_state=1)
    background_t = pre.transform(reference.sample(n=100, random_state=0))
    sample = X.sample(n=1000, random_state=2)
    rows = itertools.cycle([X.iloc[[i]] for i in range(0, 4000, 37)])
    key = ("nba-win", 1)

    def probability_explainer() -> Any:
        return shap.TreeExplainer(
            model, data=background_t, model_output="probability", feature_perturbation="interventional"
        )

    cache = ExplainerCache()
    first = explain_row(pipe, schema, next(rows), reference, cache=cache, cache_key=key)
    kept_prob = probability_explainer()
    kept_logit = shap.TreeExplainer(model)

    def row_case(
        name: str, space: str, fn: Callable[[], object], runs: int = RUNS, warmup: int = 1
    ) -> list[str]:
        t = measure(fn, runs=runs, warmup=warmup)
        return [name, space, f"{t.median * 1000:.2f}", f"{t.low * 1000:.2f}", f"{t.high * 1000:.2f}"]

    single = [
        row_case(
            "engine, warm (cached explainer)",
            first.output_space,
            lambda: explain_row(pipe, schema, next(rows), reference, cache=cache, cache_key=key),
            warmup=3,
        ),
        row_case(
            "engine, cold (builds its explainer)",
            first.output_space,
            lambda: explain_row(pipe, schema, next(rows), reference),
            runs=max(5, RUNS // 5),
        ),
        row_case(
            "shap direct, explainer built per call",
            "probability",
            lambda: probability_explainer()(pre.transform(next(rows))),
        ),
        row_case("shap direct, explainer kept", "probability", lambda: kept_prob(pre.transform(next(rows)))),
        row_case(
            "shap direct, explainer built per call",
            "log_odds",
            lambda: shap.TreeExplainer(model)(pre.transform(next(rows))),
        ),
        row_case("shap direct, explainer kept", "log_odds", lambda: kept_logit(pre.transform(next(rows)))),
    ]
    title = "explain one row: GradientBoostingClassifier(200 trees), NBA games (ms)"
    print(table(title, ["how", "space", "median", "min", "max"], single))
    warm = float(single[0][2])
    print(f"engine budget (warm, well under 10 ms): {'meets' if warm < 10 else 'MISSES'} ({warm:.2f} ms)")

    imp = global_importance(pipe, schema, sample, reference, cache=cache, cache_key=key)

    def global_case(
        name: str, space: str, fn: Callable[[], object], runs: int = max(3, RUNS // 6)
    ) -> list[str]:
        t = measure(fn, runs=runs)
        return [name, space, f"{t.median:.3f}", f"{t.low:.3f}", f"{t.high:.3f}"]

    multi = [
        global_case(
            "engine (cached explainer)",
            imp.output_space,
            lambda: global_importance(pipe, schema, sample, reference, cache=cache, cache_key=key),
        ),
        global_case(
            "shap direct, explainer built per call",
            "log_odds",
            lambda: shap.TreeExplainer(model)(pre.transform(sample)),
        ),
        global_case("shap direct, explainer kept", "log_odds", lambda: kept_logit(pre.transform(sample))),
        global_case(
            "shap direct, explainer kept", "probability", lambda: kept_prob(pre.transform(sample)), runs=2
        ),
    ]
    print(table("global importance on 1,000 rows (s)", ["how", "space", "median", "min", "max"], multi))
    g = float(multi[0][2])
    print(f"global budget (1,000 rows, at most 1 s): {'meets' if g <= 1.0 else 'MISSES'} ({g:.3f} s)")
    print(
        f"engine choices: row = {first.explainer} / {first.output_space} ({first.explainer_detail}); "
        f"global = {imp.explainer} / {imp.output_space}; approximation: {imp.approximation or 'none'}"
    )
