"""The working-set solver for binary L1 / elastic-net fits (jaxlogreg.training.working_set):
its duality gap bounds J - J*, and its certified optimum matches scikit-learn's liblinear and
saga and skglm (objective within 1e-6 relative in float64, the same zeros), with weights, dense
and sparse X; a fit that cannot certify its optimum says so. skglm compiles with numba on first
use (seconds): its comparisons are slow-tier."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _sparse_l1 import sparse_l1_problem
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.core.loss import dot
from jaxlogreg.core.model import Params
from jaxlogreg.core.sparse import coo_of_csr
from jaxlogreg.training import certificate
from jaxlogreg.training.problem import validate
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.working_set import duality_gap, fit_problem, kkt_violation, solve

RTOL = 1e-6  # the targets: objective within 1e-6 relative, the same zeros
ZERO = 1e-6  # a coefficient above this where the other solution has a zero: another support


def _sparse_problem(m=400, n=300, density=0.08, seed=0):
    return sparse_l1_problem(m, n, density=density, n_true=12, seed=seed)


def _lambda_max(X, y, s):
    s = s / s.sum()
    return float(np.max(np.abs(X.T @ (s * (y - s @ y)))))


def _score(X, y, w, b, l1, l2, s=None):
    s = np.full(len(y), 1 / len(y)) if s is None else s / s.sum()
    return duality_gap(X, y.astype(float), s, w, b, l1, l2, True)[0]


def _same_support(a, b):
    return int(np.sum((a == 0) & (np.abs(b) > ZERO)) + np.sum((b == 0) & (np.abs(a) > ZERO)))


def _skglm(X, y, l1, l2, fit_intercept=True):
    skglm = pytest.importorskip("skglm")
    est = skglm.SparseLogisticRegression(alpha=l1 + l2, l1_ratio=l1 / (l1 + l2), tol=1e-12,
                                         max_iter=100, max_epochs=100_000,
                                         fit_intercept=fit_intercept).fit(X, 2 * y - 1)
    return est.coef_.ravel(), float(np.ravel(est.intercept_)[0]) if fit_intercept else 0.0


def test_the_duality_gap_bounds_the_distance_to_the_optimum_and_is_zero_there():
    X, y = _sparse_problem()
    s = np.full(len(y), 1 / len(y))
    l1 = 0.1 * _lambda_max(X, y, s)
    best = solve(X, y, None, l1, tol=1e-11)  # the gap can be driven to ~0: J* within 1e-11 J
    rng = np.random.default_rng(1)
    for scale in (1e-4, 1e-2, 1.0):  # points near and far: gap >= J - J*
        w = best.w + scale * rng.standard_normal(best.w.shape) * (rng.random(300) < 0.1)
        J, gap, _ = duality_gap(X, y.astype(float), s, w, best.b + scale, l1, 0.0, True)
        assert gap >= J - best.objective - 1e-14
    assert best.status == "converged" and best.gap <= 1e-11 * best.objective


@pytest.mark.parametrize("sparse", [True, False])
def test_the_gap_runs_jitted_on_the_device_layouts_and_agrees_with_the_host(sparse):
    """certificate.duality_gap inside jit, X as the training loop holds it (a CooMatrix of Xt,
    or dense Xt): the same J, gap and gradient as on the host, for L1 and elastic net."""
    X, y = _sparse_problem()
    s = np.full(len(y), 1 / len(y))
    l1 = 0.1 * _lambda_max(X, y, s)
    w = solve(X, y, None, l1, tol=1e-6).w
    w = w + 1e-3 * (w != 0)  # off the optimum: a gap well above rounding
    with jax.enable_x64(True):
        Xt = coo_of_csr(X, jnp.float64, transpose=True) if sparse else jnp.asarray(X.T.toarray())

        @jax.jit
        def gap(Xt, w, b, l2):
            z = dot(w, Xt) + b
            return certificate.duality_gap(z, jnp.asarray(y), jnp.asarray(s), w, l1, l2, True,
                                           lambda u: dot(Xt, u))

        for l2 in (0.0, 0.5 * l1):
            host = duality_gap(X, y.astype(float), s, w, 0.2, l1, l2, True)
            device = gap(Xt, jnp.asarray(w), 0.2, l2)
            np.testing.assert_allclose([float(device[0]), float(device[1])], host[:2],
                                       rtol=1e-9)
            np.testing.assert_allclose(np.asarray(device[2]), host[2], rtol=1e-9, atol=1e-15)
            assert host[1] > 1e-6


def test_kkt_violation_is_the_distance_of_the_gradient_to_the_subdifferential():
    w = np.array([0.0, 0.0, 1.0, -2.0])
    grad = np.array([0.5, -2.0, -1.0, 3.0])
    np.testing.assert_allclose(kkt_violation(w, grad, 1.0), [0.0, 1.0, 0.0, 2.0])


def _liblinear(X, y, l1, fit_intercept=True):
    """liblinear penalises its intercept, λ₁ |b| / intercept_scaling: 1e-9 of J here."""
    est = SkLogisticRegression(C=1 / (l1 * len(y)), l1_ratio=1.0, solver="liblinear", tol=1e-8,
                               max_iter=1000, intercept_scaling=1e3,
                               fit_intercept=fit_intercept).fit(X, y)
    return est.coef_.ravel(), float(est.intercept_[0]) if fit_intercept else 0.0


def _assert_same_optimum(r, X, y, w, b, l1, l2, s=None):
    J = _score(X, y, w, b, l1, l2, s)
    assert r.objective <= J * (1 + RTOL)
    assert J <= r.objective * (1 + RTOL)  # the peer reaches it too: one optimum
    assert _same_support(r.w, w) == 0


@pytest.mark.parametrize("strength", [0.3, 0.05])
def test_binary_l1_on_sparse_x_matches_liblinear(strength):
    X, y = _sparse_problem()
    l1 = strength * _lambda_max(X, y, np.ones(len(y)))
    r = solve(X, y, None, l1, tol=1e-9)
    assert r.status == "converged" and r.gap <= 1e-9 * r.objective
    _assert_same_optimum(r, X, y, *_liblinear(X, y, l1), l1, 0.0)
    assert 0 < np.count_nonzero(r.w) < X.shape[1]


@pytest.mark.slow
@pytest.mark.parametrize("strength", [0.3, 0.05])
def test_binary_l1_on_sparse_x_matches_skglm(strength):
    X, y = _sparse_problem()
    l1 = strength * _lambda_max(X, y, np.ones(len(y)))
    r = solve(X, y, None, l1, tol=1e-9)
    _assert_same_optimum(r, X, y, *_skglm(X, y, l1, 0.0), l1, 0.0)


def test_elastic_net_with_sample_weights_on_dense_x_matches_saga():
    X, y = _sparse_problem(m=200, seed=3)
    weights = np.random.default_rng(2).integers(1, 4, len(y)).astype(float)
    l1 = 0.1 * _lambda_max(X, y, weights)
    l2 = 0.5 * l1
    r = solve(X.toarray(), y, weights, l1, l2, tol=1e-9)
    assert r.status == "converged"
    saga = SkLogisticRegression(C=1 / ((l1 + l2) * weights.sum()), l1_ratio=l1 / (l1 + l2),
                                solver="saga", tol=1e-12, max_iter=100_000).fit(
        X, y, sample_weight=weights)
    _assert_same_optimum(r, X, y, saga.coef_.ravel(), float(saga.intercept_[0]), l1, l2, weights)


@pytest.mark.slow
def test_elastic_net_with_sample_weights_matches_skglm_on_repeated_rows():
    """Integer weights are repeated rows (skglm has no weights): the same J, the same zeros."""
    X, y = _sparse_problem(m=200, seed=3)
    counts = np.random.default_rng(2).integers(1, 4, len(y))
    rows = np.repeat(np.arange(len(y)), counts)
    l1 = 0.1 * _lambda_max(X, y, counts.astype(float))
    l2 = 0.5 * l1
    r = solve(X, y, counts.astype(float), l1, l2, tol=1e-9)
    w_sk, b_sk = _skglm(X[rows], y[rows], l1, l2)
    J_sk = _score(X, y, w_sk, b_sk, l1, l2, counts.astype(float))
    assert r.status == "converged"
    assert abs(r.objective - J_sk) <= RTOL * J_sk
    assert _same_support(r.w, w_sk) == 0


def test_dense_and_sparse_x_give_one_optimum_without_intercept_too():
    X, y = _sparse_problem(m=150, n=40, density=0.3, seed=4)
    l1 = 0.1 * _lambda_max(X, y, np.ones(len(y)))
    dense = solve(X.toarray(), y, None, l1, fit_intercept=False, tol=1e-9)
    sparse = solve(X, y, None, l1, fit_intercept=False, tol=1e-9)
    w_lib, _ = _liblinear(X, y, l1, fit_intercept=False)
    assert dense.b == sparse.b == 0.0
    np.testing.assert_allclose(dense.w, sparse.w, atol=1e-7)
    assert _same_support(dense.w, w_lib) == 0
    J_lib = duality_gap(X, y.astype(float), np.full(len(y), 1 / len(y)), w_lib, 0.0, l1, 0.0,
                        False)[0]
    assert abs(dense.objective - J_lib) <= RTOL * J_lib


@pytest.mark.slow  # 1,000 proximal iterations
def test_where_the_proximal_loop_stops_early_the_working_set_reaches_liblinears_optimum():
    """Wide float64 data (2,000 features, 300 rows): the proximal loop ends 1e-4 above the
    optimum after max_iter (and says so); the working-set fit certifies the optimum that
    liblinear reaches, with its zeros."""
    X, y = _sparse_problem(m=300, n=2000, density=0.02)
    l1 = 0.02 * _lambda_max(X, y, np.ones(len(y)))
    proximal = jl.fit(X, y, C=1 / (l1 * len(y)), penalty="l1", solver="proximal", tol=1e-6,
                      max_iter=1000, dtype="float64")
    r = solve(X, y, None, l1, tol=1e-9)
    assert r.status == "converged"
    _assert_same_optimum(r, X, y, *_liblinear(X, y, l1), l1, 0.0)
    assert proximal.loss > r.objective * (1 + RTOL) and proximal.status != "converged"


def test_a_fit_that_cannot_certify_its_optimum_says_so():
    X, y = _sparse_problem()
    l1 = 0.05 * _lambda_max(X, y, np.ones(len(y)))
    r = solve(X, y, None, l1, tol=1e-8, max_iter=1)
    assert r.status == "max_iter"
    assert r.gap > 1e-8 * r.objective
    unreachable = solve(X, y, None, l1, tol=1e-30)  # below float64 rounding
    assert unreachable.status in ("stalled", "max_iter")
    assert unreachable.gap > 1e-30 * unreachable.objective


def test_fit_problem_uses_the_config_and_warm_starts():
    X, y = _sparse_problem()
    config = TrainConfig(C=0.5, penalty="l1", solver="proximal", tol=1e-9)
    problem = validate(X, y, dtype="float32")
    params, rounds, history, loss, status = fit_problem(problem, config)
    assert status == "converged" and params.w.dtype == np.float32
    assert history.shape == (rounds + 1,) and history[-1] == pytest.approx(loss)
    assert np.all(np.diff(history) <= 1e-12)
    again = fit_problem(problem, config, Params(params.w, params.b))
    assert again[4] == "converged" and again[1] <= 1
    assert again[3] == pytest.approx(loss, rel=1e-6)


def test_the_binary_fit_problem_sends_more_classes_to_the_softmax_solver():
    X, _ = _sparse_problem(m=60, n=10, density=0.5)
    config = TrainConfig(penalty="l1", solver="proximal")
    with pytest.raises(ValueError, match="fits binary models, got 3 classes: use "
                                         "working_set_softmax.fit_problem"):
        fit_problem(validate(X, np.arange(60) % 3), config)


def test_fit_problem_refuses_non_finite_x():
    X, y = _sparse_problem(m=60, n=10, density=0.5)
    config = TrainConfig(penalty="l1", solver="proximal")
    bad = X.toarray()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        fit_problem(validate(bad, y), config)


def test_the_rounds_keep_the_best_dual_bound_and_say_what_stopped_them():
    from jaxlogreg.training.working_set import Rounds

    rounds = Rounds()
    assert rounds.verdict(1.0, 0.1, 1e-3, 0, 10) is None and rounds.gap == pytest.approx(0.1)
    # a later round's weaker dual point (0.75 < 0.9) does not loosen the certificate
    assert rounds.verdict(0.95, 0.2, 1e-3, 1, 10) is None and rounds.gap == pytest.approx(0.05)
    assert rounds.verdict(0.9005, 0.3, 1e-3, 2, 10) == "converged"  # 5e-4 <= 1e-3 · J
    stalled, share = Rounds(), Rounds().share
    assert stalled.verdict(1.0, 0.5, 1e-3, 0, 10) is None and stalled.share == share
    while (status := stalled.verdict(1.0, 0.5, 1e-3, 0, 10)) is None:
        assert stalled.share < share  # J did not go down: each round asks a tighter solve
        share = stalled.share
    assert status == "stalled"
    assert Rounds().verdict(1.0, 0.5, 1e-3, 10, 10) == "max_iter"
    assert Rounds().verdict(1.0, 0.5, 1e-3, 0, 10, too_wide=True) == "stalled"
