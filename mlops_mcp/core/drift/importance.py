"""What the model cheaply says about its inputs' importance, per input column, for the drift headline.

Why not SHAP: the headline needs a rough weight per input at no cost; a fitted tree ensemble
already carries impurity importances and a linear model its coefficients (on standardised inputs in
our pipelines). They are summed back from the encoded columns (one-hot parts) to the input columns
and normalised to shares. Anything else (a pyfunc, histogram gradient boosting) gives none, and
the drift rule then treats every input as important, saying so.
"""

from typing import Any


def input_importance(model: Any) -> tuple[dict[str, float] | None, str]:
    """(share of importance per input column, where it came from) or (None, why there is none)."""
    import numpy as np

    from mlops_mcp.core.models.pipeline import feature_sources

    steps = getattr(model, "named_steps", None)
    if not steps or "preprocess" not in steps or "model" not in steps:
        return None, "not available: the model is not one of this server's pipelines"
    estimator = steps["model"]
    if hasattr(estimator, "feature_importances_"):
        raw = np.asarray(estimator.feature_importances_, dtype=float)
        source = (
            "feature_importances_ (impurity-based) of the model, summed over each input's encoded columns"
        )
    elif hasattr(estimator, "coef_"):
        coef = np.abs(np.asarray(estimator.coef_, dtype=float))
        raw = coef.sum(axis=0) if coef.ndim == 2 else coef
        source = "|coef_| of the model on standardised inputs, summed over each input's encoded columns"
    else:
        return (
            None,
            f"not available: {type(estimator).__name__} exposes neither feature_importances_ nor coef_",
        )
    try:
        sources = feature_sources(model)
    except (AttributeError, KeyError, ValueError) as exc:
        return None, f"not available: cannot map encoded columns to inputs ({exc})"
    if len(sources) != raw.size:
        return None, "not available: the model's importances do not match its encoded columns"
    totals: dict[str, float] = {}
    for column, value in zip(sources, raw):
        totals[column] = totals.get(column, 0.0) + float(value)
    total = sum(totals.values())
    if not total > 0:
        return None, "not available: the model's importances are all zero"
    return {c: v / total for c, v in totals.items()}, source
