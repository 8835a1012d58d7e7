"""A sparse binary problem with a few true non-zero weights, for the L1 tests of the working-set
solver and the certified stopping rule."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def sparse_l1_problem(m: int, n: int, *, density: float, n_true: int, seed: int = 0):
    """CSR X (m, n) of the given density; y drawn from a logistic model whose first
    ``min(n, n_true)`` weights are ±4 (the rest 0) and whose intercept is 0.3."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, n, density=density, random_state=seed, format="csr")
    w = np.zeros(n)
    w[:min(n, n_true)] = rng.choice([-4.0, 4.0], min(n, n_true))
    y = (rng.random(m) < 1 / (1 + np.exp(-(X @ w) - 0.3))).astype(np.int64)
    return X, y
