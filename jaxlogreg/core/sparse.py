"""Sparse design matrices: the non-zeros on the device, products as gathers and segment sums.

Text, click logs and hashed features give X (m, n) with n up to 10^7 and a few dozen non-zeros
per row. Such an X is kept as its entries (COO), never densified::

    data (nnz,)  the values x_ij        row (nnz,)  i        col (nnz,)  j

and the two products of the backward pass are sums over the entries, O(nnz) whatever n is::

    z  = X w     z_i  = Σ_{k: row_k = i} data_k · w[col_k]     gather w, segment sum over rows
    dw = Xᵀ dz   dw_j = Σ_{k: col_k = j} data_k · dz[row_k]    gather dz, segment sum over cols

Training keeps X features-major, ``Xt = Xᵀ`` (n, m) (:mod:`jaxlogreg.core.gradients`);
``.T`` swaps the roles of ``row`` and ``col`` without copying, so ``dot(w, Xt)`` and
``dot(Xt, dz)`` are the two sums above. Entries are kept sorted by sample (the order of a CSR
matrix), which the segment sum over samples is told.

On the host, scipy.sparse CSR / CSC / COO matrices and JAX ``BCOO`` / ``BCSR`` are accepted
(:func:`as_csr`): duplicate entries are summed and indices sorted, as scipy does, on a copy; bad
indices or NaN/inf values are refused with a message naming the parameter.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

MAX_INDEX = int(np.iinfo(np.int32).max)  # entries, rows and columns are int32 on the device


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["data", "row", "col"],
    meta_fields=["shape", "sorted_by"],
)
@dataclasses.dataclass(frozen=True)
class CooMatrix:
    """A sparse matrix of shape ``shape`` as its entries ``data[k]`` at ``(row[k], col[k])``.

    A pytree: ``data``, ``row`` and ``col`` (nnz,) are its leaves (jit arguments), ``shape``
    and ``sorted_by`` (0: entries sorted by row, 1: by column, None) are static. Entries with
    value 0 may pad ``nnz`` to a bucket size; they add nothing to the products.
    """

    data: Any
    row: Any
    col: Any
    shape: tuple[int, int]
    sorted_by: int | None = 0

    ndim = 2

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def nnz(self) -> int:
        return int(self.data.shape[0])

    @property
    def T(self) -> CooMatrix:
        """The transpose: the same entries with rows and columns swapped."""
        sorted_by = None if self.sorted_by is None else 1 - self.sorted_by
        return CooMatrix(self.data, self.col, self.row, self.shape[::-1], sorted_by)

    def astype(self, dtype: Any) -> CooMatrix:
        return dataclasses.replace(self, data=self.data.astype(dtype))

    def reshape_to(self, shape: tuple[int, int]) -> CooMatrix:
        """The same entries in a larger matrix (extra rows and columns are zero): padding."""
        if shape[0] < self.shape[0] or shape[1] < self.shape[1]:
            raise ValueError(f"cannot shrink a sparse matrix of shape {self.shape} to {shape}")
        return dataclasses.replace(self, shape=tuple(shape))


def _matvec(S: CooMatrix, B: jax.Array) -> jax.Array:
    """``S @ B`` for S (r, c) and dense B (c, ...): gather B's rows, segment sum over S's rows."""
    data = S.data.astype(B.dtype).reshape((-1,) + (1,) * (B.ndim - 1))
    terms = data * jnp.take(B, S.col, axis=0, mode="clip")  # (nnz, ...)
    return jax.ops.segment_sum(terms, S.row, S.shape[0], indices_are_sorted=S.sorted_by == 0)


def sparse_dot(a: Any, b: Any) -> jax.Array:
    """``a @ b`` where one operand is a :class:`CooMatrix` and the other dense.

    ``dense (..., r) @ S (r, c) -> (..., c)`` and ``S (r, c) @ dense (c, ...) -> (r, ...)``.
    """
    if isinstance(a, CooMatrix):
        return _matvec(a, b)
    return jnp.moveaxis(_matvec(b.T, jnp.moveaxis(a, -1, 0)), 0, -1)


def is_sparse(X: Any) -> bool:
    """True for scipy.sparse matrices and arrays, JAX sparse matrices and :class:`CooMatrix`."""
    return sp.issparse(X) or isinstance(X, jsparse.JAXSparse | CooMatrix)


def _bcoo_to_scipy(X: Any, name: str) -> sp.coo_array:
    X = X.to_bcoo() if not isinstance(X, jsparse.BCOO) else X
    if X.n_batch or X.n_dense or X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D sparse matrix without batch or dense dimensions, got a BCOO "
            f"of shape {tuple(X.shape)} with n_batch={X.n_batch}, n_dense={X.n_dense}"
        )
    indices = np.asarray(X.indices)
    try:  # scipy checks the indices against the shape
        return sp.coo_array((np.asarray(X.data), (indices[:, 0], indices[:, 1])), shape=X.shape)
    except (ValueError, IndexError) as err:
        raise ValueError(f"{name} has invalid sparse indices: {err}") from None


def as_csr(X: Any, name: str = "X") -> sp.csr_array:
    """``X`` as a checked, canonical CSR array: 2-D, non-empty, float values that are all finite,
    indices in range; duplicates summed and indices sorted (on a copy: X is not changed)."""
    if isinstance(X, CooMatrix):
        raise TypeError(f"{name} must be a scipy.sparse or JAX BCOO matrix, got a CooMatrix "
                        "(the training layout)")
    if isinstance(X, jsparse.JAXSparse):
        X = _bcoo_to_scipy(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (n_samples, n_features), got {X.ndim}-D")
    if min(X.shape) == 0:
        raise ValueError(f"{name} must be non-empty, got a sparse matrix of shape {X.shape}")
    if np.dtype(X.dtype).kind != "f":
        raise TypeError(f"{name} must have a floating dtype (float32 or float64), got sparse "
                        f"{X.dtype}")
    try:
        if X.format == "coo":
            X.tocsr()  # scipy checks COO indices on conversion
            X = sp.csr_array(X)
        else:
            X = sp.csr_array(X)
            X.check_format(full_check=True)
    except (ValueError, IndexError) as err:
        raise ValueError(f"{name} has invalid sparse indices: {err}") from None
    if X.nnz > MAX_INDEX or max(X.shape) > MAX_INDEX:
        raise ValueError(f"{name} must have at most {MAX_INDEX} rows, columns and non-zeros (int32 "
                         f"indices), got shape {X.shape} with {X.nnz} non-zeros")
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    bad = ~np.isfinite(X.data)
    if bad.any():
        raise ValueError(
            f"{name} must be finite, but its sparse data holds {int(bad.sum())} NaN or inf "
            f"value(s) (first in row {int(np.searchsorted(X.indptr, np.argmax(bad), 'right')) - 1})"
        )
    return X


def coo_of_csr(X: sp.csr_array, dtype: Any, transpose: bool = False) -> CooMatrix:
    """The entries of a canonical CSR array as host arrays (sorted by row): X, or Xᵀ when
    ``transpose`` (then sorted by column). ``data`` is cast to ``dtype`` (no copy when equal)."""
    counts = np.diff(X.indptr)
    row = np.repeat(np.arange(X.shape[0], dtype=np.int32), counts)
    col = X.indices.astype(np.int32, copy=False)
    coo = CooMatrix(np.asarray(X.data, dtype), row, col, X.shape, 0)
    return coo.T if transpose else coo


def pad_entries(X: CooMatrix, nnz: int) -> CooMatrix:
    """``nnz`` entries: zeros appended at the end of the sorted index (the order is kept)."""
    pad = nnz - X.nnz
    if pad == 0:
        return X
    xp = jnp if isinstance(X.data, jax.Array) else np
    by_row = X.sorted_by == 0  # the padding goes last in the sorted index
    row_fill, col_fill = (X.shape[0] - 1, 0) if by_row else (0, X.shape[1] - 1)
    return dataclasses.replace(
        X,
        data=xp.concatenate([X.data, xp.zeros((pad,), X.data.dtype)]),
        row=xp.concatenate([X.row, xp.full((pad,), row_fill, np.int32)]),
        col=xp.concatenate([X.col, xp.full((pad,), col_fill, np.int32)]),
    )
