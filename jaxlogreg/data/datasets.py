"""Data sets in memory: :class:`Dataset`, synthetic data from a known model, and splits.

Arrays follow the public layout: ``X`` of shape ``(m, n) = (n_samples, n_features)`` and ``y`` of
shape ``(m,)``. ``X`` is a NumPy array or, from LIBSVM files, a ``scipy.sparse`` CSR matrix,
which everything here keeps sparse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import train_test_split as sklearn_train_test_split

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params
from jaxlogreg.runtime.memory import aligned_empty

_DTYPES = ("float32", "float64")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``X`` (m, n) and labels ``y`` (m,) or None, with optional extras.

    Attributes:
      X: features, float32 or float64, shape (n_samples, n_features): a NumPy array, or a
        ``scipy.sparse.csr_matrix`` (LIBSVM files), never densified.
      y: labels, shape (n_samples,): class indices, or the labels as stored in the file; None
        for a file of features only (loaded with ``labels="optional"``).
      feature_names: one name per column of ``X`` when the source has them (CSV header).
      classes: class names in index order when the source has them (catvnoncat's
        ``list_classes``, or ``range(K)`` for synthetic data).
      true_params: the parameters that generated synthetic labels (``make_classification``).
      source: the file the data came from, or a description.
    """

    X: Any
    y: np.ndarray | None
    feature_names: tuple[str, ...] | None = None
    classes: tuple[Any, ...] | None = None
    true_params: Params | None = None
    source: str = ""

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


# --------------------------------------------------------------------------- synthetic data


def make_classification(
    n_samples: int = 1000,
    n_features: int = 20,
    n_classes: int = 2,
    *,
    seed: int = 0,
    separation: float = 3.0,
    label_noise: float = 0.0,
    intercept: float = 0.0,
    feature_scales: Sequence[float] | np.ndarray | None = None,
    dtype: str = "float32",
) -> Dataset:
    """Synthetic data drawn from a known logistic (K = 2) or softmax (K > 2) model.

    The generative model, with ``g = numpy.random.Generator(numpy.random.PCG64(seed))``::

        X0 ~ N(0, 1)                    (m, n)     standard normal features
        w0 ~ N(0, 1), scaled so that std(X0 w0) = separation
        z  = X0 w0 + b0                 (m,) or (m, K)
        y  ~ Bernoulli(σ(z))  or  Categorical(softmax(z))
        with probability label_noise, y is replaced by a uniformly drawn class
        X  = X0 * feature_scales        (the returned features; true w = w0 / feature_scales)

    so ``Dataset.true_params`` satisfies ``z = X w + b`` on the returned ``X``. The draws use
    only NumPy's ``PCG64`` bit generator, which gives the same numbers on every machine and OS
    for a given NumPy version (NumPy keeps these streams stable across releases in practice,
    though its policy does not promise it).

    Args:
      n_samples: m >= 1.
      n_features: n >= 1.
      n_classes: K >= 2; 2 gives a binary problem with ``w`` (n,), otherwise ``w`` is (n, K).
      seed: the seed of the generator.
      separation: standard deviation of the true logits; larger is easier (less label noise
        from the model itself). 0 gives labels independent of ``X``.
      label_noise: fraction in [0, 1] of labels replaced by a uniformly random class.
      intercept: ``b0`` for binary data (shifts the class balance); for K > 2 ``b0 = 0``.
      feature_scales: optional per-feature (n,) or scalar standard deviation of ``X``,
        to exercise standardization.
      dtype: ``"float32"`` (default) or ``"float64"`` for ``X`` and ``true_params``.

    Returns:
      A :class:`Dataset` with ``y`` int32 class indices in ``[0, K)``, ``classes = (0, ..., K-1)``
      and ``true_params`` as NumPy arrays.
    """
    m = v.check_int_at_least(n_samples, "n_samples", 1)
    n = v.check_int_at_least(n_features, "n_features", 1)
    k = v.check_int_at_least(n_classes, "n_classes", 2)
    separation = v.check_positive(separation, "separation", allow_zero=True)
    label_noise = v.check_positive(label_noise, "label_noise", allow_zero=True)
    if label_noise > 1:
        raise ValueError(f"label_noise must be a fraction in [0, 1], got {v.show(label_noise)}")
    if isinstance(intercept, bool) or not isinstance(intercept, int | float | np.number):
        raise TypeError(f"intercept must be a real number, got {v.show(intercept)}")
    if not math.isfinite(intercept):
        raise ValueError(f"intercept must be finite, got {v.show(intercept)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {v.show(seed)}")
    dtype_ = check_dtype(dtype)
    scales = _check_feature_scales(feature_scales, n)

    g = np.random.Generator(np.random.PCG64(int(seed)))
    X0 = g.standard_normal((m, n))
    w_shape = (n,) if k == 2 else (n, k)
    w0 = g.standard_normal(w_shape)
    w0 *= separation / np.sqrt(np.sum(w0 * w0, axis=0))  # std(X0 w0) = ||w0|| per column
    b0 = np.asarray(float(intercept)) if k == 2 else np.zeros(k)
    z = X0 @ w0 + b0
    u = g.random(m)
    if k == 2:
        a = 0.5 * (1.0 + np.tanh(0.5 * z))  # σ(z) without overflow in exp for z << 0
        y = (u < a).astype(np.int32)
    else:
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        y = np.minimum((u[:, None] >= np.cumsum(p, axis=1)).sum(axis=1), k - 1).astype(np.int32)
    flip = g.random(m) < label_noise
    y = np.where(flip, g.integers(0, k, size=m), y).astype(np.int32)

    w_true = w0 / (scales if k == 2 else scales[:, None])
    X = aligned_empty(X0.shape, dtype_)  # fits use an aligned X in place (runtime.memory)
    np.multiply(X0, scales, out=X, casting="unsafe")
    true_params = Params(w=w_true.astype(dtype_), b=b0.astype(dtype_))
    return Dataset(
        X=X,
        y=y,
        classes=tuple(range(k)),
        true_params=true_params,
        source=f"make_classification(seed={seed}, n_classes={k})",
    )


def check_dtype(dtype: Any) -> np.dtype:
    """``"float32"`` or ``"float64"`` (a NumPy/JAX dtype object is accepted too)."""
    name = dtype
    if dtype is not None and not isinstance(dtype, str):
        try:
            name = str(np.dtype(dtype))
        except TypeError:
            name = dtype
    return np.dtype(v.check_choice(name, "dtype", _DTYPES))


def _check_feature_scales(feature_scales: Any, n: int) -> np.ndarray:
    if feature_scales is None:
        return np.ones(n)
    scales = np.asarray(feature_scales, dtype=np.float64)
    if scales.ndim == 0:
        scales = np.full(n, float(scales))
    if scales.shape != (n,) or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError(
            f"feature_scales must be a positive finite scalar or array of shape ({n},), "
            f"got {np.asarray(feature_scales)!r}"
        )
    return scales


# --------------------------------------------------------------------------- splitting


def train_test_split(
    X: Any, y: Any, test_size: float = 0.2, *, seed: int = 0, stratify: bool = True
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Deterministic shuffled split ``X_train, X_test, y_train, y_test`` by scikit-learn's
    ``train_test_split(..., random_state=seed, stratify=y if stratify else None)``.

    Args:
      X: (m, n) features, array-like or scipy.sparse; a sparse X is split by rows into two CSR
        matrices (never densified), the same rows a dense copy would give.
      y: (m,) labels of any type.
      test_size: a fraction in (0, 1) (the test set gets ``ceil(test_size * m)`` samples) or a
        number of test samples in [1, m - 1].
      seed: a non-negative integer, scikit-learn's ``random_state``.
      stratify: keep each class's share in both parts. Where that is impossible (a class with
        fewer than 2 samples, or a part smaller than the number of classes) the split is a plain
        shuffled one instead.
    """
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)  # CSR: rows can be indexed
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D with shape (n_samples, n_features), got shape {X.shape}")
    m = X.shape[0]
    if y.ndim != 1 or y.shape[0] != m:
        raise ValueError(f"y must have shape ({m},) to match X's {m} samples, got shape {y.shape}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {v.show(seed)}")
    n_test = _n_test(test_size, m)
    if stratify:  # the conditions under which scikit-learn can stratify
        counts = np.unique(y, return_counts=True)[1]
        stratify = counts.min() >= 2 and min(n_test, m - n_test) >= len(counts)
    train, test = sklearn_train_test_split(
        np.arange(m), test_size=test_size, random_state=int(seed), stratify=y if stratify else None
    )
    return _rows(X, train), _rows(X, test), y[train], y[test]


def _rows(X: Any, index: np.ndarray) -> Any:
    """X's rows ``index``: CSR rows, or a dense copy that fits use in place (aligned)."""
    if sp.issparse(X):
        return X[index]
    return np.take(X, index, axis=0, out=aligned_empty((index.size, *X.shape[1:]), X.dtype))


def _n_test(test_size: Any, m: int) -> int:
    """The number of test samples, as scikit-learn computes it; checks ``test_size`` and m."""
    if m < 2:
        raise ValueError(f"train_test_split needs at least 2 samples, got {m}")
    if isinstance(test_size, bool):
        raise TypeError(
            f"test_size must be a fraction in (0, 1) or an integer, got {v.show(test_size)}"
        )
    if isinstance(test_size, int | np.integer):
        if not 1 <= test_size <= m - 1:
            raise ValueError(
                f"test_size as a count must be in [1, {m - 1}] for {m} samples, "
                f"got {v.show(test_size)}"
            )
        return int(test_size)
    if isinstance(test_size, float | np.floating) and 0 < test_size < 1:
        n_test = math.ceil(test_size * m)
        if n_test > m - 1:
            raise ValueError(
                f"test_size={v.show(test_size)} leaves no training samples out of {m}; "
                "use a smaller value"
            )
        return n_test
    raise ValueError(
        f"test_size must be a fraction in (0, 1) or an integer, got {v.show(test_size)}"
    )
