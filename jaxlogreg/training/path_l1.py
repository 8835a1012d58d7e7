"""L1 and elastic-net regularization paths: every (fold, C, l1_ratio) model, warm-started along C.

For fold f and L1 share r, the model of each C minimises on the fold's training rows::

    J(w, b) = Σ s_i L_i / Σ s_i + λ₁ ||w||₁ + λ₂/2 ||w||²,  λ₁ = r / (C Σ s), λ₂ = (1 - r) / (C Σ s)

(scikit-learn's ``C Σ s L + r ||w||₁ + (1 - r)/2 ||w||²``). The Cs of a (fold, r) are fitted from
the largest penalty down, each from the previous solution (warm start; binary: in float64 with
its dual point, the first working set screened by the strong rule). Where λ₁ >= λ_max =
max|∇_w f(0, b*)| (b* the intercept-only optimum) the optimum is w = 0 exactly: it is set, not
solved. Models with an L1 part go to :func:`~.working_set.solve` (binary) or
:func:`~.working_set_softmax.solve` (K > 2 classes, with the native library): working sets, a
certified duality gap ``<= tol · J``, exact zeros, on the fold's host X laid out once; the others
(r = 0, C = inf; softmax without the library) to the fit pipeline, solver "proximal" with an L1
part (as scikit-learn's saga), "lbfgs" without. Each fold's rows are sliced out once, one fold
at a time.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import sys
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.kernels.native_cd import HostX
from jaxlogreg.runtime.env import usable_cores
from jaxlogreg.training import working_set, working_set_softmax
from jaxlogreg.training.data import device_data
from jaxlogreg.training.pipeline import run_fit
from jaxlogreg.training.problem import Problem, check_penalty
from jaxlogreg.training.settings import MAX_ITER_LIMIT, TrainConfig

PENALTIES = ("l2", "l1", "elasticnet")


class L1PathResult(NamedTuple):
    """Every model of an L1 / elastic-net path, indexed ``[fold, C, l1_ratio]``.

    Attributes:
      params: ``w`` (F, C, R, n) and ``b`` (F, C, R) (binary), or (F, C, R, n, K), (F, C, R, K).
      loss: (F, C, R) J of each model on its training rows.
      n_iter: (F, C, R) working-set rounds (host solvers) or iterations (pipeline); 0 where w = 0
        was set from λ_max.
      converged: (F, C, R) whether the model met ``tol``.
      Cs: (C,); l1_ratios: (R,); l1, l2: (F, C, R) the λ₁ and λ₂ of each model.
    """

    params: Params
    loss: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    Cs: np.ndarray
    l1_ratios: np.ndarray
    l1: np.ndarray
    l2: np.ndarray


def check_l1_ratios(penalty: Any, l1_ratios: Any) -> np.ndarray | None:
    """The L1 shares of a path: None for "l2" (``l1_ratios`` must be None), ``[1.0]`` for "l1"
    (``l1_ratios`` must be None), the given non-empty list of numbers in [0, 1] for
    "elasticnet". Errors name ``penalty`` or ``l1_ratios``."""
    v.check_choice(penalty, "penalty", PENALTIES)
    if penalty != "elasticnet":
        if l1_ratios is not None:
            raise ValueError(f"l1_ratios is only used with penalty='elasticnet'; got l1_ratios="
                             f"{v.show(l1_ratios)} with penalty={penalty!r}")
        return None if penalty == "l2" else np.ones(1)
    hint = "a non-empty list of numbers in [0, 1] with penalty='elasticnet'"
    if l1_ratios is None or isinstance(l1_ratios, str | bytes | dict):
        raise ValueError(f"l1_ratios must be {hint}, got {v.show(l1_ratios)}")
    values = list(np.ravel(np.asarray(l1_ratios, dtype=object)))
    bad = [r for r in values if not isinstance(r, Real) or isinstance(r, bool)
           or not 0 <= float(r) <= 1]
    if not values or bad:
        raise ValueError(f"l1_ratios must be {hint}, got {v.show(l1_ratios)}")
    return np.asarray(values, np.float64)


def fold_weight_sum(problem: Problem, rows: np.ndarray) -> float:
    """The penalty's ``Σ s`` on ``rows`` (:func:`fold_problem`'s), without copying X;
    ValueError when those rows all weigh 0."""
    if problem.weights is None:
        return float(rows.size)
    weights = problem.weights[rows]
    if not float(weights.max(initial=0.0)) > 0:
        raise ValueError("every fold needs training rows of positive weight, got a fold whose "
                         f"{rows.size} training rows all weigh 0")
    return float(weights.sum()) * (problem.weight_sum / float(problem.weights.sum()))


def fold_problem(problem: Problem, rows: np.ndarray) -> Problem:
    """The problem on ``rows`` only (a copy of those rows of X): weights relative to the fold's
    largest, their true sum beside (the penalty's ``Σ s`` is the fold's)."""
    X = problem.X[rows] if sp.issparse(problem.X) else np.asarray(problem.X)[rows]
    weight_sum = fold_weight_sum(problem, rows)
    if problem.weights is None:
        return dataclasses.replace(problem, X=X, y=problem.y[rows], weight_sum=weight_sum)
    weights = problem.weights[rows]
    return dataclasses.replace(problem, X=X, y=problem.y[rows], weights=weights / weights.max(),
                               weight_sum=weight_sum)


def _normalised_weights(problem: Problem) -> np.ndarray:
    m = problem.X.shape[0]
    s = np.ones(m) if problem.weights is None else problem.weights
    return s / s.sum()


def null_model(problem: Problem, fit_intercept: bool, rmatvec: Any = None
               ) -> tuple[Params, float, float] | None:
    """The optimum with w = 0 (b* the intercept-only optimum, 0 without intercept), its J
    without penalty, and λ_max = max|∇_w f(0, b*)|: the smallest λ₁ whose optimum is w = 0.
    None when b* is infinite (a class has no weight on these rows). ``rmatvec(U) = XᵀU``
    (None: SciPy's or NumPy's product)."""
    s, y, K = _normalised_weights(problem), problem.y, problem.n_classes
    n = problem.X.shape[1]
    Y = np.eye(K)[y] if K > 2 else y[:, None].astype(np.float64)  # (m, K) or (m, 1)
    share = s @ Y
    if fit_intercept and not np.all((share > 0) & (share < 1) if K == 2 else share > 0):
        return None
    if K == 2:
        p = share if fit_intercept else np.full(1, 0.5)
        b = np.log(p[0]) - np.log1p(-p[0])
        loss = float(s @ (np.logaddexp(0.0, b) - y * b))
        params = Params(np.zeros(n), np.asarray(b))
    else:
        b = np.log(share) - np.mean(np.log(share)) if fit_intercept else np.zeros(K)
        p = np.exp(b - logsumexp(b))
        loss = float(logsumexp(b) - s @ (Y @ b))
        params = Params(np.zeros((n, K)), b)
    residual = s[:, None] * (p[None, :] - Y)
    grad = np.asarray(problem.X.T @ residual if rmatvec is None else rmatvec(residual))
    return params, loss, float(np.max(np.abs(grad), initial=0.0))


def _pipeline_config(C: float, ratio: float, fit_intercept: bool, tol: float, max_iter: int,
                     dtype: str, grad: str) -> TrainConfig:
    """The settings of one model fitted by the pipeline: "proximal" with an L1 part."""
    if ratio == 0 or math.isinf(C):
        penalty, l1_ratio, solver = "l2", None, "lbfgs"
    else:
        penalty, l1_ratio = ("l1", None) if ratio == 1 else ("elasticnet", float(ratio))
        solver = "proximal"
    return TrainConfig(C=float(C), penalty=penalty, l1_ratio=l1_ratio, solver=solver,
                       fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, dtype=dtype,
                       grad=grad)


class _Fold:
    """One fold's data, fitted point by point: the host working-set solvers for L1 parts (on
    the fold's host X, laid out once), the pipeline (on its device data, laid out once)
    otherwise."""

    def __init__(self, problem: Problem, fit_intercept: bool, tol: float, max_iter: int,
                 grad: str):
        self.problem, self.fit_intercept, self.tol, self.max_iter = (problem, fit_intercept,
                                                                     tol, max_iter)
        self.grad, self._data, self._host = grad, None, HostX.of(problem.X, checked=True)
        self._last: working_set.Result | None = None  # the last model, if a binary solve's
        self.null = null_model(problem, fit_intercept, self._host.rmatvec)
        self.dtype = np.dtype(accumulation_dtype(problem.dtype))

    def fit(self, C: float, ratio: float, l1: float, l2: float, start: Params | None,
            l1_start: float | None = None) -> tuple[Params, float, int, bool]:
        """(params, J, iterations, converged) of the model at (C, ratio) from ``start``;
        ``l1_start``: start is the optimum at that λ₁ (the path's previous model), which
        screens the first working set (binary: :func:`~.working_set.strong_rule`)."""
        last, self._last = self._last, None
        if self.null is not None and l1 > 0 and l1 >= self.null[2]:
            params, loss, _ = self.null
            return self._cast(params), loss, 0, True
        p = self.problem
        if p.n_classes == 2 and l1 > 0:
            return self._fit_binary(l1, l2, start, l1_start, last)
        if l1 > 0 and self._host.use_native:
            W0, b0 = (None, None) if start is None else (start.w, start.b)
            r = working_set_softmax.solve(self._host, p.y, p.weights, l1, l2,
                                          fit_intercept=self.fit_intercept, tol=self.tol,
                                          max_iter=self.max_iter, W0=W0, b0=b0,
                                          n_classes=p.n_classes)
            return self._cast(Params(r.W, r.b)), r.objective, r.rounds, r.status == "converged"
        if self._data is None:
            self._data = device_data(p, None, bucket=True, grad=self.grad)
        config = _pipeline_config(C, ratio, self.fit_intercept, self.tol, self.max_iter,
                                  p.dtype, self.grad)
        result = run_fit(self._data, config, init_params=start)
        return self._cast(result.params), result.loss, result.n_iter, result.converged

    def _fit_binary(self, l1: float, l2: float, start: Params | None, l1_start: float | None,
                    last: working_set.Result | None) -> tuple[Params, float, int, bool]:
        """:meth:`fit` by :func:`~.working_set.solve`; on a path (``l1_start``), from the last
        model in float64 and its dual point (``last``, when it was solved)."""
        p, w0, b0, dual0 = self.problem, None, 0.0, None
        if start is None:
            l1_start = None
        elif l1_start is not None and last is not None:
            w0, b0, dual0 = last.w, last.b, last.dual
        else:
            w0, b0 = start.w, float(start.b)
        if l1_start is not None and self.null is not None:  # w = 0 is optimal down to λ_max
            l1_start = min(l1_start, self.null[2])
        r = working_set.solve(self._host, p.y, p.weights, l1, l2,
                              fit_intercept=self.fit_intercept, tol=self.tol,
                              max_iter=self.max_iter, w0=w0, b0=b0, l1_start=l1_start,
                              dual0=dual0)
        self._last = r
        return self._cast(Params(r.w, r.b)), r.objective, r.rounds, r.status == "converged"

    def _cast(self, params: Params) -> Params:
        return Params(np.asarray(params.w, self.dtype), np.asarray(params.b, self.dtype))


def _strengths(Cs: np.ndarray, ratios: np.ndarray, weight_sums: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """λ₁ and λ₂ (F, C, R) of every model; 0 for C = inf."""
    with np.errstate(divide="ignore"):
        base = np.where(np.isinf(Cs)[None, :], 0.0, 1.0 / (weight_sums[:, None] * Cs[None, :]))
    return base[..., None] * ratios, base[..., None] * (1.0 - ratios)


def l1_path_of(problem: Problem, Cs: np.ndarray, l1_ratios: np.ndarray, masks: np.ndarray, *,
               fit_intercept: bool = True, tol: float = 1e-6, max_iter: int = 500,
               grad: str = "manual", verbose: int = 0, n_jobs: int | None = None
               ) -> L1PathResult:
    """The L1 / elastic-net path on checked data: ``Cs`` (C,) > 0, ``l1_ratios`` (R,) in
    [0, 1], ``masks`` (F, m) the training rows of each fold (the estimator's route).
    ``n_jobs`` folds at a time, in threads (scikit-learn's meaning: None is 1, -1 every CPU;
    the C solver and NumPy release the GIL), each holding its copy of X's rows; the models do
    not depend on it."""
    tol = v.check_positive(tol, "tol", allow_zero=True)
    max_iter = v.check_int_at_least(max_iter, "max_iter", 1, MAX_ITER_LIMIT)
    v.check_choice(grad, "grad", ("manual", "autodiff"))
    workers = check_n_jobs(n_jobs)
    folds = [np.flatnonzero(mask) for mask in masks]
    everything = masks.shape[1]  # a fold of every row is the problem itself
    weight_sums = np.array([problem.weight_sum if rows.size == everything else
                            fold_weight_sum(problem, rows) for rows in folds])
    l1, l2 = _strengths(Cs, l1_ratios, weight_sums)
    check_penalty(l1 + l2, np.broadcast_to(Cs[None, :, None], l1.shape), problem.weight_sum,
                  problem.dtype)
    F = l1.shape[0]

    def fold_path(f: int) -> list[list[Any]]:
        rows = folds[f]
        fold_data = problem if rows.size == everything else fold_problem(problem, rows)
        return _fold_path(_Fold(fold_data, fit_intercept, tol, max_iter, grad), Cs, l1_ratios,
                          l1[f], l2[f], f"fold {f + 1}/{F}" if verbose else None)

    if workers == 1 or F == 1:
        fitted = [fold_path(f) for f in range(F)]  # one fold's copy of X at a time
    else:
        with concurrent.futures.ThreadPoolExecutor(min(workers, F)) as pool:
            fitted = list(pool.map(fold_path, range(F)))
    return _collect(fitted, Cs, l1_ratios, l1, l2)


def check_n_jobs(n_jobs: Any) -> int:
    """The number of threads ``n_jobs`` asks for (scikit-learn's meaning: None is 1, -1 every
    CPU, -2 all but one), after checking it is a non-zero integer."""
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral)
                               or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer (-1: every CPU), got "
                         f"{n_jobs!r}")
    if n_jobs is None or n_jobs > 0:
        return 1 if n_jobs is None else int(n_jobs)
    return max(1, usable_cores() + 1 + int(n_jobs))


def _fold_path(fold: _Fold, Cs: np.ndarray, l1_ratios: np.ndarray, l1: np.ndarray,
               l2: np.ndarray, name: str | None) -> list[list[Any]]:
    """One fold's models ``[C][l1_ratio]``: for each r, the Cs from the largest penalty down,
    each from the previous model; ``name``: print a line per r on stderr."""
    order = np.argsort(Cs, kind="stable")  # the largest penalty first
    fitted: list[list[Any]] = [[None] * l1_ratios.shape[0] for _ in range(Cs.shape[0])]
    for r, ratio in enumerate(l1_ratios):
        start, l1_start = None, None
        for c in order:
            fitted[c][r] = fold.fit(Cs[c], ratio, l1[c, r], l2[c, r], start, l1_start)
            start, l1_start = fitted[c][r][0], l1[c, r]
        if name is not None:
            nonzero = int(np.count_nonzero(start.w))
            print(f"L1 path: {name}, l1_ratio={ratio:g}: {Cs.shape[0]} Cs, {nonzero} non-zero "
                  f"weights at C={Cs[order[-1]]:g}", file=sys.stderr)
    return fitted


def _collect(fitted: list, Cs: np.ndarray, l1_ratios: np.ndarray, l1: np.ndarray,
             l2: np.ndarray) -> L1PathResult:
    flat = [point for fold in fitted for row in fold for point in row]
    shape = l1.shape
    W = np.stack([p[0].w for p in flat]).reshape(*shape, *flat[0][0].w.shape)
    B = np.stack([p[0].b for p in flat]).reshape(*shape, *flat[0][0].b.shape)
    return L1PathResult(
        params=Params(W, B),
        loss=np.array([p[1] for p in flat], np.float64).reshape(shape),
        n_iter=np.array([p[2] for p in flat], np.int32).reshape(shape),
        converged=np.array([p[3] for p in flat], bool).reshape(shape),
        Cs=Cs, l1_ratios=l1_ratios, l1=l1, l2=l2,
    )


def fit_l1_path(problem: Problem, Cs: np.ndarray, penalty: str, l1_ratios: Sequence[float] | None,
                masks: np.ndarray, **options: Any) -> L1PathResult:
    """:func:`l1_path_of` for ``penalty`` "l1" (``l1_ratios`` None) or "elasticnet"."""
    ratios = check_l1_ratios(penalty, l1_ratios)
    if ratios is None:
        raise ValueError("penalty must be 'l1' or 'elasticnet' for an L1 path, got 'l2'")
    return l1_path_of(problem, Cs, ratios, masks, **options)


def fit_point(problem: Problem, C: float, ratio: float, start: Params | None, *,
              fit_intercept: bool, tol: float, max_iter: int, grad: str = "manual"
              ) -> tuple[Params, float, int, bool]:
    """One model of the path on all of ``problem``'s rows, from ``start`` (the estimator's
    refit): ``(params, J, iterations, converged)``."""
    base = 0.0 if math.isinf(C) else 1.0 / (C * problem.weight_sum)
    fold = _Fold(problem, fit_intercept, tol, max_iter, grad)
    return fold.fit(C, ratio, base * ratio, base * (1.0 - ratio), start)
