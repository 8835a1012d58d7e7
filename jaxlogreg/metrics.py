"""Classification metrics, vectorized in NumPy (float64) on host arrays; JAX arrays are accepted.

Conventions: ``y_true`` holds class indices ``0..K-1`` (what :func:`jaxlogreg.predict` returns),
or any class values when ``labels`` gives them in the column order of ``proba``. Probabilities
are ``(m,)`` = P(class 1) for binary problems, or ``(m, K)`` with rows summing to 1.
Every function takes an optional ``sample_weight`` (m,) of non-negative weights.

Formulas (``s_i`` the weights, ``p_i`` the probability given to the true class)::

    log_loss  = -Σ s_i log p_i / Σ s_i          no clipping: p_i = 0 gives inf
    accuracy  =  Σ s_i [y_i = ŷ_i] / Σ s_i
    roc_auc   =  U / (W+ W-)    Mann-Whitney U from average ranks, so a tie counts 1/2;
                                 K > 2: one-vs-rest per class, then the macro mean
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxlogreg import _validation as v


def _as_1d(x: Any, name: str) -> np.ndarray:
    """A non-empty 1-D NumPy array of numbers, bools or strings."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D with shape (n_samples,), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype.kind not in "biufUS":
        raise TypeError(f"{name} must hold numbers, bools or strings, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        v.check_finite(arr, name)
    return arr


def _weights(sample_weight: Any, m: int) -> np.ndarray:
    """Float64 weights (m,): ones when ``sample_weight`` is None."""
    if sample_weight is None:
        return np.ones(m)
    sw = v.as_array(sample_weight, "sample_weight")
    v.check_ndim(sw, "sample_weight", 1, "(n_samples,)")
    if sw.shape[0] != m:
        raise ValueError(
            f"sample_weight must have shape ({m},) to match y_true's {m} samples, "
            f"got shape {tuple(sw.shape)}"
        )
    sw = np.asarray(sw, dtype=np.float64)
    v.check_finite(sw, "sample_weight")
    if (sw < 0).any():
        raise ValueError(f"sample_weight must be >= 0, got minimum {sw.min()}")
    if sw.sum() <= 0:
        raise ValueError("sample_weight must have a positive sum, got all zeros")
    return sw


def _check_labels(labels: Any, n_classes: int | None = None) -> np.ndarray:
    lab = _as_1d(labels, "labels")
    if np.unique(lab).shape[0] != lab.shape[0]:
        raise ValueError(f"labels must be unique, got {lab.tolist()}")
    if n_classes is not None and lab.shape[0] != n_classes:
        raise ValueError(
            f"labels must name the {n_classes} classes of the probability columns, "
            f"got {lab.shape[0]} labels {lab.tolist()}"
        )
    return lab


def _encode(y: np.ndarray, labels: np.ndarray | None, n_classes: int, name: str) -> np.ndarray:
    """Class indices (m,) in [0, n_classes): positions of ``y`` in ``labels``, or ``y`` itself."""
    if labels is not None:
        return _positions(y, labels, name)
    if y.dtype.kind in "US":
        raise TypeError(
            f"{name} holds strings {np.unique(y)[:5].tolist()}: pass labels=[...] giving the "
            "class of each probability column"
        )
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError(f"{name} must hold class indices 0..{n_classes - 1}, got non-integers")
    idx = y.astype(np.int64)
    if idx.min() < 0 or idx.max() >= n_classes:
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes - 1}] (or pass labels=[...]), "
            f"got values from {idx.min()} to {idx.max()}"
        )
    return idx


def _positions(y: np.ndarray, labels: np.ndarray, name: str) -> np.ndarray:
    """Index of each ``y`` in ``labels``; raises listing values that are not in ``labels``."""
    _check_comparable(y, labels, name, "labels")
    sorter = np.argsort(labels, kind="stable")
    pos = np.clip(np.searchsorted(labels, y, sorter=sorter), 0, labels.shape[0] - 1)
    idx = sorter[pos]
    unknown = labels[idx] != y
    if unknown.any():
        raise ValueError(
            f"{name} holds value(s) {np.unique(y[unknown])[:5].tolist()} that are not in "
            f"labels {labels.tolist()}"
        )
    return idx


def _check_comparable(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if (a.dtype.kind in "US") != (b.dtype.kind in "US"):
        raise TypeError(
            f"{name_a} (dtype {a.dtype}) and {name_b} (dtype {b.dtype}) must both hold strings "
            "or both hold numbers"
        )


def _proba(proba: Any, m: int, name: str = "proba") -> np.ndarray:
    """Probabilities as float64 (m,) or (m, K), in [0, 1], rows summing to 1 for (m, K)."""
    p = v.as_array(proba, name)
    if p.ndim not in (1, 2) or p.shape[0] != m or (p.ndim == 2 and p.shape[1] < 2):
        raise ValueError(
            f"{name} must have shape ({m},) for binary or ({m}, K) with K >= 2 to match "
            f"y_true's {m} samples, got shape {tuple(p.shape)}"
        )
    src_dtype = np.dtype(p.dtype) if np.dtype(p.dtype).kind == "f" else np.dtype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    v.check_finite(p, name)
    if p.min() < 0 or p.max() > 1:
        raise ValueError(
            f"{name} must hold probabilities in [0, 1], got values from {p.min()} to {p.max()}"
        )
    if p.ndim == 2:
        # the tolerance scikit-learn uses: sqrt of the machine epsilon of the input dtype
        rtol = float(np.sqrt(np.finfo(src_dtype).eps))
        sums = p.sum(axis=1)
        bad = np.abs(sums - 1) > rtol
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{name} rows must sum to 1 (within {rtol:.1e}), got row {i} summing to {sums[i]}"
            )
    return p


def log_loss(
    y_true: Any,
    proba: Any,
    *,
    labels: Sequence[Any] | None = None,
    sample_weight: Any = None,
) -> float:
    """Mean cross-entropy ``-Σ s_i log p_i / Σ s_i`` of the probabilities given to the true class.

    Args:
      y_true: (m,) class indices, or class values listed in ``labels``.
      proba: (m,) P(class 1) for binary, or (m, K) class probabilities (K = 2 allowed).
      labels: the class of each probability column (binary (m,): ``[negative, positive]``).
      sample_weight: optional (m,) non-negative weights.

    No clipping: a true class given probability 0 costs ``inf``. For binary (m,) input the
    negative class uses ``log1p(-p)``, accurate when ``p`` is tiny.
    """
    y = _as_1d(y_true, "y_true")
    m = y.shape[0]
    p = _proba(proba, m)
    n_classes = 2 if p.ndim == 1 else p.shape[1]
    lab = None if labels is None else _check_labels(labels, n_classes)
    idx = _encode(y, lab, n_classes, "y_true")
    w = _weights(sample_weight, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        if p.ndim == 1:
            losses = -np.where(idx == 1, np.log(p), np.log1p(-p))
        else:
            losses = -np.log(p[np.arange(m), idx])
        # 0 * inf = nan: an example with weight 0 must not count, whatever its loss
        total = np.sum(np.where(w > 0, w * losses, 0.0))
    return float(total / np.sum(w))


def accuracy(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    """Fraction (weighted by ``sample_weight``) of ``y_pred`` equal to ``y_true``; both (m,)."""
    y = _as_1d(y_true, "y_true")
    yp = _as_1d(y_pred, "y_pred")
    if yp.shape != y.shape:
        raise ValueError(f"y_pred must have shape {y.shape} like y_true, got {yp.shape}")
    _check_comparable(y, yp, "y_true", "y_pred")
    w = _weights(sample_weight, y.shape[0])
    return float(np.sum(w * (y == yp)) / np.sum(w))


def _binary_auc(positive: np.ndarray, score: np.ndarray, w: np.ndarray) -> float:
    """Mann-Whitney AUC of ``score`` for the ``positive`` mask, weighted, ties at 1/2.

    Weighted average ranks: the samples tied at one score value share the rank
    ``W_below + W_tied / 2`` (W = sum of weights). Then ``U = Σ_pos w r - W+² / 2`` counts, over
    (positive, negative) pairs, ``w_i w_j`` when the positive scores higher and half that on a
    tie; with unit weights this is the textbook ``R+ - n+(n+ + 1)/2`` with average ranks.
    """
    order = np.argsort(score, kind="stable")
    s, ws, pos = score[order], w[order], positive[order]
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1  # tie group of each sorted sample
    group_w = np.bincount(group, weights=ws)
    rank = (np.cumsum(group_w) - group_w / 2)[group]  # W_below + W_tied / 2
    w_pos = np.sum(ws[pos])
    w_neg = np.sum(ws[~pos])
    u = np.sum(ws[pos] * rank[pos]) - w_pos * w_pos / 2
    return float(u / (w_pos * w_neg))


def roc_auc(
    y_true: Any,
    y_score: Any,
    *,
    labels: Sequence[Any] | None = None,
    average: str | None = "macro",
    sample_weight: Any = None,
) -> float | np.ndarray:
    """Area under the ROC curve.

    Args:
      y_true: (m,) class indices, or class values listed in ``labels``.
      y_score: (m,) score of class 1 (any monotone score: probability, logit), or (m, K)
        (for K = 2 column 1 is used).
      labels: the class of each score column (binary (m,): ``[negative, positive]``).
      average: for K > 2, ``"macro"`` (mean of the one-vs-rest AUCs), ``"weighted"`` (by each
        class's weighted prevalence) or ``None`` (the K per-class AUCs as an array).
      sample_weight: optional (m,) non-negative weights.

    Raises ``ValueError`` when it is undefined: only one class in ``y_true`` (binary), or a
    class absent from (or making up all of) ``y_true`` (one-vs-rest).
    """
    y = _as_1d(y_true, "y_true")
    m = y.shape[0]
    s = v.as_array(y_score, "y_score")
    if s.ndim not in (1, 2) or s.shape[0] != m or (s.ndim == 2 and s.shape[1] < 2):
        raise ValueError(
            f"y_score must have shape ({m},) or ({m}, K) with K >= 2 to match y_true's {m} "
            f"samples, got shape {tuple(s.shape)}"
        )
    s = np.asarray(s, dtype=np.float64)
    v.check_finite(s, "y_score")
    n_classes = 2 if s.ndim == 1 else s.shape[1]
    lab = None if labels is None else _check_labels(labels, n_classes)
    idx = _encode(y, lab, n_classes, "y_true")
    w = _weights(sample_weight, m)
    names = lab.tolist() if lab is not None else list(range(n_classes))
    if n_classes == 2:
        present = np.unique(idx[w > 0])
        if present.shape[0] < 2:
            raise ValueError(
                "roc_auc is undefined when y_true holds only one class, got only "
                f"{names[int(present[0])]!r}"
            )
        return _binary_auc(idx == 1, s if s.ndim == 1 else s[:, 1], w)
    if average not in ("macro", "weighted", None):
        raise ValueError(f"average must be one of ['macro', 'weighted', None], got {average!r}")
    class_w = np.bincount(idx, weights=w, minlength=n_classes)
    undefined = (class_w == 0) | (class_w == np.sum(w))
    if undefined.any():
        k = int(np.argmax(undefined))
        raise ValueError(
            f"one-vs-rest roc_auc is undefined for class {names[k]!r}: y_true must hold both "
            f"that class and others (it has weight {class_w[k]} of {np.sum(w)})"
        )
    aucs = np.array([_binary_auc(idx == k, s[:, k], w) for k in range(n_classes)])
    if average is None:
        return aucs
    if average == "weighted":
        return float(np.sum(aucs * class_w) / np.sum(class_w))
    return float(np.mean(aucs))


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence[Any] | None = None,
    sample_weight: Any = None,
) -> np.ndarray:
    """``C[i, j]`` = number (or weight) of samples of class ``labels[i]`` predicted ``labels[j]``.

    Args:
      y_true, y_pred: (m,) labels of the same kind (numbers or strings).
      labels: row/column order; default the sorted union of ``y_true`` and ``y_pred``.
        Samples whose true or predicted label is not in ``labels`` are left out.
      sample_weight: optional (m,) weights; the result is int64 counts without them, float64
        with them.

    Returns:
      (K, K) array, rows = true class, columns = predicted class.
    """
    y = _as_1d(y_true, "y_true")
    yp = _as_1d(y_pred, "y_pred")
    if yp.shape != y.shape:
        raise ValueError(f"y_pred must have shape {y.shape} like y_true, got {yp.shape}")
    _check_comparable(y, yp, "y_true", "y_pred")
    w = None if sample_weight is None else _weights(sample_weight, y.shape[0])
    lab = np.unique(np.concatenate([y, yp])) if labels is None else _check_labels(labels)
    _check_comparable(y, lab, "y_true", "labels")
    k = lab.shape[0]
    sorter = np.argsort(lab, kind="stable")
    i = sorter[np.clip(np.searchsorted(lab, y, sorter=sorter), 0, k - 1)]
    j = sorter[np.clip(np.searchsorted(lab, yp, sorter=sorter), 0, k - 1)]
    keep = (lab[i] == y) & (lab[j] == yp)
    flat = i[keep] * k + j[keep]
    if w is None:
        return np.bincount(flat, minlength=k * k).astype(np.int64).reshape(k, k)
    return np.bincount(flat, weights=w[keep], minlength=k * k).reshape(k, k)


def classification_report(
    y_true: Any,
    proba: Any,
    *,
    labels: Sequence[Any] | None = None,
    sample_weight: Any = None,
) -> dict[str, Any]:
    """All metrics for probabilities ``proba`` as a JSON-ready dict.

    Predictions are ``p > 0.5`` for binary (m,) input (the same as ``z > 0``) and the argmax
    column otherwise. Keys: ``n_samples``, ``labels``, ``accuracy``, ``log_loss``, ``roc_auc``
    (``None`` where undefined, e.g. one class present), ``confusion_matrix`` (rows = true),
    and per-class lists ``precision``, ``recall``, ``f1``, ``support`` (0 where undefined),
    plus their unweighted means ``macro_precision``, ``macro_recall``, ``macro_f1``.
    """
    y = _as_1d(y_true, "y_true")
    m = y.shape[0]
    p = _proba(proba, m)
    n_classes = 2 if p.ndim == 1 else p.shape[1]
    lab = np.arange(n_classes) if labels is None else _check_labels(labels, n_classes)
    idx = _encode(y, None if labels is None else lab, n_classes, "y_true")
    pred = (p > 0.5).astype(np.int64) if p.ndim == 1 else np.argmax(p, axis=1)
    cm = confusion_matrix(idx, pred, labels=np.arange(n_classes), sample_weight=sample_weight)
    cm_f = cm.astype(np.float64)
    tp = np.diag(cm_f)
    support = cm_f.sum(axis=1)
    predicted = cm_f.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    try:
        auc: float | None = float(
            roc_auc(idx, p, average="macro", sample_weight=sample_weight)  # type: ignore[arg-type]
        )
    except ValueError:
        auc = None
    return {
        "n_samples": int(m),
        "labels": lab.tolist(),
        "accuracy": accuracy(idx, pred, sample_weight=sample_weight),
        "log_loss": log_loss(idx, p, sample_weight=sample_weight),
        "roc_auc": auc,
        "confusion_matrix": cm.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
    }
