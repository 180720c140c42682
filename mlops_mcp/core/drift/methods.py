"""Two-sample statistics on prepared (sorted / counted) data.

Why a module of its own: the engine needs the *same numbers* scipy gives (the tests compare them to
1e-9), but computed from a reference that was sorted once and a current sample sorted once, so a
check over 25 columns x 1,000,000 rows costs about one sort per column instead of the several sorts
and merges scipy performs per call.

Numeric columns (``a`` = sorted reference, ``b`` = sorted current, float64, no NaN):

- KS statistic: ``max |F_ref(x) - F_cur(x)|`` over all observed x, with the same integer counts and
  divisions as ``scipy.stats.ks_2samp`` (bit-identical); p-value: scipy's exact distribution when
  ``max(n1, n2) <= 10,000`` (scipy's own 'auto' rule, we call it), else ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``
  like scipy's asymptotic branch.
- Wasserstein-1: ``scipy.stats.wasserstein_distance`` (unnormalised); the engine reports it divided by
  the reference standard deviation (ddof=0, as Evidently does) as the *normed* Wasserstein.
- Cramer-von Mises: ``scipy.stats.cramervonmises_2samp`` statistic T (midranks for ties) and its
  asymptotic p-value (exact below 21 rows per side, via scipy).

Count-based statistics (categorical columns, or numeric columns binned on the reference deciles):

- chi2: ``scipy.stats.chi2_contingency`` on the 2 x K table (reference row, current row), i.e. a true
  two-sample test (Yates' correction when K == 2, as scipy does);
- ztest: the pooled two-proportion z-test (two-sided) for binary columns;
- jensenshannon: ``scipy.spatial.distance.jensenshannon`` (a *distance*, square root of the
  divergence) in **base 2**, so it lies in [0, 1]; scipy's default base e gives 0.8326x this value;
- psi: sum((q - p) ln(q / p)) with empty bins set to 1e-4 (Evidently's convention);
- kl_div: KL(reference || current) in nats, empty bins set to 1e-4 (Evidently's convention);
- hellinger: sqrt(1 - sum(sqrt(p q))) in [0, 1].
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from scipy.spatial.distance import jensenshannon as _scipy_js

CHUNK = 1 << 16  # values per block in linear passes (see _blocks)


def dot(x: np.ndarray, y: np.ndarray) -> float:
    """Inner product of two 1-d arrays without BLAS.

    Why: OpenBLAS wakes its worker threads for every ``np.dot`` of a long vector; on a busy
    machine (or inside our column thread pool) each wake-up cost up to 20 ms, more than the
    product itself. einsum's single-threaded SIMD loop has no such spikes.
    """
    return float(np.einsum("i,i->", x, y))
KS_EXACT_MAX_N = 10_000  # scipy's MAX_AUTO_N: exact KS p-values below this size
CVM_EXACT_MAX_N = 20  # scipy's 'auto' switch for cramervonmises_2samp
ZERO_SHARE = 1e-4  # empty bins in psi / kl_div (Evidently's convention), avoids log(0)


@dataclass
class NumericComparison:
    """Statistics of one numeric column pair; fields are None when not asked for."""

    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    wasserstein: float | None = None
    wasserstein_normed_se: float | None = None  # delta-method standard error of wasserstein / norm
    cvm_statistic: float | None = None
    cvm_pvalue: float | None = None


# --------------------------------------------------------------------------- numeric, from sorted arrays

BUCKETS = 65535
FAST_SORT_MIN = 50_000
FAST_SORT_MAX = 2_000_000  # beyond this the bucketing's random gathers leave the CPU cache


def sort_against(a: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort the current sample ``x`` (finite float64) and locate it in the sorted reference ``a``.

    Returns ``(b, pos)``: ``b`` = sorted x, ``pos[j]`` = number of reference values <= b[j] (what
    ``np.searchsorted(a, b, "right")`` gives). Why not just ``np.sort`` + ``searchsorted``: the
    reference already tells where values fall, so x is first bucketed on a uniform grid over the
    reference's central range (a 16-bit key: numpy's stable argsort is a radix sort there), then one
    stable sort of [reference, nearly-sorted current] -- a timsort that only has to fix short runs
    and merge two runs -- yields both the order and the positions. Faster than sort + searchsorted
    up to about 1,000,000 rows, and exact: the bucketing only changes speed, never the result.
    Beyond ``FAST_SORT_MAX`` values its permutation gathers miss the cache and grow faster than
    the data (log-log slope 1.15-1.3 from 1M to 5M rows, against about 1.05 for numpy's SIMD sort +
    searchsorted), so large samples take the plain route.
    """
    n1, n2 = a.size, x.size
    if n2 < FAST_SORT_MIN or n2 > FAST_SORT_MAX or n1 < 2:
        b = np.sort(x)
        return b, np.searchsorted(a, b, side="right")
    lo, hi = float(a[int(0.001 * (n1 - 1))]), float(a[int(0.999 * (n1 - 1))])
    if not hi > lo:
        b = np.sort(x)
        return b, np.searchsorted(a, b, side="right")
    key = x - lo
    key *= BUCKETS / (hi - lo)
    np.clip(key, 0, BUCKETS, out=key)
    order = np.argsort(key.astype(np.uint16), kind="stable")
    del key
    both = np.concatenate([a, x[order]])
    del order
    perm = np.argsort(both, kind="stable")  # reference first on ties: a <= b counts in pos
    where = np.flatnonzero(perm >= n1)
    b = both[perm[where]]
    del perm, both
    where -= np.arange(n2)
    return b, where


def has_ties(sorted_values: np.ndarray) -> bool:
    """True if a sorted array holds a repeated value (decides the fast or the general merge path)."""
    s = sorted_values
    return any(bool(np.any(s[i + 1 : i + CHUNK + 1] == s[i : i + CHUNK][: s.size - i - 1])) for i in _blocks(s.size - 1))


def smirnov_sf(n: int, d: float) -> float:
    """P(D+_n >= d), the one-sided Smirnov tail (Birnbaum & Tingey 1951), with vectorised precise terms.

    Why: scipy's ``kstwo.sf`` evaluates ``2 * special.smirnov(n, d)`` for 2.2 <= n d^2 < 370 with a
    sum over all n terms -- 0.7 s at n = 500,000, per column. The terms are
    ``d * binom.pmf(j, n, p_j) / p_j`` with ``p_j = d + j / n``; they vanish (< e^-40 of the largest)
    outside a window around the peak, which a cheap log-gamma pass locates, and
    inside it scipy's binomial pmf (Loader's saddle-point method) is accurate to ~1e-15.
    """
    jmax = int(math.floor(n * (1.0 - d)))
    while jmax >= 0 and d + jmax / n >= 1.0:
        jmax -= 1
    if jmax < 0:
        return 0.0

    def logterm(j: np.ndarray) -> np.ndarray:
        p = d + j / n
        return (
            special.gammaln(n + 1.0)
            - special.gammaln(j + 1.0)
            - special.gammaln(n - j + 1.0)
            + (j - 1.0) * np.log(p)
            + (n - j) * np.log1p(-p)
        )

    # coarse pass on a grid (the log-terms are unimodal), then the exact window around the peak
    step = max(1, (jmax + 1) // 4096)
    grid = np.arange(0, jmax + 1, step, dtype=np.float64)
    lg = logterm(grid)
    near = np.flatnonzero(lg > lg.max() - 45.0)
    lo = max(0, int(grid[near[0]]) - step)
    hi = min(jmax, int(grid[near[-1]]) + step)
    j = np.arange(lo, hi + 1, dtype=np.float64)
    p = d + j / n
    terms = stats.binom.pmf(j, n, p) / p  # terms outside the window are < e^-40 of the peak
    return float(d * np.sum(terms))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Asymptotic two-sided KS p-value as scipy's 'asymp' branch computes it: ``kstwo.sf(D, round(en))``.

    The one costly region of ``kstwo.sf`` (scipy's 2 * smirnov(n, D), see :func:`smirnov_sf`) is
    computed by the O(sqrt(n)) route for large n; elsewhere we call scipy.
    """
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = float(np.round(m * n / (m + n)))
    t = en * d
    if en > 10_000 and 0 < d < 0.5 and 1.0 < t < en - 1 and 2.2 <= t * d < 370.0:
        return float(np.clip(2.0 * smirnov_sf(int(en), d), 0.0, 1.0))
    return float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))


def _cdf_cvm_inf(x: float) -> float:
    """CDF of the limiting Cramer-von Mises distribution (Csorgo & Faraway 1996, eq. 1.2).

    The same series scipy sums (scipy.stats._hypotests._cdf_cvm_inf), re-written here so we depend
    on no private scipy function.
    """
    total = 0.0
    k = 0
    while True:
        u = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (math.pi**1.5 * math.sqrt(x))
        y = 4 * k + 1
        q = y**2 / (16 * x)
        term = u * math.sqrt(y) * math.exp(-q) * float(special.kv(0.25, q))
        total += term
        k += 1
        if abs(term) < 1e-7:
            return total


def cvm_pvalue_asymptotic(t: float, nx: int, ny: int) -> float:
    """scipy's asymptotic p-value of the two-sample CvM statistic T (Anderson 1962, eqs. 11-15)."""
    k, n = nx * ny, nx + ny
    et = (1 + 1 / n) / 6
    vt = (n + 1) * (4 * k * n - 3 * (nx**2 + ny**2) - 2 * k) / (45 * n**2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    if tn < 0.003:
        return 1.0
    return max(0.0, 1.0 - _cdf_cvm_inf(tn))


def _blocks(n: int) -> range:
    """Starts of cache-sized blocks: linear passes over a column allocate no column-sized
    temporary (above ~32 MB each one is a fresh mmap whose page faults made a 5,000,000-row check
    grow faster than the data)."""
    return range(0, n, CHUNK)


def _ks_fast(a: np.ndarray, b: np.ndarray, pos: np.ndarray) -> float:
    """KS D when neither sample has ties and no value is shared: only O(n_current) work.

    ``pos[j]`` = number of reference values <= b[j]. The largest F_ref - F_cur is reached at the last
    reference value before some b[j] (value pos[j]/n1 - j/n2) and the largest F_cur - F_ref at a
    b[j] (value (j+1)/n2 - pos[j]/n1): the same integers and divisions as scipy, so D is identical.
    """
    n1, n2 = a.size, b.size
    up = down = 0.0
    for i in _blocks(n2):
        f1 = pos[i : i + CHUNK] / n1
        j = np.arange(i, i + f1.size, dtype=np.float64)
        j /= n2
        up = max(up, float(np.max(f1 - j)))
        j = np.arange(i + 1, i + f1.size + 1, dtype=np.float64)
        j /= n2
        down = max(down, float(np.max(j - f1)))
    return max(up, down, 0.0)


def _shares_a_value(a: np.ndarray, b: np.ndarray, pos: np.ndarray) -> bool:
    """Does some current value equal a reference value (pos: reference values <= each b)?"""
    for i in _blocks(b.size):
        p = pos[i : i + CHUNK]
        if np.any((p > 0) & (a[np.maximum(p - 1, 0)] == b[i : i + CHUNK])):
            return True
    return False


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """mean |a - b| of two equal-length arrays, block by block."""
    return sum(float(np.abs(a[i : i + CHUNK] - b[i : i + CHUNK]).sum()) for i in _blocks(a.size)) / a.size


def _merged(a: np.ndarray, b: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge two sorted samples without sorting: values, F_ref - F_cur at each point, positions.

    Ties go reference first. At the last element of each run of equal values the stored difference
    is the right-continuous F_ref(x) - F_cur(x) that scipy evaluates; elsewhere the gap to the next
    value is 0, so those entries weigh nothing in the Wasserstein integral and are skipped for KS.
    """
    n1, n2 = a.size, b.size
    below = np.cumsum(np.bincount(pos, minlength=n1 + 1)[:n1])  # number of b < a[i]
    pb = pos + np.arange(n2)
    pa = below + np.arange(n1)
    values = np.empty(n1 + n2)
    values[pb] = b
    values[pa] = a
    diff = np.empty(n1 + n2)
    diff[pb] = pos / n1 - np.arange(1, n2 + 1) / n2
    diff[pa] = np.arange(1, n1 + 1) / n1 - below / n2
    return values, diff, pa, pb, below


def compare_numeric(
    a: np.ndarray,
    b: np.ndarray,
    *,
    pos: np.ndarray | None = None,
    ks: bool = True,
    wasserstein: bool = True,
    cvm: bool = False,
    a_has_ties: bool | None = None,
    se_scale: tuple[float, float, float] | None = None,
) -> NumericComparison:
    """KS / Wasserstein / CvM of sorted float64 samples ``a`` (reference) and ``b`` (current).

    ``pos`` (from :func:`sort_against`) saves the searchsorted when the caller already has it.
    ``se_scale = (reference mean, reference std, norm)`` also asks for the standard error of
    ``wasserstein / norm`` (see :func:`normed_wasserstein_se`).
    """
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    out = NumericComparison()
    small = max(n1, n2) <= KS_EXACT_MAX_N
    if ks and small:
        res = stats.ks_2samp(a, b)  # exact p-value, cheap at this size
        out.ks_statistic, out.ks_pvalue = float(res.statistic), float(res.pvalue)
        ks = False
    if cvm and max(n1, n2) <= CVM_EXACT_MAX_N:
        res = stats.cramervonmises_2samp(a, b)
        out.cvm_statistic, out.cvm_pvalue = float(res.statistic), float(res.pvalue)
        cvm = False
    if not (ks or wasserstein or cvm):
        return out

    if pos is None:
        pos = np.searchsorted(a, b, side="right")
    if a_has_ties is None:
        a_has_ties = has_ties(a)
    ties = a_has_ties or has_ties(b) or _shares_a_value(a, b, pos)

    if wasserstein and n1 == n2:
        # Equal sizes: W1 = mean |a_(i) - b_(i)| (quantile coupling), with or without ties.
        out.wasserstein = _mean_abs_diff(a, b)
        wasserstein = False
    if ks and not ties:
        out.ks_statistic = _ks_fast(a, b, pos)
        ks = False

    grid_se = se_scale is not None and n1 + n2 > SE_EXACT_MAX
    if ks or wasserstein or (cvm and ties) or (se_scale is not None and not grid_se):
        values, diff, pa, pb, below = _merged(a, b, pos)
        gaps = np.diff(values)
        if wasserstein:
            out.wasserstein = dot(np.abs(diff[:-1]), gaps)
        if se_scale is not None and not grid_se:
            phi = _influence(diff, gaps)
            out.wasserstein_normed_se = normed_wasserstein_se(
                phi[pa], phi[pb], a, float(out.wasserstein or 0.0), *se_scale
            )
            del phi
        if ks:
            last = np.empty(values.size, dtype=bool)
            last[:-1] = gaps != 0
            last[-1] = True
            out.ks_statistic = float(np.max(np.abs(diff[last])))
        if cvm and ties:
            first = np.empty(values.size, dtype=bool)
            first[0] = True
            first[1:] = gaps != 0
            starts = np.flatnonzero(first)
            ends = np.append(starts[1:] - 1, values.size - 1)
            group = np.cumsum(first) - 1
            ranks = (starts[group] + ends[group]) / 2.0 + 1.0
            u = n1 * float(np.sum((ranks[pa] - np.arange(1, n1 + 1)) ** 2)) + n2 * float(
                np.sum((ranks[pb] - np.arange(1, n2 + 1)) ** 2)
            )
            out.cvm_statistic = _cvm_t(u, n1, n2)
            cvm = False
    if cvm:
        # no ties: rank(a_i) - (i+1) = number of b below a_i; rank(b_j) - (j+1) = pos_j
        below = np.cumsum(np.bincount(pos, minlength=n1 + 1)[:n1]).astype(np.float64)
        posf = pos.astype(np.float64)
        u = n1 * dot(below, below) + n2 * dot(posf, posf)
        out.cvm_statistic = _cvm_t(u, n1, n2)
    if grid_se and se_scale is not None:
        out.wasserstein_normed_se = wasserstein_se_grid(a, b, float(out.wasserstein or 0.0), *se_scale)
    if out.ks_statistic is not None and out.ks_pvalue is None:
        out.ks_pvalue = ks_pvalue(out.ks_statistic, n1, n2)
    if out.cvm_statistic is not None and out.cvm_pvalue is None:
        out.cvm_pvalue = cvm_pvalue_asymptotic(out.cvm_statistic, n1, n2)
    return out


def _cvm_t(u: float, nx: int, ny: int) -> float:
    k, n = nx * ny, nx + ny
    return u / (k * n) - (4 * k - 1) / (6 * n)


# --------------------------------------------------------------------------- confidence bounds of effects


def _influence(diff: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """phi(t) = integral from t to +inf of sign(F_ref - F_cur), at every merged point.

    Why: W1 = integral |F_ref - F_cur| dx, so moving one reference value t changes W1 by
    phi(t) / n1 (and one current value by -phi(t) / n2): the influence function of W1. Its
    variance over each sample gives the delta-method standard error of W1, in O(n).
    """
    contrib = np.sign(diff[:-1])
    contrib *= gaps
    phi = np.empty(diff.size)
    phi[-1] = 0.0
    np.cumsum(contrib[::-1], out=phi[-2::-1])  # suffix sums, written back to front
    return phi


@dataclass
class _Sums:
    """Sums over one sample of the influence phi, its square, and (reference only) of the centred
    squares q = (x - mean)^2, q^2 and phi q: all the standard error needs."""

    n: float
    phi: float
    phi2: float
    q: float = 0.0
    q2: float = 0.0
    phi_q: float = 0.0

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(*(x + y for x, y in zip(self.__dict__.values(), other.__dict__.values())))


def _sums(phi: np.ndarray, x: np.ndarray | None, mean: float, weights: np.ndarray | None = None) -> _Sums:
    """Sums of phi (and of the centred squares of x when given), weighted by counts when given."""
    wphi = phi if weights is None else weights * phi
    out = _Sums(float(phi.size) if weights is None else float(weights.sum()), float(wphi.sum()), dot(wphi, phi))
    if x is not None:
        q = x - mean
        q *= q  # centred first: epoch seconds would cancel catastrophically
        wq = q if weights is None else weights * q
        out.q, out.q2, out.phi_q = float(wq.sum()), dot(wq, q), dot(wphi, q)
    return out


def _se_from_sums(ref: _Sums, cur: _Sums, w: float, std: float, norm: float) -> float:
    """Delta-method standard error of W1 / norm from the sums of :func:`_sums`.

    When the norm is the reference std its own sampling error counts too: a reference value x moves
    std by ((x - mean)^2 - std^2) / (2 std n1), so the reference influence on W1 / std is
    phi/std - c ((x - mean)^2 - std^2) with c = W1 / (2 std^3).
    """
    if ref.n <= 0 or cur.n <= 0 or norm <= 0:
        return float("nan")
    mean_a = ref.phi / ref.n
    var_a = max(ref.phi2 / ref.n - mean_a**2, 0.0)
    var_b = max(cur.phi2 / cur.n - (cur.phi / cur.n) ** 2, 0.0)
    if std > 0 and norm == std:
        eq = ref.q / ref.n
        cov = ref.phi_q / ref.n - mean_a * eq
        var_q = max(ref.q2 / ref.n - eq**2, 0.0)
        c = w / (2 * std**3)
        var = (var_a / std**2 - 2 * (c / std) * cov + c * c * var_q) / ref.n + var_b / (std**2 * cur.n)
    else:
        var = (var_a / ref.n + var_b / cur.n) / norm**2
    return math.sqrt(max(var, 0.0))


def normed_wasserstein_se(
    phi_a: np.ndarray,
    phi_b: np.ndarray,
    x_a: np.ndarray,
    w: float,
    mean: float,
    std: float,
    norm: float,
    w_a: np.ndarray | None = None,
    w_b: np.ndarray | None = None,
) -> float:
    """Delta-method standard error of ``W1 / norm`` (norm: the reference std, or a fixed number for
    a constant reference), from the influence values at every reference / current point
    (``w_a``/``w_b``: their counts when the samples are given as distinct values)."""
    return _se_from_sums(_sums(phi_a, x_a, mean, w_a), _sums(phi_b, None, mean, w_b), w, std, norm)


SE_GRID = 2048  # quantiles of each sample that carry the fast standard error
SE_TAIL_BINS = 8  # outer bins on each side whose points are taken one by one (heavy tails)
SE_EXACT_MAX = 200_000  # below this many values in all, the standard error is computed point by point


def wasserstein_se_grid(a: np.ndarray, b: np.ndarray, w: float, mean: float, std: float, norm: float) -> float:
    """The standard error of :func:`normed_wasserstein_se` on a grid: O(grid log n), no pass over the data.

    Why: the exact form needs the merged samples and several passes over them (it doubled the
    cost of a numeric column at 1,000,000 rows). On a grid of the two samples' quantiles (plus
    their extremes) the CDFs, and so phi at the grid points, are exact; between two grid points
    phi is linear (sign(F_ref - F_cur) taken constant there), so each interior bin contributes its
    count at its midpoint plus the within-bin variance gap^2 / 12, and the points of the outer
    bins, where heavy tails make bins wide, are taken one by one. Agrees with the exact form to
    about 1% (tests/test_drift_rules.py).
    """
    n1, n2 = a.size, b.size
    e = np.unique(
        np.concatenate([a[(np.arange(SE_GRID + 1) * (n1 - 1)) // SE_GRID], b[(np.arange(SE_GRID + 1) * (n2 - 1)) // SE_GRID]])
    )
    if e.size < 2:
        return 0.0
    ca, cb = np.searchsorted(a, e, side="right"), np.searchsorted(b, e, side="right")
    d = ca / n1 - cb / n2
    gaps = np.diff(e)
    slope = np.sign(d[:-1])  # phi(t) = phi[k + 1] + slope[k] (e[k + 1] - t) on (e[k], e[k + 1]]
    phi = _influence(d, gaps)
    k = e.size - 1  # bins (e[i], e[i + 1]], i = 0..k-1, plus the values equal to e[0]
    tail = min(SE_TAIL_BINS, k // 2)
    inner = slice(tail, k - tail)

    def side(x: np.ndarray, counts: np.ndarray, with_q: bool) -> _Sums:
        weights = np.diff(counts).astype(np.float64)[inner]
        mid_phi = (phi[:-1] + phi[1:])[inner] / 2
        mid_x = (e[:-1] + e[1:])[inner] / 2
        out = _sums(mid_phi, mid_x if with_q else None, mean, weights)
        out.phi2 += dot(weights, gaps[inner] ** 2) / 12  # phi varies linearly inside a bin
        lo, hi = int(counts[tail]), int(counts[k - tail])  # values <= e[tail], values > e[k - tail]
        pts = np.concatenate([x[:lo], x[hi:]])
        i = np.clip(np.searchsorted(e, pts, side="left") - 1, -1, k - 1)
        j = np.maximum(i, 0)
        pts_phi = np.where(i < 0, phi[0], phi[j + 1] + slope[j] * (e[j + 1] - pts))
        return out + _sums(pts_phi, pts if with_q else None, mean)

    return _se_from_sums(side(a, ca, True), side(b, cb, False), w, std, norm)


@dataclass
class LevelComparison:
    """KS and Wasserstein of two samples given as counts over the same sorted distinct values."""

    ks_statistic: float
    wasserstein: float
    wasserstein_normed_se: float | None


def compare_levels(
    levels: np.ndarray, ref_counts: np.ndarray, cur_counts: np.ndarray, se_scale: tuple[float, float, float] | None = None
) -> LevelComparison:
    """KS D and Wasserstein-1 from counts over sorted distinct values (no sort of the raw data).

    The same integers and divisions as ``scipy.stats.ks_2samp`` (cdf = count of values <= x over
    n), so D is identical; W1 = sum |F_ref - F_cur| * gap, scipy's formula with the zero gaps of
    ties left out.
    """
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    diff = np.cumsum(ref_counts) / n1 - np.cumsum(cur_counts) / n2
    gaps = np.diff(levels)
    w = dot(np.abs(diff[:-1]), gaps)
    se = None
    if se_scale is not None:
        phi = _influence(diff, gaps)
        se = normed_wasserstein_se(phi, phi, levels, w, *se_scale, w_a=ref_counts, w_b=cur_counts)
    return LevelComparison(float(np.max(np.abs(diff))), w, se)


def wilson_interval(x: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion x / n."""
    if n <= 0:
        return 0.0, 1.0
    p = x / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def rate_change_interval(x1: float, n1: float, x2: float, n2: float, confidence: float) -> tuple[float, float, float]:
    """Change of a proportion, current x2/n2 minus reference x1/n1, with Newcombe's hybrid score
    interval (his method 10; statsmodels' ``confint_proportions_2indep(method="newcomb")``).

    Why Newcombe and not Wald: it keeps its coverage for rates near 0 or 1 (a missing share of 0%,
    a rare flag), where the Wald interval collapses to a point.
    """
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p2 - p1
    return d, d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


def magnitude_bounds(lower: float, upper: float) -> tuple[float, float]:
    """Bounds of |d| from bounds of d."""
    if lower <= 0 <= upper:
        return 0.0, max(-lower, upper)
    return min(abs(lower), abs(upper)), max(abs(lower), abs(upper))


@dataclass
class JensenShannonEstimate:
    """Jensen-Shannon distance (base 2) with its small-sample bias removed, and bounds."""

    raw: float  # scipy's distance of the observed shares
    corrected: float  # sqrt(max(divergence - bias, 0))
    lower: float
    upper: float
    bias: float  # expected divergence under no drift, (K - 1)(1/n1 + 1/n2) / (8 ln 2)
    n_categories: int


def jensenshannon_corrected(ref_counts: np.ndarray, cur_counts: np.ndarray, confidence: float) -> JensenShannonEstimate:
    """Bias-corrected Jensen-Shannon distance with a delta-method confidence interval.

    Why: with no drift at all the observed divergence (base 2) is about
    (K - 1)(1/n1 + 1/n2) / (8 ln 2) -- the chi-square limit of 8 ln2 JSD -- which for 200
    categories and 5,000 rows a side is a distance of 0.12, so a fixed threshold on the raw
    distance flags every significant change of a high-cardinality column however small. The
    corrected divergence subtracts that expectation. Its variance is the first-order (delta-method)
    term sum_i p_i g_i^2 - (sum p_i g_i)^2 over n1 with g_i = 1/2 log2(p_i / m_i) (and the same for
    the current side) plus the variance of the chi-square part, 2 (K - 1) u^2 with
    u = (1/n1 + 1/n2) / (8 ln 2); the bounds are taken on the divergence and square-rooted.
    """
    keep = (ref_counts + cur_counts) > 0
    r, c = ref_counts[keep].astype(np.float64), cur_counts[keep].astype(np.float64)
    n1, n2 = float(r.sum()), float(c.sum())
    k = int(keep.sum())
    raw = jensenshannon(ref_counts, cur_counts) if k else 0.0
    if k < 2 or n1 == 0 or n2 == 0:
        return JensenShannonEstimate(raw, 0.0, 0.0, 0.0, 0.0, k)
    p, q = r / n1, c / n2
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(p > 0, 0.5 * np.log2(p / m), 0.0)
        h = np.where(q > 0, 0.5 * np.log2(q / m), 0.0)
    u = (1 / n1 + 1 / n2) / (8 * math.log(2))
    var = (dot(p, g * g) - dot(p, g) ** 2) / n1 + (dot(q, h * h) - dot(q, h) ** 2) / n2 + 2 * (k - 1) * u * u
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    se = math.sqrt(max(float(var), 0.0))
    bias = (k - 1) * u
    d = raw * raw - bias
    def root(v: float) -> float:
        return math.sqrt(max(v, 0.0))

    return JensenShannonEstimate(raw, root(d), root(d - z * se), root(d + z * se), bias, k)


# --------------------------------------------------------------------------- counts


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts -> shares (all zeros stay zeros)."""
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(np.float64)


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index, empty bins set to a 1e-4 share (Evidently's convention)."""
    p = np.maximum(shares(ref_counts), ZERO_SHARE)
    q = np.maximum(shares(cur_counts), ZERO_SHARE)
    return float(np.sum((q - p) * np.log(q / p)))


def kl_div(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """KL(reference || current) in nats, empty bins set to a 1e-4 share (Evidently's convention)."""
    p = np.maximum(shares(ref_counts), ZERO_SHARE)
    q = np.maximum(shares(cur_counts), ZERO_SHARE)
    return float(stats.entropy(p, q))


def jensenshannon(ref_counts: np.ndarray, cur_counts: np.ndarray, base: float = 2.0) -> float:
    """Jensen-Shannon distance (scipy's, base 2 by default so it lies in [0, 1])."""
    return float(_scipy_js(ref_counts.astype(np.float64), cur_counts.astype(np.float64), base=base))


def hellinger(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Hellinger distance in [0, 1]."""
    bc = float(np.sum(np.sqrt(shares(ref_counts) * shares(cur_counts))))
    return math.sqrt(max(0.0, 1.0 - bc))


def tvd(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Total variation distance: the share of rows that would have to change category."""
    return float(0.5 * np.abs(shares(ref_counts) - shares(cur_counts)).sum())


def chi2_two_sample(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Two-sample chi-square test of homogeneity (scipy's chi2_contingency on the 2 x K table).

    Categories empty on both sides are dropped (they carry no information and scipy rejects zero
    expected counts). Returns (statistic, p-value, degrees of freedom).
    """
    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    if table.shape[1] < 2:
        return 0.0, 1.0, 0
    res = stats.chi2_contingency(table)
    return float(res.statistic), float(res.pvalue), int(res.dof)


def table_seed(ref_counts: np.ndarray, cur_counts: np.ndarray) -> int:
    """A seed derived from the table itself (BLAKE2b of its counts).

    Why: one fixed seed for every table makes every table with the same margins use the very same
    simulated null distribution, so Monte-Carlo errors repeat instead of averaging out across
    columns and checks; a seed from the table keeps each answer reproducible and the errors independent.
    """
    keep = (ref_counts + cur_counts) > 0
    payload = np.concatenate([ref_counts[keep], cur_counts[keep]]).astype("<i8").tobytes()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little")


def chi2_monte_carlo_pvalue(
    ref_counts: np.ndarray, cur_counts: np.ndarray, statistic: float, draws: int = 1999, seed: int | None = None
) -> float:
    """Permutation p-value of the Pearson statistic with both margins fixed.

    Why: with many sparse categories the chi-square approximation can be off in either direction;
    under "no drift" the current counts are a multivariate-hypergeometric draw from the pooled
    counts, so simulating that gives a p-value valid at any size. Seeded from the table
    (:func:`table_seed`) unless ``seed`` is given: the same data always gives the same answer.
    """
    keep = (ref_counts + cur_counts) > 0
    r, c = ref_counts[keep].astype(np.int64), cur_counts[keep].astype(np.int64)
    pooled = r + c
    n_cur, n_all = int(c.sum()), int(pooled.sum())
    rng = np.random.default_rng(table_seed(ref_counts, cur_counts) if seed is None else seed)
    sim_cur = rng.multivariate_hypergeometric(pooled, n_cur, size=draws, method="marginals")
    sim_ref = pooled - sim_cur
    exp_cur = pooled * (n_cur / n_all)
    exp_ref = pooled * ((n_all - n_cur) / n_all)
    sim = ((sim_cur - exp_cur) ** 2 / exp_cur).sum(axis=1) + ((sim_ref - exp_ref) ** 2 / exp_ref).sum(axis=1)
    observed = ((c - exp_cur) ** 2 / exp_cur).sum() + ((r - exp_ref) ** 2 / exp_ref).sum()
    # compare like with like (uncorrected Pearson); tolerance for float noise in equal tables
    hits = int(np.sum(sim >= observed - 1e-9 * max(1.0, observed)))
    return (hits + 1) / (draws + 1)


def ztest_two_proportions(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pooled two-proportion z-test on the share of the first category; (z, two-sided p)."""
    n1, n2 = float(ref_counts.sum()), float(cur_counts.sum())
    x1, x2 = float(ref_counts[0]), float(cur_counts[0])
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def sparse_table(ref_counts: np.ndarray, cur_counts: np.ndarray) -> bool:
    """Cochran's rule broken: some expected count < 1, or more than 20% of them < 5."""
    keep = (ref_counts + cur_counts) > 0
    pooled = (ref_counts + cur_counts)[keep].astype(np.float64)
    n1, n2 = float(ref_counts.sum()), float(cur_counts.sum())
    expected = np.concatenate([pooled * n1 / (n1 + n2), pooled * n2 / (n1 + n2)])
    return bool(expected.min() < 1 or np.mean(expected < 5) > 0.2)


# --------------------------------------------------------------------------- multiple testing


def adjust_pvalues(pvalues: list[float], correction: str) -> list[float]:
    """Benjamini-Hochberg ('bh'), Holm ('holm'), Bonferroni ('bonferroni') or none ('none')."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0 or correction == "none":
        return p.tolist()
    if correction == "bonferroni":
        return np.minimum(p * m, 1.0).tolist()
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if correction == "bh":
        adj = ranked * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
    elif correction == "holm":
        adj = ranked * (m - np.arange(m))
        adj = np.maximum.accumulate(adj)
    else:
        raise ValueError(f"unknown correction {correction!r}")
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out.tolist()
