"""classification_report: scikit-learn's metrics gathered in one JSON-ready dict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxlogreg.data.archive import dumps
from jaxlogreg.report.metrics import classification_report


def _proba(m, k, seed=0):
    p = np.random.default_rng(seed).random((m, k)) + 0.05
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_report_values_are_scikit_learns(k, weighted):
    rng = np.random.default_rng(k)
    labels = np.array(["cat", "dog", "emu"][:k])
    y = labels[rng.integers(0, k, size=40)]
    proba = _proba(40, k, seed=k)
    sw = rng.uniform(0.5, 2.0, size=40) if weighted else None
    report = classification_report(y, proba, labels, sample_weight=sw)
    y_pred = labels[np.argmax(proba, axis=1)]
    assert report["n_samples"] == 40 and report["labels"] == labels.tolist()
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred, sample_weight=sw))
    assert report["log_loss"] == pytest.approx(
        skm.log_loss(y, proba, labels=labels, sample_weight=sw))
    if k == 2:
        auc = skm.roc_auc_score(y == labels[1], proba[:, 1], sample_weight=sw)
    else:
        auc = skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels, sample_weight=sw)
    assert report["roc_auc"] == pytest.approx(auc)
    cm = skm.confusion_matrix(y, y_pred, labels=labels, sample_weight=sw)
    np.testing.assert_allclose(report["confusion_matrix"], cm)
    p, r, f, s = skm.precision_recall_fscore_support(
        y, y_pred, labels=labels, sample_weight=sw, zero_division=0)
    np.testing.assert_allclose(report["precision"], p)
    np.testing.assert_allclose(report["recall"], r)
    np.testing.assert_allclose(report["f1"], f)
    np.testing.assert_allclose(report["support"], s)
    assert report["macro_f1"] == pytest.approx(np.mean(f))
    json.loads(dumps(report))  # JSON-ready


def test_binary_prediction_is_z_greater_than_zero_and_a_tie_goes_to_the_first_class():
    proba = np.array([[0.5, 0.5], [0.4, 0.6], [0.7, 0.3]])
    report = classification_report(np.array([0, 1, 0]), proba, np.array([0, 1]))
    assert report["accuracy"] == 1.0  # the tie row predicts class 0


def test_roc_auc_is_none_when_a_class_is_missing():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    report = classification_report(np.array([0, 0, 0]), proba, np.array([0, 1]))
    assert report["roc_auc"] is None
    assert report["recall"] == [2 / 3, 0.0]  # class 1 has no samples: recall 0 by convention


def test_shape_mismatch_names_both_sizes():
    with pytest.raises(ValueError, match=r"proba must have shape \(4, 2\) for 4 samples and 2"):
        classification_report(np.zeros(4), _proba(3, 2), np.array([0, 1]))
