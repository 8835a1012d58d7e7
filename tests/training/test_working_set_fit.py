"""Solver "working_set" through jaxlogreg.fit and LogisticRegression (the pipeline sends
host_loop solvers to jaxlogreg.training.working_set): liblinear's optimum (objective within
1e-6 relative in float64, the same zeros), warm starts, and clear errors for what it cannot do."""

from __future__ import annotations

import numpy as np
import pytest
from _sparse_l1 import sparse_l1_problem
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.training import solvers
from jaxlogreg.training.working_set import duality_gap

RTOL = 1e-6
ZERO = 1e-6  # a coefficient above this where the other solution has a zero: another support


def _problem(m=300, n=150, seed=0):
    return sparse_l1_problem(m, n, density=0.1, n_true=10, seed=seed)


def _objective(X, y, w, b, l1):
    s = np.full(len(y), 1 / len(y))
    return duality_gap(X, y.astype(float), s, np.asarray(w, float), float(b), l1, 0.0, True)[0]


def _liblinear(X, y, C):
    """liblinear penalises its intercept, |b| / intercept_scaling: 1e-9 of J here."""
    est = SkLogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", tol=1e-8,
                               max_iter=10_000, intercept_scaling=1e3).fit(X, y)
    return est.coef_.ravel(), est.intercept_[0]


def _assert_liblinears_optimum(X, y, C, w, b):
    l1 = 1 / (C * len(y))
    w_lib, b_lib = _liblinear(X, y, C)
    J, J_lib = _objective(X, y, w, b, l1), _objective(X, y, w_lib, b_lib, l1)
    assert J <= J_lib * (1 + RTOL) and J_lib <= J * (1 + RTOL)
    assert not np.any((w == 0) & (np.abs(w_lib) > ZERO))
    assert not np.any((w_lib == 0) & (np.abs(w) > ZERO))
    assert 0 < np.count_nonzero(w) < X.shape[1]


def test_fit_with_working_set_reaches_liblinears_optimum_and_warm_starts():
    X, y = _problem()
    r = jl.fit(X, y, penalty="l1", C=2.0, solver="working_set", tol=1e-10, dtype="float64")
    assert r.status == "converged" and r.n_iter > 0
    _assert_liblinears_optimum(X, y, 2.0, r.params.w, r.params.b)
    again = jl.fit(X, y, penalty="l1", C=2.0, solver="working_set", tol=1e-10,
                   dtype="float64", init_params=r.params)
    assert again.status == "converged" and again.n_iter == 0  # certified at the start


def test_the_estimator_with_working_set_matches_liblinear_on_dense_x():
    X, y = _problem(seed=1)
    est = jl.LogisticRegression(penalty="l1", C=2.0, solver="working_set", tol=1e-10,
                                dtype="float64").fit(X.toarray(), y)
    assert est.fit_status_ == "converged"
    _assert_liblinears_optimum(X, y, 2.0, est.coef_.ravel(), est.intercept_[0])


@pytest.mark.parametrize(("settings", "message"), [
    ({"batch_size": 10}, "batch_size"),
    ({"checkpoint": "somewhere"}, "checkpoint must be None"),
    ({"callback": lambda i, loss: None}, "callback must be None"),
    ({"penalty": "l2"}, "fits L1 and elastic-net penalties"),
])
def test_working_set_refuses_what_it_cannot_do(settings, message):
    X, y = _problem(m=40, n=10)
    settings = {"penalty": "l1", "solver": "working_set", **settings}
    with pytest.raises(ValueError, match=message):
        jl.fit(X, y, **settings)


def test_working_set_refuses_a_mesh_and_fits_multinomial_models():
    X, y = _problem(m=40, n=10)
    with pytest.raises(ValueError, match="mesh must be None"):
        jl.fit(X, y, penalty="l1", solver="working_set", mesh=jl.make_mesh())
    r = jl.fit(X, np.arange(40) % 3, penalty="l1", solver="working_set")
    assert r.status == "converged" and np.asarray(r.params.w).shape == (10, 3)


def test_working_set_has_no_on_device_update():
    assert solvers.get("working_set").host_loop
    with pytest.raises(ValueError, match="runs its own loop on the host"):
        solvers.make_optimizer("working_set", 0.1, 0.01)
