"""Live performance: logged predictions joined to their newest label, per UTC time bucket.

One SQL query fetches (prediction time, version, score, output, label, label time) for the model's
predictions in the range, with a LEFT JOIN to the newest label (``feedback.is_latest``); everything
after that is vectorised (numpy/pandas) and the metrics come from the same functions training uses
(``classification_metrics`` / ``regression_metrics``), so a live figure and its training baseline
are computed the same way.

Buckets are of prediction time, aligned to multiples of the window since 1970-01-01 UTC (so ``1d``
buckets are UTC calendar days, ``1h`` buckets whole UTC hours). Only buckets holding predictions
are listed, the most recent ``MAX_BUCKETS`` at most.

Degradation rule (``tolerance``, default 0.05), checked on the overall figures and on the most
recent bucket with at least ``min_labeled`` labels, against the version's training metrics
(measured on its held-out split):
- higher is better (accuracy, f1, roc_auc, r2): degraded when ``live < baseline - tolerance``
  (absolute: 0.05 = five points of accuracy);
- lower is better (rmse, mae, log_loss): degraded when ``live > baseline * (1 + tolerance)``
  (relative: 0.05 = 5 % worse).
"""

import json
import math
import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.errors import InvalidInput, NotFound, listing
from mlops_mcp.core.metrics import METRICS, PRIMARY, REPORTED
from mlops_mcp.core.times import parse_duration, parse_time

if TYPE_CHECKING:
    import pandas as pd

    from mlops_mcp.core.models.registry import Registry
    from mlops_mcp.core.store import Store

MAX_BUCKETS = 200


# -- argument parsing -------------------------------------------------------------------------------
def parse_window(text: str, argument: str = "window") -> int:
    """'1h', '6h', '1d', '7d', '30m', '2w' -> seconds (1 minute .. 366 days)."""
    return int(parse_duration(text, argument, minimum=60, whole=True))


# -- the report -------------------------------------------------------------------------------------
def model_performance(
    store: "Store",
    registry: "Registry | None",
    model: str,
    version: int | None = None,
    window: str = "1d",
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    tolerance: float = 0.05,
    min_labeled: int = 30,
    max_buckets: int = MAX_BUCKETS,
) -> dict[str, Any]:
    """Per-bucket and overall live figures, the training baseline and the degradation verdict."""
    from mlops_mcp.core.models.registry import ModelRef

    ref = ModelRef.parse(model, default_alias=None)
    if ref.version is not None:
        if version is not None and version != ref.version:
            raise InvalidInput(f"'{model}' names version {ref.version} but version={version} was given", argument="version")
        version = ref.version
    if version is not None and version < 1:
        raise InvalidInput("a version number starts at 1", argument="version")
    width = parse_window(window)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None and end is not None and start >= end:
        raise InvalidInput(f"since ({start.isoformat()}) must be before until ({end.isoformat()})", argument="since")
    if not 0 <= tolerance <= 1:
        raise InvalidInput(f"{tolerance} is outside 0..1", argument="tolerance")
    name = ref.name

    mv_alias = None
    if ref.alias is not None and registry is not None:
        version = int(registry.resolve(ref).version)
        mv_alias = ref.alias

    # The two scans are independent: run them side by side (the drivers release the GIL in C).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        labeled_job = pool.submit(fetch_labeled, store, name, version, start, end, True)
        counts = fetch_counts(store, name, version, start, end, width)
        labeled = labeled_job.result()
    if counts.empty and registry is not None:
        registry.registered_model(name)  # NotFound (listing the models) when the name is wrong
        if version is not None:
            registry.version(name, version)  # NotFound (listing the versions) when the version is wrong
    if counts.empty and registry is None:
        raise NotFound(f"no predictions logged for '{name}'", argument="model")

    versions = sorted(int(v) for v in counts["version"].unique())
    baseline_version, baseline, task, classes = _baseline(registry, name, version, versions)
    if task is None:
        task = _infer_task(labeled)
    if task == "classification" and not classes:
        classes = _infer_classes(labeled)
    metrics_fn = _metric_function(task, classes or [])

    n_total = int(counts["n"].sum())
    overall = _figures(labeled, n_total, metrics_fn)
    buckets, total_buckets = _buckets(counts, labeled, width, metrics_fn, max_buckets)
    checks, reasons = _degradation(task, overall, buckets, baseline, tolerance, min_labeled)
    first = _ts(counts["t0"].min()) if n_total else None
    last = _ts(counts["t1"].max()) if n_total else None

    changes = _champion_changes(registry, name, first, last)
    notes = []
    if not n_total:
        notes.append("no predictions logged in this range")
    elif overall["labeled"] == 0:
        notes.append("no labels yet: log ground truth with log_feedback (prediction_id + actual)")
    if total_buckets > len(buckets):
        notes.append(
            f"{total_buckets} buckets hold predictions; only the most recent {len(buckets)} are listed "
            "(overall figures cover all of them); use a wider window or since/until to see earlier ones"
        )
    if baseline_version is not None and not baseline:
        notes.append(f"version {baseline_version} has no training metrics in MLflow: no baseline to compare with")
    if overall["labeled"] and overall["labeled"] < min_labeled:
        notes.append(f"only {overall['labeled']} labels (< min_labeled={min_labeled}): not enough to judge degradation")
    return {
        "model": name,
        "version": version,
        "alias": mv_alias,
        "task": task,
        "classes": classes if task == "classification" else None,
        "window": window.strip(),
        "window_seconds": width,
        "since": start,
        "until": end,
        "first_prediction": first,
        "last_prediction": last,
        "versions": versions,
        "overall": overall,
        "baseline": {"version": baseline_version, "metrics": baseline, "source": "training metrics on the held-out split"},
        "tolerance": tolerance,
        "min_labeled": min_labeled,
        "degraded": bool(reasons),
        "reasons": reasons,
        "checks": checks,
        "buckets": buckets,
        "buckets_total": total_buckets,
        "champion_changes": changes,
        "notes": notes,
    }


# -- data -------------------------------------------------------------------------------------------
def _epoch_sql(column: str, sqlite: bool) -> str:
    if sqlite:  # SQLAlchemy keeps SQLite datetimes as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'
        return f"((julianday({column}) - 2440587.5) * 86400.0)"
    return f"CAST(EXTRACT(EPOCH FROM {column}) AS DOUBLE PRECISION)"


def _run(store: "Store", sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Execute on the DBAPI cursor: a million rows through SQLAlchemy's Row objects costs seconds."""
    mark = "?" if store.is_sqlite else "%s"
    with store.read() as session:
        raw = session.connection().connection
        cursor = raw.cursor()
        try:
            cursor.execute(sql.replace(":p", mark), params)
            return cursor.fetchall()
        finally:
            cursor.close()


def _filters(store: "Store", time_col: str, model: str, version: int | None, start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    where, params = ["model = :p"], [model]
    if version is not None:
        where.append("version = :p")
        params.append(version)
    for bound, op in ((start, ">="), (end, "<")):
        if bound is not None:
            where.append(f"{time_col} {op} :p")
            params.append(bound.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if store.is_sqlite else bound)
    return " AND ".join(where), params


def fetch_counts(store: "Store", model: str, version: int | None, start: datetime | None, end: datetime | None, width: int) -> "pd.DataFrame":
    """Predictions per (bucket, version), aggregated in SQL: b (bucket number), version, n, t0, t1."""
    import pandas as pd

    sqlite = store.is_sqlite
    # Integer seconds, integer division: exact bucket edges (julianday's double arithmetic would put
    # 00:00:00 at 23:59:59.99999); after 1970 integer division is the floor.
    bucket = (
        f"(CAST(strftime('%s', created_at) AS INTEGER) / {width})" if sqlite
        else f"FLOOR(EXTRACT(EPOCH FROM created_at) / {width})"
    )
    where, params = _filters(store, "created_at", model, version, start, end)
    sql = (
        f"SELECT b, version, COUNT(*), MIN(created_at), MAX(created_at) FROM "
        f"(SELECT {bucket} AS b, version, created_at FROM predictions WHERE {where}) AS q GROUP BY b, version ORDER BY b"
    )
    rows = _run(store, sql, params)
    frame = pd.DataFrame(rows, columns=["b", "version", "n", "t0", "t1"])
    for col in ("t0", "t1"):  # a few hundred values: parse here rather than per row in SQL
        stamps = pd.to_datetime(frame[col], utc=True, format="ISO8601") if len(frame) else frame[col]
        frame[col] = [s.timestamp() for s in stamps]
    return frame.astype({"b": "int64", "version": "int64", "n": "int64", "t0": float, "t1": float})


def fetch_labeled(
    store: "Store", model: str, version: int | None, start: datetime | None, end: datetime | None, multiclass: bool = False
) -> "pd.DataFrame":
    """One row per labeled prediction (its newest label): t (prediction epoch s), version, score,
    out / act (JSON text), lag (label time - prediction time, s)[, probs (JSON text)]."""
    import numpy as np
    import pandas as pd

    sqlite = store.is_sqlite
    where, params = _filters(store, "predicted_at", model, version, start, end)
    text = "TEXT"
    t_expr = _epoch_sql("predicted_at", sqlite)
    lag_expr = f"({_epoch_sql('created_at', sqlite)} - {t_expr})"
    cols = (
        f"{t_expr}, version, score, CAST(output AS {text}), CAST(actual AS {text}), {lag_expr}"
        + (f", CAST(probabilities AS {text})" if multiclass else "")
    )
    latest = "is_latest = 1" if sqlite else "is_latest"
    rows = _run(store, f"SELECT {cols} FROM feedback WHERE {where} AND {latest}", params)
    names = ["t", "version", "score", "out", "act", "lag"] + (["probs"] if multiclass else [])
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("t", "lag", "score") else object) for c in names})
    table = np.array(rows, dtype=object)  # 2-D at C speed; zip(*rows) costs 4x more on 500k rows
    del rows
    digits = 3 if sqlite else 6  # the backend's time resolution
    data: dict[str, Any] = {
        "t": np.round(table[:, 0].astype(float), digits),
        "version": table[:, 1].astype(np.int64),
        "score": np.array(table[:, 2], dtype=float),  # None -> nan
        "out": table[:, 3],
        "act": table[:, 4],
        "lag": np.round(table[:, 5].astype(float), digits),
    }
    if multiclass:
        data["probs"] = table[:, 6]
    return pd.DataFrame(data)


def _baseline(
    registry: "Registry | None", name: str, version: int | None, versions: list[int]
) -> tuple[int | None, dict[str, float], str | None, list[Any] | None]:
    """(baseline version, its training metrics, task, classes): the version asked for, else the
    champion, else the newest version that served predictions."""
    if registry is None:
        return None, {}, None, None
    from mlops_mcp.core.feedback.labels import version_kind

    chosen = version
    if chosen is None:
        try:
            chosen = registry.aliases(name).get("champion")
        except NotFound:
            chosen = None
        if chosen is None and versions:
            chosen = versions[-1]
    if chosen is None:
        return None, {}, None, None
    try:
        mv = registry.version(name, chosen)
    except NotFound:
        return chosen, {}, None, None
    kind = version_kind(registry, name, chosen)
    keep = REPORTED.get(kind.task, ())
    metrics = {k: round(float(v), 6) for k, v in registry.run_metrics(mv.run_id).items() if k in keep}
    return chosen, metrics, kind.task, kind.classes


def _infer_task(frame: "pd.DataFrame") -> str:
    if frame.empty:
        return "classification"
    sample = [json.loads(x) for x in frame["out"].head(50) if x is not None]
    return "regression" if sample and all(isinstance(v, float) for v in sample) else "classification"


def _infer_classes(frame: "pd.DataFrame") -> list[Any]:
    values = set(frame["out"].dropna().unique()) | set(frame["act"].dropna().unique())
    return sorted((json.loads(v) for v in values), key=str)


def _metric_function(task: str, classes: list[Any]) -> Any:
    """fn(sub-frame of labeled rows) -> metrics dict, via the training module's metric functions."""
    import numpy as np

    from mlops_mcp.core.models.training import classification_metrics, regression_metrics

    if task == "regression":

        def regression(sub: "pd.DataFrame") -> dict[str, float]:
            import pandas as pd

            y_true = pd.to_numeric(sub["act"], errors="coerce").to_numpy(dtype=float)
            y_pred = pd.to_numeric(sub["out"], errors="coerce").to_numpy(dtype=float)
            ok = np.isfinite(y_true) & np.isfinite(y_pred)
            if ok.sum() < 2:
                return {}
            return regression_metrics(y_true[ok], y_pred[ok])

        return regression

    decode = {json.dumps(c): c for c in classes}
    binary = len(classes) == 2

    def classification(sub: "pd.DataFrame") -> dict[str, float]:
        def as_labels(texts: Any) -> np.ndarray:
            values = [decode[x] if x in decode else json.loads(x) for x in texts]
            return np.asarray(values) if values else np.asarray([], dtype=object)

        # JSON text -> label, per distinct value (a handful), not per row
        y_true = _decode_column(sub["act"], as_labels)
        y_pred = _decode_column(sub["out"], as_labels)
        proba = None
        scores = sub["score"].to_numpy(dtype=float)
        if binary and len(scores) and np.isfinite(scores).all():
            proba = np.column_stack([1.0 - scores, scores])  # score = P(classes[1])
        elif not binary and "probs" in sub.columns and sub["probs"].notna().all():
            keys = [str(c) for c in classes]
            parsed = [json.loads(x) for x in sub["probs"]]
            proba = np.asarray([[d.get(k, 0.0) for k in keys] for d in parsed], dtype=float)
            proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)  # stored rounded to 6 places
        labels = list(classes) or sorted(set(y_true) | set(y_pred), key=str)
        if len(labels) < 2:
            return {"accuracy": float(np.mean(y_true == y_pred))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # f1 of a bucket without positives is 0, not a warning
            try:
                return classification_metrics(y_true, y_pred, proba, labels)
            except ValueError:  # e.g. a label outside the model's classes in old data
                return classification_metrics(y_true, y_pred, None, labels)

    return classification


def _decode_column(col: "pd.Series", as_labels: Any) -> Any:
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(col)
    decoded = as_labels(list(uniques))  # a handful of distinct labels, decoded once each
    return decoded[codes] if len(decoded) else np.asarray([], dtype=object)


def _figures(labeled: "pd.DataFrame", n: int, metrics_fn: Any) -> dict[str, Any]:
    import numpy as np

    k = int(len(labeled))
    lag = float(np.median(labeled["lag"].to_numpy())) if k else None
    return {
        "predictions": n,
        "labeled": k,
        "label_coverage": round(k / n, 6) if n else None,
        "median_label_lag_s": None if lag is None else round(lag, 3),
        "metrics": _round(metrics_fn(labeled)) if k else {},
    }


def _buckets(
    counts: "pd.DataFrame", labeled: "pd.DataFrame", width: int, metrics_fn: Any, max_buckets: int
) -> tuple[list[dict[str, Any]], int]:
    import numpy as np

    if counts.empty:
        return [], 0
    per_bucket = counts.groupby("b", sort=True)
    totals = per_bucket["n"].sum()
    versions = per_bucket["version"].apply(lambda v: sorted(int(x) for x in v))
    keys = totals.index.to_numpy()
    total = len(keys)
    keep = keys[-max_buckets:]
    idx = np.floor(labeled["t"].to_numpy() / width).astype(np.int64) if len(labeled) else np.zeros(0, np.int64)
    mask = idx >= keep[0]
    order = np.argsort(idx[mask], kind="stable")
    lab_idx = idx[mask][order]
    lab = labeled[mask].iloc[order]
    lo_b, hi_b = np.searchsorted(lab_idx, keep, side="left"), np.searchsorted(lab_idx, keep, side="right")
    lags = lab["lag"].to_numpy()
    out = []
    for j, key in enumerate(keep):
        lo, hi = int(lo_b[j]), int(hi_b[j])
        n, k = int(totals.loc[key]), hi - lo
        out.append(
            {
                "start": _ts(float(key) * width),
                "end": _ts(float(key + 1) * width),
                "predictions": n,
                "labeled": k,
                "label_coverage": round(k / n, 6) if n else None,
                "median_label_lag_s": round(float(np.median(lags[lo:hi])), 3) if k else None,
                "metrics": _round(metrics_fn(lab.iloc[lo:hi])) if k else {},
                "versions": versions.loc[key],
            }
        )
    return out, total


def _degradation(
    task: str, overall: dict[str, Any], buckets: list[dict[str, Any]], baseline: dict[str, float], tolerance: float, min_labeled: int
) -> tuple[list[dict[str, Any]], list[str]]:
    scopes: list[tuple[str, dict[str, Any]]] = []
    if overall["labeled"] >= min_labeled:
        scopes.append(("overall", overall))
    latest = next((b for b in reversed(buckets) if b["labeled"] >= min_labeled), None)
    if latest is not None and len(buckets) > 1:
        scopes.append((f"bucket {latest['start'].isoformat()}", latest))
    checks, reasons = [], []
    for scope, figures in scopes:
        for metric in REPORTED.get(task, ()):
            live, base = figures["metrics"].get(metric), baseline.get(metric)
            if live is None or base is None:
                continue
            if METRICS[metric].higher_is_better:
                limit = base - tolerance
                bad = live < limit
                rule = f"below baseline {base:.4f} - {tolerance:g}"
            else:
                limit = base * (1 + tolerance)
                bad = live > limit
                rule = f"above baseline {base:.4f} x (1 + {tolerance:g})"
            checks.append(
                {"scope": scope, "metric": metric, "value": live, "baseline": base, "limit": round(limit, 6), "degraded": bad}
            )
            if bad:
                reasons.append(f"{scope}: {metric} {live:.4f} is {rule} = {limit:.4f} ({figures['labeled']} labels)")
    return checks, reasons


def _champion_changes(registry: "Registry | None", name: str, first: datetime | None, last: datetime | None) -> list[dict[str, Any]]:
    """Moves of the champion alias within the reported time range (from the store's alias events)."""
    if registry is None:
        return []
    events = registry.alias_events(name, "champion")
    if first is not None and last is not None:
        events = [e for e in events if first <= e.at <= last + timedelta(seconds=1)]
    return [
        {"at": e.at, "from_version": e.from_version, "to_version": e.to_version, "kind": e.kind}
        for e in events[-20:]
    ]


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(round(float(epoch), 6), UTC)


def _round(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in metrics.items() if v is not None and math.isfinite(v)}


# -- the chart ---------------------------------------------------------------------------------------
def plot_performance(report: dict[str, Any], metric: str | None = None) -> bytes:
    """PNG: the metric per bucket (line), its training baseline and the degradation limit (dashed),
    labels per bucket (bars, right axis) and champion changes (vertical lines)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = report["task"]
    metric = metric or PRIMARY.get(task, "accuracy")
    buckets = report["buckets"]
    xs = [b["start"] + (b["end"] - b["start"]) / 2 for b in buckets]
    ys = [b["metrics"].get(metric, float("nan")) for b in buckets]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax2 = ax.twinx()
    width = timedelta(seconds=report["window_seconds"] * 0.8)
    ax2.bar(xs, [b["labeled"] for b in buckets], width=width, color="#c7d7ea", alpha=0.6, label="labels")
    ax2.set_ylabel("labels per bucket")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(xs, ys, marker="o", color="#1f77b4", label=f"live {metric}")
    base = report["baseline"]["metrics"].get(metric)
    if base is not None:
        tol = report["tolerance"]
        limit = base - tol if METRICS[metric].higher_is_better else base * (1 + tol)
        ax.axhline(base, color="#2ca02c", ls="--", lw=1, label=f"baseline (v{report['baseline']['version']}) {base:.3f}")
        ax.axhline(limit, color="#d62728", ls=":", lw=1, label=f"degradation limit {limit:.3f}")
    for change in report["champion_changes"]:
        ax.axvline(change["at"], color="#9467bd", lw=1)
        ax.annotate(f"champion -> v{change['to_version']}", (change["at"], 1.0), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=7, color="#9467bd")
    state = "DEGRADED" if report["degraded"] else "ok"
    ax.set_title(f"{report['model']}: live {metric} per {report['window']} (UTC) - {state}")
    ax.set_ylabel(metric)
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def check_metric(task: str, metric: str | None) -> str | None:
    if metric is None:
        return None
    allowed = REPORTED.get(task, ())
    if metric not in allowed:
        raise InvalidInput(f"'{metric}' is not a {task} metric; accepted: {listing(allowed)}", argument="metric")
    return metric
