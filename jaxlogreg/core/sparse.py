"""Sparse design matrices: the non-zeros on the device, products as gathers and segment sums.

X (m, n) with n up to 10^7 and a few dozen non-zeros per row (text, clicks, hashed features)
is kept as its entries, ``data``, ``row``, ``col`` (nnz,), sorted by sample, never densified;
the two products of the backward pass are sums over the entries, O(nnz) whatever n is::

    z  = X w     z_i  = Σ_{k: row_k = i} data_k · w[col_k]     gather w, segment sum over rows
    dw = Xᵀ dz   dw_j = Σ_{k: col_k = j} data_k · dz[row_k]    gather dz, segment sum over cols

``.T`` swaps ``row`` and ``col`` without copying, so on the training layout ``Xt`` (n, m)
``dot(w, Xt)`` and ``dot(Xt, dz)`` are these sums (:mod:`jaxlogreg.core.sample_csr`: that
``Xt`` as X's CSR arrays). On the host :func:`as_csr` accepts every scipy.sparse format and
JAX ``BCOO`` / ``BCSR`` (docs/sparse.md); scipy's native code trusts the index arrays, so
:func:`check_sparse` reads them, in the matrix's own format, first.
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
        self._check_grows(shape)
        return dataclasses.replace(self, shape=tuple(shape))

    def padded(self, nnz: int) -> CooMatrix:
        """``nnz`` entries: zeros appended at the end of the sorted index (the order is kept)."""
        pad = nnz - self.nnz
        if pad == 0:
            return self
        xp = jnp if isinstance(self.data, jax.Array) else np
        by_row = self.sorted_by == 0  # the padding goes last in the sorted index
        row_fill, col_fill = (self.shape[0] - 1, 0) if by_row else (0, self.shape[1] - 1)
        return dataclasses.replace(
            self,
            data=xp.concatenate([self.data, xp.zeros((pad,), self.data.dtype)]),
            row=xp.concatenate([self.row, xp.full((pad,), row_fill, np.int32)]),
            col=xp.concatenate([self.col, xp.full((pad,), col_fill, np.int32)]),
        )

    def _check_grows(self, shape: tuple[int, int]) -> None:
        if shape[0] < self.shape[0] or shape[1] < self.shape[1]:
            raise ValueError(f"cannot shrink a sparse matrix of shape {self.shape} to {shape}")


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


def check_dense(x: Any, name: str, expected: str) -> None:
    """Refuse a sparse matrix where a dense array is expected (labels, weights)."""
    if is_sparse(x):
        raise TypeError(f"{name} must be {expected}, got a sparse matrix of shape "
                        f"{tuple(x.shape)}; convert it with {name}.toarray().ravel()")


def _first_outside(idx: np.ndarray, bound: int) -> int | None:
    """The position of the first index outside ``[0, bound)``, or None. One pass: viewed as
    unsigned, a negative index is at least 2^(bits-1) >= bound."""
    if idx.size == 0:
        return None
    if idx.dtype.kind == "i" and idx.dtype.isnative and bound <= 2 ** (8 * idx.itemsize - 1):
        unsigned = idx.view(np.dtype(f"u{idx.dtype.itemsize}"))
        if int(unsigned.max()) < bound:
            return None
        return int(np.argmax(unsigned >= bound))
    bad = (idx < 0) | (idx >= bound)
    return int(np.argmax(bad)) if bad.any() else None


def _check_integers(arr: Any, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must be a 1-D array of integers, got shape {arr.shape} and "
                         f"dtype {arr.dtype}")
    return arr


def check_compressed(
    indptr: Any, indices: Any, n_values: int, major: int, minor: int, axes: tuple[str, str],
    lead: int = 0,
) -> int:
    """Check CSR-like arrays: ``indptr`` (major + 1,) from ``lead`` (stored entries before it
    are not the matrix's), non-decreasing, up to ``nnz <= len(indices) == n_values``;
    ``indices[lead:nnz]`` in ``[0, minor)``. Returns the end of the entries, ``indptr[-1]``."""
    indptr = _check_integers(indptr, "indptr")
    indices = _check_integers(indices, "indices")
    if indptr.shape[0] != major + 1:
        raise ValueError(f"indptr must have {major + 1} entries (one per {axes[0]}, plus one), "
                         f"got {indptr.shape[0]}")
    if indices.shape[0] != n_values:
        raise ValueError(f"indices and data must have one length, got {indices.shape[0]} "
                         f"and {n_values}")
    if indptr[0] != lead:
        raise ValueError(f"indptr must start at {lead}, got {indptr[0]}")
    drops = indptr[1:] < indptr[:-1]
    if drops.any():
        i = int(np.argmax(drops))
        raise ValueError(f"indptr must not decrease, but it goes from {indptr[i]} to "
                         f"{indptr[i + 1]} at {axes[0]} {i}")
    nnz = int(indptr[-1])
    if nnz > indices.shape[0]:
        raise ValueError(f"indptr must end at most at the {indices.shape[0]} stored entries, "
                         f"got {nnz}")
    k = _first_outside(indices[lead:nnz], minor)
    if k is not None:
        k += lead
        at = int(np.searchsorted(indptr, k, "right")) - 1
        raise ValueError(f"{axes[1]} index {indices[k]} of entry {k} ({axes[0]} {at}) is "
                         f"outside [0, {minor})")
    return nnz


def _check_coords(coords: Any, n_values: int, shape: tuple[int, ...]) -> None:
    """COO arrays: one index array per axis, each of ``n_values`` entries in range."""
    if len(coords) != len(shape):
        raise ValueError(f"a matrix of shape {shape} needs {len(shape)} index arrays, got "
                         f"{len(coords)}")
    for axis, (idx, bound) in enumerate(zip(coords, shape, strict=True)):
        what = ("row", "column")[axis]
        idx = _check_integers(idx, f"the {what} indices")
        if idx.shape[0] != n_values:
            raise ValueError(f"the {what} indices and data must have one length, got "
                             f"{idx.shape[0]} and {n_values}")
        k = _first_outside(idx, bound)
        if k is not None:
            raise ValueError(f"{what} index {idx[k]} of entry {k} is outside [0, {bound})")


def _check_lil(X: Any) -> None:
    """LIL: one list of columns and one of values per row, of equal lengths."""
    m = X.shape[0]
    for what, lists in (("rows", X.rows), ("data", X.data)):
        if not isinstance(lists, np.ndarray) or lists.shape != (m,):
            raise ValueError(f"LIL {what} must be an array of {m} lists (one per row), got "
                             f"{type(lists).__name__} of shape {np.shape(lists)}")
    n_cols, n_values = (np.fromiter(map(len, lists), np.int64, m) for lists in (X.rows, X.data))
    if (n_cols != n_values).any():
        i = int(np.argmax(n_cols != n_values))
        raise ValueError(f"row {i} has {n_cols[i]} column indices but {n_values[i]} values")


def _check_dia(X: Any) -> None:
    """DIA: one row of ``data`` per offset (scipy's constructor checks, repeated)."""
    offsets = _check_integers(X.offsets, "offsets")
    shape = np.shape(X.data)
    if len(shape) != 2 or shape[0] != offsets.shape[0]:
        raise ValueError(f"DIA data must have one row per offset ({offsets.shape[0]}), got "
                         f"shape {shape}")


def _n_values(data: Any, ndim: int, layout: str) -> int:
    """The number of stored values: ``data`` must be an array of shape ``layout``."""
    shape = np.shape(data)
    if len(shape) != ndim:
        raise ValueError(f"data must have shape {layout}, got {shape}")
    return shape[0]


def _check_scipy(X: Any) -> Any:
    fmt = X.format
    if fmt in ("csr", "csc"):
        major, minor = X.shape if fmt == "csr" else X.shape[::-1]
        axes = ("row", "column") if fmt == "csr" else ("column", "row")
        check_compressed(X.indptr, X.indices, _n_values(X.data, 1, "(nnz,)"), major, minor, axes)
    elif fmt == "bsr":
        blocks = _n_values(X.data, 3, "(n_blocks, R, C)")
        R, C = X.data.shape[1:]
        if R == 0 or C == 0 or X.shape[0] % R or X.shape[1] % C:
            raise ValueError(f"BSR blocks of {R} x {C} must tile the shape {X.shape}")
        check_compressed(X.indptr, X.indices, blocks, X.shape[0] // R, X.shape[1] // C,
                         ("block row", "block column"))
    elif fmt == "coo":
        _check_coords((X.row, X.col), _n_values(X.data, 1, "(nnz,)"), X.shape)
    else:  # LIL, DIA, DOK: scipy converts them safely once their structure holds
        if fmt == "lil":
            _check_lil(X)
        elif fmt == "dia":
            _check_dia(X)
        X = X.tocsr()  # DOK: through COO, whose constructor checks the indices
        _check_scipy(X)
    return X


def check_sparse(X: Any, name: str = "X") -> Any:
    """Check a scipy.sparse matrix's index arrays in its own format, before scipy converts or
    multiplies it (its native code reads them unchecked): CSR/CSC/BSR ``indptr`` of one entry
    per row (column, block row) plus one, from 0, non-decreasing, up to ``nnz <= len(indices)
    == len(data)``; ``indices`` and COO ``row``/``col`` in range. O(nnz), no copy. Returns X,
    or a LIL, DIA or DOK matrix as CSR (checked too)."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (n_samples, n_features), got {X.ndim}-D")
    try:
        return _check_scipy(X)
    except (ValueError, TypeError, IndexError, OverflowError) as err:
        raise ValueError(f"{name} has invalid sparse indices: {err}") from None


def _jax_to_scipy(X: Any, name: str) -> sp.csr_array | sp.coo_array:
    """A 2-D JAX BCOO or BCSR as scipy arrays of its entries, checked; JAX's padding (entries
    beyond ``indptr[-1]``, or with an index out of range and value 0) is dropped."""
    if not isinstance(X, jsparse.BCOO | jsparse.BCSR):
        raise TypeError(f"{name} must be a scipy.sparse matrix or a JAX BCOO or BCSR, got "
                        f"{type(X).__name__}")
    if X.n_batch or X.n_dense or X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D sparse matrix without batch or dense dimensions, got a "
            f"{type(X).__name__} of shape {tuple(X.shape)} with n_batch={X.n_batch}, "
            f"n_dense={X.n_dense}"
        )
    data = np.asarray(X.data)
    try:
        if isinstance(X, jsparse.BCSR):
            nnz = check_compressed(X.indptr, X.indices, data.shape[0], X.shape[0], X.shape[1],
                                   ("row", "column"))
            return sp.csr_array((data[:nnz], np.asarray(X.indices)[:nnz], np.asarray(X.indptr)),
                                shape=X.shape)
        indices = np.asarray(X.indices)
        outside = ((indices < 0) | (indices >= np.asarray(X.shape))).any(axis=1)
        if outside.any():
            if (data[outside] != 0).any():
                k = int(np.argmax(outside & (data != 0)))
                raise ValueError(f"entry {k} at {tuple(indices[k].tolist())} is outside the "
                                 f"shape {tuple(X.shape)} with value {data[k]} (only padding "
                                 "entries, of value 0, may lie outside)")
            data, indices = data[~outside], indices[~outside]
        return sp.coo_array((data, (indices[:, 0], indices[:, 1])), shape=X.shape)
    except ValueError as err:
        raise ValueError(f"{name} has invalid sparse indices: {err}") from None


def as_csr(X: Any, name: str = "X") -> sp.csr_array:
    """``X`` as a checked, canonical CSR array: 2-D, non-empty, float values that are all finite,
    indices in range; duplicates summed and indices sorted (on a copy: X is not changed)."""
    if isinstance(X, CooMatrix):
        raise TypeError(f"{name} must be a scipy.sparse matrix or a JAX BCOO or BCSR, got a "
                        "CooMatrix (the training layout)")
    X = _jax_to_scipy(X, name) if isinstance(X, jsparse.JAXSparse) else check_sparse(X, name)
    if min(X.shape) == 0:
        raise ValueError(f"{name} must be non-empty, got a sparse matrix of shape {X.shape}")
    if np.dtype(X.dtype).kind != "f":
        raise TypeError(f"{name} must have a floating dtype (float32 or float64), got sparse "
                        f"{X.dtype}")
    if X.nnz > MAX_INDEX or max(X.shape) > MAX_INDEX:
        raise ValueError(f"{name} must have at most {MAX_INDEX} rows, columns and non-zeros (int32 "
                         f"indices), got shape {X.shape} with {X.nnz} non-zeros")
    X = sp.csr_array(X)  # safe now: the indices were checked
    if X.indices.shape[0] > X.nnz:  # storage beyond indptr[-1] is not part of the matrix
        X = sp.csr_array((X.data[: X.nnz], X.indices[: X.nnz], X.indptr), shape=X.shape)
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
