"""``jaxlogreg.tune_penalty``: C (per problem, feature or group) chosen by gradient steps on the
cross-validated log-loss, each step one implicitly differentiated solve per fold."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from jaxlogreg.core.loss import forward_t, per_example_loss_t
from jaxlogreg.stats.hypergradient import _fold_masks, tune_penalty
from jaxlogreg.stats.solve import solve


def _problem(m: int = 120, n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = (X[:, 0] - 0.5 * X[:, 1] + rng.normal(size=m) > 0).astype(np.int64)
    return X, y


def _grid_cv_loss(X, y, Cs, cv=5):
    """The same cross-validated log-loss as tune_penalty at every C of a grid: 50 solves per
    fold, all in one vmap."""
    train, test = (jnp.asarray(a) for a in _fold_masks(cv, X, y))
    X, y = jnp.asarray(X), jnp.asarray(y)

    def at(C):
        models = jax.vmap(lambda mask: solve(X, y, C=C, sample_weight=mask))(train)
        losses = jax.vmap(lambda p: per_example_loss_t(forward_t(p, X.T), y))(models)
        return jnp.sum(test * losses) / jnp.sum(test)

    return np.asarray(jax.jit(jax.vmap(at))(jnp.asarray(Cs)))


@pytest.mark.slow
def test_the_search_lowers_the_loss_and_reports_it_consistently():
    X, y = _problem()
    with jax.enable_x64(True):
        found = tune_penalty(X, y, cv=4, init_C=100.0, steps=6)
        again = _grid_cv_loss(X, y, np.array([found.C]), cv=4)[0]
    assert found.n_solves == len(found.trace_C) == found.trace_loss.shape[0] <= 6
    assert found.log_loss == pytest.approx(again, rel=1e-10)
    assert found.log_loss == np.min(found.trace_loss) < found.trace_loss[0]
    assert found.params.w.shape == (4, 6) and found.trace_params.w.shape == (found.n_solves, 4, 6)


@pytest.mark.slow
def test_per_feature_and_group_penalties_have_one_C_per_feature():
    X, y = _problem()
    with jax.enable_x64(True):
        per_feature = tune_penalty(X, y, cv=3, per_feature=True, steps=4)
        grouped = tune_penalty(X, y, cv=3, groups=[0, 0, 1, 1, 2, 2], steps=4)
    assert per_feature.C.shape == (6,) and per_feature.log_loss < per_feature.trace_loss[0]
    assert grouped.C.shape == (6,) and grouped.log_loss < grouped.trace_loss[0]
    np.testing.assert_array_equal(grouped.C[::2], grouped.C[1::2])


@pytest.mark.parametrize("kwargs, message", [
    ({"init_C": 0.0}, "init_C must be a finite real number > 0"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"groups": [0, 1]}, r"groups must be \(n_features,\) = \(6,\) integer group ids"),
    ({"groups": [0] * 6, "per_feature": True}, "per_feature=True and groups are exclusive"),
    ({"cv": 1}, "cv must be an int >= 2, a splitter or"),
])
def test_bad_settings_are_refused_by_name(kwargs, message):
    X, y = _problem()
    with pytest.raises(ValueError, match=message):
        tune_penalty(X, y, **kwargs)


def test_labels_must_be_class_indices():
    X, y = _problem()
    with pytest.raises(ValueError, match="y must hold integer class labels 0..K-1"):
        tune_penalty(X, y - 1)


@pytest.mark.slow
def test_fewer_than_a_fifth_of_the_fits_of_a_50_point_grid_and_a_lower_loss():
    """The issue's target, on the breast cancer data (569 x 30, standardized)."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with jax.enable_x64(True):
        found = tune_penalty(X, y, cv=5)
        grid = _grid_cv_loss(X, y, np.logspace(-4, 4, 50))
    assert found.n_solves < 10
    assert found.log_loss <= grid.min()
