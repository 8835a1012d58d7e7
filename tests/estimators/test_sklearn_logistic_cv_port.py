"""scikit-learn's sklearn/linear_model/tests/test_logistic.py (1.9): the cases of
LogisticRegressionCV that apply (those of LogisticRegression: test_sklearn_logistic_port.py).

Same data and assertions as there, for jaxlogreg's parameters (no l1_ratios axis: the
attributes are scikit-learn's legacy ones without it); scikit-learn's lbfgs is the reference
where a case compares with it. Where jaxlogreg differs on purpose, the test says so (a training
fold with one class is refused with a message naming cv).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_almost_equal, assert_array_equal
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV as SkLogisticRegressionCV
from sklearn.metrics import brier_score_loss, get_scorer
from sklearn.model_selection import KFold, LeaveOneGroupOut, StratifiedKFold, cross_val_score
from sklearn.preprocessing import LabelEncoder, scale

from jaxlogreg.estimators.logistic import LogisticRegression
from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

IRIS = load_iris()


def _sk_cv(**kw):  # scikit-learn 1.9's legacy attributes, no l1_ratios axis warnings
    return SkLogisticRegressionCV(solver="lbfgs", l1_ratios=(0,), use_legacy_attributes=True, **kw)


@pytest.mark.slow
def test_logistic_cv():
    n_samples, n_features, n_cv = 50, 5, 3
    rng = np.random.RandomState(0)
    X_ref = rng.randn(n_samples, n_features)
    y = np.sign(X_ref.dot(5 * rng.randn(n_features)))
    X_ref -= X_ref.mean()
    X_ref /= X_ref.std()
    lr_cv = LogisticRegressionCV(Cs=[1.0], fit_intercept=False, cv=n_cv, scoring="neg_log_loss",
                                 tol=1e-10).fit(X_ref, y)
    lr = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-10).fit(X_ref, y)
    assert_array_almost_equal(lr.coef_, lr_cv.coef_)
    assert lr_cv.coef_.shape == (1, n_features)
    assert_array_equal(lr_cv.classes_, [-1, 1])
    assert lr_cv.Cs_.shape == (1,)
    coefs_paths = np.asarray(list(lr_cv.coefs_paths_.values()))
    assert coefs_paths.shape == (1, n_cv, 1, n_features)  # no l1_ratios axis
    assert np.asarray(list(lr_cv.scores_.values())).shape == (1, n_cv, 1)


def test_logistic_cv_mock_scorer():
    """A plain callable is called exactly n_folds x n_Cs times, in order; score() uses it."""

    class MockScorer:
        def __init__(self):
            self.calls = 0
            self.scores = [0.1, 0.4, 0.8, 0.5]

        def __call__(self, model, X, y, sample_weight=None):
            score = self.scores[self.calls % len(self.scores)]
            self.calls += 1
            return score

    mock_scorer = MockScorer()
    Cs = [1, 2, 3, 4]
    lr = LogisticRegressionCV(Cs=Cs, scoring=mock_scorer, cv=2)
    X, y = make_classification(random_state=0)
    lr.fit(X, y)
    assert lr.C_[0] == Cs[2]
    assert mock_scorer.calls == 2 * len(Cs)
    mock_scorer.calls = 0
    assert lr.score(X, lr.predict(X)) == mock_scorer.scores[0]
    assert mock_scorer.calls == 1


@pytest.mark.slow
def test_logistic_cv_multinomial_score():
    """The CV score of a fold's model is the scorer's on that model (multiclass averages)."""
    X, y = make_classification(n_samples=100, random_state=42, n_classes=3, n_informative=6)
    train, test = np.arange(80), np.arange(80, 100)
    lr = LogisticRegression(C=1.0, tol=1e-10).fit(X[train], y[train])
    for scoring in ("accuracy", "precision_macro", "precision_weighted", "f1_macro",
                    "f1_weighted", "neg_log_loss", "recall_macro", "recall_weighted"):
        cv = LogisticRegressionCV(Cs=[1.0], cv=[(train, test)], scoring=scoring, tol=1e-10)
        cv.fit(X, y)
        assert_array_almost_equal(cv.scores_[0][0, 0], get_scorer(scoring)(lr, X[test], y[test]))


@pytest.mark.slow
def test_multinomial_logistic_regression_string_inputs():
    X_ref, y = make_classification(n_samples=50, n_features=5, n_classes=3, n_informative=3,
                                   random_state=0)
    y_str = LabelEncoder().fit(["bar", "baz", "foo"]).inverse_transform(y)
    y = np.array(y) - 1
    kw = {"tol": 1e-10}
    lr, lr_str = LogisticRegression(**kw).fit(X_ref, y), LogisticRegression(**kw).fit(X_ref, y_str)
    cv_kw = {"Cs": 3, "scoring": "neg_log_loss", **kw}
    lr_cv = LogisticRegressionCV(**cv_kw).fit(X_ref, y)
    lr_cv_str = LogisticRegressionCV(**cv_kw).fit(X_ref, y_str)
    assert_allclose(lr.coef_, lr_str.coef_)
    assert_allclose(lr.predict_proba(X_ref), lr_str.predict_proba(X_ref))
    assert sorted(lr_str.classes_) == ["bar", "baz", "foo"]
    assert_allclose(lr_cv.coef_, lr_cv_str.coef_)
    assert_allclose(lr_cv.predict_proba(X_ref), lr_cv_str.predict_proba(X_ref))
    assert sorted(lr_cv_str.classes_) == ["bar", "baz", "foo"]
    assert sorted(np.unique(lr_str.predict(X_ref))) == ["bar", "baz", "foo"]
    assert set(np.unique(lr_cv_str.predict(X_ref))) <= {"bar", "baz", "foo"}
    lr_cv_str = LogisticRegressionCV(Cs=[1, 2, 10], scoring="neg_log_loss").fit(X_ref, y_str)
    assert sorted(np.unique(lr_cv_str.predict(X_ref))) == ["bar", "baz", "foo"]
    weighted = LogisticRegression(class_weight={"bar": 1, "baz": 2, "foo": 0}).fit(X_ref, y_str)
    assert sorted(np.unique(weighted.predict(X_ref))) == ["bar", "baz"]


@pytest.mark.slow
def test_multinomial_cv_iris():
    X, y = scale(IRIS.data), IRIS.target
    n_features = X.shape[1]
    clf = LogisticRegressionCV(cv=2, scoring="neg_log_loss", max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # C = 1e4: slow to converge
        clf.fit(X, y)
    assert clf.coef_.shape == (3, n_features)
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert np.asarray(list(clf.coefs_paths_.values())).shape == (3, 2, 10, n_features + 1)
    assert clf.Cs_.shape == (10,)
    assert np.asarray(list(clf.scores_.values())).shape == (3, 2, 10)
    for fold in range(2):  # the norm of the coefficients grows with C
        coefs = np.stack([clf.coefs_paths_[c][fold, :, :-1] for c in clf.classes_], axis=1)
        norms = np.sum(coefs.reshape(10, -1) ** 2, axis=1)
        assert np.all(np.diff(norms) >= 0)

    # KFold(3) on iris: each test fold holds the one class its training rows lack
    cv = KFold(n_splits=3)
    clf = LogisticRegressionCV(cv=cv, scoring="accuracy").fit(X, y)
    assert np.all(clf.scores_[0] == 0.0)
    clf = LogisticRegressionCV(cv=cv, scoring="neg_brier_score", Cs=np.logspace(-6, 3, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.C_[0] == 1e-6
    brier_scores = -clf.scores_[0]
    assert np.all(brier_scores > 0.7 * 2)
    assert np.min(brier_scores) < 0.8 * 2


@pytest.mark.slow
def test_logistic_cv_folds_with_classes_missing():
    """3 classes: each fold trains on 2 and scores the third (labels passed to the metric)."""
    y = np.array(["a", "a", "b", "b", "c", "c"])
    X = np.arange(6)[:, None]
    cv = KFold(n_splits=3)
    clf = LogisticRegressionCV(cv=cv, scoring="neg_brier_score", Cs=np.logspace(-6, 6, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.C_[0] == 1e-6
    for i, (_, test) in enumerate(cv.split(X, y)):
        model = LogisticRegression(C=clf.C_[0]).fit(X, y)
        model.coef_ = np.stack([clf.coefs_paths_[c][i, 0, :-1] for c in "abc"])
        model.intercept_ = np.array([clf.coefs_paths_[c][i, 0, -1] for c in "abc"])
        bs = brier_score_loss(y[test], model.predict_proba(X[test]), labels=["a", "b", "c"])
        assert_allclose(-clf.scores_["a"][i, 0], bs)


def test_a_training_fold_with_one_class_is_refused():
    """Differs on purpose: scikit-learn fits a fold whose training rows hold one class of two;
    jaxlogreg refuses it, before fitting, with a message naming cv."""
    y = np.array(["a", "a", "b", "b"])
    with pytest.raises(ValueError, match=r"cv fold 0's training rows hold only class 'b'"):
        LogisticRegressionCV(cv=KFold(2), scoring="neg_brier_score").fit(np.arange(4)[:, None], y)


@pytest.mark.slow
def test_logistic_cv_sparse():
    X, y = make_classification(n_samples=100, n_features=5, random_state=0)
    X[X < 0.0] = 0.0
    params = {"Cs": [1e-1, 1, 1e1], "max_iter": 10_000, "tol": 1e-7, "scoring": "neg_log_loss"}
    clf = LogisticRegressionCV(**params).fit(X, y)
    clfs = LogisticRegressionCV(**params).fit(sp.csr_matrix(X), y)
    assert_allclose(clfs.coef_, clf.coef_, rtol=1e-5)
    assert_allclose(clfs.intercept_, clf.intercept_, rtol=1e-5)
    assert clfs.C_ == clf.C_


@pytest.mark.slow
@pytest.mark.parametrize("weight", [{0: 0.1, 1: 0.2}, {0: 0.1, 1: 0.2, 2: 0.5}])
@pytest.mark.parametrize("class_weight", ["weight", "balanced"])
def test_logistic_regressioncv_class_weights(weight, class_weight):
    class_weight = weight if class_weight == "weight" else class_weight
    X, y = make_classification(n_samples=30, n_features=3, n_repeated=0, n_informative=3,
                               n_redundant=0, n_classes=len(weight), random_state=0)
    params = {"Cs": 1, "fit_intercept": False, "class_weight": class_weight, "tol": 1e-8,
              "scoring": "neg_log_loss"}
    ours = LogisticRegressionCV(**params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = _sk_cv(**params).fit(X, y)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["single", "cv"])
def test_logistic_regression_sample_weights(problem):
    """Integer weights equal repeated rows (the first CV group weighted, as in scikit-learn)."""
    X, y = make_classification(n_samples=600, n_features=5, n_informative=3, n_classes=2,
                               n_redundant=0, random_state=0)
    rng = np.random.RandomState(0)
    sw = np.ones(y.shape[0])
    sw[:200] = rng.randint(0, 5, size=200)
    X_rep, y_rep = np.repeat(X, sw.astype(int), axis=0), np.repeat(y, sw.astype(int), axis=0)
    kw_weighted = {"fit_intercept": False, "max_iter": 1000, "tol": 1e-8}
    kw_repeated = dict(kw_weighted)
    Estimator = LogisticRegression
    if problem == "cv":
        Estimator = LogisticRegressionCV
        groups = np.repeat([0, 1, 2], 200)
        kw_weighted.update(Cs=10, cv=list(LeaveOneGroupOut().split(X, groups=groups)))
        groups_rep = np.repeat(groups, sw.astype(int), axis=0)
        kw_repeated.update(Cs=10, cv=list(LeaveOneGroupOut().split(X_rep, groups=groups_rep)))
    weighted = Estimator(**kw_weighted).fit(X, y, sample_weight=sw)
    repeated = Estimator(**kw_repeated).fit(X_rep, y_rep)
    if problem == "cv":
        assert_allclose(weighted.scores_[1], repeated.scores_[1])
    assert_allclose(weighted.coef_, repeated.coef_, atol=1e-5)


@pytest.mark.slow
def test_logistic_regression_cv_refit():
    X, y = make_classification(n_samples=100, n_features=20, random_state=0)
    kw = {"max_iter": 10000, "tol": 1e-10}
    lr_cv = LogisticRegressionCV(Cs=[1.0], refit=True, scoring="neg_log_loss", **kw).fit(X, y)
    lr = LogisticRegression(C=1.0, **kw).fit(X, y)
    assert_allclose(lr_cv.coef_, lr.coef_, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_n_iter():
    X, y = scale(IRIS.data), IRIS.target
    y_bin = np.where(y == 2, 0, y)
    for target in (y_bin, y):
        clf = LogisticRegression(tol=1e-2, C=1.0).fit(X, target)
        assert clf.n_iter_.shape == (1,)
        clf_cv = LogisticRegressionCV(tol=1e-2, Cs=4, cv=2, scoring="neg_log_loss")
        clf_cv.fit(X, target)
        assert clf_cv.n_iter_.shape == (1, 2, 4)  # no l1_ratios axis


@pytest.mark.slow
@pytest.mark.parametrize("n_classes", [2, 3])
def test_LogisticRegressionCV_no_refit(n_classes):
    X, y = make_classification(n_samples=200, n_classes=n_classes, n_informative=n_classes,
                               n_features=20, random_state=0)
    lrcv = LogisticRegressionCV(Cs=np.logspace(-4, 4, 3), tol=1e-2, refit=False,
                                scoring="neg_log_loss").fit(X, y)
    k = 1 if n_classes == 2 else n_classes
    assert lrcv.C_.shape == (k,)
    assert lrcv.coef_.shape == (k, 20)
    assert_allclose(lrcv.C_, lrcv.C_[0])


@pytest.mark.slow
def test_LogisticRegressionCV_on_folds():
    """coefs_paths_[class][fold, C] is the model fitted on that fold's training rows."""
    X, y = scale(IRIS.data), IRIS.target
    lrcv = LogisticRegressionCV(tol=1e-8, max_iter=1000, scoring="neg_log_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lrcv.fit(X, y)
    folds = list(StratifiedKFold(5).split(X, y))
    for idx_fold, idx_C in [[0, 0], [0, 1], [3, 6]]:
        train = folds[idx_fold][0]
        lr = LogisticRegression(C=lrcv.Cs_[idx_C], tol=1e-8, max_iter=1000)
        lr.fit(X[train], y[train])
        for cl in np.unique(y):
            assert_allclose(lrcv.coefs_paths_[cl][idx_fold, idx_C, :-1], lr.coef_[cl], rtol=1e-5)
            assert_allclose(lrcv.coefs_paths_[cl][idx_fold, idx_C, -1], lr.intercept_[cl],
                            rtol=1e-5)


@pytest.mark.slow
def test_scores_attribute_layout():
    """scores_[1][:, i] averaged over folds is cross_val_score of the model at Cs[i]."""
    X, y = make_classification(n_samples=1000, random_state=0)
    cv = StratifiedKFold(n_splits=5)
    Cs = [0.1, 1, 10]
    lrcv = LogisticRegressionCV(Cs=Cs, cv=cv, tol=1e-6, scoring="neg_log_loss").fit(X, y)
    avg_scores_lrcv = lrcv.scores_[1].mean(axis=0)
    for i, C in enumerate(Cs):
        lr = LogisticRegression(C=C, tol=1e-6)
        avg_score_lr = cross_val_score(lr, X, y, cv=cv, scoring="neg_log_loss").mean()
        assert avg_scores_lrcv[i] == pytest.approx(avg_score_lr, rel=1e-3)


@pytest.mark.slow
def test_lr_cv_scores_with_sample_weight_in_fit_and_score():
    """sample_weight reaches the scorer in fit and in score (as without metadata routing)."""
    rng = np.random.RandomState(10)
    X, y = make_classification(n_samples=10, random_state=rng)
    X_t, y_t = make_classification(n_samples=10, random_state=rng)
    sample_weight = np.ones(len(y))
    sample_weight[: len(y) // 2] = 2
    scorer = get_scorer("accuracy")
    lr_cv = LogisticRegressionCV(scoring=scorer, cv=2).fit(X, y, sample_weight=sample_weight)
    assert lr_cv.score(X_t, y_t, sample_weight=sample_weight) == pytest.approx(
        scorer(lr_cv, X_t, y_t, sample_weight=sample_weight))
    unweighted = LogisticRegressionCV(cv=2).fit(X, y)  # scoring None: accuracy
    assert unweighted.score(X_t, y_t) == pytest.approx(np.mean(unweighted.predict(X_t) == y_t))
