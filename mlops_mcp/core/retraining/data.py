"""The data a retraining job trains and judges on.

Training set: the champion's training dataset (its ``mlops.dataset`` lineage tag) or a given
dataset, plus the logged inputs of the model's predictions that have ground truth (joined with
their newest label) made since ``since`` (default: the champion's training time). Logged inputs are
cast to the dataset's column types, so the new version sees the data as the champion did.

Holdout: a fresh stratified split of the newest labeled data (the labeled predictions; without
them, the given dataset), taken only from rows the champion did not train on (its training-row
hashes) and removed, with every identical row, from the new version's training set: so neither
model has seen a held-out row. The split is seeded by the job id (re-running a job splits alike).
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlops_mcp.core.models.pipeline import FeatureSchema
    from mlops_mcp.core.store import Store

MAX_FEEDBACK_ROWS = 1_000_000  # newest labeled predictions used
MAX_TRAIN_ROWS = 2_000_000
MAX_HOLDOUT_ROWS = 10_000  # plenty for the paired tests (an AUC gain of 0.01 is ~3 SE); keeps the gate's cost flat
ACTUAL = "__actual__"
AT = "__predicted_at__"


@dataclass
class LabeledCounts:
    predictions: int  # logged since `since`
    labeled: int  # of those, with a label
    labels_total: int  # labels of the model at any time
    newest_label_at: datetime | None

    def explain(self, model: str, since: datetime) -> str:
        newest = "" if self.newest_label_at is None else f" (the newest at {self.newest_label_at:%Y-%m-%d %H:%M} UTC)"
        return (
            f"{self.predictions:,} predictions of '{model}' were logged since {since:%Y-%m-%d %H:%M:%S} UTC and "
            f"{self.labeled:,} of them have a label; {self.labels_total:,} labels exist for the model in all{newest}"
        )


def _sql_time(store: "Store", at: datetime) -> Any:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if store.is_sqlite else at


def counts(store: "Store", model: str, since: datetime, until: datetime) -> LabeledCounts:
    """How much labeled data the window holds (three small aggregate queries)."""
    from mlops_mcp.core.feedback.performance import _run

    t0, t1 = _sql_time(store, since), _sql_time(store, until)
    latest = "is_latest = 1" if store.is_sqlite else "is_latest"
    predictions = _run(store, "SELECT COUNT(*) FROM predictions WHERE model = :p AND created_at >= :p AND created_at < :p",
                       [model, t0, t1])[0][0]
    labeled = _run(store, f"SELECT COUNT(*) FROM feedback WHERE model = :p AND {latest} AND predicted_at >= :p AND predicted_at < :p",
                   [model, t0, t1])[0][0]
    total, newest = _run(store, f"SELECT COUNT(*), MAX(created_at) FROM feedback WHERE model = :p AND {latest}", [model])[0]
    if isinstance(newest, str):
        newest = datetime.fromisoformat(newest).replace(tzinfo=UTC)
    return LabeledCounts(int(predictions or 0), int(labeled or 0), int(total or 0), newest)


def labeled_inputs(
    store: "Store", model: str, since: datetime, until: datetime, features: list[str], limit: int = MAX_FEEDBACK_ROWS
) -> "pd.DataFrame":
    """The raw logged ``features`` of labeled predictions in [since, until), newest first, with the
    newest label (``ACTUAL``) and the prediction time (``AT``). One query on the DBAPI cursor; the
    database takes the columns out of the logged JSON (SQLite ``json_extract``, PostgreSQL ``->>``),
    so Python never parses 100k JSON objects."""
    import numpy as np
    import pandas as pd

    from mlops_mcp.core.feedback.performance import _run

    latest = "f.is_latest = 1" if store.is_sqlite else "f.is_latest"
    if store.is_sqlite:
        cols = ["json_extract(p.inputs, :p)" for _ in features]
        col_params: list[Any] = ['$."' + f.replace('"', '""') + '"' for f in features]
    else:
        cols = ["(p.inputs ->> :p)" for _ in features]
        col_params = list(features)
    rows = _run(
        store,
        f"SELECT {', '.join(cols + ['CAST(f.actual AS TEXT)', 'f.predicted_at'])} FROM feedback f "
        f"JOIN predictions p ON p.id = f.prediction_id WHERE f.model = :p AND {latest} "
        f"AND f.predicted_at >= :p AND f.predicted_at < :p ORDER BY f.predicted_at DESC LIMIT {int(limit)}",
        col_params + [model, _sql_time(store, since), _sql_time(store, until)],
    )
    if not rows:
        return pd.DataFrame()
    table = np.array(rows, dtype=object)
    del rows
    frame = pd.DataFrame({name: table[:, i] for i, name in enumerate(features)})
    n = len(features)
    frame[ACTUAL] = json.loads("[" + ",".join(table[:, n]) + "]")
    stamps = table[:, n + 1]
    frame[AT] = pd.to_datetime(stamps, utc=True, format="ISO8601") if store.is_sqlite else pd.to_datetime(list(stamps), utc=True)
    return frame


def cast_like(frame: "pd.DataFrame", columns: list[str], dtypes: dict[str, Any]) -> "pd.DataFrame":
    """Logged values cast to the training data's types (``dtypes``: column -> pandas dtype or its
    name); values that do not fit (another version's inputs) become missing."""
    import numpy as np
    import pandas as pd

    out = {}
    for col in columns:
        series = frame[col] if col in frame.columns else pd.Series([None] * len(frame), index=frame.index, dtype=object)
        kind = str(dtypes.get(col, "object"))
        if kind == "bool" or kind == "boolean":
            mapped = series.map(_as_bool)
            out[col] = mapped.astype(bool) if mapped.notna().all() else mapped.astype("boolean")
        elif kind.startswith(("int", "uint", "float", "Int", "Float")):
            numbers = pd.to_numeric(series, errors="coerce").astype("float64")
            numbers = numbers.where(np.isfinite(numbers))
            if kind.startswith(("int", "uint", "Int")) and numbers.notna().all() and (numbers % 1 == 0).all():
                out[col] = numbers.astype(kind if not kind[0].isupper() else kind.lower())
            else:
                out[col] = numbers
        else:
            out[col] = series.astype(object).where(series.notna(), None).map(lambda v: v if v is None else str(v))
    return pd.DataFrame(out, index=frame.index)


def _as_bool(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


@dataclass
class TrainingSet:
    train: "pd.DataFrame"
    holdout: "pd.DataFrame"
    summary: dict[str, Any] = field(default_factory=dict)


def _hash_columns(frame: "pd.DataFrame", schema: "FeatureSchema", target: str, task: str) -> "np.ndarray":
    from mlops_mcp.core.models.profile import hash_rows

    kinds = {**schema.kinds, target: "numeric" if task == "regression" else "categorical"}
    return hash_rows(frame, schema.features + [target], kinds)


def _in_champion_training(frame: "pd.DataFrame", hashes: Any, target: str) -> "np.ndarray":
    """Boolean mask: rows of ``frame`` that are training rows of the champion (its row hashes)."""
    import numpy as np

    from mlops_mcp.core.models.profile import hash_rows

    if hashes is None or len(frame) == 0:
        return np.zeros(len(frame), dtype=bool)
    features = [c for c in hashes.columns if c != hashes.target]
    if any(c not in frame.columns for c in features):
        return np.zeros(len(frame), dtype=bool)
    sub = frame[features + ([target] if hashes.target else [])].set_axis(hashes.columns if hashes.target else features, axis=1)
    return np.isin(hash_rows(sub, hashes.columns, hashes.kinds), hashes.hashes)


def _stratify(y: "pd.Series", task: str) -> Any:
    """Class labels, or quantile bins of a regression target; None when a stratum is too small."""
    import pandas as pd

    if task == "regression":
        try:
            strata = pd.qcut(y.astype(float), q=min(5, max(1, len(y) // 20)), labels=False, duplicates="drop")
        except ValueError:
            return None
    else:
        strata = y.astype(str)
    counts = strata.value_counts()
    return strata if len(counts) > 1 and counts.min() >= 2 else None


def assemble(
    base: "pd.DataFrame | None",
    feedback: "pd.DataFrame",
    *,
    schema: "FeatureSchema",
    target: str,
    task: str,
    champion_hashes: Any,
    holdout_fraction: float,
    min_holdout_rows: int,
    seed: int,
    base_source: str | None,
) -> TrainingSet:
    """Training set and holdout from the base data and the labeled predictions (see module doc)."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    columns = schema.features + [target]
    summary: dict[str, Any] = {"dataset": base_source, "dataset_rows": 0, "feedback_rows": len(feedback)}
    parts: list[pd.DataFrame] = []
    if base is not None:
        missing = [c for c in columns if c not in base.columns]
        if missing:
            raise InvalidInput(
                f"'{base_source}' lacks columns the model needs: {', '.join(missing[:20])}", argument="dataset"
            )
        base = base.loc[base[target].notna(), columns].reset_index(drop=True)
        summary["dataset_rows"] = len(base)
        dtypes = {c: base[c].dtype for c in columns}
    else:
        dtypes = {**schema.dtypes, target: "float64" if task == "regression" else "object"}
    fb = pd.DataFrame(columns=columns)
    if len(feedback):
        fb_raw = feedback.rename(columns={ACTUAL: target}) if target not in feedback.columns else feedback.assign(**{target: feedback[ACTUAL]})
        fb = cast_like(fb_raw, columns, dtypes)
        if base is None and task == "classification":
            fb[target] = fb_raw[target].to_numpy()
        fb = fb[fb[target].notna()].reset_index(drop=True)

    # the holdout: newest labeled data the champion never trained on
    pool_name = "labeled predictions" if len(fb) else "dataset"
    pool = fb if len(fb) else (base if base is not None else fb)
    seen = _in_champion_training(pool, champion_hashes, target)
    candidates = np.flatnonzero(~seen)
    n_hold = min(int(round(len(candidates) * holdout_fraction)), MAX_HOLDOUT_ROWS)
    if n_hold < min_holdout_rows:
        raise InvalidInput(
            f"the gate needs at least {min_holdout_rows} held-out rows, and {len(candidates):,} rows of the {pool_name} "
            f"are new to the champion ({int(seen.sum()):,} were among its training rows): holdout_fraction "
            f"{holdout_fraction:g} gives {n_hold}. Log more feedback, widen the window (since), or lower "
            "gate.min_holdout_rows",
            argument="gate",
        )
    strata = _stratify(pool[target].iloc[candidates].reset_index(drop=True), task)
    _, hold_idx = train_test_split(
        candidates, test_size=n_hold, random_state=seed,
        stratify=None if strata is None else strata.to_numpy(),
    )
    hold_mask = np.zeros(len(pool), dtype=bool)
    hold_mask[hold_idx] = True
    holdout = pool.loc[hold_mask, columns].reset_index(drop=True)
    if pool is fb:
        parts = ([base] if base is not None else []) + [fb.loc[~hold_mask, columns]]
    else:
        parts = [pool.loc[~hold_mask, columns]] + ([fb] if len(fb) else [])
    train = pd.concat([p for p in parts if len(p)], ignore_index=True) if parts else pd.DataFrame(columns=columns)
    # no copy of a held-out row may be trained on
    hold_hashes = np.unique(_hash_columns(holdout, schema, target, task))
    dup = np.isin(_hash_columns(train, schema, target, task), hold_hashes) if len(train) else np.zeros(0, dtype=bool)
    if dup.any():
        train = train.loc[~dup].reset_index(drop=True)
    if len(train) > MAX_TRAIN_ROWS:
        train = train.tail(MAX_TRAIN_ROWS).reset_index(drop=True)
    summary.update(
        holdout_rows=len(holdout),
        holdout_source=pool_name,
        holdout_fraction=holdout_fraction,
        holdout_stratified=strata is not None,
        holdout_excluded_champion_rows=int(seen.sum()),
        train_rows=len(train),
        train_dropped_duplicates_of_holdout=int(dup.sum()),
        feedback_rows_in_training=int((~hold_mask).sum()) if pool is fb else len(fb),
    )
    if task == "classification":
        summary["holdout_classes"] = {str(k): int(v) for k, v in holdout[target].value_counts().sort_index().items()}
    return TrainingSet(train=train, holdout=holdout, summary=summary)
