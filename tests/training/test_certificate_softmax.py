"""The softmax duality gap (jaxlogreg.training.certificate) bounds J - J*, closes at the optimum,
and certifies the proximal loop's "converged" for multinomial L1 / elastic-net fits.

J* comes from an independent solver: scipy's L-BFGS-B on the smooth split W = U - V (U, V >= 0),
so the dual bound is never checked against itself."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax
from test_cuda_lowering import DENSE_LOOP, K, M, N, coo, loop_args, lower_for_cuda, sds

import jaxlogreg as jl
from jaxlogreg.core.model import float64_enabled
from jaxlogreg.training import certificate, loop
from jaxlogreg.training.settings import TrainConfig

EPS = np.finfo(np.float64).eps
SLACK = 1e4 * EPS  # relative: rounding of J and D, sums over a few hundred terms


def _objective_and_gap(X, y, s, W, b, l1, l2, fit_intercept=True):
    X = X.toarray() if sp.issparse(X) else X
    W, b = np.asarray(W, float), np.asarray(b, float)
    with float64_enabled(True):
        J, gap, _ = certificate.duality_gap(X @ W + b, y, s, W, l1, l2, fit_intercept,
                                            lambda u: X.T @ np.asarray(u))
    return float(J), float(gap)


def _reference(X, y, s, K, l1, l2, fit_intercept=True):
    """(J*, W*, b*) by L-BFGS-B on ``W = U - V``: smooth, bounds only, no certificate used."""
    X = X.toarray() if sp.issparse(X) else X
    n = X.shape[1]
    Y = np.eye(K)[y]

    def f(theta):
        U, V = theta[:n * K].reshape(n, K), theta[n * K:2 * n * K].reshape(n, K)
        b = theta[2 * n * K:] if fit_intercept else np.zeros(K)
        W = U - V
        Z = X @ W + b
        r = s[:, None] * (softmax(Z, axis=1) - Y)
        G = X.T @ r + l2 * W
        J = s @ (logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])
        J += l1 * (U.sum() + V.sum()) + 0.5 * l2 * (W * W).sum()
        grad = [(G + l1).ravel(), (l1 - G).ravel()] + ([r.sum(0)] if fit_intercept else [])
        return J, np.concatenate(grad)

    size = 2 * n * K + (K if fit_intercept else 0)
    bounds = [(0, None)] * (2 * n * K) + [(None, None)] * (size - 2 * n * K)
    res = minimize(f, np.zeros(size), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 50_000, "maxfun": 100_000, "maxcor": 30, "ftol": 0.0,
                            "gtol": 1e-14})
    theta = res.x
    W = theta[:n * K].reshape(n, K) - theta[n * K:2 * n * K].reshape(n, K)
    return res.fun, W, theta[2 * n * K:] if fit_intercept else np.zeros(K)


def _problem(seed, m=120, n=10, K=3, weighted=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    W = rng.standard_normal((n, K)) * (rng.random((n, K)) < 0.4)
    y = np.array([rng.choice(K, p=p) for p in softmax(X @ W, axis=1)])
    s = rng.uniform(0.2, 2.0, m) if weighted else np.ones(m)
    return X, y, s / s.sum()


CASES = [  # (seed, K, fit_intercept, weighted, l1, l2)
    (0, 3, True, True, 0.02, 0.0),
    (1, 3, False, True, 0.02, 0.0),
    (2, 4, True, False, 0.01, 0.01),
    (3, 3, False, False, 0.005, 0.02),
]


@pytest.mark.parametrize(("seed", "K", "fit_intercept", "weighted", "l1", "l2"), CASES)
def test_the_softmax_gap_bounds_j_minus_j_star_and_closes_at_the_optimum(
        seed, K, fit_intercept, weighted, l1, l2):
    X, y, s = _problem(seed, K=K, weighted=weighted)
    J_star, W_star, b_star = _reference(X, y, s, K, l1, l2, fit_intercept)
    J, gap = _objective_and_gap(X, y, s, W_star, b_star, l1, l2, fit_intercept)
    assert J == pytest.approx(J_star, rel=SLACK)
    assert 0 <= gap <= 1e-8 * J  # L-BFGS-B's optimum, not exact: the gap is small, not 0
    rng = np.random.default_rng(seed + 100)
    for scale in (1e-4, 1e-2, 1.0):
        W = W_star + scale * rng.standard_normal(W_star.shape)
        b = b_star + (5 * scale * rng.standard_normal(K) if fit_intercept else 0.0)
        J, gap = _objective_and_gap(X, y, s, W, b, l1, l2, fit_intercept)
        assert gap >= 0
        assert J - gap <= J_star * (1 + SLACK), (scale, J, gap, J_star)  # D <= J*
        assert gap >= (J - J_star) - SLACK * J_star
    J, gap = _objective_and_gap(X, y, s, np.zeros_like(W_star), np.zeros(K), l1, l2,
                                fit_intercept)
    assert J - gap <= J_star * (1 + SLACK)


@pytest.mark.parametrize("spread", [0.1, 10.0, 100.0])  # near to far from balanced logits
def test_the_dual_point_has_the_class_masses_of_y(spread):
    """``Σ s P̃ = Σ s Y`` (the dual's b-constraint) with rows on the simplex, class 3 absent
    (mass 0), even where the intercept shift's steps do not reach the balance (near-hard
    softmax rows); near balance P̃ is softmax(z + δ) itself."""
    rng = np.random.default_rng(5)
    m, K = 200, 4
    z = spread * (rng.standard_normal((m, K)) + np.array([0.0, 3.0, -3.0, 1.0]))
    y = rng.choice(3, m, p=[0.7, 0.2, 0.1])
    s = rng.uniform(0.2, 2.0, m)
    s /= s.sum()
    with float64_enabled(True):
        Y, P, R = (np.asarray(a) for a in certificate.softmax_dual_point(z, y, s, True))
        shifted = np.asarray(certificate.softmax_shift(z, Y, s))
    np.testing.assert_allclose(s @ P, s @ Y, rtol=0, atol=1e3 * EPS)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e3 * EPS)
    np.testing.assert_allclose(R, s[:, None] * (Y - P), rtol=0, atol=0)
    assert np.all(P >= 0) and np.all(P[:, 3] == 0)
    if spread < 1:  # the shift itself balances the masses: rebalance changes nothing
        np.testing.assert_allclose(s @ softmax(shifted, axis=1), s @ Y, rtol=0, atol=1e3 * EPS)
        np.testing.assert_allclose(P, softmax(shifted, axis=1), rtol=0, atol=1e3 * EPS)


def test_the_gap_of_a_tight_proximal_fit_is_rounding_and_its_j_is_the_reference():
    X, y, s = _problem(0)
    l1 = 0.02
    with float64_enabled(True):
        r = jl.fit(X, y, penalty="l1", C=1 / l1, sample_weight=s, solver="proximal", tol=1e-12,
                   max_iter=20_000, dtype="float64")
    J, gap = _objective_and_gap(X, y, s, r.params.w, r.params.b, l1, 0.0)
    assert r.status == "converged"
    assert gap <= 1e-12 * J
    assert J <= _reference(X, y, s, 3, l1, 0.0)[0] * (1 + SLACK)


def test_an_absent_class_gets_no_mass_and_the_gap_still_closes():
    """With an intercept, a class without examples has b_k -> -inf at the infimum: the dual
    point gives it P̃ = 0, and the gap at the 3-class optimum embedded in 4 classes is ~0."""
    X, y, s = _problem(4)
    l1 = 0.02
    J3, W3, b3 = _reference(X, y, s, 3, l1, 0.0)
    W4, b4 = np.hstack([W3, np.zeros((X.shape[1], 1))]), np.append(b3, -60.0)
    J, gap = _objective_and_gap(X, y, s, W4, b4, l1, 0.0)
    assert J == pytest.approx(J3, rel=SLACK)
    assert 0 <= gap <= 1e-8 * J
    J, gap = _objective_and_gap(X, y, s, W4 + 0.1, b4 + 60.0, l1, 0.0)  # far: class 3 has mass
    assert np.isfinite(gap) and J - gap <= J3 * (1 + SLACK)


def _sparse_softmax_problem(m=150, n=200, K=3, seed=0):
    """CSR X (m, n), density 0.1; y from a softmax model whose first 12 rows of W are ±4."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, n, density=0.1, random_state=seed, format="csr")
    W = np.zeros((n, K))
    W[:12] = rng.choice([-4.0, 4.0], (12, K))
    y = np.array([rng.choice(K, p=p) for p in softmax(X @ W, axis=1)])
    return X, y


L1 = 2e-4  # the KKT rule alone (tol 1e-6) stopped at iteration 807, J 1.2e-5 above J*
TOL = 1e-6


@pytest.mark.parametrize("layout", [
    {"sparse": True},  # CooMatrix Xt
    pytest.param({"sparse": False}, marks=pytest.mark.slow),  # dense X in rows or Xt
    pytest.param({"sparse": False, "grad": "autodiff"}, marks=pytest.mark.slow),  # dense Xt
])
def test_a_converged_multinomial_l1_fit_is_within_tol_of_the_optimum(layout):
    X, y = _sparse_softmax_problem()
    m = len(y)
    X_fit = X if layout.pop("sparse") else X.toarray()
    with float64_enabled(True):
        r = jl.fit(X_fit, y, penalty="l1", C=1 / (L1 * m), solver="proximal", tol=TOL,
                   max_iter=20_000, dtype="float64", **layout)
    s = np.full(m, 1 / m)
    J, gap = _objective_and_gap(X, y, s, r.params.w, r.params.b, L1, 0.0)
    J_star = _reference(X, y, s, 3, L1, 0.0)[0]
    assert r.status == "converged"
    assert gap <= TOL * J * (1 + 1e-6)
    assert J - J_star <= TOL * J


def test_a_multinomial_l1_fit_that_cannot_certify_in_max_iter_says_so():
    X, y = _sparse_softmax_problem()
    m = len(y)
    with float64_enabled(True):
        r = jl.fit(X, y, penalty="l1", C=1 / (L1 * m), solver="proximal", tol=TOL,
                   max_iter=1500, dtype="float64")
    J, gap = _objective_and_gap(X, y, np.full(m, 1 / m), r.params.w, r.params.b, L1, 0.0)
    assert r.status == "max_iter"
    assert gap > TOL * J


@pytest.mark.parametrize("sparse", [False, True])
def test_the_softmax_l1_loop_lowers_for_cuda_with_its_certificate(sparse):
    """float32 throughout, no host callback (lower_for_cuda's checks); the intercept shift's
    K x K solve (cuSOLVER) is in the program: the certificate runs inside the loop."""
    Xt = coo(10_000, M, 4 * M) if sparse else sds((N, M), "float32")
    args, spec = loop_args(TrainConfig(solver="proximal", penalty="l1"), Xt, K, "float32", "xla")
    text, _ = lower_for_cuda(loop.run_segment_sparse if sparse else DENSE_LOOP, *args, spec=spec)
    assert "cusolver_getrf" in text
