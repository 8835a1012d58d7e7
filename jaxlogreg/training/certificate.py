"""The duality gap of binary L1 / elastic-net logistic regression: a certified bound on J - J*.

For ``J(w, b) = Σ_i s_i L_i + λ₁ ||w||₁ + λ₂/2 ||w||²`` (Σ s = 1, y in {0, 1}, b free) and any
dual point ``u = t s (y - p̃)`` with ``p̃ in [0, 1]^m``, ``Σ u = 0`` and (λ₂ = 0)
``||Xᵀu||_∞ <= λ₁``, Fenchel duality gives ``J* >= D(u)``::

    D(u) = -Σ_i s_i H(a_i) - Σ_j (|(Xᵀu)_j| - λ₁)₊² / 2λ₂,   a = (1 - t) y + t p̃,
    H(a) = a log a + (1 - a) log(1 - a)                     (the second sum is 0 for λ₂ = 0)

The dual point comes from the residual: ``p̃ = σ(z + δ)`` with δ the intercept shift that makes
``Σ s p̃ = Σ s y`` (0 without intercept), ``t = min(1, λ₁ / ||Xᵀ s(y - p̃)||_∞)`` when λ₂ = 0;
at the optimum u is the residual itself and the gap is 0. Cost: one product Xᵀ and O(m).
Written with ``jax.numpy``: inside a jitted loop, or eagerly on host arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

SHIFT_STEPS = 8  # Newton steps for δ; quadratic convergence from δ = 0 or a fitted intercept


def intercept_shift(z: jax.Array, y: jax.Array, s: jax.Array) -> jax.Array:
    """δ with ``Σ s σ(z + δ) = Σ s y`` (Newton from 0; 0 when one class only: no such δ)."""
    target, total = jnp.sum(s * y), jnp.sum(s)

    def step(_, delta):
        p = jax.nn.sigmoid(z + delta)
        slope = jnp.sum(s * p * (1 - p))
        return delta - jnp.where(slope > 0, (jnp.sum(s * p) - target) / slope, 0.0)

    delta = jax.lax.fori_loop(0, SHIFT_STEPS, step, jnp.zeros((), z.dtype))
    return jnp.where((target > 0) & (target < total), delta, 0.0)


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _dual_residual(z: jax.Array, y: jax.Array, s: jax.Array, fit_intercept: bool):
    """p̃ = σ(z + δ) and the residual ``s (y - p̃)`` whose product with Xᵀ the gap needs."""
    y = y.astype(z.dtype)
    p = jax.nn.sigmoid(z + intercept_shift(z, y, s)) if fit_intercept else jax.nn.sigmoid(z)
    return p, s * (y - p)


@jax.jit
def _gap(z: jax.Array, y: jax.Array, s: jax.Array, w: jax.Array, p: jax.Array, v: jax.Array,
         l1: Any, l2: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    y = y.astype(z.dtype)
    loss = jnp.sum(s * (jnp.logaddexp(0.0, z) - y * z))
    primal = loss + l1 * jnp.sum(jnp.abs(w)) + 0.5 * l2 * jnp.sum(w * w)
    top = jnp.max(jnp.abs(v), initial=0.0)
    t = jnp.where((l2 == 0) & (top > l1), l1 / jnp.where(top > 0, top, 1.0), 1.0)
    a = (1 - t) * y + t * p
    entropy = jnp.sum(s * (xlogy(a, a) + xlogy(1 - a, 1 - a)))
    excess = jnp.maximum(jnp.abs(t * v) - l1, 0.0)
    conjugate = jnp.where(l2 > 0, jnp.sum(excess * excess) / (2 * jnp.where(l2 > 0, l2, 1.0)),
                          0.0)
    return primal, jnp.maximum(primal + entropy + conjugate, 0.0), l2 * w - v


def duality_gap(z: jax.Array, y: jax.Array, s: jax.Array, w: jax.Array, l1: Any, l2: Any,
                fit_intercept: bool, rmatvec: Callable[[jax.Array], jax.Array]
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(J, gap, ∇f) at logits ``z = Xw + b``: ``gap >= J - J*`` (module docstring) and the
    smooth part's gradient at ``(w, b + δ)``, ``λ₂ w - Xᵀ s(y - p̃)``. ``rmatvec(u) = Xᵀu``
    (a host product too: the two jitted parts around it compile once per shape); s sums to 1."""
    p, residual = _dual_residual(z, y, s, fit_intercept)
    return _gap(z, y, s, w, p, rmatvec(residual), l1, l2)
