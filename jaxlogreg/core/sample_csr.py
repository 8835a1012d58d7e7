"""Xt (n, m) for the kernels on CSR: X (m, n)'s own CSR arrays, which the device shares.

:class:`SampleCsr` is the training layout, a :class:`~jaxlogreg.core.sparse.CooMatrix` sorted
by sample, stored as X's ``data``, ``indices`` (Xt's ``row``) and ``indptr``; no (nnz,) array of
samples is kept (XLA's products derive it inside jit, :func:`sample_ids`). On a CPU
``jax.device_put`` shares a host array only from a 64-byte boundary, and NumPy's large arrays
start 16 bytes past one, so :func:`sample_csr` stores ``data`` and ``indices`` from the
boundary before them (:func:`~jaxlogreg.runtime.memory.view_with_lead`): ``lead`` entries that
are not X's come first, and the device holds no copy of X. The kernels on CSR read the stored
arrays with ``indptr + lead`` (:meth:`SampleCsr.csr_arrays`); everything else sees ``data``,
``row`` and ``col``, X's entries alone.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from jaxlogreg.core.sparse import CooMatrix
from jaxlogreg.runtime.memory import aligned_copy, lead_to_alignment, view_with_lead


@jax.tree_util.register_pytree_node_class
class SampleCsr(CooMatrix):
    """Xt (n, m), sorted by sample, stored as X (m, n) in CSR: ``stored_data`` and
    ``stored_row`` (lead + nnz,), ``lead`` entries that are not X's and then X's values and
    column indices (the feature of each entry); ``indptr`` (m + 1,) int32 over X's entries,
    sample i's ``[indptr[i], indptr[i + 1])``, ``indptr[-1] == nnz``. ``data``, ``row`` and
    ``col`` are X's nnz entries (``col`` derived from ``indptr``). A pytree of the three
    stored arrays; ``shape`` and ``lead`` are static."""

    def __init__(self, data: Any, row: Any, indptr: Any, shape: tuple[int, int], lead: int = 0):
        fields = ("stored_data", "stored_row", "indptr", "shape", "sorted_by", "lead")
        for name, value in zip(fields, (data, row, indptr, tuple(shape), 1, lead), strict=True):
            object.__setattr__(self, name, value)  # a frozen dataclass's fields

    @property
    def data(self) -> Any:
        return self.stored_data[self.lead:] if self.lead else self.stored_data

    @property
    def row(self) -> Any:
        return self.stored_row[self.lead:] if self.lead else self.stored_row

    @property
    def col(self) -> Any:
        return sample_ids(self.indptr, self.nnz)

    def csr_arrays(self) -> tuple[Any, Any, Any]:
        """X as the kernels on CSR read it, ``(indptr, indices, data)``: the stored arrays,
        whose first ``lead`` entries no row's range reaches (``indptr + lead``)."""
        indptr = self.indptr + np.int32(self.lead) if self.lead else self.indptr
        return indptr, self.stored_row, self.stored_data

    def __repr__(self) -> str:
        return f"SampleCsr(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"

    def tree_flatten(self) -> tuple[tuple[Any, Any, Any], tuple[tuple[int, int], int]]:
        return (self.stored_data, self.stored_row, self.indptr), (self.shape, self.lead)

    @classmethod
    def tree_unflatten(cls, static: tuple[tuple[int, int], int], leaves: Any) -> SampleCsr:
        return cls(*leaves, *static)

    def astype(self, dtype: Any) -> SampleCsr:
        return SampleCsr(self.stored_data.astype(dtype), self.stored_row, self.indptr,
                         self.shape, self.lead)

    def reshape_to(self, shape: tuple[int, int]) -> SampleCsr:
        """The same entries in a larger matrix: extra samples are empty rows of X."""
        self._check_grows(shape)
        indptr, extra = self.indptr, shape[1] - self.shape[1]
        if extra:
            xp = np if isinstance(indptr, np.ndarray) else jnp
            indptr = xp.concatenate([indptr, xp.full((extra,), indptr[-1], np.int32)])
        return SampleCsr(self.stored_data, self.stored_row, indptr, shape, self.lead)

    def padded(self, nnz: int) -> SampleCsr:
        """``nnz`` entries: zeros appended as the last sample's (copies, without the lead)."""
        pad = nnz - self.nnz
        if pad == 0:
            return self
        xp = jnp if isinstance(self.stored_data, jax.Array) else np
        return SampleCsr(xp.concatenate([self.data, xp.zeros((pad,), self.dtype)]),
                         xp.concatenate([self.row, xp.zeros((pad,), np.int32)]),
                         xp.concatenate([self.indptr[:-1], xp.full((1,), nnz, np.int32)]),
                         self.shape)


def sample_ids(indptr: Any, nnz: int) -> Any:
    """The row of CSR X of each of its ``nnz`` entries, int32: i repeated ``indptr[i + 1] -
    indptr[i]`` times (NumPy for a NumPy ``indptr``, else JAX: inside jit a temporary)."""
    if isinstance(indptr, np.ndarray):
        return np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int32), np.diff(indptr))
    return jnp.repeat(jnp.arange(indptr.shape[0] - 1, dtype=jnp.int32), jnp.diff(indptr),
                      total_repeat_length=nnz)


def sample_csr(X: sp.csr_array, dtype: Any) -> SampleCsr:
    """Xᵀ (n, m) of a canonical CSR array as a :class:`SampleCsr` over X's own arrays, which
    ``jax.device_put`` on a CPU then shares: ``indices`` (int32) and ``data`` (in ``dtype``)
    stored from the 64-byte boundary before them, one ``lead`` for both. An array is copied
    only to cast it, or when no such view of it exists (into an aligned array, after ``lead``
    zeros); ``indptr`` is int32."""
    indices, lead = _indices_from_boundary(X.indices)
    data = view_with_lead(X.data, lead) if X.data.dtype == np.dtype(dtype) else None
    if data is None:
        data = aligned_copy(X.data, dtype, lead)
    indptr = X.indptr if X.indptr.dtype == np.int32 else aligned_copy(X.indptr, np.int32)
    return SampleCsr(data, indices, indptr, X.shape[::-1], lead)


def _indices_from_boundary(indices: np.ndarray) -> tuple[np.ndarray, int]:
    """X's int32 ``indices`` stored from the 64-byte boundary before them, and the lead; an
    aligned int32 copy (lead 0) where they are of another dtype or have no such view."""
    if indices.dtype == np.int32:
        lead = lead_to_alignment(indices)
        view = None if lead is None else view_with_lead(indices, lead)
        if view is not None:
            return view, lead
    return aligned_copy(indices, np.int32), 0


__all__ = ["SampleCsr", "sample_csr", "sample_ids"]
