"""Aligned host arrays: the package's own X (loaders, synthetic data, splits) start on a
64-byte boundary, so fits on the C kernel use them in place (no copy of X)."""

from __future__ import annotations

import gc
import mmap

import jax
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


def _pages(n: int) -> np.ndarray:
    """``n`` fresh pages of bytes, starting on a page boundary (an anonymous mapping)."""
    return np.frombuffer(mmap.mmap(-1, n * memory.PAGE), np.uint8)


@pytest.mark.parametrize("offset", [0, 16, 48])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float64])
def test_view_with_lead_starts_on_the_boundary_before_the_array(offset, dtype):
    raw = memory.aligned_empty(4096, np.uint8)
    a = raw[offset:offset + 800].view(dtype)
    a[:] = np.arange(a.shape[0])
    lead = memory.lead_to_alignment(a)
    assert lead == offset // np.dtype(dtype).itemsize
    view = memory.view_with_lead(a, lead)
    assert memory.is_aligned(view) and (view is a if lead == 0 else not view.flags.writeable)
    assert view.shape == (a.shape[0] + lead,) and view[lead:].ctypes.data == a.ctypes.data
    np.testing.assert_array_equal(view[lead:], a)


def test_view_with_lead_keeps_within_the_array_first_page():
    pages = _pages(3)
    a = pages[memory.PAGE + 16:memory.PAGE + 816].view(np.float64)
    assert memory.view_with_lead(a, 2).ctypes.data % memory.PAGE == 0  # the page's first byte
    assert memory.view_with_lead(a, 10) is None  # aligned, but in the page before a's
    assert memory.view_with_lead(a, 1) is None  # not on a boundary


def test_view_with_lead_refuses_what_it_cannot_extend():
    raw = memory.aligned_empty(4096, np.uint8)
    assert memory.view_with_lead(raw[16:816].view(np.float32)[::2], 4) is None
    assert memory.view_with_lead(raw[16:816].view(np.float32).reshape(20, 10), 4) is None
    assert memory.view_with_lead(raw[16:16].view(np.float32), 4) is None
    assert memory.lead_to_alignment(raw[2:10].view(np.uint16)) == 1
    assert memory.lead_to_alignment(raw[2:10].view(np.int32)) is None


def test_the_view_keeps_the_array_alive_and_the_device_shares_it():
    a = memory.aligned_empty(1 << 20, np.uint8)[16:].view(np.float32)
    a[:] = 3.0
    view = memory.view_with_lead(a, 4)
    del a
    gc.collect()
    assert float(view[4:].sum()) == 3.0 * ((1 << 20) - 16) // 4
    if jax.default_backend() == "cpu":
        assert jax.device_put(view).unsafe_buffer_pointer() == view.ctypes.data


def test_aligned_copy_after_a_lead_of_zeros():
    out = memory.aligned_copy(np.array([1.5, -2.0, 3.0]), np.float32, lead=5)
    assert memory.is_aligned(out) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 0, 1.5, -2.0, 3.0])
