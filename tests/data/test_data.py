"""Tests for jaxlogreg.data.datasets: synthetic data and the train/test split (the file
loaders are in test_loaders.py, the configured data sources in test_sources.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split as sklearn_split

from jaxlogreg.data import Dataset, make_classification, train_test_split


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


@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize("test_size", [0.25, 9])
def test_train_test_split_is_sklearns_split(stratify, test_size):
    g = np.random.default_rng(0)
    X = g.normal(size=(40, 3))
    y = np.array(["a", "b", "c", "b"] * 10)
    ours = train_test_split(X, y, test_size, seed=7, stratify=stratify)
    ref = sklearn_split(X, y, test_size=test_size, random_state=7, stratify=y if stratify else None)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("stratify", [True, False])
def test_train_test_split_keeps_sparse_x_sparse(fmt, stratify):
    """A sparse X is split by rows into CSR matrices: the rows a dense copy would give."""
    g = np.random.default_rng(2)
    dense = g.normal(size=(40, 6)) * (g.random((40, 6)) < 0.3)
    y = np.array([0, 1, 1, 0, 2] * 8)
    X = sp.csr_matrix(dense).asformat(fmt)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, 0.25, seed=5, stratify=stratify)
    assert sp.issparse(X_tr) and sp.issparse(X_te) and X_tr.format == X_te.format == "csr"
    ref = train_test_split(dense, y, 0.25, seed=5, stratify=stratify)
    for a, b in zip((X_tr.toarray(), X_te.toarray(), y_tr, y_te), ref, strict=True):
        np.testing.assert_array_equal(a, b)
    assert X_tr.nnz + X_te.nnz == np.count_nonzero(dense)


@pytest.mark.parametrize(
    "counts, test_size",
    [
        ([10, 9, 1], 0.3),  # a class with one sample
        ([5, 5, 5], 2),  # fewer test samples than classes
        ([5, 5, 5], 13),  # fewer training samples than classes
    ],
)
def test_train_test_split_falls_back_to_a_plain_split(counts, test_size):
    y = np.repeat(np.arange(len(counts)), counts)
    X = np.arange(len(y), dtype=np.float64)[:, None]
    with pytest.raises(ValueError):  # scikit-learn cannot stratify these
        sklearn_split(X, y, test_size=test_size, random_state=3, stratify=y)
    ours = train_test_split(X, y, test_size, seed=3)
    ref = sklearn_split(X, y, test_size=test_size, random_state=3)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_test_split_errors():
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match=r"test_size as a count must be in \[1, 9\] .* got 10"):
        train_test_split(X, y, 10)
    with pytest.raises(ValueError, match="test_size must be a fraction in .* got 1.5"):
        train_test_split(X, y, 1.5)
    with pytest.raises(ValueError, match="test_size=0.95 leaves no training samples out of 10"):
        train_test_split(X, y, 0.95)
    with pytest.raises(ValueError, match=r"y must have shape \(10,\)"):
        train_test_split(X, np.zeros(9))
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(10,\)"):
        train_test_split(np.zeros(10), y)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        train_test_split(X, y, seed=np.int64(-1))
    with pytest.raises(ValueError, match="needs at least 2 samples, got 1"):
        train_test_split(X[:1], y[:1])
