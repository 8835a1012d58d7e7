"""Parsing the text data formats, CSV and LIBSVM/svmlight, into a Dataset.

:func:`load_csv` and :func:`load_svmlight` keep the contract of every loader, set out in
:mod:`~jaxlogreg.data.loaders` (``X`` of shape (m, n), float32 unless ``dtype="float64"``;
``y`` of shape (m,) as found in the file), and finish with its checks. CSV gives a dense
NumPy ``X``; LIBSVM a sparse ``scipy.sparse.csr_matrix``, never densified. Their errors are
:class:`~jaxlogreg.data.loaders.DataFileError` naming the file, the 1-based line and, for
CSV, the column, with what was expected and what was found; a missing file is a
``FileNotFoundError``, a FIFO, directory or device a
:class:`~jaxlogreg.data.files.NotRegularFileError`.
:func:`~jaxlogreg.data.loaders.load_dataset` picks them by extension.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file

from jaxlogreg.core import checks as v
from jaxlogreg.core.sparse import MAX_INDEX
from jaxlogreg.data.datasets import Dataset, check_dtype
from jaxlogreg.data.files import open_regular, regular_file
from jaxlogreg.data.loaders import DataFileError, PathLike, _check_labels, _finalize

MAX_FEATURES = MAX_INDEX
"""The widest LIBSVM file :func:`load_svmlight` reads: scikit-learn's reader and the sparse
products on the device index features with 32-bit integers."""


# --------------------------------------------------------------------------- CSV


def load_csv(path: PathLike, label_column: str = "label", *, labels: str = "required",
             delimiter: str = ",", dtype: str = "float32") -> Dataset:
    """A CSV file: every column but ``label_column`` is a numeric feature.

    The first non-blank row is a header of column names unless every cell in it is a number.
    ``labels="required"`` needs a header with ``label_column``. ``labels="optional"`` reads
    features only (``y = None``): ``label_column``, when present, is dropped unread, and a file
    without a header has features in every column. Labels are returned as given: int64 if all
    are integers, float64 if all are numbers, strings otherwise. Blank lines are skipped.
    ``feature_names`` holds the other headers (None without a header); header names must be
    unique (new data are matched to a model's features by name).
    """
    dtype_ = check_dtype(dtype)
    labels = _check_labels(labels)
    rows, lines = _read_rows(path, delimiter)
    if not rows:
        raise DataFileError(path, "the file is empty: expected a header row and data rows")
    first, first_line = [c.strip() for c in rows[0]], lines[0]
    header = None if all(_is_number(c) for c in first) else first
    if header is None and labels == "required":
        raise DataFileError(
            path,
            "the first row holds numbers, not column names; a CSV needs a header row naming "
            f"the label column {label_column!r}",
            first_line,
        )
    what = "the first row" if header is None else "the header"
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(first):
            raise DataFileError(
                path,
                f"expected {len(first)} columns as in {what} (line {first_line}), got {len(row)}",
                line,
            )
    li = None
    if header is not None:
        rows, lines = rows[1:], lines[1:]
        if label_column in header:
            if header.count(label_column) > 1:
                raise DataFileError(
                    path, f"label column {label_column!r} appears twice", first_line
                )
            li = header.index(label_column)
        elif labels == "required":
            raise DataFileError(
                path,
                f"label_column={label_column!r} not found; the header has columns {header}",
                first_line,
            )
        _check_unique(path, header, first_line)
        if not rows:
            raise DataFileError(path, f"no data rows after the header (line {first_line})")
        if li is not None and len(header) < 2:
            raise DataFileError(path, "no feature columns besides the label column", first_line)
    y = None
    if li is not None and labels == "required":
        y = _parse_labels(path, [row[li].strip() for row in rows], lines)
    cols = [j for j in range(len(first)) if j != li]
    names = None if header is None else tuple(header[j] for j in cols)
    where = [str(j + 1) for j in cols] if names is None else [repr(n) for n in names]
    feats = [[row[j] for j in cols] for row in rows]
    X, y = _finalize(path, _parse_numbers(path, feats, lines, where), y, dtype_)
    return Dataset(X=X, y=y, feature_names=names, source=os.fspath(path))


def _check_unique(path: PathLike, header: list[str], line: int) -> None:
    """Column names are unique: a model matches the columns of new data by name."""
    first: dict[str, int] = {}
    for j, name in enumerate(header, start=1):
        if name in first:
            raise DataFileError(
                path, f"column name {name!r} appears twice (columns {first[name]} and {j}); "
                "columns are matched by name, so names must be unique", line
            )
        first[name] = j


def _read_rows(path: PathLike, delimiter: str) -> tuple[list[list[str]], list[int]]:
    """The non-blank rows of a CSV file and their 1-based line numbers."""
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with open_regular(path, "data file", "r", newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                if row and any(c.strip() for c in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise DataFileError(path, f"not a UTF-8 text file ({err})") from err
    except csv.Error as err:
        raise DataFileError(path, f"malformed CSV ({err})") from err
    return rows, lines


def _parse_labels(path: PathLike, raw: list[str], lines: list[int]) -> np.ndarray:
    """Labels as given: int64 if all are integers, else float64 if all are numbers, else str."""
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


def _parse_numbers(
    path: PathLike, cells: list[list[str]], lines: list[int], columns: list[str]
) -> np.ndarray:
    """Strings (m, n) to finite float64, else an error at the first bad cell's line.

    ``columns`` names each column in messages (a quoted header or a 1-based number).
    """
    try:
        out = np.array(cells, dtype=np.float64)
        if np.isfinite(out).all():
            return out
    except ValueError:  # a cell NumPy cannot parse: a mistake, or Python's syntax ("1_000")
        pass
    out = np.empty((len(cells), len(columns)), dtype=np.float64)
    for i, (row, line) in enumerate(zip(cells, lines, strict=True)):
        for j, cell in enumerate(row):
            if not _is_number(cell):
                what = "an empty value" if cell.strip() == "" else repr(cell)
                raise DataFileError(
                    path, f"column {columns[j]}: expected a number, got {what}", line
                )
            out[i, j] = float(cell)
            if not math.isfinite(out[i, j]):
                raise DataFileError(
                    path,
                    f"column {columns[j]}: features must be finite, got {cell.strip()!r}",
                    line,
                )
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- LIBSVM


def load_svmlight(path: PathLike, n_features: int | None = None, *,
                  dtype: str = "float32") -> Dataset:
    """A LIBSVM / svmlight text file, read by scikit-learn's ``load_svmlight_file``, as a
    sparse ``X``: a ``scipy.sparse.csr_matrix`` (m, n_features) of ``dtype``, never densified.

    Each line is ``label index:value index:value ...`` with 1-based, strictly increasing
    indices; text after ``#`` is a comment; blank lines are skipped; a leading ``qid:`` is
    ignored. Missing entries are 0 and take no memory, so ``X`` costs O(non-zeros) whatever
    its width. ``n_features`` defaults to the largest index found; both are at most
    :data:`MAX_FEATURES`. Labels are int64 when all are whole numbers, else float64.
    """
    dtype_ = check_dtype(dtype)
    if n_features is not None:
        n_features = v.check_int_at_least(n_features, "n_features", 1, MAX_FEATURES)
    regular_file(path, "data file")
    try:
        X, y = load_svmlight_file(
            os.fspath(path), n_features=n_features, dtype=np.float64, zero_based=False
        )
    except (ValueError, OverflowError) as err:  # name the line scikit-learn does not name
        _scan_svmlight(path, n_features)
        raise DataFileError(path, f"not a readable LIBSVM file ({err})") from err
    if not (np.all(np.isfinite(X.data)) and np.all(np.isfinite(y))):
        _scan_svmlight(path, n_features)  # raises at the line of the first NaN or inf
    m = X.shape[0]
    n = n_features or (int(X.indices.max()) + 1 if X.nnz else 0)  # not scikit-learn's 1
    if m == 0:
        raise DataFileError(path, "the file is empty: expected lines 'label index:value ...'")
    if n == 0:
        raise DataFileError(path, "no features found; pass n_features to set the width")
    if y.size and np.all(y == np.round(y)) and np.abs(y).max() < 2**53:
        y = y.astype(np.int64)
    # scikit-learn's indices are int64; scipy picks int32 where the shape allows (half the memory)
    X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(m, n))
    X, y = _finalize(path, X, y, dtype_)
    return Dataset(X=X, y=y, source=os.fspath(path))


def _scan_svmlight(path: PathLike, n_features: int | None) -> None:
    """Raise :class:`DataFileError` at the first line ``load_svmlight_file`` rejects, or that
    holds NaN or inf; return quietly when every line is good."""
    with open_regular(path, "data file") as f:
        for line_no, raw in enumerate(f, start=1):
            tokens = raw.split(b"#", 1)[0].decode("utf-8", "replace").split()
            if tokens:
                message = _svmlight_line_error(tokens, n_features)
                if message is not None:
                    raise DataFileError(path, message, line_no)


def _svmlight_line_error(tokens: list[str], n_features: int | None) -> str | None:
    """What is wrong with one line ``label index:value ...`` (None if nothing)."""
    label, features = tokens[0], tokens[1:]
    if ":" in label:
        return f"expected a label first, got feature {label!r}"
    if not _is_number(label):
        return f"label must be a number, got {label!r}"
    if not math.isfinite(float(label)):
        return f"label must be finite, got {label!r}"
    if features and features[0].startswith("qid:"):
        features = features[1:]
    previous = 0
    for tok in features:
        idx_s, sep, val_s = tok.partition(":")
        try:
            if not sep:
                raise ValueError
            idx, val = int(idx_s), float(val_s)
        except ValueError:
            return f"malformed feature {tok!r}: expected index:value"
        if idx < 1:
            return f"feature index must be >= 1 (1-based), got {idx} in {tok!r}"
        if idx == previous:
            return f"feature index {idx} appears twice"
        if idx < previous:
            return f"feature indices must increase along a line, got {idx} after {previous}"
        if not math.isfinite(val):
            return f"feature {idx} must be finite, got {val_s!r}"
        if n_features is not None and idx > n_features:
            return f"feature index {idx} exceeds n_features={n_features}"
        if idx > MAX_FEATURES:
            return (f"feature index {idx} exceeds {MAX_FEATURES:,}, the most features a "
                    "LIBSVM file may have (32-bit feature indices)")
        previous = idx
    return None
