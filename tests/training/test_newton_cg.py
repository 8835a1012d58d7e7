"""Newton-CG (training/newton_cg.py): its direction solves H d = -g to the forcing tolerance,
it falls back to -g without positive curvature, and fits reach the optimum the other solvers
reach (the solver table's contract in test_solvers.py covers every mode), with H·v from the
kernel's record, XLA's hvp_t or autodiff alike, sparse X included, without recompiling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg as jl
from jaxlogreg.core.model import Params
from jaxlogreg.training import loop
from jaxlogreg.training.newton_cg import scale_by_newton_cg


def _spd(k: int, seed: int = 0) -> np.ndarray:
    A = np.random.default_rng(seed).standard_normal((k, k))
    return A @ A.T + 0.1 * np.eye(k)


def _direction(H: np.ndarray, g: np.ndarray, grad_tol: float = 0.0, **kwargs) -> np.ndarray:
    """scale_by_newton_cg's direction for the quadratic with Hessian H at gradient g."""
    with jax.enable_x64(True):
        params = Params(jnp.zeros(g.size - 1), jnp.zeros(()))
        grads = Params(jnp.asarray(g[:-1]), jnp.asarray(g[-1]))
        def hvp(p: Params, v: Params) -> Params:
            u = jnp.asarray(H) @ jnp.concatenate([v.w, v.b[None]])
            return Params(u[:-1], u[-1])

        t = scale_by_newton_cg(**kwargs)
        d, _ = t.update(grads, t.init(params), params, hvp_fn=hvp, grad_tol=grad_tol)
        return np.concatenate([np.asarray(d.w), np.asarray(d.b)[None]])


def test_direction_meets_the_forcing_tolerance():
    H = _spd(12)
    g = np.random.default_rng(1).standard_normal(12) * 1e-3
    d = _direction(H, g)
    g_norm = np.linalg.norm(g)
    assert np.linalg.norm(H @ d + g) <= min(0.5, np.sqrt(g_norm)) * g_norm * (1 + 1e-12)
    # enough products: CG on 12 unknowns solves the system exactly (to rounding)
    exact = _direction(H, g * 1e-20 / g_norm)
    assert np.allclose(H @ exact, -g * 1e-20 / g_norm, rtol=0, atol=1e-28)


def test_direction_is_minus_g_without_positive_curvature():
    g = np.arange(1.0, 6.0)
    assert np.allclose(_direction(-np.eye(5), g), -g)
    assert np.allclose(_direction(np.zeros((5, 5)), g), -g)


def test_direction_stops_once_the_model_gradient_meets_the_fit_tolerance():
    H = np.diag(np.logspace(0, 6, 40))
    g = np.full(40, 1e-4)  # the forcing term alone asks for ||r|| <= 1.6e-5
    plain = np.abs(H @ _direction(H, g) + g).max()
    for grad_tol in (1e-3, 1e-4):
        residual = np.abs(H @ _direction(H, g, grad_tol=grad_tol) + g).max()
        assert 5 * plain < residual <= grad_tol / 2  # stopped there: fewer products


def test_max_cg_iter_bounds_the_products():
    H = np.diag(np.logspace(0, 6, 40))
    g = np.ones(40)
    one = _direction(H, g, max_cg_iter=1)  # one CG step: the Cauchy step along -g
    assert np.allclose(one, -(g @ g) / (g @ H @ g) * g)


def _problem(m=300, n=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)) * np.logspace(0, 1.5, n)  # ill-conditioned columns
    y = (rng.random(m) < 1 / (1 + np.exp(-X @ rng.standard_normal(n) / 10))).astype(int)
    return X, y


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize("classes", [2, 3])
def test_fit_reaches_the_lbfgs_optimum_in_fewer_iterations(grad, classes):
    X, y = _problem()
    y = y if classes == 2 else (y + np.arange(y.size)) % 3
    w = np.random.default_rng(2).uniform(0.5, 2, y.size)
    kwargs = {"C": 0.5, "dtype": "float64", "sample_weight": w, "grad": grad, "max_iter": 2000}
    newton = jl.fit(X, y, solver="newton-cg", tol=1e-10, **kwargs)
    lbfgs = jl.fit(X, y, solver="lbfgs", tol=1e-10, **kwargs)
    assert newton.status == lbfgs.status == "converged"
    assert abs(float(newton.loss) - float(lbfgs.loss)) <= 1e-12 * float(lbfgs.loss)
    np.testing.assert_allclose(newton.params.w, lbfgs.params.w, rtol=0, atol=1e-7)
    assert newton.n_iter < lbfgs.n_iter


def test_no_intercept_keeps_b_at_zero():
    X, y = _problem()
    r = jl.fit(X, y, solver="newton-cg", fit_intercept=False, dtype="float64", tol=1e-10)
    ref = jl.fit(X, y, solver="lbfgs", fit_intercept=False, dtype="float64", tol=1e-10)
    assert r.status == "converged" and float(r.params.b) == 0.0
    np.testing.assert_allclose(r.params.w, ref.params.w, rtol=0, atol=1e-7)


def test_sparse_fit_matches_dense_and_does_not_recompile():
    X, y = _problem(m=400, n=30, seed=3)
    X[np.abs(X) < 1.0] = 0.0
    Xs = sp.csr_array(X)
    dense = jl.fit(X, y, solver="newton-cg", dtype="float64", tol=1e-10)
    sparse = jl.fit(Xs, y, solver="newton-cg", dtype="float64", tol=1e-10)
    assert sparse.status == "converged"
    np.testing.assert_allclose(sparse.params.w, dense.params.w, rtol=0, atol=1e-8)
    before = loop.run_segment_sparse._cache_size()
    again = jl.fit(Xs, 1 - y, solver="newton-cg", dtype="float64", tol=1e-10)
    assert again.status == "converged"
    assert loop.run_segment_sparse._cache_size() == before


def test_estimator_takes_newton_cg_as_scikit_learn_does():
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    X, y = _problem()
    ours = jl.LogisticRegression(solver="newton-cg", C=0.5, tol=1e-10, dtype="float64").fit(X, y)
    theirs = SkLogisticRegression(solver="newton-cg", C=0.5, tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-6, atol=1e-8)
