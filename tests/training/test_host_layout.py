"""NumPy's transpose into the training layout: exact, aligned, checked, in any memory order."""

import numpy as np
import pytest

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


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("order", list(_inputs()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_layout_is_the_exact_transpose_aligned_in_any_order(order, dtype, parallel,
                                                                 request):
    if parallel:
        request.getfixturevalue("small_blocks")
    X = _inputs()[order]
    Xt, finite = host_layout.transposed(X, dtype)
    assert finite and Xt.dtype == dtype and Xt.flags.c_contiguous
    assert Xt.ctypes.data % host_layout.ALIGN == 0
    np.testing.assert_array_equal(Xt, X.T.astype(dtype))


def test_an_aligned_fortran_x_of_the_dtype_is_not_copied():
    Xt = host_layout.aligned_empty((5, 300), np.float32)
    Xt[...] = 1.0
    out, finite = host_layout.transposed(Xt.T, np.float32)
    assert finite and out.ctypes.data == Xt.ctypes.data


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 50, 102])  # first, middle and last block
def test_nan_or_inf_anywhere_is_found(bad, where, parallel, request):
    if parallel:
        request.getfixturevalue("small_blocks")
    X = _inputs()["C"].copy()
    X[where, 3] = bad
    assert not host_layout.transposed(X, np.float64)[1]
    assert not host_layout.transposed(np.asfortranarray(X), np.float32)[1]


def test_values_overflowing_the_cast_are_not_finite():
    X = _inputs()["C"].copy()
    X[17, 2] = 1e39  # finite in float64, inf in float32
    assert host_layout.transposed(X, np.float64)[1]
    assert not host_layout.transposed(X, np.float32)[1]


def test_finite_values_whose_sum_overflows_are_finite(small_blocks):
    X = np.full((30, 4), 3e38, np.float32)  # every block's sum is inf, every value finite
    Xt, finite = host_layout.transposed(X, np.float32)
    assert finite
    np.testing.assert_array_equal(Xt, X.T)
