"""Gradient verification: the hand-written gradient against ``jax.grad`` and finite differences.

Errors are max-norm relative errors, ``max|g - g_ref| / max|g_ref|``, which stay meaningful
when single components of the gradient are near zero.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxlogreg.core import checks as v
from jaxlogreg.core.gradients import value_and_backward_t
from jaxlogreg.core.loss import objective_t
from jaxlogreg.core.model import Params, check_problem, check_X, float64_enabled

_DTYPES = ("float32", "float64")
_DEFAULT_EPS = {"float32": 1e-3, "float64": 1e-6}


class GradientCheck(NamedTuple):
    """Result of :func:`check_gradients`."""

    autodiff_rel_error: float  # hand-written vs jax.grad
    finite_diff_rel_error: float  # hand-written vs central differences
    n_coords_checked: int  # coordinates of (w, b) checked by finite differences
    dtype: str


def max_relative_error(g: Any, g_ref: Any) -> float:
    """``max|g - g_ref| / max|g_ref|`` over all leaves (absolute error when g_ref is all zero).

    Computed in float64 NumPy: no compilation per shape, and no rounding of the error itself.
    """
    g_flat = _flat64(g)
    ref_flat = _flat64(g_ref)
    scale = float(np.max(np.abs(ref_flat)))
    err = float(np.max(np.abs(g_flat - ref_flat)))
    return err / scale if scale > 0 else err


def _flat64(tree: Any) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def random_params(n_features: int, n_classes: int, dtype: Any, seed: int = 0) -> Params:
    """Small random parameters (a better test point than the all-zero start)."""
    key_w, key_b = jax.random.split(jax.random.key(seed))
    w_shape = (n_features,) if n_classes == 2 else (n_features, n_classes)
    b_shape = () if n_classes == 2 else (n_classes,)
    scale = 1.0 / np.sqrt(n_features)
    return Params(
        w=scale * jax.random.normal(key_w, w_shape, dtype),
        b=0.1 * jax.random.normal(key_b, b_shape, dtype),
    )


@partial(jax.jit, static_argnums=0)
def _gradients(
    value_and_grad_fn: Any,
    params: Params,
    X: jax.Array,
    y: jax.Array,
    sample_weight: jax.Array | None,
    l2: Any,
    coords: jax.Array,
    eps: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Flat hand-written and autodiff gradients, and central differences at ``coords``.

    One compiled program per shape. The data are arguments, not constants captured in a
    closure, so they are not baked into the program.
    """
    Xt = X.T
    flat, unravel = ravel_pytree(params)

    def f(p):
        return objective_t(unravel(p), Xt, y, sample_weight, l2)

    hand, _ = ravel_pytree(value_and_grad_fn(params, Xt, y, sample_weight, l2)[1])
    auto, _ = ravel_pytree(jax.grad(objective_t)(params, Xt, y, sample_weight, l2))

    # (f(p + h e_k) - f(p - h e_k)) / 2h for each checked coordinate k
    h = eps * jnp.maximum(1.0, jnp.abs(flat[coords]))

    def one(k, h_k):
        step = jnp.zeros_like(flat).at[k].set(h_k)
        return (f(flat + step) - f(flat - step)) / (2 * h_k)

    fd = jax.lax.map(lambda args: one(*args), (coords, h), batch_size=64)
    return hand, auto, fd


def check_gradients(X: Any, y: Any, params: Params | None = None, *, sample_weight: Any = None,
                    l2: float = 0.0, n_classes: int = 2, dtype: str = "float64",
                    eps: float | None = None, max_coords: int = 256,
                    seed: int = 0) -> GradientCheck:
    """Compare the hand-written gradient with ``jax.grad`` and with central finite differences.

    Args:
      X: (m, n) inputs; y: (m,) labels (0/1, or class indices when ``n_classes > 2``).
      params: the point to check at; small random parameters when None.
      sample_weight, l2: as in :func:`jaxlogreg.objective`.
      n_classes: used when ``params`` is None.
      dtype: "float64" (default; x64 is enabled only inside this call) or "float32".
      eps: relative finite-difference step; by default about the cube root of the dtype's
        machine epsilon (1e-6 in float64, 1e-3 in float32), which balances truncation and rounding.
      max_coords: finite differences on all coordinates of (w, b) when there are at most this
        many, otherwise on a random sample of this many (always including the intercept).
      seed: seed for the random parameters and the coordinate sample.

    Returns:
      A :class:`GradientCheck` with the two max relative errors.
    """
    dtype = str(v.check_choice(dtype, "dtype", _DTYPES))  # also accepts np.dtype("float64")
    eps = _DEFAULT_EPS[dtype] if eps is None else v.check_positive(eps, "eps")
    v.check_int_at_least(max_coords, "max_coords", 1)
    v.check_int_at_least(seed, "seed", 0)
    with float64_enabled(dtype == "float64"):
        X = check_X(X).astype(dtype)
        if params is None:
            v.check_int_at_least(n_classes, "n_classes", 2)
            params = random_params(X.shape[1], n_classes, dtype, seed)
        params = jax.tree.map(lambda p: jnp.asarray(p, dtype), params)
        X, y, sample_weight = check_problem(params, X, y, sample_weight, l2)
        if sample_weight is not None:
            sample_weight = sample_weight.astype(dtype)
        return _check(params, X, y, sample_weight, l2, dtype, eps, max_coords, seed)


def _check(params, X, y, sample_weight, l2, dtype, eps, max_coords, seed) -> GradientCheck:
    n_coords = params.w.size + params.b.size
    if n_coords <= max_coords:
        coords = np.arange(n_coords)
    else:
        rng = np.random.default_rng(seed)
        sample = rng.choice(n_coords - 1, size=max_coords - 1, replace=False)
        coords = np.append(np.sort(sample), n_coords - 1)  # b is the last entry
    hand, auto, fd = _gradients(value_and_backward_t, params, X, y, sample_weight, l2, coords, eps)
    hand = np.asarray(hand)
    return GradientCheck(
        autodiff_rel_error=max_relative_error(hand, auto),
        finite_diff_rel_error=max_relative_error(hand[coords], fd),
        n_coords_checked=int(coords.shape[0]),
        dtype=dtype,
    )
