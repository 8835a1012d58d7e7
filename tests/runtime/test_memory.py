"""Aligned host arrays: the package's own X (loaders, synthetic data, splits) start on a
64-byte boundary, so fits on the C kernel use them in place (no copy of X)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlogreg.data import make_classification, train_test_split
from jaxlogreg.data.loaders import load_npy
from jaxlogreg.runtime import memory
from jaxlogreg.training import host_layout


@pytest.mark.parametrize("shape", [1, 7, (3, 5), (1001, 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_aligned_empty_is_aligned_c_ordered_and_of_the_shape(shape, dtype):
    X = memory.aligned_empty(shape, dtype)
    assert memory.is_aligned(X) and X.flags.c_contiguous and X.dtype == dtype
    assert X.shape == ((shape,) if isinstance(shape, int) else shape)


def test_aligned_copy_casts_as_astype():
    X = np.array([[1.5, -2.0], [1e300, 3.0]])
    with np.errstate(over="ignore"):
        out = memory.aligned_copy(X, np.float32)
        expected = X.astype(np.float32)
    assert memory.is_aligned(out) and not np.shares_memory(out, X)
    np.testing.assert_array_equal(out, expected)


def _kept_as_is(X: np.ndarray) -> bool:
    out, finite = host_layout.row_major(X, X.dtype)
    return finite and out is X


def test_synthetic_data_and_its_splits_are_used_in_place():
    data = make_classification(n_samples=301, n_features=7, seed=3)
    assert _kept_as_is(data.X)
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, test_size=0.3, seed=1)
    assert _kept_as_is(X_train) and _kept_as_is(X_test)
    # the same split as splitting the rows directly
    order = np.concatenate([X_train, X_test])
    assert sorted(map(tuple, order)) == sorted(map(tuple, data.X))
    assert y_train.shape == (X_train.shape[0],) and y_test.shape == (X_test.shape[0],)


def test_loaded_x_is_used_in_place(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.normal(size=(50, 4)))
    np.save(tmp_path / "y.npy", rng.integers(0, 2, 50))
    data = load_npy(tmp_path / "X.npy", tmp_path / "y.npy")
    assert _kept_as_is(data.X)
