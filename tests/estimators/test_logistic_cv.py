"""LogisticRegressionCV: scikit-learn's common checks, the same C_ as scikit-learn, bad input.

Small problems are padded to one bucketed shape (512 x 32), and the refit joins the (fold, C)
batch, so the fits here share a few compiled programs: one per dtype, class count, number of
models, fit_intercept and max_iter. Most tests use cv=3 and 3 Cs, like the common checks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.linear_model
from scipy.special import log_expit, log_softmax
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, LeaveOneGroupOut, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from jaxlogreg.estimators.logistic import LogisticRegression
from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

# Every common check runs (pandas / array-API checks skip themselves when those libraries are
# not installed). The grid is C in {0.01, 1}: check_sample_weight_equivalence_on_dense_data
# compares weighted and repeated fits at rtol 1e-7 on 15 samples in 30 features, which are
# separable; at C = 1e4 (the default grid's end) λ ≈ 3e-6 and the two optima are then fixed only
# to about 1e-6 by a gradient of 1e-10, so that grid tests the conditioning, not the estimator.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@pytest.mark.slow  # 65 checks, a few seconds each: the slow tier (LogisticRegression's: default)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [LogisticRegressionCV(Cs=[0.01, 1.0], cv=3, tol=1e-10, max_iter=1000)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


def test_sample_weight_equals_repetition():
    """The data and folds of scikit-learn's check: weights 0..4 on the rows of the first CV
    group (test fold 0) against those rows repeated; the same scores (weighted accuracy =
    accuracy on repeated rows), C_ and, to the sqrt(eps) floor above, coefficients."""
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15)
    sw = rng.randint(0, 5, size=15)
    X_rep = np.vstack([X.repeat(sw, axis=0), X, X])
    y_rep = np.hstack([y.repeat(sw), y, y])
    X_w, y_w, sw_w = np.vstack([X, X, X]), np.hstack([y, y, y]), np.hstack([sw, np.ones(30)])
    groups = lambda first: np.repeat([0, 1, 2], [first, 15, 15])
    logo = LeaveOneGroupOut()
    kw = {"Cs": [0.01, 0.1, 1.0], "tol": 1e-10}
    rep = LogisticRegressionCV(cv=list(logo.split(X_rep, groups=groups(sw.sum()))), **kw)
    rep.fit(X_rep, y_rep)
    wtd = LogisticRegressionCV(cv=list(logo.split(X_w, groups=groups(15))), **kw)
    wtd.fit(X_w, y_w, sample_weight=sw_w)
    np.testing.assert_allclose(wtd.scores_[0], rep.scores_[0], rtol=1e-12)
    np.testing.assert_array_equal(wtd.C_, rep.C_)
    np.testing.assert_allclose(wtd.coef_, rep.coef_, rtol=0, atol=1e-7)
    np.testing.assert_allclose(wtd.predict_proba(X), rep.predict_proba(X), rtol=1e-6)


def _data(m=120, n=5, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = np.argmax(X @ rng.normal(size=(n, k)) + rng.gumbel(size=(m, k)), axis=1)
    return X, y


def _sklearn_cv(tol=1e-10, **kw):
    return sklearn.linear_model.LogisticRegressionCV(
        l1_ratios=(0,), use_legacy_attributes=True, tol=tol, max_iter=10_000, **kw
    )


def _objective(coef, intercept, X, y, C):
    """J = mean loss + 1 / (2 C m) ||W||² in float64 NumPy (y: class indices)."""
    z = X @ np.asarray(coef, np.float64).T + np.asarray(intercept, np.float64)
    if z.shape[1] == 1:
        losses = -log_expit(np.where(y == 1, z[:, 0], -z[:, 0]))
    else:
        losses = -log_softmax(z, axis=1)[np.arange(len(y)), y]
    return losses.mean() + np.sum(np.square(coef, dtype=np.float64)) / (2 * C * len(y))


# --- the same C_ and coef_ as scikit-learn on its bundled data --------------------------------

DATASETS = {"iris": load_iris, "breast_cancer": load_breast_cancer}
_REFERENCES: dict = {}


def _reference(name, scoring):
    """Standardized data and scikit-learn's fit (computed once per module)."""
    if (name, scoring) not in _REFERENCES:
        X, y = DATASETS[name](return_X_y=True)
        X = StandardScaler().fit_transform(X)
        ref = _sklearn_cv(Cs=10, cv=StratifiedKFold(5), scoring=scoring, tol=1e-8).fit(X, y)
        _REFERENCES[name, scoring] = X, y, ref
    return _REFERENCES[name, scoring]


@pytest.mark.parametrize(("dtype", "name", "scoring"), [  # iris: multinomial, breast_cancer: binary
    ("float64", "iris", "accuracy")] + [
    pytest.param(dtype, name, scoring, marks=pytest.mark.slow)
    for dtype, name, scoring in [("float32", "breast_cancer", "neg_log_loss"),
                                 ("float64", "iris", "neg_log_loss"),
                                 ("float64", "breast_cancer", "accuracy"),
                                 ("float64", "breast_cancer", "neg_log_loss"),
                                 ("float32", "iris", "accuracy"),
                                 ("float32", "iris", "neg_log_loss"),
                                 ("float32", "breast_cancer", "accuracy")]])
def test_same_C_and_coef_as_sklearn(name, scoring, dtype):
    """Same folds, Cs (scikit-learn's default grid) and scoring give the same C_.

    float64 (tol 1e-8 on both sides): coef_ within 1e-5 of the largest coefficient. The
    difference is mostly scikit-learn's: its L-BFGS also stops when J decreases by less than
    64 eps (relative), and our refit is at least as close to the optimum (checked on J).
    Measured: at most 2e-6 relative (the same with tol 1e-10). scikit-learn's refit starts from the folds' mean model, ours from zero;
    the optimum is the same.

    float32 (tol 1e-6): J is resolved only to eps32 |J|, and J - J* ~ λ/2 ||Δw||² near the
    optimum, so the coefficients are fixed only to ||Δw|| <= sqrt(2 eps32 J / λ), λ = 1 / (C m):
    about 6e-3 for iris at C = 21.5 (measured 6.6e-3), 2e-3 for breast_cancer (measured 4e-4).
    """
    X, y, ref = _reference(name, scoring)
    X_fit = X.astype(dtype)
    tol = 1e-8 if dtype == "float64" else 1e-6
    ours = LogisticRegressionCV(cv=StratifiedKFold(5), scoring=scoring, tol=tol, max_iter=10_000)
    ours.fit(X_fit, y)
    key = ref.classes_[-1]
    np.testing.assert_array_equal(ours.Cs_, ref.Cs_)
    np.testing.assert_array_equal(ours.C_, ref.C_)
    assert ours.coef_.shape == ref.coef_.shape and ours.coef_.dtype == np.dtype(dtype)
    assert sorted(ours.scores_) == sorted(ref.scores_)
    assert ours.scores_[key].shape == ref.scores_[key].shape[:2] == (5, 10)
    assert ours.coefs_paths_[key].shape == ref.coefs_paths_[key].shape[:2] + (X.shape[1] + 1,)
    assert ours.n_iter_.shape == (1, 5, 10)
    C = ours.C_[0]
    if dtype == "float64":
        bound = 1e-5 * np.abs(ref.coef_).max()
        j_ours = _objective(ours.coef_, ours.intercept_, X, y, C)
        j_ref = _objective(ref.coef_, ref.intercept_, X, y, C)
        assert j_ours <= j_ref * (1 + 1e-12)
        assert abs(ours.loss_ - j_ours) <= 1e-12 * j_ours
        if scoring == "accuracy":  # every model predicts the same classes
            np.testing.assert_array_equal(ours.scores_[key], ref.scores_[key][..., 0])
        else:
            np.testing.assert_allclose(ours.scores_[key], ref.scores_[key][..., 0], atol=1e-3)
    else:
        bound = 2 * np.sqrt(2 * np.finfo(np.float32).eps * ours.loss_ * C * len(y))
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=bound)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=0, atol=bound)


# --- behaviour ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
def test_fitted_attributes_and_shapes(k):
    X, y = _data(k=k)
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = LogisticRegressionCV(Cs=[0.1, 1.0, 10.0], cv=3, tol=1e-8).fit(X, labels)
    classes = ["ant", "bee", "cat"][:k]
    assert clf.classes_.tolist() == classes
    keys = classes[1:] if k == 2 else classes
    assert sorted(clf.scores_) == sorted(clf.coefs_paths_) == keys
    for key in keys:
        assert clf.scores_[key].shape == (3, 3)
        np.testing.assert_array_equal(clf.scores_[key], clf.scores_[keys[0]])
        assert clf.coefs_paths_[key].shape == (3, 3, 6)
    assert clf.C_.shape == ((1,) if k == 2 else (k,)) and clf.Cs_.tolist() == [0.1, 1.0, 10.0]
    assert clf.coef_.shape == ((1, 5) if k == 2 else (k, 5))
    assert clf.intercept_.shape == ((1,) if k == 2 else (k,))
    assert clf.n_iter_.shape == (1, 3, 3) and clf.n_iter_.min() >= 1
    assert clf.n_features_in_ == 5 and np.isfinite(clf.loss_)
    assert set(clf.predict(X)) <= set(classes) and clf.score(X, labels) > 0.6
    if k == 3:  # each class's own coefficients: coefs_paths_[c][f, C] = (w[:, c], b[c])
        stacked = np.stack([clf.coefs_paths_[c] for c in classes])  # (K, F, C, n + 1)
        np.testing.assert_allclose(stacked[..., :-1].sum(axis=0), 0.0, atol=1e-6)


def test_every_model_equals_its_independent_fit_and_score():
    X, y = _data(m=90, seed=3)
    folds = list(StratifiedKFold(3).split(X, y))
    Cs = [0.05, 2.0, 50.0]
    clf = LogisticRegressionCV(Cs=Cs, cv=folds, scoring="neg_log_loss", tol=1e-10).fit(X, y)
    scorer = get_scorer("neg_log_loss")
    for f, (train, test) in enumerate(folds):
        for c, C in enumerate(Cs):
            alone = LogisticRegression(C=C, tol=1e-10).fit(X[train], y[train])
            model = clf.coefs_paths_[1][f, c]
            np.testing.assert_allclose(model[:-1], alone.coef_[0], atol=1e-6)
            np.testing.assert_allclose(model[-1], alone.intercept_[0], atol=1e-6)
            expected = scorer(alone, X[test], y[test])
            assert abs(clf.scores_[1][f, c] - expected) <= 1e-8 * abs(expected)


def test_fit_intercept_false():
    X, y = _data(k=3, seed=1)
    clf = LogisticRegressionCV(Cs=3, cv=3, fit_intercept=False, tol=1e-8).fit(X, y)
    assert clf.coefs_paths_[0].shape == (3, 3, 5) and np.all(clf.intercept_ == 0)


def test_refit_false_averages_the_best_models_as_sklearn():
    X, y = _data(m=150, k=3, seed=2)
    kw = {"Cs": [0.01, 0.1, 1.0], "cv": StratifiedKFold(3), "scoring": "neg_log_loss"}
    ours = LogisticRegressionCV(refit=False, tol=1e-10, **kw).fit(X, y)
    ref = _sklearn_cv(refit=False, **kw).fit(X, y)
    scores = ours.scores_[0]
    best = np.argmax(scores, axis=1)
    np.testing.assert_allclose(ours.C_, np.mean(np.asarray(kw["Cs"])[best]))
    np.testing.assert_allclose(ours.C_, ref.C_)
    paths = np.stack([ours.coefs_paths_[c] for c in ours.classes_])  # (K, F, C, n + 1)
    mean = paths[:, np.arange(3), best].mean(axis=1)
    np.testing.assert_allclose(ours.coef_, mean[:, :-1], rtol=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-5)
    assert not hasattr(ours, "loss_")


def test_ties_go_to_the_first_C_as_in_sklearn():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-5, 0.5, (30, 2)), rng.normal(5, 0.5, (30, 2))])
    y = np.repeat([0, 1], 30)  # separable: accuracy 1 at every C
    kw = {"Cs": [10.0, 0.1, 1.0], "cv": StratifiedKFold(3), "scoring": "accuracy"}
    ours = LogisticRegressionCV(tol=1e-8, **kw).fit(X, y)
    assert np.all(ours.scores_[1] == 1.0)
    assert ours.C_.tolist() == [10.0] == _sklearn_cv(**kw).fit(X, y).C_.tolist()


def test_class_weight_with_label_keys_and_balanced_match_sklearn():
    X, y = _data(m=150, k=3, seed=4)
    keep = (y != 2) | (np.arange(150) % 3 == 0)  # class "c" rare
    X, labels = X[keep], np.array(["a", "b", "c"])[y[keep]]
    for class_weight in ({"a": 1.0, "c": 4.0}, "balanced"):
        kw = {
            "Cs": [0.01, 0.1, 1.0],
            "cv": StratifiedKFold(3),
            "scoring": "neg_log_loss",
            "class_weight": class_weight,
        }
        ours = LogisticRegressionCV(tol=1e-10, **kw).fit(X, labels)
        ref = _sklearn_cv(**kw).fit(X, labels)
        np.testing.assert_array_equal(ours.C_, ref.C_)
        np.testing.assert_allclose(ours.scores_["a"], ref.scores_["a"][..., 0], atol=1e-6)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)


def test_sample_weight_in_training_and_scoring_matches_sklearn():
    X, y = _data(m=120, seed=5)
    sw = np.random.default_rng(1).integers(1, 4, size=120).astype(float)
    for scoring in ("accuracy", "roc_auc"):
        kw = {"Cs": [0.01, 0.1, 1.0], "cv": StratifiedKFold(3), "scoring": scoring}
        ours = LogisticRegressionCV(tol=1e-10, **kw).fit(X, y, sample_weight=sw)
        ref = _sklearn_cv(**kw).fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(ours.scores_[1], ref.scores_[1][..., 0], atol=1e-10)
        np.testing.assert_array_equal(ours.C_, ref.C_)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)


def test_callable_scorer_sees_each_fold_model():
    X, y = _data(seed=6)
    seen = []

    def scorer(estimator, X_test, y_test):
        seen.append((estimator.coef_.shape, X_test.shape[0]))
        return -float(np.abs(estimator.coef_).sum())  # prefers the strongest penalty

    clf = LogisticRegressionCV(Cs=[0.01, 1.0, 100.0], cv=3, scoring=scorer, tol=1e-8).fit(X, y)
    assert len(seen) == 9 and all(shape == (1, 5) and m == 40 for shape, m in seen)
    assert clf.C_.tolist() == [0.01]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
def test_batched_scores_equal_the_scorer_per_model(scoring, dtype, k):
    """accuracy and neg_log_loss score all Cs of a fold from one product; they must equal
    scikit-learn's scorer called on each model (the path of any other scoring), with sample
    weights and with overconfident models (C = 1e4 on separable data: log_loss's clipping)."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(120, 5)).astype(dtype)
    y = np.argmax(X @ rng.normal(size=(5, k)), axis=1)  # separable: some held-out losses
    sw = rng.uniform(0.5, 2.0, y.shape[0])  # reach -log(eps) at C = 1e4
    kw = {"Cs": [0.01, 1.0, 1e4], "cv": 3, "tol": 1e-6, "max_iter": 300}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fast = LogisticRegressionCV(scoring=scoring, **kw).fit(X, y, sample_weight=sw)
        slow = LogisticRegressionCV(scoring=get_scorer(scoring), **kw).fit(X, y, sample_weight=sw)
    key = fast.classes_[-1] if k == 2 else fast.classes_[0]
    # The scorer works in the model's dtype: its probabilities are rounded to eps and its
    # logits are dot products of n = 5 terms (rounding up to n eps of the largest loss term),
    # so each row's -log p, and the weighted mean of them, is off by up to about
    # (n + 2) eps (1 + |score|); the batched score takes log-sigmoid in float64 from the
    # logits. (Measured: up to 0.08 eps32 (1 + |score|) in float32, 0.6 eps64 in float64.)
    tol = (X.shape[1] + 2) * np.finfo(dtype).eps
    np.testing.assert_allclose(fast.scores_[key], slow.scores_[key], rtol=tol, atol=tol)
    np.testing.assert_array_equal(fast.C_, slow.C_)


def test_dtype_float32_in_float32_out_and_override():
    X, y = _data(seed=7)
    f32 = LogisticRegressionCV(Cs=3, cv=3, tol=1e-5).fit(X.astype(np.float32), y)
    assert f32.coef_.dtype == f32.intercept_.dtype == f32.coefs_paths_[1].dtype == np.float32
    f64 = LogisticRegressionCV(Cs=3, cv=3, dtype="float64", tol=1e-10)
    assert f64.fit(X.astype(np.float32), y).coef_.dtype == np.float64
    assert LogisticRegressionCV(Cs=3, cv=3, dtype="float32").fit(X, y).coef_.dtype == np.float32


def test_convergence_warning_and_verbose(capsys):
    X, y = _data(seed=8)
    with pytest.warns(ConvergenceWarning, match=r"of 10 models did not converge in max_iter=2"):
        LogisticRegressionCV(Cs=3, cv=3, max_iter=2, tol=1e-10).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegressionCV(Cs=3, cv=3, max_iter=2, tol=0.0, verbose=1).fit(X, y)
    assert "LogisticRegressionCV: 3 folds x 3 Cs in one program" in capsys.readouterr().err


# --- bad input: an error naming the parameter, before anything is compiled ------------------


def _sorted_binary():
    X, _ = _data(m=40, seed=9)
    return X, np.repeat([0, 1], 20)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"Cs": []}, r"Cs must be a non-empty list of numbers > 0 .* got \[\]"),
        ({"Cs": [1.0, -1.0]}, r"Cs must be .* got \[1.0, -1.0\]"),
        ({"Cs": [np.nan]}, r"Cs must be .* got \[nan\]"),
        ({"Cs": 0}, r"Cs must be an integer >= 1 .* got 0"),
        ({"Cs": "ten"}, r"Cs must be an integer >= 1 .* got 'ten'"),
        ({"cv": 10}, r"cv=10 folds is more than the 4 sample\(s\) of class 2, the smallest class"),
        ({"cv": StratifiedKFold(6)}, r"cv=6 folds is more than the 4 sample\(s\) of class 2"),
        ({"cv": 1}, r"cv must be an integer >= 2, .* got 1"),
        ({"cv": "five"}, r"cv must be an integer >= 2, .* got 'five'"),
        (
            {"cv": [(np.arange(4), np.arange(4, 40))]},
            r"cv fold 0's training rows hold only class 2",
        ),
        ({"cv": [(np.arange(40), np.array([], int))]}, r"cv fold 0 has no test rows"),
        ({"cv": [(np.arange(41), np.arange(3))]}, r"cv fold 0's train has row indices outside \[0, 39\]"),
        ({"scoring": "bogus"}, r"scoring must be None, a callable .* got 'bogus'"),
        ({"scoring": 3}, r"scoring must be None, a callable .* got 3"),
        (
            {"class_weight": {7: 2.0}},
            r"class_weight keys must be class labels \[0, 1, 2\], .* \[7\]",
        ),
        ({"class_weight": "auto"}, r"class_weight must be None, 'balanced' or a dict"),
        ({"refit": "yes"}, r"refit must be True or False, got 'yes'"),
        ({"fit_intercept": "yes"}, r"fit_intercept must be True or False"),
        ({"tol": -1.0}, r"tol must be a finite real number >= 0"),
        ({"max_iter": 0}, r"max_iter must be an integer"),
        ({"max_iter": 10**8}, r"max_iter must be an integer in \[1, 10000000\]"),
        ({"dtype": "float16"}, r"dtype must be one of"),
        ({"grad": "numeric"}, r"grad must be one of"),
        ({"verbose": -1}, r"verbose must be an integer >= 0"),
    ],
)
def test_bad_input_names_the_parameter_before_compiling(
    params, match, assert_rejected_before_compiling
):
    X, y = _data(m=40, k=3, seed=9)
    y[:4], y[4:] = 2, y[4:] % 2  # class 2 has 4 samples
    assert_rejected_before_compiling(LogisticRegressionCV(**params), X, y, match)


@pytest.mark.parametrize(
    "cv, sample_weight, y_kind, match",
    [
        (KFold(2), None, "sorted", r"cv fold 0's training rows hold only class 1"),
        (3, "one class", "sorted", r"at least 2 classes with positive sample_weight, .* class 1"),
        (3, None, "one class", r"at least 2 classes in the data, .* only one class: 0"),
    ],
)
def test_bad_folds_and_weights_before_compiling(
    cv, sample_weight, y_kind, match, assert_rejected_before_compiling
):
    X, y = _sorted_binary()
    if y_kind == "one class":
        y = np.zeros_like(y)
    sw = (y == 1).astype(float) if sample_weight == "one class" else None
    assert_rejected_before_compiling(LogisticRegressionCV(cv=cv), X, y, match, sw)
