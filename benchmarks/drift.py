"""Drift: 25 columns (20 numeric, 5 categorical), BENCH_DRIFT_ROWS rows each side (default 1,000,000).

Rows: ours (check_drift on a reference prepared beforehand), a plain scipy loop (ks_2samp +
wasserstein_distance per numeric column, chi2_contingency per categorical one) and Evidently 0.7's
DataDriftPreset. Each runs in its own process reading the same Parquet files, so the peak RSS
figures compare like with like (they include the data). Evidently needs pandas < 3 and is never a
project dependency: it runs from ``.venv-bench`` (see ``EVIDENTLY_HINT``) and its row is skipped
when that venv is missing.

Also: false-alarm rates on small clean samples (ours vs Evidently's default stattests), which
injected shifts each one catches, the auto rule's false alarms and power against the rule it
replaced (BENCH_DRIFT_FA_REPS repetitions), how preparing and checking scale with the rows
(BENCH_DRIFT_SCALE_ROWS, default "1000000,5000000"; empty skips it: CPU seconds, log-log slopes,
the share that is sorting, and what the old kind inference's Series.nunique() cost in the same run),
and a streaming check of a BENCH_DRIFT_STREAM_ROWS-row Parquet file (default 10,000,000; 0 skips it).
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
SCALE_ROWS = [int(x) for x in os.environ.get("BENCH_DRIFT_SCALE_ROWS", "1000000,5000000").split(",") if x.strip()]
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


SCALE = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, pandas as pd
    from benchmarks.drift import make_frame
    from mlops_mcp.core.drift import check_drift, prepare_reference
    n = int(sys.argv[1])
    ref, cur = make_frame(n, False, 1), make_frame(n, True, 2)
    num = [c for c in ref.columns if pd.api.types.is_float_dtype(ref[c])]
    def best(fn, runs=2):
        out = []
        for _ in range(runs):
            c, w = time.process_time(), time.perf_counter(); fn(); out.append((time.process_time() - c, time.perf_counter() - w))
        return min(out)
    prepared = prepare_reference(ref)
    sorted_ref = {c: prepared.numeric[c].values for c in num}
    res = {
        "prepare": best(lambda: prepare_reference(ref)),
        "check": best(lambda: check_drift(prepared, cur, workers=1)),
        "prepare_sort": best(lambda: [np.sort(ref[c].to_numpy()) for c in num]),
        "check_sort": best(lambda: [np.searchsorted(sorted_ref[c], np.sort(cur[c].to_numpy()), "right") for c in num]),
        "nunique": best(lambda: [ref[c].nunique() for c in num], runs=1),
    }
    print(json.dumps(res))
    """
)


def _slope(small: float, large: float, n_small: int, n_large: int) -> str:
    import math

    if small <= 0 or large <= 0:
        return "n/a"
    return f"{math.log(large / small) / math.log(n_large / n_small):.2f}"


def _scaling() -> None:
    """Prepare and check at each size in its own process (CPU seconds, the least noisy measure on a
    shared machine), with the sorting they contain and the old kind inference measured alongside.
    The data are made in that process: a child's peak RSS on Linux starts from its parent's."""
    results: dict[int, dict[str, list[float]]] = {n: _run(sys.executable, SCALE, str(n), timeout=7200) for n in SCALE_ROWS}
    rows = []
    for n, r in results.items():
        p, c, ps, cs, nu = (r[k][0] for k in ("prepare", "check", "prepare_sort", "check_sort", "nunique"))
        rows.append(
            [f"{n:,}", f"{p:.2f} (sort {ps:.2f}, rest {p - ps:.2f})", f"{p + nu:.2f}", f"{c:.2f} (sort {cs:.2f}, rest {c - cs:.2f})", f"{r['prepare'][1]:.2f} / {r['check'][1]:.2f}"]
        )
    sizes = sorted(results)
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[-1]
        ra, rb = results[a], results[b]

        def sl(key: str, plus: str | None = None) -> str:
            va = ra[key][0] + (ra[plus][0] if plus else 0)
            vb = rb[key][0] + (rb[plus][0] if plus else 0)
            return _slope(va, vb, a, b)

        rows.append(
            [
                f"slope {a:,} -> {b:,}",
                f"{sl('prepare')} (sort alone {sl('prepare_sort')})",
                f"{sl('prepare', plus='nunique')} (nunique alone {sl('nunique')})",
                f"{sl('check')} (sort alone {sl('check_sort')})",
                "",
            ]
        )
    print(
        table(
            "Scaling: 25 columns (20 numeric), CPU seconds, best of 2 (sort = numpy sorting the same numeric columns alone)",
            ["rows each side", "prepare_reference", "prepare + old Series.nunique kind inference", "check_drift (workers=1)", "wall s prepare / check"],
            rows,
        )
    )


def _rule_cases() -> list[list[str]]:
    """The auto rule against the one it replaced, on seeded simulations (rate over FA_REPS runs)."""
    from scipy import stats

    from mlops_mcp.core.drift import check_drift, prepare_reference
    from mlops_mcp.core.drift import methods as m

    r = np.random.default_rng(2024)

    def one(a: np.ndarray, b: np.ndarray) -> object:
        return check_drift(prepare_reference(pd.DataFrame({"x": a})), pd.DataFrame({"x": b}), workers=1).columns[0]

    def old_rule(col: object, a: np.ndarray, b: np.ndarray) -> bool:
        """Before: point effect >= threshold (raw Jensen-Shannon for categories and two values), KS on integers."""
        if col.method == "chi2" and col.kind == "numeric":  # type: ignore[attr-defined]
            return bool(stats.ks_2samp(a[np.isfinite(a)], b[np.isfinite(b)]).pvalue < 0.05 and col.effect_size >= col.effect_threshold)  # type: ignore[attr-defined]
        if col.effect_metric in ("rate_change", "jensenshannon_corrected"):  # type: ignore[attr-defined]
            labels = np.union1d(a, b)
            raw = m.jensenshannon(np.array([np.sum(a == v) for v in labels]), np.array([np.sum(b == v) for v in labels]))
            return bool(col.p_adjusted is not None and col.p_adjusted < 0.05 and raw >= 0.05)  # type: ignore[attr-defined]
        values = col.p_adjusted is not None and col.p_adjusted < 0.05 and col.effect_size >= col.effect_threshold  # type: ignore[attr-defined]
        return bool(values)

    def missing(n: int, share: float) -> np.ndarray:
        x = r.normal(size=n)
        x[r.random(n) < share] = np.nan
        return x

    rest = [0.1, 0.5, 0.25, 0.1, 0.05]
    cases = [
        ("no drift: numeric N(0,1), 500 rows", lambda: (r.normal(size=500), r.normal(size=500))),
        ("no drift: two values, rate 0.30, 500 rows", lambda: ((r.random(500) < 0.3).astype(int), (r.random(500) < 0.3).astype(int))),
        ("no drift: rest days (5 integers), 500 rows", lambda: (r.choice(5, 500, p=rest), r.choice(5, 500, p=rest))),
        ("no drift: 30% missing, 300 rows", lambda: (missing(300, 0.3), missing(300, 0.3))),
        ("shift = threshold (0.1 sd), 20,000 rows", lambda: (r.normal(size=20_000), r.normal(0.1, 1, 20_000))),
        ("rate 0.30 -> 0.25, 5,000 rows", lambda: ((r.random(5000) < 0.3).astype(int), (r.random(5000) < 0.25).astype(int))),
        ("rare flag 0.02 -> 0.04, 5,000 rows", lambda: ((r.random(5000) < 0.02).astype(int), (r.random(5000) < 0.04).astype(int))),
        ("missing 30% -> 50%, values unchanged, 2,000 rows", lambda: (missing(2000, 0.3), missing(2000, 0.5))),
        ("rest days change shape, 3,000 rows", lambda: (r.choice(5, 3000, p=rest), r.choice(5, 3000, p=[0.13, 0.45, 0.27, 0.1, 0.05]))),
        ("shift 0.03 sd (small), 200,000 rows", lambda: (r.normal(size=200_000), r.normal(0.03, 1, 200_000))),
    ]
    rows = []
    for label, gen in cases:
        reps = FA_REPS if "200,000" not in label else max(10, FA_REPS // 20)
        new = old = small = 0
        for _ in range(reps):
            a, b = gen()
            col = one(a, b)
            new += bool(col.drifted)  # type: ignore[attr-defined]
            small += col.verdict == "small_shift"  # type: ignore[attr-defined]
            old += old_rule(col, a, b)
        rows.append([label, f"{new / reps:.1%}", f"{old / reps:.1%}", f"{small / reps:.1%}", str(reps)])
    return rows


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

        print(
            table(
                "The auto rule vs the rule it replaced (share of runs flagged drifted; seeded)",
                ["case", "now", "before", "now: small_shift", "runs"],
                _rule_cases(),
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

        if SCALE_ROWS:
            _scaling()
