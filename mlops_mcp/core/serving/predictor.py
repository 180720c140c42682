"""Serving predictions and logging every one of them.

A request names a model (``name`` = its champion, ``name@alias``, ``name/version``) and brings up to
``max_predict_rows`` feature rows. Rows are checked against the version's schema before any
model work; each row gets a ``prediction_id``; all rows of a request are logged in one
transaction (model, version, variant, inputs, output, latency, time, request key), which is what
feedback, performance tracking, drift on live data and experiments join on.

Routing (A/B arms, shadows) plugs in through :class:`Router`: given the resolved request it may
assign rows to other versions; without one, every row goes to the named version.
"""

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from mlops_mcp.core.errors import InvalidInput, MLOpsError, listing
from mlops_mcp.core.models.pipeline import coerce_features, unseen_dates
from mlops_mcp.core.models.registry import LoadedModel, ModelRef, Registry
from mlops_mcp.core.values import plain

if TYPE_CHECKING:

    from mlops_mcp.core.monitoring.recorder import Recorder
    from mlops_mcp.core.store import Store

log = logging.getLogger(__name__)


@dataclass
class Assignment:
    """Which version answers a group of rows, under which variant name and experiment."""

    version: int
    variant: str | None
    rows: list[int]
    experiment_id: int | None = None


class Router(Protocol):
    def route(self, ref: ModelRef, version: int, n_rows: int, request_keys: Sequence[str | None]) -> list[Assignment] | None:
        """Assignments for this request, or None to let the named version answer every row."""

    def after(self, ref: ModelRef, rows: list[dict[str, Any]], result: "PredictionBatch") -> None:
        """Called once the answer is logged (shadow scoring hooks in here)."""


@dataclass
class PredictionBatch:
    model: str
    requested: str
    rows: list[dict[str, Any]]
    versions: list[int]
    latency_ms: float
    task: str
    classes: list[Any] | None
    ids: list[str] = field(default_factory=list)
    #: what the caller should know about the input (e.g. dates the model never saw)
    warnings: list[str] = field(default_factory=list)


def parse_rows(rows: Any, max_rows: int) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not rows:
        raise InvalidInput("give a non-empty list of feature rows, e.g. [{\"pace\": 101.2, \"home_team\": \"BOS\"}]", argument="rows")
    if len(rows) > max_rows:
        raise InvalidInput(f"{len(rows)} rows is more than the {max_rows} one call accepts; split the batch", argument="rows")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInput(f"row {i} is a {type(row).__name__}, not an object of column: value", argument="rows")
    return rows


def check_columns(
    rows: list[dict[str, Any]], expected: list[str], argument: str = "rows", left_out: Sequence[str] = ()
) -> None:
    """Every row must carry exactly the model's columns (null values are fine: they are imputed).
    With ``argument="row"`` (one row, as explain_prediction takes it) rows are not numbered.
    ``left_out``: columns the training data had but the model does not use (dates), named as such."""
    want = set(expected)
    for i, row in enumerate(rows):
        keys = row.keys()
        if keys != want:
            missing = sorted(want - set(keys))
            extra = sorted(set(keys) - want)
            parts = []
            if missing:
                parts.append(f"missing {listing(missing)}")
            if extra:
                parts.append(f"unknown {listing(extra)}")
            where = f"row {i}: " if argument == "rows" else ""
            dates = [c for c in extra if c in left_out]
            why = (
                f" ({listing(repr(c) for c in dates)} {'holds' if len(dates) == 1 else 'hold'} dates, left out of the features when the "
                "model was trained: drop it from the rows)" if dates else ""
            )
            raise InvalidInput(
                f"{where}{'; '.join(parts)}{why}; the model expects exactly: {listing(expected, 60)}", argument=argument
            )




class Predictor:
    def __init__(self, registry: Registry, store: "Store", max_rows: int) -> None:
        self.registry = registry
        self.store = store
        self.max_rows = max_rows
        self.router: Router | None = None
        from mlops_mcp.core.serving.log import PredictionLog

        #: group commit of the prediction rows (see ``core/serving/log.py``)
        self.log = PredictionLog(store)
        #: counts predictions for /metrics (``core/monitoring``); None counts nothing
        self.monitor: "Recorder | None" = None

    def predict(
        self,
        model: str,
        rows: Any,
        request_keys: Sequence[str | None] | None = None,
        log_predictions: bool = True,
    ) -> PredictionBatch:
        """Predict and log; a failed request is counted (by reason, and by model once the name
        resolved to one) before the error goes back to the caller."""
        resolved: list[str] = []
        try:
            return self._predict(model, rows, request_keys, log_predictions, resolved)
        except Exception as exc:
            if self.monitor is not None:
                reason = exc.kind if isinstance(exc, MLOpsError) else "internal"
                self.monitor.prediction_error(resolved[0] if resolved else "", reason)
            raise

    def _predict(
        self,
        model: str,
        rows: Any,
        request_keys: Sequence[str | None] | None = None,
        log_predictions: bool = True,
        resolved: list[str] | None = None,
    ) -> PredictionBatch:
        started = time.perf_counter()
        rows = parse_rows(rows, self.max_rows)
        if request_keys is not None:
            if len(request_keys) != len(rows):
                raise InvalidInput(
                    f"{len(request_keys)} request keys for {len(rows)} rows; give one key per row (or none)",
                    argument="request_keys",
                )
            request_keys = [None if k is None else str(k)[:256] for k in request_keys]
        ref = ModelRef.parse(model)
        mv = self.registry.resolve_recent(ref)  # an alias lookup reused for up to alias_cache_seconds
        if resolved is not None:
            resolved.append(ref.name)
        loaded = self.registry.load(mv)
        schema = loaded.schema
        check_columns(rows, schema.features, left_out=[c for c in schema.dates if c not in schema.features])
        frame = prepare(loaded, rows)
        warnings = unseen_dates(schema, rows) if schema.dates else []
        keys = list(request_keys) if request_keys is not None else [None] * len(rows)
        assignments = self.router.route(ref, loaded.version, len(rows), keys) if self.router else None
        if not assignments:
            assignments = [Assignment(loaded.version, ref.alias, list(range(len(rows))))]

        outputs: list[dict[str, Any]] = [{} for _ in rows]
        versions = [0] * len(rows)
        for a in assignments:
            model_for = loaded if a.version == loaded.version else self.registry.load(
                self.registry.resolve_recent(ModelRef(ref.name, version=a.version))
            )
            whole = model_for is loaded and len(a.rows) == len(rows)
            part = frame if whole else prepare(model_for, [rows[i] for i in a.rows])
            for i, out in zip(a.rows, score_rows(model_for, part)):
                outputs[i] = {**out, "version": a.version, "variant": a.variant, "experiment_id": a.experiment_id}
                versions[i] = a.version
        latency_ms = (time.perf_counter() - started) * 1000
        ids = prediction_ids(len(rows))
        now = datetime.now(UTC)
        if log_predictions:
            self._log(ref.name, rows, outputs, ids, keys, latency_ms, now)
        result_rows = [
            {"prediction_id": pid, **{k: v for k, v in out.items() if k != "experiment_id"}} for pid, out in zip(ids, outputs)
        ]
        batch = PredictionBatch(ref.name, ref.name if ref.default else str(ref), result_rows, versions, latency_ms, loaded.task, loaded.classes, ids, warnings)
        if self.router is not None:
            try:
                self.router.after(ref, rows, batch)
            except Exception:  # a shadow's failure never reaches the caller
                log.exception("post-prediction hook failed for %s", ref)
        return batch

    def _log(
        self,
        name: str,
        rows: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        ids: list[str],
        keys: list[str | None],
        latency_ms: float,
        now: datetime,
    ) -> None:
        """Rows in their stored form (JSON text built column by column, once per batch), handed to
        the group-committing log; returns once they are committed."""
        from mlops_mcp.core.serving.jsonrows import dumps, json_records
        from mlops_mcp.core.serving.log import LogEntry

        n = len(rows)
        inputs = json_records(rows)
        probabilities = [out.get("probabilities") for out in outputs]
        if probabilities[0] is not None and all(p is not None for p in probabilities):
            probs = json_records(probabilities)  # type: ignore[arg-type]
        else:
            probs = [dumps(p) for p in probabilities]  # None is stored as JSON null, as SQLAlchemy's JSON did
        labels: dict[tuple[type, Any], str] = {}
        at = self.log.stamp(now)
        records = []
        for pid, text, out, key, prob in zip(ids, inputs, outputs, keys, probs):
            label = out["prediction"]
            k = (type(label), label)
            output = labels.get(k)
            if output is None:
                output = labels[k] = dumps(label)
            records.append(
                (pid, name, out["version"], out.get("variant"), out.get("experiment_id"), key, text, output,
                 out.get("score"), prob, latency_ms, n, at)
            )
        tally = None
        if self.monitor is not None:
            from mlops_mcp.core.monitoring.recorder import prediction_tally

            tally = prediction_tally(name, outputs, latency_ms, now)
        self.log.append(LogEntry(records, tally))


def prediction_ids(n: int) -> list[str]:
    """``n`` new prediction ids: UUIDv7 (RFC 9562) as 32 hex digits. The leading 48 bits are the
    time in milliseconds, so new ids sort after old ones and the log's primary-key index grows at
    its end instead of at random places (cheaper inserts on both stores); 74 random bits from one
    ``os.urandom`` call per batch keep them unique."""
    ms = f"{time.time_ns() // 1_000_000:012x}7"
    noise = os.urandom(10 * n).hex()  # 20 hex digits an id, 19 used: 3, the variant's (2 random bits of one), 15
    variant = _VARIANT
    return [f"{ms}{noise[i:i + 3]}{variant[noise[i + 3]]}{noise[i + 4:i + 19]}" for i in range(0, 20 * n, 20)]


#: RFC 9562 variant: the 17th hex digit is 8, 9, a or b (its top bits 10), from a random digit
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


FAST_ROWS = 256  # up to this many rows, skip pandas entirely


def prepare(loaded: LoadedModel, rows: list[dict[str, Any]]) -> Any:
    """Checked model input: the fast path's transformed matrix, or a coerced DataFrame."""
    encoder = loaded.encoder
    if encoder is not None and len(rows) <= FAST_ROWS:
        return encoder.transform(encoder.encode_records(rows))
    import pandas as pd

    frame = coerce_features(pd.DataFrame.from_records(rows, columns=loaded.schema.features), loaded.schema)
    return encoder.transform(encoder.encode(frame)) if encoder is not None else frame


def score_rows(loaded: LoadedModel, data: Any) -> list[dict[str, Any]]:
    """Predictions for prepared rows (see :func:`prepare`): label (+ probabilities, score) or value."""
    model = loaded.model
    if loaded.encoder is not None and not hasattr(data, "iloc"):
        model = model.named_steps["model"]  # the matrix is already what the final step sees
    if loaded.task == "classification" and loaded.flavor == "sklearn" and hasattr(model, "predict_proba"):
        with loaded.lock:  # some estimators are not safe to call from several threads at once
            proba = model.predict_proba(data)
        classes = [plain(c) for c in (loaded.classes or list(range(proba.shape[1])))]
        labels = [classes[j] for j in proba.argmax(axis=1).tolist()]
        names = [str(c) for c in classes]
        binary = len(classes) == 2
        scores = (proba[:, 1] if binary else proba.max(axis=1)).tolist()
        return [
            {
                "prediction": label,
                "probabilities": {n: round(p, 6) for n, p in zip(names, row)},
                "score": s,
            }
            for label, row, s in zip(labels, proba.tolist(), scores)
        ]
    with loaded.lock:
        raw = model.predict(data)
    values = _to_list(raw)
    if loaded.task == "classification":
        return [{"prediction": plain(v), "probabilities": None, "score": None} for v in values]
    return [{"prediction": plain(float(v)), "probabilities": None, "score": float(v)} for v in values]


def _to_list(raw: Any) -> list[Any]:
    if hasattr(raw, "to_numpy"):
        raw = raw.to_numpy()
    if hasattr(raw, "ndim") and raw.ndim > 1:
        raw = raw[:, 0]
    return list(raw)


def summarize(batch: PredictionBatch) -> dict[str, Any]:
    """Small headline figures of a batch, for results that cannot list every row."""
    import numpy as np

    preds = [r["prediction"] for r in batch.rows]
    summary: dict[str, Any] = {"rows": len(preds), "versions": sorted(set(batch.versions))}
    if batch.task == "classification":
        values, counts = np.unique(np.asarray([str(p) for p in preds]), return_counts=True)
        summary["predicted_classes"] = {str(v): int(c) for v, c in zip(values, counts)}
        scores = [r.get("score") for r in batch.rows if r.get("score") is not None]
        if scores:
            summary["mean_score"] = round(float(np.mean(scores)), 4)
    else:
        arr = np.asarray(preds, dtype=float)
        summary.update(
            mean=round(float(arr.mean()), 4),
            min=round(float(arr.min()), 4),
            max=round(float(arr.max()), 4),
        )
    return summary
