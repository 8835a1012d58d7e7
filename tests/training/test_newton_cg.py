"""Newton-CG (training/newton_cg.py): its direction solves H d = -g to the forcing tolerance,
preconditioned by a bound of H's diagonal; it falls back to -g without positive curvature;
fits reach the optimum the other solvers reach (the solver table's contract in
test_solvers.py covers every mode), with H·v from the kernel's record, XLA's hvp_t or
autodiff alike, sparse X included, without recompiling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg as jl
from jaxlogreg.core.hessian import diagonal_bound_t, flat, hessian_t
from jaxlogreg.core.model import Params
from jaxlogreg.core.sparse import coo_of_csr
from jaxlogreg.training import loop
from jaxlogreg.training.newton_cg import scale_by_newton_cg


def _spd(k: int, seed: int = 0) -> np.ndarray:
    A = np.random.default_rng(seed).standard_normal((k, k))
    return A @ A.T + 0.1 * np.eye(k)


def _direction(H: np.ndarray, g: np.ndarray, diagonal: np.ndarray | None = None,
               **kwargs) -> np.ndarray:
    """scale_by_newton_cg's direction for the quadratic with Hessian H at gradient g, CG
    preconditioned by ``diagonal`` (w's entries, then b's) when given."""
    with jax.enable_x64(True):
        params = Params(jnp.zeros(g.size - 1), jnp.zeros(()))
        grads = Params(jnp.asarray(g[:-1]), jnp.asarray(g[-1]))

        def hvp(p: Params, v: Params) -> Params:
            u = jnp.asarray(H) @ jnp.concatenate([v.w, v.b[None]])
            return Params(u[:-1], u[-1])

        diagonal_fn = None if diagonal is None else (
            lambda p: Params(jnp.asarray(diagonal[:-1]), jnp.asarray(diagonal[-1])))
        t = scale_by_newton_cg(**kwargs)
        d, state = t.update(grads, t.init(params), params, hvp_fn=hvp, diagonal_fn=diagonal_fn)
        assert bool(state.ready) == (diagonal is not None)  # computed once, then kept
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


def test_the_exact_diagonal_preconditions_a_diagonal_hessian_in_one_product():
    H = np.diag(np.logspace(0, 6, 40))
    g = np.ones(40)
    d = _direction(H, g, diagonal=np.diag(H), max_cg_iter=1)
    np.testing.assert_allclose(H @ d, -g, rtol=1e-12)
    unpreconditioned = _direction(H, g, max_cg_iter=1)
    assert np.linalg.norm(H @ unpreconditioned + g) > 0.5 * np.linalg.norm(g)
    # a preconditioner that is not positive somewhere is 1 there, never a division by 0
    assert np.all(np.isfinite(_direction(H, g, diagonal=np.zeros(40))))


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("sparse", [False, True])
def test_diagonal_bound_is_the_hessian_diagonal_at_zero_and_bounds_it_elsewhere(classes,
                                                                                 sparse):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 6))
    X[np.abs(X) < 0.7] = 0.0
    s = rng.uniform(0.5, 2.0, 40)
    with jax.enable_x64(True):
        Xt = coo_of_csr(sp.csr_array(X), np.float64, transpose=True) if sparse else X.T
        shape = (6,) if classes == 2 else (6, classes)
        zero = Params(jnp.zeros(shape), jnp.zeros(shape[1:]))
        other = Params(jnp.asarray(rng.standard_normal(shape)), jnp.ones(shape[1:]))
        for weights in (jnp.asarray(s), jnp.asarray(0.025)):
            bound = flat(diagonal_bound_t(zero, Xt, weights, 0.3))
            dense_t = jnp.asarray(X.T)
            at_zero = jnp.diag(hessian_t(zero, dense_t, None, weights, 0.3))
            elsewhere = jnp.diag(hessian_t(other, dense_t, None, weights, 0.3))
            if classes == 2:
                np.testing.assert_allclose(bound, at_zero, rtol=1e-12)
            assert np.all(bound >= elsewhere - 1e-12)


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


@pytest.mark.parametrize(("name", "value"), [("max_cg_iter", 0), ("max_cg_iter", 2.5),
                                             ("max_linesearch_steps", -1)])
def test_bad_solver_params_are_refused_with_their_name(name, value):
    X, y = _problem(m=40, n=3)
    with pytest.raises(ValueError, match=rf"solver_params\['{name}'\] must be an integer >= 1 "
                                         rf"for solver 'newton-cg', got {value}"):
        jl.fit(X, y, solver="newton-cg", solver_params={name: value})
