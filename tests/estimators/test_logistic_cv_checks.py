"""LogisticRegressionCV never fails late, never crashes with a raw exception and never picks a
wrong C in silence: zero-weight test folds, NaN scores, scorings that cannot score the folds,
paths too large for memory; from_params refuses parameters that are not finite."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold

from jaxlogreg.core.model import Params
from jaxlogreg.estimators import cv_folds
from jaxlogreg.estimators.logistic import from_params, to_params
from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV
from jaxlogreg.training.path import path_memory_bytes


def _data(m=200, n=5, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = np.argmax(X @ rng.normal(size=(n, k)) + rng.gumbel(size=(m, k)), axis=1)
    return X, y


# --- 1. a test fold whose rows all weigh 0 ------------------------------------------------------


def test_a_test_fold_of_zero_weight_is_refused_before_fitting(assert_rejected_before_compiling):
    """The user's case: the held-out rows all weigh 0, so the weighted score is 0/0 (it was a
    ZeroDivisionError from np.average after every model was fitted)."""
    X, y = _data()
    clf = LogisticRegressionCV(cv=[(np.arange(100), np.arange(100, 200))])
    sw = np.r_[np.ones(100), np.zeros(100)]
    match = r"cv fold 0's test rows all have sample_weight 0, .* choose folds \(cv\)"
    assert_rejected_before_compiling(clf, X, y, match, sw)
    # the second of three folds (scored with a scorer that is not batched)
    folds = list(StratifiedKFold(3).split(X, y))
    sw = np.ones(200)
    sw[folds[1][1]] = 0.0
    clf = LogisticRegressionCV(cv=folds, scoring="roc_auc")
    assert_rejected_before_compiling(clf, X, y, r"cv fold 1's test rows all have sample_weight 0",
                                     sw)


# --- 2. NaN scores -------------------------------------------------------------------------------


class _TableScorer:
    """Returns ``table[f][c]`` for its calls in the fit's order (fold by fold, C by C)."""

    def __init__(self, table):
        self.scores = list(np.ravel(table))
        self.__name__ = "table_scorer"

    def __call__(self, estimator, X, y):
        return self.scores.pop(0)


CS = [0.01, 1.0, 100.0]
NAN_TABLE = [[0.1, 0.9, 0.5], [0.1, np.nan, 0.5], [0.1, 0.9, 0.5]]  # sums 0.3, NaN, 1.5


def test_a_nan_score_is_never_chosen_and_is_reported(capsys):
    """scikit-learn's argmax chooses C = 1 (the first NaN sum); a NaN counts as the worst."""
    X, y = _data()
    clf = LogisticRegressionCV(Cs=CS, cv=3, scoring=_TableScorer(NAN_TABLE), verbose=1)
    with pytest.warns(UserWarning, match=r"scoring=table_scorer gave NaN scores for C=1 on cv "
                                         r"fold\(s\) \[1\]; a NaN score counts as the worst"):
        clf.fit(X, y)
    assert clf.C_.tolist() == [100.0]
    np.testing.assert_array_equal(clf.scores_[1], NAN_TABLE)  # the scores as the scorer gave them
    assert "C_=100, mean score 0.5," in capsys.readouterr().err  # the best mean that is a number


def test_a_nan_score_is_never_a_folds_best_without_refit():
    X, y = _data()
    table = [[0.1, 0.9, 0.5], [0.1, np.nan, 0.5], [np.nan, -np.inf, -np.inf]]
    clf = LogisticRegressionCV(Cs=CS, cv=3, refit=False, scoring=_TableScorer(table))
    with pytest.warns(UserWarning, match=r"C=0.01 on cv fold\(s\) \[2\]; C=1 on cv fold\(s\) "
                                         r"\[1\]"):
        clf.fit(X, y)
    # each fold's best: C=1, C=100, and C=1 (the first of the non-NaN -inf scores)
    np.testing.assert_allclose(clf.C_, np.mean([1.0, 100.0, 1.0]))


@pytest.mark.parametrize("refit, match", [
    (True, r"gave a NaN score for every C \(Cs=\[0.01, 1.0, 100.0\]\) on some cv fold"),
    (False, r"gave a NaN score for every C \(Cs=\[0.01, 1.0, 100.0\]\) on cv fold\(s\) \[1\]"),
])
def test_nan_for_every_C_is_an_error(refit, match):
    X, y = _data()
    table = [[0.1, np.nan, 0.5], [np.nan, np.nan, np.nan], [0.1, 0.2, np.nan]]
    clf = LogisticRegressionCV(Cs=CS, cv=3, refit=refit, scoring=_TableScorer(table))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the error alone, no warning before it
        with pytest.raises(ValueError, match=r"scoring=table_scorer " + match):
            clf.fit(X, y)


# --- 3. a scoring that cannot score the folds fails before the fit -----------------------------


def test_roc_auc_with_three_classes_fails_before_fitting(assert_rejected_before_compiling):
    X, y = _data(k=3)
    clf = LogisticRegressionCV(Cs=3, cv=3, scoring="roc_auc")
    match = (r"scoring='roc_auc' failed on cv fold 0's test rows \(tried before fitting, on the "
             r"model with zero coefficients\): ValueError: .*multi_class")
    assert_rejected_before_compiling(clf, X, y, match)


def test_a_scorer_object_is_tried_before_fitting(assert_rejected_before_compiling):
    X, y = _data(k=3)
    clf = LogisticRegressionCV(Cs=3, cv=3, scoring=get_scorer("f1"))
    match = (r"scoring=make_scorer\(f1_score.* failed on cv fold 0's test rows \(tried before "
             r"fitting, on the model with zero coefficients\): ValueError: Target is multiclass")
    assert_rejected_before_compiling(clf, X, y, match)


def test_a_callable_failing_or_not_returning_a_number_is_named():
    """A plain callable is called only on the fitted models (as in scikit-learn); its failure
    is a ValueError naming scoring, the fold and the C, chained to the scorer's own error."""
    X, y = _data()

    def boom(estimator, X, y):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match=r"scoring=boom failed on the model of cv fold 0 at "
                                         r"C=0.01: RuntimeError: boom") as info:
        LogisticRegressionCV(Cs=CS, cv=3, scoring=boom).fit(X, y)
    assert isinstance(info.value.__cause__, RuntimeError)

    def words(estimator, X, y):
        return "good"

    with pytest.raises(ValueError, match=r"scoring=words must return one real number, got "
                                         r"array of shape \(\) and dtype <U4"):
        LogisticRegressionCV(Cs=CS, cv=3, scoring=words).fit(X, y)


# --- 4. a path too large for the memory --------------------------------------------------------


def test_too_many_Cs_for_the_memory_is_refused_before_fitting(
    monkeypatch, assert_rejected_before_compiling
):
    """The user's Cs=10**6 (a raw MemoryError of 8.9 GiB before): refused with the estimate,
    on a machine of 64 GiB (the limit is fixed here so the test holds on any machine)."""
    monkeypatch.setattr(cv_folds, "machine_memory_bytes", lambda: 64 * 2**30)
    X, y = _data()
    match = (r"Cs=1000000 values x cv=5 folds \+ the refit = 6,000,000 models of 5 features and "
             r"2 classes on 200 rows need about 146.3 GiB, more than the 64.0 GiB of memory of "
             r"this machine; use fewer Cs or fewer folds \(cv\)")
    assert_rejected_before_compiling(LogisticRegressionCV(Cs=10**6), X, y, match)


def test_a_grid_too_large_to_make_is_refused(assert_rejected_before_compiling):
    """Cs=10**10 would be a MemoryError in np.logspace (80 GB) before the memory check."""
    X, y = _data()
    match = r"Cs must be an integer >= 1 and <= 10000000 .* got 10000000000"
    assert_rejected_before_compiling(LogisticRegressionCV(Cs=10**10), X, y, match)


def test_path_memory_estimate_follows_the_path_state():
    """(2 memory + 5) p values a model (memory = 10, p = 32 + 1 for 5 features padded to 32),
    (8 + 8) bytes a row on the host, (1 + 3) values a padded row (512) on the device."""
    per_model = 25 * 33 * 8 + 16 * 200 + 4 * 512 * 8
    assert path_memory_bytes(6, 200, 5, 2, "float64") == 6 * per_model
    k3 = 25 * (32 * 3 + 3) * 4 + 12 * 200 + 10 * 512 * 4  # 3 classes, float32
    assert path_memory_bytes(6, 200, 5, 3, "float32") == 6 * k3
    limit = cv_folds.machine_memory_bytes()
    assert limit is None or limit >= 2**28


# --- 5. from_params refuses parameters that are not finite -------------------------------------


@pytest.mark.parametrize("w, b, classes, match", [
    ([np.nan] * 5, 0.0, [0, 1], r"params.w must be finite, got 5 NaN or inf value\(s\)"),
    (np.ones(5), np.inf, [0, 1], r"params.b must be finite, got 1 NaN or inf"),
    (np.ones((5, 3)), [0.0, -np.inf, 1.0], "abc", r"params.b must be finite"),
    (np.ones((5, 1)), [0.0], [0], r"params.w must have shape .* >= 2, got .* shape \(5, 1\)"),
    (np.ones((2, 5, 3)), np.zeros(3), [0, 1, 2], r"params.w must have shape"),
    (np.ones(0), 0.0, [0, 1], r"params.w must have shape .* n_features >= 1"),
    (np.ones(5), [0.0, 1.0], [0, 1], r"params.b must have shape \(\) or \(1,\) to match"),
    (np.ones((5, 3)), 0.0, [0, 1, 2], r"params.b must have shape \(3,\) to match"),
    (["a"] * 5, 0.0, [0, 1], r"params.w must hold real numbers"),
])
def test_from_params_refuses_bad_params(w, b, classes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        from_params(Params(w=w, b=b), list(classes))


def test_from_params_user_case_and_round_trip():
    X, _ = _data(m=3)
    with pytest.raises(ValueError, match=r"params.w must be finite"):
        from_params(Params(w=[np.nan] * 5, b=0), [0, 1]).predict(X)
    clf = from_params(Params(w=np.arange(5.0), b=np.array([0.5])), ["no", "yes"])
    assert clf.intercept_.tolist() == [0.5]
    back = to_params(clf)
    np.testing.assert_array_equal(back.w, np.arange(5.0))
    clf.coef_[0, 2] = np.nan
    with pytest.raises(ValueError, match=r"coef_ must be finite"):
        to_params(clf)


# --- 6. CV scores weigh the test rows by sample_weight only, not by class_weight -------------


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss", "precision", "neg_brier_score"])
def test_cv_scores_use_sample_weight_only_not_class_weight(scoring, weighted):
    """Each score equals scikit-learn's scorer called on that fold's model with the test rows'
    sample_weight (none when none is given), as scikit-learn's _log_reg_scoring_path;
    class_weight only trains. (These scorings change with weights constant per class; roc_auc
    and balanced_accuracy would not, and could not tell.)"""
    X, y = _data(m=150, seed=4)
    sw = np.random.default_rng(5).uniform(0.2, 3.0, size=150) if weighted else None
    class_weight = {0: 1.0, 1: 6.0}
    folds = list(StratifiedKFold(3).split(X, y))
    clf = LogisticRegressionCV(Cs=[0.05, 1.0, 20.0], cv=folds, scoring=scoring,
                               class_weight=class_weight, tol=1e-8)
    clf.fit(X, y, sample_weight=sw)
    scorer = get_scorer(scoring)
    row_weight = (1.0 if sw is None else sw) * np.where(y == 1, 6.0, 1.0)
    differs = False
    for f, (_, test) in enumerate(folds):
        kwargs = {} if sw is None else {"sample_weight": sw[test]}
        for c in range(3):
            path = clf.coefs_paths_[1][f, c]
            model = from_params(Params(path[:-1], path[-1]), clf.classes_)
            expected = scorer(model, X[test], y[test], **kwargs)
            np.testing.assert_allclose(clf.scores_[1][f, c], expected, rtol=1e-10, atol=1e-12)
            with_class_weight = scorer(model, X[test], y[test], sample_weight=row_weight[test])
            differs |= not np.isclose(with_class_weight, expected, rtol=1e-6)
    assert differs  # the class weights would change the scores: the test can tell


@pytest.mark.slow
def test_sparse_X_and_a_zero_model_scorer_check_agree_with_dense():
    """The scorer is tried on sparse test rows too; sparse and dense X give the same fit."""
    X, y = _data(m=120, seed=6)
    X[np.abs(X) < 0.6] = 0.0
    kw = {"Cs": [0.1, 1.0, 10.0], "cv": 3, "scoring": "roc_auc", "tol": 1e-8}
    dense = LogisticRegressionCV(**kw).fit(X, y)
    sparse = LogisticRegressionCV(**kw).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.scores_[1], dense.scores_[1], rtol=1e-10)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-6, atol=1e-8)


def test_the_scorer_check_shows_no_warning_of_the_zero_model():
    """precision on the model of zero coefficients (it predicts no positive) warns
    UndefinedMetricWarning in scikit-learn; the check before fitting keeps that to itself."""
    X, y = _data(seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegressionCV(Cs=[0.1, 1.0], cv=3, scoring="precision", tol=1e-6)
        clf.fit(X, y)
    assert np.all((clf.scores_[1] > 0.5) & (clf.scores_[1] <= 1.0))
