"""How a model's raw input rows become the numeric matrices an explainer works on.

Two matrices matter (see :mod:`mlops_mcp.core.explain.shap_engine`):

* ``Z``: one float column per ORIGINAL input column (categoricals as codes). The permutation
  explainer masks ``Z``, so a categorical column is always masked as one player.
* ``X``: what the estimator itself sees, for tree and linear explainers; their values over ``X``
  are summed back to the original columns.

:class:`PipelineInputs` serves the standard pipeline (``preprocess -> model``): ``X`` is the
preprocessor's output, computed by the verified :class:`~mlops_mcp.core.models.encoding.FastEncoder`.
:class:`RawInputs` serves every other registered model (a notebook's estimator or pipeline, any
pyfunc): the model is given the raw columns exactly as serving gives them (a DataFrame of floats
and strings), so ``Z`` decodes back to that frame; when the model is a bare scikit-learn estimator
on numeric columns, ``X`` is ``Z`` itself and the exact explainers apply to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.limits import MAX_NUMBER
from mlops_mcp.core.models.pipeline import FeatureSchema, category_error, is_category_value, short

if TYPE_CHECKING:
    import pandas as pd

#: what a categorical code means when the value is missing
_MISSING: Any = None


@dataclass
class Encoded:
    """Rows in the explainers' terms: ``z`` (n, p_in), ``x`` (n, p_model) or None when the model
    is only called as a black box, ``tables`` the category tables ``z``'s codes refer to
    (RawInputs: the background's values plus any value first seen in these rows), and the rows'
    values per original column as they are reported (floats, strings, None for missing)."""

    z: np.ndarray
    x: np.ndarray | None
    tables: tuple[np.ndarray, ...] | None
    shown: list[list[Any]]


def coerce_record(row: dict[str, Any], schema: FeatureSchema, argument: str = "row") -> list[Any]:
    """One JSON-like row -> its values in the model's column order, checked and typed as
    :func:`~mlops_mcp.core.models.pipeline.coerce_features` types them (numbers or numeric strings
    in numeric columns, refused otherwise; categoricals as strings; None for missing), without
    building a DataFrame (the single-row hot path: ~20 us instead of ~1.5 ms)."""
    out: list[Any] = []
    for name in schema.features:
        value = row[name]
        if schema.kinds[name] == "numeric":
            if value is None:
                out.append(None)
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"column '{name}' is numeric but got {short(value)}; send a number or null",
                    argument=argument,
                ) from None
            if math.isinf(number) or abs(number) > MAX_NUMBER:
                raise InvalidInput(
                    f"column '{name}' has an infinite or too large value; send a number within +-{MAX_NUMBER:.1e} or null",
                    argument=argument
                )
            out.append(None if math.isnan(number) else number)
        else:
            if not is_category_value(value):
                raise InvalidInput(category_error(name, value, 0), argument=argument)
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            out.append(None if missing else str(value))
    return out


def _frame_values(raw: pd.DataFrame) -> list[list[Any]]:
    """Coerced rows as reported values: NaN -> None, numpy scalars -> Python."""
    values = raw.to_numpy(dtype=object).tolist()
    return [[None if (isinstance(v, float) and math.isnan(v)) else v for v in row] for row in values]


class PipelineInputs:
    """The standard pipeline: ``Z`` codes categoricals as their index among the fitted one-hot
    categories (-1 = unknown, which one-hot encodes to all zeros like ``handle_unknown="ignore"``),
    and ``X`` is the preprocessor's output (checked against ``preprocess.transform``)."""

    kind = "pipeline"

    def __init__(self, pipeline: Any, schema: FeatureSchema) -> None:
        from mlops_mcp.core.models.encoding import FastEncoder

        self.encoder = FastEncoder(pipeline, schema)
        self.estimator = pipeline.named_steps["model"]
        self.features = list(schema.features)
        self.schema = schema
        #: a categorical column is one-hot encoded into several model columns
        self.one_hot = bool(self.encoder.cat_cols)

    def prepare(self, background: pd.DataFrame) -> None:
        self.encoder.check(background)

    def encode(self, raw: pd.DataFrame) -> Encoded:
        z = self.encoder.encode(raw)
        return Encoded(z, self.encoder.transform(z), None, _frame_values(raw))

    def encode_record(self, values: list[Any]) -> Encoded:
        enc = self.encoder
        z = np.empty((1, len(values)), dtype=float)
        for j in enc.num_cols:
            z[0, j] = np.nan if values[j] is None else values[j]
        for j, lookup, fill in zip(enc.cat_cols, enc.cat_lookup, enc.cat_fill):
            value = values[j]
            z[0, j] = lookup.get(fill if value is None else value, -1)
        return Encoded(z, enc.transform(z), None, [values])

    def model_input(self, z: np.ndarray, tables: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
        """``Z`` -> what the final estimator is called on."""
        return self.encoder.transform(z)

    def regroup(self, phi: np.ndarray) -> np.ndarray:
        return self.encoder.regroup(phi)

    def estimator_input(self, x: np.ndarray) -> Any:
        return x


class RawInputs:
    """Any other model, given the raw columns as serving gives them.

    ``Z`` holds numeric columns as they are and codes a categorical column by its value's index
    in a table: the background's values (sorted, missing last) plus, per call, any value the
    explained rows bring that the background lacks, so that decoding ``Z`` gives the model
    exactly the frame serving would (an unseen category stays that category).
    """

    kind = "raw"

    def __init__(self, model: Any, schema: FeatureSchema) -> None:
        self.model = model
        self.schema = schema
        self.features = list(schema.features)
        self.cat_cols = [j for j, f in enumerate(self.features) if schema.kinds[f] != "numeric"]
        self.num_cols = [j for j, f in enumerate(self.features) if schema.kinds[f] == "numeric"]
        self.tables: tuple[np.ndarray, ...] = tuple(np.array([_MISSING], dtype=object) for _ in self.cat_cols)
        self.lookups: list[dict[Any, int]] = [{_MISSING: 0} for _ in self.cat_cols]
        self.one_hot = False
        names = getattr(model, "feature_names_in_", None)
        self._names = [str(n) for n in names] if names is not None else None
        #: a bare estimator on numeric columns sees Z itself: tree and linear explainers apply
        #: (only when it was fitted on these columns in this order, so no column is mislabelled)
        same_columns = self._names is None or self._names == self.features
        self.estimator = model if (not self.cat_cols and same_columns and _is_bare_sklearn(model)) else None

    def prepare(self, background: pd.DataFrame) -> None:
        """Category tables from the background rows (values sorted as strings, missing last)."""
        tables, lookups = [], []
        for j in self.cat_cols:
            seen = {v for v in background.iloc[:, j].tolist() if v is not None}
            table = np.array([*sorted(seen, key=str), _MISSING], dtype=object)
            tables.append(table)
            lookups.append({v: i for i, v in enumerate(table)})
        self.tables = tuple(tables)
        self.lookups = lookups

    def _encode_values(self, rows: list[list[Any]]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        z = np.empty((len(rows), len(self.features)), dtype=float)
        if self.num_cols:
            z[:, self.num_cols] = np.array(
                [[np.nan if r[j] is None else r[j] for j in self.num_cols] for r in rows], dtype=float
            )
        tables = list(self.tables)
        for c, j in enumerate(self.cat_cols):
            lookup = self.lookups[c]
            extra: dict[Any, int] = {}
            for i, row in enumerate(rows):
                value = row[j]
                code = lookup.get(value)
                if code is None:
                    code = extra.setdefault(value, len(tables[c]) + len(extra))
                z[i, j] = code
            if extra:
                tables[c] = np.concatenate([tables[c], np.array(list(extra), dtype=object)])
        return z, tuple(tables)

    def encode(self, raw: pd.DataFrame) -> Encoded:
        shown = _frame_values(raw)
        z, tables = self._encode_values(shown)
        return Encoded(z, z if self.estimator is not None else None, tables, shown)

    def encode_record(self, values: list[Any]) -> Encoded:
        z, tables = self._encode_values([values])
        return Encoded(z, z if self.estimator is not None else None, tables, [values])

    def decode(self, z: np.ndarray, tables: tuple[np.ndarray, ...] | None = None) -> pd.DataFrame:
        """``Z`` -> the frame serving would give the model: float columns, and object columns of
        strings (None for missing)."""
        import pandas as pd

        tables = self.tables if tables is None else tables
        columns: dict[str, Any] = {}
        cats = dict(zip(self.cat_cols, tables))
        for j, name in enumerate(self.features):
            if j in cats:
                columns[name] = cats[j][z[:, j].astype(np.intp)]
            else:
                columns[name] = z[:, j]
        return pd.DataFrame(columns)

    def model_input(self, z: np.ndarray, tables: tuple[np.ndarray, ...] | None = None) -> Any:
        """``Z`` -> what the model is called on: the raw frame."""
        return self.decode(z, tables)

    def regroup(self, phi: np.ndarray) -> np.ndarray:
        return phi

    def estimator_input(self, x: np.ndarray) -> Any:
        """A bare estimator fitted on a DataFrame is called with its column names (as serving
        calls it), so scikit-learn does not warn about missing feature names."""
        if self._names is None:
            return x
        import pandas as pd

        return pd.DataFrame(x, columns=self._names)


def _is_bare_sklearn(model: Any) -> bool:
    """A fitted scikit-learn estimator that is not a Pipeline or other composite: what it is
    given is what its trees / coefficients split on."""
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover - sklearn is a dependency
        return False
    return (
        isinstance(model, BaseEstimator)
        and not hasattr(model, "steps")
        and not hasattr(model, "transformers")
    )
