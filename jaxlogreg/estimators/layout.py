"""The two layouts of the same model, and what the one-logit binary model means for prediction.

Training keeps ``Params(w, b)``: binary ``w`` (n,), ``b`` (); softmax ``w`` (n, K), ``b`` (K,).
scikit-learn keeps ``coef_`` (1, n) or (K, n) and ``intercept_`` (1,) or (K,). The binary model
has one logit ``z`` (the score of ``classes[1]``, probability ``σ(z)``), so its predictions
read ``z > 0`` and ``[f(-z), f(z)]`` where the softmax model reads the K logits.
Parameters that come from outside (a file, a user) are checked: shapes and finite values, since
a model with NaN weights would predict ``classes[0]`` for every row without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params


def coef_and_intercept(params: Params) -> tuple[np.ndarray, np.ndarray]:
    """``coef_`` and ``intercept_`` (new arrays) from parameters in the training layout: binary
    ``w`` (n,), ``b`` () -> (1, n), (1,); softmax ``w`` (n, K), ``b`` (K,) -> (K, n), (K,)."""
    w, b = np.asarray(params.w), np.asarray(params.b)
    if w.ndim == 1:
        return w.reshape(1, -1).copy(), b.reshape(1).copy()
    return np.ascontiguousarray(w.T), b.copy()


def params_of(coef: Any, intercept: np.ndarray, binary: bool) -> Params:
    """The inverse of :func:`coef_and_intercept` (``coef`` dense or scipy.sparse); refuses
    coefficients that are not finite, naming ``coef_`` or ``intercept_``."""
    coef = coef.toarray() if sp.issparse(coef) else coef
    v.check_finite(np.asarray(coef), "coef_")
    v.check_finite(np.asarray(intercept), "intercept_")
    if binary:
        return Params(w=coef[0].copy(), b=np.asarray(intercept[0]))
    return Params(w=np.ascontiguousarray(coef.T), b=intercept.copy())


def checked_params(params: Params) -> tuple[np.ndarray, np.ndarray]:
    """``params.w`` and ``params.b`` as arrays, checked: real numbers, finite, and binary ``w``
    (n,) with one ``b``, or softmax ``w`` (n, K), K >= 2, with ``b`` (K,); n >= 1."""
    w = np.asarray(v.as_array(params.w, "params.w"))
    b = np.asarray(v.as_array(params.b, "params.b"))
    if w.ndim not in (1, 2) or w.shape[0] == 0 or (w.ndim == 2 and w.shape[1] < 2):
        raise ValueError(
            "params.w must have shape (n_features,) (two classes) or (n_features, n_classes) "
            f"with n_features >= 1 and n_classes >= 2, got {v.describe(w)}"
        )
    binary = w.ndim == 1
    if not ((b.size == 1 and b.ndim <= 1) if binary else b.shape == (w.shape[1],)):
        expected = "() or (1,)" if binary else f"({w.shape[1]},)"
        raise ValueError(
            f"params.b must have shape {expected} to match params.w of shape {w.shape}, "
            f"got {v.describe(b)}"
        )
    v.check_finite(w, "params.w")
    v.check_finite(b, "params.b")
    return w, b


def predicted_index(z: np.ndarray, binary: bool) -> np.ndarray:
    """The class index of the largest probability from logits: ``z > 0`` for two classes (z
    without a class axis), else the first largest logit on the last axis."""
    return (z > 0).astype(np.intp) if binary else np.argmax(z, axis=-1)


def per_class(z: np.ndarray, binary: Callable, multi: Callable) -> np.ndarray:
    """(m, K) columns from logits: ``[f(-z), f(z)]`` for two classes (z (m,)), ``g(z)`` over the
    classes otherwise (``f, g``: ``expit, softmax`` or ``log_expit, log_softmax``)."""
    return np.column_stack([binary(-z), binary(z)]) if z.ndim == 1 else multi(z, axis=1)
