"""The auto rule, by seeded simulation (issue 13): missing shares, the effect's confidence bound,
bias-corrected Jensen-Shannon, two-valued rates, few-valued integers, the Monte-Carlo seed.

Every simulated rate is compared with a bound that includes its Monte-Carlo error (three standard
errors of a binomial proportion over the repetitions); the figures in comments are from a run with
these seeds, old rule vs new.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import brentq
from scipy.spatial.distance import jensenshannon

from mlops_mcp.core.drift import check_drift, prepare_reference
from mlops_mcp.core.drift import methods as m

ALPHA = 0.05


def mc_se(p: float, reps: int) -> float:
    """Standard error of a simulated rate (never below that of p = 0.05, so small rates keep a margin)."""
    return math.sqrt(max(p, 0.05) * (1 - max(p, 0.05)) / reps)


def one(a: np.ndarray, b: np.ndarray) -> object:
    """The auto verdict on one column."""
    return check_drift(prepare_reference(pd.DataFrame({"x": a})), pd.DataFrame({"x": b}), workers=1).columns[
        0
    ]


def with_missing(r: np.random.Generator, n: int, share: float) -> np.ndarray:
    x = r.normal(size=n)
    x[r.random(n) < share] = np.nan
    return x


# --------------------------------------------------------------------------- 1. missing shares


def test_a_rising_missing_share_is_flagged_as_its_own_reason() -> None:
    """30% -> 50% missing with unchanged values: flagged 0 of 400 times before; now (nearly) always."""
    r = np.random.default_rng(11)
    reps, hits = 60, 0
    for _ in range(reps):
        col = one(with_missing(r, 2000, 0.3), with_missing(r, 2000, 0.5))
        hits += bool(col.drifted)
        assert "missing_share" in col.drifted_on and col.missing["verdict"] == "drifted"
        assert col.missing["change"] == pytest.approx(0.2, abs=0.06)
    assert hits / reps >= 0.95


@pytest.mark.parametrize(("n", "share"), [(300, 0.3), (100, 0.02), (2000, 0.001)])
def test_missing_share_test_keeps_its_size(n: int, share: float) -> None:
    r = np.random.default_rng(n)
    reps = 300
    hits = sum(bool(one(with_missing(r, n, share), with_missing(r, n, share)).drifted) for _ in range(reps))
    assert hits / reps <= ALPHA + 3 * mc_se(ALPHA, reps)


def test_missing_share_numbers_equal_statsmodels_and_share_the_bh_family() -> None:
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    r = np.random.default_rng(3)
    ref = pd.DataFrame(
        {"x": with_missing(r, 3000, 0.1), "y": with_missing(r, 3000, 0.2), "z": r.normal(size=3000)}
    )
    cur = pd.DataFrame(
        {"x": with_missing(r, 2000, 0.16), "y": with_missing(r, 2000, 0.2), "z": r.normal(0.05, 1, 2000)}
    )
    report = check_drift(prepare_reference(ref), cur)
    x = report.column("x")
    miss_ref, miss_cur = int(ref["x"].isna().sum()), int(cur["x"].isna().sum())
    z, p = proportions_ztest([miss_cur, miss_ref], [2000, 3000])
    assert x.missing["statistic"] == pytest.approx(z, rel=1e-9) and x.missing["p_value"] == pytest.approx(
        p, rel=1e-9
    )
    lo, hi = confint_proportions_2indep(
        miss_cur, 2000, miss_ref, 3000, method="newcomb", compare="diff", alpha=2 * ALPHA
    )
    assert (x.missing["change_lower"], x.missing["change_upper"]) == pytest.approx((lo, hi), rel=1e-9)
    assert report.column("z").missing is None  # nothing missing on either side: no test, not in the family
    family = [c.p_value for c in report.columns] + [c.missing["p_value"] for c in report.columns if c.missing]
    expected = multipletests(family, method="fdr_bh")[1]
    got = [c.p_adjusted for c in report.columns] + [
        c.missing["p_adjusted"] for c in report.columns if c.missing
    ]
    assert got == pytest.approx(list(expected), rel=1e-12)


def test_a_significant_missing_change_under_5_points_is_a_small_shift() -> None:
    r = np.random.default_rng(4)
    a, b = with_missing(r, 200_000, 0.30), with_missing(r, 200_000, 0.32)
    col = one(a, b)
    assert col.missing["p_adjusted"] < 1e-6 and col.missing["verdict"] == "small_shift"
    assert col.drifted is False and col.verdict == "small_shift"
    ref = prepare_reference(pd.DataFrame({"x": a}))
    # its threshold is set by key; a per-column threshold belongs to the values' effect
    strict = check_drift(ref, pd.DataFrame({"x": b}), thresholds={"missing_change": 0.01}).columns[0]
    assert strict.missing["threshold"] == 0.01 and strict.drifted_on == ["missing_share"]
    per_column = check_drift(ref, pd.DataFrame({"x": b}), thresholds={"x": 0.01}).columns[0]
    assert per_column.missing["threshold"] == 0.05 and per_column.effect_threshold == 0.01


# --------------------------------------------------------------------------- 3. the knife edge


def test_an_effect_at_its_threshold_is_found_not_half_the_time() -> None:
    """A mean shift of exactly the threshold (0.1 sd), 20,000 rows a side (KS always significant):
    the old point-estimate gate flagged it about half the time (49% here); the bound, 92%."""
    r = np.random.default_rng(7)
    reps = 60
    new = old = 0
    for _ in range(reps):
        col = one(r.normal(size=20_000), r.normal(0.1, 1, 20_000))
        assert col.p_adjusted < ALPHA and col.effect_lower <= col.effect_size <= col.effect_upper
        new += bool(col.drifted)
        old += col.effect_size >= col.effect_threshold
    assert new / reps >= 0.9 - 3 * mc_se(0.9, reps) + 0.05
    assert 0.2 <= old / reps <= 0.8  # the old rule's coin flip, for contrast


def test_the_wasserstein_interval_covers_the_true_effect() -> None:
    """Delta-method interval of the normed Wasserstein: (1 - 2 alpha) = 90% nominal coverage."""
    r = np.random.default_rng(8)
    reps, covered = 200, 0
    for _ in range(reps):
        col = one(r.normal(size=4000), r.normal(0.2, 1, 3000))  # true W / sd = 0.2
        covered += col.effect_lower <= 0.2 <= col.effect_upper
    assert covered / reps >= 0.9 - 3 * mc_se(0.9, reps)


@pytest.mark.parametrize(
    ("name", "a", "b"),
    [
        ("numeric 0.03 sd", lambda r: r.normal(size=200_000), lambda r: r.normal(0.03, 1, 200_000)),
        (
            "rate 0.30 -> 0.31",
            lambda r: (r.random(200_000) < 0.30).astype(int),
            lambda r: (r.random(200_000) < 0.31).astype(int),
        ),
    ],
)
def test_a_real_but_small_shift_is_reported_as_such(name: str, a: object, b: object) -> None:
    r = np.random.default_rng(9)
    frame_a, frame_b = pd.DataFrame({"x": a(r)}), pd.DataFrame({"x": b(r)})  # type: ignore[operator]
    report = check_drift(prepare_reference(frame_a), frame_b)
    col = report.columns[0]
    assert col.p_adjusted < 1e-4 and col.effect_upper < col.effect_threshold, name
    assert col.verdict == "small_shift" and col.drifted is False
    assert report.small_shifts == ["x"] and report.severity == "none" and "small shifts" in report.headline


# --------------------------------------------------------------------------- 4. Jensen-Shannon and rates


@pytest.mark.parametrize(("k", "n"), [(30, 5000), (200, 5000)])
def test_jensen_shannon_no_drift_expectation_matches_the_formula(k: int, n: int) -> None:
    """Raw JS distance at 5,000 rows without drift: 0.045 (30 categories), 0.12 (200); the
    divergence's mean is (K - 1)/(4 n ln 2) within Monte-Carlo error and 3% (second-order terms)."""
    r = np.random.default_rng(k)
    p = np.ones(k) / k
    est = [m.jensenshannon_corrected(r.multinomial(n, p), r.multinomial(n, p), 0.9) for _ in range(200)]
    d = np.array([e.raw**2 for e in est])
    formula = (k - 1) / (4 * n * math.log(2))
    assert est[0].bias == pytest.approx(formula, rel=1e-12)
    assert abs(d.mean() - formula) <= 3 * d.std() / math.sqrt(d.size) + 0.03 * formula
    raw, corrected = np.mean([e.raw for e in est]), np.mean([e.corrected for e in est])
    assert raw > 0.04 and corrected < raw / 2.5


def test_a_small_shift_of_a_high_cardinality_column_is_not_drift() -> None:
    """200 categories, true JS distance 0.03 (threshold 0.05), 30,000 rows: the raw distance,
    inflated by its bias to ~0.057, flagged it 88% of the time; the corrected one calls it small."""
    r = np.random.default_rng(12)
    k, n, reps = 200, 30_000, 20
    p = np.ones(k) / k

    def shifted(t: float) -> np.ndarray:
        q = p.copy()
        q[: k // 2] *= 1 - t
        q[k // 2 :] *= 1 + t
        return q / q.sum()

    q = shifted(brentq(lambda t: jensenshannon(p, shifted(t), base=2) - 0.03, 1e-6, 0.9))
    cats = np.array([f"k{i}" for i in range(k)])
    drifted = old = 0
    for _ in range(reps):
        col = one(cats[r.choice(k, n, p=p)], cats[r.choice(k, n, p=q)])
        drifted += bool(col.drifted)
        old += col.p_adjusted < ALPHA and col.summary["jensenshannon_uncorrected"] >= 0.05
        assert col.effect_metric == "jensenshannon_corrected"
    assert drifted / reps <= 0.1 and old / reps >= 0.5


@pytest.mark.parametrize(("p0", "p1"), [(0.30, 0.25), (0.02, 0.04)], ids=["rate-0.30-0.25", "rare-0.02-0.04"])
def test_binary_and_rare_rate_changes_are_caught(p0: float, p1: float) -> None:
    """5,000 rows a side: Jensen-Shannon flagged these 41% / 46% of the time; the rate change
    (threshold 2 points, upper bound) 100% / 94%."""
    r = np.random.default_rng(int(p0 * 100))
    reps, hits = 100, 0
    for _ in range(reps):
        col = one((r.random(5000) < p0).astype(int), (r.random(5000) < p1).astype(int))
        hits += bool(col.drifted)
        assert col.effect_metric == "rate_change" and col.effect_threshold == 0.02
    assert hits / reps >= 0.85


def test_rate_change_interval_equals_statsmodels_newcombe() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep

    for x1, n1, x2, n2 in [(30, 1000, 55, 900), (0, 500, 4, 400), (120, 400, 100, 400)]:
        d, lo, hi = m.rate_change_interval(x1, n1, x2, n2, 0.9)
        assert d == pytest.approx(x2 / n2 - x1 / n1, rel=1e-12)
        assert (lo, hi) == pytest.approx(
            confint_proportions_2indep(x2, n2, x1, n1, method="newcomb", alpha=0.1), rel=1e-9
        )


@pytest.mark.slow
@pytest.mark.parametrize(("p", "n"), [(0.3, 500), (0.02, 500), (0.5, 30)])
def test_binary_false_alarms_stay_at_alpha(p: float, n: int) -> None:
    r = np.random.default_rng(int(p * 1000) + n)
    reps = 300
    hits = sum(
        bool(one((r.random(n) < p).astype(int), (r.random(n) < p).astype(int)).drifted) for _ in range(reps)
    )
    assert hits / reps <= ALPHA + 3 * mc_se(ALPHA, reps)


# --------------------------------------------------------------------------- 5. few-valued integers


REST_DAYS = [0.1, 0.5, 0.25, 0.1, 0.05]


@pytest.mark.parametrize("n", [500, 3000])
def test_few_valued_integers_keep_their_size(n: int) -> None:
    """KS on ties is conservative (0.0-2% false alarms here instead of 5%); chi-square on the
    values keeps the size near alpha."""
    r = np.random.default_rng(n + 1)
    reps = 300
    ours = ks = 0
    for _ in range(reps):
        a, b = r.choice(5, n, p=REST_DAYS), r.choice(5, n, p=REST_DAYS)
        col = one(a, b)
        assert col.method == "chi2" and col.kind == "numeric"
        ours += col.p_value < ALPHA
        ks += stats.ks_2samp(a, b, method="asymp").pvalue < ALPHA
    assert abs(ours / reps - ALPHA) <= 3 * mc_se(ALPHA, reps)
    assert ks / reps < ALPHA / 2  # the problem, for contrast


def test_few_valued_integers_gain_power() -> None:
    """A change of shape in rest days (3,000 rows a side): KS finds it 35% of the time, chi-square 98%."""
    r = np.random.default_rng(5)
    reps, ours, ks = 60, 0, 0
    shifted = [0.13, 0.45, 0.27, 0.1, 0.05]
    for _ in range(reps):
        a, b = r.choice(5, 3000, p=REST_DAYS), r.choice(5, 3000, p=shifted)
        ours += one(a, b).p_value < ALPHA
        ks += stats.ks_2samp(a, b, method="asymp").pvalue < ALPHA
    assert ours / reps >= 0.9 and ks / reps <= 0.6


def test_few_valued_integer_numbers_equal_scipy() -> None:
    r = np.random.default_rng(6)
    a, b = r.poisson(2, 4000).astype(float), r.poisson(2.3, 3000).astype(float)
    ref = prepare_reference(pd.DataFrame({"x": a}))
    assert ref.numeric["x"].levels is not None and ref.numeric["x"].levels.size <= 20
    col = check_drift(ref, pd.DataFrame({"x": b})).columns[0]
    levels = np.union1d(a, b)
    table = np.array([[np.sum(a == v) for v in levels], [np.sum(b == v) for v in levels]])
    off = ~np.isin(levels, np.unique(a))  # values the reference never had are pooled in one cell
    table = np.column_stack([table[:, ~off], table[:, off].sum(axis=1)]) if off.any() else table
    res = stats.chi2_contingency(table[:, table.sum(axis=0) > 0])
    assert col.statistic == pytest.approx(res.statistic, rel=1e-9)
    if col.p_value_method == "chi2":
        assert col.p_value == pytest.approx(res.pvalue, rel=1e-9)
    assert col.effect_size == pytest.approx(stats.wasserstein_distance(a, b) / a.std(), rel=1e-9)
    counts_a = np.array([np.sum(a == v) for v in levels])
    counts_b = np.array([np.sum(b == v) for v in levels])
    lv = m.compare_levels(levels, counts_a, counts_b)
    assert lv.ks_statistic == pytest.approx(stats.ks_2samp(a, b).statistic, rel=1e-12)
    # a value the reference never had (2.5) takes the general path for the effect, same numbers
    c = np.append(b, [2.5] * 40)
    col = check_drift(ref, pd.DataFrame({"x": c})).columns[0]
    assert col.summary["values_off_reference_levels"] == int(np.sum(~np.isin(c, np.unique(a)))) >= 40
    assert col.effect_size == pytest.approx(stats.wasserstein_distance(a, c) / a.std(), rel=1e-9)


# --------------------------------------------------------------------------- 7. the Monte-Carlo seed


def test_monte_carlo_seed_comes_from_the_table() -> None:
    ref = np.array([50, 20, 5, 3, 1, 1, 0])
    cur = np.array([48, 22, 6, 1, 2, 0, 1])
    other = np.array([47, 23, 6, 1, 2, 0, 1])  # the same margins once pooled with ref2
    ref2 = np.array([51, 19, 5, 3, 1, 1, 0])
    stat, _, _ = m.chi2_two_sample(ref, cur)
    p = m.chi2_monte_carlo_pvalue(ref, cur, stat)
    assert p == m.chi2_monte_carlo_pvalue(ref, cur, stat)  # reproducible
    assert p == m.chi2_monte_carlo_pvalue(ref, cur, stat, seed=m.table_seed(ref, cur))
    assert np.array_equal(ref + cur, ref2 + other)
    assert m.table_seed(ref, cur) != m.table_seed(ref2, other)  # same margins, independent draws


def test_monte_carlo_errors_average_out_across_tables() -> None:
    """Tables sharing their margins: with one fixed seed they all reuse one simulated null, so the
    Monte-Carlo errors are one error repeated; seeded from the table they average out."""
    r = np.random.default_rng(13)
    pooled = np.array([40, 25, 12, 8, 5, 4, 3, 2, 1])
    errors = []
    for _ in range(60):
        cur = r.multivariate_hypergeometric(pooled, 50)
        ref = pooled - cur
        stat = float(np.sum((cur - pooled / 2) ** 2 / (pooled / 2)) * 2)  # only its rank matters here
        fine = m.chi2_monte_carlo_pvalue(ref, cur, stat, draws=20_000, seed=1)
        errors.append(m.chi2_monte_carlo_pvalue(ref, cur, stat, draws=199) - fine)
    e = np.array(errors)
    assert abs(e.mean()) <= 3 * e.std() / math.sqrt(e.size) + 1e-3
