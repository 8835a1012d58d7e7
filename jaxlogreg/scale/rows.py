"""Rows of an (m, n) array on disk, for streaming: a NumPy memmap, an h5py dataset, or a sparse
CSR matrix stored as an HDF5 group.

:func:`open_rows` opens X from a path (.npy memory-mapped, an HDF5 dataset or CSR group) or an
on-disk array; :class:`RowSource` reads a dense batch's rows (whole HDF5 chunks at a time,
HDF5's unit of I/O) or a contiguous block; :class:`SparseRowSource` reads the rows of a CSR
matrix as scipy CSR arrays; :func:`load_vector` reads y or the sample weights into memory;
:func:`check_finite_rows` refuses NaN/inf naming the row of the file; and
:func:`training_layout` turns rows read into the training layout, refusing values that are not
finite in the file or once cast.

The sparse layout and its reader are in :mod:`jaxlogreg.scale.sparse_rows`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import scipy.sparse as sp

from jaxlogreg.data.files import regular_file
from jaxlogreg.data.loaders import DataFileError, load_npy_array
from jaxlogreg.scale.sparse_rows import PathLike, SparseRowSource, read_error
from jaxlogreg.training import host_layout

_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


class RowSource:
    """Read rows of an (m, n) array kept on disk: a NumPy memmap or an h5py dataset."""

    def __init__(self, array: Any, name: str = "X"):
        shape = getattr(array, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
            raise ValueError(
                f"{name} must be a non-empty 2-D array (m, n) on disk, got shape {shape}"
            )
        dtype = np.dtype(array.dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"{name} must hold floating-point numbers, got dtype {dtype}")
        self.array = array
        self.name = name
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dtype
        chunks = getattr(array, "chunks", None)  # h5py: None for contiguous datasets
        self.chunk_rows = int(chunks[0]) if chunks else None
        self.file = getattr(array, "file", None)  # the open h5py file, for y given by name

    @property
    def row_bytes(self) -> int:
        return self.shape[1] * self.dtype.itemsize

    def batch_row_bytes(self, x_itemsize: int) -> float:
        """Bytes a row of a batch takes as read (file dtype) and as cast (x dtype)."""
        return self.shape[1] * (self.dtype.itemsize + x_itemsize)

    @property
    def chunk_bytes(self) -> int:
        return 0 if self.chunk_rows is None else self.chunk_rows * self.row_bytes

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (increasing, unique) as an in-memory (len(rows), n) array."""
        try:
            return self._read_rows(rows)
        except OSError as err:
            raise read_error(err, self.name) from err

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        if self.chunk_rows is None:
            return np.asarray(self.array[rows])
        out = np.empty((rows.size, self.shape[1]), self.dtype)
        chunk_ids = rows // self.chunk_rows
        bounds = np.flatnonzero(np.diff(chunk_ids)) + 1
        for part in np.split(np.arange(rows.size), bounds):
            start = int(chunk_ids[part[0]]) * self.chunk_rows
            stop = min(start + self.chunk_rows, self.shape[0])
            block = self.array[start:stop]  # one whole chunk: HDF5's unit of I/O
            out[part] = block[rows[part] - start]
        return out

    def read_block(self, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(self.array[start:stop])
        except OSError as err:
            raise read_error(err, self.name) from err


def _is_hdf5_group(obj: Any) -> bool:
    h5py = sys.modules.get("h5py")  # not imported: obj cannot be an h5py group
    return h5py is not None and isinstance(obj, h5py.Group)


def open_rows(source: Any, key: str = "X") -> tuple[RowSource | SparseRowSource, Any]:
    """The rows of X: a path (.npy memory-mapped; .h5/.hdf5: dataset or CSR group ``key``), an
    on-disk array (memmap, h5py dataset), a CSR group (h5py), or a scipy sparse matrix.

    Returns ``(rows, handle)``; ``handle`` is the open h5py file to close, or None. A file
    that cannot be opened raises DataFileError (a ValueError), one that cannot be read an
    OSError; both name it.
    """
    if isinstance(source, str | os.PathLike):
        path = _existing(source, "data")
        if path.endswith(".npy"):
            return RowSource(_memory_mapped(path), path), None
        if path.endswith(_HDF5_SUFFIXES):
            return _open_hdf5_rows(path, key)
        suffixes = ", ".join(_HDF5_SUFFIXES)
        raise ValueError(f"{path}: expected a .npy file or an HDF5 file ({suffixes})")
    if _is_hdf5_group(source):
        return SparseRowSource.from_group(source), None
    if sp.issparse(source):
        return SparseRowSource.from_scipy(source), None
    return RowSource(source), None


def _memory_mapped(path: str) -> np.ndarray:
    """The array of a .npy file, memory-mapped (never unpickled)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # a short file: "mmap length is greater..."
        raise DataFileError(path, f"not a readable .npy array ({err})") from err


def _open_hdf5_rows(path: str, key: str) -> tuple[RowSource | SparseRowSource, Any]:
    """The dataset or CSR group ``key`` of an HDF5 file, and the open file."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:  # truncated or not HDF5; h5py's message does not name the file
        raise DataFileError(path, f"not a readable HDF5 file ({err})") from err
    name = f"{path}:{key}"
    try:
        if key not in handle:
            raise KeyError(f"{path}: no dataset {key!r}; datasets: {sorted(handle.keys())}")
        try:
            stored = handle[key]
        except OSError as err:  # a damaged object header
            raise read_error(err, name) from err
        if _is_hdf5_group(stored):
            return SparseRowSource.from_group(stored, name), handle
        return RowSource(stored, name), handle
    except BaseException:
        handle.close()
        raise


def load_vector(source: Any, handle: Any, name: str) -> np.ndarray | None:
    """y or sample_weight: an array, a .npy path, a dataset name of the HDF5 file, or None."""
    if source is None:
        return None
    if isinstance(source, str) and handle is not None and source in handle:
        try:
            return np.asarray(handle[source])
        except OSError as err:
            raise read_error(err, f"{handle.filename}:{source}") from err
    if isinstance(source, str | os.PathLike):
        return load_npy_array(_existing(source, name))
    return np.asarray(source)


def _existing(source: PathLike, what: str) -> str:
    """The path as a string, once it names a regular file: else FileNotFoundError naming it
    and what it should hold, or NotRegularFileError (a FIFO, a directory)."""
    path = os.fspath(source)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such {what} file")
    return regular_file(path, f"{what} file")


def check_finite_rows(X: np.ndarray, first_row: Any, name: str) -> None:
    """``X must be finite``, naming the first bad row of the file (as ``fit`` would refuse).

    ``first_row``: the file's row number of X's first row, or an array of X's row numbers."""
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"X must be finite, got {X[i, j]} in row {_row(first_row, i)} (0-based), feature {j} "
            f"of {name}"
        )


def training_layout(X: np.ndarray, x_dtype: Any, first_row: Any, name: str) -> np.ndarray:
    """Rows X (B, n) read from a file as ``Xt`` (n, B) in ``x_dtype``, laid out by
    :func:`jaxlogreg.training.host_layout.transposed` (one pass that also checks the values);
    a value that is NaN or inf in the file, or that overflows ``x_dtype``, is an error naming
    its row (``first_row`` as in :func:`check_finite_rows`)."""
    Xt, finite = host_layout.transposed(X, x_dtype)
    if not finite:
        check_finite_rows(X, first_row, name)  # NaN or inf in the file
        j, i = np.argwhere(~np.isfinite(Xt))[0]  # else a value the cast overflowed
        raise ValueError(
            f"X must be finite in {np.dtype(x_dtype)}, but {X[i, j]} in row "
            f"{_row(first_row, i)} (0-based), feature {j} of {name} overflows it; use "
            "dtype='float64'"
        )
    return Xt


def _row(first_row: Any, i: int) -> int:
    return int(first_row[i]) if isinstance(first_row, np.ndarray) else first_row + int(i)
