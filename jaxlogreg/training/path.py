"""Regularization paths and cross-validation in one program: every (fold, C) model at once.

Each model j = (fold f, C c) minimises its own objective on its own training rows, given as
sample weights (a fold's held-out rows weigh 0, so X is never copied)::

    J_j(w, b) = Σ_i s_ji L(z_ji, y_i) / Σ_i s_ji + λ_j/2 ||w||²,   λ_j = 1 / (C_c Σ_i s_ji)

All M = F·C models advance together, each iteration one pass over X as matrix products
(``Z = W Xt`` (M, m), ``dW = dZ Xtᵀ`` (M, n)). The solver is an L-BFGS made for batching
(:func:`_lbfgs_step`, kept apart from the loop's: docs/decisions.md): one evaluation per
iteration, the Armijo search folded into the iterations (a model whose trial fails halves its
step at the next one), so no model waits for the slowest. A model stops at ``max|∇J_j| <= tol``,
when its objective no longer changes, or after ``max_iter`` accepted steps, and is then frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlogreg import kernels
from jaxlogreg.core import checks as v
from jaxlogreg.core.loss import forward_t, l2_penalty, per_example_loss_t
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.core.sparse import CooMatrix
from jaxlogreg.training import mesh as mesh_layout
from jaxlogreg.training.data import bucketed_shape, device_data
from jaxlogreg.training.path_l1 import L1PathResult, check_l1_ratios, check_n_jobs, l1_path_of
from jaxlogreg.training.problem import Problem, check_penalty, row_indices, validate
from jaxlogreg.training.settings import MAX_ITER_LIMIT

ARMIJO = 1e-4  # sufficient decrease: J(x + t d) <= J(x) + ARMIJO t ∇J(x)·d (+ rounding)
ARMIJO_SLACK_ULPS = 4  # J within this many epsilons of the last J counts as no increase
MAX_HALVINGS = 40  # a model that cannot decrease J after this many halvings has stalled
MAX_STALLS = 10  # ... or that changed neither J nor max|∇J| in this many accepted steps in a row
LBFGS_MEMORY = 10  # the default L-BFGS history length (the pairs S, Y of each model)


class PathResult(NamedTuple):
    """Every model of :func:`fit_path`, indexed ``[fold, C]``.

    Attributes:
      params: ``w`` (F, C, n) and ``b`` (F, C) (binary), or (F, C, n, K) and (F, C, K).
      loss: (F, C) J of each model on its training rows at its parameters.
      n_iter: (F, C) accepted L-BFGS steps.
      converged: (F, C) whether the model met ``tol`` (max|∇J| <= tol) before ``max_iter``.
      stalled: (F, C) whether it stopped short of ``tol`` because it could make no more
        progress (J and max|∇J| unchanged for ``MAX_STALLS`` steps, or ``MAX_HALVINGS`` step
        halvings in a row): not converged.
      Cs: (C,) the inverse regularization strengths; l2: (F, C) the λ of each model.
    """

    params: Params
    loss: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    stalled: np.ndarray
    Cs: np.ndarray
    l2: np.ndarray


class _State(NamedTuple):
    x: jax.Array  # (M, p) trial point, flat (w, b)
    base: jax.Array  # (M, p) last accepted point
    base_value: jax.Array  # (M,)
    base_grad: jax.Array  # (M, p)
    direction: jax.Array  # (M, p)
    step: jax.Array  # (M,)
    halvings: jax.Array  # (M,) int32 halvings of the step in a row
    stalls: jax.Array  # (M,) int32 accepted steps in a row that changed neither J nor max|∇J|
    S: jax.Array  # (M, memory, p) past steps
    Y: jax.Array  # (M, memory, p) past gradient changes
    rho: jax.Array  # (M, memory)
    pairs: jax.Array  # (M,) int32 pairs stored
    started: jax.Array  # (M,) bool: base is an evaluated point
    n_iter: jax.Array  # (M,) int32 accepted steps
    done: jax.Array  # (M,) bool
    converged: jax.Array  # (M,) bool: met tol
    stalled: jax.Array  # (M,) bool: stopped short of tol, no more progress


def path_memory_bytes(n_models: int, m: int, n: int, n_classes: int, dtype: str,
                      nnz: int | None = None) -> int:
    """Bytes :func:`path_of` holds for ``n_models`` models at once (``memory=LBFGS_MEMORY``).

    Per model, with ``K' = 1`` (two classes) or K, ``p = n_pad K' + K'`` parameters and b bytes a
    value (the accumulation dtype): its :class:`_State`, ``(2 memory + 5) p`` values (S, Y, x,
    base, base_grad, direction and the new gradient); and per row, the host's float64 weights
    and their cast (``(8 + b) m`` bytes), the device's scale, logits, probabilities and their
    gradient (``(1 + 3 K') m_pad`` values)."""
    m_pad, n_pad = bucketed_shape(m, n, minibatch=False, nnz=nnz)
    k = 1 if n_classes == 2 else n_classes
    p = n_pad * k + k
    b = np.dtype(accumulation_dtype(dtype)).itemsize
    per_model = (2 * LBFGS_MEMORY + 5) * p * b + (8 + b) * m + (1 + 3 * k) * m_pad * b
    return int(n_models) * per_model


def _unflatten(x: jax.Array, n: int, k: int | None) -> tuple[jax.Array, jax.Array]:
    """Flat (M, p) parameters -> W (M, n) and b (M,), or W (M, n, K) and b (M, K)."""
    if k is None:
        return x[:, :n], x[:, n]
    return x[:, : n * k].reshape(-1, n, k), x[:, n * k :]


def batched_value_and_grad(x, Xt, y, scale, l2, n, k, fit_intercept):
    """J (M,) and flat ∇J (M, p) of every model: the kernel table's gradient for M models side
    by side (XLA's, :func:`jaxlogreg.core.gradients.value_and_grad_t` with a leading axis of
    models), which reads Xt (n, m) once for all of them (``Z = W Xt``, ``dW = dZ Xtᵀ``: two
    matrix products, or gathers and segment sums for sparse X).

    ``scale`` (M, m): each model's ``s_ji / Σ_i s_ji``; ``l2`` (M,)."""
    shape = kernels.Shape(Xt.shape[0], Xt.shape[1], 2 if k is None else k, Xt.dtype, x.dtype,
                          jax.default_backend(), sparse=isinstance(Xt, CooMatrix),
                          models=x.shape[0])
    J, grads = kernels.choose(shape).value_and_grad(Params(*_unflatten(x, n, k)), Xt, y, scale,
                                                    l2, models=True)
    db = grads.b if fit_intercept else jnp.zeros_like(grads.b)
    M = x.shape[0]
    return J, jnp.concatenate([grads.w.reshape(M, -1), db.reshape(M, -1)], axis=1)


def batched_objective(x, Xt, y, scale, l2, n, k):
    """J (M,) of every model from the loss alone, for ``jax.grad`` (``grad="autodiff"``)."""
    W, b = _unflatten(x, n, k)

    def one(w, b, s, l2):
        z = forward_t(Params(w, b), Xt)
        return jnp.sum(s * per_example_loss_t(z, y)) + l2_penalty(w, l2)

    return jax.vmap(one)(W, b, scale, l2)


def _two_loop(g, S, Y, rho, pairs):
    """``H g`` for one model: the L-BFGS two-loop recursion over its stored pairs."""
    memory = S.shape[0]
    order = (pairs - 1 - jnp.arange(memory)) % memory  # newest first
    valid = jnp.arange(memory) < jnp.minimum(pairs, memory)

    def backward(q, i):
        j = order[i]
        alpha = jnp.where(valid[i], rho[j] * (S[j] @ q), 0.0)
        return q - alpha * Y[j], alpha

    q, alphas = jax.lax.scan(backward, g, jnp.arange(memory))
    newest = order[0]
    gamma = jnp.where(pairs > 0, (S[newest] @ Y[newest]) / (Y[newest] @ Y[newest]), 1.0)

    def forward(r, i):
        j = order[i]
        beta = jnp.where(valid[i], rho[j] * (Y[j] @ r), 0.0)
        return r + S[j] * (alphas[i] - beta), None

    r, _ = jax.lax.scan(forward, gamma * q, jnp.arange(memory)[::-1])
    return r


def _lbfgs_step(state: _State, value, grad, tol, max_iter):
    """One iteration for one model, given J and ∇J at its trial point ``state.x``.

    The Armijo test allows J to stay within rounding of the last J, so that near the optimum,
    where J no longer resolves the steps, the gradient can still be driven below ``tol``; a
    model has stalled when ``MAX_STALLS`` accepted steps in a row changed neither J nor max|∇J|
    (lower), or its step halved ``MAX_HALVINGS`` times in a row."""
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
    rounding = ARMIJO_SLACK_ULPS * jnp.finfo(value.dtype).eps * jnp.abs(state.base_value)
    decrease = ARMIJO * state.step * (state.base_grad @ state.direction)
    sufficient = value <= state.base_value + decrease + jnp.where(state.started, rounding, 0)
    accept = finite & (~state.started | sufficient) & ~state.done
    s, y = state.x - state.base, grad - state.base_grad
    sy = s @ y
    keep = accept & state.started & (sy > 1e-10 * jnp.sqrt((s @ s) * (y @ y)))
    slot = state.pairs % state.S.shape[0]
    S = jnp.where(keep, state.S.at[slot].set(s), state.S)
    Y = jnp.where(keep, state.Y.at[slot].set(y), state.Y)
    rho = jnp.where(keep, state.rho.at[slot].set(1.0 / sy), state.rho)
    pairs = state.pairs + keep.astype(jnp.int32)
    direction = -_two_loop(grad, S, Y, rho, pairs)
    direction = jnp.where(grad @ direction < 0, direction, -grad)  # always a descent direction
    first = jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.max(jnp.abs(grad)), 1e-30))
    no_progress = ((value == state.base_value)
                   & (jnp.max(jnp.abs(grad)) >= jnp.max(jnp.abs(state.base_grad))))
    stalls = jnp.where(accept & state.started, jnp.where(no_progress, state.stalls + 1, 0),
                       state.stalls)
    stalled = stalls >= MAX_STALLS
    n_iter = state.n_iter + (accept & state.started).astype(jnp.int32)
    met = accept & (jnp.max(jnp.abs(grad)) <= tol)
    halvings = jnp.where(accept, 0, state.halvings + (~state.done).astype(jnp.int32))
    converged = state.converged | met
    stalled = state.stalled | ((stalled | (halvings > MAX_HALVINGS)) & ~converged)
    done = state.done | converged | stalled | (n_iter >= max_iter)
    base = jnp.where(accept, state.x, state.base)
    step = jnp.where(accept, jnp.where(pairs > 0, 1.0, first), 0.5 * state.step)
    direction = jnp.where(accept, direction, state.direction)
    x = jnp.where(done, base, base + step * direction)
    return _State(
        x=x, base=base, base_value=jnp.where(accept, value, state.base_value),
        base_grad=jnp.where(accept, grad, state.base_grad), direction=direction, step=step,
        halvings=halvings, stalls=stalls, S=S, Y=Y, rho=rho, pairs=pairs,
        started=state.started | accept,
        n_iter=n_iter, done=done, converged=converged, stalled=stalled,
    )


def _run_path(x0, Xt, y, scale, l2, tol, max_iter, n, k, fit_intercept, grad, memory):
    M, p = x0.shape
    zeros = jnp.zeros((M,), x0.dtype)
    state = _State(
        x=x0, base=x0, base_value=jnp.full((M,), jnp.inf, x0.dtype), base_grad=jnp.zeros_like(x0),
        direction=jnp.zeros_like(x0), step=zeros + 1, halvings=jnp.zeros((M,), jnp.int32),
        stalls=jnp.zeros((M,), jnp.int32),
        S=jnp.zeros((M, memory, p), x0.dtype), Y=jnp.zeros((M, memory, p), x0.dtype),
        rho=jnp.zeros((M, memory), x0.dtype), pairs=jnp.zeros((M,), jnp.int32),
        started=jnp.zeros((M,), bool), n_iter=jnp.zeros((M,), jnp.int32),
        done=jnp.zeros((M,), bool), converged=jnp.zeros((M,), bool),
        stalled=jnp.zeros((M,), bool),
    )

    def evaluate(x):
        if grad == "manual":
            return batched_value_and_grad(x, Xt, y, scale, l2, n, k, fit_intercept)

        def total(x):
            J = batched_objective(x, Xt, y, scale, l2, n, k)
            return jnp.sum(J), J

        g, J = jax.grad(total, has_aux=True)(x)
        if not fit_intercept:
            g = g.at[:, n * (k or 1) :].set(0.0)
        return J, g

    def body(carry):
        state, evaluations = carry
        J, g = evaluate(state.x)
        step = jax.vmap(_lbfgs_step, in_axes=(0, 0, 0, None, None))(state, J, g, tol, max_iter)
        return step, evaluations + 1

    limit = max_iter * (MAX_HALVINGS + 2)
    state, _ = jax.lax.while_loop(
        lambda c: ~jnp.all(c[0].done) & (c[1] < limit), body, (state, jnp.int32(0))
    )
    return (state.base, state.base_value, state.n_iter, state.converged,  # J at base: no pass
            state.stalled)


_PATH_STATIC = ("n", "k", "fit_intercept", "grad", "memory")
# Compiled with XLA's default options: jaxlogreg.runtime.compiler's made it slower
# (docs/decisions.md).
_run_path_program = jax.jit(_run_path, static_argnames=_PATH_STATIC)


def _fold_masks(folds: Any, m: int) -> np.ndarray:
    """(F, m) booleans: True for the training rows of each fold."""
    if folds is None:
        return np.ones((1, m), bool)
    folds = list(folds)
    masks = np.zeros((len(folds), m), bool)
    for f, train in enumerate(folds):
        rows = row_indices(train, m, f"folds[{f}]")
        if rows.size == 0:
            raise ValueError(f"folds[{f}] must hold training rows, got none")
        masks[f, rows] = True
    if not len(masks):
        raise ValueError("folds must hold at least one fold, got none")
    return masks


def check_Cs(Cs: Any) -> np.ndarray:
    """The inverse regularization strengths: a non-empty list of numbers > 0 (inf: no penalty)."""
    try:
        Cs = np.asarray(Cs, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"Cs must be a list of numbers > 0, got {v.show(Cs)}") from None
    if Cs.size == 0 or np.any(np.isnan(Cs)) or np.any(Cs <= 0):
        raise ValueError(f"Cs must be a non-empty list of numbers > 0 (inf: no penalty), got "
                         f"{Cs.tolist()}")
    return Cs


def fit_path(
    X: Any,
    y: Any,
    Cs: Sequence[float],
    *,
    folds: Sequence[Any] | None = None,
    sample_weight: Any = None,
    class_weight: Any = None,
    n_classes: int | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-6,
    max_iter: int = 500,
    dtype: str | None = None,
    grad: str = "manual",
    memory: int = LBFGS_MEMORY,
    mesh: jax.sharding.Mesh | None = None,
    penalty: str = "l2",
    l1_ratios: Sequence[float] | None = None,
    n_jobs: int | None = None,
) -> PathResult | L1PathResult:
    """Fit logistic regression for every C and every fold in one compiled program (L2), or
    along the C path with warm starts (L1, elastic net: :mod:`jaxlogreg.training.path_l1`).

    Args:
      X: (m, n) features; y: (m,) labels 0/1 or class indices 0..K-1.
      Cs: inverse L2 strengths, as in :class:`jaxlogreg.TrainConfig` (``inf``: no penalty).
      folds: the training rows of each fold (index arrays or boolean masks of length m);
        None fits every C on all rows (a regularization path).
      sample_weight, class_weight, n_classes, fit_intercept, tol, dtype, grad: as in
        :func:`jaxlogreg.fit` (``tol`` on max|∇J| of each model).
      max_iter: accepted L-BFGS steps per model, at most.
      memory: the L-BFGS history length.
      mesh: a one-axis ``("data",)`` mesh (:func:`jaxlogreg.make_mesh`): the rows of X are
        sharded over its devices (padded with rows of weight 0), every model is on every
        device, and the compiler adds the all-reduces of the products over m.
      penalty: "l2", "l1" or "elasticnet" (scikit-learn's); with an L1 part ``tol`` is the
        relative duality gap, ``max_iter`` the working-set rounds (softmax models without the
        C library: the "proximal" solver's iterations), ``memory`` is not used and ``mesh``
        must be None.
      l1_ratios: the L1 shares r in [0, 1] to fit, only with ``penalty="elasticnet"``.
      n_jobs: folds fitted at a time on an L1 / elastic-net path, in threads (None: 1, -1:
        every CPU; scikit-learn's meaning); the L2 path is one program (XLA's threads).

    Returns:
      A :class:`PathResult` indexed ``[fold, C]`` (L2), or an
      :class:`~jaxlogreg.training.path_l1.L1PathResult` indexed ``[fold, C, l1_ratio]``.
    """
    ratios = check_l1_ratios(penalty, l1_ratios)
    check_n_jobs(n_jobs)
    if ratios is not None and mesh is not None:
        raise ValueError(f"mesh must be None with penalty={penalty!r} (the L1 path runs on one "
                         f"device), got {mesh!r}")
    problem = validate(X, y, sample_weight=sample_weight, class_weight=class_weight,
                       n_classes=n_classes, dtype=dtype)
    if ratios is not None:
        return l1_path_of(problem, check_Cs(Cs), ratios, _fold_masks(folds, problem.X.shape[0]),
                          fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, grad=grad,
                          n_jobs=n_jobs)
    return path_of(problem, Cs, folds=folds, fit_intercept=fit_intercept, tol=tol,
                   max_iter=max_iter, grad=grad, memory=memory, mesh=mesh)


def path_of(problem: Problem, Cs: Sequence[float], *, folds: Sequence[Any] | None = None,
            fit_intercept: bool = True, tol: float = 1e-6, max_iter: int = 500,
            grad: str = "manual", memory: int = LBFGS_MEMORY,
            mesh: jax.sharding.Mesh | None = None) -> PathResult:
    """:func:`fit_path` on checked data (the estimator's route; the class weights are in
    ``problem.weights``)."""
    Cs = check_Cs(Cs)
    tol = v.check_positive(tol, "tol", allow_zero=True)
    max_iter = v.check_int_at_least(max_iter, "max_iter", 1, MAX_ITER_LIMIT)
    memory = v.check_int_at_least(memory, "memory", 1, 100)
    v.check_choice(grad, "grad", ("manual", "autodiff"))
    (m, n), dtype = problem.X.shape, problem.dtype
    weights = np.ones(m) if problem.weights is None else problem.weights
    unit = problem.weight_sum / float(weights.sum())  # relative weights -> the true sums
    train = _fold_masks(folds, m) * weights[None, :]  # (F, m)
    totals = train.sum(axis=1)
    if np.any(totals <= 0):
        raise ValueError(f"every fold needs training rows of positive weight, got weights "
                         f"{(totals * unit).tolist()}")
    data = device_data(problem, mesh=mesh, models=len(Cs) * train.shape[0])  # Xt (n, m)
    with jax.enable_x64(dtype == "float64"):
        n_pad, m_pad = data.data.Xt.shape
        k = None if problem.n_classes == 2 else problem.n_classes
        F, C = train.shape[0], Cs.shape[0]
        acc = np.dtype(accumulation_dtype(dtype))
        scale = np.repeat(train / totals[:, None], C, axis=0).astype(acc)  # (F·C, m)
        scale = np.pad(scale, ((0, 0), (0, m_pad - m)))  # padding rows weigh 0
        if mesh is not None:
            scale = jax.device_put(scale, NamedSharding(mesh, P(None, mesh_layout.DATA_AXIS)))
        with np.errstate(divide="ignore", over="ignore"):
            l2 = np.where(np.isinf(Cs)[None, :], 0.0, 1.0 / (Cs[None, :] * totals[:, None] * unit))
        check_penalty(l2, np.broadcast_to(Cs, l2.shape), problem.weight_sum, dtype)
        p = n_pad * (k or 1) + (k or 1)  # padded features are 0 and keep w = 0: cropped below
        x, J, n_iter, converged, stalled = _run_path_program(
            np.zeros((F * C, p), acc), data.data.Xt, data.data.y, scale,
            l2.reshape(-1).astype(acc), np.asarray(tol, acc), np.int32(max_iter), n=n_pad, k=k,
            fit_intercept=bool(fit_intercept), grad=grad, memory=memory,
        )
        W, b = _unflatten(np.asarray(x), n_pad, k)
        shape = (F, C)
        return PathResult(
            params=Params(np.asarray(W[:, :n]).reshape(*shape, -1, *W.shape[2:]),
                          np.asarray(b).reshape(*shape, *b.shape[1:])),
            loss=np.asarray(J).reshape(shape),
            n_iter=np.asarray(n_iter).reshape(shape),
            converged=np.asarray(converged).reshape(shape),
            stalled=np.asarray(stalled).reshape(shape),
            Cs=Cs,
            l2=l2,
        )
