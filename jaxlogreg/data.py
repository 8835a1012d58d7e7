"""Data sets and loaders: synthetic data, the course's cat/non-cat images, and common file formats.

Every loader returns a :class:`Dataset` with NumPy arrays in the public layout:
``X`` of shape ``(m, n) = (n_samples, n_features)`` (float32 unless ``dtype="float64"``) and
``y`` of shape ``(m,)`` holding the labels as found in the file (integers, floats or strings);
the estimator maps them to class indices. Loading is host-side I/O, so it stays in NumPy.

Errors name the file and, for text formats, the 1-based line number and column, say what was
expected and what was found. They are :class:`DataFileError` (a ``ValueError``); a missing file
is a ``FileNotFoundError``.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaxlogreg import _validation as v
from jaxlogreg.model import Params

PathLike = str | os.PathLike

_DTYPES = ("float32", "float64")


class DataFileError(ValueError):
    """A data file that cannot be read: ``path`` and, for text formats, the 1-based ``line``."""

    def __init__(self, path: PathLike, message: str, line: int | None = None):
        where = f"{os.fspath(path)}, line {line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {message}")
        self.path = os.fspath(path)
        self.line = line


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``X`` (m, n) and labels ``y`` (m,), with optional extras.

    Attributes:
      X: features, float32 or float64, shape (n_samples, n_features).
      y: labels, shape (n_samples,): class indices, or the labels as stored in the file.
      feature_names: one name per column of ``X`` when the source has them (CSV header).
      classes: class names in index order when the source has them (catvnoncat's
        ``list_classes``, or ``range(K)`` for synthetic data).
      true_params: the parameters that generated synthetic labels (``make_classification``).
      source: the file the data came from, or a description.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...] | None = None
    classes: tuple[Any, ...] | None = None
    true_params: Params | None = None
    source: str = ""

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


# --------------------------------------------------------------------------- synthetic data


def make_classification(
    n_samples: int = 1000,
    n_features: int = 20,
    n_classes: int = 2,
    *,
    seed: int = 0,
    separation: float = 3.0,
    label_noise: float = 0.0,
    intercept: float = 0.0,
    feature_scales: Sequence[float] | np.ndarray | None = None,
    dtype: str = "float32",
) -> Dataset:
    """Synthetic data drawn from a known logistic (K = 2) or softmax (K > 2) model.

    The generative model, with ``g = numpy.random.Generator(numpy.random.PCG64(seed))``::

        X0 ~ N(0, 1)                    (m, n)     standard normal features
        w0 ~ N(0, 1), scaled so that std(X0 w0) = separation
        z  = X0 w0 + b0                 (m,) or (m, K)
        y  ~ Bernoulli(σ(z))  or  Categorical(softmax(z))
        with probability label_noise, y is replaced by a uniformly drawn class
        X  = X0 * feature_scales        (the returned features; true w = w0 / feature_scales)

    so ``Dataset.true_params`` satisfies ``z = X w + b`` on the returned ``X``. The draws use
    only NumPy's ``PCG64`` bit generator, which gives the same numbers on every machine and OS
    for a given NumPy version (NumPy keeps these streams stable across releases in practice,
    though its policy does not promise it).

    Args:
      n_samples: m >= 1.
      n_features: n >= 1.
      n_classes: K >= 2; 2 gives a binary problem with ``w`` (n,), otherwise ``w`` is (n, K).
      seed: the seed of the generator.
      separation: standard deviation of the true logits; larger is easier (less label noise
        from the model itself). 0 gives labels independent of ``X``.
      label_noise: fraction in [0, 1] of labels replaced by a uniformly random class.
      intercept: ``b0`` for binary data (shifts the class balance); for K > 2 ``b0 = 0``.
      feature_scales: optional per-feature (n,) or scalar standard deviation of ``X``,
        to exercise standardization.
      dtype: ``"float32"`` (default) or ``"float64"`` for ``X`` and ``true_params``.

    Returns:
      A :class:`Dataset` with ``y`` int32 class indices in ``[0, K)``, ``classes = (0, ..., K-1)``
      and ``true_params`` as NumPy arrays.
    """
    m = v.check_int_at_least(n_samples, "n_samples", 1)
    n = v.check_int_at_least(n_features, "n_features", 1)
    k = v.check_int_at_least(n_classes, "n_classes", 2)
    separation = v.check_positive(separation, "separation", allow_zero=True)
    label_noise = v.check_positive(label_noise, "label_noise", allow_zero=True)
    if label_noise > 1:
        raise ValueError(f"label_noise must be a fraction in [0, 1], got {label_noise!r}")
    if isinstance(intercept, bool) or not isinstance(intercept, int | float | np.number):
        raise TypeError(f"intercept must be a real number, got {intercept!r}")
    if not math.isfinite(intercept):
        raise ValueError(f"intercept must be finite, got {intercept!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    dtype_ = _check_dtype(dtype)
    scales = _check_feature_scales(feature_scales, n)

    g = np.random.Generator(np.random.PCG64(int(seed)))
    X0 = g.standard_normal((m, n))
    w_shape = (n,) if k == 2 else (n, k)
    w0 = g.standard_normal(w_shape)
    w0 *= separation / np.sqrt(np.sum(w0 * w0, axis=0))  # std(X0 w0) = ||w0|| per column
    b0 = np.asarray(float(intercept)) if k == 2 else np.zeros(k)
    z = X0 @ w0 + b0
    u = g.random(m)
    if k == 2:
        a = 0.5 * (1.0 + np.tanh(0.5 * z))  # σ(z) without overflow in exp for z << 0
        y = (u < a).astype(np.int32)
    else:
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        y = np.minimum((u[:, None] >= np.cumsum(p, axis=1)).sum(axis=1), k - 1).astype(np.int32)
    flip = g.random(m) < label_noise
    y = np.where(flip, g.integers(0, k, size=m), y).astype(np.int32)

    w_true = w0 / (scales if k == 2 else scales[:, None])
    X = (X0 * scales).astype(dtype_)
    true_params = Params(w=w_true.astype(dtype_), b=b0.astype(dtype_))
    return Dataset(
        X=X,
        y=y,
        classes=tuple(range(k)),
        true_params=true_params,
        source=f"make_classification(seed={seed}, n_classes={k})",
    )


def _check_dtype(dtype: Any) -> np.dtype:
    """``"float32"`` or ``"float64"`` (a NumPy/JAX dtype object is accepted too)."""
    name = dtype
    if dtype is not None and not isinstance(dtype, str):
        try:
            name = str(np.dtype(dtype))
        except TypeError:
            name = dtype
    return np.dtype(v.check_choice(name, "dtype", _DTYPES))


def _check_feature_scales(feature_scales: Any, n: int) -> np.ndarray:
    if feature_scales is None:
        return np.ones(n)
    scales = np.asarray(feature_scales, dtype=np.float64)
    if scales.ndim == 0:
        scales = np.full(n, float(scales))
    if scales.shape != (n,) or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError(
            f"feature_scales must be a positive finite scalar or array of shape ({n},), "
            f"got {np.asarray(feature_scales)!r}"
        )
    return scales


# --------------------------------------------------------------------------- array checks


def _finalize(
    path: PathLike, X: np.ndarray, y: np.ndarray, dtype: np.dtype, x_name: str = "X"
) -> tuple[np.ndarray, np.ndarray]:
    """Check X (m, n) numeric and finite, y (m,); cast X to ``dtype``."""
    if X.ndim != 2:
        raise DataFileError(
            path, f"{x_name} must be 2-D (n_samples, n_features), got shape {X.shape}"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataFileError(path, f"{x_name} must not be empty, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataFileError(path, f"{x_name} must hold numbers, got dtype {X.dtype}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataFileError(
            path,
            f"labels must have shape ({X.shape[0]},) to match {x_name}'s {X.shape[0]} samples, "
            f"got shape {y.shape}",
        )
    if y.dtype.kind not in "biufUS":
        raise DataFileError(path, f"labels must be numbers or strings, got dtype {y.dtype}")
    if y.dtype.kind == "S":
        y = y.astype(str)
    X = X.astype(dtype)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataFileError(
            path,
            f"{x_name} must be finite, got {X[i, j]} at sample index {i} (0-based), feature "
            f"{j} ({int(bad.sum())} non-finite value(s) in total)",
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        i = int(np.argmax(~np.isfinite(y)))
        raise DataFileError(path, f"labels must be finite, got {y[i]} at sample index {i}")
    return X, y


def _require_file(path: PathLike, what: str = "data file") -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {os.fspath(path)!s} does not exist or is not a file")
    return p


# --------------------------------------------------------------------------- binary formats


def load_npy(X_path: PathLike, y_path: PathLike, *, dtype: str = "float32") -> Dataset:
    """Load ``X`` (m, n) and ``y`` (m,) from two ``.npy`` files (never unpickles)."""
    dtype_ = _check_dtype(dtype)
    X = _load_npy_array(X_path)
    if X.ndim != 2:
        raise DataFileError(X_path, f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    y = _load_npy_array(y_path)
    if y.shape != (X.shape[0],):
        raise DataFileError(
            y_path,
            f"labels must have shape ({X.shape[0]},) to match the {X.shape[0]} samples in "
            f"{os.fspath(X_path)}, got shape {y.shape}",
        )
    X, y = _finalize(X_path, X, y, dtype_)
    return Dataset(X=X, y=y, source=os.fspath(X_path))


def _load_npy_array(path: PathLike) -> np.ndarray:
    _require_file(path)
    with open(path, "rb") as f:  # a file object: np.load would leak a path's handle on errors
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


def load_npz(
    path: PathLike, *, x_key: str = "X", y_key: str = "y", dtype: str = "float32"
) -> Dataset:
    """Load ``X`` (m, n) and ``y`` (m,) stored under ``x_key``/``y_key`` in an ``.npz`` file."""
    dtype_ = _check_dtype(dtype)
    _require_file(path)
    with open(path, "rb") as f:  # a file object: np.load would leak a path's handle on errors
        try:
            loaded = np.load(f, allow_pickle=False)
            if not hasattr(loaded, "files"):
                raise DataFileError(path, "expected an .npz archive, got a single .npy array")
            with loaded as npz:
                for key, name in ((x_key, "x_key"), (y_key, "y_key")):
                    if key not in npz.files:
                        raise DataFileError(
                            path,
                            f"{name}={key!r} not found; the archive holds keys {sorted(npz.files)}",
                        )
                X, y = npz[x_key], npz[y_key]
        except DataFileError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise DataFileError(
                path, f"not a readable .npz archive without pickle ({err})"
            ) from err
    X, y = _finalize(path, X, y, dtype_, x_name=x_key)
    return Dataset(X=X, y=y, source=os.fspath(path))


def load_hdf5(
    path: PathLike,
    *,
    x_key: str = "X",
    y_key: str = "y",
    classes_key: str | None = None,
    flatten: bool = True,
    scale: float | None = None,
    dtype: str = "float32",
) -> Dataset:
    """Load an HDF5 file with h5py: ``X = file[x_key]``, ``y = file[y_key]``.

    Args:
      flatten: reshape ``X`` of shape (m, d1, d2, ...) to (m, d1 * d2 * ...) in C order
        (``x.reshape(m, -1)``, the course's flattening of (m, 64, 64, 3) images).
      scale: multiply ``X`` by this after casting (``1/255`` for 8-bit images).
      classes_key: optional dataset of class names (bytes are decoded as UTF-8).
    """
    import h5py

    dtype_ = _check_dtype(dtype)
    _require_file(path)
    if scale is not None:
        scale = v.check_positive(scale, "scale")
    try:
        with h5py.File(path, "r") as f:
            keys = sorted(f.keys())
            classes = None
            wanted = [(x_key, "x_key"), (y_key, "y_key")]
            if classes_key is not None:
                wanted.append((classes_key, "classes_key"))
            for key, name in wanted:
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    raise DataFileError(
                        path, f"{name}={key!r} is not a dataset in the file; it holds keys {keys}"
                    )
            X = np.asarray(f[x_key][()])
            y = np.asarray(f[y_key][()])
            if classes_key is not None:
                raw = np.asarray(f[classes_key][()]).ravel()
                classes = tuple(
                    c.decode("utf-8") if isinstance(c, bytes) else c.item() for c in raw
                )
    except DataFileError:
        raise
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as err:
        raise DataFileError(path, f"not a readable HDF5 file ({err})") from err
    if y.ndim == 2 and 1 in y.shape:  # the course stores y as (1, m) in some versions
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
        if not path.is_file():
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
        if ds.y.dtype.kind not in "iub" or not np.isin(ds.y, (0, 1)).all():
            raise DataFileError(path, f"{split}_set_y must hold labels 0 and 1, got {ds.y[:5]}")
        out.append(Dataset(X=ds.X, y=ds.y.astype(np.int32), classes=ds.classes, source=ds.source))
    return out[0], out[1]


# --------------------------------------------------------------------------- text formats


def _parse_labels(path: PathLike, raw: list[str], lines: list[int]) -> np.ndarray:
    """Labels as given: int64 if all parse as integers, else float64 if all are numbers, else str."""
    for label, line in zip(raw, lines, strict=True):
        if label == "":
            raise DataFileError(path, "empty label", line)
    try:
        return np.array([int(s) for s in raw], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        y = np.array([float(s) for s in raw], dtype=np.float64)
    except ValueError:
        return np.array(raw, dtype=str)
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataFileError(path, f"label must be finite, got {raw[i]!r}", lines[i])
    return y


def load_csv(
    path: PathLike,
    label_column: str = "label",
    *,
    delimiter: str = ",",
    dtype: str = "float32",
) -> Dataset:
    """Load a CSV file with a header row: every column but ``label_column`` is a numeric feature.

    Labels are returned as given: int64 if all are integers, float64 if all are numbers,
    strings otherwise. Blank lines are skipped. ``feature_names`` holds the other headers.
    """
    dtype_ = _check_dtype(dtype)
    p = _require_file(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = None
            header_line = 0
            cells: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row or all(c.strip() == "" for c in row):
                    continue
                if header is None:
                    header, header_line = [c.strip() for c in row], reader.line_num
                    continue
                if len(row) != len(header):
                    raise DataFileError(
                        path,
                        f"expected {len(header)} columns as in the header (line {header_line}), "
                        f"got {len(row)}",
                        reader.line_num,
                    )
                cells.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise DataFileError(path, f"not a UTF-8 text file ({err})") from err
    except csv.Error as err:
        raise DataFileError(path, f"malformed CSV ({err})") from err
    if header is None:
        raise DataFileError(path, "the file is empty: expected a header row and data rows")
    if label_column not in header:
        raise DataFileError(
            path,
            f"label_column={label_column!r} not found; the header has columns {header}",
            header_line,
        )
    if header.count(label_column) > 1:
        raise DataFileError(path, f"label column {label_column!r} appears twice", header_line)
    if not cells:
        raise DataFileError(path, f"no data rows after the header (line {header_line})")
    if len(header) < 2:
        raise DataFileError(path, "no feature columns besides the label column", header_line)
    li = header.index(label_column)
    feature_names = tuple(h for i, h in enumerate(header) if i != li)
    y = _parse_labels(path, [row[li].strip() for row in cells], lines)
    feats = [row[:li] + row[li + 1 :] for row in cells]
    X = _parse_numbers(path, feats, lines, feature_names)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataFileError(
            path,
            f"column {feature_names[j]!r}: features must be finite, got {feats[i][j].strip()!r}",
            lines[i],
        )
    X, y = _finalize(path, X, y, dtype_)
    return Dataset(X=X, y=y, feature_names=feature_names, source=os.fspath(path))


def _parse_numbers(
    path: PathLike, cells: list[list[str]], lines: list[int], names: tuple[str, ...]
) -> np.ndarray:
    """Strings (m, n) to float64; on failure, report the first cell Python cannot parse."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty((len(cells), len(names)), dtype=np.float64)
    for i, (row, line) in enumerate(zip(cells, lines, strict=True)):
        for j, cell in enumerate(row):
            try:
                out[i, j] = float(cell)
            except ValueError:
                what = "an empty value" if cell.strip() == "" else repr(cell)
                raise DataFileError(
                    path, f"column {names[j]!r}: expected a number, got {what}", line
                ) from None
    return out


def load_svmlight(
    path: PathLike, n_features: int | None = None, *, dtype: str = "float32"
) -> Dataset:
    """Load a LIBSVM / svmlight text file into a dense ``X`` (m, n_features).

    Each line is ``label index:value index:value ...`` with 1-based increasing-or-not but
    unique integer indices; text after ``#`` is a comment; blank lines are skipped. Missing
    entries are 0. ``n_features`` defaults to the largest index found.
    """
    dtype_ = _check_dtype(dtype)
    if n_features is not None:
        n_features = v.check_int_at_least(n_features, "n_features", 1)
    p = _require_file(path)
    labels: list[str] = []
    lines: list[int] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    try:
        with open(p, encoding="utf-8") as f:
            for line_no, text in enumerate(f, start=1):
                text = text.split("#", 1)[0].strip()
                if not text:
                    continue
                tokens = text.split()
                label = tokens[0]
                if ":" in label:
                    raise DataFileError(
                        path, f"expected a label first, got feature {label!r}", line_no
                    )
                row = len(labels)
                labels.append(label)
                lines.append(line_no)
                seen: set[int] = set()
                for tok in tokens[1:]:
                    idx_s, sep, val_s = tok.partition(":")
                    try:
                        if not sep:
                            raise ValueError
                        idx = int(idx_s)
                        val = float(val_s)
                    except ValueError:
                        raise DataFileError(
                            path, f"malformed feature {tok!r}: expected index:value", line_no
                        ) from None
                    if idx < 1:
                        raise DataFileError(
                            path,
                            f"feature index must be >= 1 (1-based), got {idx} in {tok!r}",
                            line_no,
                        )
                    if idx in seen:
                        raise DataFileError(path, f"feature index {idx} appears twice", line_no)
                    if not math.isfinite(val):
                        raise DataFileError(
                            path, f"feature {idx} must be finite, got {val_s!r}", line_no
                        )
                    if n_features is not None and idx > n_features:
                        raise DataFileError(
                            path, f"feature index {idx} exceeds n_features={n_features}", line_no
                        )
                    seen.add(idx)
                    rows.append(row)
                    cols.append(idx - 1)
                    vals.append(val)
    except UnicodeDecodeError as err:
        raise DataFileError(path, f"not a UTF-8 text file ({err})") from err
    if not labels:
        raise DataFileError(path, "the file is empty: expected lines 'label index:value ...'")
    n = n_features if n_features is not None else (max(cols) + 1 if cols else 0)
    if n == 0:
        raise DataFileError(path, "no features found; pass n_features to set the width")
    y = _parse_labels(path, labels, lines)
    if y.dtype.kind == "U":
        i = int(np.argmax([not _is_number(s) for s in labels]))
        raise DataFileError(path, f"label must be a number, got {labels[i]!r}", lines[i])
    X = np.zeros((len(labels), n), dtype=np.float64)
    X[np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)] = vals
    X, y = _finalize(path, X, y, dtype_)
    return Dataset(X=X, y=y, source=os.fspath(path))


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


_LOADERS = {
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


def load_dataset(path: PathLike, **options: Any) -> Dataset:
    """Load ``path`` with the loader for its extension; ``options`` go to that loader.

    ``.csv`` -> :func:`load_csv`; ``.npy`` -> :func:`load_npy` (needs ``y_path=...``);
    ``.npz`` -> :func:`load_npz`; ``.h5``/``.hdf5`` -> :func:`load_hdf5`;
    ``.svm``/``.libsvm``/``.svmlight``/``.txt`` -> :func:`load_svmlight`.
    """
    suffix = Path(path).suffix.lower()
    kind = _LOADERS.get(suffix)
    if kind is None:
        raise ValueError(
            f"cannot tell the format of {os.fspath(path)} from its extension {suffix!r}; "
            f"supported extensions are {sorted(_LOADERS)}"
        )
    if kind == "npy":
        if "y_path" not in options:
            raise ValueError(
                f"{os.fspath(path)} is a .npy file of features: pass y_path=<labels .npy file>"
            )
        y_path = options.pop("y_path")
        return load_npy(path, y_path, **options)
    loader = {"csv": load_csv, "npz": load_npz, "hdf5": load_hdf5, "svmlight": load_svmlight}
    return loader[kind](path, **options)


# --------------------------------------------------------------------------- splitting, scaling


def train_test_split(
    X: Any, y: Any, test_size: float = 0.2, *, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic shuffled split: ``X_train, X_test, y_train, y_test``.

    Args:
      X: (m, n) features; y: (m,) labels of any type.
      test_size: a fraction in (0, 1) (the test set gets ``ceil(test_size * m)`` samples) or a
        number of test samples in [1, m - 1].
      seed: seed of the ``numpy.random.Generator(PCG64)`` that shuffles.
      stratify: keep each class's share in both parts (largest-remainder allocation), so a
        class with at least 2 samples appears in both parts where the sizes allow.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D with shape (n_samples, n_features), got shape {X.shape}")
    m = X.shape[0]
    if y.ndim != 1 or y.shape[0] != m:
        raise ValueError(f"y must have shape ({m},) to match X's {m} samples, got shape {y.shape}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n_test = _n_test(test_size, m)
    g = np.random.Generator(np.random.PCG64(int(seed)))
    if stratify:
        classes, y_idx = np.unique(y, return_inverse=True)
        counts = np.bincount(y_idx, minlength=len(classes))
        quota = counts * (n_test / m)
        take = np.floor(quota).astype(np.int64)
        # hand out the remaining test slots by largest fractional part, never emptying a
        # class's training share when another class can give instead
        order = np.lexsort((-counts, -(quota - take)))  # largest remainder, then largest class
        deficit = n_test - int(take.sum())
        for keep in (1, 0):  # first keep >= 1 training sample per class, then relax
            while deficit > 0:
                eligible = [c for c in order if take[c] < counts[c] - keep][:deficit]
                if not eligible:
                    break
                take[eligible] += 1
                deficit -= len(eligible)
        test_parts = []
        for c in range(len(classes)):
            members = np.flatnonzero(y_idx == c)
            test_parts.append(g.permutation(members)[: take[c]])
        test_idx = g.permutation(np.concatenate(test_parts))
    else:
        test_idx = g.permutation(m)[:n_test]
    is_test = np.zeros(m, dtype=bool)
    is_test[test_idx] = True
    train_idx = g.permutation(np.flatnonzero(~is_test))
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


def _n_test(test_size: Any, m: int) -> int:
    if m < 2:
        raise ValueError(f"train_test_split needs at least 2 samples, got {m}")
    if isinstance(test_size, bool):
        raise TypeError(f"test_size must be a fraction in (0, 1) or an integer, got {test_size!r}")
    if isinstance(test_size, int | np.integer):
        if not 1 <= test_size <= m - 1:
            raise ValueError(
                f"test_size as a count must be in [1, {m - 1}] for {m} samples, got {test_size}"
            )
        return int(test_size)
    if isinstance(test_size, float) and 0 < test_size < 1:
        n_test = math.ceil(test_size * m)
        if n_test > m - 1:
            raise ValueError(
                f"test_size={test_size} leaves no training samples out of {m}; use a smaller value"
            )
        return n_test
    raise ValueError(f"test_size must be a fraction in (0, 1) or an integer, got {test_size!r}")


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature ``(X - mean) / scale``, with statistics from the training split only.

    ``scale`` is the population standard deviation (ddof=0), computed in float64; features
    with (near) zero variance keep ``scale = 1`` so they are centred but not divided by ~0.
    Build it with :meth:`fit`; store it in a model file with :meth:`to_dict`.
    """

    mean: np.ndarray  # (n,) float64
    scale: np.ndarray  # (n,) float64, > 0

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        if mean.ndim != 1 or mean.shape[0] == 0 or scale.shape != mean.shape:
            raise ValueError(
                "Standardizer mean and scale must be non-empty 1-D arrays of the same shape "
                f"(n_features,), got mean {mean.shape} and scale {scale.shape}"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("Standardizer mean must be finite and scale finite and > 0")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, X: Any) -> Standardizer:
        """Statistics of the training features ``X`` (m, n)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(
                f"X must be 2-D (n_samples, n_features) and non-empty, got shape {X.shape}"
            )
        v.check_finite(X, "X")
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale = np.where(std <= tiny, 1.0, std)
        return cls(mean=mean, scale=scale)

    def _check(self, X: Any) -> None:
        if getattr(X, "ndim", None) != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X must have shape (n_samples, {self.n_features}) to match the fitted "
                f"Standardizer, got shape {getattr(X, 'shape', None)}"
            )

    def transform(self, X: Any) -> Any:
        """``(X - mean) / scale`` in X's float dtype (NumPy or JAX array in, same kind out)."""
        X = X if hasattr(X, "ndim") else np.asarray(X, dtype=np.float32)
        self._check(X)
        dtype = X.dtype if np.dtype(X.dtype).kind == "f" else np.dtype(np.float32)
        X = X.astype(dtype)
        return (X - self.mean.astype(dtype)[None, :]) / self.scale.astype(dtype)[None, :]

    def inverse_transform(self, X: Any) -> Any:
        """``X * scale + mean``, undoing :meth:`transform`."""
        X = X if hasattr(X, "ndim") else np.asarray(X, dtype=np.float32)
        self._check(X)
        dtype = X.dtype if np.dtype(X.dtype).kind == "f" else np.dtype(np.float32)
        return (
            X.astype(dtype) * self.scale.astype(dtype)[None, :] + self.mean.astype(dtype)[None, :]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (Python floats round-trip float64 exactly)."""
        return {
            "kind": "standardizer",
            "mean": [float(x) for x in self.mean],
            "scale": [float(x) for x in self.scale],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Standardizer:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming what is missing or wrong."""
        if not isinstance(d, Mapping):
            raise TypeError(f"standardizer must be a dict, got {type(d).__name__}")
        missing = [k for k in ("mean", "scale") if k not in d]
        if missing:
            raise ValueError(f"standardizer dict is missing key(s) {missing}, got {sorted(d)}")
        if d.get("kind", "standardizer") != "standardizer":
            raise ValueError(f"standardizer kind must be 'standardizer', got {d['kind']!r}")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"standardizer mean and scale must be lists of numbers ({err})")
        return cls(mean=mean, scale=scale)
