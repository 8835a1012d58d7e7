"""LogisticRegression: scikit-learn's common checks, agreement with sklearn, fitted attributes.

Most fits here are small, so the fit pipeline pads them to one shape (512 x 32) and they share
a few compiled training loops; each new solver, dtype or max_iter costs one compilation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.linear_model
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from jaxlogreg.estimators.logistic import DivergenceError, LogisticRegression

# Checks that cannot apply, by name, with the reason. None today: every common check runs.
# (pandas / array-API checks skip themselves when those libraries are not installed.)
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


# tol=1e-10: check_sample_weight_equivalence compares weighted and repeated fits at rtol 1e-7,
# so the optimum must be reached well below that; L-BFGS in float64 gets there in a few steps.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [LogisticRegression(tol=1e-10)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


def _data(m=120, n=5, k=2, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)) * scale
    W = rng.normal(size=(n, k))
    y = np.argmax(X @ W + rng.gumbel(size=(m, k)), axis=1)
    return X, y


def _sklearn(**kw):
    return sklearn.linear_model.LogisticRegression(tol=1e-12, max_iter=10_000, **kw)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_sklearn(k, fit_intercept):
    X, y = _data(k=k)
    ours = LogisticRegression(C=0.3, tol=1e-10, fit_intercept=fit_intercept).fit(X, y)
    ref = _sklearn(C=0.3, fit_intercept=fit_intercept).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape == ((1, 5) if k == 2 else (k, 5))
    assert ours.intercept_.shape == ref.intercept_.shape
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    if not fit_intercept:
        assert np.all(ours.intercept_ == 0)


def test_no_penalty_with_C_inf_matches_sklearn():
    X, y = _data(m=200, seed=3)  # Gumbel noise: not separable, so the optimum is finite
    ours = LogisticRegression(C=np.inf, tol=1e-10).fit(X, y)
    ref = _sklearn(C=np.inf).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4, atol=1e-5)


def test_string_labels_binary_columns_follow_classes():
    X, y = _data()
    labels = np.array(["dog", "cat"])[y]  # sorted classes: cat, dog
    clf = LogisticRegression(tol=1e-8).fit(X, labels)
    assert clf.classes_.tolist() == ["cat", "dog"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # binary: [1 - a, a] where a = σ(z) is the probability of classes_[1]
    a = 1.0 / (1.0 + np.exp(-clf.decision_function(X)))
    np.testing.assert_allclose(proba[:, 1], a)
    assert set(clf.predict(X)) <= {"cat", "dog"}
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])
    assert clf.score(X, labels) > 0.8


def test_multiclass_arbitrary_labels_shapes():
    X, y = _data(k=3)
    labels = np.array([10, -4, 7])[y]
    clf = LogisticRegression(tol=1e-8).fit(X, labels)
    assert clf.classes_.tolist() == [-4, 7, 10]
    assert clf.decision_function(X).shape == (120, 3)
    assert clf.predict_proba(X).shape == (120, 3)
    assert clf.coef_.shape == (3, 5) and clf.intercept_.shape == (3,)
    assert clf.n_iter_.shape == (1,) and clf.n_features_in_ == 5
    assert clf.loss_curve_.ndim == 1 and clf.loss_curve_.shape[0] >= 1
    ref = _sklearn().fit(X, labels)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-4)


def test_predict_log_proba_is_stable_where_proba_rounds_to_zero():
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    X_far = X[:3] * 1e4  # logits of order 1e4: predict_proba has exact 0s and 1s
    log_p = clf.predict_log_proba(X_far)
    assert np.all(np.isfinite(log_p))
    assert np.any(clf.predict_proba(X_far) == 0.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)), rtol=1e-10)


def test_class_weight_balanced_matches_sklearn():
    X, y = _data(m=150, k=3, seed=1)
    keep = (y != 2) | (np.arange(150) % 4 == 0)  # make class 2 rare
    X, y = X[keep], y[keep]
    ours = LogisticRegression(class_weight="balanced", tol=1e-10).fit(X, y)
    ref = _sklearn(class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    ours = LogisticRegression(class_weight={0: 1.0, 1: 2.0, 2: 5.0}, tol=1e-10).fit(X, y)
    ref = _sklearn(class_weight={0: 1.0, 1: 2.0, 2: 5.0}).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-6)


def test_integer_sample_weight_equals_repetition():
    X, y = _data(m=60, seed=2)
    sw = np.random.default_rng(0).integers(0, 4, size=60)
    weighted = LogisticRegression(C=0.5, tol=1e-10).fit(X, y, sample_weight=sw)
    repeated = LogisticRegression(C=0.5, tol=1e-10).fit(np.repeat(X, sw, 0), np.repeat(y, sw))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-7, atol=1e-9)


def test_warm_start_continues_from_previous_coef():
    X, y = _data()
    kw = {"solver": "gd", "learning_rate": 0.5, "tol": 0.0}
    clf = LogisticRegression(max_iter=20, warm_start=True, **kw)
    clf.fit(X, y)
    first = clf.coef_.copy()
    clf.fit(X, y)  # 20 more gradient-descent steps from `first`
    straight = LogisticRegression(max_iter=40, **kw).fit(X, y)
    assert not np.allclose(clf.coef_, first)
    np.testing.assert_allclose(clf.coef_, straight.coef_, rtol=1e-10)
    np.testing.assert_allclose(clf.intercept_, straight.intercept_, rtol=1e-10)
    cold = LogisticRegression(max_iter=20, warm_start=False, **kw).fit(X, y).fit(X, y)
    np.testing.assert_allclose(cold.coef_, first, rtol=1e-12)


def test_not_fitted():
    clf = LogisticRegression()
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(clf, method)(np.ones((2, 3)))


@pytest.mark.parametrize(
    "param, value",
    [
        ("C", 0.0),
        ("C", -1.0),
        ("C", "big"),
        ("fit_intercept", "yes"),
        ("solver", "newton"),
        ("learning_rate", -0.1),
        ("max_iter", -1),
        ("max_iter", 2.5),
        ("tol", -1e-3),
        ("batch_size", 0),
        ("dtype", "float16"),
        ("x_dtype", "int8"),
        ("tol_criterion", "both"),
        ("class_weight", "auto"),
        ("verbose", -1),
        ("grad", "numeric"),
        ("solver_params", [("momentum", 0.5)]),
    ],
)
def test_bad_hyper_parameter_names_it(param, value):
    X, y = _data(m=10)
    with pytest.raises(ValueError, match=param):
        LogisticRegression(**{param: value}).fit(X, y)


def test_batch_size_with_lbfgs_is_rejected():
    X, y = _data(m=10)
    with pytest.raises(ValueError, match=r"batch_size must be None with solver 'lbfgs' \(it needs full-batch gradients\), got 4"):
        LogisticRegression(batch_size=4).fit(X, y)


def test_one_class_after_weights_is_rejected():
    X, y = _data(m=20)
    with pytest.raises(ValueError, match=r"at least 2 classes .* got only class 1 \(after"):
        LogisticRegression().fit(X, y, sample_weight=(y == 1).astype(float))


def test_divergence_without_a_penalty_raises():  # defect D1
    X, y = _data()
    clf = LogisticRegression(solver="gd", learning_rate=1e9, tol=0, C=np.inf)
    with pytest.raises(DivergenceError, match="diverged after 1 iterations"):
        clf.fit(X, y)
    assert clf.loss_ <= np.log(2) * (1 + 1e-12)


def test_lbfgs_on_badly_scaled_features_raises_and_says_to_scale():  # defect D3
    X, y = _data()
    X[:, 0] *= 1e30
    clf = LogisticRegression()
    with pytest.raises(DivergenceError, match=r"solver='lbfgs'.*scale the features"):
        clf.fit(X, y)
    assert clf.loss_ <= np.log(2) * (1 + 1e-12)


def test_divergence_raises_and_keeps_last_good_parameters():
    X, y = _data(scale=1e3)
    clf = LogisticRegression(solver="gd", learning_rate=1e6, max_iter=50, tol=0.0, C=1e-6)
    with pytest.raises(DivergenceError, match="lower learning_rate .* or scale the features"):
        clf.fit(X, y)
    assert np.all(np.isfinite(clf.coef_)) and np.all(np.isfinite(clf.intercept_))
    assert clf.predict(X).shape == (120,)


def test_convergence_warning_only_when_tol_positive():
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        LogisticRegression(solver="gd", max_iter=3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(solver="gd", max_iter=3, tol=0.0).fit(X, y)


def test_dtype_follows_the_input_unless_set():
    X, y = _data(m=50)
    assert LogisticRegression().fit(X, y).coef_.dtype == np.float64
    assert LogisticRegression().fit(X.astype(np.float32), y).coef_.dtype == np.float32
    assert LogisticRegression().fit(X.astype(np.int64), y).coef_.dtype == np.float64
    assert LogisticRegression(dtype="float64").fit(X.astype(np.float32), y).coef_.dtype == np.float64
    assert LogisticRegression(dtype="float32").fit(X, y).coef_.dtype == np.float32


def test_predict_tie_at_zero_logit_goes_to_the_first_class():
    clf = LogisticRegression(C=0.5).fit(np.array([[0.0], [1.0], [2.0], [3.0]]), ["a", "a", "b", "b"])
    clf.coef_[:] = 2.0
    clf.intercept_[:] = -2.0  # z = 2x - 2: exactly 0 at x = 1
    assert clf.predict(np.array([[1.0]])).tolist() == ["a"]
    assert clf.predict(np.array([[np.nextafter(1.0, 2.0)]])).tolist() == ["b"]
    np.testing.assert_array_equal(clf.predict_proba(np.array([[1.0]])), [[0.5, 0.5]])


def test_float32_and_minibatch_solvers():
    X, y = _data(m=200)
    ref = LogisticRegression(tol=1e-10).fit(X, y)
    f32 = LogisticRegression(dtype="float32", tol=1e-5).fit(X, y)
    assert f32.coef_.dtype == np.float32
    np.testing.assert_allclose(f32.coef_, ref.coef_, rtol=1e-3, atol=1e-4)
    kw = {"solver": "adam", "learning_rate": 0.05, "batch_size": 32, "max_iter": 60, "tol": 0.0}
    a = LogisticRegression(random_state=0, **kw).fit(X, y)
    b = LogisticRegression(random_state=0, **kw).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)  # same seed, same shuffles
    assert a.loss_ < ref.loss_ + 0.01  # near the optimum, up to minibatch noise
    assert a.n_iter_[0] == 60 and a.loss_curve_.shape == (60,)


def test_autodiff_gradient_gives_the_same_fit():
    X, y = _data()
    manual = LogisticRegression(tol=1e-10).fit(X, y)
    auto = LogisticRegression(tol=1e-10, grad="autodiff").fit(X, y)
    np.testing.assert_allclose(manual.coef_, auto.coef_, rtol=1e-6, atol=1e-8)


def test_verbose_prints_summary_and_no_bar_when_not_a_tty(capsys):
    X, y = _data()
    LogisticRegression(verbose=2).fit(X, y)
    err = capsys.readouterr().err
    assert "iterations" in err and "[" not in err and "\r" not in err


@pytest.mark.parametrize("layout", ["C float64", "F float32", "sparse"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_x_is_refused_by_the_fit_data_path(layout, bad):
    """fit leaves the finite check to the data path, which does it while laying X out (one
    read of X fewer than scikit-learn's check), with a message naming X and the count."""
    import scipy.sparse as sp

    X, y = _data(m=60, seed=5)
    X[7, 1] = bad
    X = {"C float64": X, "F float32": np.asfortranarray(X, np.float32),
         "sparse": sp.csr_array(X)}[layout]
    with pytest.raises(ValueError, match=r"X must be finite.*1 NaN or inf"):
        LogisticRegression().fit(X, y)
