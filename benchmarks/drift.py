"""Drift: 25 columns (20 numeric, 5 categorical), BENCH_DRIFT_ROWS rows each side (default 1,000,000).

Rows: ours (check_drift on a reference prepared beforehand), a plain scipy loop (ks_2samp +
wasserstein_distance per numeric column, chi2_contingency per categorical one) and Evidently 0.7's
DataDriftPreset. Each runs in its own process reading the same Parquet files, so the peak RSS
figures compare like with like (they include the data). Evidently needs pandas < 3 and is never a
project dependency: it runs from ``.venv-bench`` (see ``EVIDENTLY_HINT``) and its row is skipped
when that venv is missing.

Also: false-alarm rates on small clean samples (ours vs Evidently's default stattests), which
injected shifts each one catches, and a streaming check of a BENCH_DRIFT_STREAM_ROWS-row Parquet file
(default 10,000,000; 0 skips it).
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import table

ROWS = int(os.environ.get("BENCH_DRIFT_ROWS", "1000000"))
STREAM_ROWS = int(os.environ.get("BENCH_DRIFT_STREAM_ROWS", "10000000"))
FA_REPS = int(os.environ.get("BENCH_DRIFT_FA_REPS", "200"))
ROOT = Path(__file__).resolve().parent.parent
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
EVIDENTLY_HINT = (
    'python3.11 -m venv .venv-bench && .venv-bench/bin/pip install "evidently>=0.7,<0.8" "pandas<3" pyarrow'
)
SHIFTED = ["mean_shift", "scale_shift", "share_shift", "unseen_category"]


def make_frame(n: int, drift: bool, seed: int) -> pd.DataFrame:
    """18 clean numeric + 2 shifted numeric, 3 clean categorical + 2 shifted categorical."""
    r = np.random.default_rng(seed)
    d: dict[str, object] = {f"num{i}": r.normal(i, 1 + i / 10, n) for i in range(18)}
    d["mean_shift"] = r.normal(0.25 if drift else 0.0, 1.0, n)  # +0.25 sigma
    d["scale_shift"] = r.normal(0.0, 1.5 if drift else 1.0, n)  # x1.5 scale
    for i in range(3):
        d[f"cat{i}"] = np.array(["p", "q", "r", "s", "t"])[r.choice(5, n, p=[0.3, 0.25, 0.2, 0.15, 0.1])]
    letters = np.array(list("abcde"))
    d["share_shift"] = letters[r.choice(4, n, p=[0.3, 0.4, 0.2, 0.1] if drift else [0.4, 0.3, 0.2, 0.1])]
    unseen = r.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    if drift:
        unseen[r.random(n) < 0.05] = 4  # 'e': never in the reference, 5% of rows
    d["unseen_category"] = letters[unseen]
    return pd.DataFrame(d)


OURS = textwrap.dedent(
    """
    import json, resource, statistics, sys, time, tracemalloc
    import pandas as pd
    from mlops_mcp.core.drift import PreparedReference, check_drift
    ref = PreparedReference.load(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    check_drift(ref, cur)  # warm-up
    times = []
    for _ in range(5):
        t = time.perf_counter(); rep = check_drift(ref, cur); times.append(time.perf_counter() - t)
    tracemalloc.start(); check_drift(ref, cur); extra = tracemalloc.get_traced_memory()[1] / 2**20; tracemalloc.stop()
    print(json.dumps({"time": statistics.median(times), "min": min(times), "max": max(times), "rss_before": rss_before, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "check_alloc_peak": extra, "drifted": rep.drifted_columns}))
    """
)

SCIPY = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np, pandas as pd
    from scipy import stats
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    t = time.perf_counter(); drifted = []
    for c in ref.columns:
        if pd.api.types.is_numeric_dtype(ref[c]):
            a, b = ref[c].to_numpy(), cur[c].to_numpy()
            p = stats.ks_2samp(a, b).pvalue
            w = stats.wasserstein_distance(a, b) / np.std(a)
            if p < 0.05 and w >= 0.1: drifted.append(c)
        else:
            tab = pd.concat([ref[c].value_counts().rename("r"), cur[c].value_counts().rename("c")], axis=1).fillna(0)
            p = stats.chi2_contingency(tab.to_numpy().T).pvalue
            if p < 0.05: drifted.append(c)
    el = time.perf_counter() - t
    print(json.dumps({"time": el, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "drifted": drifted}))
    """
)

EVIDENTLY = textwrap.dedent(
    """
    import json, resource, sys, time
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    t = time.perf_counter(); snap = Report([DataDriftPreset()]).run(cur, ref); el = time.perf_counter() - t
    drifted = []
    for m in snap.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            pv = "p_value" in cfg["method"]
            v = m["value"]
            if (v < cfg["threshold"]) if pv else (v >= cfg["threshold"]):
                drifted.append(cfg["column"])
    print(json.dumps({"time": el, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "drifted": drifted}))
    """
)

EVIDENTLY_FA = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd
    from evidently.legacy.calculations.stattests.registry import get_stattest
    data = np.load(sys.argv[1])
    out = {}
    for case in json.loads(sys.argv[2]):
        hits = 0
        a_all, b_all, kind = data[case + "_a"], data[case + "_b"], "num" if case.startswith("num") else "cat"
        for a, b in zip(a_all, b_all):
            ra = pd.Series(a) if kind == "num" else pd.Series(a).map(lambda v: f"k{v}")
            rb = pd.Series(b) if kind == "num" else pd.Series(b).map(lambda v: f"k{v}")
            st = get_stattest(ra, rb, kind, None)
            hits += bool(st(ra, rb, kind, None).drifted)
        out[case] = hits / len(a_all)
    print(json.dumps(out))
    """
)

STREAM = textwrap.dedent(
    """
    import json, resource, sys, time
    import pandas as pd
    from mlops_mcp.core.drift import PreparedReference, check_drift_parquet
    ref = PreparedReference.load(sys.argv[1])
    t = time.perf_counter(); rep = check_drift_parquet(ref, sys.argv[2]); el = time.perf_counter() - t
    print(json.dumps({"time": el, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "drifted": rep.drifted_columns}))
    """
)


def _run(python: Path | str, script: str, *args: str, timeout: float = 1800) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _caught(drifted: list[str]) -> str:
    missed = [c for c in SHIFTED if c not in drifted]
    false = [c for c in drifted if c not in SHIFTED]
    return f"{4 - len(missed)}/4" + (f" (missed {', '.join(missed)})" if missed else "") + f", {len(false)} false"


def _false_alarm_cases(tmp: Path) -> tuple[dict[str, float], Path, list[str]]:
    """Clean small samples: our verdict computed here, the samples saved for Evidently."""
    from mlops_mcp.core.drift import check_drift, prepare_reference

    cases = {"cat3_500": (3, 500), "cat30_500": (30, 500), "cat200_5000": (200, 5000), "num_500": (0, 500)}
    arrays: dict[str, np.ndarray] = {}
    ours: dict[str, float] = {}
    for name, (k, n) in cases.items():
        r = np.random.default_rng(k + n)
        if k:
            a, b = r.integers(0, k, (FA_REPS, n)), r.integers(0, k, (FA_REPS, n))
        else:
            a, b = r.normal(size=(FA_REPS, n)), r.normal(size=(FA_REPS, n))
        arrays[name + "_a"], arrays[name + "_b"] = a, b
        hits = 0
        for x, y in zip(a, b):
            fx = pd.DataFrame({"c": [f"k{v}" for v in x]}) if k else pd.DataFrame({"c": x})
            fy = pd.DataFrame({"c": [f"k{v}" for v in y]}) if k else pd.DataFrame({"c": y})
            hits += bool(check_drift(prepare_reference(fx), fy, workers=1).columns[0].drifted)
        ours[name] = hits / FA_REPS
    path = tmp / "fa.npz"
    np.savez(path, **arrays)
    return ours, path, list(cases)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlops-drift-bench-") as d:
        tmp = Path(d)
        ref_path, cur_path = tmp / "reference.parquet", tmp / "current.parquet"
        t = time.perf_counter()
        make_frame(ROWS, False, 1).to_parquet(ref_path)
        make_frame(ROWS, True, 2).to_parquet(cur_path)
        print(f"generated 2 x {ROWS:,} rows x 25 columns in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        from mlops_mcp.core.drift import prepare_reference

        t = time.perf_counter()
        prepared = prepare_reference(pd.read_parquet(ref_path)).save(tmp / "prepared_reference.npz")
        prep = time.perf_counter() - t
        rows = []
        # production shape: the prepared reference is loaded from its file, the current data read
        ours = _run(sys.executable, OURS, str(prepared), str(cur_path))
        rows.append(
            [
                "mlops-mcp check_drift (auto)",
                f"{ours['time']:.2f} (min {ours['min']:.2f}, max {ours['max']:.2f})",
                f"{ours['peak_rss']:.0f} (data loaded: {ours['rss_before']:.0f}; check allocs +{ours['check_alloc_peak']:.0f})",
                _caught(ours["drifted"]),
            ]
        )
        sc = _run(sys.executable, SCIPY, str(ref_path), str(cur_path))
        rows.append(["plain scipy loop (ks+wasserstein, chi2)", f"{sc['time']:.2f}", f"{sc['peak_rss']:.0f}", _caught(sc["drifted"])])
        if BENCH_PY.exists():
            try:
                ev = _run(BENCH_PY, EVIDENTLY, str(ref_path), str(cur_path))
                rows.append(["Evidently 0.7 DataDriftPreset", f"{ev['time']:.2f}", f"{ev['peak_rss']:.0f}", _caught(ev["drifted"])])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                rows.append(["Evidently 0.7 DataDriftPreset", f"failed: {exc}", "", ""])
        else:
            print(f"Evidently row skipped: create the venv with\n  {EVIDENTLY_HINT}", file=sys.stderr)
        print(
            table(
                f"Drift check, 25 columns, {ROWS:,} rows each side (reference prepared once in {prep:.1f} s, {prepared.stat().st_size / 2**20:.0f} MB file)",
                ["tool", "compute s", "peak RSS MB", "shifts caught"],
                rows,
            )
        )

        fa_ours, fa_path, names = _false_alarm_cases(tmp)
        fa_ev: dict[str, float] = {}
        if BENCH_PY.exists():
            try:
                fa_ev = _run(BENCH_PY, EVIDENTLY_FA, str(fa_path), json.dumps(names))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"Evidently false-alarm run failed: {exc}", file=sys.stderr)
        labels = {
            "cat3_500": "3 categories, 500 rows",
            "cat30_500": "30 categories, 500 rows",
            "cat200_5000": "200 categories, 5,000 rows",
            "num_500": "numeric N(0,1), 500 rows",
        }
        print(
            table(
                f"False alarms on clean data ({FA_REPS} repetitions; alpha = 0.05)",
                ["case", "ours", "Evidently default"],
                [[labels[n], f"{fa_ours[n]:.1%}", f"{fa_ev[n]:.1%}" if n in fa_ev else "n/a"] for n in names],
            )
        )

        if STREAM_ROWS:
            cols = ["num0", "mean_shift", "scale_shift", "cat0", "share_shift"]
            ref = prepare_reference(make_frame(min(ROWS, 1_000_000), False, 1)[cols])
            ref_file = ref.save(tmp / "prepared.npz")
            big = tmp / "big.parquet"
            import pyarrow as pa
            import pyarrow.parquet as pq

            chunk = 1_000_000
            writer = None
            for i in range(0, STREAM_ROWS, chunk):
                part = pa.Table.from_pandas(make_frame(min(chunk, STREAM_ROWS - i), True, 100 + i)[cols], preserve_index=False)
                writer = writer or pq.ParquetWriter(big, part.schema)
                writer.write_table(part)
            if writer:
                writer.close()
            st = _run(sys.executable, STREAM, str(ref_file), str(big))
            print(
                table(
                    f"Streaming check_drift_parquet, {STREAM_ROWS:,} rows x {len(cols)} columns (column at a time)",
                    ["time s", "peak RSS MB", "drifted"],
                    [[f"{st['time']:.2f}", f"{st['peak_rss']:.0f}", ", ".join(st["drifted"])]],
                )
            )
