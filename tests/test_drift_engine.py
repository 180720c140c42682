"""The multi-column drift check: verdicts, bad input, persistence, parquet streaming, simulations."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlops_mcp.core.drift import (
    METHODS,
    PreparedReference,
    check_drift,
    check_drift_parquet,
    domain_classifier,
    plot_report,
    prepare_reference,
)
from mlops_mcp.core.errors import InvalidInput


def scenario(n: int, drift: bool, seed: int) -> pd.DataFrame:
    """20 clean columns plus the four shifts of the issue (when ``drift``)."""
    r = np.random.default_rng(seed)
    d: dict[str, object] = {f"clean{i}": r.normal(i, 1 + i / 10, n) for i in range(16)}
    for i in range(4):
        d[f"clean_cat{i}"] = r.choice(["p", "q", "r", "s", "t"], n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    d["mean_shift"] = r.normal(0.25 if drift else 0.0, 1.0, n)
    d["scale_shift"] = r.normal(0.0, 1.5 if drift else 1.0, n)
    d["share_shift"] = r.choice(list("abcd"), n, p=[0.3, 0.4, 0.2, 0.1] if drift else [0.4, 0.3, 0.2, 0.1])
    unseen = r.choice(list("abcd"), n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    if drift:
        unseen[r.random(n) < 0.05] = "new"
    d["unseen_category"] = unseen
    return pd.DataFrame(d)


DRIFTED = {"mean_shift", "scale_shift", "share_shift", "unseen_category"}


@pytest.fixture(scope="module")
def big() -> tuple[PreparedReference, pd.DataFrame, pd.DataFrame]:
    ref_frame = scenario(200_000, False, 1)
    return prepare_reference(ref_frame), ref_frame, scenario(200_000, True, 2)


def test_catches_the_four_shifts_and_nothing_else(big: tuple[PreparedReference, pd.DataFrame, pd.DataFrame]) -> None:
    ref, _, cur = big
    report = check_drift(ref, cur)
    assert set(report.drifted_columns) == DRIFTED
    assert report.n_checked == 24
    assert report.share_drifted == pytest.approx(4 / 24)
    # 4 of 24 is below drift_share, but shifts of 2-5x their threshold make it major (stated rule)
    assert report.severity == "major" and report.drift_detected is True
    assert any("mean_shift drifted" in r for r in report.severity_reasons) and "drift_share" in report.severity_rule
    assert all(report.column(c).verdict == "drifted" for c in DRIFTED)
    assert set(report.ranked[:4]) == DRIFTED
    unseen = report.column("unseen_category")
    assert unseen.summary["n_unseen_categories"] == 1
    assert unseen.summary["unseen"][0]["category"] == "new"
    assert unseen.summary["unseen_share"] == pytest.approx(0.05, abs=0.005)
    share = report.column("share_shift").summary["top_moves"]
    assert {share[0]["category"], share[1]["category"]} == {"a", "b"}
    mean = report.column("mean_shift")
    assert mean.summary["mean_shift_in_std"] == pytest.approx(0.25, abs=0.02)
    assert report.column("scale_shift").summary["std_ratio"] == pytest.approx(1.5, abs=0.02)
    json.dumps(report.to_dict())  # JSON-safe
    assert check_drift(ref, cur, drift_share=0.1).drift_detected is True


def test_no_drift_on_the_same_distribution(big: tuple[PreparedReference, pd.DataFrame, pd.DataFrame]) -> None:
    ref, _, _ = big
    report = check_drift(ref, scenario(200_000, False, 5))
    assert report.drifted_columns == []
    assert report.drift_detected is False and report.severity == "none" and report.headline.startswith("no drift")


def test_engine_numbers_equal_scipy() -> None:
    r = np.random.default_rng(4)
    ref_frame = pd.DataFrame({"x": r.normal(size=30_000), "c": r.choice(list("abc"), 30_000, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"x": r.normal(0.1, 1.2, size=25_000), "c": r.choice(list("abcd"), 25_000)})
    ref = prepare_reference(ref_frame)
    x_ref, x_cur = ref_frame["x"].to_numpy(), cur["x"].to_numpy()
    ks = check_drift(ref, cur, method="ks", columns=["x"]).column("x")
    assert ks.statistic == stats.ks_2samp(x_ref, x_cur).statistic
    assert ks.p_value == pytest.approx(stats.ks_2samp(x_ref, x_cur).pvalue, rel=1e-9, abs=1e-300)
    w = check_drift(ref, cur, method="wasserstein", columns=["x"]).column("x")
    assert w.statistic == pytest.approx(stats.wasserstein_distance(x_ref, x_cur) / np.std(x_ref), rel=1e-9)
    cvm = check_drift(ref, cur, method="cramer_von_mises", columns=["x"]).column("x")
    res = stats.cramervonmises_2samp(x_ref, x_cur)
    assert cvm.statistic == pytest.approx(res.statistic, rel=1e-9)
    assert cvm.p_value == pytest.approx(res.pvalue, rel=1e-9, abs=1e-12)
    table = pd.crosstab(
        np.r_[np.zeros(30_000), np.ones(25_000)], np.r_[ref_frame["c"].to_numpy(), cur["c"].to_numpy()]
    ).to_numpy()
    chi = check_drift(ref, cur, method="chi2", columns=["c"]).column("c")
    assert chi.statistic == pytest.approx(stats.chi2_contingency(table).statistic, rel=1e-9)
    js = check_drift(ref, cur, method="jensenshannon", columns=["c"]).column("c")
    assert js.statistic == pytest.approx(jensenshannon(table[0], table[1], base=2), rel=1e-9)
    auto = check_drift(ref, cur)
    assert auto.column("x").p_value == ks.p_value
    assert auto.column("c").p_value == pytest.approx(stats.chi2_contingency(table).pvalue, rel=1e-9)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "auto"])
def test_every_forced_method_runs(method: str) -> None:
    r = np.random.default_rng(0)
    ref = prepare_reference(pd.DataFrame({"x": r.normal(size=2000), "flag": r.integers(0, 2, 2000), "c": r.choice(list("abc"), 2000)}))
    cur = pd.DataFrame({"x": r.normal(1, 1, size=1500), "flag": r.integers(0, 2, 1500), "c": r.choice(list("abc"), 1500)})
    report = check_drift(ref, cur, method=method)
    for col in report.columns:
        assert col.status in ("ok", "error"), col
        if col.status == "error":
            assert col.reason and "accepted" not in col.reason or col.reason
    x = report.column("x")
    if method in ("ks", "wasserstein", "cramer_von_mises", "psi", "jensenshannon", "hellinger", "kl_div", "chi2"):
        assert x.status == "ok" and x.drifted is True
    if method == "ztest":
        assert report.column("flag").status == "ok" and report.column("x").status == "error"


def test_bad_input_is_reported() -> None:
    r = np.random.default_rng(1)
    n = 1000
    ref_frame = pd.DataFrame(
        {
            "num": r.normal(size=n),
            "gone": r.normal(size=n),
            "typed": r.normal(size=n),
            "const": np.ones(n),
            "nan_now": r.normal(size=n),
            "few": r.normal(size=n),
            "cat": r.choice(list("ab c"), n),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        }
    )
    ref = prepare_reference(ref_frame)
    assert ref.kinds["when"] == "datetime" and not ref.skipped  # dates are checked as time now
    few = np.full(n, np.nan)
    few[:3] = 1.0
    cur = pd.DataFrame(
        {
            "num": r.normal(size=n),
            "typed": r.choice(["x", "y"], n),
            "const": np.ones(n),
            "nan_now": np.full(n, np.nan),
            "few": few,
            "cat": r.choice(list("ab c"), n),
            "extra": np.ones(n),
        }
    )
    report = check_drift(ref, cur)
    by = {c.column: c for c in report.columns}
    assert by["gone"].status == "error" and "absent" in (by["gone"].reason or "")
    assert by["typed"].status == "error" and "type changed" in (by["typed"].reason or "")
    assert by["const"].status == "ok" and by["const"].drifted is False
    assert by["nan_now"].status == "ok" and by["nan_now"].missing_current == n  # a broken feed, not "skipped"
    assert by["nan_now"].drifted is True and by["nan_now"].reason == "all values missing in current data"
    # 3 values left of 1,000 rows: too few to compare, but a feed that mostly stopped is drift
    assert by["few"].status == "ok" and "at least" in (by["few"].reason or "") and by["few"].p_value is None
    assert by["few"].drifted is True and by["few"].drifted_on == ["missing_share"]
    assert by["num"].status == "ok" and by["cat"].status == "ok"
    assert report.extra_columns == ["extra"]
    assert report.n_checked == 5 and report.ranked[0] == "nan_now" and report.drift_detected is True
    assert {e["column"]: e["reason"] for e in report.not_checked} == {
        "gone": "absent from the current data",
        "typed": by["typed"].reason,
        "when": "absent from the current data",
        "extra": "not in the reference",
    }
    json.dumps(report.to_dict())

    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur, columns=["nope"])
    assert e.value.argument == "columns" and "num" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur, columns=["gone"])
    assert e.value.argument == "columns" and "absent" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur, method="magic")
    assert e.value.argument == "method" and "ks" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur, methods={"num": "magic"})
    assert e.value.argument == "methods"
    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur.iloc[:0])
    assert e.value.argument == "current"
    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur, correction="fdr")
    assert e.value.argument == "correction"
    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur, alpha=5)
    assert e.value.argument == "alpha"
    with pytest.raises(InvalidInput) as e:
        check_drift(ref, cur, thresholds={"bogus": 0.1})
    assert e.value.argument == "thresholds"
    with pytest.raises(InvalidInput):
        prepare_reference(ref_frame, kinds={"cat": "numeric"})
    with pytest.raises(InvalidInput):
        prepare_reference(ref_frame, kinds={"num": "ordinal"})

    forced = check_drift(ref, cur, methods={"cat": "ks"}, columns=["cat"]).column("cat")
    assert forced.status == "error" and "numeric" in (forced.reason or "")


def test_missing_values_are_reported_not_dropped() -> None:
    r = np.random.default_rng(2)
    x = r.normal(size=5000)
    x[:500] = np.nan
    c = r.choice(["a", "b"], 5000).astype(object)
    c[:250] = None
    ref = prepare_reference(pd.DataFrame({"x": r.normal(size=5000), "c": r.choice(["a", "b"], 5000)}))
    col = check_drift(ref, pd.DataFrame({"x": x, "c": c}))
    assert col.column("x").missing_current == 500 and col.column("x").n_current == 4500
    assert col.column("x").summary["missing_share"]["current"] == pytest.approx(0.1)
    assert col.column("c").missing_current == 250
    assert col.column("c").method == "ztest"


def test_a_column_gone_all_missing_is_drifted_and_ranked_first(tmp_path: Path) -> None:
    r = np.random.default_rng(3)
    n = 3000
    ref_frame = pd.DataFrame(
        {
            "x": r.normal(size=n),
            "shifted": r.normal(size=n),
            "team": r.choice(list("abcdef"), n),
            "flag": r.integers(0, 2, n),
            "y": r.normal(size=n),
        }
    )
    ref = prepare_reference(ref_frame)
    cur = pd.DataFrame(
        {
            "x": np.full(n, np.nan),  # a numeric feed that stopped
            "shifted": r.normal(3.0, 1.0, n),  # a huge shift, severity ~30
            "team": pd.Series([None] * n, dtype=object),  # a categorical one
            "flag": r.integers(0, 2, n),
            "y": r.normal(size=n),
        }
    )
    report = check_drift(ref, cur)
    assert report.n_checked == 5
    assert set(report.drifted_columns) == {"x", "shifted", "team"}
    assert set(report.ranked[:2]) == {"x", "team"} and report.ranked[2] == "shifted"
    assert report.drift_detected is True  # 3/5 drifted, but one all-missing column is enough:
    assert check_drift(ref, cur[["x", "flag", "y"]], columns=["x", "flag", "y"]).drift_detected is True
    severity_shift = report.column("shifted").severity
    for name in ("x", "team"):
        col = report.column(name)
        assert col.status == "ok" and col.reason == "all values missing in current data"
        assert col.effect_size == 1.0 and col.effect_metric == "missing_share"
        assert col.missing_current == n and col.n_current == 0
        assert col.p_value_method == "ztest_missing_share" and col.p_adjusted is not None and col.p_adjusted < 1e-10
        assert col.severity == severity_shift
        assert col.summary["missing_share"] == {"reference": 0.0, "current": 1.0}
    # whatever the method; a CSV's empty column (float NaN) under a string column is no "type change"
    for method in ("ks", "psi", "jensenshannon", "chi2"):
        forced = check_drift(ref, cur.assign(team=np.nan), method=method, columns=["x", "team"])
        assert forced.column("x").drifted is True and forced.column("team").drifted is True, method
    # the streamed Parquet path says the same, typed null or string columns alike
    path = tmp_path / "current.parquet"
    cur.assign(team=pd.Series([None] * n, dtype="string")).to_parquet(path)
    assert check_drift_parquet(ref, path).to_dict() == check_drift(ref, pd.read_parquet(path)).to_dict()
    assert check_drift_parquet(ref, path).column("team").drifted is True
    png = plot_report(report, ref, cur)
    assert png[:4] == b"\x89PNG"
    json.dumps(report.to_dict())


def test_all_missing_needs_a_significant_rise_in_missing_share() -> None:
    r = np.random.default_rng(4)
    x = r.normal(size=1000)
    x[r.random(1000) < 0.6] = np.nan  # the reference is 60% missing
    ref = prepare_reference(pd.DataFrame({"x": x}))
    col = check_drift(ref, pd.DataFrame({"x": [np.nan, np.nan]})).column("x")
    assert col.status == "ok" and col.reason == "all values missing in current data"
    assert col.p_value > 0.05 and col.drifted is False
    tiny = prepare_reference(pd.DataFrame({"x": [1.0, 2.0, np.nan, np.nan]}))  # too few values to judge
    assert check_drift(tiny, pd.DataFrame({"x": [np.nan] * 10})).column("x").status == "skipped"


def test_save_load_round_trip(tmp_path: Path, big: tuple[PreparedReference, pd.DataFrame, pd.DataFrame]) -> None:
    ref, _, cur = big
    path = ref.save(tmp_path / "reference.npz")
    loaded = PreparedReference.load(path)
    assert loaded.columns == ref.columns and loaded.kinds == ref.kinds and loaded.n_rows == ref.n_rows
    a = check_drift(ref, cur.iloc[:50_000]).to_dict()
    b = check_drift(loaded, cur.iloc[:50_000]).to_dict()
    assert a == b
    (tmp_path / "bad.npz").write_bytes(b"not a file")
    with pytest.raises(InvalidInput):
        PreparedReference.load(tmp_path / "bad.npz")


def test_parquet_streaming_equals_in_memory(tmp_path: Path) -> None:
    ref_frame = scenario(20_000, False, 1)
    cur = scenario(30_000, True, 3)
    cur.loc[:99, "mean_shift"] = np.nan
    path = tmp_path / "current.parquet"
    cur.to_parquet(path)
    ref = prepare_reference(ref_frame)
    a = check_drift(ref, cur).to_dict()
    b = check_drift_parquet(ref, path).to_dict()
    assert a == b
    assert set(check_drift_parquet(ref, path).drifted_columns) == DRIFTED


def test_domain_classifier_sees_a_joint_change_marginals_miss() -> None:
    r = np.random.default_rng(0)
    n = 4000
    x = r.normal(size=n)
    ref = pd.DataFrame({"x": x, "y": x + 0.3 * r.normal(size=n), "z": r.normal(size=n), "c": r.choice(list("ab"), n)})
    x2 = r.normal(size=n)
    cur = pd.DataFrame({"x": x2, "y": -x2 + 0.3 * r.normal(size=n), "z": r.normal(size=n), "c": r.choice(list("ab"), n)})
    res = domain_classifier(ref, cur)
    assert res["roc_auc"] > 0.9 and res["drift_detected"]
    assert {c["column"] for c in res["top_columns"][:2]} == {"x", "y"}
    same = domain_classifier(ref, ref.sample(frac=1.0, random_state=1))
    assert same["roc_auc"] < 0.55 and not same["drift_detected"]


def test_plot_report_returns_png(big: tuple[PreparedReference, pd.DataFrame, pd.DataFrame]) -> None:
    ref, _, cur = big
    report = check_drift(ref, cur.iloc[:20_000])
    png = plot_report(report, ref, cur.iloc[:20_000])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_report(report)[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- false alarms on small samples


def _evidently_chisquare(ref: np.ndarray, cur: np.ndarray, cats: np.ndarray) -> bool:
    """Evidently's small-sample categorical rule: goodness-of-fit with reference shares as exact."""
    ref_counts = np.array([(ref == c).sum() for c in cats], dtype=float)
    cur_counts = np.array([(cur == c).sum() for c in cats], dtype=float)
    keep = ref_counts > 0
    expected = ref_counts[keep] / ref_counts[keep].sum() * cur_counts[keep].sum()
    return bool(stats.chisquare(cur_counts[keep], expected).pvalue < 0.05)


def _evidently_js(ref: np.ndarray, cur: np.ndarray, cats: np.ndarray) -> bool:
    ref_counts = np.array([(ref == c).sum() for c in cats], dtype=float)
    cur_counts = np.array([(cur == c).sum() for c in cats], dtype=float)
    return bool(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()) >= 0.1)


def _false_alarms(n_cats: int, n_rows: int, reps: int, seed: int, zipf: bool = False) -> tuple[float, float, float]:
    r = np.random.default_rng(seed)
    cats = np.array([f"k{i}" for i in range(n_cats)])
    w = 1 / np.arange(1, n_cats + 1) if zipf else np.ones(n_cats)
    p = w / w.sum()
    ours = ev_chi = ev_js = 0
    for _ in range(reps):
        a, b = r.choice(cats, n_rows, p=p), r.choice(cats, n_rows, p=p)
        ref = prepare_reference(pd.DataFrame({"c": a}))
        ours += bool(check_drift(ref, pd.DataFrame({"c": b}), workers=1).columns[0].drifted)
        ev_chi += _evidently_chisquare(a, b, cats)
        ev_js += _evidently_js(a, b, cats)
    return ours / reps, ev_chi / reps, ev_js / reps


@pytest.mark.slow
@pytest.mark.parametrize(
    "n_cats,n_rows,zipf",
    [(3, 500, False), (30, 500, False), (200, 5000, False), (50, 300, True)],
    ids=["3cats-500rows", "30cats-500rows", "200cats-5000rows", "50zipf-300rows-sparse"],
)
def test_categorical_false_alarms_stay_at_alpha(n_cats: int, n_rows: int, zipf: bool) -> None:
    reps = 300
    ours, ev_chi, ev_js = _false_alarms(n_cats, n_rows, reps, seed=n_cats, zipf=zipf)
    bound = 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)  # alpha plus three standard errors
    assert ours <= bound, (ours, ev_chi, ev_js)
    if (n_cats, n_rows) == (3, 500):
        assert ev_chi > 0.12  # Evidently's rule: ~21% false alarms
    if (n_cats, n_rows) == (30, 500):
        assert ev_chi > 0.5  # ~87%
    if (n_cats, n_rows) == (200, 5000):
        assert ev_js > 0.4  # Jensen-Shannon >= 0.1: ~62%


@pytest.mark.slow
@pytest.mark.parametrize("n_rows", [30, 300, 3000])
def test_numeric_false_alarms_stay_at_alpha(n_rows: int) -> None:
    r = np.random.default_rng(n_rows)
    reps = 300
    hits = 0
    for _ in range(reps):
        ref = prepare_reference(pd.DataFrame({"x": r.normal(size=n_rows)}))
        hits += bool(check_drift(ref, pd.DataFrame({"x": r.normal(size=n_rows)}), workers=1).columns[0].drifted)
    assert hits / reps <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)
