"""Shapley values of any model by antithetic permutation sampling, computed the way
``shap.PermutationExplainer`` computes them, in numpy only.

Why not call shap's explainer: its masker and its masked model are numba functions compiled on
first use, which costs 5-10 s in every server process (issue 11 measured 6.6 s for the first
row of a multi-class model), and it calls the model once per permutation. This module walks the
same permutations (the same random stream for the same seed, so values equal shap's to rounding:
``tests/test_explain_engine.py`` checks it) and evaluates all of a row's masked inputs in one
model call. Features are masked as whole columns of the matrix given, so when that matrix has one
column per original input column (see :mod:`mlops_mcp.core.explain.inputs`) each column's value is
its Shapley value as one player.

The estimate is exactly additive (``base + sum(values) == f(row)``: the forward pass of each
permutation telescopes from the background to the row) and converges to the interventional
Shapley values of ``f`` against the background as permutations grow.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: permutations per row when the model is fast enough (shap's default: 10, each walked forward and back)
PERMUTATIONS = 10
#: most model input rows evaluated in one call (bounds memory: rows x features floats)
CHUNK_ROWS = 60_000


def model_rows_per_row(n_features: int, background_rows: int, permutations: int) -> int:
    """Model input rows one explained row costs: (2 x features + 1) masked states per
    permutation, each evaluated on every background row."""
    return permutations * (2 * n_features + 1) * background_rows


def permutation_values(
    f: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray,
    background: np.ndarray,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(values (n, p, k), base (n, k)) for ``rows`` (n, p) against ``background`` (m, p).

    ``f`` maps an (r, p) matrix to outputs (r, k) (or (r,)). A feature whose value in the row
    equals its value in every background row cannot change the output and gets 0 (shap skips it
    the same way; equality here is exact, NaN equal to NaN, so masking never moves the output).
    The random stream is ``numpy.random.RandomState(seed)`` shuffling the varying features in
    place, as ``shap.PermutationExplainer(seed=seed)`` does, continued across rows.
    """
    rows = np.asarray(rows, dtype=float)
    background = np.asarray(background, dtype=float)
    if rows.ndim != 2 or background.ndim != 2 or rows.shape[1] != background.shape[1]:
        raise ValueError(
            f"rows {rows.shape} and background {background.shape} must be matrices with the same columns"
        )
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    n, p = rows.shape
    base_out = _as_2d(f(background))
    k = base_out.shape[1]
    base = np.repeat(base_out.mean(axis=0)[None, :], n, axis=0)
    values = np.zeros((n, p, k))
    rng = np.random.RandomState(seed)
    bg_nan = np.isnan(background)
    for i in range(n):
        x = rows[i]
        same = (background == x) | (bg_nan & np.isnan(x))
        inds = np.flatnonzero(~same.all(axis=0))
        q = len(inds)
        if q == 0:
            continue
        orders = np.empty((permutations, q), dtype=np.intp)
        for r in range(permutations):
            rng.shuffle(inds)
            orders[r] = inds
        # states of permutation r: 0 = all masked, s = first s features of the order on (s <= q),
        # then the same features switched off again in the same order (s > q)
        on = np.zeros((permutations, 2 * q + 1, p), dtype=bool)
        steps = np.arange(1, q + 1)
        for r in range(permutations):
            order = orders[r]
            rank = np.empty(p, dtype=np.intp)
            rank[:] = q + 1  # features that never vary stay masked
            rank[order] = np.arange(q)
            forward = rank[None, :] < steps[:, None]  # (q, p): state s has ranks < s on
            on[r, 1 : q + 1] = forward
            on[r, q + 1 :] = ~forward & (rank[None, :] < q)
        outputs = _evaluate(f, on.reshape(-1, p), x, background, k).reshape(permutations, 2 * q + 1, k)
        forward_delta = outputs[:, 1 : q + 1] - outputs[:, :q]  # (P, q, k): the s-th feature switched on
        backward_delta = outputs[:, q : 2 * q] - outputs[:, q + 1 :]  # the s-th feature switched off
        for r in range(permutations):
            np.add.at(values[i], orders[r], forward_delta[r] + backward_delta[r])
    values /= 2 * permutations
    return values, base


def _evaluate(
    f: Callable[[np.ndarray], np.ndarray], on: np.ndarray, x: np.ndarray, background: np.ndarray, k: int
) -> np.ndarray:
    """Mean output over the background of each masked state (states x k), in bounded chunks."""
    m, p = background.shape
    per_chunk = max(1, CHUNK_ROWS // m)
    out = np.empty((len(on), k))
    for start in range(0, len(on), per_chunk):
        block = on[start : start + per_chunk]
        states = np.where(block[:, None, :], x[None, None, :], background[None, :, :])
        result = _as_2d(f(states.reshape(-1, p)))
        out[start : start + len(block)] = result.reshape(len(block), m, k).mean(axis=1)
    return out


def _as_2d(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr.reshape(len(arr), -1)
