"""The duality gap of L1 / elastic-net logistic regression, binary and softmax: a certified
bound on J - J*.

``J(W, b) = Σ_i s_i ℓ(Z_i, y_i) + λ₁ ||W||₁ + λ₂/2 ||W||²``, ``Z = XW + b`` (Σ s = 1, b free);
binary: w (n,), ℓ = softplus(z) - yz, two classes; softmax: W (n, K), ℓ = logsumexp(Z_i) - Z_iy.
With Y the one-hot labels and any A whose rows lie on the simplex, ``R = s(Y - A)``, ``Σ_i R_i
= 0`` (the b-constraint, dropped without intercept) and (λ₂ = 0) ``||XᵀR||_∞ <= λ₁``: for all
(W, b), ``ℓ(Z_i) >= <A_i - Y_i, Z_i> - Σ_k A_ik log A_ik`` (Fenchel-Young), summed with weights
s the b-term vanishes, and the penalty is at least ``<XᵀR, W>`` minus its conjugate, so J* >= D::

    D = -Σ_i s_i Σ_k A_ik log A_ik - Σ_{j,k} (|(XᵀR)_jk| - λ₁)₊² / 2λ₂   (second sum 0 if λ₂ = 0)

Dual point from the residual: ``P̃ = softmax(Z + δ)`` (σ for binary) with δ the intercept shift
making ``Σ s P̃ = Σ s Y`` (softmax: then moved onto those masses exactly, :func:`rebalance`;
absent classes get P̃ = 0; δ = 0 without intercept),
``t = min(1, λ₁ / ||Xᵀ s(Y - P̃)||_∞)`` when λ₂ = 0 (else 1), ``A = (1 - t) Y + t P̃``: at the
optimum R is the residual and the gap is 0. Cost: one product XᵀR and O(mK²). Written with
``jax.numpy``: inside a jitted loop, or eagerly on host arrays. The host solvers' binary gap
(:func:`host_binary_gap`) runs its passes over the rows in C (``native_gap.c``: one per Newton
step of δ and three more) when the native library is available, else these functions eagerly
in float64.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from jaxlogreg.core.loss import (
    binary_cross_entropy,
    dot,
    l1_penalty,
    l2_penalty,
    softmax_cross_entropy,
)
from jaxlogreg.kernels import native, native_cd

SHIFT_STEPS = 8  # Newton steps for δ; quadratic convergence from δ = 0 or a fitted intercept
SOFTMAX_SHIFT_STEPS = 16  # Newton near the solution, scaling steps from a far start


def intercept_shift(z: jax.Array, y: jax.Array, s: jax.Array) -> jax.Array:
    """δ with ``Σ s σ(z + δ) = Σ s y`` (Newton from 0; 0 when one class only: no such δ). Newton
    converges quadratically: once a step moves δ by at most sqrt(eps) (1 + |δ|), δ is within
    rounding, and the steps stop there (at most :data:`SHIFT_STEPS`)."""
    target, total = jnp.sum(s * y), jnp.sum(s)
    close = jnp.sqrt(jnp.finfo(z.dtype).eps)

    def step(carry):
        delta, _, n = carry
        p = jax.nn.sigmoid(z + delta)
        slope = jnp.sum(s * p * (1 - p))
        move = jnp.where(slope > 0, (jnp.sum(s * p) - target) / slope, 0.0)
        return delta - move, move, n + 1

    def going(carry):
        delta, move, n = carry
        return (n < SHIFT_STEPS) & ~(jnp.abs(move) <= close * (1 + jnp.abs(delta)))

    zero = jnp.zeros((), z.dtype)
    delta, _, _ = jax.lax.while_loop(going, step, (zero, zero + jnp.inf, jnp.int32(0)))
    return jnp.where((target > 0) & (target < total), delta, 0.0)


def softmax_shift(z: jax.Array, Y: jax.Array, s: jax.Array) -> jax.Array:
    """Logits ``z + δ`` (m, K) whose softmax has the class masses of Y: ``Σ s softmax(z + δ) =
    Σ s Y``, and -inf on the classes Y lacks. δ minimises ``Σ s logsumexp(z + δ) - (Σ s Y)ᵀδ``:
    Newton steps (the Hessian plus 11ᵀ on the present classes, whose null direction δ + c1 does
    not change the softmax) where they move δ at most 1, else the scaling step
    ``δ += log(Σ s Y) - log(Σ s softmax(z + δ))`` (far from the solution)."""
    target = jnp.sum(s[:, None] * Y, axis=0)
    present = target > 0
    on = present.astype(z.dtype)
    fixed = jnp.outer(on, on) + jnp.diag(1 - on + jnp.finfo(z.dtype).eps)
    log_target = jnp.log(jnp.where(present, target, 1.0))

    def shifted(delta):
        return jnp.where(present, z + delta, -jnp.inf)

    def step(_, delta):
        p = jax.nn.softmax(shifted(delta), axis=1)
        sp = s[:, None] * p
        mass = jnp.sum(sp, axis=0)
        newton = jnp.linalg.solve(jnp.diag(mass) - dot(sp.T, p) + fixed, mass - target)
        scaling = jnp.where(present & (mass > 0), jnp.log(jnp.where(mass > 0, mass, 1.0))
                            - log_target, 0.0)
        near = jnp.all(jnp.isfinite(newton)) & (jnp.max(jnp.abs(newton)) <= 1)
        return delta - jnp.where(near, newton, scaling)

    delta = jax.lax.fori_loop(0, SOFTMAX_SHIFT_STEPS, step, jnp.zeros(z.shape[1], z.dtype))
    return shifted(delta)


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _dual_residual(z: jax.Array, y: jax.Array, s: jax.Array, fit_intercept: bool):
    """p̃ = σ(z + δ), the residual ``s (y - p̃)`` whose product with Xᵀ the gap needs, and the
    loss ``Σ s ℓ(z)``."""
    y = y.astype(z.dtype)
    p = jax.nn.sigmoid(z + intercept_shift(z, y, s)) if fit_intercept else jax.nn.sigmoid(z)
    return p, s * (y - p), jnp.sum(s * binary_cross_entropy(z, y))


def rebalance(p: jax.Array, target: jax.Array, s: jax.Array) -> jax.Array:
    """Rows of p (m, K) moved on the simplex to the class masses ``Σ s p = target`` exactly
    (Σ s = Σ target = 1): a class with excess mass is scaled down to its target, and what each
    row loses goes to the classes short of theirs, in proportion to the shortfall. A change of
    the order of the imbalance, which the shift leaves at rounding level."""
    mass = jnp.sum(s[:, None] * p, axis=0)
    over = mass > target
    keep = jnp.where(over, target / jnp.where(over, mass, 1.0), 1.0)
    lost = jnp.sum(p * (1 - keep), axis=1, keepdims=True)
    short = jnp.maximum(target - mass, 0.0)
    total = jnp.sum(short)
    return p * keep + lost * jnp.where(total > 0, short / jnp.where(total > 0, total, 1.0), 0.0)


@functools.partial(jax.jit, static_argnames="fit_intercept")
def softmax_dual_point(z: jax.Array, y: jax.Array, s: jax.Array, fit_intercept: bool):
    """Y one-hot, P̃ (rows on the simplex, ``Σ s P̃ = Σ s Y`` with an intercept) and the
    residual ``s (Y - P̃)`` (m, K): P̃ = softmax(z + δ) (:func:`softmax_shift`, then
    :func:`rebalance`), softmax(z) without intercept."""
    Y = jax.nn.one_hot(y, z.shape[1], dtype=z.dtype)
    if fit_intercept:
        target = jnp.sum(s[:, None] * Y, axis=0)
        p = rebalance(jax.nn.softmax(softmax_shift(z, Y, s), axis=1), target, s)
    else:
        p = jax.nn.softmax(z, axis=1)
    return Y, p, s[:, None] * (Y - p)


def _dual_scale(v: jax.Array, l1: Any, l2: Any) -> jax.Array:
    """t = min(1, λ₁ / max|v|) for λ₂ = 0 (the dual point inside the L1 ball), else 1."""
    top = jnp.max(jnp.abs(v), initial=0.0)
    return jnp.where((l2 == 0) & (top > l1), l1 / jnp.where(top > 0, top, 1.0), 1.0)


def _penalty_conjugate(v: jax.Array, l1: Any, l2: Any) -> jax.Array:
    """The conjugate of ``λ₁ ||·||₁ + λ₂/2 ||·||²`` at v, given ``max|v| <= λ₁`` when λ₂ = 0."""
    excess = jnp.maximum(jnp.abs(v) - l1, 0.0)
    return jnp.where(l2 > 0, jnp.sum(excess * excess) / (2 * jnp.where(l2 > 0, l2, 1.0)), 0.0)


@jax.jit
def _gap(loss: jax.Array, y: jax.Array, s: jax.Array, w: jax.Array, p: jax.Array,
         v: jax.Array, l1: Any, l2: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    y = y.astype(p.dtype)
    primal = loss + l1_penalty(w, l1) + l2_penalty(w, l2)
    t = _dual_scale(v, l1, l2)
    a = (1 - t) * y + t * p
    entropy = jnp.sum(s * (xlogy(a, a) + xlogy(1 - a, 1 - a)))
    dual = -entropy - _penalty_conjugate(t * v, l1, l2)
    return primal, jnp.maximum(primal - dual, 0.0), l2 * w - v


@jax.jit
def _softmax_gap(z: jax.Array, y: jax.Array, s: jax.Array, w: jax.Array, Y: jax.Array,
                 p: jax.Array, v: jax.Array, l1: Any, l2: Any
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    primal = jnp.sum(s * softmax_cross_entropy(z, y)) + l1_penalty(w, l1) + l2_penalty(w, l2)
    t = _dual_scale(v, l1, l2)
    a = (1 - t) * Y + t * p
    dual = -jnp.sum(s[:, None] * xlogy(a, a)) - _penalty_conjugate(t * v, l1, l2)
    return primal, jnp.maximum(primal - dual, 0.0), l2 * w - v


def duality_gap(z: jax.Array, y: jax.Array, s: jax.Array, w: jax.Array, l1: Any, l2: Any,
                fit_intercept: bool, rmatvec: Callable[[jax.Array], jax.Array]
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(J, gap, ∇f) at logits ``z = Xw + b``: ``gap >= J - J*`` (module docstring) and the
    smooth part's gradient at ``(w, b + δ)``, ``λ₂ w - Xᵀ s(Y - P̃)``. Binary: w (n,), z (m,), y
    in {0, 1}; softmax: w (n, K), z (m, K), y class indices. ``rmatvec(u) = Xᵀu``, u (m,) or
    (m, K) (a host product too: the jitted parts around it compile once per shape); s (m,)
    sums to 1."""
    if w.ndim == 2:
        Y, p, residual = softmax_dual_point(z, y, s, fit_intercept)
        return _softmax_gap(z, y, s, w, Y, p, rmatvec(residual), l1, l2)
    p, residual, loss = _dual_residual(z, y, s, fit_intercept)
    return _gap(loss, y, s, w, p, rmatvec(residual), l1, l2)


class HostDualPoint(NamedTuple):
    """The binary dual point at logits z, which the gap at any (w, λ₁, λ₂) with these logits
    reuses (a path's next penalty): ``loss = Σ s ℓ(z)``, p̃ (m,) and ``v = Xᵀ s(y - p̃)`` (n,)."""

    z: np.ndarray
    loss: float
    p: np.ndarray
    v: np.ndarray


def host_dual_point(z: np.ndarray, y: np.ndarray, s: np.ndarray, fit_intercept: bool,
                    rmatvec: Callable[[np.ndarray], np.ndarray]) -> HostDualPoint:
    """:class:`HostDualPoint` of binary logits z (m,), y in {0, 1}, s (m,) summing to 1 (the
    dual point of :func:`duality_gap`): one product Xᵀu. In C when the native library is
    available (:func:`jaxlogreg.kernels.native_cd.gap_dual_point`), else :func:`_dual_residual`
    eagerly in float64."""
    if native.available():
        p, residual, loss = native_cd.gap_dual_point(z, y, s, SHIFT_STEPS * fit_intercept)
    else:
        with jax.enable_x64(True):
            p, residual, loss = map(np.asarray, _dual_residual(
                *(np.asarray(a, np.float64) for a in (z, y, s)), fit_intercept))
    v = np.asarray(rmatvec(residual), np.float64)
    return HostDualPoint(np.asarray(z, np.float64), float(loss), p, v)


def host_gap_at(point: HostDualPoint, y: np.ndarray, s: np.ndarray, w: np.ndarray, l1: float,
                l2: float) -> tuple[float, float, np.ndarray]:
    """(J, gap, ∇f) of :func:`duality_gap` at w (n,) whose logits are ``point.z``: O(m + n),
    in C when the native library is available, else :func:`_gap` eagerly in float64."""
    w = np.asarray(w, np.float64)
    if native.available():
        J, gap = native_cd.gap_bound(y, s, point.p, w, point.v, point.loss, l1, l2)
        return J, gap, l2 * w - point.v
    with jax.enable_x64(True):
        J, gap, grad = _gap(point.loss, np.asarray(y, np.float64), np.asarray(s, np.float64), w,
                            point.p, point.v, float(l1), float(l2))
        return float(J), float(gap), np.asarray(grad)


def host_binary_gap(z: np.ndarray, y: np.ndarray, s: np.ndarray, w: np.ndarray, l1: float,
                    l2: float, fit_intercept: bool, rmatvec: Callable[[np.ndarray], np.ndarray]
                    ) -> tuple[float, float, np.ndarray]:
    """:func:`duality_gap` of a binary model on the host in float64 (z (m,), y in {0, 1}, s
    (m,) summing to 1, w (n,)): the same dual point, bound and ``∇f = λ₂ w - Xᵀ s(y - p̃)``."""
    return host_gap_at(host_dual_point(z, y, s, fit_intercept, rmatvec), y, s, w, l1, l2)
