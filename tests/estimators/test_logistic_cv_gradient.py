"""``LogisticRegressionCV(search="gradient")``: C by hypergradient steps, with the grid path's
fitted attributes (its "grid" the Cs evaluated), the refit at C_, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV


def _data(m=150, n=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = (X[:, 0] + rng.normal(size=m) > 0).astype(np.int64)
    return X, y


@pytest.mark.slow
def test_the_gradient_search_sets_the_grid_attributes_for_the_Cs_it_evaluated():
    X, y = _data()
    clf = LogisticRegressionCV(search="gradient", cv=3, scoring="neg_log_loss").fit(X, y)
    n_evals = clf.Cs_.shape[0]
    assert 2 <= n_evals < 10
    assert clf.scores_[1].shape == (3, n_evals)
    assert clf.coefs_paths_[1].shape == (3, n_evals, 5)
    assert clf.n_iter_.shape == (1, 3, n_evals)
    assert clf.C_.shape == (1,) and clf.C_[0] in clf.Cs_
    # the search lowers the held-out log-loss from where it starts (the middle of Cs: C = 1)
    assert clf.Cs_[0] == 1.0
    assert clf.scores_[1].sum(0)[list(clf.Cs_).index(clf.C_[0])] > clf.scores_[1].sum(0)[0]
    # the refit is the optimum on all rows at C_: the grid path's refit at that C agrees
    grid = LogisticRegressionCV(Cs=[float(clf.C_[0])], cv=3, tol=1e-10, max_iter=1000,
                                dtype="float64").fit(X, y)
    np.testing.assert_allclose(clf.coef_, grid.coef_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(clf.loss_, grid.loss_, rtol=1e-9)


@pytest.mark.slow
def test_three_classes_without_refit_average_the_folds_models():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = LogisticRegressionCV(search="gradient", refit=False).fit(X, y)
    assert clf.C_.shape == (3,) and np.all(clf.C_ == clf.C_[0])
    assert clf.coef_.shape == (3, 4) and not hasattr(clf, "loss_")
    assert set(clf.scores_) == {0, 1, 2} and clf.coefs_paths_[2].shape[:2] == (5, len(clf.Cs_))
    assert clf.score(X, y) > 0.9


def test_an_unknown_search_is_refused_by_name():
    X, y = _data()
    with pytest.raises(ValueError, match=r"search must be one of \['grid', 'gradient'\], got 'x'"):
        LogisticRegressionCV(search="x").fit(X, y)


def test_a_sparse_X_is_refused_by_the_gradient_search():
    X, y = _data()
    with pytest.raises(TypeError, match="search='gradient' needs a dense X"):
        LogisticRegressionCV(search="gradient", cv=3).fit(sp.csr_matrix(X), y)
