"""Drift checks of a model version: its reference profile (or given reference data) against current
data (a dataset, or the inputs of the predictions it served), every check kept as a report.

"Is the model drifting since the rule change?" is ``check_model_drift(model="nba-win")``: the
champion's reference profile against the last 7 days of logged inputs, plus prediction drift
(the model's scores on reference vs current) tested the same way.

Logged inputs are the raw request values (``predict`` accepts numeric strings such as "100.6"), so
they are cast with the version's schema before the check. Inputs do not depend on the version that
served them, so every logged prediction of the model counts for the feature columns; prediction
drift uses only the scores of the version whose reference is compared (other versions' scores,
A/B arms or earlier champions, are a different model's output).
"""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.datasets import DataSource, load_dataset, read_frame, resolve_path
from mlops_mcp.core.errors import InvalidInput, NotFound, listing
from mlops_mcp.core.models.profile import PREDICTION_COLUMN, prepare_for_drift, prepared_reference
from mlops_mcp.core.models.registry import ModelRef, Registry
from mlops_mcp.core.times import parse_time

if TYPE_CHECKING:
    import pandas as pd

    from mlops_mcp.core.store import Store

log = logging.getLogger(__name__)

MAX_LOGGED_ROWS = 200_000  # newest logged predictions used as current data
DIGITS = 4  # significant digits of every float the service returns (results stay small)
VERSION_COLUMN = "__version__"  # version that served a logged prediction (logged_inputs)
MAX_PREDICTION_ROWS = 100_000  # rows scored for prediction drift on a dataset
STREAM_ROWS = 2_000_000  # Parquet files larger than this are read column by column


def logged_inputs(store: "Store", model: str, since: datetime, until: datetime, limit: int = MAX_LOGGED_ROWS) -> "pd.DataFrame":
    """Inputs (raw, as requested), scores and serving versions (``VERSION_COLUMN``) of the newest
    ``limit`` predictions logged for ``model`` in [since, until)."""
    import pandas as pd
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import Prediction

    query = (
        select(Prediction.inputs, Prediction.score, Prediction.version)
        .where(Prediction.model == model, Prediction.created_at >= since, Prediction.created_at < until)
        .order_by(Prediction.created_at.desc())
        .limit(limit)
    )
    with store.read() as session:
        rows = session.execute(query).all()
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame.from_records([r[0] for r in rows])
    frame[PREDICTION_COLUMN] = [r[1] for r in rows]
    frame[VERSION_COLUMN] = [r[2] for r in rows]
    return frame


def coerce_logged(frame: "pd.DataFrame", schema: Any, prepared: Any) -> "pd.DataFrame":
    """Logged inputs cast with the model's schema, as ``predict`` cast them (numeric strings to numbers).

    Columns absent from ``frame`` stay absent, other columns (the score) are kept. Numeric values
    that cannot be read (another version's schema, or strings Python's float() took but pandas does
    not, such as "1_000", or infinities logged before they were refused) become missing rather than
    failing the check. A categorical column whose reference holds numbers or booleans (a forced
    categorical) keeps its logged values: as strings they would read as a type change.
    """
    import numpy as np
    import pandas as pd

    from mlops_mcp.core.models.pipeline import coerce_features

    present = [c for c in schema.features if c in frame.columns]
    if not present:
        return frame
    raw = frame.reindex(columns=schema.features)
    try:
        cast = coerce_features(raw, schema, argument="dataset")
    except InvalidInput as exc:
        log.warning("logged inputs do not all fit the schema (%s); unreadable numbers are counted as missing", exc)
        numbers = {c: pd.to_numeric(raw[c], errors="coerce").astype("float64") for c in schema.numeric}
        raw = raw.assign(**{c: v.where(np.isfinite(v)) for c, v in numbers.items()})
        cast = coerce_features(raw, schema, argument="dataset")
    categorical = prepared.categorical
    keep = [c for c in present if c not in categorical or categorical[c].family in ("string", "empty")]
    out = frame.copy()
    for c in keep:
        out[c] = cast[c]
    return out


def check_model_drift(
    registry: Registry,
    store: "Store",
    roots: list[Path],
    *,
    model: str,
    dataset: DataSource | None = None,
    reference: DataSource | None = None,
    version: int | None = None,
    columns: list[str] | None = None,
    method: str = "auto",
    threshold: float | None = None,
    thresholds: dict[str, float] | None = None,
    alpha: float = 0.05,
    drift_share: float = 0.5,
    since: str | None = None,
    until: str | None = None,
    multivariate: bool = False,
    actor: str = "unknown",
    want_plot: bool = False,
) -> tuple[dict[str, Any], bytes | None]:
    """Run, persist and return one drift report (and its PNG when asked)."""
    from mlops_mcp.core.drift import METHODS, check_drift, check_drift_parquet, domain_classifier, plot_report
    from mlops_mcp.core.drift.engine import _clean
    from mlops_mcp.core.drift.importance import input_importance

    if method != "auto" and method not in METHODS:
        raise InvalidInput(f"unknown method '{method}'; accepted: auto, {listing(METHODS)}", argument="method")
    ref = ModelRef.parse(model)
    if version is not None:
        ref = ModelRef(ref.name, version=version)
    mv = registry.resolve(ref)
    loaded = registry.load(mv)
    features = loaded.schema.features

    # reference side
    if reference is not None:
        ref_data = load_dataset(reference, roots, argument="reference")
        ref_frame = ref_data.frame
        _require_columns(ref_frame, features, "reference")
        ref_frame = ref_frame.copy()
        if len(ref_frame) > MAX_PREDICTION_ROWS:  # scored for prediction drift: keep a sample that size
            ref_frame = ref_frame.sample(n=MAX_PREDICTION_ROWS, random_state=0)
        ref_frame[PREDICTION_COLUMN] = _scores(loaded, ref_frame)
        prepared = prepare_for_drift(ref_frame, loaded.schema)
        reference_source, reference_sample = ref_data.name, ref_frame
    else:
        folder = registry.reference_dir(mv)
        if folder is None:
            raise NotFound(
                f"version {mv.version} of '{mv.name}' has no reference profile (registered without "
                "reference_dataset); pass reference=<dataset path> to compare against",
                argument="reference",
            )
        prepared = prepared_reference(folder)
        reference_source = f"reference profile of {mv.name}/{mv.version}"
        reference_sample = registry.reference(mv).sample if multivariate else None

    # current side
    now = datetime.now(UTC)
    until_t = parse_time(until, "until") or now
    since_t = parse_time(since, "since") or (until_t - timedelta(days=7))
    if since_t >= until_t:
        raise InvalidInput(f"since ({since_t.isoformat()}) must be before until ({until_t.isoformat()})", argument="since")
    checked = columns or [c for c in features if c in prepared.columns]
    unknown = [c for c in checked if c not in features]
    if unknown:
        raise InvalidInput(f"not inputs of {mv.name}/{mv.version}: {listing(unknown)}; inputs: {listing(features, 60)}", argument="columns")
    options = dict(method=method, alpha=alpha, thresholds=_thresholds(method, threshold, thresholds), drift_share=drift_share)

    current_frame = None
    notes: list[str] = []
    if dataset is not None and not isinstance(dataset, str):  # inline rows
        data = load_dataset(dataset, roots)
        current_source, current_frame = data.name, data.frame
        _require_columns(current_frame, checked, "dataset")
        report = check_drift(prepared, current_frame, columns=checked, **options)
        pred_current = None
        if all(c in current_frame.columns for c in features):
            pred_current = current_frame.assign(**{PREDICTION_COLUMN: _scores(loaded, current_frame)})
    elif dataset is not None:
        path = resolve_path(dataset, roots)
        current_source = dataset
        if path.suffix.lower() in (".parquet", ".pq") and _parquet_rows(path) > STREAM_ROWS:
            report = check_drift_parquet(prepared, path, columns=checked, **options)
            pred_current = None  # not loaded whole: prediction drift is skipped for streamed files
            notes.append(f"no prediction drift: files over {STREAM_ROWS:,} rows are streamed column by column, not scored")
        else:
            current_frame = read_frame(path)
            _require_columns(current_frame, checked, "dataset")
            report = check_drift(prepared, current_frame, columns=checked, **options)
            pred_current = None
            if all(c in current_frame.columns for c in features):
                head = current_frame.head(MAX_PREDICTION_ROWS)
                pred_current = head.assign(**{PREDICTION_COLUMN: _scores(loaded, head)})
    else:
        current_frame = logged_inputs(store, mv.name, since_t, until_t)
        if current_frame.empty:
            raise InvalidInput(
                f"no predictions logged for '{mv.name}' between {since_t:%Y-%m-%d %H:%M} and {until_t:%Y-%m-%d %H:%M} UTC; "
                "pass dataset=<path> or widen since/until",
                argument="dataset",
            )
        current_source = f"inputs of {len(current_frame)} predictions logged {since_t:%Y-%m-%d %H:%M}..{until_t:%Y-%m-%d %H:%M} UTC"
        _require_columns(current_frame, checked, "dataset")
        served_by = current_frame.pop(VERSION_COLUMN).to_numpy()
        current_frame = coerce_logged(current_frame, loaded.schema, prepared)
        report = check_drift(prepared, current_frame, columns=checked, **options)
        pred_current, note = _own_scores(current_frame, served_by, int(mv.version))
        if note and PREDICTION_COLUMN in prepared.columns:
            log.info("drift of %s/%s: %s", mv.name, mv.version, note)
            notes.append(note)

    prediction = None
    if pred_current is not None and len(pred_current) and PREDICTION_COLUMN in prepared.columns:
        pred_report = check_drift(prepared, pred_current, columns=[PREDICTION_COLUMN], method=method, alpha=alpha)
        prediction = pred_report.columns[0]

    importance, importance_note = input_importance(loaded.model)
    if importance is None:
        notes.append(f"feature importance {importance_note}; every input counts as important in the severity rule")
    report.assess(prediction=prediction, importance=importance, importance_source=importance_note if importance else None)
    _name_extra_columns(report, loaded.schema, f"{mv.name}/{mv.version}")

    result = report.to_dict(digits=DIGITS)
    result.update(
        model=mv.name,
        version=int(mv.version),
        reference_source=reference_source,
        current_source=current_source,
        prediction_drift=None if prediction is None else prediction.to_dict(digits=DIGITS),
        notes=notes,
    )
    if multivariate and current_frame is not None and reference_sample is not None:
        classifier = domain_classifier(reference_sample[checked], current_frame[checked], columns=checked)
        result["multivariate"] = _clean(classifier, DIGITS)
    result["report_id"] = _persist(store, result, actor)
    png = plot_report(report, prepared, current_frame) if want_plot else None
    return result, png


def _name_extra_columns(report: Any, schema: Any, label: str) -> None:
    """Say why current columns outside the reference were not checked: the target, or not an input."""
    for entry in report.not_checked:
        if entry["column"] in report.extra_columns and entry["reason"] == "not in the reference":
            is_target = entry["column"] == schema.target
            entry["reason"] = f"the target of {label}, not an input" if is_target else f"not an input of {label}"


def _scores(loaded: Any, frame: "pd.DataFrame") -> Any:
    from mlops_mcp.core.models.pipeline import coerce_features
    from mlops_mcp.core.models.training import prediction_scores

    X = coerce_features(frame[loaded.schema.features], loaded.schema, argument="dataset")
    return prediction_scores(loaded.model, loaded.task, X)


def _own_scores(frame: "pd.DataFrame", served_by: Any, version: int) -> tuple["pd.DataFrame", str | None]:
    """Scores of the predictions ``version`` served, and a note when others were left out."""
    import numpy as np

    own = np.asarray(served_by == version, dtype=bool)
    scores = frame.loc[own, [PREDICTION_COLUMN]].dropna()
    n_other = int((~own).sum())
    if not own.any():
        others = sorted({int(v) for v in served_by})
        return scores, (
            f"no prediction drift: none of the {len(frame)} logged predictions was served by version {version} "
            f"(served by {listing(others)}); pass dataset=<path> to score data with version {version}"
        )
    if n_other:
        return scores, (
            f"prediction drift uses the {int(own.sum())} logged predictions served by version {version}; "
            f"{n_other} served by other versions (A/B arms, earlier champions) are left out"
        )
    return scores, None


def _require_columns(frame: "pd.DataFrame", columns: list[str], argument: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"lacks columns {listing(missing)}; it has: {listing(frame.columns, 60)} (use columns=[...] to check a subset)",
            argument=argument,
        )


def _thresholds(method: str, threshold: float | None, thresholds: dict[str, float] | None) -> dict[str, float] | None:
    out = dict(thresholds or {})
    if threshold is not None:
        if method in ("auto", "ks", "cramer_von_mises", "chi2", "ztest"):
            raise InvalidInput(
                f"threshold applies to distance methods (wasserstein, psi, jensenshannon, hellinger, kl_div), not "
                f"'{method}'; for auto use thresholds={{'wasserstein': 0.2, 'jensenshannon': 0.1}}, for tests use alpha",
                argument="threshold",
            )
        out[method] = threshold
    return out or None


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    if path.is_dir():
        raise InvalidInput(
            f"'{path.name}' is a directory, not a Parquet file; give the path of one .parquet file", argument="dataset"
        )
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError) as exc:  # unreadable, or not Parquet (ArrowInvalid is a ValueError)
        reason = str(exc).replace(str(path), path.name)
        raise InvalidInput(f"cannot read '{path.name}' as Parquet: {reason}", argument="dataset") from exc


def _persist(store: "Store", result: dict[str, Any], actor: str) -> int:
    from mlops_mcp.core.store.tables import DriftReportRow

    row = DriftReportRow(
        model=result["model"],
        version=result["version"],
        created_at=datetime.now(UTC),
        actor=actor,
        reference_source=result["reference_source"][:500],
        current_source=result["current_source"][:500],
        n_reference=int(result["n_reference"]),
        n_current=int(result["n_current"]),
        method=result["method"],
        drift_detected=bool(result["drift_detected"]),
        share_drifted=float(result["share_drifted"]),
        n_drifted=int(result["n_drifted"]),
        n_checked=int(result["n_checked"]),
        drifted_columns=[c["column"] for c in result["columns"] if c.get("drifted")],
        prediction_drifted=None if result["prediction_drift"] is None else bool(result["prediction_drift"].get("drifted")),
        report=result,
    )
    with store.write() as session:
        session.add(row)
        session.flush()
        return int(row.id)


def history(registry: Registry, store: "Store", model: str, limit: int = 20) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import DriftReportRow

    registry.registered_model(model)
    query = select(DriftReportRow).where(DriftReportRow.model == model).order_by(DriftReportRow.id.desc()).limit(limit)
    with store.read() as session:
        rows = session.scalars(query).all()
        return [_headline(r) for r in rows]


def latest(store: "Store", model: str) -> dict[str, Any] | None:
    from sqlalchemy import select

    from mlops_mcp.core.store.tables import DriftReportRow

    query = select(DriftReportRow).where(DriftReportRow.model == model).order_by(DriftReportRow.id.desc()).limit(1)
    with store.read() as session:
        row = session.scalars(query).first()
        return None if row is None else {**_headline(row), "report": row.report}


def _headline(r: Any) -> dict[str, Any]:
    return {
        "report_id": r.id,
        "model": r.model,
        "version": r.version,
        "created_at": r.created_at,
        "actor": r.actor,
        "reference_source": r.reference_source,
        "current_source": r.current_source,
        "n_reference": r.n_reference,
        "n_current": r.n_current,
        "method": r.method,
        "drift_detected": r.drift_detected,
        "share_drifted": r.share_drifted,
        "n_drifted": r.n_drifted,
        "n_checked": r.n_checked,
        "drifted_columns": r.drifted_columns,
        "prediction_drifted": r.prediction_drifted,
        # kept in the report itself (reports written before severity existed have none)
        "severity": (r.report or {}).get("severity"),
        "headline": (r.report or {}).get("headline"),
    }
