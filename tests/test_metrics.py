"""Tests for jaxlogreg.metrics, cross-checked against sklearn.metrics and brute-force references."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics as skm

from jaxlogreg.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    log_loss,
    roc_auc,
)

SEEDS = range(6)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _weights(g: np.random.Generator, m: int, weighted: bool) -> np.ndarray | None:
    if not weighted:
        return None
    w = g.random(m) * 3
    w[g.random(m) < 0.2] = 0.0  # zero weights must simply not count
    w[0] = 1.0
    return w


def _pairwise_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """Definition of AUC: weighted fraction of (pos, neg) pairs ranked right, ties 1/2."""
    pos, neg = y == 1, y == 0
    diff = s[pos][:, None] - s[neg][None, :]
    pair_w = w[pos][:, None] * w[neg][None, :]
    wins = (diff > 0) + 0.5 * (diff == 0)
    return float(np.sum(pair_w * wins) / np.sum(pair_w))


# --------------------------------------------------------------------------- log_loss


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_log_loss_matches_sklearn(seed, weighted):
    g = np.random.default_rng(seed)
    m = 40
    w = _weights(g, m, weighted)
    # binary, (m,) = P(class 1), kept away from 0/1 where sklearn clips
    p = g.uniform(0.01, 0.99, m)
    y = g.integers(0, 2, m)
    ref = skm.log_loss(y, np.c_[1 - p, p], sample_weight=w)
    np.testing.assert_allclose(log_loss(y, p, sample_weight=w), ref, rtol=1e-12)
    np.testing.assert_allclose(log_loss(y, np.c_[1 - p, p], sample_weight=w), ref, rtol=1e-12)
    # multiclass, with string labels in column order
    k = 4
    P = _softmax(g.normal(size=(m, k)) * 2)
    yk = g.integers(0, k, m)
    yk[:k] = np.arange(k)
    names = np.array(["d", "b", "c", "a"])  # deliberately not sorted
    ref = skm.log_loss(yk, P, sample_weight=w, labels=range(k))
    np.testing.assert_allclose(log_loss(yk, P, sample_weight=w), ref, rtol=1e-12)
    np.testing.assert_allclose(
        log_loss(names[yk], P, labels=names, sample_weight=w), ref, rtol=1e-12
    )


def test_log_loss_is_clip_free_and_accurate_at_the_extremes():
    # exact values: -log1p(-1e-30) = 1e-30 (1 - 1e-30 would round to 1 and give 0)
    assert log_loss([0], [1e-30]) == pytest.approx(1e-30, rel=1e-12, abs=0)
    assert log_loss([1], [1e-300]) == pytest.approx(300 * math.log(10), rel=1e-12)
    assert log_loss([1, 0], [0.0, 0.0]) == math.inf  # a confident wrong answer is not hidden
    assert log_loss([1, 0], [1.0, 0.0]) == 0.0
    # a zero-weight sample with infinite loss does not count
    assert log_loss([1, 1], [0.0, 0.5], sample_weight=[0.0, 1.0]) == pytest.approx(math.log(2))
    # JAX float32 inputs
    assert log_loss(jnp.array([1, 0]), jnp.array([0.5, 0.5], jnp.float32)) == pytest.approx(
        math.log(2), rel=1e-7
    )


@pytest.mark.parametrize(
    "y, proba, kwargs, match",
    [
        ([0, 1], [[0.5, 0.6], [0.5, 0.5]], {}, r"proba rows must sum to 1 .* row 0 summing to 1.1"),
        ([0, 1], [0.5, 1.5], {}, r"proba must hold probabilities in \[0, 1\]"),
        ([0, 1, 1], [0.5, 0.5], {}, r"proba must have shape \(3,\)"),
        ([0, 2], [0.5, 0.5], {}, r"y_true must hold class indices in \[0, 1\]"),
        (["a", "b"], [0.5, 0.5], {}, r"pass labels=\[\.\.\.\]"),
        (["a", "z"], [0.5, 0.5], {"labels": ["a", "b"]}, r"value\(s\) \['z'\] that are not in"),
        ([0, 1], [0.5, 0.5], {"labels": [0, 1, 2]}, "labels must name the 2 classes"),
        ([0, 1], [0.5, 0.5], {"sample_weight": [1.0, -1.0]}, "sample_weight must be >= 0"),
        ([0, 1], [0.5, 0.5], {"sample_weight": [1.0]}, r"sample_weight must have shape \(2,\)"),
        ([0, 1], [0.5, np.nan], {}, "proba must be finite"),
    ],
)
def test_log_loss_errors(y, proba, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        log_loss(y, proba, **kwargs)


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_matches_sklearn(seed):
    g = np.random.default_rng(seed)
    names = np.array(["cat", "dog", "eel"])
    y, yp = names[g.integers(0, 3, 30)], names[g.integers(0, 3, 30)]
    w = _weights(g, 30, True)
    assert accuracy(y, yp) == pytest.approx(skm.accuracy_score(y, yp), rel=1e-12)
    assert accuracy(y, yp, sample_weight=w) == pytest.approx(
        skm.accuracy_score(y, yp, sample_weight=w), rel=1e-12
    )


def test_accuracy_errors():
    with pytest.raises(ValueError, match=r"y_pred must have shape \(2,\) like y_true"):
        accuracy([0, 1], [0, 1, 1])
    with pytest.raises(TypeError, match="must both hold strings or both hold numbers"):
        accuracy(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="y_true must not be empty"):
        accuracy([], [])


# --------------------------------------------------------------------------- roc_auc


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_auc_binary_with_ties_matches_sklearn_and_definition(seed, weighted):
    g = np.random.default_rng(seed)
    m = 60
    y = g.integers(0, 2, m)
    y[:2] = [0, 1]
    s = np.round(g.random(m) + 0.3 * y, 1)  # one decimal: many ties, inside and across classes
    w = _weights(g, m, weighted)
    w_ref = np.ones(m) if w is None else w
    ref = skm.roc_auc_score(y, s, sample_weight=w)
    got = roc_auc(y, s, sample_weight=w)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    np.testing.assert_allclose(got, _pairwise_auc(y, s, w_ref), rtol=1e-12)
    np.testing.assert_allclose(roc_auc(y, np.c_[-s, s], sample_weight=w), ref, rtol=1e-12)


def test_roc_auc_textbook_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # all tied
    # pairs (pos, neg): 0.8>0.1, 0.8>0.5, 0.5=0.5, 0.5>0.1 -> 3.5 / 4
    assert roc_auc(["n", "p", "n", "p"], [0.1, 0.8, 0.5, 0.5], labels=["n", "p"]) == 0.875


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_auc_multiclass_ovr_matches_sklearn(seed, weighted):
    g = np.random.default_rng(seed)
    m, k = 80, 4
    y = g.integers(0, k, m)
    y[:k] = np.arange(k)
    # integer logits in a small range: many rows share probability values, i.e. ties
    P = _softmax(g.integers(-2, 3, size=(m, k)).astype(np.float64))
    w = _weights(g, m, weighted)
    for average in ("macro", "weighted"):
        ref = skm.roc_auc_score(y, P, multi_class="ovr", average=average, sample_weight=w)
        np.testing.assert_allclose(
            roc_auc(y, P, average=average, sample_weight=w), ref, rtol=1e-12, err_msg=average
        )
    per_class = roc_auc(y, P, average=None, sample_weight=w)
    w_ref = np.ones(m) if w is None else w
    for c in range(k):
        np.testing.assert_allclose(
            per_class[c], _pairwise_auc((y == c).astype(int), P[:, c], w_ref), rtol=1e-12
        )


def test_roc_auc_undefined_and_bad_input():
    with pytest.raises(ValueError, match="undefined when y_true holds only one class, got only 1"):
        roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="undefined for class 2"):
        roc_auc([0, 1, 0], _softmax(np.zeros((3, 3))))
    with pytest.raises(ValueError, match="average must be one of"):
        roc_auc([0, 1, 2], _softmax(np.zeros((3, 3))), average="micro")
    with pytest.raises(ValueError, match="y_score must be finite"):
        roc_auc([0, 1], [0.1, np.inf])


# --------------------------------------------------------------------------- confusion_matrix


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_sklearn(seed):
    g = np.random.default_rng(seed)
    names = np.array(["b", "a", "c", "d"])
    y, yp = names[g.integers(0, 4, 50)], names[g.integers(0, 4, 50)]
    w = g.random(50)
    np.testing.assert_array_equal(confusion_matrix(y, yp), skm.confusion_matrix(y, yp))
    cm = confusion_matrix(y, yp)
    assert cm.dtype == np.int64
    labels = ["c", "a", "x"]  # subset, a label never seen, custom order
    np.testing.assert_array_equal(
        confusion_matrix(y, yp, labels=labels), skm.confusion_matrix(y, yp, labels=labels)
    )
    np.testing.assert_allclose(
        confusion_matrix(y, yp, sample_weight=w),
        skm.confusion_matrix(y, yp, sample_weight=w),
        rtol=1e-12,
    )
    yi, ypi = g.integers(0, 3, 50), g.integers(0, 3, 50)
    np.testing.assert_array_equal(confusion_matrix(yi, ypi), skm.confusion_matrix(yi, ypi))


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match="labels must be unique"):
        confusion_matrix([0, 1], [0, 1], labels=[0, 0])
    with pytest.raises(TypeError, match="must both hold strings or both hold numbers"):
        confusion_matrix([0, 1], [0, 1], labels=["a", "b"])


# --------------------------------------------------------------------------- report


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("k", [2, 3])
def test_classification_report_matches_sklearn(seed, k):
    g = np.random.default_rng(seed)
    m = 50
    y = g.integers(0, k, m)
    y[:k] = np.arange(k)
    w = _weights(g, m, True)
    P = _softmax(g.normal(size=(m, k)))
    proba = P[:, 1] if k == 2 else P
    names = np.array(["x", "y", "z"][:k])
    rep = classification_report(names[y], proba, labels=names, sample_weight=w)
    json.dumps(rep)  # JSON-ready
    pred = np.argmax(P, axis=1) if k > 2 else (P[:, 1] > 0.5).astype(int)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        y, pred, labels=range(k), sample_weight=w, zero_division=0
    )
    np.testing.assert_allclose(rep["precision"], prec, rtol=1e-12)
    np.testing.assert_allclose(rep["recall"], rec, rtol=1e-12)
    np.testing.assert_allclose(rep["f1"], f1, rtol=1e-12)
    np.testing.assert_allclose(rep["macro_f1"], np.mean(f1), rtol=1e-12)
    np.testing.assert_allclose(rep["support"], np.bincount(y, weights=w, minlength=k), rtol=1e-12)
    assert rep["labels"] == names.tolist() and rep["n_samples"] == m
    assert rep["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert rep["log_loss"] == pytest.approx(
        skm.log_loss(y, P, sample_weight=w, labels=range(k)), rel=1e-12
    )
    auc_ref = skm.roc_auc_score(y, P[:, 1] if k == 2 else P, multi_class="ovr", sample_weight=w)
    assert rep["roc_auc"] == pytest.approx(auc_ref, rel=1e-12)
    np.testing.assert_allclose(
        rep["confusion_matrix"],
        skm.confusion_matrix(y, pred, labels=range(k), sample_weight=w),
        rtol=1e-12,
    )


def test_classification_report_with_one_class_present():
    rep = classification_report([1, 1, 1], [0.9, 0.2, 0.6])
    assert rep["roc_auc"] is None
    assert rep["confusion_matrix"] == [[0, 0], [1, 2]]
    assert rep["precision"] == [0.0, 1.0]  # class 0 never predicted: 0, not NaN
    assert rep["recall"] == [0.0, pytest.approx(2 / 3)]
