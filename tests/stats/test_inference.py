"""jaxlogreg.inference and LogisticRegression.inference against statsmodels (and glum).

Reference numbers come from statsmodels' Logit / MNLogit fitted to 1e-12 on its bundled data
sets (spector: 32 rows, 3 features; anes96: 944 rows, 5 features, 7 classes) and on synthetic
data; agreement is asked to 1e-6 relative, far above float64 rounding of a k × k solve.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg as jl
from jaxlogreg import Params

sm = pytest.importorskip("statsmodels.api")
sandwich = pytest.importorskip("statsmodels.stats.sandwich_covariance")

RTOL = 1e-6


def _close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=0)


@pytest.fixture(scope="module")
def spector():
    data = sm.datasets.spector.load_pandas()
    return data.exog.to_numpy(float), data.endog.to_numpy().astype(int), list(data.exog.columns)


@pytest.fixture(scope="module")
def spector_logit(spector):
    X, y, _ = spector
    model = sm.Logit(y, sm.add_constant(X, prepend=False))  # const last, as jaxlogreg
    return model, model.fit(disp=0, tol=1e-12, method="newton", maxiter=100)


def _binary_params(result) -> Params:
    return Params(np.asarray(result.params[:-1]), np.asarray(result.params[-1]))


def _check_against(inf, result, cov=None):
    """inf equals statsmodels' ``result`` (its own covariance, or ``cov`` computed from it)."""
    own = cov is None
    cov = result.cov_params() if own else cov
    se = np.sqrt(np.diag(cov))
    _close(inf.coef, result.params)
    _close(inf.std_err, se)
    _close(inf.cov, cov)
    _close(inf.z, result.params / se)
    if own:
        _close(inf.z, result.tvalues)
        _close(inf.p_value, result.pvalues)
        _close(inf.conf_int, result.conf_int())


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "cluster"])
def test_binary_equals_statsmodels_logit(spector, spector_logit, cov_type, sparse):
    X, y, _ = spector
    model, base = spector_logit
    groups = np.arange(X.shape[0]) % 7 if cov_type == "cluster" else None
    kwds = {} if groups is None else {"cov_kwds": {"groups": groups}}
    ref = base if cov_type == "nonrobust" else model.fit(
        disp=0, tol=1e-12, method="newton", maxiter=100, cov_type=cov_type, **kwds)
    inf = jl.inference(_binary_params(ref), sp.csr_array(X) if sparse else X, y,
                       cov_type=cov_type, groups=groups)
    _check_against(inf, ref)
    assert inf.names == ("x0", "x1", "x2", "intercept") and inf.cov_type == cov_type


def test_hc1_is_hc0_with_n_over_n_minus_k(spector, spector_logit):
    # statsmodels' discrete models give HC0 for "HC1"; its cov_white_simple has the n/(n-k)
    X, y, _ = spector
    _, ref = spector_logit
    inf = jl.inference(_binary_params(ref), X, y, cov_type="HC1")
    _check_against(inf, ref, sandwich.cov_white_simple(ref, use_correction=True))


def test_without_intercept_equals_statsmodels(spector):
    X, y, _ = spector
    ref = sm.Logit(y, X).fit(disp=0, tol=1e-12, method="newton")
    inf = jl.inference(Params(np.asarray(ref.params), np.asarray(0.0)), X, y,
                       fit_intercept=False)
    _check_against(inf, ref)


def test_softmax_equals_statsmodels_mnlogit_reference_class():
    data = sm.datasets.anes96.load_pandas()
    X, y = data.exog.to_numpy(float), data.endog.to_numpy().astype(int)
    model = sm.MNLogit(y, sm.add_constant(X, prepend=False))
    for cov_type in ("nonrobust", "HC0"):
        ref = model.fit(disp=0, method="newton", tol=1e-12, maxiter=100, cov_type=cov_type)
        beta = np.asarray(ref.params)  # (p, K - 1): class 0 is the reference
        K = beta.shape[1] + 1
        shift = np.random.default_rng(0).normal(size=X.shape[1] + 1)  # W_k + c: same model
        W = np.column_stack([np.zeros(X.shape[1]), beta[:-1]]) + shift[:-1, None]
        b = np.r_[0.0, beta[-1]] + shift[-1]
        inf = jl.inference(Params(W, b), X, y, cov_type=cov_type, classes=range(10, 10 + K))
        _close(inf.coef, beta.ravel(order="F"), rtol=1e-9)  # class-major, as MNLogit
        _close(inf.std_err, np.asarray(ref.bse).ravel(order="F"))
        _close(inf.cov, ref.cov_params())
        _close(inf.p_value, np.asarray(ref.pvalues).ravel(order="F"))
    assert inf.names[0] == "x0[11]" and inf.names[-1] == "intercept[16]"


def test_synthetic_with_integer_weights_equals_repeated_rows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = (X @ [1.0, -0.5, 0.0, 2.0] + rng.logistic(size=300) > 0).astype(int)
    weights = rng.integers(1, 4, size=300)
    Xr, yr = np.repeat(X, weights, axis=0), np.repeat(y, weights)
    ref = sm.Logit(yr, sm.add_constant(Xr, prepend=False)).fit(disp=0, tol=1e-12)
    inf = jl.inference(_binary_params(ref), X, y, sample_weight=weights)
    _check_against(inf, ref)


def test_jaxlogreg_fit_gives_statsmodels_numbers(spector, spector_logit):
    X, y, _ = spector
    _, ref = spector_logit
    fitted = jl.fit(X, y, C=np.inf, dtype="float64", tol=1e-10, max_iter=1000)
    assert fitted.converged
    inf = jl.inference(fitted.params, X, y)
    _close(inf.coef, ref.params)
    _close(inf.std_err, ref.bse)
    _close(inf.p_value, ref.pvalues)


def test_estimator_inference_uses_labels_names_and_classes(spector, spector_logit):
    pd = pytest.importorskip("pandas")
    X, y, columns = spector
    _, ref = spector_logit
    frame = pd.DataFrame(X, columns=columns)
    labels = np.array(["fail", "pass"])[y]
    clf = jl.LogisticRegression(C=np.inf, dtype="float64", tol=1e-10, max_iter=1000)
    inf = clf.fit(frame, labels).inference(frame, labels, cov_type="HC0")
    ref_hc0 = sandwich.cov_white_simple(ref, use_correction=False)
    _check_against(inf, ref, ref_hc0)
    assert inf.names == (*columns, "intercept")
    with pytest.raises(ValueError, match="labels from classes_"):
        clf.inference(frame, np.where(y == 1, "pass", "other"))


def test_l2_penalty_uses_the_penalised_hessian(spector, spector_logit):
    X, y, _ = spector
    model, _ = spector_logit
    C = 0.5
    clf = jl.LogisticRegression(C=C, dtype="float64", tol=1e-12, max_iter=1000).fit(X, y)
    theta = np.r_[clf.coef_[0], clf.intercept_]
    H = -model.hessian(theta) + np.diag([1 / C] * 3 + [0.0])  # Σ L_i + ||w||² / (2C)
    inf = clf.inference(X, y)
    _close(inf.cov, np.linalg.inv(H))
    scores = model.score_obs(theta)
    bread = np.linalg.inv(H)
    _close(clf.inference(X, y, cov_type="HC0").cov, bread @ scores.T @ scores @ bread)


def test_softmax_l2_tends_to_the_unpenalised_covariance():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 3))
    y = np.argmax(X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(400, 3)), axis=1)
    ref = sm.MNLogit(y, sm.add_constant(X, prepend=False)).fit(disp=0, method="newton",
                                                               tol=1e-12)
    se = np.asarray(ref.bse).ravel(order="F")
    previous = np.inf
    for C in (1.0, 1e3, 1e6):
        clf = jl.LogisticRegression(C=C, dtype="float64", tol=1e-10, max_iter=2000).fit(X, y)
        gap = np.max(np.abs(clf.inference(X, y).std_err / se - 1))
        assert gap < previous
        previous = gap
    assert previous < 1e-5


def test_glum_covariance_matches_where_its_definition_does(spector):
    glum = pytest.importorskip("glum")
    X, y, _ = spector
    n, k = X.shape[0], X.shape[1] + 1
    model = glum.GeneralizedLinearRegressor(family="binomial", alpha=0, gradient_tol=1e-12)
    model.fit(X, y.astype(float))
    params = Params(np.asarray(model.coef_), np.asarray(model.intercept_))
    groups = np.arange(n) % 7

    def glum_se(**kwds):  # glum puts the intercept first
        se = np.sqrt(np.diag(model.covariance_matrix(X, y.astype(float), **kwds)))
        return np.r_[se[1:], se[0]]

    # glum's non-robust is inv(Fisher) · n/(n - k); robust is HC1; clusters as statsmodels
    _close(glum_se(robust=False, dispersion=1.0),
           jl.inference(params, X, y).std_err * np.sqrt(n / (n - k)))
    _close(glum_se(robust=True), jl.inference(params, X, y, cov_type="HC1").std_err)
    _close(glum_se(clusters=groups),
           jl.inference(params, X, y, cov_type="cluster", groups=groups).std_err)


def test_l1_fit_reports_the_active_set_with_a_warning(spector):
    X, y, _ = spector
    X = np.column_stack([X, np.random.default_rng(3).normal(size=(X.shape[0], 3))])
    clf = jl.LogisticRegression(C=0.3, penalty="l1", solver="proximal", dtype="float64",
                                tol=1e-10, max_iter=5000).fit(X, y)
    active = np.flatnonzero(clf.coef_[0])
    assert 0 < active.size < X.shape[1]
    with pytest.warns(UserWarning, match="conditional on the selected set"):
        inf = clf.inference(X, y)
    assert inf.names == (*(f"x{j}" for j in active), "intercept")
    _close(inf.coef, np.r_[clf.coef_[0, active], clf.intercept_])


def test_float32_data_is_computed_in_float64(spector, spector_logit):
    X, y, _ = spector
    _, ref = spector_logit
    inf32 = jl.inference(_binary_params(ref), X.astype(np.float32), y)
    assert inf32.cov.dtype == np.float64
    # the only float32 step is the rounding of X: errors of a few float32 eps, amplified by κ(H)
    _close(inf32.std_err, ref.bse, rtol=1e3 * np.finfo(np.float32).eps)


def test_summary_dict_and_frame(spector, spector_logit):
    X, y, _ = spector
    _, ref = spector_logit
    inf = jl.inference(_binary_params(ref), X, y, alpha=0.1, feature_names=["GPA", "TUCE", "PSI"])
    text = inf.summary()
    assert "cov_type=nonrobust" in text and "[0.05" in text and "0.95]" in text
    assert [line.split()[0] for line in text.splitlines()[4:8]] == [*inf.names]
    assert json.loads(json.dumps(inf.to_dict()))["names"] == ["GPA", "TUCE", "PSI", "intercept"]
    _close(inf.conf_int, ref.conf_int(alpha=0.1))
    pd = pytest.importorskip("pandas")
    frame = inf.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == list(inf.names)
    _close(frame["p_value"], ref.pvalues)


def test_to_frame_without_pandas_says_so(spector, spector_logit, monkeypatch):
    X, y, _ = spector
    inf = jl.inference(_binary_params(spector_logit[1]), X, y)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        inf.to_frame()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cov_type": "HC3"}, "cov_type must be one of"),
    ({"cov_type": "cluster"}, "needs groups"),
    ({"cov_type": "cluster", "groups": np.zeros(5)}, r"groups must have shape \(32,\)"),
    ({"cov_type": "cluster", "groups": np.zeros(32)}, "at least 2 different clusters"),
    ({"groups": np.arange(32)}, "only used with cov_type='cluster'"),
    ({"alpha": 0.0}, r"alpha must be a number in \(0, 1\)"),
    ({"alpha": 1.5}, r"alpha must be a number in \(0, 1\)"),
    ({"alpha": float("nan")}, r"alpha must be a number in \(0, 1\)"),
    ({"C": -1.0}, "C must be a number > 0"),
    ({"feature_names": ["a"]}, "feature_names must have 3 names"),
])
def test_bad_options_are_named(spector, spector_logit, kwargs, message):
    X, y, _ = spector
    with pytest.raises(ValueError, match=message):
        jl.inference(_binary_params(spector_logit[1]), X, y, **kwargs)


def test_collinear_features_raise_instead_of_nan(spector, spector_logit):
    X, y, _ = spector
    ref = spector_logit[1]
    Xd = np.column_stack([X, X[:, 0]])  # a duplicated column
    params = Params(np.r_[ref.params[:-1], 0.0], np.asarray(ref.params[-1]))
    with pytest.raises(ValueError, match=r"singular.*\['x0', 'x3'\].*collinear"):
        jl.inference(params, Xd, y)
    Xc = np.column_stack([X, np.ones(X.shape[0])])  # a constant column beside the intercept
    with pytest.raises(ValueError, match="singular.*'x3', 'intercept'"):
        jl.inference(params, Xc, y)
    with pytest.raises(ValueError, match="diagonal is 0 for \\['x3'\\]"):
        jl.inference(params, np.column_stack([X, np.zeros(X.shape[0])]), y)


def test_perfect_separation_raises():
    X = np.linspace(-1, 1, 20)[:, None]
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ValueError, match="perfect separation"):
        jl.inference(Params(np.array([1e3]), np.asarray(0.0)), X, y)
    with warnings.catch_warnings():  # with an L2 penalty the estimate is finite
        warnings.simplefilter("error")
        assert np.all(np.isfinite(
            jl.inference(Params(np.array([1e3]), np.asarray(0.0)), X, y, C=1.0).std_err))


@pytest.mark.slow
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("C", [np.inf, 2.0])
def test_softmax_sparse_equals_dense_for_every_cov_type(C, fit_intercept):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 3)) * (rng.random((120, 3)) < 0.7)
    y = rng.integers(0, 3, size=120)
    params = Params(rng.normal(size=(3, 3)), rng.normal(size=3) * fit_intercept)
    weights, groups = rng.random(120) + 0.5, rng.integers(0, 9, size=120)
    for cov_type in ("nonrobust", "HC0", "HC1", "cluster"):
        kwargs = {"sample_weight": weights, "cov_type": cov_type, "C": C,
                  "fit_intercept": fit_intercept,
                  "groups": groups if cov_type == "cluster" else None}
        dense = jl.inference(params, X, y, **kwargs)
        _close(jl.inference(params, sp.csr_array(X), y, **kwargs).cov, dense.cov, rtol=1e-9)
        assert dense.coef.size == 2 * (3 + fit_intercept)
        assert np.all(np.isfinite(dense.std_err)) and np.all(dense.std_err > 0)


def test_estimator_applies_class_weight_and_sample_weight(spector):
    X, y, _ = spector
    sample_weight = np.linspace(0.5, 2.0, X.shape[0])
    clf = jl.LogisticRegression(C=3.0, class_weight={0: 2.0, 1: 1.0}, dtype="float64",
                                tol=1e-10, max_iter=1000).fit(X, y, sample_weight=sample_weight)
    weights = sample_weight * np.where(y == 0, 2.0, 1.0)
    expected = jl.inference(Params(clf.coef_[0], clf.intercept_[0]), X, y, C=3.0,
                            sample_weight=weights, cov_type="HC0")
    _close(clf.inference(X, y, sample_weight=sample_weight, cov_type="HC0").cov, expected.cov,
           rtol=1e-9)


def test_logistic_regression_cv_uses_its_chosen_C(spector):
    X, y, _ = spector
    clf = jl.LogisticRegressionCV(Cs=[0.1, 10.0], cv=3, dtype="float64", tol=1e-8).fit(X, y)
    expected = jl.inference(Params(clf.coef_[0], clf.intercept_[0]), X, y, C=float(clf.C_[0]))
    _close(clf.inference(X, y).cov, expected.cov, rtol=1e-9)
