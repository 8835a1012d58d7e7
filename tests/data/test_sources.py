"""Tests for jaxlogreg.data.sources: the [data] section's checks and the data it loads."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from jaxlogreg.data import (
    DataConfig,
    DataFileError,
    load_file,
    load_splits,
    make_classification,
    train_test_split,
)
from jaxlogreg.data.sources import CATVNONCAT_ENV


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- DataConfig


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "web"}, "source must be one of ['synthetic', 'catvnoncat', 'file'], got 'web'"),
        ({"source": "file"}, "path must name the data file for source = 'file'"),
        (
            {"source": "catvnoncat"},
            (
                "path must name the folder holding the course's .h5 files for source = "
                "'catvnoncat' (or set JAXLOGREG_CATVNONCAT_DIR)"
            ),
        ),
        ({"validation_fraction": 1.5}, "validation_fraction must be in [0, 1), got 1.5"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in [0, 1), got 1.0"),
        ({"validation_fraction": -0.1}, "validation_fraction must be in [0, 1), got -0.1"),
        ({"n_samples": 0}, "n_samples must be an integer >= 1, got 0"),
        ({"n_features": 0}, "n_features must be an integer >= 1, got 0"),
        ({"n_classes": 1}, "n_classes must be an integer >= 2, got 1"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"separation": float("inf")}, "separation must be a finite real number >= 0, got inf"),
        ({"separation": -1.0}, "separation must be a finite real number >= 0, got -1.0"),
        ({"label_noise": 1.5}, "label_noise must be in [0, 1], got 1.5"),
        ({"label_noise": float("nan")}, "label_noise must be in [0, 1], got nan"),
        # wrong types are reported, not a crash (the CLI checks types before)
        ({"n_samples": "many"}, "n_samples must be an integer >= 1, got 'many'"),
        ({"n_samples": 2.5}, "n_samples must be an integer >= 1, got 2.5"),
        ({"validation_fraction": "half"}, "validation_fraction must be in [0, 1), got 'half'"),
        ({"label_noise": None}, "label_noise must be in [0, 1], got None"),
        ({"separation": "x"}, "separation must be a finite real number >= 0, got 'x'"),
    ],
)
def test_data_config_rejects_bad_values_naming_the_key(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        DataConfig(**kwargs)


def test_data_config_accepts_the_defaults_and_edges():
    d = DataConfig()
    assert (d.source, d.validation_fraction, d.n_samples, d.n_features) == (
        "synthetic",
        0.2,
        1000,
        20,
    )
    DataConfig(validation_fraction=0.0, label_noise=1.0, separation=0.0, n_classes=5)
    DataConfig(source="file", path="d.csv")


def test_data_config_bounds_synthetic_sizes_up_front():
    """D5: synthetic sizes whose X cannot fit are refused before anything is generated."""
    message = (
        "n_samples * n_features must be at most 1,000,000,000, got n_samples = 100,000,000,000 "
        "and n_features = 20: 2,000,000,000,000 values, 7,450.6 GiB of float32 features"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        DataConfig(n_samples=100_000_000_000)
    DataConfig(n_samples=50_000_000, n_features=20)  # exactly at the bound
    # only synthetic data is generated from these keys
    DataConfig(source="file", path="d.csv", n_samples=100_000_000_000)


# --------------------------------------------------------------------------- load_splits


def test_load_splits_synthetic_with_held_out_validation():
    config = DataConfig(n_samples=50, n_features=3, n_classes=3, seed=4, validation_fraction=0.2)
    splits = load_splits(config, "float64")
    full = make_classification(50, 3, 3, seed=4, separation=3.0, label_noise=0.05, dtype="float64")
    X_tr, X_va, y_tr, y_va = train_test_split(full.X, full.y, 0.2, seed=4)
    np.testing.assert_array_equal(splits.train.X, X_tr)
    np.testing.assert_array_equal(splits.validation.X, X_va)
    np.testing.assert_array_equal(splits.train.y, y_tr)
    np.testing.assert_array_equal(splits.validation.y, y_va)
    assert splits.train.X.dtype == np.float64 and splits.validation.n_samples == 10
    assert splits.class_names == (0, 1, 2)
    assert splits.description == (
        "make_classification(seed=4, n_classes=3), 0.2 held out for validation"
    )


def test_load_splits_without_validation():
    splits = load_splits(DataConfig(n_samples=30, n_features=2, validation_fraction=0.0))
    assert splits.validation is None and splits.train.n_samples == 30
    assert splits.train.X.dtype == np.float32
    assert splits.description == "make_classification(seed=0, n_classes=2)"


def test_load_splits_files_with_a_validation_file(tmp_path):
    train = _write(tmp_path / "train.csv", "a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n")
    val = tmp_path / "val.npz"
    np.savez(val, feats=np.array([[7.0, 8.0]]), target=np.array(["dog"]))
    config = DataConfig(
        source="file",
        path=str(train),
        label_column="y",
        x_key="feats",
        y_key="target",
        validation_path=str(val),
    )
    splits = load_splits(config)
    assert splits.train.y.tolist() == ["cat", "dog", "cat"]
    assert splits.train.feature_names == ("a", "b")
    np.testing.assert_array_equal(splits.validation.X, [[7, 8]])
    assert splits.validation.y.tolist() == ["dog"]
    assert splits.description == f"{train}, validation {val}"


def test_load_splits_libsvm_stays_sparse(tmp_path):
    """A LIBSVM file is split by rows, sparse; a LIBSVM validation file gets the training
    data's width (its own largest index may be smaller), or the width asked for."""
    lines = [f"{i % 2} {1 + i % 5}:{i + 1} 9:0.5" for i in range(20)]
    path = _write(tmp_path / "train.svm", "\n".join(lines) + "\n")
    dense = load_file(path, DataConfig(), dtype="float64").X.toarray()
    config = DataConfig(source="file", path=str(path), validation_fraction=0.25, seed=3)
    splits = load_splits(config, "float64")
    assert sp.issparse(splits.train.X) and sp.issparse(splits.validation.X)
    assert splits.train.X.dtype == np.float64
    X_tr, X_va, y_tr, y_va = train_test_split(dense, np.arange(20) % 2, 0.25, seed=3)
    np.testing.assert_array_equal(splits.train.X.toarray(), X_tr)
    np.testing.assert_array_equal(splits.train.y, y_tr)
    np.testing.assert_array_equal(splits.validation.X.toarray(), X_va)
    np.testing.assert_array_equal(splits.validation.y, y_va)
    val = _write(tmp_path / "val.svm", "1 2:1\n0 3:1\n")  # largest index 3 < 9
    separate = load_splits(dataclasses.replace(config, validation_path=str(val)))
    assert separate.validation.X.shape == (2, 9) and sp.issparse(separate.validation.X)
    assert separate.train.X.shape == (20, 9)
    wider = load_splits(dataclasses.replace(config, validation_path=str(val)), n_features=12)
    assert wider.train.X.shape == (20, 12) and wider.validation.X.shape == (2, 12)
    too_wide = _write(tmp_path / "too_wide.svm", "1 2:1\n0 10:1\n")
    with pytest.raises(
        DataFileError, match=re.escape(f"{too_wide}, line 2: feature index 10 exceeds n_features=9")
    ):
        load_splits(dataclasses.replace(config, validation_path=str(too_wide)))


def test_load_splits_npy_needs_its_labels_file(tmp_path):
    np.save(tmp_path / "X.npy", np.arange(8.0).reshape(4, 2))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    config = DataConfig(source="file", path=str(tmp_path / "X.npy"), y_path=str(tmp_path / "y.npy"))
    splits = load_splits(config)
    assert splits.train.n_samples + splits.validation.n_samples == 4
    assert sorted(np.r_[splits.train.y, splits.validation.y].tolist()) == [0, 0, 1, 1]
    with pytest.raises(DataFileError, match=re.escape("X.npy: a .npy file holds features only")):
        load_splits(DataConfig(source="file", path=str(tmp_path / "X.npy")))
    with pytest.raises(
        ValueError, match=re.escape(f"validation_path {tmp_path / 'X.npy'} is a .npy file")
    ):
        load_splits(
            DataConfig(
                source="file",
                path=str(tmp_path / "X.npy"),
                y_path=str(tmp_path / "y.npy"),
                validation_path=str(tmp_path / "X.npy"),
            )
        )


def test_load_splits_too_few_samples_to_split(tmp_path):
    path = _write(tmp_path / "one.csv", "a,label\n1,0\n")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"validation_fraction = 0.5 cannot split the 1 sample(s) of {path}: "
            "train_test_split needs at least 2 samples, got 1"
        ),
    ):
        load_splits(DataConfig(source="file", path=str(path), validation_fraction=0.5))


def test_load_splits_catvnoncat(catvnoncat_dir, catvnoncat):
    splits = load_splits(DataConfig(source="catvnoncat", path=str(catvnoncat_dir)))
    assert splits.train.X.shape == (209, 12288) and splits.validation.X.shape == (50, 12288)
    np.testing.assert_array_equal(splits.validation.y, catvnoncat.y_test)
    assert splits.class_names == ("non-cat", "cat")
    assert splits.description == (
        f"catvnoncat ({catvnoncat_dir}), validation = the course's test set"
    )


def test_load_splits_catvnoncat_missing_folder(tmp_path, monkeypatch):
    missing = str(tmp_path / "nowhere")
    monkeypatch.delenv(CATVNONCAT_ENV, raising=False)
    expected = (
        f"catvnoncat folder {missing} does not exist; point data.path or "
        "JAXLOGREG_CATVNONCAT_DIR to the folder holding train_catvnoncat.h5 and "
        "test_catvnoncat.h5"
    )
    with pytest.raises(FileNotFoundError, match="^" + re.escape(expected) + "$"):
        load_splits(DataConfig(source="catvnoncat", path=missing))
    monkeypatch.setenv(CATVNONCAT_ENV, missing)
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"{missing} (from JAXLOGREG_CATVNONCAT_DIR) does not")
    ):
        load_splits(DataConfig(source="catvnoncat", path=missing))
    os.mkfifo(missing)  # something that is not a folder
    with pytest.raises(NotADirectoryError, match=re.escape(f"{missing} (from JAXLOGREG_CATVNONCAT_"
                                                           "DIR) is not a folder; point")):
        load_splits(DataConfig(source="catvnoncat", path=missing))


# --------------------------------------------------------------------------- one file


def test_load_file_accepts_files_without_labels_when_they_are_optional(tmp_path):
    """D4/D10: predict reads a CSV with or without header/label column, .npz without y,
    .npy without y_path, .h5 without y, and a LIBSVM file."""
    X = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    np.savez(tmp_path / "x.npz", feats=X)
    np.save(tmp_path / "X.npy", X)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["feats"] = X
    files = {
        "labelled.csv": _write(tmp_path / "labelled.csv", "a,target,b\n1,,2\n3,,4\n"),
        "features.csv": _write(tmp_path / "features.csv", "a,b\n1,2\n3,4\n"),
        "noheader.csv": _write(tmp_path / "noheader.csv", "1,2\n3,4\n"),
        "x.npz": tmp_path / "x.npz",
        "X.npy": tmp_path / "X.npy",
        "x.h5": tmp_path / "x.h5",
    }
    config = DataConfig(label_column="target", x_key="feats", y_key="y")
    for name, path in files.items():
        ds = load_file(path, config, labels="optional")
        np.testing.assert_array_equal(ds.X, X, err_msg=name)
        assert ds.y is None, name
    svm = load_file(_write(tmp_path / "d.svm", "0 1:1 2:2\n1 1:3 2:4\n"), config, labels="optional")
    assert sp.issparse(svm.X)  # LIBSVM files stay sparse
    np.testing.assert_array_equal(svm.X.toarray(), X)
    wide = load_file(tmp_path / "d.svm", config, labels="optional", n_features=5)  # a model's width
    assert wide.X.shape == (2, 5) and sp.issparse(wide.X)
    assert load_file(tmp_path / "X.npy", config, labels="optional", dtype="float64").X.dtype == np.float64


def test_load_file_requires_labels_and_uses_the_config_keys(tmp_path):
    np.savez(tmp_path / "x.npz", feats=np.ones((2, 2)))
    config = DataConfig(x_key="feats", y_key="target", label_column="target")
    with pytest.raises(
        DataFileError, match=re.escape("y_key='target' not found; the archive holds keys ['feats']")
    ):
        load_file(tmp_path / "x.npz", config)
    path = _write(tmp_path / "d.csv", "a,target\n1,1\n2,0\n")
    ds = load_file(path, config)
    assert ds.y.tolist() == [1, 0] and ds.feature_names == ("a",)
    with pytest.raises(DataFileError, match=re.escape("label_column='label' not found")):
        load_file(path, DataConfig())
    with pytest.raises(ValueError, match=r"extension '\.parquet'"):
        load_file(tmp_path / "d.parquet", config, labels="optional")


# --------------------------------------------------------------------------- columns by name


def test_columns_are_put_in_the_order_of_the_feature_names(tmp_path):
    ordered = _write(tmp_path / "abc.csv", "a,b,c,label\n1,2,3,0\n4,5,6,1\n")
    shuffled = _write(tmp_path / "cab.csv", "label,c,a,b\n0,3,1,2\n1,6,4,5\n")
    names = ("a", "b", "c")
    want = load_file(ordered, DataConfig())
    for labels in ("required", "optional"):
        got = load_file(shuffled, DataConfig(), labels=labels, feature_names=names)
        np.testing.assert_array_equal(got.X, want.X)
        assert got.feature_names == names
    assert load_file(shuffled, DataConfig(), feature_names=names).y.tolist() == [0, 1]
    unnamed = _write(tmp_path / "unnamed.csv", "1,2,3\n")  # no header: taken in column order
    got = load_file(unnamed, DataConfig(), labels="optional", feature_names=names)
    np.testing.assert_array_equal(got.X, [[1, 2, 3]])


@pytest.mark.parametrize(
    "header, problem",
    [
        ("a,b,label", "missing column(s) ['c']"),
        ("a,b,d,label", ("missing column(s) ['c'], unexpected column(s) ['d'] (label_column is "
                        "'label')")),
        ("a,b,c,target", "unexpected column(s) ['target'] (label_column is 'label')"),
    ],
)
def test_other_columns_than_the_feature_names_are_refused_by_name(tmp_path, header, problem):
    path = _write(tmp_path / "d.csv", f"{header}\n" + ",".join("1" * len(header.split(","))))
    expected = f"{path}: its columns do not match the model's 3 features ['a', 'b', 'c']: {problem}"
    with pytest.raises(DataFileError, match="^" + re.escape(expected) + "$"):
        load_file(path, DataConfig(), labels="optional", feature_names=("a", "b", "c"))


def test_a_validation_file_follows_the_training_files_columns(tmp_path):
    train = _write(tmp_path / "train.csv", "a,b,label\n0,1,0\n1,0,1\n2,1,0\n")
    val = _write(tmp_path / "val.csv", "b,label,a\n7,1,8\n")
    config = DataConfig(source="file", path=str(train), validation_path=str(val))
    splits = load_splits(config)
    np.testing.assert_array_equal(splits.validation.X, [[8, 7]])
    assert splits.validation.feature_names == ("a", "b")
    _write(val, "a,c,label\n1,2,0\n")
    message = "its columns do not match the training data's 2 features ['a', 'b']: missing"
    with pytest.raises(DataFileError, match=re.escape(f"{val}: {message}")):
        load_splits(config)
    _write(val, "b,label,a\n7,1,8\n")
    in_model_order = load_splits(config, feature_names=("b", "a"))  # a saved model's order
    np.testing.assert_array_equal(in_model_order.train.X, [[1, 0], [0, 1], [1, 2]])
    np.testing.assert_array_equal(in_model_order.validation.X, [[7, 8]])
