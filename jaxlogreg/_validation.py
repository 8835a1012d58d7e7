"""Input checks shared by the public functions.

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


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (it is not a tracer inside jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None:
        return f"{type(x).__name__} {x!r}"
    return f"array of shape {tuple(shape)} and dtype {dtype}"


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
        raise ValueError(f"{name} must be {ndim}-D with shape {shape_hint}, got {_describe(x)}")


def check_nonempty(x: Any, name: str) -> None:
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got {_describe(x)}")


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
        raise ValueError(f"{name} must be finite, got {n_bad} NaN or inf value(s) in {_describe(x)}")


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


def check_sample_weight(sample_weight: Any, m: int) -> None:
    check_ndim(sample_weight, "sample_weight", 1, "(n_samples,)")
    if sample_weight.shape[0] != m:
        raise ValueError(
            f"sample_weight must have shape ({m},) to match X's {m} samples, "
            f"got shape {tuple(sample_weight.shape)}"
        )
    if not is_concrete(sample_weight):
        return
    check_finite(sample_weight, "sample_weight")
    sw = np.asarray(sample_weight)
    if (sw < 0).any():
        raise ValueError(f"sample_weight must be >= 0, got minimum {sw.min()}")
    if sw.sum() <= 0:
        raise ValueError("sample_weight must have a positive sum, got all zeros")


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Check a scalar hyper-parameter is a real number > 0 (or >= 0 with ``allow_zero``)."""
    ok_type = isinstance(value, Real) and not isinstance(value, bool)
    bound = ">= 0" if allow_zero else "> 0"
    if not ok_type or not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite real number {bound}, got {value!r}")
    return float(value)


def check_int_at_least(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
