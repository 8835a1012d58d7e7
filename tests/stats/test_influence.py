"""jaxlogreg.influence: against statsmodels' GLMInfluence, one exact Newton step of each
leave-one-out fit (jax.hessian, not the hand-written Hessian), and actual leave-one-out refits."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import statsmodels.api as sm

import jaxlogreg
from jaxlogreg.core.hessian import flat, unflat
from jaxlogreg.core.loss import objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.stats import influence as influence_module

RTOL = 1e-6  # statsmodels agreement (float64; measured about 1e-13)


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def make_data(m: int, n: int, K: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    W = rng.standard_normal((n, K if K > 2 else 1))
    z = X @ W + 0.3
    y = (rng.random(m) < 1 / (1 + np.exp(-z[:, 0]))).astype(float) if K == 2 else np.argmax(
        z + rng.gumbel(size=z.shape), axis=1)
    return X, y


def objective_sum(theta, X, y, s, C, like, fit_intercept):
    """``Σ s_i L_i + ||w||²/(2C)`` on the flat parameters (from the loss, not the Hessian)."""
    l2 = 0.0 if np.isinf(C) else 1.0 / (C * jnp.sum(s))
    params = unflat(theta, like, fit_intercept)
    return jnp.sum(s) * objective_t(params, X.T, y, s, l2)


@functools.partial(jax.jit, static_argnames=("C", "fit_intercept"))
def newton(theta, X, y, s, like, steps=30, *, C, fit_intercept):
    """Newton's method on jax.hessian; softmax's H is singular: its pseudo-inverse there."""
    J = functools.partial(objective_sum, X=X, y=y, s=s, C=C, like=like,
                          fit_intercept=fit_intercept)

    def step(_, t):
        H, g = jax.hessian(J)(t), jax.grad(J)(t)
        if like.w.ndim == 1:
            return t - jnp.linalg.solve(H, g)
        return t - jnp.linalg.pinv(H, hermitian=True) @ g

    return jax.lax.fori_loop(0, steps, step, theta)


def fitted(X, y, C=np.inf, K=2, s=None, fit_intercept=True):
    like = jaxlogreg.init_params(X.shape[1], K, jnp.float64)
    s = np.ones(len(y)) if s is None else s
    theta = newton(flat(like, fit_intercept), X, y, s, like, C=C, fit_intercept=fit_intercept)
    return unflat(theta, like, fit_intercept), s


def loo_refits(params, X, y, s, C, rows, fit_intercept=True, steps=30):
    """β̂_(i) for each i in ``rows``: Newton from β̂ with s_i = 0 (``steps=1``: one step)."""
    theta = flat(params, fit_intercept)
    masks = np.repeat(s[None], len(rows), 0)
    masks[np.arange(len(rows)), rows] = 0.0
    refit = jax.vmap(lambda w: newton(theta, X, y, w, params, steps, C=C,
                                      fit_intercept=fit_intercept))
    return np.asarray(refit(jnp.asarray(masks)))


def sklearn_fit(X, y, C=np.inf, s=None, fit_intercept=True):
    """A fit to start from (the one-step identity below holds at any parameters)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, tol=1e-10, max_iter=1000, fit_intercept=fit_intercept)
    model.fit(X, y, sample_weight=s)
    coef, intercept = (model.coef_[0], model.intercept_[0]) if model.coef_.shape[0] == 1 else (
        model.coef_.T, model.intercept_)
    return Params(np.asarray(coef), np.asarray(intercept) * fit_intercept)


@functools.partial(jax.jit, static_argnames=("C", "fit_intercept"))
def newton_step_without(params, X, y, s, masks, *, C, fit_intercept):
    """For each weight vector in ``masks`` (s with one entry zeroed), the Newton step of J at
    ``params`` minus that of J without the example: ``-H_(i)⁻¹ (∇J - ∇J_(i))`` (jax.hessian)."""
    theta = flat(params, fit_intercept)
    J = functools.partial(objective_sum, X=X, y=y, C=C, like=params, fit_intercept=fit_intercept)
    full = jax.grad(J)(theta, s=s)

    def one(mask):
        H = jax.hessian(J)(theta, s=mask)
        d = full - jax.grad(J)(theta, s=mask)
        return -(jnp.linalg.pinv(H, hermitian=True) @ d)

    return jax.vmap(one)(masks)


def glm_influence(X, y, **weights):
    result = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial(), **weights).fit(tol=1e-13)
    params = Params(np.asarray(result.params[1:]), np.asarray(result.params[0]))
    d_params = result.get_influence().d_params
    return params, result.get_influence(), np.c_[d_params[:, 1:], d_params[:, :1]]


def spector():
    data = sm.datasets.spector.load_pandas()
    return data.exog.to_numpy(float), data.endog.to_numpy(float)


@pytest.mark.parametrize("data", ["spector", "synthetic"])
def test_binomial_matches_statsmodels(data):
    X, y = spector() if data == "spector" else make_data(300, 4)
    params, theirs, d_params = glm_influence(X, y)
    ours = jaxlogreg.influence(params, X, y)
    np.testing.assert_allclose(ours.leverage, theirs.hat_matrix_diag, rtol=RTOL)
    np.testing.assert_allclose(ours.cooks_distance, theirs.cooks_distance[0], rtol=RTOL)
    np.testing.assert_allclose(ours.dfbeta, d_params, rtol=RTOL, atol=RTOL * np.abs(d_params).max())
    assert ours.leverage.dtype == np.float64 and ours.n_params == X.shape[1] + 1


def test_without_intercept_matches_statsmodels():
    X, y = make_data(200, 3, seed=1)
    result = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-13)
    theirs = result.get_influence()
    ours = jaxlogreg.influence(Params(np.asarray(result.params), np.zeros(())), X, y,
                               fit_intercept=False)
    np.testing.assert_allclose(ours.leverage, theirs.hat_matrix_diag, rtol=RTOL)
    np.testing.assert_allclose(ours.cooks_distance, theirs.cooks_distance[0], rtol=RTOL)
    assert ours.dfbeta.shape == (200, 3)


def test_weights_are_statsmodels_var_weights():
    """Weights: leverage, Cook's and dfbeta equal statsmodels' with ``var_weights``; with
    ``freq_weights`` the leverage is the same, its Cook's distance is ours / s_i."""
    X, y = spector()
    s = np.random.default_rng(0).integers(1, 4, len(y)).astype(float)
    params, theirs, d_params = glm_influence(X, y, var_weights=s)
    ours = jaxlogreg.influence(params, X, y, sample_weight=s)
    np.testing.assert_allclose(ours.leverage, theirs.hat_matrix_diag, rtol=RTOL)
    np.testing.assert_allclose(ours.cooks_distance, theirs.cooks_distance[0], rtol=RTOL)
    np.testing.assert_allclose(ours.dfbeta, d_params, rtol=RTOL, atol=RTOL * np.abs(d_params).max())
    _, freq, _ = glm_influence(X, y, freq_weights=s)
    np.testing.assert_allclose(ours.leverage, freq.hat_matrix_diag, rtol=RTOL)
    np.testing.assert_allclose(ours.cooks_distance, s * freq.cooks_distance[0], rtol=RTOL)


SOFTMAX = pytest.mark.slow  # compiles a softmax Newton (2-4 s)
CASES = [  # (K, C, fit_intercept)
    (2, np.inf, True), (2, 0.5, True), (2, 0.5, False),
    pytest.param(3, np.inf, True, marks=SOFTMAX), pytest.param(3, 0.5, True, marks=SOFTMAX),
    pytest.param(3, 0.5, False, marks=SOFTMAX)]


@pytest.mark.parametrize(("K", "C", "fit_intercept"), CASES)
def test_dfbeta_is_one_newton_step_of_each_leave_one_out_fit(K, C, fit_intercept):
    """dfbeta_i = -H_(i)⁻¹ g_i: β̂ minus one Newton step without example i, with H_(i) from
    jax.hessian of the loss (not the hand-written Hessian); so it also checks the leverage."""
    X, y = make_data(60, 3, K, seed=2)
    s = np.random.default_rng(3).uniform(0.5, 2.0, 60)
    params = sklearn_fit(X, y, C, s, fit_intercept)
    ours = jaxlogreg.influence(params, X, y, sample_weight=s, C=C, fit_intercept=fit_intercept)
    rows = np.arange(0, 60, 6)
    masks = np.repeat(s[None], len(rows), 0)
    masks[np.arange(len(rows)), rows] = 0.0
    expected = np.asarray(newton_step_without(params, X, y, s, masks, C=C,
                                              fit_intercept=fit_intercept))
    np.testing.assert_allclose(ours.dfbeta[rows], expected, atol=1e-9 * np.abs(expected).max())
    K_params = K if K > 2 else 1
    assert ours.dfbeta.shape == (60, 3 * K_params + K_params * fit_intercept)


@pytest.mark.parametrize("K", [2, pytest.param(3, marks=SOFTMAX)])
def test_leverages_sum_to_the_degrees_of_freedom(K):
    """Σ h_i = rank of H: k for binary, (K - 1)(n + 1) for unpenalised softmax."""
    X, y = make_data(120, 3, K, seed=4)
    params = glm_influence(X, y)[0] if K == 2 else fitted(X, y, np.inf, K)[0]
    ours = jaxlogreg.influence(params, X, y)
    expected = 4 if K == 2 else (K - 1) * 4
    assert abs(ours.leverage.sum() - expected) < 1e-9 * expected
    assert np.all((ours.leverage >= 0) & (ours.leverage < 1))


@pytest.mark.slow  # compiles a vmapped Newton refit (about 3-6 s)
@pytest.mark.parametrize(("K", "C"), [(2, np.inf), (2, 1.0), (3, np.inf), (3, 1.0)])
def test_one_step_estimates_against_leave_one_out_refits(K, C):
    """dfbeta and the test-loss estimates against converged refits without example i, for the
    8 examples of largest Cook's distance (m = 200, k = 4 or 12, h_i up to 0.1). Measured: dfbeta's
    max relative error 0.05-0.06; the first-order test-loss estimate ``-s_i I_i`` off by at most
    8.4% of the largest actual change; ``test_loss_change`` by at most 7.3%."""
    X, y = make_data(200, 3, K, seed=5)
    X_test, y_test = make_data(100, 3, K, seed=6)
    params, s = fitted(X, y, C, K)
    ours = jaxlogreg.influence(params, X, y, C=C, X_test=X_test, y_test=y_test)
    rows = ours.most_influential(8)
    refits = loo_refits(params, X, y, s, C, rows)
    actual = np.asarray(flat(params)) - refits
    error = np.abs(ours.dfbeta[rows] - actual).max(axis=1) / np.abs(actual).max(axis=1)
    assert error.max() < 0.1, error
    test_loss = jax.vmap(lambda t: objective_sum(t, X_test, y_test, np.ones(100), np.inf, params,
                                                 True))
    change = np.asarray(test_loss(jnp.asarray(refits))) - float(test_loss(flat(params)[None])[0])
    estimate = -s[rows] * ours.test_loss_influence[rows]
    assert np.abs(estimate - change).max() < 0.15 * np.abs(change).max()
    corrected = ours.test_loss_change[rows]
    assert np.abs(corrected - change).max() < 0.1 * np.abs(change).max()
    big = np.abs(change) > 0.2 * np.abs(change).max()
    assert np.all(np.sign(estimate[big]) == np.sign(change[big]))


def test_sparse_equals_dense():
    X, y = make_data(100, 4, seed=11)
    X[np.abs(X) < 0.8] = 0.0
    params, _, _ = glm_influence(X, y)
    dense = jaxlogreg.influence(params, X, y, X_test=X[:20], y_test=y[:20])
    sparse = jaxlogreg.influence(params, sp.csr_matrix(X), y, X_test=sp.csr_array(X[:20]),
                                 y_test=y[:20])
    for name in ("leverage", "cooks_distance", "dfbeta", "test_loss_influence",
                 "test_loss_change"):
        np.testing.assert_allclose(getattr(sparse, name), getattr(dense, name), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.slow  # fits a softmax model with a compiled Newton (about 4 s)
def test_chunked_sparse_softmax_equals_dense(monkeypatch):
    X, y = make_data(150, 5, 3, seed=7)
    X[np.abs(X) < 0.8] = 0.0
    params, _ = fitted(X, y, 2.0, 3)
    dense = jaxlogreg.influence(params, X, y, C=2.0, X_test=X[:20], y_test=y[:20])
    monkeypatch.setattr(influence_module, "CHUNK_ELEMENTS", 700)  # 700 // 108 -> 6-row chunks
    chunked = jaxlogreg.influence(params, sp.csr_array(X), y, C=2.0,
                                  X_test=sp.csr_matrix(X[:20]), y_test=y[:20])
    for name in ("leverage", "cooks_distance", "dfbeta", "test_loss_influence",
                 "test_loss_change"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(dense, name), rtol=1e-10,
                                   atol=1e-12)


def test_float32_parameters_give_float32_results_close_to_float64():
    X, y = make_data(300, 4, seed=8)
    params, exact, _ = glm_influence(X, y)
    single = jaxlogreg.influence(Params(np.float32(params.w), np.float32(params.b)),
                                 X.astype(np.float32), y)
    assert single.leverage.dtype == np.float32
    tol = 100 * np.finfo(np.float32).eps
    np.testing.assert_allclose(single.leverage, exact.hat_matrix_diag, rtol=tol)
    np.testing.assert_allclose(single.cooks_distance, exact.cooks_distance[0], rtol=tol)


def test_after_jaxlogreg_fit_and_most_influential():
    X, y = spector()
    result = jaxlogreg.fit(X, y, C=10.0, dtype="float64", tol=1e-12, max_iter=500)
    ours = jaxlogreg.influence(result.params, X, y, C=10.0)
    order = ours.most_influential(5)
    assert np.all(np.diff(ours.cooks_distance[order]) <= 0) and len(order) == 5
    assert ours.cooks_distance[order[0]] == ours.cooks_distance.max()
    by_leverage = ours.most_influential(32, by="leverage")
    assert sorted(by_leverage) == list(range(32))
    assert ours.most_influential(3, by="dfbeta").shape == (3,)
    with pytest.raises(ValueError, match="needs X_test and y_test"):
        ours.most_influential(3, by="test_loss_influence")
    with pytest.raises(ValueError, match="by must be one of"):
        ours.most_influential(3, by="size")
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        ours.most_influential(0)


def test_bad_input_gets_a_clear_error():
    X, y = make_data(30, 3, seed=9)
    params = Params(np.zeros(3), np.zeros(()))
    cases = [
        ({"X": X[:, :2]}, ValueError, "X must have 3 columns"),
        ({"y": y[:10]}, ValueError, r"y must have shape \(30,\)"),
        ({"y": y + 2}, ValueError, "binary labels"),
        ({"sample_weight": np.ones(4)}, ValueError, r"sample_weight must have shape \(30,\)"),
        ({"sample_weight": -np.ones(30)}, ValueError, "sample_weight must be >= 0"),
        ({"C": 0.0}, ValueError, "C must be a real number > 0"),
        ({"C": "big"}, ValueError, "C must be a real number > 0"),
        ({"X_test": X}, ValueError, "X_test was given without y_test"),
        ({"y_test": y}, ValueError, "y_test was given without X_test"),
        ({"X_test": X[:, :1], "y_test": y}, ValueError, "X_test must have 3 columns"),
        ({"X_test": X, "y_test": y[:3]}, ValueError, r"y_test must have shape \(30,\)"),
        ({"X": np.where(X > 1, np.nan, X)}, ValueError, "X must be finite"),
        ({"params": (np.zeros(3), 0.0)}, TypeError, "params must be jaxlogreg.Params"),
        ({"params": Params(np.full(3, np.nan), np.zeros(()))}, ValueError,
         "params.w must be finite"),
    ]
    for change, error, message in cases:
        arguments = {"params": params, "X": X, "y": y} | change
        with pytest.raises(error, match=message):
            jaxlogreg.influence(arguments.pop("params"), arguments.pop("X"), arguments.pop("y"),
                                **arguments)


def test_singular_hessian_is_refused():
    X, y = make_data(40, 2, seed=10)
    X = np.c_[X, X[:, 0]]  # collinear columns, no penalty
    with pytest.raises(np.linalg.LinAlgError, match="singular.*use a finite C"):
        jaxlogreg.influence(Params(np.zeros(3), np.zeros(())), X, y)
