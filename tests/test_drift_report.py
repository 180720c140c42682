"""What a drift report says (issue 11): dates checked as time, no column skipped silently, the
none / minor / major headline and its stated rule, rounded results."""

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlops_mcp.core.drift import check_drift, check_drift_parquet, prepare_reference
from mlops_mcp.core.drift.severity import LARGE_EFFECT
from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.values import rounded as round_sig


def dates(r: np.random.Generator, n: int, start: str, days: int) -> pd.Series:
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(r.integers(0, days * 24, n), unit="h"))


def seconds(s: pd.Series) -> np.ndarray:
    return (s - pd.Timestamp(0)).dt.total_seconds().to_numpy()


# --------------------------------------------------------------------------- dates


def test_dates_typed_or_as_strings_are_checked_as_time() -> None:
    r = np.random.default_rng(1)
    n = 3000
    ref_t, same_t, later_t = (
        dates(r, n, "2023-01-01", 365),
        dates(r, n, "2023-01-01", 365),
        dates(r, n, "2024-01-01", 365),
    )

    def frame(t: pd.Series) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "typed": t,
                "iso": t.dt.strftime("%Y-%m-%dT%H:%M:%S"),
                "aware": t.dt.tz_localize("Etc/GMT-2"),  # UTC+2
                "day": [d.date() for d in t],
                "x": r.normal(size=len(t)),
            }
        )

    ref = prepare_reference(frame(ref_t))
    assert {c: ref.kinds[c] for c in ("typed", "iso", "aware", "day")} == dict.fromkeys(
        ("typed", "iso", "aware", "day"), "datetime"
    )
    same = check_drift(ref, frame(same_t))
    assert same.n_checked == 5 and same.drifted_columns == [] and same.not_checked == []
    later = check_drift(ref, frame(later_t))
    assert set(later.drifted_columns) == {"typed", "iso", "aware", "day"}
    typed = later.column("typed")
    assert typed.kind == "datetime" and typed.method == "ks" and typed.verdict == "drifted"
    assert typed.statistic == pytest.approx(
        stats.ks_2samp(seconds(ref_t), seconds(later_t)).statistic, abs=1e-12
    )
    w = stats.wasserstein_distance(seconds(ref_t), seconds(later_t)) / np.std(seconds(ref_t))
    assert typed.effect_size == pytest.approx(w, rel=1e-9)
    s = typed.summary
    assert s["reference"]["min"].startswith("2023-01-01") and s["current"]["max"].startswith("2024-12-3")
    assert s["share_after_reference_max"] == pytest.approx(1.0) and s["mean_shift_days"] == pytest.approx(
        365, abs=10
    )
    assert later.column("iso").statistic == pytest.approx(typed.statistic, abs=1e-12)  # the same instants
    # "aware" is two hours earlier in UTC; "day" drops the hours
    assert later.column("aware").summary["reference"]["min"].startswith("2022-12-31T22:00")
    json.dumps(later.to_dict())


def test_dates_from_parquet_equal_in_memory(tmp_path: Path) -> None:
    r = np.random.default_rng(2)
    ref_t, cur_t = dates(r, 2000, "2023-01-01", 365), dates(r, 1500, "2023-06-01", 365)
    ref = prepare_reference(pd.DataFrame({"t": ref_t, "d": [x.date() for x in ref_t]}))
    cur = pd.DataFrame({"t": cur_t, "d": [x.date() for x in cur_t]})
    path = tmp_path / "cur.parquet"
    cur.to_parquet(path)  # t: timestamp, d: date32
    assert check_drift_parquet(ref, path).to_dict() == check_drift(ref, pd.read_parquet(path)).to_dict()
    assert check_drift_parquet(ref, path).column("d").kind == "datetime"


def test_unreadable_dates_count_as_missing_or_as_a_type_change() -> None:
    r = np.random.default_rng(3)
    t = dates(r, 1000, "2023-01-01", 100).dt.strftime("%Y-%m-%d")
    ref = prepare_reference(pd.DataFrame({"t": t}))
    bad = t.copy()
    bad.iloc[:300] = "soon"
    col = check_drift(ref, pd.DataFrame({"t": bad})).columns[0]
    assert col.missing_current == 300 and col.summary["unreadable_as_dates"] == 300
    assert col.drifted and "missing_share" in col.drifted_on
    words = check_drift(ref, pd.DataFrame({"t": ["soon"] * 1000})).columns[0]
    assert words.status == "error" and "type changed: dates in the reference" in (words.reason or "")
    with pytest.raises(InvalidInput) as e:
        prepare_reference(pd.DataFrame({"t": ["x", "y"]}), kinds={"t": "datetime"})
    assert e.value.argument == "kinds"


def test_no_column_is_skipped_silently() -> None:
    r = np.random.default_rng(4)
    n = 500
    ref = prepare_reference(
        pd.DataFrame(
            {
                "x": r.normal(size=n),
                "lag": pd.to_timedelta(r.integers(0, 100, n), unit="s"),
                "sparse": np.r_[r.normal(size=3), np.full(n - 3, np.nan)],
                "gone": r.normal(size=n),
            }
        )
    )
    cur = pd.DataFrame(
        {
            "x": r.normal(size=n),
            "lag": pd.to_timedelta(r.integers(0, 100, n), unit="s"),
            "sparse": np.full(n, np.nan),
            "new": 1,
        }
    )
    report = check_drift(ref, cur)
    reasons = {e["column"]: e["reason"] for e in report.not_checked}
    assert set(reasons) == {"lag", "gone", "new"}
    assert "durations" in reasons["lag"] and reasons["gone"] == "absent from the current data"
    assert reasons["new"] == "not in the reference" and "3 column(s) not checked" in report.headline
    # 3 values in the reference: too few to compare, so judged on the missing share alone (99.4% -> 100%)
    sparse = report.column("sparse")
    assert (
        sparse.status == "ok"
        and "judged on the missing share" in (sparse.reason or "")
        and sparse.drifted is False
    )
    assert report.n_checked == 2
    # four rows, none missing: nothing can be tested, and that is said
    tiny = {e["column"]: e["reason"] for e in check_drift(ref, cur.head(4), columns=["x"]).not_checked}
    assert "at least 5" in tiny["x"]


# --------------------------------------------------------------------------- the headline


def shifts(shift: dict[str, float], n: int = 20_000, seed: int = 5) -> tuple[object, pd.DataFrame]:
    """Ten N(0, 1) columns; the named ones shifted in the current data by that many sd."""
    r = np.random.default_rng(seed)
    cols = [f"c{i}" for i in range(10)]
    ref = prepare_reference(pd.DataFrame({c: r.normal(size=n) for c in cols}))
    cur = pd.DataFrame({c: r.normal(shift.get(c, 0.0), 1, n) for c in cols})
    return ref, cur


def test_severity_none_minor_major_by_the_stated_rule() -> None:
    ref, cur = shifts({})
    report = check_drift(ref, cur)
    assert (
        report.severity == "none"
        and report.drift_detected is False
        and report.headline.startswith("no drift")
    )
    assert "importance unknown" in report.severity_rule

    ref, cur = shifts({"c3": 0.15})  # 1.5x its threshold, 1 of 10 columns
    report = check_drift(ref, cur)
    assert report.drifted_columns == ["c3"] and report.severity == "minor" and report.drift_detected is True
    assert report.headline.startswith("minor drift: 1 of 10 inputs drifted: c3 (1.")

    ref, cur = shifts({"c3": 0.4})  # 4x: a large effect, and importance unknown, so it counts
    report = check_drift(ref, cur)
    assert report.severity == "major" and report.severity_reasons == [
        f"c3 drifted {report.column('c3').severity:.1f}x its threshold"
    ]
    assert report.column("c3").severity >= LARGE_EFFECT

    # with importance: the same large shift on an unimportant input is minor, on an important one major
    importance = {f"c{i}": (0.6 if i == 0 else 0.4 / 9) for i in range(10)}
    report.assess(importance=importance, importance_source="test")
    assert report.severity == "minor" and "of at least average importance" in report.severity_rule
    report.assess(importance={**importance, "c3": 0.6, "c0": 0.4 / 9}, importance_source="test")
    assert (
        report.severity == "major"
        and "carries" in report.severity_reasons[-1]
        and report.importance_source == "test"
    )

    # drifted inputs carrying at least drift_share of the importance: major however small the shift
    ref, cur = shifts({"c0": 0.15})
    report = check_drift(ref, cur)
    report.assess(importance=importance)
    assert report.severity == "major" and "carry 60%" in report.severity_reasons[0]


def test_prediction_drift_makes_it_major() -> None:
    ref, cur = shifts({})
    report = check_drift(ref, cur)
    r = np.random.default_rng(6)
    pred_ref = prepare_reference(pd.DataFrame({"__prediction__": r.beta(2, 5, 5000)}))
    pred = check_drift(pred_ref, pd.DataFrame({"__prediction__": r.beta(2.6, 5, 5000)})).columns[0]
    assert pred.drifted
    report.assess(prediction=pred)
    assert report.severity == "major" and report.drift_detected is True
    assert (
        report.severity_reasons[0].startswith("the prediction drifted")
        and "prediction drifted" in report.headline
    )


def test_results_round_to_significant_digits() -> None:
    assert (
        round_sig(1.23456789e-200, 4) == 1.235e-200
        and round_sig(0.0, 4) == 0.0
        and round_sig(123456.7, 4) == 123500.0
    )
    ref, cur = shifts({"c1": 0.3}, n=3000)
    full, small = check_drift(ref, cur).to_dict(), check_drift(ref, cur).to_dict(digits=4)
    assert len(json.dumps(small)) < len(json.dumps(full))

    def floats(obj: object) -> list[float]:
        if isinstance(obj, dict):
            return [f for v in obj.values() for f in floats(v)]
        if isinstance(obj, list):
            return [f for v in obj for f in floats(v)]
        return [obj] if isinstance(obj, float) else []

    for f in floats(small):
        assert f == float(f"{f:.4g}"), f
    assert small["n_reference"] == 3000 and isinstance(small["n_reference"], int)
    col = small["columns"][1]
    assert col["statistic"] == pytest.approx(full["columns"][1]["statistic"], rel=5e-4)
    assert math.isfinite(col["p_value"])


def test_a_date_column_object_dtype_of_dates_is_found() -> None:
    ref = prepare_reference(pd.DataFrame({"d": [date(2024, 1, i % 28 + 1) for i in range(100)]}))
    assert ref.kinds == {"d": "datetime"}


def test_plot_draws_dates_and_missing_share_drift() -> None:
    from mlops_mcp.core.drift import plot_report

    r = np.random.default_rng(7)
    ref_frame = pd.DataFrame({"t": dates(r, 2000, "2023-01-01", 365), "x": r.normal(size=2000)})
    cur = pd.DataFrame({"t": dates(r, 2000, "2024-01-01", 365), "x": np.where(r.random(2000) < 0.4, np.nan, r.normal(size=2000))})
    report = check_drift(prepare_reference(ref_frame), cur)
    assert set(report.drifted_columns) == {"t", "x"} and report.column("x").drifted_on == ["missing_share"]
    assert plot_report(report, prepare_reference(ref_frame), cur)[:8] == b"\x89PNG\r\n\x1a\n"
