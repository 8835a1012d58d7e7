"""LogisticRegressionCV with penalty="l1" / "elasticnet": the same C_, l1_ratio_ and attribute
shapes as scikit-learn's (saga, same folds), weights, refit=False, bad parameters and
scikit-learn's common checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.linear_model
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

CS = [0.01, 0.03, 0.1, 0.3]  # the supports stay below all features (a clear choice at 0.1)


@pytest.mark.slow  # 2 x 65 checks
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [LogisticRegressionCV(Cs=[0.01, 1.0], cv=3, penalty="l1", tol=1e-10,
                          max_iter=100_000),
     LogisticRegressionCV(Cs=[0.01, 1.0], cv=3, penalty="elasticnet", l1_ratios=[0.3, 1.0],
                          tol=1e-10, max_iter=100_000)],
    expected_failed_checks=lambda est: {},
)
def test_sklearn_common_checks_with_l1_parts(estimator, check):
    check(estimator)


def _data(k, seed=0):
    X, y = make_classification(300, 40, n_informative=6, n_redundant=0, n_classes=k,
                               class_sep=0.8, random_state=seed)
    return (X - X.mean(0)) / X.std(0), y


def _pair(k, refit=True, **params):
    """Ours and scikit-learn's (saga) fitted on the same data, folds and scoring."""
    X, y = _data(k)
    cv = list(StratifiedKFold(4, shuffle=True, random_state=0).split(X, y))
    if params.get("l1_ratios") is not None:  # scikit-learn's refit=False needs an array
        params["l1_ratios"] = np.asarray(params["l1_ratios"])
    common = {"Cs": CS, "cv": cv, "scoring": "neg_log_loss", "refit": refit, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # penalty is deprecated in 1.8
        ref = sklearn.linear_model.LogisticRegressionCV(
            solver="saga", tol=1e-8, max_iter=100_000, use_legacy_attributes=True, **common)
        ref.fit(X, y)
    ours = LogisticRegressionCV(tol=1e-10, max_iter=10_000, **common).fit(X, y)
    return ours, ref


def _assert_same_layout(ours, ref):
    assert sorted(ours.scores_) == sorted(ref.scores_) == sorted(ours.coefs_paths_)
    for key in ref.scores_:
        assert ours.scores_[key].shape == ref.scores_[key].shape
        assert ours.coefs_paths_[key].shape == ref.coefs_paths_[key].shape
    assert ours.n_iter_.shape == ref.n_iter_.shape
    for name in ("C_", "l1_ratio_", "coef_", "intercept_", "Cs_", "l1_ratios_"):
        assert np.shape(getattr(ours, name)) == np.shape(getattr(ref, name)), name


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize(("penalty", "l1_ratios"), [("l1", None), ("elasticnet", [0.25, 0.75])])
def test_same_choice_and_shapes_as_sklearn(k, penalty, l1_ratios):
    ours, ref = _pair(k, penalty=penalty, l1_ratios=l1_ratios)
    _assert_same_layout(ours, ref)
    np.testing.assert_array_equal(ours.C_, ref.C_)
    np.testing.assert_array_equal(ours.l1_ratio_, ref.l1_ratio_)
    np.testing.assert_array_equal(ours.l1_ratios_, ref.l1_ratios_)
    key = ref.classes_[-1]
    # Where λ₁ >= λ_max, w = 0 and saga stops before its intercept converges (3 epochs, b off
    # by 4e-3 on a fold); ours is the intercept-only optimum: compared where w != 0
    active = np.any([np.any(p[..., :-1] != 0, axis=-1) for p in ours.coefs_paths_.values()], 0)
    assert not np.any(active[:, 0]) if penalty == "l1" else np.all(active[:, 1:])
    np.testing.assert_allclose(ours.scores_[key][active], ref.scores_[key][active], atol=1e-4)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    # the same zeros in the chosen model, exact in ours
    assert np.array_equal(ours.coef_ == 0, np.abs(ref.coef_) < 1e-6)
    assert 0 < np.count_nonzero(ours.coef_) < ours.coef_.size


def test_without_refit_the_folds_best_models_are_averaged_as_in_sklearn():
    ours, ref = _pair(2, refit=False, penalty="elasticnet", l1_ratios=[0.25, 0.75])
    _assert_same_layout(ours, ref)
    np.testing.assert_allclose(ours.C_, ref.C_, rtol=1e-12)
    np.testing.assert_allclose(ours.l1_ratio_, ref.l1_ratio_, rtol=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    assert not hasattr(ours, "loss_")


def test_class_weights_give_sklearns_choice():
    ours, ref = _pair(2, penalty="l1", class_weight={0: 3.0, 1: 1.0})
    _assert_same_layout(ours, ref)
    np.testing.assert_array_equal(ours.C_, ref.C_)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    assert np.array_equal(ours.coef_ == 0, np.abs(ref.coef_) < 1e-6)


def test_integer_sample_weights_equal_repeated_rows():
    """Weights 0..3 against the rows repeated that often, with folds holding the same rows."""
    X, y = _data(2, seed=1)
    sw = np.random.default_rng(0).integers(0, 4, size=len(y))
    sw[:8] = 1  # every class keeps weight in every fold
    group = np.arange(len(y)) % 3
    X_rep, y_rep, group_rep = X.repeat(sw, axis=0), y.repeat(sw), group.repeat(sw)
    split = lambda g: [(np.flatnonzero(g != f), np.flatnonzero(g == f)) for f in range(3)]
    kw = {"Cs": CS, "penalty": "l1", "tol": 1e-12, "max_iter": 1000, "scoring": "neg_log_loss"}
    weighted = LogisticRegressionCV(cv=split(group), **kw).fit(X, y, sample_weight=sw)
    repeated = LogisticRegressionCV(cv=split(group_rep), **kw).fit(X_rep, y_rep)
    np.testing.assert_allclose(weighted.scores_[1], repeated.scores_[1], rtol=1e-8)
    np.testing.assert_array_equal(weighted.C_, repeated.C_)
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-8)
    np.testing.assert_array_equal(weighted.coef_ == 0, repeated.coef_ == 0)


def test_l2_keeps_its_layout_and_gains_sklearns_l1_ratio_attributes():
    X, y = _data(2)
    est = LogisticRegressionCV(Cs=[0.1, 1.0], cv=3).fit(X, y)
    assert est.coefs_paths_[1].shape == (3, 2, 41) and est.scores_[1].shape == (3, 2)
    assert est.l1_ratios_.tolist() == [None] and est.l1_ratio_.tolist() == [None]


def test_verbose_reports_each_fold_and_l1_ratio(capsys):
    X, y = _data(2)
    LogisticRegressionCV(Cs=CS, cv=3, penalty="elasticnet", l1_ratios=[0.5, 1.0],
                         verbose=1).fit(X, y)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6 and lines[0].startswith("L1 path: fold 1/3, l1_ratio=0.5: 4 Cs")


@pytest.mark.parametrize("k", [2, 3])
def test_folds_in_threads_give_the_same_models(k):
    """n_jobs fits folds in threads: every model, score and choice is the sequential one's."""
    X, y = _data(k)
    X = sp.csr_array(np.where(np.abs(X) > 0.5, X, 0.0))
    params = {"Cs": CS, "cv": 4, "penalty": "elasticnet", "l1_ratios": [0.5, 1.0], "tol": 1e-8}
    one = LogisticRegressionCV(**params).fit(X, y)
    threads = LogisticRegressionCV(**params, n_jobs=-1).fit(X, y)
    key = one.classes_[-1]
    np.testing.assert_array_equal(threads.coefs_paths_[key], one.coefs_paths_[key])
    np.testing.assert_array_equal(threads.scores_[key], one.scores_[key])
    assert threads.C_.tolist() == one.C_.tolist()
    assert threads.l1_ratio_.tolist() == one.l1_ratio_.tolist()


@pytest.mark.parametrize("penalty", ["l2", "l1"])
@pytest.mark.parametrize("n_jobs", [0, 1.5, True, "2"])
def test_bad_n_jobs_is_refused_by_name(penalty, n_jobs, assert_rejected_before_compiling):
    X, y = _data(2)
    assert_rejected_before_compiling(
        LogisticRegressionCV(Cs=[1.0], cv=3, penalty=penalty, n_jobs=n_jobs), X, y,
        "n_jobs must be None or a non-zero integer")


@pytest.mark.parametrize(("params", "message"), [
    ({"penalty": "elasticnet"}, "l1_ratios must be a non-empty list"),
    ({"penalty": "elasticnet", "l1_ratios": []}, "l1_ratios must be a non-empty list"),
    ({"penalty": "elasticnet", "l1_ratios": [-0.1]}, r"l1_ratios must .*\[0, 1\]"),
    ({"penalty": "elasticnet", "l1_ratios": [0.5, 2]}, r"l1_ratios must .*\[0, 1\]"),
    ({"penalty": "l2", "l1_ratios": [0.5]}, "l1_ratios is only used with penalty='elasticnet'"),
    ({"penalty": "l1", "l1_ratios": [1.0]}, "l1_ratios is only used with penalty='elasticnet'"),
    ({"penalty": "lasso"}, "penalty"),
    ({"penalty": "l1", "search": "gradient"}, "search must be 'grid'"),
])
def test_bad_penalty_parameters_name_the_parameter(params, message, assert_rejected_before_compiling):
    X, y = _data(2)
    assert_rejected_before_compiling(LogisticRegressionCV(Cs=[1.0], cv=3, **params), X, y,
                                     message)


def test_n_jobs_counts_threads_as_scikit_learn_does(monkeypatch):
    from jaxlogreg.training import path_l1

    monkeypatch.setattr(path_l1, "usable_cores", lambda: 4)
    assert [path_l1.check_n_jobs(n) for n in (None, 1, 3, -1, -2, -4, -9)] == [1, 1, 3, 4, 3, 1, 1]
