"""What fitting in a child process costs per training, and how fast a cancelled fit stops.

``train_model`` fits in a child forked from a fork server (see ``core/models/fitting.py``) so that
a cancelled request or the time limit can kill the fit. Compared here, in the same run: the same
estimator fitted in process (what a user would otherwise do, and what the server did before) and
through ``fit_in_child``; the difference is the cost of being stoppable (fork, and pickling the
rows there and the fitted model back). Also: the one-time start of the fork server, and the time
from ``cancel.set()`` to the fit being killed and the call returning.
"""

import os
import statistics
import tempfile
import threading
import time

from benchmarks.common import measure, table

EXCLUDE = ["game_id", "season", "game_date", "point_margin", "home_win"]


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import numpy as np
    import pandas as pd

    from mlops_mcp.core.config import Settings
    from mlops_mcp.core.engine import MLOps
    from mlops_mcp.core.errors import Cancelled
    from mlops_mcp.core.models import fitting
    from mlops_mcp.core.models.pipeline import build_pipeline, coerce_features, infer_schema

    home = tempfile.mkdtemp(prefix="mlops-bench-training-")
    ops = MLOps(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    ops.generate_demo_data(seasons=4, games_per_season=1230, rule_change_season=2024)
    frame = pd.read_parquet(os.path.join(home, "data", "nba", "train.parquet"))
    rng = np.random.default_rng(0)
    big = pd.concat([frame] * 10, ignore_index=True)
    numeric = [c for c in big.select_dtypes("number").columns if c not in EXCLUDE]
    big[numeric] = big[numeric] + rng.normal(0, 0.1, (len(big), len(numeric)))

    started = time.perf_counter()
    schema = infer_schema(frame, "home_win", exclude=EXCLUDE[:-1])
    X = coerce_features(frame[schema.features], schema)
    fitting.fit_in_child(build_pipeline("ridge", "regression", schema), X, frame["home_win"], timeout=600)
    first = time.perf_counter() - started

    rows = [["first fit in a server process (starts the fork server, imports sklearn there)", f"{first:.2f} s", "", ""]]
    from sklearn.dummy import DummyClassifier

    for data, label in ((frame, f"{len(frame):,} rows"), (big, f"{len(big):,} rows")):
        X = coerce_features(data[schema.features], schema)
        y = data["home_win"]
        here = measure(lambda X=X, y=y: DummyClassifier().fit(X, y), runs=7, warmup=0)
        there = measure(lambda X=X, y=y: fitting.fit_in_child(DummyClassifier(), X, y, timeout=600), runs=7, warmup=0)
        rows.append([f"overhead alone (a no-op DummyClassifier), {label}", here.fmt("ms"), there.fmt("ms"),
                     f"{(there.median - here.median) * 1000:+.0f} ms"])
        # the slow estimators only on the small data: on a shared machine their noise swamps the difference
        for estimator in ("logistic_regression",) if data is big else ("logistic_regression", "gradient_boosting", "random_forest"):
            here = measure(lambda e=estimator, X=X, y=y: build_pipeline(e, "classification", schema).fit(X, y), runs=3, warmup=0)
            there = measure(
                lambda e=estimator, X=X, y=y: fitting.fit_in_child(build_pipeline(e, "classification", schema), X, y, timeout=600),
                runs=3, warmup=0,
            )
            rows.append([f"{estimator}, {label}", here.fmt("s"), there.fmt("s"), f"{(there.median - here.median) * 1000:+.0f} ms"])

    X = coerce_features(big[schema.features], schema)
    latencies = []
    for _ in range(3):
        cancel = threading.Event()
        set_at: list[float] = []

        def fire(event: threading.Event = cancel, stamps: list[float] = set_at) -> None:
            stamps.append(time.perf_counter())
            event.set()

        threading.Timer(1.0, fire).start()
        long_fit = build_pipeline("gradient_boosting", "classification", schema, {"n_estimators": 1000, "max_depth": 10})
        try:
            fitting.fit_in_child(long_fit, X, big["home_win"], timeout=600, cancel=cancel)
        except Cancelled:
            latencies.append(time.perf_counter() - set_at[0])
    rows.append([
        "cancel.set() one second into a long fit -> child killed, call returned",
        "", f"{statistics.median(latencies) * 1000:.0f} ms (max {max(latencies) * 1000:.0f}, n={len(latencies)})", "",
    ])
    print(table(
        "Fitting in a child process (what being stoppable costs per training)",
        ["fit", "in process", "fit_in_child", "difference"],
        rows,
    ))
    ops.close()


if __name__ == "__main__":
    main()
