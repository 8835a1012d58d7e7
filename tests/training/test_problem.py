"""training.problem: a fit's data checked once; weights kept relative to the largest; the
penalty strength bounded by the dtype; starting parameters checked."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg as jl
from jaxlogreg.training.problem import check_labels, relative_weights, validate


def _data(m=200, n=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    return X, (X[:, 0] + rng.normal(size=m) > 0).astype(int)


def test_weights_are_kept_relative_to_the_largest_with_their_true_sum():
    y = np.array([0, 1, 1, 0])
    weights, total = relative_weights(y, np.array([1e300, 2e300, 4e300, 1e300]), None, 2)
    np.testing.assert_allclose(weights, [0.25, 0.5, 1.0, 0.25])
    assert total == pytest.approx(8e300)
    assert relative_weights(y, None, None, 2) == (None, 4.0)
    weights, total = relative_weights(y, None, {0: 1.0, 1: 3.0}, 2)
    np.testing.assert_allclose(weights, [1 / 3, 1.0, 1.0, 1 / 3])
    assert total == pytest.approx(8.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weights", [
    {"sample_weight": np.full(200, 1e300)},  # overflowed float32 and "diverged" at w = 0
    {"sample_weight": np.full(200, 1e-30)},
    {"class_weight": {0: 1e300, 1: 1e300}},
], ids=["1e300", "1e-30", "class 1e300"])
def test_extreme_weights_that_scale_every_row_alike_give_the_unweighted_fit(dtype, weights):
    X, y = _data()
    C = 1.0 / (1e-4 * 200)  # the same λ as the reference below ...
    scale = (weights.get("sample_weight", np.ones(200))[0]
             * weights.get("class_weight", {0: 1.0})[0])
    result = jl.fit(X, y, C=C / scale, dtype=dtype, tol=1e-6, **weights)  # ... with weights
    reference = jl.fit(X, y, C=C, dtype=dtype, tol=1e-6)
    assert result.status == reference.status == "converged"
    np.testing.assert_allclose(result.params.w, reference.params.w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("dtype", "settings", "match"), [
    ("float32", {"C": 1e-300}, (r"C=1e-300 with sample weights summing to 200 gives a penalty "
                                r"strength .* = 5e\+297, above 1/eps = 8.39e\+06 of float32: .* "
                                r"or dtype='float64'")),
    ("float64", {"C": 1e-300}, (r"C=1e-300 .* = 5e\+297, above 1/eps = 4.5e\+15 of float64: "
                                r".*use a larger C or larger sample weights$")),
    ("float32", {"C": 1e-12}, r"C=1e-12 .* = 5e\+09, above 1/eps .* of float32"),
    ("float64", {"sample_weight": np.full(200, 5e-324)},
     r"C=1 with sample weights summing to 9.88e-322 .* = inf, above 1/eps"),
    ("float64", {"sample_weight": np.full(200, 1e-300)}, r"summing to 2e-298 .* = 5e\+297"),
])
def test_a_penalty_too_strong_for_the_dtype_is_an_error_naming_c_and_the_weights(
        dtype, settings, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        jl.fit(X, y, dtype=dtype, **settings)


def test_the_path_bounds_every_model_s_penalty_and_names_its_c():
    X, y = _data()
    with pytest.raises(ValueError, match=r"C=1e-12 .* above 1/eps .* of float32"):
        jl.fit_path(X.astype(np.float32), y, [1.0, 1e-12])


@pytest.mark.parametrize("start", [
    jl.Params(np.full(5, np.nan), 0.0), jl.Params(np.zeros(5), np.inf)])
def test_a_non_finite_start_is_refused(start):
    X, y = _data()
    with pytest.raises(ValueError, match="init_params must be finite, got NaN or inf"):
        jl.fit(X, y, init_params=start)


def test_labels_are_checked_once_and_a_sparse_y_is_named():
    y, k = check_labels([0, 1, 1], 3, None)
    assert k == 2 and y.tolist() == [0, 1, 1]
    assert check_labels(np.array([0, 2, 1]), 3, None)[1] == 3
    with pytest.raises(TypeError, match=r"y must be a 1-D array of labels, got a sparse matrix"):
        check_labels(sp.csr_array(np.ones((3, 1))), 3, None)
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        validate(np.ones((4, 2)), [0, 1, 1])
