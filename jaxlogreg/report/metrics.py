"""The metrics the CLI reports, computed by :mod:`sklearn.metrics`.

:func:`classification_report` gathers them into one JSON-ready dict: accuracy, log loss
(scikit-learn clips probabilities to [eps, 1 - eps]), ROC AUC (one-vs-rest macro average for
K > 2 classes; None where undefined, e.g. a single class present), the confusion matrix and
per-class precision, recall, F1 and support.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics


def classification_report(
    y_true: Any, proba: Any, labels: Any, *, sample_weight: Any = None
) -> dict[str, Any]:
    """All metrics for class probabilities ``proba`` (m, K) whose columns follow ``labels``.

    Predictions are the most probable column (for two classes: ``p > 0.5``, i.e. ``z > 0``;
    a tie goes to the first class). Keys: ``n_samples``, ``labels``, ``accuracy``,
    ``log_loss``, ``roc_auc``, ``confusion_matrix`` (rows = true class), per-class lists
    ``precision``, ``recall``, ``f1``, ``support`` (0 where undefined) and their unweighted
    means ``macro_precision``, ``macro_recall``, ``macro_f1``.
    """
    labels = np.asarray(labels)
    proba = np.asarray(proba)  # kept in its dtype: scikit-learn checks row sums at its precision
    proba = proba if proba.dtype.kind == "f" else proba.astype(np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim != 2 or proba.shape != (y_true.shape[0], labels.shape[0]):
        raise ValueError(
            f"proba must have shape ({y_true.shape[0]}, {labels.shape[0]}) for "
            f"{y_true.shape[0]} samples and {labels.shape[0]} labels, got {proba.shape}"
        )
    y_pred = labels[np.argmax(proba, axis=1)]
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, sample_weight=sample_weight, zero_division=0
    )
    return {
        "n_samples": int(y_true.shape[0]),
        "labels": labels.tolist(),
        "accuracy": float(metrics.accuracy_score(y_true, y_pred, sample_weight=sample_weight)),
        "log_loss": float(
            metrics.log_loss(y_true, proba, labels=labels, sample_weight=sample_weight)
        ),
        "roc_auc": _roc_auc(y_true, proba, labels, sample_weight),
        "confusion_matrix": metrics.confusion_matrix(
            y_true, y_pred, labels=labels, sample_weight=sample_weight
        ).tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": np.asarray(support, np.float64).tolist(),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
    }


def _roc_auc(y_true, proba, labels, sample_weight) -> float | None:
    """ROC AUC, or None where scikit-learn finds it undefined (a class missing from y_true)."""
    present = np.isin(labels, y_true)
    if not present.all():
        return None
    if labels.shape[0] == 2:
        score, kwargs = proba[:, 1], {}
        y_true = y_true == labels[1]
    else:
        score, kwargs = proba, {"multi_class": "ovr", "average": "macro", "labels": labels}
    return float(metrics.roc_auc_score(y_true, score, sample_weight=sample_weight, **kwargs))
