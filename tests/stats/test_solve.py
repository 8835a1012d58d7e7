"""``jaxlogreg.solve``: the optimum as a JAX function, differentiated by the implicit function
theorem. Its derivatives are held to central finite differences of refits, its solution to
scikit-learn's, and it composes with jit, vmap, grad and jvp. float64, scoped per test."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.stats.solve import solve

FD_RTOL = 1e-5  # the bound: implicit derivative vs central differences of refits
TIGHT = 1e-12  # the refits' Newton tolerance


def _problem(m: int = 60, n: int = 4, seed: int = 0, classes: int = 2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    score = X @ rng.normal(size=(n, classes)) + rng.normal(size=(m, classes))
    y = np.argmax(score, axis=1) if classes > 2 else (score[:, 0] > 0).astype(np.int64)
    return X, y


def _val_loss(params, X, y):
    """Mean cross-entropy on held-out rows (binary, labels possibly soft, or softmax)."""
    z = X @ params.w + params.b
    if params.w.ndim == 1:
        return jnp.mean(jax.nn.softplus(z) - y * z)
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[:, None], 1)[:, 0])


def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def _sk_objective(X, y, C, params, sample_weight=None):
    """scikit-learn's objective C Σ s L + ½||w||² at ``params``."""
    s = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    w, b = np.asarray(params.w), np.asarray(params.b)
    z = X @ w + b
    if w.ndim == 1:
        loss = np.logaddexp(0, z) - y * z
    else:
        loss = np.logaddexp.reduce(z, axis=1) - z[np.arange(len(y)), y]
    return C * np.sum(s * loss) + 0.5 * np.sum(w * w)


@pytest.mark.slow
@pytest.mark.parametrize("classes", [2, 3])
def test_the_solution_is_scikit_learns(classes):
    X, y = _problem(classes=classes)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=X.shape[0])
    with jax.enable_x64(True):
        params, info = solve(X, y, C=0.3, sample_weight=weights, n_classes=classes,
                             return_info=True)
        sk = SkLogisticRegression(C=0.3, tol=1e-12, max_iter=10_000).fit(X, y, weights)
        w_sk = sk.coef_[0] if classes == 2 else sk.coef_.T
        b_sk = sk.intercept_[0] if classes == 2 else sk.intercept_
        ours = _sk_objective(X, y, 0.3, params, weights)
        theirs = _sk_objective(X, y, 0.3, jl.Params(w_sk, b_sk), weights)
    assert bool(info.converged) and int(info.n_iter) < 20
    assert ours <= theirs * (1 + 1e-6)
    assert abs(ours - theirs) <= 1e-6 * abs(theirs)
    np.testing.assert_allclose(params.w, w_sk, rtol=1e-5, atol=1e-6)


def test_grad_wrt_C_equals_finite_differences_of_refits():
    X, y = _problem()
    with jax.enable_x64(True):
        def f(C):
            return _val_loss(solve(X[:40], y[:40], C=C, tol=TIGHT), X[40:], y[40:])

        grad = jax.jit(jax.grad(f))(0.5)
        fd = _central(jax.jit(f), 0.5, 1e-4)
    assert _rel(grad, fd) < FD_RTOL


@pytest.mark.parametrize("classes", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_grad_wrt_weights_and_X_equals_finite_differences(classes):
    X, y = _problem(classes=classes)
    weights = np.linspace(0.5, 1.5, 40)
    entries = [(0, 0), (7, 2), (31, 3)]
    with jax.enable_x64(True):
        def f(s, X_train):
            params = solve(X_train, y[:40], C=0.8, sample_weight=s, n_classes=classes, tol=TIGHT)
            return _val_loss(params, X[40:], y[40:])

        f_jit = jax.jit(f)
        d_s, d_X = jax.jit(jax.grad(f, argnums=(0, 1)))(weights, X[:40])
        h = 1e-5
        for i in (0, 13, 39):
            e = np.zeros(40)
            e[i] = h
            fd = (f_jit(weights + e, X[:40]) - f_jit(weights - e, X[:40])) / (2 * h)
            assert _rel(d_s[i], fd) < FD_RTOL, ("sample_weight", i)
        for i, j in entries:
            E = np.zeros((40, X.shape[1]))
            E[i, j] = h
            fd = (f_jit(weights, X[:40] + E) - f_jit(weights, X[:40] - E)) / (2 * h)
            assert _rel(d_X[i, j], fd) < FD_RTOL, ("X", i, j)


@pytest.mark.slow
def test_grad_wrt_soft_labels_equals_finite_differences():
    X, y = _problem()
    soft = np.clip(y + np.random.default_rng(2).normal(0, 0.2, size=y.shape), 0.05, 0.95)
    with jax.enable_x64(True):
        def f(y_train):
            return _val_loss(solve(X[:40], y_train, C=2.0, tol=TIGHT), X[40:], y[40:])

        grad = jax.jit(jax.grad(f))(soft[:40])
        f_jit, h = jax.jit(f), 1e-5
        for i in (0, 17, 38):
            e = np.zeros(40)
            e[i] = h
            assert _rel(grad[i], (f_jit(soft[:40] + e) - f_jit(soft[:40] - e)) / (2 * h)) < FD_RTOL


def _val_loss_of_X(X, y, linear_solver="cholesky"):
    def f(X_train):
        params = solve(X_train, y[:40], C=0.5, tol=TIGHT, linear_solver=linear_solver)
        return _val_loss(params, X[40:], y[40:])

    return f


@pytest.mark.slow
def test_jvp_is_the_gradient_along_the_direction():
    X, y = _problem()
    direction = np.random.default_rng(3).normal(size=X[:40].shape)
    with jax.enable_x64(True):
        f = _val_loss_of_X(X, y)
        grad, tangent = jax.jit(lambda x, d: (jax.grad(f)(x), jax.jvp(f, (x,), (d,))[1]))(
            X[:40], direction)
        along = np.sum(np.asarray(grad) * direction)
    np.testing.assert_allclose(tangent, along, rtol=1e-10)


@pytest.mark.slow
def test_conjugate_gradients_give_cholesky_s_derivatives():
    X, y = _problem()
    with jax.enable_x64(True):
        grad = jax.grad(_val_loss_of_X(X, y))(X[:40])
        grad_cg = jax.grad(_val_loss_of_X(X, y, "cg"))(X[:40])
    np.testing.assert_allclose(grad_cg, grad, rtol=1e-7, atol=1e-12)


def test_vmap_over_C_is_a_loop_of_solves():
    X, y = _problem()
    Cs = jnp.array([0.01, 0.3, 10.0])
    with jax.enable_x64(True):
        batched = jax.jit(jax.vmap(lambda C: solve(X, y, C=C)))(jnp.asarray(Cs, jnp.float64))
        one_by_one = [solve(X, y, C=float(C)) for C in Cs]
    for c, params in enumerate(one_by_one):
        np.testing.assert_allclose(batched.w[c], params.w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(batched.b[c], params.b, rtol=1e-10, atol=1e-12)


def test_no_penalty_on_separable_classes_has_no_optimum_and_says_so():
    X, _ = _problem()
    separable = (X[:, 0] > 0).astype(np.int64)
    with jax.enable_x64(True):
        params, info = solve(X, separable, C=np.inf, return_info=True)
        fine, fine_info = solve(X, separable, C=1.0, return_info=True)
    assert not bool(info.converged)
    assert np.all(np.isnan(params.w)) and np.isnan(params.b)
    assert bool(fine_info.converged) and np.all(np.isfinite(fine.w))


@pytest.mark.parametrize("kwargs, message", [
    ({"C": 0.0}, "C must be one number > 0"),
    ({"C": -1.0}, "C must be one number > 0"),
    ({"C": [1.0, 2.0]}, "C must be one number > 0"),
    ({"C": 1.0, "linear_solver": "lu"}, "linear_solver must be one of"),
    ({"C": 1.0, "max_iter": 0}, "max_iter must be an integer >= 1"),
    ({"C": 1.0, "tol": -1.0}, "tol must be a finite real number > 0"),
    ({"C": 1.0, "init": jl.Params(np.zeros(3), np.zeros(()))}, "init must be Params with w"),
    ({"C": 1.0, "sample_weight": -np.ones(60)}, "sample_weight must be >= 0"),
])
def test_bad_settings_are_refused_by_name(kwargs, message):
    X, y = _problem()
    with pytest.raises(ValueError, match=message):
        solve(X, y, **kwargs)


def test_labels_outside_0_1_are_refused():
    X, y = _problem()
    with pytest.raises(ValueError, match=r"y must hold binary labels in \[0, 1\]"):
        solve(X, y * 2.0, C=1.0)
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 2\]"):
        solve(X, y + 2, C=1.0, n_classes=3)
