"""The fitted preprocessor's arithmetic on numpy: what serving and explanations use on their hot path.

``ColumnTransformer.transform`` costs ~12 ms for one row (pandas and validation overhead); the same
arithmetic with the fitted imputer, scaler and one-hot categories takes ~50 us. Every encoder is
checked against ``preprocess.transform`` on real rows when it is built and falls back to sklearn
if they ever disagree, so the fast path can never change a prediction.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_mcp.core.models.pipeline import FeatureSchema, feature_sources

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


class FastEncoder:
    """Encodes coerced raw rows as a float matrix ``Z`` (one column per ORIGINAL feature) and
    transforms ``Z`` to what the model sees, with the fitted preprocessor's own parameters.

    Why: ``ColumnTransformer.transform`` costs ~12 ms for one row (pandas + validation overhead),
    more than the whole single-row budget; the same arithmetic on numpy takes ~50 us. ``Z`` is
    also the space the permutation explainer masks, so a categorical column is masked as ONE
    column (never half a one-hot vector). Categoricals are coded as their index in the encoder's
    categories (-1 = unknown, which one-hot encodes to all zeros like ``handle_unknown="ignore"``).
    The fast path is checked against ``preprocess.transform`` when built; if it ever disagrees,
    the sklearn transform is used instead.
    """

    def __init__(self, pipeline: Pipeline, schema: FeatureSchema) -> None:
        self.pre = pipeline.named_steps["preprocess"]
        self.features = list(schema.features)
        self.sources = feature_sources(pipeline)
        position = {f: i for i, f in enumerate(self.features)}
        #: (transformed column, original column) 0/1 matrix: regrouping is one matrix product
        self.membership = np.zeros((len(self.sources), len(self.features)))
        self.membership[np.arange(len(self.sources)), [position[s] for s in self.sources]] = 1.0
        self.num_cols: list[int] = []
        self.num_fill = np.zeros(0)
        self.num_mean = np.zeros(0)
        self.num_scale = np.ones(0)
        self.cat_cols: list[int] = []
        self.cat_offsets: list[int] = []
        self.cat_lookup: list[dict[str, int]] = []
        self.cat_values: list[list[Any]] = []
        self.cat_fill: list[str] = []
        offset = 0
        for name, transformer, columns in self.pre.transformers_:
            if name == "remainder" or transformer == "drop":
                continue
            if name == "num":
                scaler = transformer.named_steps["scale"]
                self.num_cols = [position[c] for c in columns]
                self.num_fill = np.asarray(transformer.named_steps["impute"].statistics_, dtype=float)
                k = len(columns)
                self.num_mean = np.asarray(scaler.mean_, dtype=float) if scaler.with_mean else np.zeros(k)
                self.num_scale = np.asarray(scaler.scale_, dtype=float) if scaler.with_std else np.ones(k)
                offset += k
            elif name == "cat":
                fill = transformer.named_steps["impute"].fill_value
                for col, cats in zip(columns, transformer.named_steps["onehot"].categories_):
                    values = list(cats)
                    self.cat_cols.append(position[col])
                    self.cat_offsets.append(offset)
                    self.cat_values.append(values)
                    self.cat_lookup.append({str(v): i for i, v in enumerate(values)})
                    self.cat_fill.append(str(fill))
                    offset += len(values)
        self.n_out = offset
        self.fast = True

    def encode(self, raw: pd.DataFrame) -> np.ndarray:
        """Coerced raw rows (see ``coerce_features``) -> ``Z``."""
        values = raw.to_numpy(dtype=object)  # one conversion; column access on a 1-row frame is slow
        z = np.empty(values.shape, dtype=float)
        if self.num_cols:
            z[:, self.num_cols] = values[:, self.num_cols].astype(float)
        for j, lookup, fill in zip(self.cat_cols, self.cat_lookup, self.cat_fill):
            z[:, j] = [lookup.get(fill if v is None else v, -1) for v in values[:, j]]
        return z

    def decode(self, z: np.ndarray) -> pd.DataFrame:
        """``Z`` -> raw frame (unknown categories become a value the encoder ignores)."""
        out: dict[str, Any] = {}
        cats = dict(zip(self.cat_cols, self.cat_values))
        for j, name in enumerate(self.features):
            if j in cats:
                values = cats[j]
                out[name] = [values[int(c)] if c >= 0 else "\x00unknown" for c in z[:, j]]
            else:
                out[name] = z[:, j]
        return pd.DataFrame(out)

    def transform(self, z: np.ndarray) -> np.ndarray:
        """``Z`` -> the preprocessor's output (dense float matrix)."""
        if not self.fast:
            return np.asarray(self.pre.transform(self.decode(z)), dtype=float)
        n = z.shape[0]
        out = np.zeros((n, self.n_out), dtype=float)
        if self.num_cols:
            x = z[:, self.num_cols]
            x = np.where(np.isnan(x), self.num_fill, x)
            out[:, : len(self.num_cols)] = (x - self.num_mean) / self.num_scale
        rows = np.arange(n)
        for j, offset in zip(self.cat_cols, self.cat_offsets):
            codes = z[:, j].astype(np.intp)
            known = codes >= 0
            out[rows[known], offset + codes[known]] = 1.0
        return out

    def check(self, raw: pd.DataFrame) -> None:
        """Use the fast transform only if it reproduces ``preprocess.transform`` on ``raw``."""
        expected = np.asarray(self.pre.transform(raw), dtype=float)
        fast = self.transform(self.encode(raw))
        same = fast.shape == expected.shape and np.allclose(fast, expected, rtol=1e-9, atol=1e-9)
        if not same:
            self.fast = False

    def regroup(self, phi: np.ndarray) -> np.ndarray:
        """SHAP values over transformed columns (n, p_out, k) -> over original columns (n, p_in, k)."""
        return np.einsum("npk,pf->nfk", phi, self.membership)

    def encode_records(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Raw JSON-like rows -> ``Z`` without building a DataFrame (the single-row hot path).

        Applies the same rules as ``coerce_features``: numbers (or numeric strings) in numeric
        columns, anything else refused naming row and column; categoricals compared as strings.
        """
        from mlops_mcp.core.errors import InvalidInput
        from mlops_mcp.core.limits import MAX_NUMBER
        from mlops_mcp.core.models.pipeline import category_error, is_category_value, short

        z = np.empty((len(rows), len(self.features)), dtype=float)
        num = [(j, self.features[j]) for j in self.num_cols]
        cats = [(j, self.features[j], lookup, fill) for j, lookup, fill in zip(self.cat_cols, self.cat_lookup, self.cat_fill)]
        for i, row in enumerate(rows):
            for j, name in num:
                value = row[name]
                if value is None:
                    z[i, j] = np.nan
                    continue
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise InvalidInput(
                        f"column '{name}' is numeric but got {short(value)} (row {i}); send a number or null",
                        argument="rows",
                    ) from None
                if math.isinf(number) or abs(number) > MAX_NUMBER:
                    raise InvalidInput(
                        f"column '{name}' has an infinite or too large value (row {i}); send a number within "
                        f"+-{MAX_NUMBER:.1e} or null", argument="rows"
                    )
                z[i, j] = number
            for j, name, lookup, fill in cats:
                value = row[name]
                if value is not None and not isinstance(value, str | int | float) and not is_category_value(value):
                    raise InvalidInput(category_error(name, value, i), argument="rows")
                z[i, j] = lookup.get(fill if value is None else str(value), -1)
        return z
