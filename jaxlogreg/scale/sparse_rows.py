"""Sparse X on disk for streaming: the rows of a CSR matrix stored as an HDF5 group.

The AnnData / h5sparse layout of a CSR matrix, written by :func:`save_sparse_hdf5`::

    X/            attrs: shape = (m, n)   (or h5sparse_shape; encoding-type "csr_matrix")
      data        (nnz,) float   the values, row after row
      indices     (nnz,) int     their columns
      indptr      (m + 1,) int   row i is data[indptr[i]:indptr[i + 1]]

Only ``indptr`` is held in memory (checked when the group is opened). A batch reads its rows'
entries in increasing row order: runs of nearby rows as slices, all scattered rows in one HDF5
point selection (few h5py calls: docs/decisions.md). Each read is checked as
:func:`jaxlogreg.fit` checks a sparse X: column indices in range, values finite (naming the
row), repeated columns of a row summed and indices sorted.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from jaxlogreg.core.sparse import MAX_INDEX, as_csr, check_sparse

PathLike = str | os.PathLike


class SparseRowSource:
    """Read rows of an (m, n) CSR matrix kept on disk as its arrays ``data``, ``indices``
    (sliceable: h5py datasets, or NumPy arrays) and ``indptr`` (read into memory).

    Rows come back as checked, canonical scipy CSR arrays (see the module docstring).
    """

    # Rows at most GAP entries apart in the file form a group; a group holding SLICE_MIN
    # entries or more is read as slices of at most SPAN entries (or one HDF5 chunk; a longer
    # row is read alone), the rows of smaller groups together as a point selection.
    GAP = 256
    SLICE_MIN = 256
    SPAN = 1 << 16

    def __init__(
        self, data: Any, indices: Any, indptr: Any, shape: Any, name: str = "X", file: Any = None
    ):
        self.name, self.file = name, file
        shape_array = np.asarray(shape)
        if shape_array.shape != (2,) or shape_array.dtype.kind not in "iu":
            raise ValueError(f"{name}: shape must be 2 integers (m, n), got {shape!r}")
        m, n = (int(k) for k in shape_array)
        if m <= 0 or n <= 0:
            raise ValueError(f"{name} must be a non-empty 2-D sparse matrix (m, n), got shape "
                             f"{(m, n)}")
        if n > MAX_INDEX:
            raise ValueError(f"{name}: at most {MAX_INDEX} features (int32 column indices), "
                             f"got {n}")
        self.shape = (m, n)
        self.dtype = np.dtype(data.dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"{name} must hold floating-point numbers, got dtype {self.dtype}")
        if np.dtype(indices.dtype).kind not in "iu" or np.dtype(indptr.dtype).kind not in "iu":
            raise TypeError(f"{name}: indices and indptr must hold integers, got dtypes "
                            f"{indices.dtype} and {indptr.dtype}")
        if len(data.shape) != 1 or tuple(indices.shape) != tuple(data.shape):
            raise ValueError(f"{name}: data and indices must be 1-D of one length, got shapes "
                             f"{tuple(data.shape)} and {tuple(indices.shape)}")
        self.data, self.indices = data, indices
        self.nnz = int(data.shape[0])
        try:
            indptr = np.asarray(indptr[()])  # h5py: read it all
        except OSError as err:
            raise read_error(err, name) from err
        self.indptr = self._checked_indptr(indptr)
        chunks = getattr(data, "chunks", None)  # h5py: None for contiguous datasets
        self.span = max(1, min(max(int(chunks[0]) if chunks else 0, self.SPAN), self.nnz))

    def _checked_indptr(self, indptr: np.ndarray) -> np.ndarray:
        m, name = self.shape[0], self.name
        if indptr.shape != (m + 1,):
            raise ValueError(f"{name}: indptr must have m + 1 = {m + 1} entries (one per row, "
                             f"plus one), got shape {indptr.shape}")
        indptr = indptr.astype(np.int64)
        if indptr[0] != 0:
            raise ValueError(f"{name}: indptr must start at 0, got {indptr[0]}")
        steps = np.diff(indptr)
        if (steps < 0).any():
            row = int(np.argmax(steps < 0))
            raise ValueError(f"{name}: indptr must not decrease, but it goes from "
                             f"{indptr[row]} to {indptr[row + 1]} at row {row}")
        if indptr[-1] != self.nnz:
            raise ValueError(f"{name}: indptr must end at the number of stored entries "
                             f"{self.nnz} (the length of data), got {indptr[-1]}")
        return indptr

    @classmethod
    def from_group(cls, group: Any, name: str | None = None) -> SparseRowSource:
        """An HDF5 group holding a CSR matrix (datasets data, indices, indptr; attr shape)."""
        name = name or f"{group.file.filename}:{group.name}"
        attrs = group.attrs
        encoding = _text(attrs.get("encoding-type", attrs.get("h5sparse_format")))
        if encoding not in (None, "csr_matrix", "csr"):
            raise ValueError(f"{name}: a sparse matrix stored as {encoding!r}; only CSR "
                             "(row-compressed, encoding-type 'csr_matrix') streams by rows")
        missing = [k for k in ("data", "indices", "indptr") if k not in group]
        if missing:
            raise ValueError(f"{name}: a CSR group needs datasets data, indices and indptr; "
                             f"missing {missing} (found {sorted(group.keys())})")
        shape = attrs.get("shape", attrs.get("h5sparse_shape"))
        if shape is None:
            raise ValueError(f"{name}: a CSR group needs a 'shape' attribute (m, n)")
        return cls(group["data"], group["indices"], group["indptr"], shape, name, group.file)

    @classmethod
    def from_scipy(cls, X: Any, name: str = "X") -> SparseRowSource:
        """A scipy sparse matrix in memory (its rows checked as they are read; another format's
        indices checked before it becomes CSR)."""
        X = X if X.format == "csr" else check_sparse(X, name).tocsr()
        return cls(X.data, X.indices, X.indptr, X.shape, name)

    def batch_row_bytes(self, x_itemsize: int) -> float:
        """Bytes a row of a batch takes, on average: its entries as read (value, index and
        24 bytes of positions for a point selection) and as put on the device (value, two
        int32 indices; padded to a power of two: at most twice as many)."""
        as_read = self.dtype.itemsize + self.indices.dtype.itemsize + 24
        return self.nnz / self.shape[0] * (as_read + 2 * (x_itemsize + 8))

    @property
    def chunk_bytes(self) -> int:
        """The most one slice read holds besides the rows it returns."""
        return self.span * (self.dtype.itemsize + self.indices.dtype.itemsize)

    def read_rows(self, rows: Any) -> sp.csr_array:
        """The rows ``rows`` (any order, repeats allowed) as a (len(rows), n) CSR array."""
        rows = np.asarray(rows, np.int64)
        unique, inverse = np.unique(rows, return_inverse=True)  # increasing: disk locality
        try:
            X = self._read_sorted(unique)
        except OSError as err:
            raise read_error(err, self.name) from err
        if unique.size == rows.size and (unique == rows).all():
            return X
        return X[inverse]

    def read_block(self, start: int, stop: int) -> sp.csr_array:
        """Rows ``start`` to ``stop`` (one contiguous read) as a CSR array."""
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        try:
            data, indices = self._read(lo, hi)
        except OSError as err:
            raise read_error(err, self.name) from err
        return self._checked(np.arange(start, stop), data, indices, self.indptr[start:stop + 1] - lo)

    def _read(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        if hi == lo:
            return np.empty(0, self.dtype), np.empty(0, self.indices.dtype)
        return np.asarray(self.data[lo:hi]), np.asarray(self.indices[lo:hi])

    def _read_sorted(self, rows: np.ndarray) -> sp.csr_array:
        """Rows in increasing order. Groups of nearby rows holding at least ``SLICE_MIN``
        entries are read as slices (one call per group, up to ``span`` entries); the entries of
        all other rows in one call, as a point selection (one HDF5 call costs as much as
        reading a few hundred scattered entries)."""
        if rows.size and (rows[0] < 0 or rows[-1] >= self.shape[0]):
            raise IndexError(f"{self.name}: rows must be in [0, {self.shape[0]}), got "
                             f"{rows[0] if rows[0] < 0 else rows[-1]}")
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        ptr = np.zeros(rows.size + 1, np.int64)
        np.cumsum(stops - starts, out=ptr[1:])
        data = np.empty(int(ptr[-1]), self.dtype)
        indices = np.empty(int(ptr[-1]), self.indices.dtype)
        bounds = np.concatenate([[0], np.flatnonzero(starts[1:] - stops[:-1] > self.GAP) + 1,
                                 [rows.size]])
        sliced = np.zeros(rows.size, bool)
        for first, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if ptr[end] - ptr[first] < self.SLICE_MIN:
                continue
            sliced[first:end] = True
            for a, c in self._runs(starts, stops, first, end):
                lo, hi = int(starts[a]), int(stops[c - 1])
                run_data, run_indices = self._read(lo, hi)
                source = _ranges(starts[a:c] - lo, stops[a:c] - starts[a:c])
                data[ptr[a] : ptr[c]], indices[ptr[a] : ptr[c]] = (run_data[source],
                                                                   run_indices[source])
        scattered = np.flatnonzero(~sliced)
        if scattered.size:
            lengths = stops[scattered] - starts[scattered]
            source, target = _ranges(starts[scattered], lengths), _ranges(ptr[scattered], lengths)
            data[target] = _take(self.data, source)
            indices[target] = _take(self.indices, source)
        return self._checked(rows, data, indices, ptr)

    def _runs(self, starts: np.ndarray, stops: np.ndarray, a: int, b: int):
        """Rows a..b-1 cut into ``(a, c)``: rows a..c-1, at most ``span`` entries end to end
        (or one row)."""
        while a < b:
            limit = starts[a] + self.span
            c = a + 1 + int(np.searchsorted(stops[a + 1 : b], limit, side="right"))
            yield a, c
            a = c

    def _checked(
        self, rows: np.ndarray, data: np.ndarray, indices: np.ndarray, ptr: np.ndarray
    ) -> sp.csr_array:
        """The rows as a canonical CSR array, after checking the indices and the values."""
        n = self.shape[1]

        def row_of(entry: int) -> int:  # the file's row number of an entry
            return int(rows[np.searchsorted(ptr, entry, side="right") - 1])

        if (k := _first(~((indices >= 0) & (indices < n)))) is not None:
            raise ValueError(f"{self.name}: column index {indices[k]} out of range "
                             f"[0, {n}) in row {row_of(k)} (0-based)")
        if (k := _first(~np.isfinite(data))) is not None:
            raise ValueError(f"X must be finite, got {data[k]} in row {row_of(k)} (0-based), "
                             f"feature {indices[k]} of {self.name}")
        if data.dtype.itemsize < 4:  # float16: not a scipy.sparse dtype, exact in float32
            data = data.astype(np.float32)
        X = sp.csr_array((data, indices.astype(np.int32, copy=False), ptr),
                         shape=(rows.size, n))
        if not X.has_canonical_format:  # unsorted or repeated columns: sorted and summed
            X.sum_duplicates()
        return X


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated ranges ``starts[i] .. starts[i] + lengths[i] - 1`` (int64)."""
    offsets = np.zeros(lengths.size, np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)


def _take(array: Any, positions: np.ndarray) -> np.ndarray:
    """``array[positions]`` (increasing) of a 1-D array: for an h5py dataset one read of a
    point selection (h5py's own fancy indexing makes one selection per index)."""
    dataset_id = getattr(array, "id", None)
    if dataset_id is None or not hasattr(dataset_id, "get_space"):  # NumPy
        return np.asarray(array[positions])
    from h5py import h5s

    out = np.empty(positions.size, array.dtype)
    if positions.size:
        space = dataset_id.get_space()
        space.select_elements(positions.astype(np.uint64).reshape(-1, 1))
        dataset_id.read(h5s.create_simple((positions.size,)), space, out)
    return out


def read_error(err: OSError, name: str) -> OSError:
    """An error reading the file ``name`` (h5py's messages do not name it), errno kept."""
    new = OSError(f"cannot read {name}: {err}")
    new.errno = err.errno
    return new


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def save_sparse_hdf5(
    path: PathLike,
    X: Any,
    y: Any = None,
    *,
    key: str = "X",
    sample_weight: Any = None,
    mode: str = "w",
    **dataset_options: Any,
) -> None:
    """Write a sparse X (scipy or JAX sparse; checked and made canonical as :func:`jaxlogreg.fit`
    does) as a CSR group ``key`` of an HDF5 file (the layout of the module docstring, readable
    by AnnData), with ``y`` and ``sample_weight`` as datasets "y" and "sample_weight".

    ``dataset_options`` (``compression="gzip"``, ``chunks=...``) go to h5py's create_dataset.
    """
    import h5py

    X = as_csr(X, "X")
    with h5py.File(os.fspath(path), mode) as f:
        group = f.create_group(key)
        group.attrs["encoding-type"] = "csr_matrix"
        group.attrs["encoding-version"] = "0.1.0"
        group.attrs["shape"] = np.asarray(X.shape, np.int64)
        for name in ("data", "indices", "indptr"):
            group.create_dataset(name, data=getattr(X, name), **dataset_options)
        for name, values in (("y", y), ("sample_weight", sample_weight)):
            if values is not None:
                f.create_dataset(name, data=np.asarray(values))


def _first(bad: np.ndarray) -> int | None:
    """The position of the first True of ``bad``, or None."""
    return int(np.argmax(bad)) if bad.any() else None
