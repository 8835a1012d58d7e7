"""Input checks shared by the whole package.

Every message names the parameter, what was expected and what was given. Shape and dtype checks
are static and also run under ``jax.jit``; value checks (NaN/inf, label values) run only on
concrete arrays, because a traced array has no values to look at.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def show(value: Any) -> str:
    """``repr`` of a value for a message, NumPy scalars as plain numbers (``1``, not
    ``np.int64(1)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (it is not a tracer inside jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def describe(x: Any) -> str:
    """``array of shape (m, n) and dtype float32``, or the type and value of a non-array."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return f"{type(x).__name__} {show(x)}"
    return f"array of shape {tuple(shape)} and dtype {x.dtype}"


def as_array(x: Any, name: str) -> jax.Array | np.ndarray:
    """Return ``x`` as an array (NumPy or JAX), rejecting objects that are not numeric."""
    if isinstance(x, jax.Array | np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be array-like of numbers, got {type(x).__name__}") from err
    kind = np.dtype(arr.dtype).kind
    if kind not in "biuf" and arr.dtype != jnp.bfloat16:
        raise TypeError(
            f"{name} must hold real numbers (bool, int or float dtype), got dtype {arr.dtype}"
        )
    return arr


def check_ndim(x: Any, name: str, ndim: int, shape_hint: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D with shape {shape_hint}, got {describe(x)}")


def check_nonempty(x: Any, name: str) -> None:
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got {describe(x)}")


def check_float_dtype(x: Any, name: str) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} must have a floating dtype (bfloat16, float16, float32 or float64), "
            f"got dtype {x.dtype}"
        )


def check_finite(x: Any, name: str) -> None:
    """Raise if a concrete array holds NaN or inf (skipped for tracers)."""
    if not is_concrete(x):
        return
    finite = jnp.isfinite(x) if isinstance(x, jax.Array) else np.isfinite(x)
    if not bool(finite.all()):
        n_bad = int((~finite).sum())
        raise ValueError(f"{name} must be finite, got {n_bad} NaN or inf value(s) in {describe(x)}")


def check_binary_labels(y: Any, name: str = "y") -> None:
    """Raise if a concrete label array holds values other than 0 and 1."""
    if not is_concrete(y):
        return
    bad = ~((y == 0) | (y == 1))
    if bool(bad.any()):
        values = np.unique(np.asarray(y)[np.asarray(bad)])[:5]
        raise ValueError(f"{name} must hold binary labels 0 or 1, got value(s) {values.tolist()}")


def check_class_labels(y: Any, n_classes: int, name: str = "y") -> None:
    """Raise if ``y`` is not an integer array of class indices in ``[0, n_classes)``."""
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"{name} must hold integer class indices for {n_classes} classes, got dtype {y.dtype}"
        )
    if not is_concrete(y):
        return
    y_np = np.asarray(y)
    if y_np.size and (y_np.min() < 0 or y_np.max() >= n_classes):
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes - 1}], "
            f"got values from {y_np.min()} to {y_np.max()}"
        )


def check_length(x: Any, name: str, m: int) -> None:
    """A 1-D array of one value per sample: shape (m,)."""
    check_ndim(x, name, 1, "(n_samples,)")
    if x.shape[0] != m:
        raise ValueError(
            f"{name} must have shape ({m},) to match X's {m} samples, got shape {tuple(x.shape)}"
        )


def check_y(y: Any, m: int, n_classes: int, name: str = "y") -> jax.Array | np.ndarray:
    """Labels (m,): 0/1 for binary, integer class indices in [0, K) for K classes."""
    y = as_array(y, name)
    check_length(y, name, m)
    if n_classes == 2:
        check_finite(y, name)
        check_binary_labels(y, name)
    else:
        check_class_labels(y, n_classes, name)
    return y


def check_sample_weight(
    sample_weight: Any, m: int, name: str = "sample_weight", *, positive_sum: bool = True
) -> Any:
    """Weights (m,): finite, >= 0, with a positive sum (unless ``positive_sum=False``, for a
    part of the data). Returns them as an array."""
    sample_weight = as_array(sample_weight, name)
    check_length(sample_weight, name, m)
    if not is_concrete(sample_weight):
        return sample_weight
    check_finite(sample_weight, name)
    sw = np.asarray(sample_weight)
    if (sw < 0).any():
        raise ValueError(f"{name} must be >= 0, got minimum {show(sw.min())}")
    if positive_sum and sw.sum() <= 0:
        raise ValueError(f"{name} must have a positive sum, got all zeros")
    return sample_weight


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Check a scalar hyper-parameter is a finite real number > 0 (>= 0 with ``allow_zero``)."""
    ok_type = isinstance(value, Real) and not isinstance(value, bool)
    bound = ">= 0" if allow_zero else "> 0"
    if not ok_type or not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite real number {bound}, got {show(value)}")
    return float(value)


def check_int_at_least(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """Check an integer setting is in ``[minimum, maximum]``; returns it as a Python int."""
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= minimum
    if not ok or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bound}, got {show(value)}")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {show(value)}")
    return value
