"""``LogisticRegressionCV(search="gradient")``: C chosen by gradient steps on the
cross-validated log-loss (:func:`jaxlogreg.stats.hypergradient.tune_penalty`), not by a grid.

The result has the grid path's layout, its "grid" being the Cs the search evaluated, in order:
each evaluation is one model per fold, scored like the grid's; the refit is one more solve on
all rows at the C found. Weights stay relative to the largest (the problem's): the search runs
on ``C κ``, κ = Σ s / Σ s_rel, which is the same objective (``C Σ s L = C κ Σ s_rel L``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from jaxlogreg.core.loss import objective_t
from jaxlogreg.core.model import Params, float64_enabled
from jaxlogreg.estimators.cv_folds import Splits
from jaxlogreg.estimators.logistic import DivergenceError
from jaxlogreg.stats.hypergradient import tune_penalty
from jaxlogreg.stats.solve import solve
from jaxlogreg.training.path import PathResult
from jaxlogreg.training.problem import Problem


class GradientSearch(NamedTuple):
    """The evaluated ``Cs`` (in order), ``C_`` found, the ``final`` model, its ``loss`` (None
    without refit) and the folds' models as a :class:`PathResult` ``[fold, evaluation]``."""

    Cs: np.ndarray
    C: float
    final: Params
    loss: float | None
    path: PathResult


def start_C(Cs: np.ndarray) -> float:
    """Where the search starts: the geometric mean of the smallest and largest finite Cs (1.0
    for an int Cs, the middle of ``np.logspace(-4, 4, Cs)``)."""
    finite = Cs[np.isfinite(Cs)]
    return 1.0 if finite.size == 0 else float(np.sqrt(finite.min() * finite.max()))


def gradient_search(problem: Problem, splits: Splits, Cs: np.ndarray, *, fit_intercept: bool,
                    max_iter: int, refit: bool) -> GradientSearch:
    """Search C from :func:`start_C`; then refit on all rows (``refit``) or average the folds'
    models at the C found."""
    if not isinstance(problem.X, np.ndarray | jax.Array):
        raise TypeError("search='gradient' needs a dense X (its solves factor the Hessian); "
                         f"got {type(problem.X).__name__}: use X.toarray() or search='grid'")
    X = np.asarray(problem.X, problem.dtype)
    rel = problem.weights
    kappa = 1.0 if rel is None else problem.weight_sum / float(np.sum(rel))
    n_classes = None if problem.n_classes == 2 else problem.n_classes
    with float64_enabled(problem.dtype == "float64"):
        found = tune_penalty(X, problem.y, cv=splits, init_C=start_C(Cs) * kappa,
                             sample_weight=rel, fit_intercept=fit_intercept, max_iter=max_iter)
        C = found.C / kappa
        if refit:
            final, info = solve(X, problem.y, C=found.C, sample_weight=rel, n_classes=n_classes,
                                fit_intercept=fit_intercept, max_iter=max_iter,
                                return_info=True)
            final = Params(np.asarray(final.w), np.asarray(final.b))
            if not bool(info.converged):
                raise DivergenceError(f"LogisticRegressionCV: the refit at C={C:g} did not "
                                      f"converge in max_iter={max_iter} Newton steps")
            loss = float(objective_t(final, X.T, problem.y, rel, 1 / (C * problem.weight_sum)))
        else:
            final, loss = Params(*(np.asarray(a).mean(axis=0) for a in found.params)), None
    W, B = (np.swapaxes(a, 0, 1) for a in found.trace_params)  # (folds, evaluations, ...)
    n_iter = found.n_iter.T
    path = PathResult(params=Params(W, B), loss=np.full(n_iter.shape, np.nan), n_iter=n_iter,
                      converged=np.isfinite(W).reshape(*n_iter.shape, -1).all(-1),
                      stalled=np.zeros(n_iter.shape, bool), Cs=np.asarray(found.trace_C) / kappa,
                      l2=np.full(n_iter.shape, np.nan))
    return GradientSearch(path.Cs, C, final, loss, path)


__all__ = ["GradientSearch", "gradient_search", "start_C"]
