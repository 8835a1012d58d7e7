"""A NumPy X (m, n) to a training layout on the host: cast, laid out, checked, in one pass.

On CPUs the device is the host, and XLA:CPU is slow at both steps of the obvious path: it
copies a NumPy buffer that is not 64-byte aligned (NumPy's are 16-byte aligned) slowly, and its
compiled transpose takes about as long as a whole L-BFGS fit (docs/decisions.md). Here NumPy
copies blocks of rows into the layout, a thread per core, casting on the way and checking each
block for NaN/inf while it is in cache, into a 64-byte-aligned buffer that ``jax.device_put``
uses in place. :func:`transposed` makes the features-major ``Xt`` (n, m); :func:`row_major` keeps
X (m, n) for kernels that read rows. X already in the layout (Fortran-ordered for ``Xt``,
C-ordered for rows), aligned and in the dtype is only checked, never copied.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from jaxlogreg.runtime.env import usable_cores
from jaxlogreg.runtime.memory import aligned_empty, is_aligned

BLOCK_ROWS = 4096  # rows of X per block: 1.6 MB at n = 100 float32, in L2 cache
PARALLEL_MIN_ELEMENTS = 1 << 22  # smaller X are transposed by one thread


def transposed(X: np.ndarray, dtype: Any) -> tuple[np.ndarray, bool]:
    """``Xt = Xᵀ`` (n, m), C-ordered, 64-byte aligned, in ``dtype``; and whether it is finite.

    X (m, n) may have any memory order. Values that overflow ``dtype`` become inf (and make it
    not finite), as in NumPy's ``astype``. A Fortran-ordered, aligned X already in ``dtype`` is
    returned as ``X.T``, a view.
    """
    dtype = np.dtype(dtype)
    if X.T.flags.c_contiguous and X.dtype == dtype and is_aligned(X):
        Xt = X.T
        return Xt, _blocks_finite(lambda rows: Xt[:, rows], _nothing, X.shape[0])
    Xt = aligned_empty(X.shape[::-1], dtype)

    def copy(rows: slice) -> None:
        np.copyto(Xt[:, rows], X[rows].T, casting="unsafe")

    return Xt, _blocks_finite(lambda rows: Xt[:, rows], copy, X.shape[0])


def row_major(X: np.ndarray, dtype: Any) -> tuple[np.ndarray, bool]:
    """X (m, n) C-ordered, 64-byte aligned, in ``dtype``; and whether it is finite.

    A C-ordered, aligned X already in ``dtype`` is returned itself (checked, not copied); any
    other X is copied once (cast as :func:`transposed` casts).
    """
    dtype = np.dtype(dtype)
    if X.flags.c_contiguous and X.dtype == dtype and is_aligned(X):
        return X, _blocks_finite(lambda block: X[block], _nothing, X.shape[0])
    out = aligned_empty(X.shape, dtype)

    def copy(block: slice) -> None:
        np.copyto(out[block], X[block], casting="unsafe")

    return out, _blocks_finite(lambda block: out[block], copy, X.shape[0])


def _nothing(rows: slice) -> None:
    """The copy step of an X used as it is."""


def _blocks_finite(
    written: Callable[[slice], np.ndarray], copy: Callable[[slice], None], m: int
) -> bool:
    """Run ``copy(rows)`` over blocks of :data:`BLOCK_ROWS` samples, a thread per core, and
    check each block, ``written(rows)``, for NaN and inf once it is written (a sum: NaN or inf
    when a value is, or when finite values overflow it; that rare case is settled by an exact
    check)."""

    def block(rows: slice) -> bool:
        with np.errstate(over="ignore", invalid="ignore"):  # per thread
            copy(rows)
            return bool(np.isfinite(written(rows).sum()))

    def blocks(starts: range) -> bool:
        flags = [block(slice(start, start + BLOCK_ROWS)) for start in starts]  # all written
        return all(flags)

    workers = min(usable_cores(), -(-m // BLOCK_ROWS))
    size = written(slice(0, m)).size
    if size < PARALLEL_MIN_ELEMENTS or workers < 2:
        finite = blocks(range(0, m, BLOCK_ROWS))
    else:  # worker j takes blocks j, j + workers, ...: one task each
        with ThreadPoolExecutor(workers) as pool:
            finite = all(list(pool.map(
                blocks, [range(j * BLOCK_ROWS, m, workers * BLOCK_ROWS) for j in range(workers)]
            )))
    return finite or bool(np.isfinite(written(slice(0, m))).all())
