"""scikit-learn's sklearn/linear_model/tests/test_logistic.py (1.9): the cases of
LogisticRegression that apply (those of LogisticRegressionCV: test_sklearn_logistic_cv_port.py).

Same data and assertions as there, for jaxlogreg's parameters; where a case compares solvers,
scikit-learn's lbfgs is the reference. Left out: the other solvers (liblinear, newton-*, sag,
saga), dual, intercept_scaling, the private path helpers, metadata routing, the array API,
callbacks and deprecations.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_almost_equal, assert_array_equal
from scipy.special import softmax
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.metrics import log_loss
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import scale
from sklearn.utils.class_weight import compute_class_weight

from jaxlogreg.estimators.logistic import LogisticRegression
from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

X = [[-1, 0], [0, 1], [1, 1]]
Y1 = [0, 1, 1]
Y2 = [2, 1, 0]
IRIS = load_iris()
# dense X, and CSR X (a compilation of its own: the slow tier)
CONTAINERS = [np.asarray, pytest.param(sp.csr_matrix, marks=pytest.mark.slow)]


def _sk(**kw):
    return SkLogisticRegression(solver="lbfgs", **kw)


def check_predictions(clf, X, y):
    n_samples = len(y)
    classes = np.unique(y)
    predicted = clf.fit(X, y).predict(X)
    assert_array_equal(clf.classes_, classes)
    assert predicted.shape == (n_samples,)
    assert_array_equal(predicted, y)
    probabilities = clf.predict_proba(X)
    assert probabilities.shape == (n_samples, classes.shape[0])
    assert_allclose(probabilities.sum(axis=1), np.ones(n_samples))
    assert_array_equal(probabilities.argmax(axis=1), y)


@pytest.mark.parametrize("container", CONTAINERS)
def test_predict_2_classes(container):
    check_predictions(LogisticRegression(), container(X), Y1)
    check_predictions(LogisticRegression(C=100), container(X), Y1)
    check_predictions(LogisticRegression(fit_intercept=False), container(X), Y1)


@pytest.mark.parametrize("container", CONTAINERS)
def test_predict_3_classes(container):
    check_predictions(LogisticRegression(C=10), container(X), Y2)


def test_logistic_glmnet():
    """glmnet's coefficients (alpha=0, lambda=1, standardize=F): C = 1 / n_samples."""
    X = np.array([[-4, -3, -2, -1, 0, 1, 2, 3, 4], [0, 0, 1, 0, 1, 1, 1, 0, 0]]).T
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1])
    glm = LogisticRegression(C=1 / y.shape[0], tol=1e-8, max_iter=300).fit(X, y)
    assert_allclose(glm.intercept_, 0.89230405539, rtol=1e-5)
    assert_allclose(glm.coef_, [[0.44464569182, 0.01457563448]], rtol=1e-5)
    glm.fit(X, np.array([0, 0, 0, 1, 1, 1, 2, 2, 2]))
    assert_allclose(glm.intercept_, [-0.12004759652, 2.251747383e-01, -0.1051271418], rtol=1e-5)
    assert_allclose(
        glm.coef_,
        [[-0.38023389305, -0.01226499932], [-8.164030176e-05, 4.734548012e-02],
         [0.3803155334, -0.0350804808]],
        rtol=1e-5, atol=1e-8,
    )


def test_sparsify():
    target = IRIS.target_names[IRIS.target]
    X = scale(IRIS.data)
    clf = LogisticRegression().fit(X, target)
    pred_d_d = clf.decision_function(X)
    clf.sparsify()
    assert sp.issparse(clf.coef_)
    pred_s_d = clf.decision_function(X)
    pred_s_s = clf.decision_function(sp.coo_matrix(X))
    clf.densify()
    pred_d_s = clf.decision_function(sp.coo_matrix(X))
    for pred in (pred_s_d, pred_s_s, pred_d_s):
        assert_array_almost_equal(pred_d_d, pred)


def test_inconsistent_input():
    rng = np.random.RandomState(0)
    X_ = rng.random_sample((5, 10))
    y_ = np.ones(X_.shape[0])
    y_[0] = 0
    clf = LogisticRegression()
    with pytest.raises(ValueError, match="Found input variables with inconsistent number"):
        clf.fit(X, y_[:-1])
    with pytest.raises(ValueError, match="X has 12 features, but"):
        clf.fit(X_, y_).predict(rng.random_sample((3, 12)))


def test_write_parameters():
    clf = LogisticRegression().fit(X, Y1)
    clf.coef_[:] = 0
    clf.intercept_[:] = 0
    assert_array_almost_equal(clf.decision_function(X), 0)


def test_nan():
    Xnan = np.array(X, dtype=np.float64)
    Xnan[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(Xnan, Y1)


def test_logistic_regression_solvers():
    X, y = make_classification(n_samples=200, n_features=10, n_informative=5, random_state=0)
    params = {"C": 0.1, "fit_intercept": False}
    ours = LogisticRegression(tol=1e-8, **params).fit(X, y)
    assert_allclose(ours.coef_, _sk(**params).fit(X, y).coef_, atol=1e-3, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_logistic_regression_solvers_multiclass(fit_intercept):
    X, y = make_classification(n_samples=20, n_features=20, n_informative=10, n_classes=3,
                               random_state=0)
    params = {"fit_intercept": fit_intercept, "tol": 1e-8}
    ours = LogisticRegression(max_iter=200, **params).fit(X, y)
    ref = _sk(max_iter=200, **params).fit(X, y)
    assert ours.coef_.shape == (3, 20)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-3)
    if fit_intercept:
        assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-3)
    ours_cv = LogisticRegressionCV(Cs=[1.0], max_iter=200, scoring="neg_log_loss", **params)
    ours_cv.fit(X, y)
    assert_allclose(ours_cv.coef_, ours.coef_, rtol=1e-2)
    if fit_intercept:
        assert_allclose(ours_cv.intercept_, ours.intercept_, rtol=1e-2)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_logistic_regression_solvers_multiclass_unpenalized(fit_intercept):
    """C = inf on a well-conditioned multinomial sample: the same optimum as scikit-learn's,
    and the symmetric one (coefficients summing to 0 over the classes)."""
    rng = np.random.RandomState(0)
    X = scale(rng.randn(100, 4))
    coef = rng.uniform(low=1, high=3, size=(3, 4))
    intercept = rng.uniform(low=-1, high=1, size=3) * fit_intercept
    proba = softmax(X @ coef.T + intercept, axis=1)
    y = np.array([rng.choice(3, p=p) for p in proba])
    params = {"C": np.inf, "fit_intercept": fit_intercept, "max_iter": 200}
    ours = LogisticRegression(tol=1e-9, **params).fit(X, y)
    ref = _sk(tol=1e-9, **params).fit(X, y)
    assert_allclose(ours.coef_.sum(axis=0), 0, atol=1e-10)
    assert_allclose(ours.coef_, ref.coef_, rtol=2e-3)
    if fit_intercept:
        assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-3, atol=1e-6)


def test_logistic_regression_solver_class_weights():
    X, y = make_classification(n_samples=300, n_features=5, n_informative=3, n_classes=2,
                               random_state=0)
    kw = {"fit_intercept": False, "max_iter": 1000, "tol": 1e-8}
    clf_cw = LogisticRegression(class_weight={0: 1, 1: 2}, **kw).fit(X, y)
    clf_sw = LogisticRegression(**kw).fit(X, y, sample_weight=y + 1)
    assert_allclose(clf_cw.coef_, clf_sw.coef_, atol=1e-6)


@pytest.mark.parametrize("container", CONTAINERS)
def test_logistic_regression_class_weights(container):
    X_iris = scale(IRIS.data)
    for X, y in ((X_iris[45:], IRIS.target[45:]), (X_iris[45:100], IRIS.target[45:100])):
        classes = np.unique(y)
        weights = dict(zip(classes, compute_class_weight("balanced", classes=classes, y=y)))
        clf1 = LogisticRegression(class_weight="balanced", max_iter=2000).fit(container(X), y)
        clf2 = LogisticRegression(class_weight=weights, max_iter=2000).fit(container(X), y)
        assert len(clf1.classes_) == classes.shape[0]
        assert_allclose(clf1.coef_, clf2.coef_, rtol=1e-4)
        sw = np.array([weights[c] for c in y])
        clf3 = LogisticRegression(max_iter=2000).fit(container(X), y, sample_weight=sw)
        assert_allclose(clf3.coef_, clf2.coef_, rtol=1e-4)


def test_decision_function_zero_predicts_the_first_class():
    X, y = make_classification(n_samples=5, n_features=5, random_state=0)
    clf = LogisticRegression(fit_intercept=False).fit(X, y)
    assert_array_equal(clf.predict(np.zeros((5, 5))), np.zeros(5))


def test_logreg_intercept_zero_without_fit_intercept():
    clf = LogisticRegression(fit_intercept=False).fit(X, Y1)
    assert clf.intercept_ == 0.0


def test_logreg_predict_proba_multinomial():
    """Softmax probabilities have a lower log loss than one-vs-rest ones, and than the
    logistic function of each logit normalised (scikit-learn's _predict_proba_lr)."""
    X, y = make_classification(n_samples=10, n_features=20, random_state=0, n_classes=3,
                               n_informative=10)
    clf_multi = LogisticRegression().fit(X, y)
    clf_multi_loss = log_loss(y, clf_multi.predict_proba(X))
    clf_ovr = OneVsRestClassifier(LogisticRegression()).fit(X, y)
    assert log_loss(y, clf_ovr.predict_proba(X)) > clf_multi_loss
    p = 1.0 / (1.0 + np.exp(-clf_multi.decision_function(X)))
    assert log_loss(y, p / p.sum(axis=1, keepdims=True)) > clf_multi_loss


@pytest.mark.parametrize("max_iter", [1, 3])
def test_max_iter(max_iter):
    X, y_bin = IRIS.data, IRIS.target.copy()
    y_bin[y_bin == 2] = 0
    lr = LogisticRegression(max_iter=max_iter, tol=1e-15)
    with pytest.warns(ConvergenceWarning, match=f"did not converge in max_iter={max_iter}"):
        lr.fit(X, y_bin)
    assert lr.n_iter_[0] == max_iter


@pytest.mark.parametrize("warm_start", [True, False])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_warm_start(warm_start, fit_intercept):
    """A second fit of one iteration stays at the first fit's optimum only when warm."""
    X, y = IRIS.data, IRIS.target
    clf = LogisticRegression(tol=1e-4, warm_start=warm_start, fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        coef_1 = clf.coef_
        clf.max_iter = 1
        clf.fit(X, y)
    cum_diff = np.sum(np.abs(coef_1 - clf.coef_))
    assert (cum_diff < 2.0) if warm_start else (cum_diff > 2.0)


@pytest.mark.slow
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_dtype_match(fit_intercept):
    X_32, X_64 = np.array(X, np.float32), np.array(X, np.float64)
    y_32 = np.array(Y1, np.float32)
    kw = {"tol": 5e-4, "fit_intercept": fit_intercept}
    lr_32 = LogisticRegression(**kw).fit(X_32, y_32)
    lr_32_sparse = LogisticRegression(**kw).fit(sp.csr_matrix(X_32), y_32)
    lr_64 = LogisticRegression(**kw).fit(X_64, y_32.astype(np.float64))
    lr_64_sparse = LogisticRegression(**kw).fit(sp.csr_matrix(X_64), y_32)
    assert lr_32.coef_.dtype == lr_32_sparse.coef_.dtype == np.float32
    assert lr_64.coef_.dtype == lr_64_sparse.coef_.dtype == np.float64
    atol = 2 * 1.72 * kw["tol"]  # scikit-learn's bound: |dw| ~ |inv(H)| tol, twice
    assert_allclose(lr_32.coef_, lr_64.coef_.astype(np.float32), atol=atol)
    assert_allclose(lr_32.coef_, lr_32_sparse.coef_, atol=atol)
    assert_allclose(lr_64.coef_, lr_64_sparse.coef_, atol=atol)


def test_warm_start_converge_LR():
    rng = np.random.RandomState(0)
    X = np.concatenate((rng.randn(100, 2) + [1, 1], rng.randn(100, 2)))
    y = np.array([1] * 100 + [-1] * 100)
    lr_no_ws = LogisticRegression(warm_start=False, tol=1e-6)
    lr_ws = LogisticRegression(warm_start=True, tol=1e-6)
    lr_no_ws_loss = log_loss(y, lr_no_ws.fit(X, y).predict_proba(X))
    for _ in range(5):
        lr_ws.fit(X, y)
    assert_allclose(lr_no_ws_loss, log_loss(y, lr_ws.predict_proba(X)), rtol=1e-5)


@pytest.mark.slow
def test_elastic_net_coeffs():
    X, y = make_classification(random_state=0)
    kw = {"C": 2.0, "solver": "proximal", "tol": 1e-3, "max_iter": 500}
    enet = LogisticRegression(penalty="elasticnet", l1_ratio=0.5, **kw).fit(X, y).coef_
    l1 = LogisticRegression(penalty="l1", **kw).fit(X, y).coef_
    l2 = LogisticRegression(penalty="l2", **kw).fit(X, y).coef_
    assert not np.allclose(enet, l1, rtol=0, atol=1e-3)
    assert not np.allclose(enet, l2, rtol=0, atol=1e-3)
    assert not np.allclose(l2, l1, rtol=0, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("C", [0.001, 1, 100])
@pytest.mark.parametrize("penalty, l1_ratio", [("l1", 1), ("l2", 0)])
def test_elastic_net_l1_l2_equivalence(C, penalty, l1_ratio):
    X, y = make_classification(random_state=0)
    kw = {"C": C, "solver": "proximal", "tol": 1e-2}
    lr_enet = LogisticRegression(penalty="elasticnet", l1_ratio=l1_ratio, **kw).fit(X, y)
    lr_expected = LogisticRegression(penalty=penalty, **kw).fit(X, y)
    assert_array_almost_equal(lr_enet.coef_, lr_expected.coef_)


@pytest.mark.slow
def test_penalty_none_is_C_inf():
    X, y = make_classification(n_samples=1000, n_redundant=0, random_state=0)
    pred_none = LogisticRegression(penalty=None, max_iter=300).fit(X, y).predict(X)
    pred_l2_C_inf = LogisticRegression(C=np.inf, max_iter=300).fit(X, y).predict(X)
    assert_array_equal(pred_none, pred_l2_C_inf)


def test_c_inf_no_warning():
    X, y = make_classification(n_samples=100, n_redundant=0, random_state=42)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        LogisticRegression(C=np.inf).fit(X, y)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_multinomial_identifiability_on_iris(fit_intercept):
    """The L2-penalised multinomial optimum has coefficients (and intercepts) summing to 0."""
    clf = LogisticRegression(C=len(IRIS.data), fit_intercept=fit_intercept)
    clf.fit(scale(IRIS.data), IRIS.target_names[IRIS.target])
    assert_allclose(clf.coef_.sum(axis=0), 0, atol=1e-10)
    if fit_intercept:
        assert clf.intercept_.sum(axis=0) == pytest.approx(0, abs=1e-11)


@pytest.mark.parametrize("class_weight", [{0: 1.0, 1: 10.0, 2: 1.0}, "balanced"])
def test_sample_weight_not_modified(class_weight):
    X, y = load_iris(return_X_y=True)
    W = np.ones(len(X))
    W[: len(X) // 2] = 2
    expected = W.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LogisticRegression(class_weight=class_weight, max_iter=200).fit(X, y, sample_weight=W)
    assert_allclose(expected, W)


@pytest.mark.slow
def test_large_sparse_matrix():
    """CSR with 64-bit indices is accepted."""
    X = sp.random(20, 10, density=0.3, format="csr", random_state=42)
    X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    y = np.random.RandomState(42).randint(2, size=X.shape[0])
    clf = LogisticRegression().fit(X, y)
    assert_allclose(clf.predict_proba(X), clf.predict_proba(X.toarray()), rtol=1e-12)


def test_single_feature():
    X = np.array([[0.5, 0.65, 1.1, 1.25, 0.8, 0.54, 0.95, 0.7]]).T
    y = np.array([1, 1, 0, 0, 1, 1, 0, 1])
    assert LogisticRegression().fit(X, y).coef_.shape == (1, 1)


def test_zero_max_iter():
    """max_iter=0 fits nothing: the zero model, n_iter_ 0, and a ConvergenceWarning."""
    X, y = load_iris(return_X_y=True)
    y = y == 2
    with pytest.warns(ConvergenceWarning):
        clf = LogisticRegression(max_iter=0).fit(X, y)
    assert clf.n_iter_ == 0
    assert_allclose(clf.coef_, np.zeros_like(clf.coef_))
    assert_allclose(clf.predict_proba(X), np.full(shape=(X.shape[0], 2), fill_value=0.5))
    assert clf.score(X, y) < 0.7
