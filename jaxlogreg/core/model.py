"""The model: parameters and the forward pass ``z = X w + b``, ``a = σ(z)``.

Binary logistic regression (lectures 2.9-2.14) has ``w`` of shape ``(n,)`` and a scalar ``b``.
Multinomial (softmax) regression for K classes has ``W`` of shape ``(n, K)`` and ``b`` of shape
``(K,)``; binary is the special case of one logit per example.

Public layout: ``X`` is ``(m, n) = (n_samples, n_features)``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from jaxlogreg.core import checks as v
from jaxlogreg.core.sparse import (
    CooMatrix,
    as_csr,
    check_dense,
    coo_of_csr,
    is_sparse,
    sparse_dot,
)


class Params(NamedTuple):
    """Model parameters, a pytree: ``w`` (n,) or (n, K) and ``b`` () or (K,)."""

    w: jax.Array
    b: jax.Array


def accumulation_dtype(dtype: Any) -> jnp.dtype:
    """Parameters and sums use float32 for 16-bit inputs, otherwise the input's float dtype."""
    dtype = jnp.dtype(dtype)
    if dtype.itemsize < 4 or not jnp.issubdtype(dtype, jnp.floating):
        return jnp.dtype(jnp.float32)
    return dtype


def float64_enabled(on: bool) -> contextlib.AbstractContextManager:
    """``jax.enable_x64(True)`` when ``on`` and float64 is off (for one block, never globally);
    otherwise a context that changes nothing."""
    if on and not jax.config.jax_enable_x64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def in_params_dtype(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(params, ...)`` computed in the parameters' dtype: float64 parameters (NumPy arrays,
    as :func:`jaxlogreg.fit` returns) enable float64 for the call, so their results are float64
    instead of being truncated to float32."""

    @functools.wraps(fn)
    def in_dtype(params: Any, *args: Any, **kwargs: Any) -> Any:
        leaves = jax.tree.leaves(params)
        with float64_enabled(any(getattr(x, "dtype", None) == np.float64 for x in leaves)):
            return fn(params, *args, **kwargs)

    return in_dtype


def init_params(n_features: int, n_classes: int = 2, dtype: Any = jnp.float32) -> Params:
    """Zero initialisation, as in the course: ``w = 0``, ``b = 0``.

    Args:
      n_features: n, the number of input features.
      n_classes: 2 for binary (``w`` of shape (n,)), K > 2 for softmax (``w`` of shape (n, K)).
      dtype: parameter dtype (float32 by default).
    """
    v.check_int_at_least(n_features, "n_features", 1)
    v.check_int_at_least(n_classes, "n_classes", 2)
    try:
        is_float = jnp.issubdtype(jnp.dtype(dtype), jnp.floating)
    except TypeError:
        is_float = False
    if not is_float:
        raise TypeError(f"dtype must be a floating dtype such as float32, got {dtype!r}")
    dtype = accumulation_dtype(dtype)
    if n_classes == 2:
        return Params(w=jnp.zeros((n_features,), dtype), b=jnp.zeros((), dtype))
    return Params(w=jnp.zeros((n_features, n_classes), dtype), b=jnp.zeros((n_classes,), dtype))


def n_classes_of(params: Params) -> int:
    """2 for binary parameters, K for multinomial ones."""
    return 2 if params.w.ndim == 1 else params.w.shape[1]


def check_params(params: Any, n_features: int | None = None) -> Params:
    """Check ``params`` is a :class:`Params` with consistent shapes (and ``n_features`` rows)."""
    if not isinstance(params, Params):
        raise TypeError(f"params must be jaxlogreg.Params(w, b), got {type(params).__name__}")
    w, b = params
    binary = w.ndim == 1 and b.ndim == 0
    multinomial = w.ndim == 2 and b.ndim == 1 and b.shape[0] == w.shape[1] and w.shape[1] >= 2
    if not (binary or multinomial):
        raise ValueError(
            "params must be binary (w of shape (n,), b of shape ()) or multinomial "
            f"(w of shape (n, K), b of shape (K,)), got w {tuple(w.shape)} and b {tuple(b.shape)}"
        )
    if n_features is not None and w.shape[0] != n_features:
        raise ValueError(
            f"params.w must have {n_features} rows to match X's {n_features} features, "
            f"got w of shape {tuple(w.shape)}"
        )
    return params


def check_X_structure(X: Any, name: str = "X") -> Any:
    """Check a design matrix's type and shape (n_samples, n_features), not its values.

    A sparse X (scipy.sparse, JAX BCOO) is checked whole and returned as a canonical CSR array
    (:func:`jaxlogreg.core.sparse.as_csr`); a :class:`CooMatrix` is already checked.
    """
    if isinstance(X, CooMatrix):
        return X
    if is_sparse(X):
        return as_csr(X, name)
    X = v.as_array(X, name)
    v.check_ndim(X, name, 2, "(n_samples, n_features)")
    v.check_nonempty(X, name)
    v.check_float_dtype(X, name)
    return X


def check_X(X: Any, name: str = "X") -> jax.Array | CooMatrix:
    """Validate a design matrix of shape (n_samples, n_features): float, non-empty, finite.

    A sparse X becomes a :class:`CooMatrix` on the device, never a dense array."""
    X = check_X_structure(X, name)
    if isinstance(X, CooMatrix):
        return X
    if sp.issparse(X):
        return jax.device_put(coo_of_csr(X, X.dtype))
    v.check_finite(X, name)
    return jnp.asarray(X)


def check_problem(
    params: Params, X: Any, y: Any, sample_weight: Any, l2: Any, l1: Any = 0.0
) -> tuple[jax.Array, Any, Any]:
    """Validate ``X, y, sample_weight`` of a public function; check ``params``, ``l2``, ``l1``."""
    X = check_X(X)
    check_params(params, X.shape[1])
    m = X.shape[0]
    check_dense(y, "y", "a 1-D array of labels")
    check_dense(sample_weight, "sample_weight", "a 1-D array of weights")
    y = jnp.asarray(v.check_y(y, m, n_classes_of(params)))
    if sample_weight is not None:
        sample_weight = jnp.asarray(v.check_sample_weight(sample_weight, m))
    for name, strength in (("l2", l2), ("l1", l1)):
        if v.is_concrete(strength):
            numeric_0d = isinstance(strength, jax.Array | np.ndarray) and strength.ndim == 0 and (
                jnp.issubdtype(strength.dtype, jnp.floating)
                or jnp.issubdtype(strength.dtype, jnp.integer)
            )
            v.check_positive(float(strength) if numeric_0d else strength, name, allow_zero=True)
    return X, y, sample_weight


@in_params_dtype
def logits(params: Params, X: Any) -> jax.Array:
    """``z = X w + b``: shape (m,) for binary, (m, K) for multinomial."""
    X = check_X(X)
    check_params(params, X.shape[1])
    return _matmul(X, params.w) + params.b


@in_params_dtype
def predict_proba(params: Params, X: Any) -> jax.Array:
    """``a = σ(z)`` (m,) for binary: P(y = 1 | x); ``softmax(z)`` (m, K) for multinomial."""
    z = logits(params, X)
    return jax.nn.sigmoid(z) if z.ndim == 1 else jax.nn.softmax(z, axis=-1)


@in_params_dtype
def predict(params: Params, X: Any) -> jax.Array:
    """Class indices: ``a > 0.5`` (i.e. ``z > 0``) for binary, ``argmax z`` for multinomial."""
    z = logits(params, X)
    return (z > 0).astype(jnp.int32) if z.ndim == 1 else jnp.argmax(z, axis=-1).astype(jnp.int32)


def _matmul(X: jax.Array, w: jax.Array) -> jax.Array:
    """``X @ w`` with 16-bit X upcast so the sums run in the parameters' dtype, in full
    precision (not the TF32 that XLA uses for float32 products on GPUs by default)."""
    if isinstance(X, CooMatrix):
        return sparse_dot(X.astype(w.dtype), w)
    return jnp.matmul(X.astype(w.dtype), w, precision=jax.lax.Precision.HIGHEST)
