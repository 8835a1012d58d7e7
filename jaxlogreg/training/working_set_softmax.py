"""Multinomial L1 / elastic-net fits to a certified optimum: working sets, block proximal Newton.

Minimises ``J(W, b) = Σ_i s_i (logsumexp(Z_i) - Z_iy_i) + λ₁ ||W||₁ + λ₂/2 ||W||²``, ``Z = XW +
b``, W (n, K), b (K,) unpenalised (Σ s = 1). With the other classes fixed, J in class k's logits
is a binary logistic loss with an offset: ``Σ_i s_i (softplus(Z_ik - o_ik) - [y_i = k] (Z_ik -
o_ik)) + const``, ``o_ik = logsumexp_{j≠k} Z_ij``. Each round solves J on a working set of
features (non-zero in some class, then the largest KKT violations, max over classes; grown as in
:mod:`~.working_set`) by cyclic block minimisation over the classes, on each block that binary
problem a proximal Newton step in C on X_W's columns (:func:`~.native_cd.solve_subproblem`),
until a pass moves no block (each block's KKT violation within the round's tolerance). J is
convex and the penalty separable by class, so the passes converge. b is free up to a shift b + c1
(softmax is invariant): it is returned centred. Stops on the softmax duality gap
(:mod:`~.certificate`), statuses as :func:`~.working_set.solve`. Needs the native library.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import softmax

from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.kernels.native_cd import Columns, HostX, solve_subproblem
from jaxlogreg.training.problem import Problem, check_penalty
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.working_set import (
    NEWTON,
    P0,
    Rounds,
    duality_gap,
    kkt_violation,
    outside_violation,
    working_set_size,
)

BLOCK_NEWTON = NEWTON._replace(max_newton=1)  # Newton steps per block and pass (a pass is cheap)
MAX_PASSES = 200  # passes over the classes per working set


class Result(NamedTuple):
    W: np.ndarray  # (n, K) float64
    b: np.ndarray  # (K,) float64, centred (zeros without intercept)
    status: str  # "converged", "max_iter" or "stalled"
    gap: float  # the softmax duality gap at (W, b), an upper bound on J - J*
    objective: float
    rounds: int
    history: np.ndarray  # J at the start of each round


def _working_set(W: np.ndarray, grad: np.ndarray, l1: float, size: int
                 ) -> tuple[np.ndarray, int, np.ndarray]:
    """The next working set of features (sorted), its size and each feature's KKT violation
    (max over classes): the features non-zero in some class, then those nearest to
    violating."""
    violation = np.max(kkt_violation(W, grad, l1), axis=1)
    support = np.any(W != 0, axis=1)
    n = W.shape[0]
    size = working_set_size(size, int(np.count_nonzero(support)),
                            int(np.count_nonzero(violation)), n)
    score = np.where(support, np.inf, np.max(np.abs(grad), axis=1) - l1)
    ws = np.sort(np.argpartition(-score, size - 1)[:size]) if size < n else np.arange(n)
    return ws, size, violation


def _others(Z: np.ndarray, k: int) -> np.ndarray:
    """``logsumexp_{j≠k} Z_ij`` (m,): class k's offset (NumPy: SciPy's is slower on small Z)."""
    rest = np.delete(Z, k, axis=1)
    top = rest.max(axis=1)
    return top + np.log(np.sum(np.exp(rest - top[:, None]), axis=1))


def _solve_blocks(columns: Columns, labels: list[np.ndarray], s: np.ndarray, l1: float,
                  l2: float, fit_intercept: bool, V: np.ndarray, Z: np.ndarray,
                  tol: float) -> int:
    """Cyclic block minimisation of J on the working set: V (|W| + 1, K) (w_W per class, then
    b) and Z (m, K) updated in place; passes (at most :data:`MAX_PASSES`) until one in which
    every block is within ``tol`` of its KKT conditions. Returns the passes."""
    K = Z.shape[1]
    for passes in range(1, MAX_PASSES + 1):
        moved = False
        for k in range(K):
            offset = _others(Z, k)
            z = Z[:, k] - offset
            v = np.ascontiguousarray(V[:, k])
            if solve_subproblem(columns, labels[k], s, l1, l2, fit_intercept, v, z, tol,
                                BLOCK_NEWTON):
                moved = True
                V[:, k], Z[:, k] = v, z + offset
        if not moved:
            return passes
    return MAX_PASSES


def _check_labels(y: Any, m: int, n_classes: int | None) -> tuple[np.ndarray, int]:
    y = np.asarray(y)
    if y.shape != (m,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be ({m},) integer class indices, got shape {y.shape} and dtype "
                         f"{y.dtype}")
    K = int(y.max(initial=0)) + 1 if n_classes is None else int(n_classes)
    if K < 2 or (m and (int(y.min()) < 0 or int(y.max()) >= K)):
        raise ValueError(f"y must hold class indices in [0, {K}) (n_classes={n_classes}), got "
                         f"values in [{y.min(initial=0)}, {y.max(initial=0)}]")
    return y.astype(np.int64), K


def _start(a: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.array(a, np.float64)
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be a finite {shape} array, got shape {a.shape}")
    return a


def solve(X: Any, y: Any, s: np.ndarray | None, l1: float, l2: float = 0.0, *,
          fit_intercept: bool = True, tol: float = 1e-6, max_iter: int = 50,
          W0: np.ndarray | None = None, b0: np.ndarray | None = None,
          n_classes: int | None = None, native: bool | None = None) -> Result:
    """Minimise J (module docstring) for X (m, n) dense, scipy sparse or a :class:`HostX`, y (m,)
    class indices in [0, K) (K = ``n_classes``, else ``max(y) + 1``), weights s (m,) (normalised
    here; None: 1/m each) until ``gap <= tol · J``; warm start at (W0 (n, K), b0 (K,)).
    ``max_iter`` bounds the working-set rounds. ValueError without the native library (``native``
    None: whether it is available)."""
    host = X if isinstance(X, HostX) else HostX.of(X, native)
    if not host.use_native:
        raise ValueError("solver 'working_set' fits multinomial models with the native library "
                         "only, which is not available here; use solver='proximal'")
    m, n = host.shape
    y, K = _check_labels(y, m, n_classes)
    s = np.full(m, 1.0 / m) if s is None else np.asarray(s, np.float64) / np.sum(s)
    W = np.zeros((n, K)) if W0 is None else _start(W0, (n, K), "W0")
    b = np.zeros(K) if b0 is None or not fit_intercept else _start(b0, (K,), "b0")
    labels = [np.ascontiguousarray(y == k, np.float64) for k in range(K)]
    Y = np.stack(labels, axis=1)
    outer, rounds, status, ws_size = Rounds(), 0, "max_iter", P0
    J, gap, history, ws, columns = np.inf, np.inf, [], None, None
    Z = host.matvec(W, b)
    for rounds in range(max_iter + 1):
        J, gap, grad = duality_gap(host, y, s, W, b, l1, l2, fit_intercept, Z)
        history.append(J)
        if (status := outer.verdict(J, gap, tol, rounds, max_iter)) is not None:
            break
        last, (ws, ws_size, violation) = ws, _working_set(W, grad, l1, ws_size)
        worst = float(violation.max(initial=0.0))
        if fit_intercept:
            worst = max(worst, float(np.max(np.abs(s @ (softmax(Z, axis=1) - Y)))))
        if last is None or not np.array_equal(last, ws):
            earlier = host.reusable(last, columns)  # small: its columns are copied, not read
            columns = None  # else released before the next are read
            columns, earlier = host.columns(ws, earlier), None
        inner = outer.inner_tol(J, tol, worst, float(np.sum(np.abs(W))),
                                outside_violation(violation, np.any(W != 0, axis=1), last))
        V = np.vstack([W[ws], b[None, :]])
        _solve_blocks(columns, labels, s, l1, l2, fit_intercept, V, Z, inner)
        W = np.zeros((n, K))  # W is 0 outside the working set, which holds the support
        W[ws], b = V[:-1], V[-1].copy()
    return Result(W, b - np.mean(b), status, outer.gap, J, rounds, np.asarray(history))


def fit_problem(problem: Problem, config: TrainConfig, init_params: Params | None = None
                ) -> tuple[Params, int, np.ndarray, float, str]:
    """A multinomial fit of checked data with :func:`solve`, as
    :func:`~.working_set.fit_problem` runs a binary one: ``(params in the fit's dtype, rounds,
    J per round, J, status)``; ``init_params``: a checked warm start (NumPy arrays)."""
    l1, l2 = config.l1(problem.weight_sum), config.l2(problem.weight_sum)
    check_penalty(l1 + l2, config.C, problem.weight_sum, problem.dtype)
    W0, b0 = (None, None) if init_params is None else (init_params.w, init_params.b)
    r = solve(HostX.of(problem.X, checked=True), problem.y, problem.weights, l1, l2,
              fit_intercept=config.fit_intercept, tol=config.tol, max_iter=config.max_iter,
              W0=W0, b0=b0, n_classes=problem.n_classes)
    dtype = np.dtype(accumulation_dtype(problem.dtype))
    params = Params(r.W.astype(dtype), r.b.astype(dtype))
    return params, r.rounds, r.history.astype(dtype), r.objective, r.status
