"""Host arrays that XLA:CPU can use in place: C-ordered, starting on a 64-byte boundary.

``jax.device_put`` of a NumPy array on the CPU shares its memory only when the data start at
:data:`ALIGN` bytes; NumPy aligns its own to 16, so any other array is copied. Fits on a
kernel that reads X in rows (``jaxlogreg.training.host_layout.row_major``) use an aligned X as
it is: the package's loaders and synthetic data return aligned X, and :func:`aligned_empty`
lets a user fill one (docs/performance.md, "Fitting an X that fills the memory"). A 1-D
array that starts off the boundary is shared from the boundary before it
(:func:`view_with_lead`: sparse X's ``data`` and ``indices``, with an offset).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ALIGN = 64  # bytes: XLA:CPU uses a host buffer in place only at this alignment
PAGE = 4096  # bytes: the smallest memory page (the unit memory is mapped in) of any platform


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


def aligned_copy(X: Any, dtype: Any, lead: int = 0) -> np.ndarray:
    """X cast to ``dtype`` in a new aligned C-ordered array (as ``X.astype(dtype)``: values
    beyond the dtype's range become inf, NumPy's casting); a 1-D X after ``lead`` zeros."""
    X = np.asarray(X)
    if lead:
        out = aligned_empty(X.shape[0] + lead, dtype)
        out[:lead] = 0
        np.copyto(out[lead:], X, casting="unsafe")
        return out
    out = aligned_empty(X.shape, dtype)
    np.copyto(out, X, casting="unsafe")
    return out


def lead_to_alignment(a: np.ndarray) -> int | None:
    """The elements of ``a``'s dtype from the last :data:`ALIGN`-byte boundary up to a's data
    (0 when aligned), or None when that gap is not whole elements."""
    gap = a.ctypes.data % ALIGN
    return gap // a.itemsize if gap % a.itemsize == 0 else None


class _Interface:
    """An ``__array_interface__`` for NumPy to wrap, holding the array whose memory it names."""

    def __init__(self, interface: dict[str, Any], owner: np.ndarray):
        self.__array_interface__ = interface
        self.owner = owner


def view_with_lead(a: np.ndarray, lead: int) -> np.ndarray | None:
    """1-D C-contiguous ``a`` as a read-only view that starts ``lead`` elements earlier, on an
    :data:`ALIGN`-byte boundary, so that ``jax.device_put`` on a CPU shares it instead of
    copying it; ``view[lead:]`` is ``a``. The ``lead`` elements are whatever bytes precede
    a's data (never to be read as values). They lie in the memory page of a's first byte
    (:data:`PAGE`, the smallest page size), so they are mapped and reading them is safe; None
    when the boundary is in an earlier page or not ``lead`` elements away. The view keeps a
    alive."""
    if a.ndim != 1 or not a.flags.c_contiguous or a.shape[0] == 0 or lead < 0:
        return None
    address = a.ctypes.data
    start = address - lead * a.itemsize
    if start % ALIGN or start // PAGE != address // PAGE:
        return None
    if lead == 0:
        return a
    interface = {"data": (start, True), "shape": (a.shape[0] + lead,),
                 "typestr": a.dtype.str, "version": 3}
    return np.asarray(_Interface(interface, a))


__all__ = ["ALIGN", "PAGE", "aligned_copy", "aligned_empty", "is_aligned", "lead_to_alignment",
           "view_with_lead"]
