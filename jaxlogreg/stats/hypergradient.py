"""The penalty chosen by gradient steps on the cross-validated log-loss, not by a grid.

With ρ = log C (one number, one per feature, or one per group of features, C_j = exp ρ_j), each
fold f's model is θ_f(ρ) = :func:`~jaxlogreg.stats.solve.solve` on its training rows (a weight
mask: every fold has the same shapes, so the folds are one ``vmap``), and

    V(ρ) = Σ_f Σ_{i ∈ test_f} s_i L_i(θ_f(ρ)) / Σ_f Σ_{i ∈ test_f} s_i

is minimised by L-BFGS (``optax.scale_by_lbfgs``) with backtracking. ∇V needs one solve per fold
and one linear solve with each fold's factored Hessian (implicit differentiation), so one
evaluation costs about one fit per fold; each starts from the last accepted models. Per-feature
strengths are a change of variables: ``w_j ||w_j||²/(2 C_j)`` is ``||u||²/2`` with
``x_j ← x_j √C_j`` and ``w_j = u_j √C_j``, so the derivative flows through ∂θ/∂X.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.model_selection import check_cv

from jaxlogreg.core import checks as v
from jaxlogreg.core.loss import forward_t, per_example_loss_t
from jaxlogreg.core.model import Params
from jaxlogreg.stats.solve import solve

_MAX_STEP = 3.0  # the largest change of any log C in one step (a factor e³ ≈ 20)
_ARMIJO = 1e-4
_FTOL = 1e-6  # stop once a step lowers the loss by less than this, relative


class PenaltySearch(NamedTuple):
    """The result of :func:`tune_penalty`: ``C`` (a float, or (n_features,) per feature or
    group), its cross-validated ``log_loss``, the C, log-loss and folds' models of every
    evaluation (``trace_C``, ``trace_loss``, ``trace_params`` with leading axes (evaluations,
    folds)), ``n_solves`` (solves per fold, = evaluations), the folds' models at ``C``
    (``params``, leading axis the folds) and the Newton steps ``n_iter`` (evaluations, folds)."""

    C: Any
    log_loss: float
    trace_C: list
    trace_loss: np.ndarray
    trace_params: Params
    n_solves: int
    params: Params
    n_iter: np.ndarray


def tune_penalty(X: Any, y: Any, *, cv: Any = 5, init_C: float = 1.0, per_feature: bool = False,
                 groups: Any = None, steps: int = 8, learning_rate: float = 1.0,
                 sample_weight: Any = None, fit_intercept: bool = True,
                 tol: float | None = None, max_iter: int = 100) -> PenaltySearch:
    """Minimise the cross-validated log-loss over log C by L-BFGS, one solve per fold a step.

    X (m, n) dense float; y (m,) integer class labels 0..K-1 (K = 2: binary). ``cv``: an int
    (stratified folds), a scikit-learn splitter or (train, test) index pairs. ``per_feature``:
    one C per feature; ``groups`` (n,) integer group of each feature: one C per group (given
    per feature in the result). ``steps``: evaluations (solves per fold) at most;
    ``learning_rate``: the first step's largest change of log C; ``tol``, ``max_iter``: each
    solve's (:func:`~jaxlogreg.stats.solve.solve`). Raises ValueError when the
    fit at ``init_C`` does not converge.
    """
    Xn, yn = v.as_array(X, "X"), v.as_array(y, "y")
    v.check_ndim(Xn, "X", 2, "(n_samples, n_features)")
    v.check_float_dtype(Xn, "X")
    v.check_finite(np.asarray(Xn), "X")
    v.check_length(yn, "y", Xn.shape[0])
    if not np.issubdtype(np.asarray(yn).dtype, np.integer) or np.min(yn) < 0:
        raise ValueError(f"y must hold integer class labels 0..K-1, got {v.describe(yn)}")
    K = int(np.max(yn)) + 1
    v.check_positive(init_C, "init_C")
    v.check_positive(learning_rate, "learning_rate")
    steps = v.check_int_at_least(steps, "steps", 1)
    index = _penalty_index(Xn.shape[1], per_feature, groups)
    train, test = _fold_masks(cv, Xn, yn)
    s = np.ones(Xn.shape[0]) if sample_weight is None else np.asarray(
        v.check_sample_weight(sample_weight, Xn.shape[0]))
    X = jnp.asarray(Xn)
    data = (X, jnp.asarray(yn), jnp.asarray(s, X.dtype), jnp.asarray(train, X.dtype),
            jnp.asarray(test, X.dtype))
    n_classes = None if K <= 2 else K
    evaluate = jax.jit(jax.value_and_grad(
        lambda rho, w0, data: _cv_loss(rho, w0, data, index, n_classes, fit_intercept, tol,
                                       max_iter),
        has_aux=True))
    size = 1 if index is None else int(np.max(index)) + 1
    rho = jnp.full(() if index is None else (size,), np.log(init_C), X.dtype)
    shape = (Xn.shape[1],) if K <= 2 else (Xn.shape[1], K)
    b_shape = () if K <= 2 else (K,)
    F = train.shape[0]
    models = Params(jnp.zeros((F, *shape), X.dtype), jnp.zeros((F, *b_shape), X.dtype))
    return _lbfgs(evaluate, rho, models, data, steps, learning_rate, index)


def _penalty_index(n: int, per_feature: bool, groups: Any) -> np.ndarray | None:
    """(n,) the penalty of each feature (None: one C for all)."""
    if groups is None:
        return np.arange(n) if per_feature else None
    if per_feature:
        raise ValueError("per_feature=True and groups are exclusive: give one of them")
    groups = np.asarray(groups)
    if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer) or groups.min() < 0:
        raise ValueError(f"groups must be (n_features,) = ({n},) integer group ids >= 0, got "
                         f"{v.describe(groups)}")
    return np.unique(groups, return_inverse=True)[1].reshape(n)


def _fold_masks(cv: Any, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(F, m) 0/1 masks of each fold's training and test rows."""
    try:
        splits = list(check_cv(cv, y, classifier=True).split(X, y))
    except (TypeError, ValueError) as err:
        raise ValueError(f"cv must be an int >= 2, a splitter or (train, test) pairs; {cv!r} "
                         f"failed: {err}") from None
    masks = np.zeros((2, len(splits), X.shape[0]))
    for f, (train, held_out) in enumerate(splits):
        masks[0, f, train], masks[1, f, held_out] = 1, 1
    if not masks[1].any(axis=1).all():
        raise ValueError("cv must give every fold some test rows")
    return masks[0], masks[1]


def _cv_loss(rho: jax.Array, w0: Params, data: tuple, index: Any, n_classes: int | None,
             fit_intercept: bool, tol: float | None, max_iter: int) -> tuple[jax.Array, tuple]:
    """V(ρ) and (the folds' models in X's units, their Newton steps, all converged)."""
    X, y, s, train, test = data
    C = jnp.exp(rho)
    root = None if index is None else jnp.sqrt(C[index])
    Xs = X if root is None else X * root
    C_solve = C if root is None else 1.0

    def fold(train_f, w0_f):
        u0 = w0_f if root is None else _times(w0_f, 1 / root)
        return solve(Xs, y, C=C_solve, sample_weight=s * train_f, n_classes=n_classes,
                     fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                     init=jax.lax.stop_gradient(u0),
                     return_info=True)

    models, info = jax.vmap(fold)(train, w0)
    z = jax.vmap(lambda p: forward_t(p, Xs.T))(models)
    losses = jax.vmap(lambda z_f: per_example_loss_t(z_f, y))(z)  # (F, m)
    value = jnp.sum(test * s * losses) / jnp.sum(test * s)
    in_X_units = models if root is None else jax.vmap(lambda p: _times(p, root))(models)
    return value, (in_X_units, info.n_iter, jnp.all(info.converged))


def _times(params: Params, factor: jax.Array) -> Params:
    """w scaled per feature (``factor`` (n,)), b as is."""
    w = params.w * (factor if params.w.ndim == 1 else factor[:, None])
    return Params(w, params.b)


def _lbfgs(evaluate: Any, rho: jax.Array, models: Params, data: tuple, steps: int,
           learning_rate: float, index: Any) -> PenaltySearch:
    """L-BFGS directions with backtracking; every evaluation is one solve per fold."""
    def run(at, start):
        (value, (fitted, n_iter, ok)), grad = evaluate(at, start, data)
        trace_C.append(_as_C(at, index))
        trace_loss.append(float(value))
        iters.append(np.asarray(n_iter))
        fits.append(jax.tree.map(np.asarray, fitted))
        good = bool(ok) and np.isfinite(float(value))
        return float(value), grad, fitted, good

    trace_C, trace_loss, iters, fits = [], [], [], []
    value, grad, models, ok = run(rho, models)
    if not ok:
        raise ValueError(f"tune_penalty: the fit at init_C={trace_C[0]} did not converge on "
                         "some fold; choose a smaller init_C or standardize X")
    optimizer = optax.scale_by_lbfgs()
    state = optimizer.init(rho)
    first = True
    while len(trace_loss) < steps:
        direction, state = optimizer.update(grad, state, rho)
        size = float(jnp.max(jnp.abs(direction)))
        slope = float(jnp.vdot(grad, direction))
        if first or not slope > 0:  # the first step, or no descent direction: the gradient
            direction, size = grad, float(jnp.max(jnp.abs(grad)))
            direction = direction * (learning_rate / size) if size > 0 else direction
        elif size > _MAX_STEP:
            direction = direction * (_MAX_STEP / size)
        slope = float(jnp.vdot(grad, direction))
        if not slope > 0:
            break  # the gradient is 0: a stationary point
        first, t, moved = False, 1.0, False
        while len(trace_loss) < steps:
            trial = rho - t * direction
            value_t, grad_t, models_t, ok = run(trial, models)
            if ok and value_t <= value - _ARMIJO * t * slope:
                gain = value - value_t
                rho, value, grad, models, moved = trial, value_t, grad_t, models_t, True
                break
            t /= 2
        if not moved or gain <= _FTOL * value:
            break
    return PenaltySearch(C=_as_C(rho, index), log_loss=value, trace_C=trace_C,
                         trace_loss=np.asarray(trace_loss),
                         trace_params=jax.tree.map(lambda *a: np.stack(a), *fits),
                         n_solves=len(trace_loss),
                         params=models, n_iter=np.stack(iters))


def _as_C(rho: jax.Array, index: Any) -> Any:
    """C as a float (one C) or per feature (n,)."""
    C = np.exp(np.asarray(rho, np.float64))
    return float(C) if index is None else C[index]


__all__ = ["PenaltySearch", "tune_penalty"]
