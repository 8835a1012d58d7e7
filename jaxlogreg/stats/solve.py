"""The fit as a differentiable JAX function: :func:`solve` returns the optimum θ*(p) of

    J(θ; p) = Σ_i s_i L_i(θ) + ||w||² / (2C)        (scikit-learn's C Σ s_i L_i + ½||w||², / C)

and its derivatives for p = (C, sample_weight, X, soft binary y) by the implicit function
theorem: ∇_θ J(θ*(p); p) = 0, so ∂θ*/∂p = -H⁻¹ ∂²J/∂θ∂p, H = ∇²_θ J at θ*. The forward solve is
damped Newton in a ``lax.while_loop`` (never differentiated); the tangent is one linear solve
with the hand-written Hessian (:mod:`jaxlogreg.core.hessian`): Cholesky for k ≤
:data:`DENSE_LIMIT` parameters, conjugate gradients on Hessian-vector products above. The solve
is a ``lax.custom_linear_solve``, so JAX transposes it for reverse mode. Softmax has a
direction H does not see (adding one number to every class of a row of ``[W; b]``); the solve
keeps each row's mean over classes at 0 (scikit-learn's solution) and adds ``c Q`` to H, Q the
projection on those directions, which changes no solution in that gauge. Equations and cost:
docs/implicit-differentiation.md.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import cho_factor, cho_solve
from jax.scipy.sparse.linalg import cg

from jaxlogreg.core import checks as v
from jaxlogreg.core.gradients import value_and_grad_t
from jaxlogreg.core.hessian import flat, hessian_t, hvp_t, unflat
from jaxlogreg.core.loss import (
    binary_cross_entropy,
    dot,
    forward_t,
    l2_penalty,
    softmax_cross_entropy,
)
from jaxlogreg.core.model import Params

DENSE_LIMIT = 2048  # k at most this: Cholesky of H (k² memory); above: CG on H v
_HALVINGS = 30  # backtracking steps of one Newton line search, at most
_ARMIJO = 1e-4


class SolveInfo(NamedTuple):
    """How the forward solve ended: ``converged`` (the last Newton step was at most ``tol``
    relative to θ), ``n_iter`` Newton steps, ``grad_norm`` max |∇J| at the returned θ."""

    converged: jax.Array
    n_iter: jax.Array
    grad_norm: jax.Array


@dataclasses.dataclass(frozen=True)
class _Setup:
    """The static part of a solve (shapes and settings), hashable for ``nondiff_argnums``."""

    n: int
    K: int  # 1: binary
    fit_intercept: bool
    tol: float
    max_iter: int
    dense: bool

    def like(self, dtype: Any) -> Params:
        if self.K == 1:
            return Params(jnp.zeros((self.n,), dtype), jnp.zeros((), dtype))
        return Params(jnp.zeros((self.n, self.K), dtype), jnp.zeros((self.K,), dtype))

    def k(self) -> int:
        return (self.n + self.fit_intercept) * self.K


def _params(theta: jax.Array, st: _Setup) -> Params:
    return unflat(theta, st.like(theta.dtype), st.fit_intercept)


def _gradient(theta: jax.Array, Xt: Any, y: Any, s: Any, l2: Any, st: _Setup) -> jax.Array:
    """∇_θ J (k,), the hand-written gradient (linear in y, so soft labels are exact)."""
    g = value_and_grad_t(_params(theta, st), Xt, y, s, l2)[1]
    return flat(g, st.fit_intercept)


def _objective(theta: jax.Array, Xt: Any, y: Any, s: Any, l2: Any, st: _Setup) -> jax.Array:
    """J for the line search; binary labels y ∈ [0, 1] as ``y L(z, 1) + (1 - y) L(z, 0)``."""
    params = _params(theta, st)
    z = forward_t(params, Xt)
    if st.K == 1:
        y = y.astype(z.dtype)
        loss = (y * binary_cross_entropy(z, jnp.ones_like(z))
                + (1 - y) * binary_cross_entropy(z, jnp.zeros_like(z)))
    else:
        loss = softmax_cross_entropy(z, y, axis=0)
    return jnp.sum(s * loss) + l2_penalty(params.w, l2)


def _gauge(vector: jax.Array, s: Any, st: _Setup) -> jax.Array:
    """``c Q v``: each row of ``[W; b]``'s mean over classes (0 for binary), c = Σ s / K."""
    if st.K == 1:
        return jnp.zeros_like(vector)
    rows = vector.reshape(-1, st.K)
    return (jnp.sum(s) / st.K * jnp.broadcast_to(rows.mean(1, keepdims=True), rows.shape)
            ).reshape(-1)


def _matvec_and_solver(theta: jax.Array, Xt: Any, y: Any, s: Any, l2: Any, st: _Setup,
                       rtol: Any) -> tuple[Any, Any]:
    """``v -> (H + c Q) v`` and ``(matvec, r) -> (H + c Q)⁻¹ r``: Cholesky or CG."""
    if st.dense:
        H = hessian_t(_params(theta, st), Xt, y, s, l2, fit_intercept=st.fit_intercept)
        if st.K > 1:
            H = H + jax.vmap(lambda e: _gauge(e, s, st))(jnp.eye(H.shape[0], dtype=H.dtype))
        factor = cho_factor(H, lower=True)
        return (lambda u: dot(H, u)), (lambda _, r: cho_solve(factor, r))
    params = _params(theta, st)

    def matvec(u: jax.Array) -> jax.Array:
        hu = hvp_t(params, Xt, y, s, l2, unflat(u, params, st.fit_intercept))
        return flat(hu, st.fit_intercept) + _gauge(u, s, st)

    return matvec, (lambda mv, r: cg(mv, r, tol=rtol, maxiter=10 * st.k())[0])


def _newton(theta: jax.Array, Xt: Any, y: Any, s: Any, l2: Any,
            st: _Setup) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Damped Newton from θ₀: (θ, Newton steps, converged). Converged: the last step was at most
    ``tol (1 + max|θ|)`` (``√tol`` when J can no longer decrease: rounding); a problem without
    an optimum (no penalty, separable classes) keeps taking steps of about the same size and
    ends unconverged (at ``max_iter``, or when J stops decreasing)."""
    eps = jnp.finfo(theta.dtype).eps
    scale = jnp.sum(s)
    objective = functools.partial(_objective, Xt=Xt, y=y, s=s, l2=l2, st=st)

    def step(carry):
        theta, J, _, it, _ = carry
        g = _gradient(theta, Xt, y, s, l2, st)
        rtol = jnp.clip(jnp.sqrt(jnp.max(jnp.abs(g)) / scale), st.tol, 0.1)
        matvec, solver = _matvec_and_solver(theta, Xt, y, s, l2, st, rtol)
        d = solver(matvec, g)
        slope, slack = jnp.vdot(g, d), 16 * eps * jnp.abs(J)

        def worse(ls):
            t, J_t, i = ls
            return (~(J_t <= J - _ARMIJO * t * slope + slack)) & (i < _HALVINGS)

        def halve(ls):
            t, _, i = ls
            return t / 2, objective(theta - t / 2 * d), i + 1

        t, J_t, _ = lax.while_loop(worse, halve, (jnp.ones((), theta.dtype),
                                                  objective(theta - d), 0))
        accepted = J_t <= J - _ARMIJO * t * slope + slack
        new = jnp.where(accepted, theta - t * d, theta)
        size = jnp.max(jnp.abs(d)) / (1 + jnp.max(jnp.abs(theta)))
        # no decrease left: at the rounding floor if the step is that small, else stuck
        small = jnp.where(accepted, size <= st.tol, size <= jnp.sqrt(st.tol))
        converged = small & jnp.all(jnp.isfinite(new))
        stop = converged | ~accepted | ~jnp.all(jnp.isfinite(new))
        return new, jnp.where(accepted, J_t, J), stop, it + 1, converged

    def going(carry):
        return ~carry[2] & (carry[3] < st.max_iter)

    start = (theta, objective(theta), jnp.zeros((), bool), jnp.zeros((), jnp.int32),
             jnp.zeros((), bool))
    theta, _, _, it, converged = lax.while_loop(going, step, start)
    return theta, it, converged


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _solution(st: _Setup, X: jax.Array, y: jax.Array, s: jax.Array, l2: jax.Array,
              theta0: jax.Array) -> tuple[jax.Array, jax.Array]:
    """θ* (k,) (NaN unless converged) and ``[converged, n_iter]`` as floats."""
    theta, it, converged = _newton(theta0, X.T, y, s, l2, st)
    theta = jnp.where(converged, theta, jnp.nan)
    return theta, jnp.stack([converged, it]).astype(theta.dtype)


@_solution.defjvp
def _solution_jvp(st: _Setup, primals: tuple, tangents: tuple) -> tuple:
    """dθ* = -(H + c Q)⁻¹ (∂∇J/∂p · dp): one ``custom_linear_solve``, transposable."""
    X, y, s, l2, theta0 = primals
    dX, dy, ds, dl2, _ = tangents
    theta, status = _solution(st, X, y, s, l2, theta0)

    def gradient_at(X_, y_, s_, l2_):
        return _gradient(theta, X_.T, y_, s_, l2_, st)

    _, dg = jax.jvp(gradient_at, (X, y, s, l2), (dX, dy, ds, dl2))
    rtol = jnp.finfo(theta.dtype).eps ** 0.75
    matvec, solver = _matvec_and_solver(theta, X.T, y, s, l2, st, rtol)
    dtheta = lax.custom_linear_solve(matvec, -dg, solver, symmetric=True)
    return (theta, status), (dtheta, jnp.zeros_like(status))


_compiled_solution = jax.jit(_solution, static_argnums=(0,))  # eager calls compile once a shape


def solve(X: Any, y: Any, *, C: Any, sample_weight: Any = None, fit_intercept: bool = True,
          n_classes: int | None = None, tol: float | None = None, max_iter: int = 100,
          init: Params | None = None, linear_solver: str = "auto",
          return_info: bool = False) -> Params | tuple[Params, SolveInfo]:
    """The minimiser of ``Σ s_i L_i + ||w||²/(2C)`` (scikit-learn's objective), differentiable.

    A JAX function (jit, vmap, grad, jvp): derivatives w.r.t. ``C``, ``sample_weight``, ``X``
    and soft binary ``y`` ∈ [0, 1] come from the implicit function theorem, not the iterations.
    X (m, n) dense float; y (m,) 0/1 (or soft) labels, or class indices when ``n_classes`` > 2;
    ``C`` > 0 (``inf``: no penalty; the intercept is never penalised). ``tol``: Newton stops
    when its step is at most ``tol (1 + max|θ|)`` (None: ``eps^(2/3)`` of X's dtype).
    ``linear_solver``: "cholesky", "cg" or "auto" (Cholesky for k ≤ 2048 parameters).
    A solve that does not converge in ``max_iter`` Newton steps (e.g. C = inf on separable
    classes, which has no optimum) returns NaN parameters; ``return_info=True`` adds a
    :class:`SolveInfo` that says why.
    """
    X, y, s, K = _checked_data(X, y, sample_weight, n_classes)
    if v.is_concrete(C):
        C_value = np.asarray(C)
        if C_value.shape != () or np.isnan(C_value) or C_value <= 0:
            raise ValueError(f"C must be one number > 0 (inf: no penalty), got {v.show(C)}")
    v.check_choice(linear_solver, "linear_solver", ("auto", "cholesky", "cg"))
    max_iter = v.check_int_at_least(max_iter, "max_iter", 1)
    tol = float(jnp.finfo(X.dtype).eps ** (2 / 3)) if tol is None else v.check_positive(tol, "tol")
    k = (X.shape[1] + bool(fit_intercept)) * K
    dense = linear_solver == "cholesky" or (linear_solver == "auto" and k <= DENSE_LIMIT)
    st = _Setup(X.shape[1], K, bool(fit_intercept), tol, max_iter, dense)
    theta0 = _start(init, st, X.dtype)
    l2 = 1 / jnp.asarray(C, X.dtype)
    theta, status = _compiled_solution(st, X, y, s, l2, theta0)
    params = _params(theta, st)
    if not return_info:
        return params
    g = _gradient(lax.stop_gradient(theta), X.T, y, s, l2, st)
    info = SolveInfo(status[0] > 0, status[1].astype(jnp.int32), jnp.max(jnp.abs(g)))
    return params, info


def _checked_data(X: Any, y: Any, sample_weight: Any,
                  n_classes: int | None) -> tuple[jax.Array, jax.Array, jax.Array, int]:
    """X (m, n) float, y (float for binary, int for softmax), s (m,) and K (1: binary)."""
    X = _host_if_concrete(v.as_array(X, "X"))
    v.check_ndim(X, "X", 2, "(n_samples, n_features)")
    v.check_nonempty(X, "X")
    v.check_float_dtype(X, "X")
    v.check_finite(X, "X")
    X = jnp.asarray(X)
    m = X.shape[0]
    if n_classes is not None:
        v.check_int_at_least(n_classes, "n_classes", 2)
    K = 1 if n_classes in (None, 2) else int(n_classes)
    y = _host_if_concrete(v.as_array(y, "y"))
    v.check_length(y, "y", m)
    if K == 1:
        v.check_finite(y, "y")
        if v.is_concrete(y) and np.any((y < 0) | (y > 1)):
            raise ValueError("y must hold binary labels in [0, 1] (0/1 or soft), got values "
                             f"from {v.show(np.min(y))} to {v.show(np.max(y))}")
        y = jnp.asarray(y, X.dtype)
    else:
        v.check_class_labels(y, K, "y")
        y = jnp.asarray(y, jnp.int32)
    if sample_weight is None:
        return X, y, jnp.ones((m,), X.dtype), K
    s = v.check_sample_weight(_host_if_concrete(v.as_array(sample_weight, "sample_weight")), m)
    return X, y, jnp.asarray(s, X.dtype), K


def _host_if_concrete(x: Any) -> Any:
    """A concrete array as NumPy, so that its value checks run on the host even inside a
    trace (a JAX operation on it there would give a tracer); a tracer as is."""
    return np.asarray(x) if v.is_concrete(x) else x


def _start(init: Params | None, st: _Setup, dtype: Any) -> jax.Array:
    """θ₀ (k,): zeros, or ``init`` checked and (softmax) moved to class means 0 per row."""
    like = st.like(dtype)
    if init is None:
        return flat(like, st.fit_intercept)
    if not isinstance(init, Params) or jnp.shape(init.w) != like.w.shape or (
            jnp.shape(init.b) != like.b.shape):
        raise ValueError(f"init must be Params with w of shape {like.w.shape} and b of shape "
                         f"{like.b.shape}, got {init!r}")
    init = Params(jnp.asarray(init.w, dtype), jnp.asarray(init.b, dtype))
    if st.K > 1:
        init = Params(init.w - init.w.mean(-1, keepdims=True), init.b - init.b.mean())
    return lax.stop_gradient(flat(init, st.fit_intercept))


__all__ = ["DENSE_LIMIT", "SolveInfo", "solve"]
