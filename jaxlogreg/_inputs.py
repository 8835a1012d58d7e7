"""Validation of a whole problem ``(params, X, y, sample_weight, l2)`` for the public functions."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlogreg import _validation as v
from jaxlogreg.model import Params, check_params, check_X, n_classes_of


def check_y(y: Any, m: int, n_classes: int) -> jax.Array:
    """Labels: 0/1 (m,) for binary, integer class indices (m,) for K classes."""
    y = v.as_array(y, "y")
    v.check_ndim(y, "y", 1, "(n_samples,)")
    if y.shape[0] != m:
        raise ValueError(f"y must have shape ({m},) to match X's {m} samples, got shape {y.shape}")
    if n_classes == 2:
        v.check_finite(y, "y")
        v.check_binary_labels(y)
    else:
        v.check_class_labels(y, n_classes)
    return jnp.asarray(y)


def check_problem(
    params: Params, X: Any, y: Any, sample_weight: Any, l2: Any
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Validate and convert ``X, y, sample_weight``; check ``params`` and ``l2`` against them."""
    X = check_X(X)
    check_params(params, X.shape[1])
    m = X.shape[0]
    y = check_y(y, m, n_classes_of(params))
    if sample_weight is not None:
        sample_weight = v.as_array(sample_weight, "sample_weight")
        v.check_sample_weight(sample_weight, m)
        sample_weight = jnp.asarray(sample_weight)
    if v.is_concrete(l2):
        v.check_positive(_scalar_value(l2), "l2", allow_zero=True)
    return X, y, sample_weight


def _scalar_value(x: Any) -> Any:
    """A concrete 0-d numeric array as a Python float; anything else unchanged (for the message).

    Creates no JAX array: ``jnp.asarray`` of a Python constant is itself traced inside ``jax.jit``.
    """
    numeric = isinstance(x, jax.Array | np.ndarray) and (
        jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)
    )
    return float(x) if numeric and x.ndim == 0 else x
