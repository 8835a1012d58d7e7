"""Tests for jaxlogreg.data.loaders and .text_formats: every file format, load_dataset's
dispatch by extension, and the loaders' error messages."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from jaxlogreg.data import (
    DataFileError,
    load_catvnoncat,
    load_csv,
    load_dataset,
    load_hdf5,
    load_npy,
    load_npz,
    load_svmlight,
    text_formats,
)

# --------------------------------------------------------------------------- catvnoncat


def _write_fake_catvnoncat(directory: Path, m_train: int = 6, m_test: int = 3) -> None:
    g = np.random.default_rng(0)
    for split, m in (("train", m_train), ("test", m_test)):
        with h5py.File(directory / f"{split}_catvnoncat.h5", "w") as f:
            f[f"{split}_set_x"] = g.integers(0, 256, size=(m, 4, 4, 3), dtype=np.uint8)
            f[f"{split}_set_y"] = g.integers(0, 2, size=m).astype(np.int64)
            f["list_classes"] = np.array([b"non-cat", b"cat"])


def test_load_catvnoncat_fake_files(tmp_path):
    _write_fake_catvnoncat(tmp_path)
    train, test = load_catvnoncat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5") as f:
        raw_x, raw_y = f["train_set_x"][()], f["train_set_y"][()]
    assert train.X.shape == (6, 48) and test.X.shape == (3, 48)
    assert train.X.dtype == np.float32 and train.y.dtype == np.int32
    # course preprocessing: flatten in C order, one row per image, then divide by 255
    np.testing.assert_array_equal(train.X, (raw_x.reshape(6, -1) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(train.y, raw_y)
    assert train.classes == ("non-cat", "cat")


def test_load_catvnoncat_real_data(catvnoncat_dir, catvnoncat):
    """Against conftest's independent h5py loading (which also checks 17 31 56 22 33)."""
    train, test = load_catvnoncat(catvnoncat_dir)
    assert train.X.shape == (209, 12288) and test.X.shape == (50, 12288)
    np.testing.assert_array_equal(train.X, catvnoncat.X_train.astype(np.float32))
    np.testing.assert_array_equal(test.X, catvnoncat.X_test.astype(np.float32))
    np.testing.assert_array_equal(train.y, catvnoncat.y_train)
    np.testing.assert_array_equal(test.y, catvnoncat.y_test)
    np.testing.assert_allclose(train.X[0, :5] * 255, [17, 31, 56, 22, 33], rtol=1e-6)
    assert train.classes == test.classes == ("non-cat", "cat")
    assert load_catvnoncat(catvnoncat_dir, dtype="float64")[0].X.dtype == np.float64


def test_load_catvnoncat_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_catvnoncat(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="train_catvnoncat.h5 not found"):
        load_catvnoncat(tmp_path)
    _write_fake_catvnoncat(tmp_path)
    (tmp_path / "test_catvnoncat.h5").write_bytes(b"this is not hdf5")
    with pytest.raises(DataFileError, match=r"test_catvnoncat\.h5: not a readable HDF5 file"):
        load_catvnoncat(tmp_path)
    with h5py.File(tmp_path / "test_catvnoncat.h5", "w") as f:
        f["wrong_name"] = np.zeros(3)
    with pytest.raises(DataFileError, match=r"x_key='test_set_x' .* holds keys \['wrong_name'\]"):
        load_catvnoncat(tmp_path)


def test_load_hdf5_general(tmp_path):
    path = tmp_path / "d.h5"
    X = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    with h5py.File(path, "w") as f:
        f["X"] = X
        f["y"] = np.array([[1, 0]])  # (1, m) as some course files store it
    ds = load_hdf5(path, scale=0.5, dtype="float64")
    np.testing.assert_array_equal(ds.X, X.reshape(2, 12) * 0.5)
    np.testing.assert_array_equal(ds.y, [1, 0])
    with pytest.raises(DataFileError, match=r"X must be 2-D"):
        load_hdf5(path, flatten=False)


def test_load_hdf5_without_labels(tmp_path):
    """D10: labels="optional" reads a features-only file; "required" names the missing key."""
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["X"] = np.ones((3, 2))
    ds = load_hdf5(path, labels="optional")
    assert ds.y is None and ds.X.shape == (3, 2)
    with pytest.raises(
        DataFileError,
        match=re.escape(f"{path}: y_key='y' is not a dataset in the file; it holds keys ['X']"),
    ):
        load_hdf5(path)


# --------------------------------------------------------------------------- CSV


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_load_csv_values_names_and_labels(tmp_path):
    path = _write(
        tmp_path / "d.csv",
        'a,label,b\n1.5,cat,2\n\n-3,dog,4e-1\n"5",cat,6\n',
    )
    ds = load_csv(path)
    np.testing.assert_array_equal(ds.X, np.array([[1.5, 2], [-3, 0.4], [5, 6]], np.float32))
    assert ds.X.dtype == np.float32
    assert ds.y.tolist() == ["cat", "dog", "cat"]
    assert ds.feature_names == ("a", "b")
    ds = load_csv(_write(tmp_path / "i.csv", "x,y\n1,0\n2,1\n"), label_column="y", dtype="float64")
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1] and ds.X.dtype == np.float64
    ds = load_csv(_write(tmp_path / "f.csv", "x;label\n1;0.5\n2;1\n"), delimiter=";")
    assert ds.y.dtype == np.float64 and ds.y.tolist() == [0.5, 1.0]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("a,label\n1,0\nx1,1\n", 3, "column 'a': expected a number, got 'x1'"),
        ("a,label\n1,0\n,1\n", 3, "column 'a': expected a number, got an empty value"),
        ("a,b,label\n1,2,0\n\n1,2\n", 4, "expected 3 columns as in the header (line 1), got 2"),
        ("a,label\n1,0\n2,1\nnan,0\n", 4, "column 'a': features must be finite, got 'nan'"),
        ("a,label\n1,0\ninf,1\n", 3, "column 'a': features must be finite, got 'inf'"),
        ("a,label\n1,\n", 2, "empty label"),
        (
            "a,target\n1,0\n",
            1,
            "label_column='label' not found; the header has columns ['a', " + "'target']",
        ),
        (
            "a,b,a,label\n1,2,3,0\n",
            1,
            "column name 'a' appears twice (columns 1 and 3); columns are matched by name",
        ),
    ],
)
def test_load_csv_errors_name_file_line_and_problem(tmp_path, text, line, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataFileError, match=re.escape(f"{path}, line {line}: {message}")) as err:
        load_csv(path)
    assert err.value.line == line and err.value.path == str(path)


def test_load_csv_empty_and_header_only(tmp_path):
    with pytest.raises(DataFileError, match="empty.csv: the file is empty"):
        load_csv(_write(tmp_path / "empty.csv", "\n\n"))
    with pytest.raises(DataFileError, match="no data rows after the header"):
        load_csv(_write(tmp_path / "h.csv", "a,label\n"))
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_csv(tmp_path / "missing.csv")


def test_load_csv_without_header_keeps_the_first_row(tmp_path):
    """D4: a first row of numbers is data, not a header; 2 rows in, 2 rows out."""
    path = _write(tmp_path / "nohead.csv", "\n1,2,0\n3,4.5,1\n")
    ds = load_csv(path, labels="optional")
    np.testing.assert_array_equal(ds.X, np.array([[1, 2, 0], [3, 4.5, 1]], np.float32))
    assert ds.y is None and ds.feature_names is None
    message = (
        f"{path}, line 2: the first row holds numbers, not column names; a CSV needs a header "
        "row naming the label column 'target'"
    )
    with pytest.raises(DataFileError, match=re.escape(message)) as err:
        load_csv(path, "target")
    assert err.value.line == 2


def test_load_csv_header_detection_is_by_numbers(tmp_path):
    """One cell that is not a number makes the first row a header (D4's rule)."""
    ds = load_csv(_write(tmp_path / "h.csv", "1,label\n5,0\n6,1\n"))
    assert ds.feature_names == ("1",) and ds.y.tolist() == [0, 1]
    np.testing.assert_array_equal(ds.X, [[5], [6]])


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("1,2\n3,4,5\n", 2, "expected 2 columns as in the first row (line 1), got 3"),
        ("1,2\n3,x\n", 2, "column 2: expected a number, got 'x'"),
        ("1,2\n3,inf\n", 2, "column 2: features must be finite, got 'inf'"),
    ],
)
def test_load_csv_without_header_errors(tmp_path, text, line, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataFileError, match=re.escape(f"{path}, line {line}: {message}")):
        load_csv(path, labels="optional")


def test_load_csv_optional_labels_ignore_the_label_column(tmp_path):
    """D10: an empty label column is no error when the labels are not read."""
    path = _write(tmp_path / "d.csv", "a,label,b\n1,,2\n3,,4\n")
    ds = load_csv(path, labels="optional")
    np.testing.assert_array_equal(ds.X, np.array([[1, 2], [3, 4]], np.float32))
    assert ds.y is None and ds.feature_names == ("a", "b")
    with pytest.raises(DataFileError, match=re.escape(f"{path}, line 2: empty label")):
        load_csv(path)
    # a header without the label column: every column is a feature
    ds = load_csv(_write(tmp_path / "x.csv", "a,b\n1,2\n"), labels="optional")
    assert ds.y is None and ds.feature_names == ("a", "b") and ds.X.tolist() == [[1, 2]]


def test_load_csv_rejects_an_unknown_labels_choice(tmp_path):
    path = _write(tmp_path / "d.csv", "a,label\n1,0\n")
    with pytest.raises(
        ValueError, match=re.escape("labels must be one of ['required', 'optional'], got 'maybe'")
    ):
        load_csv(path, labels="maybe")


# --------------------------------------------------------------------------- svmlight


def test_load_svmlight_matches_sklearn_reader(tmp_path):
    g = np.random.default_rng(1)
    X = g.normal(size=(30, 8)) * (g.random((30, 8)) < 0.3)
    y = g.integers(0, 3, size=30)
    path = tmp_path / "d.svm"
    dump_svmlight_file(X, y, str(path), zero_based=False, comment="made by sklearn")
    X_ref, y_ref = load_svmlight_file(str(path), n_features=8, zero_based=False)
    ds = load_svmlight(path, n_features=8, dtype="float64")
    assert sp.issparse(ds.X) and ds.X.format == "csr" and ds.X.dtype == np.float64
    assert ds.X.nnz == X_ref.nnz == np.count_nonzero(X)
    np.testing.assert_array_equal(ds.X.toarray(), X_ref.toarray())
    np.testing.assert_allclose(ds.X.toarray(), X, rtol=1e-15)  # dump writes 17 digits
    np.testing.assert_array_equal(ds.y, y_ref)


def test_load_svmlight_is_sparse_with_the_right_values_shape_and_width(tmp_path):
    path = _write(tmp_path / "s.svm", "1 2:0.5 7:-3\n0\n1 1:2 7:4e0\n")
    ds = load_svmlight(path)
    assert isinstance(ds.X, sp.csr_matrix) and ds.X.dtype == np.float32
    assert ds.X.shape == (3, 7) and ds.n_samples == 3 and ds.n_features == 7 and ds.X.nnz == 4
    expected = np.zeros((3, 7), np.float32)
    expected[0, 1], expected[0, 6], expected[2, 0], expected[2, 6] = 0.5, -3, 2, 4
    np.testing.assert_array_equal(ds.X.toarray(), expected)
    assert ds.y.tolist() == [1, 0, 1] and ds.y.dtype == np.int64
    assert ds.source == str(path)
    wide = load_svmlight(path, n_features=10, dtype="float64")  # n_features sets the width
    assert isinstance(wide.X, sp.csr_matrix) and wide.X.dtype == np.float64
    assert wide.X.shape == (3, 10) and wide.X.nnz == 4
    np.testing.assert_array_equal(wide.X.toarray()[:, :7], expected)
    assert not wide.X.toarray()[:, 7:].any()


def test_load_svmlight_format_details(tmp_path):
    path = _write(
        tmp_path / "d.txt",
        "# a comment line\n+1 1:1 3:2.5  # trailing comment\n\n-1\n-1 qid:7 2:-4e0\n",
    )
    ds = load_svmlight(path)
    assert sp.issparse(ds.X)
    np.testing.assert_array_equal(
        ds.X.toarray(), np.array([[1, 0, 2.5], [0, 0, 0], [0, -4, 0]], np.float32)
    )
    assert ds.y.tolist() == [1, -1, -1] and ds.y.dtype == np.int64
    assert load_svmlight(path, n_features=5).X.shape == (3, 5)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("1 1:2\n0 2:x\n", 2, "malformed feature '2:x': expected index:value"),
        ("1 1:2\n0 3\n", 2, "malformed feature '3': expected index:value"),
        ("1 0:2\n", 1, "feature index must be >= 1 (1-based), got 0 in '0:2'"),
        ("1 1:2 1:3\n", 1, "feature index 1 appears twice"),
        ("1 3:2 1:3\n", 1, "feature indices must increase along a line, got 1 after 3"),
        ("1 1:2\n0 1:inf\n", 2, "feature 1 must be finite, got 'inf'"),
        ("nan 1:2\n", 1, "label must be finite, got 'nan'"),
        ("1 1:2\n\n0 2:nan\n", 3, "feature 2 must be finite, got 'nan'"),
        ("1:2 3:4\n", 1, "expected a label first, got feature '1:2'"),
        ("cat 1:2\n", 1, "label must be a number, got 'cat'"),
        (
            "1 1:2\n0 5:1\n1 4:1 2147483648:1\n",
            3,
            (
                "feature index 2147483648 exceeds 2,147,483,647, the most features a LIBSVM "
                "file may have (32-bit feature indices)"
            ),
        ),
    ],
)
def test_load_svmlight_errors_name_file_and_line(tmp_path, text, line, message):
    path = _write(tmp_path / "bad.svm", text)
    with pytest.raises(DataFileError, match=re.escape(f"{path}, line {line}: {message}")):
        load_svmlight(path)


def test_load_svmlight_empty_and_too_wide(tmp_path):
    with pytest.raises(DataFileError, match="the file is empty"):
        load_svmlight(_write(tmp_path / "e.svm", "# only a comment\n\n"))
    labels_only = _write(tmp_path / "l.svm", "-1\n1\n")
    with pytest.raises(DataFileError, match="no features found; pass n_features to set the width"):
        load_svmlight(labels_only)
    no_features = load_svmlight(labels_only, n_features=2).X
    assert no_features.shape == (2, 2) and no_features.nnz == 0
    path = _write(tmp_path / "w.svm", "1 1:1\n0 7:1\n")
    with pytest.raises(
        DataFileError, match=re.escape("line 2: feature index 7 exceeds n_features=4")
    ):
        load_svmlight(path, n_features=4)
    with pytest.raises(ValueError, match=re.escape("n_features must be an integer in [1, 2147483647]")):
        load_svmlight(path, n_features=2**31)


def test_load_svmlight_labels_keep_their_type(tmp_path):
    ds = load_svmlight(_write(tmp_path / "f.svm", "0.5 1:1\n2 1:3\n"), dtype="float64")
    assert ds.y.dtype == np.float64 and ds.y.tolist() == [0.5, 2.0]
    assert ds.X.dtype == np.float64 and ds.X.toarray().tolist() == [[1.0], [3.0]]


def test_load_svmlight_float32_overflow_names_the_sample_and_feature(tmp_path):
    path = _write(tmp_path / "o.svm", "1 1:1\n0 2:1 5:1e300\n")
    with pytest.raises(
        DataFileError,
        match=re.escape(
            f"{path}: X must be finite, got inf at sample index 1 (0-based), feature 4 (1 "
            "non-finite value(s) in total)"
        ),
    ):
        load_svmlight(path)
    assert load_svmlight(path, dtype="float64").X[1, 4] == 1e300


def test_load_svmlight_too_wide_to_densify_loads_sparse_in_little_memory(tmp_path):
    """D5 used to end in MemoryError, then in an error refusing the dense X: 1000 samples over
    1.5e9 features would be 6 TB dense in float32. Sparse, it is a few kB, never densified."""
    n, m = 1_500_000_000, 1000
    lines = [f"{i % 2} {1 + 7 * i}:1.5 {n - i}:-2" for i in range(m)]
    path = _write(tmp_path / "wide.svm", "\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        ds = load_svmlight(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak  # dense: 6e12 bytes
    assert isinstance(ds.X, sp.csr_matrix) and ds.X.shape == (m, n) and ds.X.nnz == 2 * m
    assert ds.X[0, 0] == 1.5 and ds.X[0, n - 1] == -2 and ds.X[999, n - 1000] == -2
    assert ds.X[999, 7 * 999] == 1.5 and ds.X[999, 7 * 999 + 1] == 0
    assert ds.y.tolist() == [i % 2 for i in range(m)]
    # the widest a file may be, 2**31 - 1 features, as the file's largest index or n_features
    widest = text_formats.MAX_FEATURES
    top = load_svmlight(_write(tmp_path / "top.svm", f"1 1:1\n0 {widest}:1\n")).X
    assert top.shape == (2, widest) and top[1, widest - 1] == 1
    assert load_svmlight(path, n_features=widest).X.shape == (m, widest)


# --------------------------------------------------------------------------- npy / npz


def test_load_npy_and_npz(tmp_path):
    X = np.arange(6, dtype=np.float64).reshape(3, 2)
    y = np.array(["a", "b", "a"])
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    ds = load_npy(tmp_path / "X.npy", tmp_path / "y.npy")
    np.testing.assert_array_equal(ds.X, X.astype(np.float32))
    assert ds.y.tolist() == ["a", "b", "a"]
    np.savez(tmp_path / "d.npz", features=X, target=np.array([0, 1, 1]))
    ds = load_npz(tmp_path / "d.npz", x_key="features", y_key="target", dtype="float64")
    np.testing.assert_array_equal(ds.X, X)
    with pytest.raises(
        DataFileError,
        match=r"x_key='X' not found; the archive holds keys "
        r"\['features', 'target'\]",
    ):
        load_npz(tmp_path / "d.npz")


def test_npy_npz_errors(tmp_path):
    X = np.zeros((3, 2))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y2.npy", np.zeros(4))
    with pytest.raises(DataFileError, match=r"y2.npy: labels must have shape \(3,\)"):
        load_npy(tmp_path / "X.npy", tmp_path / "y2.npy")
    np.save(tmp_path / "obj.npy", np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="obj.npy: not a readable .npy array without pickle"):
        load_npy(tmp_path / "obj.npy", tmp_path / "y2.npy")
    X[1, 0] = np.nan
    np.savez(tmp_path / "nan.npz", X=X, y=np.zeros(3))
    with pytest.raises(
        DataFileError,
        match=r"X must be finite, got nan at sample index 1 "
        r"\(0-based\), feature 0",
    ):
        load_npz(tmp_path / "nan.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataFileError, match="junk.npz: not a readable .npz archive"):
        load_npz(tmp_path / "junk.npz")


def test_npy_npz_without_labels(tmp_path):
    """D10: features-only .npz and .npy files load with y = None where labels are optional."""
    X = np.arange(6.0).reshape(3, 2)
    np.savez(tmp_path / "x.npz", X=X)
    np.save(tmp_path / "X.npy", X)
    for ds in (
        load_npz(tmp_path / "x.npz", labels="optional"),
        load_npy(tmp_path / "X.npy"),
        load_dataset(tmp_path / "x.npz", labels="optional"),
        load_dataset(tmp_path / "X.npy", labels="optional"),
    ):
        assert ds.y is None
        np.testing.assert_array_equal(ds.X, X.astype(np.float32))
    with pytest.raises(
        DataFileError, match=re.escape("y_key='y' not found; the archive holds keys ['X']")
    ):
        load_npz(tmp_path / "x.npz")


# --------------------------------------------------------------------------- load_dataset


def test_load_dataset_dispatches_on_extension(tmp_path):
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([0, 1])
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        f["X"], f["y"] = X, y
    _write(tmp_path / "d.csv", "f0,f1,label\n1,2,0\n3,4,1\n")
    _write(tmp_path / "d.libsvm", "0 1:1 2:2\n1 1:3 2:4\n")
    for name, opts in [
        ("X.npy", {"y_path": tmp_path / "y.npy"}),
        ("d.npz", {}),
        ("d.hdf5", {}),
        ("d.csv", {}),
        ("d.libsvm", {}),
    ]:
        ds = load_dataset(tmp_path / name, **opts)
        dense = ds.X.toarray() if name == "d.libsvm" else ds.X  # LIBSVM: sparse
        assert sp.issparse(ds.X) == (name == "d.libsvm"), name
        np.testing.assert_array_equal(dense, X.astype(np.float32), err_msg=name)
        np.testing.assert_array_equal(ds.y, y, err_msg=name)
    with pytest.raises(ValueError, match=r"extension '.parquet'; supported extensions are"):
        load_dataset(tmp_path / "d.parquet")
    with pytest.raises(
        DataFileError,
        match=re.escape(
            "X.npy: a .npy file holds features only: pass y_path=<labels .npy file> "
            "(data.y_path in configs)"
        ),
    ):
        load_dataset(tmp_path / "X.npy")
    with pytest.raises(ValueError, match=r"labels must be one of \['required', 'optional'\]"):
        load_dataset(tmp_path / "d.csv", labels="no")
    ds = load_dataset(tmp_path / "d.csv", labels="optional")
    assert ds.y is None and ds.feature_names == ("f0", "f1")
