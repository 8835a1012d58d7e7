"""Conformance: the course's printed costs and accuracies, and scikit-learn's optimum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import jaxlogreg as jl
from jaxlogreg.core.loss import objective_t
from jaxlogreg.core.model import Params, predict

# The course data's EXPECTED.md: cost J before the update at iterations 0, 100, ..., 1900
COURSE_COSTS = [
    0.693147, 0.584508, 0.466949, 0.376007, 0.331463, 0.303273, 0.279880, 0.260042, 0.242941,
    0.228004, 0.214820, 0.203078, 0.192544, 0.183033, 0.174399, 0.166521, 0.159305, 0.152667,
    0.146542, 0.140872,
]  # fmt: skip
COURSE_TRAIN_ACCURACY = 99.04306220095694
COURSE_TEST_ACCURACY = 70.0


def _accuracy_percent(params: Params, X: np.ndarray, y: np.ndarray) -> float:
    return 100.0 * float(np.mean(np.asarray(predict(params, X)) == y))


@pytest.mark.parametrize("dtype, atol", [("float64", 5e-7 + 1e-12),
                                         pytest.param("float32", 2e-6, marks=pytest.mark.slow)])
def test_course_costs_and_accuracies_on_catvnoncat(catvnoncat, dtype, atol):
    """Zero init, 2000 full-batch GD iterations at α = 0.005, as in the course's assignment."""
    X, y = catvnoncat.X_train.astype(dtype), catvnoncat.y_train
    result = jl.fit(X, y, solver="gd", learning_rate=0.005, max_iter=2000, tol=0.0, C=np.inf)
    assert result.params.w.dtype == dtype  # the dtype follows X
    assert result.n_iter == 2000
    np.testing.assert_allclose(result.loss_history[::100], COURSE_COSTS, rtol=0, atol=atol)
    with jax.enable_x64(dtype == "float64"):
        train_acc = _accuracy_percent(result.params, X, y)
        test_acc = _accuracy_percent(result.params, catvnoncat.X_test.astype(dtype), catvnoncat.y_test)
    assert train_acc == pytest.approx(COURSE_TRAIN_ACCURACY, abs=1e-9)
    assert test_acc == pytest.approx(COURSE_TEST_ACCURACY, abs=1e-9)


def _synthetic(m=600, n=12, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)) * rng.uniform(0.5, 2.0, size=n)
    if n_classes == 2:
        y = (rng.random(m) < 1 / (1 + np.exp(-(X @ rng.normal(size=n) + 0.3)))).astype(np.int64)
    else:
        Z = X @ rng.normal(size=(n, n_classes))
        y = np.argmax(Z + rng.gumbel(size=Z.shape), axis=1)
    return X, y


def _breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _objective64(coef: np.ndarray, intercept: np.ndarray, X, y, l2: float) -> float:
    with jax.enable_x64(True):
        params = Params(jnp.asarray(coef, jnp.float64), jnp.asarray(intercept, jnp.float64))
        Xt = jnp.asarray(X, jnp.float64).T
        return float(objective_t(params, Xt, jnp.asarray(y), None, l2))


@pytest.mark.parametrize(
    "dataset, n_classes, l2",
    [
        ("synthetic", 2, 1e-2),
        ("breast_cancer", 2, 1e-3),
        pytest.param("synthetic", 4, 1e-2, marks=pytest.mark.slow),
    ],
)
def test_loss_at_convergence_matches_scikit_learn_lbfgs(dataset, n_classes, l2):
    X, y = _breast_cancer() if dataset == "breast_cancer" else _synthetic(n_classes=n_classes)
    m = X.shape[0]
    sk = SkLogisticRegression(C=1.0 / (l2 * m), solver="lbfgs", tol=1e-12, max_iter=10_000)
    sk.fit(X, y)
    if n_classes == 2:
        sk_coef, sk_intercept = sk.coef_[0], sk.intercept_[0]
    else:
        sk_coef, sk_intercept = sk.coef_.T, sk.intercept_
    sk_loss = _objective64(sk_coef, sk_intercept, X, y, l2)

    result = jl.fit(
        X, y, solver="lbfgs", C=1.0 / (l2 * m), tol=1e-9, max_iter=500, n_classes=n_classes
    )
    assert result.status == "converged"
    assert abs(result.loss - sk_loss) / sk_loss <= 1e-6
    # Binary parameters agree too; softmax ones only up to a shift of all classes' b.
    if n_classes == 2:
        np.testing.assert_allclose(result.params.w, sk_coef, rtol=1e-4, atol=1e-5)


def test_loss_matches_scikit_learn_with_sample_weights():
    X, y = _synthetic(seed=3)
    sample_weight = np.random.default_rng(3).uniform(0.2, 3.0, size=len(y))
    l2 = 1e-2
    sk = SkLogisticRegression(C=1.0 / (l2 * sample_weight.sum()), tol=1e-12, max_iter=10_000)
    sk.fit(X, y, sample_weight=sample_weight)
    result = jl.fit(
        X, y, solver="lbfgs", C=1.0 / (l2 * sample_weight.sum()), tol=1e-9, max_iter=500,
        sample_weight=sample_weight,
    )
    np.testing.assert_allclose(result.params.w, sk.coef_[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.params.b, sk.intercept_[0], rtol=1e-4, atol=1e-5)


def test_balanced_class_weight_with_sample_weight_matches_scikit_learn():  # defect A
    # "balanced" uses the weighted class counts Σ s / (K Σ_{y=k} s), as scikit-learn does.
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    sample_weight = np.where(y == 0, 3.0, 1.0)
    ours = jl.LogisticRegression(class_weight="balanced", tol=1e-10, max_iter=1000)
    ours.fit(X, y, sample_weight=sample_weight)
    sk = SkLogisticRegression(class_weight="balanced", tol=1e-12, max_iter=10_000)
    sk.fit(X, y, sample_weight=sample_weight)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-5)
