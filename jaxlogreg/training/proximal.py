"""Proximal gradient for L1 and elastic-net penalties, as optax gradient transformations.

J splits into a smooth f and the L1 norm (the intercept is not penalised); a step is a gradient
step on f, then soft-thresholding, which sets coefficients exactly to zero::

    J(w, b) = f(w, b) + λ₁ ||w||₁,     f = Σ_i s_i L_i / Σ_i s_i + λ₂/2 ||w||²
    w⁺ = prox(w - t ∇f, t λ₁),         prox(x, τ) = sign(x) · max(|x| - τ, 0)
    f(w⁺) <= f(w) + ∇f(w)ᵀ(w⁺ - w) + ||w⁺ - w||² / 2t     (Beck & Teboulle's test)

:func:`proximal_gradient` (solver ``"proximal"``) tries Barzilai-Borwein's short step
``t = sᵀr / rᵀr`` (s: the last step, r: the change of ∇f), halved until the test holds up to
``DECREASE_SLACK_ULPS`` of rounding (docs/decisions.md); f and ∇f at the accepted point stay in
its state. Solver ``"gd"`` with L1 is ISTA, a fixed t. Stopping uses
:func:`min_norm_subgradient`, the proximal-gradient mapping as t -> 0: 0 exactly at the optimum
of J, and ∇f when λ₁ = 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlogreg.core.loss import l1_penalty
from jaxlogreg.core.model import Params

MAX_BACKTRACKING = 30  # halvings of the step per iteration, at most
MAX_STEP = 1e12  # the Barzilai-Borwein step is kept within [1 / MAX_STEP, MAX_STEP]
MAX_UNCHANGED = 10  # accepted steps in a row that leave J unchanged (float32 rounding): stalled
DECREASE_SLACK_ULPS = 4  # f within this many epsilons of |f| above the bound passes the test


class ProximalState(NamedTuple):
    """f and ∇f at the current parameters (inf before the first evaluation), the next trial
    step, the halvings made in the last iteration, and whether its every trial failed (then
    the parameters did not move: the fit has stalled)."""

    value: jax.Array
    grad: Params
    step: jax.Array
    halvings: jax.Array
    unchanged: jax.Array
    stalled: jax.Array


def soft_threshold(x: jax.Array, threshold: Any) -> jax.Array:
    """``sign(x) · max(|x| - τ, 0)``: the proximal operator of ``τ ||x||₁``; ``x`` when τ = 0."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


def prox_l1(params: Params, threshold: Any) -> Params:
    """Soft-threshold the weights by τ; the intercept is not penalised."""
    return params._replace(w=soft_threshold(params.w, threshold))


def min_norm_subgradient(params: Params, grads: Params, l1: Any) -> Params:
    """The smallest element of ∂J = ∇f + λ₁ ∂||w||₁: ``∇f + λ₁ sign(w)`` where ``w ≠ 0``, and
    ``soft_threshold(∇f, λ₁)`` where ``w = 0`` (0 when ``|∇f| <= λ₁``: the zero is optimal)."""
    w, g = params.w, grads.w
    return grads._replace(w=jnp.where(w != 0, g + l1 * jnp.sign(w), soft_threshold(g, l1)))


def _vdot(a: Params, b: Params) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(a, b, strict=True))


def proximal_gradient(l1: Any) -> optax.GradientTransformationExtraArgs:
    """Proximal gradient with Barzilai-Borwein steps and backtracking (see the module doc).

    ``update(grads, state, params, value=f, grad=∇f, value_fn=f)`` needs the smooth part's
    value and gradient at ``params`` (:func:`optax.value_and_grad_from_state` reads them from
    the state) and ``value_fn``, whose ``jax.value_and_grad`` evaluates trial points. λ₁ may be
    a traced scalar.
    """

    def init_fn(params: Params) -> ProximalState:
        dtype = params.w.dtype
        return ProximalState(
            value=jnp.asarray(jnp.inf, dtype),
            grad=jax.tree.map(jnp.zeros_like, params),
            step=jnp.asarray(1.0, dtype),
            halvings=jnp.zeros((), jnp.int32),
            unchanged=jnp.zeros((), jnp.int32),
            stalled=jnp.zeros((), bool),
        )

    def update_fn(updates, state, params, *, value, grad, value_fn, **extra):
        del updates, extra
        value_and_grad = jax.value_and_grad(value_fn)

        def trial(step, halvings):
            new = prox_l1(jax.tree.map(lambda p, g: p - step * g, params, grad), step * l1)
            f_new, g_new = value_and_grad(new)
            d = jax.tree.map(jnp.subtract, new, params)
            rounding = DECREASE_SLACK_ULPS * jnp.finfo(value.dtype).eps * jnp.abs(value)
            bound = value + _vdot(grad, d) + 0.5 * _vdot(d, d) / step + rounding
            return new, f_new, g_new, f_new <= bound, step, halvings

        def halve(carry):
            *_, step, halvings = carry
            return trial(step * 0.5, halvings + 1)

        new, f_new, g_new, ok, step, halvings = jax.lax.while_loop(
            lambda c: ~c[3] & (c[5] < MAX_BACKTRACKING), halve, trial(state.step, jnp.int32(0))
        )
        # no trial passed: the iterate stays (J unchanged, which ends the fit as stalled)
        new, f_new, g_new = jax.tree.map(
            lambda a, b: jnp.where(ok, a, b), (new, f_new, g_new), (params, value, grad)
        )
        s = jax.tree.map(jnp.subtract, new, params)
        r = jax.tree.map(jnp.subtract, g_new, grad)
        sr = _vdot(s, r)
        rr = _vdot(r, r)
        next_step = jnp.where(sr > 0, sr / jnp.where(rr > 0, rr, 1.0), step)
        next_step = jnp.clip(next_step, 1 / MAX_STEP, MAX_STEP).astype(step.dtype)
        J, J_new = value + l1_penalty(params.w, l1), f_new + l1_penalty(new.w, l1)
        unchanged = jnp.where(J_new == J, state.unchanged + 1, 0)
        stalled = ~ok | (unchanged >= MAX_UNCHANGED)
        return s, ProximalState(f_new, g_new, next_step, halvings, unchanged, stalled)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
