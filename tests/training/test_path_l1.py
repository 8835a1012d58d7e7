"""fit_path with penalty="l1" / "elasticnet": every point of a warm-started path equals a cold
fit (scikit-learn's liblinear or saga, or our own), the λ_max start, weights, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from _sparse_l1 import sparse_l1_problem
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.training.path_l1 import L1PathResult
from jaxlogreg.training.working_set import duality_gap

RTOL = 1e-6  # objectives, relative (float64)
ZERO = 1e-6  # a coefficient above this where the other solution has a zero: another support


def _binary_objective(X, y, s, w, b, l1, l2):
    s = np.ones(len(y)) if s is None else np.asarray(s, float)
    return duality_gap(X, y.astype(float), s / s.sum(), np.asarray(w, float), float(b), l1, l2,
                       True)[0]


def _softmax_objective(X, y, w, b, l1, l2):
    z = X @ w + b
    loss = np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y])
    return loss + l1 * np.abs(w).sum() + 0.5 * l2 * (w * w).sum()


def _assert_same_optimum(J, J_ref, w, w_ref):
    assert J <= J_ref * (1 + RTOL) and J_ref <= J * (1 + RTOL), (J, J_ref)
    w, w_ref = np.asarray(w), np.asarray(w_ref)
    assert not np.any((w == 0) & (np.abs(w_ref) > ZERO))
    assert not np.any((w_ref == 0) & (np.abs(w) > ZERO))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # liblinear's
def test_l1_path_points_equal_cold_liblinear_fits_and_start_at_lambda_max():
    X, y = sparse_l1_problem(300, 80, density=0.1, n_true=8, seed=3)
    m = X.shape[0]
    Cs = np.array([0.01, 0.5, 2.0, 8.0])  # C = 0.01: λ₁ = 1/(C m) above λ_max
    r = jl.fit_path(X, y, Cs, penalty="l1", tol=1e-10, max_iter=200, dtype="float64")
    assert isinstance(r, L1PathResult) and r.params.w.shape == (1, 4, 1, 80)
    assert r.converged.all()
    # the largest penalty: w = 0 exactly, b the log-odds of y, set without a solve
    assert r.n_iter[0, 0, 0] == 0 and not np.any(r.params.w[0, 0, 0])
    np.testing.assert_allclose(r.params.b[0, 0, 0], np.log(y.mean() / (1 - y.mean())), rtol=1e-12)
    for c, C in enumerate(Cs[1:], start=1):
        lib = SkLogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", tol=1e-10,
                                   max_iter=10_000, intercept_scaling=1e3).fit(X, y)
        w, b, l1 = r.params.w[0, c, 0], r.params.b[0, c, 0], 1 / (C * m)
        _assert_same_optimum(_binary_objective(X, y, None, w, b, l1, 0.0),
                             _binary_objective(X, y, None, lib.coef_[0], lib.intercept_[0], l1,
                                               0.0), w, lib.coef_[0])
        np.testing.assert_allclose(r.loss[0, c, 0], _binary_objective(X, y, None, w, b, l1, 0),
                                   rtol=1e-12)
    assert 0 < np.count_nonzero(r.params.w[0, -1, 0]) < 80


def test_elastic_net_path_with_folds_and_weights_equals_single_fits():
    X, y = sparse_l1_problem(240, 60, density=0.15, n_true=6, seed=4)
    X = X.toarray()  # dense X
    sw = np.random.default_rng(0).uniform(0.2, 3.0, X.shape[0])
    folds = [np.flatnonzero(np.arange(240) % 3 != f) for f in range(3)]
    Cs, ratios = np.array([2.0, 0.3]), [0.0, 0.5, 1.0]  # unsorted Cs keep their order
    r = jl.fit_path(X, y, Cs, folds=folds, sample_weight=sw, penalty="elasticnet",
                    l1_ratios=ratios, tol=1e-10, max_iter=1000, dtype="float64")
    assert r.params.w.shape == (3, 2, 3, 60) and r.l1.shape == (3, 2, 3)
    for f, rows in enumerate(folds):
        Xf, yf, sf = X[rows], y[rows], sw[rows]
        for c, C in enumerate(Cs):
            for k, ratio in enumerate(ratios):
                l1, l2 = ratio / (C * sf.sum()), (1 - ratio) / (C * sf.sum())
                np.testing.assert_allclose([r.l1[f, c, k], r.l2[f, c, k]], [l1, l2], rtol=1e-12)
                settings = ({"penalty": "l2", "solver": "lbfgs"} if ratio == 0 else
                            {"penalty": "elasticnet", "l1_ratio": ratio, "solver": "working_set"})
                cold = jl.fit(Xf, yf, sample_weight=sf, C=C, tol=1e-10, max_iter=1000,
                              dtype="float64", **settings)
                w, b = r.params.w[f, c, k], r.params.b[f, c, k]
                _assert_same_optimum(_binary_objective(Xf, yf, sf, w, b, l1, l2),
                                     _binary_objective(Xf, yf, sf, *cold.params, l1, l2), w,
                                     cold.params.w)


def test_multinomial_l1_path_equals_saga():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 8))
    y = np.argmax(X[:, :3] * 2 + rng.gumbel(size=(150, 3)), axis=1)
    Cs, m = np.array([0.05, 0.5]), X.shape[0]
    r = jl.fit_path(X, y, Cs, penalty="l1", tol=1e-9, max_iter=20_000, dtype="float64")
    assert r.params.w.shape == (1, 2, 1, 8, 3) and r.params.b.shape == (1, 2, 1, 3)
    assert r.converged.all()
    for c, C in enumerate(Cs):
        saga = SkLogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-12,
                                    max_iter=100_000).fit(X, y)
        w, b, l1 = r.params.w[0, c, 0], r.params.b[0, c, 0], 1 / (C * m)
        _assert_same_optimum(_softmax_objective(X, y, w, b, l1, 0.0),
                             _softmax_objective(X, y, saga.coef_.T, saga.intercept_, l1, 0.0),
                             w, saga.coef_.T)


@pytest.mark.parametrize(("settings", "message"), [
    ({"penalty": "l1", "l1_ratios": [0.5]}, "l1_ratios is only used with penalty='elasticnet'"),
    ({"penalty": "l2", "l1_ratios": [0.5]}, "l1_ratios is only used with penalty='elasticnet'"),
    ({"penalty": "elasticnet"}, "l1_ratios must be a non-empty list"),
    ({"penalty": "elasticnet", "l1_ratios": []}, "l1_ratios must be a non-empty list"),
    ({"penalty": "elasticnet", "l1_ratios": [0.5, 1.5]}, r"l1_ratios must .*\[0, 1\]"),
    ({"penalty": "elasticnet", "l1_ratios": ["a"]}, "l1_ratios must"),
    ({"penalty": "l3"}, "penalty"),
    ({"penalty": "l1", "mesh": "a mesh"}, "mesh must be None"),
    ({"penalty": "l1", "Cs": []}, "Cs must be"),
    ({"penalty": "l1", "folds": [np.arange(5)], "sample_weight": np.r_[np.zeros(5),
                                                                         np.ones(35)]},
     "positive weight"),
])
def test_bad_l1_path_settings_name_the_parameter(settings, message):
    X, y = sparse_l1_problem(40, 10, density=0.3, n_true=3, seed=0)
    settings = {"Cs": [1.0], **settings}
    with pytest.raises(ValueError, match=message):
        jl.fit_path(X, y, settings.pop("Cs"), **settings)
