"""Reading a data file into a :class:`~jaxlogreg.data.datasets.Dataset`, whatever its format.

:func:`load_dataset` picks the loader by file extension; the binary formats (``.npy``/``.npz``,
HDF5, the course's cat/non-cat images) are here, CSV and LIBSVM in
:mod:`~jaxlogreg.data.text_formats`. Every loader returns ``X`` (m, n), float32 unless
``dtype="float64"`` (a NumPy array; LIBSVM: a ``scipy.sparse.csr_matrix``, never densified),
and ``y`` (m,), the labels as found in the file, or None for a file of features only with
``labels="optional"``. Errors are :class:`DataFileError` (a ``ValueError``) naming the file
(text: the 1-based line and column), what was expected and what was found; a missing file is a
``FileNotFoundError``, and only regular files are opened
(:class:`~jaxlogreg.data.files.NotRegularFileError`).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from jaxlogreg.core import checks as v
from jaxlogreg.data.datasets import Dataset, check_dtype
from jaxlogreg.data.files import open_regular, regular_file
from jaxlogreg.runtime.memory import aligned_copy

PathLike = str | os.PathLike

LABELS = ("required", "optional")


class DataFileError(ValueError):
    """A data file that cannot be read: ``path`` and, for text formats, the 1-based ``line``."""

    def __init__(self, path: PathLike, message: str, line: int | None = None):
        where = f"{os.fspath(path)}, line {line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {message}")
        self.path = os.fspath(path)
        self.line = line


# --------------------------------------------------------------------------- array checks


def _finalize(
    path: PathLike, X: Any, y: np.ndarray | None, dtype: np.dtype, x_name: str = "X"
) -> tuple[Any, np.ndarray | None]:
    """Check X (m, n) numeric and finite, y (m,) or None; cast X to ``dtype``.

    A scipy.sparse X stays sparse (CSR): only its stored entries are checked and cast.
    """
    sparse = sp.issparse(X)
    if X.ndim != 2:
        raise DataFileError(
            path, f"{x_name} must be 2-D (n_samples, n_features), got shape {X.shape}"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataFileError(path, f"{x_name} must not be empty, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataFileError(path, f"{x_name} must hold numbers, got dtype {X.dtype}")
    if y is not None:
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataFileError(
                path,
                f"labels must have shape ({X.shape[0]},) to match {x_name}'s {X.shape[0]} "
                f"samples, got shape {y.shape}",
            )
        if y.dtype.kind not in "biufUS":
            raise DataFileError(path, f"labels must be numbers or strings, got dtype {y.dtype}")
        if y.dtype.kind == "S":
            y = y.astype(str)
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            i = int(np.argmax(~np.isfinite(y)))
            raise DataFileError(path, f"labels must be finite, got {y[i]} at sample index {i}")
    with np.errstate(over="ignore"):  # float64 values beyond float32: reported below
        X = X.tocsr().astype(dtype) if sparse else aligned_copy(X, dtype)  # fits use it in place
    values = X.data if sparse else X
    bad = ~np.isfinite(values)
    if bad.any():
        if sparse:  # the sample of the k-th stored entry, and its feature
            k = int(np.argmax(bad))
            i, j, value = int(np.searchsorted(X.indptr, k, "right")) - 1, X.indices[k], X.data[k]
        else:
            i, j = np.argwhere(bad)[0]
            value = X[i, j]
        raise DataFileError(
            path,
            f"{x_name} must be finite, got {value} at sample index {i} (0-based), feature "
            f"{j} ({int(bad.sum())} non-finite value(s) in total)",
        )
    return X, y


def _check_labels(labels: Any) -> str:
    return v.check_choice(labels, "labels", LABELS)


# --------------------------------------------------------------------------- binary formats


def load_npy(X_path: PathLike, y_path: PathLike | None = None, *,
             dtype: str = "float32") -> Dataset:
    """``X`` (m, n) from one ``.npy`` file and ``y`` (m,) from ``y_path`` (None: ``y = None``).

    Never unpickles.
    """
    dtype_ = check_dtype(dtype)
    X = load_npy_array(X_path)
    if X.ndim != 2:
        raise DataFileError(X_path, f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    y = None
    if y_path is not None:
        y = load_npy_array(y_path)
        if y.shape != (X.shape[0],):
            raise DataFileError(
                y_path,
                f"labels must have shape ({X.shape[0]},) to match the {X.shape[0]} samples in "
                f"{os.fspath(X_path)}, got shape {y.shape}",
            )
    X, y = _finalize(X_path, X, y, dtype_)
    return Dataset(X=X, y=y, source=os.fspath(X_path))


def load_npy_array(path: PathLike) -> np.ndarray:
    """The array of one ``.npy`` file, read without pickle; errors name the file."""
    with open_regular(path, "data file") as f:  # np.load would leak a path's handle on errors
        try:
            arr = np.load(f, allow_pickle=False)
            if hasattr(arr, "files"):
                arr.close()
                raise DataFileError(path, "expected a single .npy array, got an .npz archive")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, DataFileError):
                raise
            raise DataFileError(path, f"not a readable .npy array without pickle ({err})") from err
    return arr


def load_npz(path: PathLike, *, x_key: str = "X", y_key: str = "y", labels: str = "required",
             dtype: str = "float32") -> Dataset:
    """``X`` (m, n) and ``y`` (m,) stored under ``x_key``/``y_key`` in an ``.npz`` file.

    With ``labels="optional"`` an archive without ``y_key`` gives ``y = None``.
    """
    dtype_ = check_dtype(dtype)
    labels = _check_labels(labels)
    with open_regular(path, "data file") as f:  # np.load would leak a path's handle on errors
        try:
            loaded = np.load(f, allow_pickle=False)
            if not hasattr(loaded, "files"):
                raise DataFileError(path, "expected an .npz archive, got a single .npy array")
            with loaded as npz:
                wanted = [(x_key, "x_key")] + [(y_key, "y_key")] * (labels == "required")
                for key, name in wanted:
                    if key not in npz.files:
                        raise DataFileError(
                            path,
                            f"{name}={key!r} not found; the archive holds keys {sorted(npz.files)}",
                        )
                X = npz[x_key]
                y = npz[y_key] if y_key in npz.files else None
        except DataFileError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise DataFileError(
                path, f"not a readable .npz archive without pickle ({err})"
            ) from err
    X, y = _finalize(path, X, y, dtype_, x_name=x_key)
    return Dataset(X=X, y=y, source=os.fspath(path))


def load_hdf5(path: PathLike, *, x_key: str = "X", y_key: str = "y", labels: str = "required",
              classes_key: str | None = None, flatten: bool = True, scale: float | None = None,
              dtype: str = "float32") -> Dataset:
    """An HDF5 file read with h5py: ``X = file[x_key]``, ``y = file[y_key]``.

    Args:
      labels: "optional" gives ``y = None`` when the file has no dataset ``y_key``.
      flatten: reshape ``X`` of shape (m, d1, d2, ...) to (m, d1 * d2 * ...) in C order
        (``x.reshape(m, -1)``, the course's flattening of (m, 64, 64, 3) images).
      scale: multiply ``X`` by this after casting (``1/255`` for 8-bit images).
      classes_key: optional dataset of class names (bytes are decoded as UTF-8).
    """
    import h5py

    dtype_ = check_dtype(dtype)
    labels = _check_labels(labels)
    regular_file(path, "data file")
    if scale is not None:
        scale = v.check_positive(scale, "scale")
    try:
        with h5py.File(path, "r") as f:
            keys = sorted(f.keys())
            classes = None
            wanted = [(x_key, "x_key")] + [(y_key, "y_key")] * (labels == "required")
            if classes_key is not None:
                wanted.append((classes_key, "classes_key"))
            for key, name in wanted:
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    raise DataFileError(
                        path, f"{name}={key!r} is not a dataset in the file; it holds keys {keys}"
                    )
            X = np.asarray(f[x_key][()])
            has_y = y_key in f and isinstance(f[y_key], h5py.Dataset)
            y = np.asarray(f[y_key][()]) if has_y else None
            if classes_key is not None:
                raw = np.asarray(f[classes_key][()]).ravel()
                classes = tuple(
                    c.decode("utf-8") if isinstance(c, bytes) else c.item() for c in raw
                )
    except DataFileError:
        raise
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as err:
        raise DataFileError(path, f"not a readable HDF5 file ({err})") from err
    if y is not None and y.ndim == 2 and 1 in y.shape:  # the course stores y as (1, m) at times
        y = y.reshape(-1)
    if X.ndim > 2 and flatten:
        X = X.reshape(X.shape[0], -1)
    if X.dtype.kind not in "biuf":
        raise DataFileError(path, f"{x_key} must hold numbers, got dtype {X.dtype}")
    if scale is not None:  # in float64; 1/255 divides by 255 exactly as the course does
        X = X.astype(np.float64)
        inverse = 1.0 / scale
        X = X / round(inverse) if inverse == round(inverse) else X * scale
    X, y = _finalize(path, X, y, dtype_, x_name=x_key)
    return Dataset(X=X, y=y, classes=classes, source=os.fspath(path))


def load_catvnoncat(directory: PathLike, *, dtype: str = "float32") -> tuple[Dataset, Dataset]:
    """The course's cat/non-cat images: ``(train, test)`` from ``{train,test}_catvnoncat.h5``.

    Course preprocessing: each (64, 64, 3) uint8 image is flattened with ``x.reshape(m, -1)``
    to 12288 features and divided by 255. ``y`` is 0 (non-cat) or 1 (cat), int32; ``classes``
    is ``("non-cat", "cat")`` from the file's ``list_classes``. Train is (209, 12288), test
    (50, 12288).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"catvnoncat directory {os.fspath(directory)} does not exist; expected it to hold "
            "train_catvnoncat.h5 and test_catvnoncat.h5"
        )
    out = []
    for split in ("train", "test"):
        path = directory / f"{split}_catvnoncat.h5"
        if not path.exists():  # anything else there: load_hdf5 names what it is
            raise FileNotFoundError(
                f"{path} not found: load_catvnoncat needs train_catvnoncat.h5 and "
                f"test_catvnoncat.h5 in {directory}"
            )
        ds = load_hdf5(
            path,
            x_key=f"{split}_set_x",
            y_key=f"{split}_set_y",
            classes_key="list_classes",
            flatten=True,
            scale=1.0 / 255.0,
            dtype=dtype,
        )
        y = np.asarray(ds.y)
        if y.dtype.kind not in "iub" or not np.isin(y, (0, 1)).all():
            raise DataFileError(path, f"{split}_set_y must hold labels 0 and 1, got {y[:5]}")
        out.append(Dataset(X=ds.X, y=y.astype(np.int32), classes=ds.classes, source=ds.source))
    return out[0], out[1]


# --------------------------------------------------------------------------- any format

FORMATS = {  # file extension -> format
    ".csv": "csv",
    ".npy": "npy",
    ".npz": "npz",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".svm": "svmlight",
    ".libsvm": "svmlight",
    ".svmlight": "svmlight",
    ".txt": "svmlight",
}


def load_dataset(path: PathLike, *, labels: str = "required", **options: Any) -> Dataset:
    """Load ``path`` with the loader for its extension; ``options`` go to that loader.

    ``.csv`` -> :func:`~jaxlogreg.data.text_formats.load_csv`; ``.npy`` -> :func:`load_npy`
    (``y_path=...`` holds the labels); ``.npz`` -> :func:`load_npz`; ``.h5``/``.hdf5`` ->
    :func:`load_hdf5`; ``.svm``/``.libsvm``/``.svmlight``/``.txt`` ->
    :func:`~jaxlogreg.data.text_formats.load_svmlight` (always labelled; a sparse CSR ``X``).
    ``labels="optional"`` accepts a file of features only (``y = None``).
    """
    # imported here: text_formats builds on this module's checks, so it imports this module
    from jaxlogreg.data.text_formats import load_csv, load_svmlight

    labels = _check_labels(labels)
    suffix = Path(path).suffix.lower()
    kind = FORMATS.get(suffix)
    if kind is None:
        raise ValueError(
            f"cannot tell the format of {os.fspath(path)} from its extension {suffix!r}; "
            f"supported extensions are {sorted(FORMATS)}"
        )
    if kind == "npy":
        y_path = options.pop("y_path", None) or None
        if y_path is None and labels == "required":
            raise DataFileError(
                path,
                "a .npy file holds features only: pass y_path=<labels .npy file> "
                "(data.y_path in configs)",
            )
        return load_npy(path, y_path, **options)
    if kind == "svmlight":
        return load_svmlight(path, **options)
    loader = {"csv": load_csv, "npz": load_npz, "hdf5": load_hdf5}[kind]
    return loader(path, labels=labels, **options)
