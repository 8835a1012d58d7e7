"""Tests for jaxlogreg.data: synthetic data, loaders and their error messages, split, scaling."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import dump_svmlight_file, load_svmlight_file
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from jaxlogreg.data import (
    DataFileError,
    Dataset,
    Standardizer,
    load_catvnoncat,
    load_csv,
    load_dataset,
    load_hdf5,
    load_npy,
    load_npz,
    load_svmlight,
    make_classification,
    train_test_split,
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------- make_classification


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_make_classification_shapes_and_dtypes(n_classes, dtype):
    ds = make_classification(50, 7, n_classes, seed=3, dtype=dtype)
    assert isinstance(ds, Dataset)
    assert ds.X.shape == (50, 7) and ds.X.dtype == np.dtype(dtype)
    assert ds.y.shape == (50,) and ds.y.dtype == np.int32
    assert set(np.unique(ds.y)) <= set(range(n_classes))
    assert ds.classes == tuple(range(n_classes))
    w_shape, b_shape = ((7,), ()) if n_classes == 2 else ((7, n_classes), (n_classes,))
    assert ds.true_params.w.shape == w_shape and ds.true_params.b.shape == b_shape
    assert ds.true_params.w.dtype == np.dtype(dtype)
    assert (ds.n_samples, ds.n_features) == (50, 7)


def test_make_classification_is_deterministic_and_pinned():
    a = make_classification(20, 3, seed=11)
    b = make_classification(20, 3, seed=11)
    c = make_classification(20, 3, seed=12)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    # X0 is the generator's first draw: standard normals from PCG64(11), computed independently
    expected = np.random.Generator(np.random.PCG64(11)).standard_normal((20, 3))
    np.testing.assert_array_equal(a.X, expected.astype(np.float32))


def test_make_classification_binary_recovers_true_model():
    """Labels come from the stated logistic model: an (almost) unpenalized MLE recovers it."""
    ds = make_classification(40_000, 4, seed=5, separation=3.0, intercept=0.7, dtype="float64")
    clf = LogisticRegression(C=1e6, tol=1e-10, max_iter=1000).fit(ds.X, ds.y)
    np.testing.assert_allclose(clf.coef_[0], ds.true_params.w, atol=0.1)
    np.testing.assert_allclose(clf.intercept_[0], float(ds.true_params.b), atol=0.06)
    # the true logits have standard deviation `separation`
    z = ds.X @ ds.true_params.w + ds.true_params.b
    assert abs(z.std() - 3.0) < 0.1
    assert abs(ds.y.mean() - _sigmoid(z).mean()) < 4 * np.sqrt(0.25 / 40_000)


def test_make_classification_multinomial_recovers_true_model():
    ds = make_classification(30_000, 3, 3, seed=2, separation=2.0, dtype="float64")
    clf = LogisticRegression(C=1e6, tol=1e-10, max_iter=1000).fit(ds.X, ds.y)
    # softmax parameters are identified up to a shift shared by all classes: compare centred
    w_true = ds.true_params.w - ds.true_params.w.mean(axis=1, keepdims=True)
    w_fit = clf.coef_.T - clf.coef_.T.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(w_fit, w_true, atol=0.1)
    np.testing.assert_allclose(clf.intercept_ - clf.intercept_.mean(), 0.0, atol=0.06)


def test_make_classification_feature_scales_keep_the_logits():
    scales = np.array([1.0, 10.0, 0.01])
    plain = make_classification(2000, 3, seed=4, dtype="float64")
    scaled = make_classification(2000, 3, seed=4, feature_scales=scales, dtype="float64")
    np.testing.assert_allclose(scaled.X.std(axis=0), scales, rtol=0.1)
    np.testing.assert_array_equal(scaled.y, plain.y)
    np.testing.assert_allclose(
        scaled.X @ scaled.true_params.w, plain.X @ plain.true_params.w, rtol=1e-10, atol=1e-10
    )


def test_make_classification_label_noise_and_zero_separation():
    ds = make_classification(20_000, 2, 4, seed=0, label_noise=1.0)
    np.testing.assert_allclose(np.bincount(ds.y) / 20_000, 0.25, atol=0.02)
    ds = make_classification(20_000, 2, seed=0, separation=0.0)
    assert abs(ds.y.mean() - 0.5) < 0.02


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_classes": 1}, "n_classes must be an integer >= 2, got 1"),
        ({"n_samples": 0}, "n_samples"),
        ({"dtype": "int32"}, r"dtype must be one of \['float32', 'float64'\], got 'int32'"),
        ({"separation": -1.0}, "separation"),
        ({"label_noise": 1.5}, r"label_noise must be a fraction in \[0, 1\], got 1.5"),
        ({"feature_scales": [1.0, -2.0]}, r"feature_scales must be .* shape \(20,\)"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_make_classification_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_classification(**kwargs)


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


# --------------------------------------------------------------------------- svmlight


def test_load_svmlight_matches_sklearn_reader(tmp_path):
    g = np.random.default_rng(1)
    X = g.normal(size=(30, 8)) * (g.random((30, 8)) < 0.3)
    y = g.integers(0, 3, size=30)
    path = tmp_path / "d.svm"
    dump_svmlight_file(X, y, str(path), zero_based=False, comment="made by sklearn")
    X_ref, y_ref = load_svmlight_file(str(path), n_features=8, zero_based=False)
    ds = load_svmlight(path, n_features=8, dtype="float64")
    np.testing.assert_array_equal(ds.X, X_ref.toarray())
    np.testing.assert_array_equal(ds.y, y_ref)


def test_load_svmlight_format_details(tmp_path):
    path = _write(
        tmp_path / "d.txt",
        "# a comment line\n+1 3:2.5 1:1  # trailing comment\n\n-1\n-1 2:-4e0\n",
    )
    ds = load_svmlight(path)
    np.testing.assert_array_equal(ds.X, np.array([[1, 0, 2.5], [0, 0, 0], [0, -4, 0]], np.float32))
    assert ds.y.tolist() == [1, -1, -1] and ds.y.dtype == np.int64
    assert load_svmlight(path, n_features=5).X.shape == (3, 5)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("1 1:2\n0 2:x\n", 2, "malformed feature '2:x': expected index:value"),
        ("1 1:2\n0 3\n", 2, "malformed feature '3': expected index:value"),
        ("1 0:2\n", 1, "feature index must be >= 1 (1-based), got 0 in '0:2'"),
        ("1 1:2 1:3\n", 1, "feature index 1 appears twice"),
        ("1 1:2\n\n0 2:nan\n", 3, "feature 2 must be finite, got 'nan'"),
        ("1:2 3:4\n", 1, "expected a label first, got feature '1:2'"),
        ("cat 1:2\n", 1, "label must be a number, got 'cat'"),
    ],
)
def test_load_svmlight_errors_name_file_and_line(tmp_path, text, line, message):
    path = _write(tmp_path / "bad.svm", text)
    with pytest.raises(DataFileError, match=re.escape(f"{path}, line {line}: {message}")):
        load_svmlight(path)


def test_load_svmlight_empty_and_too_wide(tmp_path):
    with pytest.raises(DataFileError, match="the file is empty"):
        load_svmlight(_write(tmp_path / "e.svm", "# only a comment\n\n"))
    path = _write(tmp_path / "w.svm", "1 1:1\n0 7:1\n")
    with pytest.raises(
        DataFileError, match=re.escape("line 2: feature index 7 exceeds n_features=4")
    ):
        load_svmlight(path, n_features=4)


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
        np.testing.assert_array_equal(ds.X, X.astype(np.float32), err_msg=name)
        np.testing.assert_array_equal(ds.y, y, err_msg=name)
    with pytest.raises(ValueError, match=r"extension '.parquet'; supported extensions are"):
        load_dataset(tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="pass y_path="):
        load_dataset(tmp_path / "X.npy")


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize("test_size", [0.2, 0.5, 7])
def test_train_test_split_partitions_deterministically(stratify, test_size):
    m = 53
    X = np.arange(m, dtype=np.float64)[:, None] * np.ones((1, 2))
    y = np.repeat([0, 1, 2], [30, 20, 3])
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size, seed=4, stratify=stratify)
    n_test = test_size if isinstance(test_size, int) else int(np.ceil(test_size * m))
    assert len(X_te) == len(y_te) == n_test and len(X_tr) == len(y_tr) == m - n_test
    ids_tr, ids_te = X_tr[:, 0].astype(int), X_te[:, 0].astype(int)
    assert sorted(np.r_[ids_tr, ids_te].tolist()) == list(range(m))  # a partition
    np.testing.assert_array_equal(y[ids_tr], y_tr)  # rows stay paired with labels
    np.testing.assert_array_equal(y[ids_te], y_te)
    again = train_test_split(X, y, test_size, seed=4, stratify=stratify)
    np.testing.assert_array_equal(again[1], X_te)
    if stratify:
        counts = np.bincount(y_te, minlength=3)
        exact = np.array([30, 20, 3]) * n_test / m
        assert np.all(np.abs(counts - exact) < 1), (counts, exact)
        assert np.all(np.bincount(y_tr, minlength=3) >= 1)


def test_train_test_split_errors():
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match=r"test_size as a count must be in \[1, 9\]"):
        train_test_split(X, y, 10)
    with pytest.raises(ValueError, match="test_size must be a fraction in"):
        train_test_split(X, y, 1.5)
    with pytest.raises(ValueError, match=r"y must have shape \(10,\)"):
        train_test_split(X, np.zeros(9))


# --------------------------------------------------------------------------- Standardizer


def test_standardizer_matches_sklearn_and_round_trips():
    g = np.random.default_rng(0)
    X_train = g.normal(3.0, 5.0, size=(40, 4))
    X_train[:, 2] = 7.0  # zero variance: centred, not scaled
    X_test = g.normal(size=(5, 4))
    std = Standardizer.fit(X_train)
    ref = StandardScaler().fit(X_train)
    np.testing.assert_allclose(std.mean, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(std.scale, ref.scale_, rtol=1e-12)
    assert std.scale[2] == 1.0
    np.testing.assert_allclose(std.transform(X_test), ref.transform(X_test), rtol=1e-12)
    np.testing.assert_allclose(std.inverse_transform(std.transform(X_test)), X_test, rtol=1e-12)
    # float32 in, float32 out; a JAX array in, a JAX array out
    assert std.transform(X_test.astype(np.float32)).dtype == np.float32
    out = std.transform(jnp.asarray(X_test, dtype=jnp.float32))
    assert isinstance(out, type(jnp.zeros(1))) and out.dtype == jnp.float32
    d = json.loads(json.dumps(std.to_dict()))
    back = Standardizer.from_dict(d)
    np.testing.assert_array_equal(back.mean, std.mean)  # exact float64 round trip via JSON
    np.testing.assert_array_equal(back.scale, std.scale)


def test_standardizer_errors():
    std = Standardizer.fit(np.ones((3, 2)) * [[1.0], [2.0], [4.0]])
    with pytest.raises(
        ValueError, match=r"X must have shape \(n_samples, 2\) .* got shape \(3, 3\)"
    ):
        std.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['scale'\]"):
        Standardizer.from_dict({"mean": [0.0]})
    with pytest.raises(ValueError, match="scale finite and > 0"):
        Standardizer.from_dict({"mean": [0.0], "scale": [0.0]})
    with pytest.raises(ValueError, match="X must be finite"):
        Standardizer.fit(np.array([[np.nan]]))
