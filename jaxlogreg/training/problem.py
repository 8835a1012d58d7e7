"""A fit's data checked once, at the public boundary: :func:`validate` returns a :class:`Problem`.

The public entry points (``jaxlogreg.fit``, ``fit_path``, the estimators, streaming and
several processes for their labels and weights) call :func:`validate` (or its parts
:func:`check_labels` and :func:`relative_weights`); the inner layers (:mod:`~.data`, the
loop, the path) take the :class:`Problem` and check nothing again.

Weights are kept relative to the largest, with their float64 sum beside: J = Σ s_i L_i / Σ s_i
is unchanged, weights of 1e300 or 5e-324 stay representable in float32, and the penalty
strength ``λ = 1 / (C Σ s)`` uses the true sum.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import accumulation_dtype, check_X_structure
from jaxlogreg.core.sparse import check_dense


@dataclasses.dataclass(frozen=True)
class Problem:
    """Checked data of a fit.

    Attributes:
      X: (m, n): a dense array (NumPy or JAX; type and shape checked, values checked while it
        is laid out for training) or a canonical CSR array (indices and values checked).
      y: (m,) 0/1 labels (binary) or class indices 0..K-1.
      weights: (m,) float64 weights relative to the largest (sample weight times class
        weight), or None when every row weighs the same.
      weight_sum: Σ s over the rows, in float64 (m without weights).
      n_classes: 2 or K.
      dtype: the fit's dtype, "float32" or "float64".
    """

    X: Any
    y: np.ndarray
    weights: np.ndarray | None
    weight_sum: float
    n_classes: int
    dtype: str


def resolve_dtype(dtype: str | None, X: Any) -> str:
    """The fit's dtype: ``dtype`` if given, else scikit-learn's rule: float32 (or 16-bit) input
    gives a float32 model, anything else float64."""
    if dtype is not None:
        return dtype
    x_dtype = np.dtype(getattr(X, "dtype", np.float64))
    return "float32" if x_dtype.kind == "f" and x_dtype.itemsize <= 4 else "float64"


def infer_n_classes(y: Any) -> int:
    """2 when all labels are 0/1, else ``max(y) + 1`` for integer class indices."""
    y = np.asarray(y)
    if y.size and np.isin(y, (0, 1)).all():
        return 2
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "y must hold 0/1 labels or integer class indices 0..K-1 (use "
            f"jaxlogreg.LogisticRegression for arbitrary labels), got dtype {y.dtype}"
        )
    return int(y.max()) + 1 if y.size else 2


def check_labels(y: Any, m: int, n_classes: int | None) -> tuple[np.ndarray, int]:
    """y (m,) as a NumPy array of 0/1 labels or class indices, and the number of classes
    (inferred from y when None)."""
    check_dense(y, "y", "a 1-D array of labels")
    y = np.asarray(v.as_array(y, "y"))
    n_classes = infer_n_classes(y) if n_classes is None else v.check_int_at_least(
        n_classes, "n_classes", 2)
    return np.asarray(v.check_y(y, m, n_classes)), n_classes


def relative_weights(
    y: np.ndarray, sample_weight: Any, class_weight: Any, n_classes: int
) -> tuple[np.ndarray | None, float]:
    """``sample_weight × class_weight[y]`` relative to its largest, and its float64 sum
    (``(None, m)`` when neither is given).

    ``class_weight`` is a dict {class index: weight} or "balanced", which uses the weighted
    class counts ``Σ s / (K · Σ_{y_i = k} s_i)`` (scikit-learn's rule).
    """
    m = y.shape[0]
    if sample_weight is not None:
        sample_weight = np.asarray(v.check_sample_weight(sample_weight, m), np.float64)
    if class_weight is None:
        weights = sample_weight
    else:
        per_class = compute_class_weight(
            class_weight, classes=np.arange(n_classes), y=np.asarray(y, np.int64),
            sample_weight=sample_weight)
        weights = per_class[np.asarray(y, np.int64)]
        weights = weights if sample_weight is None else weights * sample_weight
        if not np.all(np.isfinite(weights)) or not weights.max() > 0:
            raise ValueError(
                "class_weight times sample_weight must be finite with a positive sum, got "
                f"class weights {per_class.tolist()}")
    if weights is None:
        return None, float(m)
    largest = float(weights.max())
    relative = weights / largest
    return relative, float(relative.sum()) * largest


def row_indices(part: Any, m: int, name: str) -> np.ndarray:
    """Rows of the data from an index array or a boolean mask of length m, as sorted-or-not
    ``np.intp`` indices; errors name ``name``."""
    part = np.asarray(part)
    if part.dtype == bool:
        if part.shape != (m,):
            raise ValueError(f"{name} as a mask must have shape ({m},), got {part.shape}")
        return np.flatnonzero(part)
    if part.ndim != 1 or (part.size and not np.issubdtype(part.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D array of row indices, got {part!r}")
    if part.size and (part.min() < 0 or part.max() >= m):
        raise ValueError(f"{name} has row indices outside [0, {m - 1}]")
    return part.astype(np.intp)


def check_penalty(strength: Any, C: Any, weight_sum: float, dtype: Any) -> None:
    """The penalty strength ``λ = 1 / (C Σ s)`` (one, or one per model) is at most 1/eps of the
    fit's dtype: beyond it the coefficients are 0 to working precision and the loss's gradient
    is lost next to the penalty's (the solvers stall far from the optimum, or diverge). The
    error names C and the sum of the weights."""
    dtype = np.dtype(accumulation_dtype(dtype))
    limit = 1 / float(np.finfo(dtype).eps)
    strength = np.asarray(strength, np.float64)
    if not np.all(strength <= limit):  # NaN and inf too
        worst = int(np.argmax(np.where(np.isnan(strength), np.inf, strength)))
        C = np.broadcast_to(np.asarray(C, np.float64), strength.shape).ravel()[worst]
        remedies = ["a larger C", "larger sample weights"]
        remedies += ["dtype='float64'"] if dtype != np.float64 else []
        raise ValueError(
            f"C={C:g} with sample weights summing to {weight_sum:.3g} gives a penalty strength "
            f"1 / (C · sum of sample weights) = {strength.ravel()[worst]:.3g}, above "
            f"1/eps = {limit:.3g} of {dtype}: the coefficients would be 0 to working precision; "
            f"use {', '.join(remedies[:-1])} or {remedies[-1]}")


def validate(
    X: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    class_weight: Any = None,
    n_classes: int | None = None,
    dtype: str | None = None,
) -> Problem:
    """Check a fit's data once (see the module docstring); errors name the argument."""
    X = check_X_structure(X)
    y, n_classes = check_labels(y, X.shape[0], n_classes)
    weights, weight_sum = relative_weights(y, sample_weight, class_weight, n_classes)
    return Problem(X, y, weights, weight_sum, n_classes, resolve_dtype(dtype, X))
