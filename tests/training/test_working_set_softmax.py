"""The multinomial working-set solver (jaxlogreg.training.working_set_softmax): its certified
optimum matches scikit-learn's saga and our proximal solver run tight (objective within 1e-6
relative in float64, the same zeros), 3 and 5 classes, dense and CSR X, sample and class
weights, elastic net, no intercept; bad input is refused or, as for the binary solver, a class
without rows is fitted to a certified optimum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.core.model import Params
from jaxlogreg.kernels import native
from jaxlogreg.kernels.native_cd import HostX
from jaxlogreg.training.problem import validate
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.working_set import duality_gap
from jaxlogreg.training.working_set import solve as solve_binary
from jaxlogreg.training.working_set_softmax import fit_problem, solve

RTOL = 1e-6  # the targets: objective within 1e-6 relative, the same zeros
ZERO = 1e-6  # a coefficient above this where the other solution has a zero: another support

needs_native = pytest.mark.skipif(not native.available(), reason="needs the native library")


def _problem(m=150, n=30, K=3, density=0.3, seed=0, sparse=True):
    """Labels of a sparse softmax model on random X (CSR or dense), float64."""
    rng = np.random.default_rng(seed)
    X = sp.random_array((m, n), density=density, rng=rng, format="csr",
                        data_sampler=rng.standard_normal)
    W = np.zeros((n, K))
    W[:6] = 2 * rng.standard_normal((6, K))
    y = np.argmax(X @ W + rng.gumbel(size=(m, K)), axis=1)
    return (X if sparse else X.toarray()), y


def _lambda_max(X, y, s):
    s = s / s.sum()
    Y = np.eye(y.max() + 1)[y]
    return float(np.max(np.abs(X.T @ (s[:, None] * (Y - s @ Y)))))


def _score(X, y, W, b, l1, l2, s, fit_intercept=True):
    """J in float64 at (W, b): the one scorer of every solution."""
    host = HostX.of(X)
    W = np.asarray(W, np.float64)
    b = np.zeros(W.shape[1]) if b is None else np.asarray(b, np.float64)
    return duality_gap(host, y, s / s.sum(), W, b, l1, l2, fit_intercept)[0]


def _assert_same_optimum(r, X, y, W, b, l1, l2, s, fit_intercept=True):
    J = _score(X, y, W, b, l1, l2, s, fit_intercept)
    assert r.status == "converged"
    assert r.objective <= J * (1 + RTOL) and abs(r.objective - J) <= RTOL * J
    different = np.sum((r.W == 0) & (np.abs(W) > ZERO)) + np.sum((W == 0) & (np.abs(r.W) > ZERO))
    assert different == 0


def _saga(X, y, l1, l2, s, fit_intercept=True):
    est = SkLogisticRegression(C=1 / ((l1 + l2) * s.sum()), l1_ratio=l1 / (l1 + l2),
                               solver="saga", tol=1e-10, max_iter=200_000,
                               fit_intercept=fit_intercept).fit(X, y, sample_weight=s)
    return est.coef_.T, est.intercept_ if fit_intercept else None


def _proximal(X, y, l1, l2, s, fit_intercept=True):
    """Our on-device proximal solver, certified to a gap of 1e-10 J."""
    C = 1 / ((l1 + l2) * s.sum())
    penalty = {"penalty": "l1"} if l2 == 0 else {"penalty": "elasticnet",
                                                 "l1_ratio": l1 / (l1 + l2)}
    fitted = jl.fit(X, y, sample_weight=s, C=C, solver="proximal", tol=1e-10,
                    max_iter=200_000, dtype="float64", fit_intercept=fit_intercept, **penalty)
    assert fitted.status == "converged"
    return np.asarray(fitted.params.w), np.asarray(fitted.params.b) if fit_intercept else None


@needs_native
@pytest.mark.parametrize("sparse", [True, False])
def test_three_classes_match_saga(sparse):
    X, y = _problem(sparse=sparse)
    s = np.ones(len(y))
    l1 = 0.1 * _lambda_max(X, y, s)
    r = solve(X, y, None, l1, tol=1e-10)
    _assert_same_optimum(r, X, y, *_saga(X, y, l1, 0.0, s), l1, 0.0, s)
    assert 0 < np.count_nonzero(r.W) < r.W.size
    assert r.b.sum() == pytest.approx(0.0, abs=1e-12)  # centred


@pytest.mark.slow
@needs_native
def test_five_classes_elastic_net_with_sample_weights_match_proximal_and_saga():
    X, y = _problem(m=200, n=25, K=5, seed=1)
    s = np.random.default_rng(2).integers(1, 4, len(y)).astype(float)
    l1 = 0.05 * _lambda_max(X, y, s)
    l2 = 0.5 * l1
    r = solve(X, y, s, l1, l2, tol=1e-10)
    _assert_same_optimum(r, X, y, *_proximal(X, y, l1, l2, s), l1, l2, s)
    # saga: without weights (with them it stops short here, max_iter reached, J 2% above)
    s = np.ones(len(y))
    r = solve(X, y, None, l1, l2, tol=1e-10)
    _assert_same_optimum(r, X, y, *_saga(X, y, l1, l2, s), l1, l2, s)


@needs_native
def test_without_intercept_dense_and_sparse_give_the_proximal_optimum():
    X, y = _problem(m=120, n=20, K=3, seed=3)
    s = np.ones(len(y))
    l1 = 0.05 * _lambda_max(X, y, s)
    dense = solve(X.toarray(), y, None, l1, fit_intercept=False, tol=1e-10)
    sparse = solve(X, y, None, l1, fit_intercept=False, tol=1e-10)
    assert np.all(dense.b == 0) and np.all(sparse.b == 0)
    reference = _proximal(X, y, l1, 0.0, s, fit_intercept=False)
    for r in (dense, sparse):
        _assert_same_optimum(r, X, y, *reference, l1, 0.0, s, fit_intercept=False)


@pytest.mark.slow  # the default tier fits 3 classes through jl.fit in test_working_set_fit.py
@needs_native
def test_the_fit_pipeline_routes_multinomial_working_set_fits_with_class_weights():
    X, y = _problem(m=150, n=30, K=3, seed=4)
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}
    fitted = jl.fit(X, y, C=0.5, penalty="l1", solver="working_set", tol=1e-10,
                    class_weight=class_weight, dtype="float64")
    assert fitted.status == "converged" and fitted.params.w.shape == (30, 3)
    assert np.all(np.diff(fitted.loss_history) <= 1e-12)
    s = np.array([class_weight[c] for c in y])
    l1 = 1 / (0.5 * s.sum())
    reference = _proximal(X, y, l1, 0.0, s)
    J = _score(X, y, *reference, l1, 0.0, s)
    assert abs(fitted.loss - J) <= RTOL * J


@needs_native
def test_fit_problem_warm_starts_in_the_fits_dtype_on_float32_x():
    X, y = _problem(m=150, n=30, K=3, seed=5)
    X = X.astype(np.float32)
    config = TrainConfig(C=0.5, penalty="l1", solver="working_set", tol=1e-9)
    problem = validate(X, y, dtype="float32")
    params, rounds, history, loss, status = fit_problem(problem, config)
    assert status == "converged" and params.w.dtype == np.float32 and params.b.shape == (3,)
    assert history.shape == (rounds + 1,) and history[-1] == pytest.approx(loss)
    again = fit_problem(problem, config, Params(params.w, params.b))
    assert again[4] == "converged" and again[1] <= 1
    assert again[3] == pytest.approx(loss, rel=1e-6)


@needs_native
def test_a_class_without_rows_is_certified_as_the_binary_solver_does_a_single_class():
    """A class absent from y (n_classes=3, no row of class 1): its intercept goes towards -inf,
    and the fit stops certified with finite numbers, as the binary solver does with one class."""
    X, y = _problem(m=120, n=20, K=3, seed=6)
    y = np.where(y == 1, 0, y)
    s = np.ones(len(y))
    l1 = 0.1 * _lambda_max(X, y, s)
    r = solve(X, y, None, l1, tol=1e-8, n_classes=3)
    binary = solve_binary(X, np.zeros(len(y)), None, l1, tol=1e-8)
    assert binary.status == "converged" and np.isfinite(binary.b)
    assert r.status == "converged" and np.all(np.isfinite(r.W)) and np.all(np.isfinite(r.b))
    assert r.b[1] < r.b[0] - 5 and np.all(r.W[:, 1] == 0)
    assert r.gap <= 1e-8 * r.objective


def test_bad_labels_and_a_missing_native_library_are_refused():
    X, y = _problem(m=40, n=10, K=3)
    with pytest.raises(ValueError, match="native library only.*solver='proximal'"):
        solve(X, y, None, 0.01, native=False)
    if not native.available():
        return
    with pytest.raises(ValueError, match=r"y must be \(40,\) integer class indices"):
        solve(X, y.astype(float), None, 0.01)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        solve(X, np.where(y == 0, 3, y), None, 0.01, n_classes=3)
    with pytest.raises(ValueError, match=r"W0 must be a finite \(10, 3\) array, got shape"):
        solve(X, y, None, 0.01, W0=np.zeros((3, 10)))
