"""L1 and elastic-net penalties: sparse X against scikit-learn's saga, exact zeros, edge cases,
errors. That every solver with a proximal step reaches the optimum (dense X, binary and softmax),
and that the others refuse an L1 part, is tests/training/test_solvers.py's table test."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.training.proximal import soft_threshold


def _data(k=2, m=500, n=20, seed=0):
    """Standardized, well-conditioned features (scikit-learn's saga converges tightly on them)."""
    X, y = make_classification(m, n, n_informative=6, n_classes=k, n_clusters_per_class=1,
                               random_state=seed)
    return (X - X.mean(0)) / X.std(0), y


def _objective(X, y, coef, intercept, C, l1_ratio):
    """scikit-learn's objective divided by C Σ s: mean loss + λ (r ||W||₁ + (1 - r)/2 ||W||²)."""
    Z = X @ coef.T + intercept
    if coef.shape[0] == 1:
        z = Z[:, 0]
        loss = np.mean(np.logaddexp(0, z) - y * z)
    else:
        loss = np.mean(np.logaddexp.reduce(Z, axis=1) - Z[np.arange(len(y)), y])
    lam = 1.0 / (C * len(y))
    return loss + lam * (l1_ratio * np.abs(coef).sum() + (1 - l1_ratio) / 2 * (coef**2).sum())


@pytest.mark.parametrize(("k", "penalty", "l1_ratio"), [
    (2, "l1", None), (2, "elasticnet", 0.5), (3, "l1", None), (3, "elasticnet", 0.3),
])
def test_l1_and_elastic_net_on_sparse_x_match_scikit_learn_saga(k, penalty, l1_ratio):
    """Fitted on CSR X: the objective within 1e-5 relative of saga's (on dense X), and the same
    zero pattern."""
    X, y = _data(k)
    C, r = 0.05, 1.0 if l1_ratio is None else l1_ratio
    ours = jl.LogisticRegression(C=C, penalty=penalty, l1_ratio=l1_ratio, solver="proximal",
                                 tol=1e-9, max_iter=5000, dtype="float64")
    ours.fit(sp.csr_matrix(X), y)
    saga = SkLogisticRegression(C=C, l1_ratio=r, solver="saga", tol=1e-10, max_iter=100_000)
    saga.fit(X, y)
    J_ours = _objective(X, y, ours.coef_, ours.intercept_, C, r)
    J_saga = _objective(X, y, saga.coef_, saga.intercept_, C, r)
    assert ours.fit_status_ == "converged"
    assert ours.loss_ == pytest.approx(J_ours, rel=1e-12)  # the recorded J has the L1 term
    assert J_ours == pytest.approx(J_saga, rel=1e-5)
    assert J_ours <= J_saga * (1 + 1e-9)
    zeros = ours.coef_ == 0
    assert zeros.any() and not zeros.all()  # the penalty does select features here
    np.testing.assert_array_equal(zeros, saga.coef_ == 0)


def test_proximal_steps_never_raise_the_objective():
    X, y = _data(3)
    clf = jl.LogisticRegression(C=0.05, penalty="l1", solver="proximal", tol=1e-8, max_iter=500,
                                dtype="float64").fit(X, y)
    curve = clf.loss_curve_
    assert np.all(np.diff(curve) <= 1e-15 * curve[:-1])


def test_minibatch_ista_gives_exact_zeros():
    X, y = _data(n=40)
    clf = jl.LogisticRegression(C=0.02, penalty="l1", solver="gd", learning_rate=0.1,
                                batch_size=50, max_iter=50, random_state=0).fit(X, y)
    assert np.sum(clf.coef_ == 0) > 10


@pytest.mark.parametrize(("settings", "same_as"), [
    ({"penalty": None}, {"C": np.inf}),
    ({"penalty": "elasticnet", "l1_ratio": 0.0, "solver": "proximal"}, {"penalty": "l2"}),
    ({"penalty": "elasticnet", "l1_ratio": 1.0, "solver": "proximal"},
     {"penalty": "l1", "solver": "proximal"}),
    ({"penalty": "l1", "C": np.inf, "solver": "lbfgs"}, {"penalty": None}),  # λ = 0: no L1 part
])
def test_penalty_edge_cases_are_the_simpler_problem(settings, same_as):
    X, y = _data()
    a = jl.fit(X, y, tol=1e-9, max_iter=2000, dtype="float64", **{"C": 0.05, **settings})
    b = jl.fit(X, y, tol=1e-9, max_iter=2000, dtype="float64", **{"C": 0.05, **same_as})
    assert a.loss == pytest.approx(b.loss, rel=1e-9)
    np.testing.assert_allclose(a.params.w, b.params.w, rtol=1e-4, atol=1e-6)


def test_no_intercept_stays_zero_with_l1():
    X, y = _data()
    clf = jl.LogisticRegression(C=0.05, penalty="l1", solver="proximal", fit_intercept=False)
    clf.fit(X + 1.0, y)
    assert clf.intercept_[0] == 0.0


def test_sparsify_and_densify():
    X, y = _data(3)
    clf = jl.LogisticRegression(C=0.05, penalty="l1", solver="proximal").fit(X, y)
    dense_proba, dense_coef = clf.predict_proba(X), clf.coef_.copy()
    assert clf.sparsify() is clf and sp.issparse(clf.coef_)
    assert clf.coef_.nnz == np.count_nonzero(dense_coef)
    np.testing.assert_allclose(clf.predict_proba(X), dense_proba, rtol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(sp.csr_matrix(X)), dense_proba, rtol=1e-6)
    clf.fit(X, y)  # warm or not, fitting again gives dense coefficients
    assert not sp.issparse(clf.coef_)
    clf.sparsify().set_params(warm_start=True).fit(X, y)
    assert clf.densify() is clf and isinstance(clf.coef_, np.ndarray)
    np.testing.assert_allclose(clf.coef_, dense_coef, rtol=1e-4, atol=1e-6)
    with pytest.raises(Exception, match="not fitted"):
        jl.LogisticRegression().sparsify()


def test_soft_threshold_is_the_l1_proximal_operator():
    x = jnp.array([-3.0, -0.5, 0.0, 0.2, 2.0])
    np.testing.assert_allclose(soft_threshold(x, 1.0), [-2.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(soft_threshold(x, 0.0), x)


@pytest.mark.parametrize(("settings", "match"), [
    ({"penalty": "l3"}, r"penalty must be one of .*'l3'"),
    ({"penalty": "elasticnet"}, r"l1_ratio must be a number in \[0, 1\] with penalty='elasticnet'"),
    ({"penalty": "elasticnet", "l1_ratio": 1.5, "solver": "proximal"},
     r"l1_ratio must be a number in \[0, 1\], got 1.5"),
    ({"penalty": "elasticnet", "l1_ratio": -0.1, "solver": "proximal"},
     r"l1_ratio must be a number in \[0, 1\]"),
    ({"penalty": "elasticnet", "l1_ratio": "half", "solver": "proximal"},
     r"l1_ratio must be a number in \[0, 1\]"),
    ({"l1_ratio": 0.5}, r"l1_ratio is only used with penalty='elasticnet'.*penalty='l2'"),
    # the default solver; each solver's answer: test_solvers.py's table test
    ({"penalty": "l1"}, r"penalty='l1' needs a proximal solver.*got solver='lbfgs'"),
])
def test_bad_penalty_settings_name_the_parameter(settings, match):
    with pytest.raises(ValueError, match=match):
        jl.TrainConfig(**settings)
    X, y = _data(m=50, n=10)
    with pytest.raises(ValueError, match=match):
        jl.LogisticRegression(**settings).fit(X, y)
