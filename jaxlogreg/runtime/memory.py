"""Host arrays that XLA:CPU can use in place: C-ordered, starting on a 64-byte boundary.

``jax.device_put`` of a NumPy array on the CPU shares its memory only when the data start at
:data:`ALIGN` bytes; NumPy aligns its own to 16, so any other array is copied. Fits on a
kernel that reads X in rows (``jaxlogreg.training.host_layout.row_major``) use an aligned X as
it is: the package's loaders and synthetic data return aligned X, and :func:`aligned_empty`
lets a user fill one (docs/performance.md, "Fitting an X that fills the memory").
"""

from __future__ import annotations

from typing import Any

import numpy as np

ALIGN = 64  # bytes: XLA:CPU uses a host buffer in place only at this alignment


def aligned_empty(shape: int | tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised C-ordered array of ``shape`` whose data start on an
    :data:`ALIGN`-byte boundary (like ``numpy.empty``)."""
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def is_aligned(X: np.ndarray) -> bool:
    """Whether X's data start on an :data:`ALIGN`-byte boundary."""
    return X.ctypes.data % ALIGN == 0


def aligned_copy(X: Any, dtype: Any) -> np.ndarray:
    """X cast to ``dtype`` in a new aligned C-ordered array (as ``X.astype(dtype)``: values
    beyond the dtype's range become inf, NumPy's casting)."""
    X = np.asarray(X)
    out = aligned_empty(X.shape, dtype)
    np.copyto(out, X, casting="unsafe")
    return out


__all__ = ["ALIGN", "aligned_copy", "aligned_empty", "is_aligned"]
