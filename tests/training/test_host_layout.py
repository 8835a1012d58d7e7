"""NumPy's layouts of X for training, features-major Xt (n, m) and rows X (m, n): exact,
aligned, checked, in any memory order."""

import numpy as np
import pytest

from jaxlogreg.runtime import memory
from jaxlogreg.training import host_layout


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 7 rows, split over threads from 1 element: the parallel path on small X."""
    monkeypatch.setattr(host_layout, "BLOCK_ROWS", 7)
    monkeypatch.setattr(host_layout, "PARALLEL_MIN_ELEMENTS", 1)


def _inputs():
    X = np.random.default_rng(0).normal(size=(103, 5))
    wide = np.zeros((103, 10))
    wide[:, 1::2] = X
    return {
        "C": X,
        "F": np.asfortranarray(X),
        "strided": wide[:, 1::2],
        "reversed rows": X[::-1].copy()[::-1],
    }


@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("order", list(_inputs()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_layout_is_exact_and_aligned_in_any_order(order, dtype, parallel, rows, request):
    if parallel:
        request.getfixturevalue("small_blocks")
    X = _inputs()[order]
    out, finite = (host_layout.row_major if rows else host_layout.transposed)(X, dtype)
    assert finite and out.dtype == dtype and out.flags.c_contiguous
    assert out.ctypes.data % memory.ALIGN == 0
    np.testing.assert_array_equal(out, (X if rows else X.T).astype(dtype))


def test_an_aligned_fortran_x_of_the_dtype_is_not_copied():
    Xt = host_layout.aligned_empty((5, 300), np.float32)
    Xt[...] = 1.0
    out, finite = host_layout.transposed(Xt.T, np.float32)
    assert finite and out.ctypes.data == Xt.ctypes.data


@pytest.mark.parametrize("parallel", [False, True])
def test_an_aligned_c_ordered_x_of_the_dtype_is_kept_as_rows(parallel, request):
    if parallel:
        request.getfixturevalue("small_blocks")
    X = host_layout.aligned_empty((300, 5), np.float32)
    X[...] = 1.0
    out, finite = host_layout.row_major(X, np.float32)
    assert finite and out is X
    X[299, 4] = np.nan  # checked all the same, in the last block
    assert not host_layout.row_major(X, np.float32)[1]


def test_a_misaligned_c_ordered_x_is_copied_once_to_an_aligned_buffer():
    buffer = host_layout.aligned_empty((301 * 5,), np.float32)
    X = buffer[5:].reshape(300, 5)  # 20 bytes past an aligned start
    X[...] = np.arange(1500, dtype=np.float32).reshape(300, 5)
    out, finite = host_layout.row_major(X, np.float32)
    assert finite and out.ctypes.data % memory.ALIGN == 0 and not np.shares_memory(out, X)
    np.testing.assert_array_equal(out, X)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 50, 102])  # first, middle and last block
def test_nan_or_inf_anywhere_is_found(bad, where, parallel, request):
    if parallel:
        request.getfixturevalue("small_blocks")
    X = _inputs()["C"].copy()
    X[where, 3] = bad
    for layout in (host_layout.transposed, host_layout.row_major):
        assert not layout(X, np.float64)[1]
        assert not layout(np.asfortranarray(X), np.float32)[1]


def test_values_overflowing_the_cast_are_not_finite():
    X = _inputs()["C"].copy()
    X[17, 2] = 1e39  # finite in float64, inf in float32
    for layout in (host_layout.transposed, host_layout.row_major):
        assert layout(X, np.float64)[1]
        assert not layout(X, np.float32)[1]


def test_finite_values_whose_sum_overflows_are_finite(small_blocks):
    X = np.full((30, 4), 3e38, np.float32)  # every block's sum is inf, every value finite
    Xt, finite = host_layout.transposed(X, np.float32)
    assert finite
    np.testing.assert_array_equal(Xt, X.T)
