"""The drift statistics equal scipy's (and statsmodels') on the same data."""

import numpy as np
import pytest
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from mlops_mcp.core.drift import methods as m

RTOL = 1e-9


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [
        ("continuous_unequal", rng.normal(size=20_000), rng.normal(0.05, 1.1, size=15_000)),
        ("continuous_equal", rng.normal(size=20_000), rng.normal(0.02, 1.0, size=20_000)),
        ("integers_ties", rng.integers(0, 20, 30_000).astype(float), rng.integers(0, 22, 25_000).astype(float)),
        ("integers_equal", rng.integers(0, 20, 12_000).astype(float), rng.integers(1, 20, 12_000).astype(float)),
        ("rounded_cross_ties", np.round(rng.normal(size=60_000), 2), np.round(rng.normal(0.01, 1, size=55_000), 2)),
        ("small_exact", rng.normal(size=300), rng.normal(0.3, 1, size=200)),
        ("tiny", rng.normal(size=15), rng.normal(size=12)),
        ("skewed_out_of_range", rng.lognormal(size=70_000), rng.lognormal(0.5, 1.5, size=80_000) - 3),
        ("identical", np.arange(60_000, dtype=float), np.arange(60_000, dtype=float)),
    ]


@pytest.mark.parametrize("name,a,b", _cases(), ids=[c[0] for c in _cases()])
def test_numeric_statistics_equal_scipy(name: str, a: np.ndarray, b: np.ndarray) -> None:
    a_sorted = np.sort(a)
    bs, pos = m.sort_against(a_sorted, b)
    assert np.array_equal(bs, np.sort(b))
    assert np.array_equal(pos, np.searchsorted(a_sorted, bs, side="right"))
    got = m.compare_numeric(a_sorted, bs, pos=pos, cvm=True)
    ks = stats.ks_2samp(a, b)
    assert got.ks_statistic == pytest.approx(float(ks.statistic), rel=RTOL, abs=1e-15)
    assert got.ks_pvalue == pytest.approx(float(ks.pvalue), rel=RTOL, abs=1e-300)
    w = stats.wasserstein_distance(a, b)
    assert got.wasserstein == pytest.approx(w, rel=RTOL, abs=1e-12)
    cvm = stats.cramervonmises_2samp(a, b)
    assert got.cvm_statistic == pytest.approx(float(cvm.statistic), rel=RTOL, abs=1e-12)
    assert got.cvm_pvalue == pytest.approx(float(cvm.pvalue), rel=RTOL, abs=1e-12)


def test_ks_statistic_is_bit_identical_on_large_data() -> None:
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.normal(size=200_000)), rng.normal(0.01, 1, size=150_000)
    bs, pos = m.sort_against(a, b)
    got = m.compare_numeric(a, bs, pos=pos)
    assert got.ks_statistic == float(stats.ks_2samp(a, b).statistic)


@pytest.mark.parametrize("n", [10_001, 20_000, 100_000, 500_000])
@pytest.mark.parametrize("z", [1.49, 2.0, 3.0, 6.0, 15.0])
def test_fast_smirnov_tail_equals_scipy(n: int, z: float) -> None:
    d = z / np.sqrt(n)
    assert 2 * m.smirnov_sf(n, d) == pytest.approx(2 * special.smirnov(n, d), rel=RTOL, abs=1e-300)


@pytest.mark.parametrize("d", [0.001, 0.01, 0.02, 0.03, 0.05, 0.2])
def test_ks_pvalue_equals_kstwo(d: float) -> None:
    n1, n2 = 40_000, 30_000
    en = np.round(n1 * n2 / (n1 + n2))
    assert m.ks_pvalue(d, n1, n2) == pytest.approx(float(stats.kstwo.sf(d, en)), rel=RTOL, abs=1e-300)


def test_sort_against_constant_and_small_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=80_000)
    for a in (np.zeros(100_000), np.array([0.5]), np.sort(rng.normal(size=100_000))):
        bs, pos = m.sort_against(a, x)
        assert np.array_equal(bs, np.sort(x))
        assert np.array_equal(pos, np.searchsorted(a, bs, side="right"))


def test_counts_statistics_equal_scipy() -> None:
    ref = np.array([400, 300, 200, 100, 0])
    cur = np.array([300, 400, 180, 90, 30])
    stat, p, dof = m.chi2_two_sample(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]))
    assert stat == pytest.approx(expected.statistic, rel=RTOL)
    assert p == pytest.approx(expected.pvalue, rel=RTOL)
    assert dof == expected.dof
    assert m.jensenshannon(ref, cur) == pytest.approx(jensenshannon(ref, cur, base=2), rel=RTOL)
    # scipy's default base e differs by the factor sqrt(1 / ln 2)
    assert m.jensenshannon(ref, cur, base=np.e) == pytest.approx(jensenshannon(ref, cur), rel=RTOL)
    p_ref, p_cur = np.maximum(ref / ref.sum(), 1e-4), np.maximum(cur / cur.sum(), 1e-4)
    assert m.psi(ref, cur) == pytest.approx(float(np.sum((p_cur - p_ref) * np.log(p_cur / p_ref))), rel=RTOL)
    assert m.kl_div(ref, cur) == pytest.approx(float(stats.entropy(p_ref, p_cur)), rel=RTOL)
    h = np.sqrt(0.5 * np.sum((np.sqrt(ref / ref.sum()) - np.sqrt(cur / cur.sum())) ** 2))
    assert m.hellinger(ref, cur) == pytest.approx(h, rel=1e-7)


def test_chi2_on_two_categories_uses_yates_like_scipy() -> None:
    ref, cur = np.array([60, 40]), np.array([45, 55])
    stat, p, _ = m.chi2_two_sample(ref, cur)
    res = stats.chi2_contingency(np.vstack([ref, cur]))
    assert (stat, p) == pytest.approx((res.statistic, res.pvalue), rel=RTOL)


def test_ztest_equals_statsmodels() -> None:
    from statsmodels.stats.proportion import proportions_ztest

    ref, cur = np.array([520, 480]), np.array([450, 350])
    z, p = m.ztest_two_proportions(ref, cur)
    z_sm, p_sm = proportions_ztest([cur[0], ref[0]], [cur.sum(), ref.sum()])
    assert z == pytest.approx(z_sm, rel=RTOL)
    assert p == pytest.approx(p_sm, rel=RTOL)


@pytest.mark.parametrize("ours,theirs", [("bh", "fdr_bh"), ("holm", "holm"), ("bonferroni", "bonferroni")])
def test_corrections_equal_statsmodels(ours: str, theirs: str) -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(2).uniform(size=40) ** 3
    assert np.allclose(m.adjust_pvalues(p.tolist(), ours), multipletests(p, method=theirs)[1], rtol=RTOL)
    assert m.adjust_pvalues(p.tolist(), "none") == p.tolist()


def test_monte_carlo_pvalue_is_valid_and_seeded() -> None:
    ref = np.array([50, 20, 5, 3, 1, 1, 0])
    cur = np.array([48, 22, 6, 1, 2, 0, 1])
    stat, _, _ = m.chi2_two_sample(ref, cur)
    p1 = m.chi2_monte_carlo_pvalue(ref, cur, stat)
    assert p1 == m.chi2_monte_carlo_pvalue(ref, cur, stat)
    assert 0.2 < p1 <= 1.0
    assert m.chi2_monte_carlo_pvalue(np.array([100, 0, 0]), np.array([0, 50, 50]), 1.0) < 0.01
    assert m.sparse_table(ref, cur)


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [("shift", 0.01), ("scale", 0.01), ("bimodal_vs_wide", 0.01), ("rounded", 0.01), ("lognormal", 0.1), ("t3_shift", 0.1)],
)
def test_grid_standard_error_agrees_with_the_exact_one(name: str, tolerance: float) -> None:
    """The fast standard error of the normed Wasserstein (quantile grid) vs the point-by-point one:
    within 1% for light tails; heavy tails, where the delta method itself is rough, within 10%."""
    r = np.random.default_rng(21)
    n1, n2 = 150_000, 250_000
    gen = {
        "shift": (lambda n: r.normal(size=n), lambda n: r.normal(0.1, 1, n)),
        "scale": (lambda n: r.normal(size=n), lambda n: r.normal(0, 1.3, n)),
        "bimodal_vs_wide": (lambda n: np.r_[r.normal(-2, 1, n // 2), r.normal(2, 1, n - n // 2)], lambda n: r.normal(0, 2.2, n)),
        "rounded": (lambda n: np.round(r.normal(size=n), 1), lambda n: np.round(r.normal(0.05, 1, n), 1)),
        "lognormal": (lambda n: r.lognormal(size=n), lambda n: r.lognormal(0.1, 1.1, n)),
        "t3_shift": (lambda n: r.standard_t(3, n), lambda n: r.standard_t(3, n) + 1),
    }[name]
    a = np.sort(gen[0](n1))
    b, pos = m.sort_against(a, gen[1](n2))
    mean, std = float(a.mean()), float(a.std())
    values, diff, pa, pb, _ = m._merged(a, b, pos)
    phi = m._influence(diff, np.diff(values))
    w = float(np.dot(np.abs(diff[:-1]), np.diff(values)))
    exact = m.normed_wasserstein_se(phi[pa], phi[pb], a, w, mean, std, std)
    grid = m.compare_numeric(a, b, pos=pos, ks=False, se_scale=(mean, std, std)).wasserstein_normed_se
    assert n1 + n2 > m.SE_EXACT_MAX and grid == pytest.approx(exact, rel=tolerance)
