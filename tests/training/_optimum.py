"""The test problems of tests/training/test_solvers.py, their optimum θ*, and the bounds a fit
must meet: how close a solver that claims convergence (or ran minibatch epochs) is to θ*.

J = f + λ₁ ||w||₁ (f: mean loss + λ₂/2 ||w||²) on standardized, full-rank data; θ* comes from
scikit-learn, once per problem, certified by its minimum-norm subgradient computed here.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.core.loss import forward_t, objective_t, per_example_loss_t
from jaxlogreg.training.proximal import min_norm_subgradient

M, N, BATCH, LAMBDA = 200, 8, 50, 0.02  # λ = 1 / (C m) split into λ₁ = rλ and λ₂ = (1 - r)λ
C = 1 / (LAMBDA * M)
L1_RATIO = {"l2": 0.0, "l1": 1.0, "elasticnet": 0.5}
REFERENCE_TOL = 1e-8  # max|G| of the reference optimum, in float64


# --- the problems and their optimum ------------------------------------------------------------


class Problem(NamedTuple):
    """Data, penalty and the float64 optimum θ* with what the bounds need."""

    X: np.ndarray
    y: np.ndarray
    penalty: str
    fit_intercept: bool
    l2: float
    l1: float
    optimum: jl.Params
    objective: float = 0.0  # J*
    reference_gap: float = 0.0  # ||G||₂ at θ*
    mu: float = 0.0  # the least eigenvalue of ∇²f at θ* on the directions f changes along
    lipschitz: float = 0.0  # its largest
    flat: np.ndarray | None = None  # (d, k): orthonormal directions along which f is constant
    smallest: float = math.inf  # the smallest nonzero |w*|
    margin: float = math.inf  # min of λ₁ - |∂f/∂w| over the zeros of w*

    def fit_settings(self) -> dict[str, Any]:
        ratio = 0.5 if self.penalty == "elasticnet" else None
        return {"C": C, "penalty": self.penalty, "l1_ratio": ratio,
                "fit_intercept": self.fit_intercept}


def _as64(params: Any) -> jl.Params:
    return jl.Params(jnp.asarray(params[0], jnp.float64), jnp.asarray(params[1], jnp.float64))


_value_and_grad = jax.jit(jax.value_and_grad(objective_t))  # one program, not op by op


def _smooth_gradient(problem: Problem, params: Any) -> tuple[float, jl.Params]:
    """f and ∇f in float64 by jax.grad: independent of the loop's gradient kernels."""
    with jax.enable_x64(True):
        f, g = _value_and_grad(_as64(params), jnp.asarray(problem.X.T), jnp.asarray(problem.y),
                               None, problem.l2)
        return float(f), jl.Params(np.asarray(g.w), np.asarray(g.b))


def evaluate(problem: Problem, params: Any) -> tuple[float, np.ndarray]:
    """J and the minimum-norm subgradient G (flat; b's part only with an intercept), float64."""
    f, g = _smooth_gradient(problem, params)
    with jax.enable_x64(True):
        G = min_norm_subgradient(_as64(params), _as64(g), problem.l1)
    J = f + problem.l1 * float(np.sum(np.abs(np.asarray(params[0], np.float64))))
    return J, _ravel(problem, G)


def _ravel(problem: Problem, params: Any) -> np.ndarray:
    parts = [np.ravel(params[0])] + ([np.ravel(params[1])] if problem.fit_intercept else [])
    return np.concatenate(parts).astype(np.float64)


def _reference(X, y, penalty: str, fit_intercept: bool) -> jl.Params:
    """θ* by scikit-learn: lbfgs (L2) or saga (L1 parts), independent of this package."""
    ratio = L1_RATIO[penalty]
    sk = SkLogisticRegression(C=C, l1_ratio=ratio, solver="saga" if ratio else "lbfgs",
                              tol=1e-12, max_iter=100_000, fit_intercept=fit_intercept).fit(X, y)
    binary = sk.coef_.shape[0] == 1
    w, b = (sk.coef_[0], sk.intercept_[0]) if binary else (sk.coef_.T, sk.intercept_)
    return jl.Params(w, np.asarray(b, np.float64))


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _hessian(params: jl.Params, Xt: jax.Array, y: jax.Array, l2: float, fit_intercept: bool):
    """∇²f over the fitted parameters (w, then b with an intercept), flattened."""
    theta, unravel = ravel_pytree(params if fit_intercept else params.w)

    def f(t):
        q = unravel(t) if fit_intercept else jl.Params(unravel(t), params.b)
        return objective_t(q, Xt, y, None, l2)

    return jax.hessian(f)(theta)


def _curvature(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues and eigenvectors of ∇²f at θ* (float64)."""
    with jax.enable_x64(True):
        H = _hessian(_as64(problem.optimum), jnp.asarray(problem.X.T), jnp.asarray(problem.y),
                     problem.l2, problem.fit_intercept)
    return np.linalg.eigh(np.asarray(H))


@functools.cache
def problem(k: int, penalty: str = "l2", fit_intercept: bool = True) -> Problem:
    X, y = make_classification(M, N, n_informative=4, n_redundant=0, n_classes=k,
                               n_clusters_per_class=1, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    l1, l2 = L1_RATIO[penalty] * LAMBDA, (1 - L1_RATIO[penalty]) * LAMBDA
    p = Problem(X, y, penalty, fit_intercept, l2, l1, _reference(X, y, penalty, fit_intercept))
    values, vectors = _curvature(p)
    flat = values <= 1e-9 * values[-1]
    J, G = evaluate(p, p.optimum)
    assert np.max(np.abs(G)) <= REFERENCE_TOL, "the reference is not the optimum"
    w = np.asarray(p.optimum.w)
    grad_w = np.abs(_smooth_gradient(p, p.optimum)[1].w)
    return p._replace(objective=J, reference_gap=float(np.linalg.norm(G)),
                      mu=float(values[~flat].min()), lipschitz=float(values[-1]),
                      flat=vectors[:, flat], smallest=float(np.min(np.abs(w[w != 0]))),
                      margin=float(np.min(l1 - grad_w[w == 0], initial=math.inf)))


# --- the checks --------------------------------------------------------------------------------


def _offset(problem: Problem, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """Δ = θ - θ*, and PΔ: Δ without its part along the flat directions of f."""
    delta = _ravel(problem, params) - _ravel(problem, problem.optimum)
    return delta, delta - problem.flat @ (problem.flat.T @ delta)


def _pins_w(problem: Problem) -> bool:
    """Whether f is flat along directions that move w (softmax with a pure L1 penalty: the
    loss is unchanged by w[j, :] + c, only λ₂ would penalise it); the L1 term pins them."""
    n_w = problem.optimum.w.size
    return bool(np.any(np.linalg.norm(problem.flat[:n_w], axis=0) > 1e-6))


def check_full_batch(problem: Problem, result: Any, tol: float, dtype: Any) -> None:
    """The fit claims max|G| <= tol; G recomputed in float64 is within ρ more, ρ = 4 log2(m)
    eps max|x| bounding the rounding of the fit's own gradient (pairwise sums of m terms).
    With ||G||₂ <= g = √d (tol + ρ) and f μ-strongly convex along PΔ, strong convexity gives
    ||PΔ|| <= (g + ||G*||)/μ (G* the reference's subgradient); twice that is allowed, ∇²f
    changing near θ*. Within that distance the fit has the zeros of θ* (checked to hold: the
    distance is below θ*'s smallest nonzero |w|, and moves ∇f by less than the margin by which
    its zeros satisfy |∂f/∂w| <= λ₁). Softmax with pure L1: each row of θ* holds a zero (the
    row's loss gradient sums to 0, so its L1 signs must too), where the fit's row shift c is
    -PΔ: |Δw| <= 2 x the bound. Convexity: |J - J*| <= (g + ||G*||) ||Δ||."""
    rho = 4 * math.log2(M) * np.finfo(dtype).eps * np.max(np.abs(problem.X))
    J, G = evaluate(problem, result.params)
    assert result.status == "converged", result.status
    assert np.max(np.abs(G)) <= tol + rho
    assert result.loss == pytest.approx(J, rel=rho, abs=rho)  # the recorded J has every term
    assert result.loss_history[-1] < result.loss_history[0]
    g = math.sqrt(G.size) * (tol + rho)
    bound = 2 * (g + problem.reference_gap) / problem.mu
    delta, projected = _offset(problem, result.params)
    assert np.linalg.norm(projected) <= bound
    distance = bound
    if problem.l1 > 0:
        assert bound < problem.smallest and problem.lipschitz * bound + tol < problem.margin
        np.testing.assert_array_equal(np.asarray(result.params.w) == 0, problem.optimum.w == 0)
    if _pins_w(problem):
        assert np.all((problem.optimum.w == 0).any(axis=1))
        assert np.max(np.abs(delta[: problem.optimum.w.size])) <= 2 * bound
        distance = 2 * bound * math.sqrt(G.size)
    assert abs(J - problem.objective) <= (g + problem.reference_gap) * distance


@jax.jit
def _per_row_gradients(params: jl.Params, Xt: jax.Array, y: jax.Array) -> jl.Params:
    """∇L_i for each row (leading axis m)."""
    return jax.jacrev(lambda p: per_example_loss_t(forward_t(p, Xt), y))(params)


def _batch_noise(problem: Problem, adaptive: bool) -> float:
    """tr(P Σ_B) at θ*: Σ_B the covariance of a batch-mean gradient (B of m rows without
    replacement), P = I or diag(1/σ_B) for per-coordinate steps."""
    with jax.enable_x64(True):
        per_row = _per_row_gradients(_as64(problem.optimum), jnp.asarray(problem.X.T),
                                     jnp.asarray(problem.y))
    rows = np.concatenate([np.asarray(per_row.w).reshape(M, -1),
                           np.asarray(per_row.b).reshape(M, -1)], axis=1)
    variance = rows.var(axis=0) / BATCH * (M - BATCH) / (M - 1)
    return float(np.sum(np.sqrt(variance)) if adaptive else np.sum(variance))


def check_minibatch(problem: Problem, result: Any, rate: float, momentum: float,
                     adaptive: bool) -> None:
    """Constant steps end in a noise ball. For SGD near a quadratic minimum the stationary
    E[J - J*] is (α_eff/4) tr(P Σ_B) (α_eff = α/(1 - momentum), P the step's preconditioner,
    :func:`_batch_noise`); reshuffled epochs only lower it. Allowed: 4x that, τ = α_eff
    tr(P Σ_B), the epochs of the settings having forgotten the start; then
    ||PΔ|| <= sqrt(2τ/μ), twice that allowed."""
    tau = rate / (1 - momentum) * _batch_noise(problem, adaptive)
    J, _ = evaluate(problem, result.params)
    assert result.status == "max_iter" and np.all(np.isfinite(result.loss_history))
    assert result.loss == pytest.approx(J, rel=1e-12)  # J over all rows, every term
    floor = problem.reference_gap**2 / problem.mu + 16 * np.finfo(np.float64).eps * J
    assert -floor <= J - problem.objective <= tau  # J* - floor: the optimum itself
    if not _pins_w(problem):
        assert np.linalg.norm(_offset(problem, result.params)[1]) <= 2 * math.sqrt(
            2 * tau / problem.mu)
