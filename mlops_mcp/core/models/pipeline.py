"""The scikit-learn pipelines ``train_model`` builds, and the feature schema that goes with them.

Every trained model has one shape, so that serving, drift and explanations can rely on it::

    Pipeline([
        ("preprocess", ColumnTransformer([
            ("num", Pipeline([("impute", SimpleImputer(median)), ("scale", StandardScaler())]), numeric),
            ("cat", Pipeline([("impute", SimpleImputer(constant "__missing__")),
                              ("onehot", OneHotEncoder(handle_unknown="ignore"))]), categorical),
        ])),
        ("model", <estimator>),
    ])

The pipeline is plain scikit-learn (no custom classes), so a notebook can load it from MLflow
without this package, and a raw CSV/Parquet frame goes in as it is.
"""

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mlops_mcp.core.errors import InvalidInput, listing
from mlops_mcp.core.limits import MAX_NUMBER

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

Task = Literal["classification", "regression"]
EstimatorName = Literal[
    "logistic_regression", "linear_regression", "ridge", "random_forest", "gradient_boosting", "hist_gradient_boosting"
]
MISSING_CATEGORY = "__missing__"

#: estimator name -> (tasks it supports, one-line description for tool docs)
ESTIMATORS: dict[str, tuple[tuple[Task, ...], str]] = {
    "logistic_regression": (("classification",), "L2-regularised logistic regression (max_iter=1000)"),
    "linear_regression": (("regression",), "ordinary least squares"),
    "ridge": (("regression",), "L2-regularised least squares"),
    "random_forest": (("classification", "regression"), "random forest, 200 trees"),
    "gradient_boosting": (("classification", "regression"), "gradient boosted trees (sklearn), 100 trees"),
    "hist_gradient_boosting": (("classification", "regression"), "histogram gradient boosting (fast on big data)"),
}


@dataclass
class FeatureSchema:
    """What a model expects: its input columns, their kinds, and for categoricals the known values."""

    features: list[str]
    kinds: dict[str, Literal["numeric", "categorical"]]
    dtypes: dict[str, str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    target: str | None = None
    task: Task | None = None
    classes: list[Any] | None = None
    #: columns holding dates or times (typed, or text that parses as dates). ``train_model`` leaves
    #: them out of the features unless named in ``categorical``; they stay in the reference sample,
    #: so drift can check them as time.
    dates: list[str] = field(default_factory=list)

    @property
    def numeric(self) -> list[str]:
        return [c for c in self.features if self.kinds[c] == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [c for c in self.features if self.kinds[c] == "categorical"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSchema":
        return cls(**data)


def infer_task(y: "pd.Series", override: str | None = None) -> Task:
    """Classification for bool/string/category targets and integers with few distinct values."""
    import pandas as pd

    if override is not None:
        if override not in ("classification", "regression"):
            raise InvalidInput(f"'{override}' is not a task; accepted: classification, regression", argument="task")
        return override  # type: ignore[return-value]
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= 20:
        return "classification"
    if pd.api.types.is_float_dtype(y) and y.nunique() <= 2:
        return "classification"
    return "regression"


def infer_schema(
    frame: "pd.DataFrame",
    target: str | None,
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    exclude: list[str] | None = None,
    leave_out_dates: bool = False,
) -> FeatureSchema:
    """Pick the feature columns (all but the target and excluded ones) and decide their kinds.

    Date and datetime columns are found (see :func:`date_kind`) and listed in ``dates``. With
    ``leave_out_dates`` (training) they are not features unless named in ``categorical``: a raw
    date is one category per day, and every date after the training data matches none of them.
    Named in ``features`` alone, a date column is refused with what to do instead."""
    import pandas as pd

    unknown = [c for c in (exclude or []) if c not in frame.columns]
    if unknown:  # a typo here would silently keep the column (a leaking label, an identifier)
        import difflib

        hints = [f"{c!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(c, list(map(str, frame.columns)), 1)) else repr(c) for c in unknown]
        raise InvalidInput(f"not in the data: {', '.join(hints)}; columns: {listing(frame.columns)}", argument="exclude")
    columns = [c for c in frame.columns if c != target and c not in (exclude or [])]
    if features is not None:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise InvalidInput(f"not in the data: {listing(missing)}; columns: {listing(frame.columns)}", argument="features")
        columns = [c for c in features if c != target]
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise InvalidInput(f"columns named twice: {listing(duplicated)}", argument="features")
    forced = set(categorical or [])
    dates = [c for c in columns if date_kind(frame[c]) is not None]
    if leave_out_dates:
        named = [c for c in dates if features is not None and c not in forced]
        if named:
            raise InvalidInput(
                f"{listing(repr(c) for c in named)} {'holds' if len(named) == 1 else 'hold'} dates: a model cannot use raw dates (each date "
                "would be its own category, and dates after the training data match none). Derive columns from "
                "them in the data (day of week, month, days since a start date) and train on those, or name "
                "them in `categorical` to use each date as a category",
                argument="features",
            )
        columns = [c for c in columns if c not in dates or c in forced]
    if not columns:
        left = f" (date columns left out: {listing(dates)})" if dates else ""
        raise InvalidInput(f"no feature columns left besides the target{left}", argument="features")
    unknown = forced - set(columns)
    if unknown:
        raise InvalidInput(f"not feature columns: {listing(sorted(unknown))}", argument="categorical")
    kinds: dict[str, Literal["numeric", "categorical"]] = {}
    categories: dict[str, list[str]] = {}
    for col in columns:
        series = frame[col]
        if series.isna().all():
            raise InvalidInput(f"column '{col}' is empty (all values missing); drop it or fill it", argument="dataset")
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if pd.api.types.is_bool_dtype(series):
            numeric = True
        if col in forced or not numeric:
            kinds[col] = "categorical"
            values = series.dropna().map(str).unique().tolist()  # as coerce_features writes them
            categories[col] = sorted(values)[:MAX_CATEGORIES]
        else:
            kinds[col] = "numeric"
    return FeatureSchema(
        features=columns,
        kinds=kinds,
        dtypes={c: str(frame[c].dtype) for c in columns},
        categories=categories,
        target=target,
        dates=dates,
    )


MAX_CATEGORIES = 1000  # known values kept per categorical column (a longer list is cut)
DATE_SAMPLE = 200  # distinct values looked at to decide whether a text column holds dates
_DATE_TEXT = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})"  # 2024-03-01, 2024/3/1, 01/03/2024, 1.3.2024
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"  # optional time
    r"(Z|[+-]\d{2}:?\d{2})?$"  # optional zone
)


def date_kind(series: "pd.Series") -> str | None:
    """How a column holds dates: ``"typed"`` (datetime64, period), ``"date objects"`` (Python
    dates, as Parquet's date32 arrives), ``"text"`` (strings that all look like and parse as
    dates, judged on up to 200 distinct values), or None."""
    import datetime
    import warnings

    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series) or isinstance(series.dtype, pd.PeriodDtype):
        return "typed"
    if not (series.dtype == object or pd.api.types.is_string_dtype(series)):
        return None
    sample = series.dropna().drop_duplicates().head(DATE_SAMPLE).tolist()
    if not sample:
        return None
    if all(isinstance(v, datetime.date) for v in sample):
        return "date objects"
    if not all(isinstance(v, str) and _DATE_TEXT.match(v.strip()) for v in sample):
        return None
    try:
        with warnings.catch_warnings():  # pandas' day-first guesses
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(pd.Series([v.strip() for v in sample]), errors="coerce", format="mixed", utc=True)
    except (ValueError, TypeError, OverflowError):
        return None
    return "text" if parsed.notna().all() else None


def unseen_dates(schema: FeatureSchema, rows: list[dict[str, Any]]) -> list[str]:
    """For date columns a model uses as categories: which rows bring dates it never saw (they match
    no category, so the model answers as if the date were missing). Said, never silent."""
    out: list[str] = []
    for col in schema.dates:
        known = schema.categories.get(col)
        if col not in schema.kinds or schema.kinds[col] != "categorical" or not known or len(known) >= MAX_CATEGORIES:
            continue
        seen = set(known)
        new = [row.get(col) for row in rows if row.get(col) is not None and str(row.get(col)) not in seen]
        if new:
            out.append(
                f"'{col}': {len(new)} of {len(rows)} rows have dates the model never saw in training (e.g. {short(new[0])}; "
                f"it knows {known[0]} .. {known[-1]}); they match no category, so the model treats them as missing"
            )
    return out


def coerce_features(frame: "pd.DataFrame", schema: FeatureSchema, argument: str = "rows") -> "pd.DataFrame":
    """Check the columns and types of incoming rows and return them in the model's column order.

    Missing or extra columns and non-numeric values in numeric columns are refused before any
    work, naming the columns; categoricals are cast to strings (None stays missing).
    """
    import pandas as pd

    cols = list(frame.columns)
    missing = [c for c in schema.features if c not in cols]
    extra = [c for c in cols if c not in schema.features]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {listing(missing)}")
        if extra:
            parts.append(f"unknown columns {listing(extra)}")
        raise InvalidInput(f"{'; '.join(parts)}; the model expects: {listing(schema.features, 50)}", argument=argument)
    import numpy as np

    out = {}
    for col in schema.features:
        series = frame[col]
        if schema.kinds[col] == "numeric":
            if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
                converted = series.astype("float64")
            else:
                converted = pd.to_numeric(series, errors="coerce")
                bad = series[converted.isna() & series.notna()]
                if len(bad):
                    raise InvalidInput(
                        f"column '{col}' is numeric but got {short(bad.iloc[0])} (row {bad.index[0]}); send a number or null",
                        argument=argument,
                    )
                converted = converted.astype("float64")
            with np.errstate(invalid="ignore"):
                infinite = np.abs(converted.to_numpy()) > MAX_NUMBER  # inf too; models compute in float32
            if infinite.any():
                row = converted.index[infinite.argmax()]
                raise InvalidInput(
                    f"column '{col}' has an infinite or too large value (row {row}); send a number within +-{MAX_NUMBER:.1e} or null",
                    argument=argument,
                )
            out[col] = converted
        else:
            if series.dtype == object:
                bad = series[series.map(lambda v: not is_category_value(v))]
                if len(bad):
                    raise InvalidInput(category_error(col, bad.iloc[0], bad.index[0]), argument=argument)
            out[col] = series.astype(object).where(series.notna(), None).map(
                lambda v: v if v is None else str(v)
            )
    return pd.DataFrame(out, index=frame.index)


def is_category_value(value: Any) -> bool:
    """A value a categorical column takes: text, a number, a boolean, a date, or missing. Lists
    and objects are refused (their text form would be a category nobody could send again)."""
    import datetime

    return value is None or isinstance(value, str | int | float | bool | datetime.date) or (
        hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0  # numpy scalars
    )


def category_error(column: str, value: Any, row: Any) -> str:
    kind = "a list" if isinstance(value, list | tuple) else "an object" if isinstance(value, dict) else f"a {type(value).__name__}"
    return f"column '{column}' is categorical but got {kind} {short(value)} (row {row}); send a text, number, boolean or null"


def short(value: Any, limit: int = 60) -> str:
    """A value for an error message: never the whole of a huge input."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = limit
    return r.repr(value)


def build_pipeline(
    estimator: str, task: Task, schema: FeatureSchema, params: dict[str, Any] | None = None, limits: "TrainingLimits | None" = None
) -> "Pipeline":
    """A fresh, unfitted pipeline of the standard shape (see the module docstring)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = make_estimator(estimator, task, params or {}, limits)
    transformers: list[tuple[str, Any, list[str]]] = []
    if schema.numeric:
        transformers.append(
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), schema.numeric)
        )
    if schema.categorical:
        transformers.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=None)),
                    ]
                ),
                schema.categorical,
            )
        )
    pre = ColumnTransformer(transformers, remainder="drop")
    return Pipeline([("preprocess", pre), ("model", model)])


@dataclass(frozen=True)
class TrainingLimits:
    """Caps on the hyper-parameters that decide how long a fit runs, set by the operator
    (``MLOPS_MAX_*``), never by the caller. Every estimator's capped parameters are listed in
    :data:`CAPPED`; a value above its cap (the caller's or an estimator default) is refused,
    naming the parameter, the cap and the setting."""

    n_estimators: int = 1000
    max_iter: int = 10_000
    max_depth: int = 32
    n_jobs: int = 8

    @classmethod
    def from_settings(cls, settings: Any) -> "TrainingLimits":
        return cls(settings.max_n_estimators, settings.max_iter, settings.max_depth, settings.max_train_jobs)


#: hyper-parameter -> the setting that caps it
CAP_SETTINGS = {
    "n_estimators": "MLOPS_MAX_N_ESTIMATORS",
    "max_iter": "MLOPS_MAX_ITER",
    "max_depth": "MLOPS_MAX_DEPTH",
    "n_jobs": "MLOPS_MAX_TRAIN_JOBS",
}
#: estimator -> its capped hyper-parameters (for hist_gradient_boosting, max_iter is its number of trees)
CAPPED: dict[str, tuple[str, ...]] = {
    "logistic_regression": ("max_iter", "n_jobs"),
    "linear_regression": ("n_jobs",),
    "ridge": ("max_iter",),
    "random_forest": ("n_estimators", "max_depth", "n_jobs"),
    "gradient_boosting": ("n_estimators", "max_depth"),
    "hist_gradient_boosting": ("max_iter", "max_depth"),
}


def check_limits(name: str, model: Any, given: dict[str, Any], limits: TrainingLimits) -> None:
    """Refuse capped hyper-parameters above their caps (see :class:`TrainingLimits`). Values of
    the wrong type are left to the estimator's own validation, which names them."""
    import os

    values = model.get_params(deep=False)
    for param in CAPPED.get(name, ()):
        value = values.get(param)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        cap = getattr(limits, param)
        effective = value
        if param == "n_jobs" and value < 0:  # -1 = every CPU, -2 = all but one, ...
            effective = max(1, (os.cpu_count() or 1) + 1 + int(value))
        if effective > cap:
            shown = int(value) if float(value).is_integer() else value
            whose = "" if param in given else f" (the default of {name})"
            raise InvalidInput(
                f"{param}={shown}{whose} is above this server's cap of {cap} for {name}; ask for at most {cap}. "
                f"The cap bounds how long one training may run; the operator sets it with {CAP_SETTINGS[param]}",
                argument="params",
            )


def make_estimator(name: str, task: Task, params: dict[str, Any], limits: TrainingLimits | None = None) -> Any:
    if name not in ESTIMATORS:
        raise InvalidInput(f"unknown estimator '{name}'; accepted: {listing(ESTIMATORS)}", argument="estimator")
    tasks, _ = ESTIMATORS[name]
    if task not in tasks:
        others = [n for n, (t, _) in ESTIMATORS.items() if task in t]
        raise InvalidInput(f"'{name}' does not do {task}; for {task} use one of: {listing(others)}", argument="estimator")
    from sklearn import ensemble, linear_model

    classes: dict[tuple[str, str], tuple[type, dict[str, Any]]] = {
        ("logistic_regression", "classification"): (linear_model.LogisticRegression, {"max_iter": 1000}),
        ("linear_regression", "regression"): (linear_model.LinearRegression, {}),
        ("ridge", "regression"): (linear_model.Ridge, {}),
        ("random_forest", "classification"): (ensemble.RandomForestClassifier, {"n_estimators": 200, "random_state": 0}),
        ("random_forest", "regression"): (ensemble.RandomForestRegressor, {"n_estimators": 200, "random_state": 0}),
        ("gradient_boosting", "classification"): (ensemble.GradientBoostingClassifier, {"random_state": 0}),
        ("gradient_boosting", "regression"): (ensemble.GradientBoostingRegressor, {"random_state": 0}),
        ("hist_gradient_boosting", "classification"): (ensemble.HistGradientBoostingClassifier, {"random_state": 0}),
        ("hist_gradient_boosting", "regression"): (ensemble.HistGradientBoostingRegressor, {"random_state": 0}),
    }
    cls, defaults = classes[(name, task)]
    try:
        model = cls(**{**defaults, **params})
    except TypeError as exc:
        valid = sorted(cls().get_params())
        raise InvalidInput(f"{exc}; {cls.__name__} accepts: {listing(valid, 40)}", argument="params") from exc
    check_limits(name, model, params, limits or TrainingLimits())
    return model


def feature_sources(pipeline: "Pipeline") -> list[str]:
    """For each column the fitted preprocessor outputs, the ORIGINAL input column it came from.

    One-hot outputs of a categorical column all map to that column, which is how explanations
    sum encoded parts back to what the user knows.
    """
    pre = pipeline.named_steps["preprocess"]
    sources: list[str] = []
    for name, transformer, columns in pre.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "num":
            sources.extend(columns)
        elif name == "cat":
            encoder = transformer.named_steps["onehot"]
            for col, cats in zip(columns, encoder.categories_):
                sources.extend([col] * len(cats))
        else:  # pragma: no cover - only our two transformers exist
            raise ValueError(f"unexpected transformer {name}")
    return sources
