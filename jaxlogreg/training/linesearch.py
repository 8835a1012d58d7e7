"""A strong-Wolfe line search with one evaluation per step, for ``optax.lbfgs``.

Along the direction d from x, with ``φ(t) = J(x + t d)`` and ``φ'(t) = ∇J(x + t d)·d``, a step
t is accepted when it lowers J enough and flattens the slope (Nocedal & Wright, eq. 3.7):

    φ(t) <= φ(0) + c₁ t φ'(0)    (sufficient decrease; near the optimum, where rounding hides
                                  it, Hager & Zhang's φ'(t) <= (2c₁ - 1) φ'(0) with
                                  φ(t) <= φ(0) + 1e-6 |φ(0)|)
    |φ'(t)| <= c₂ |φ'(0)|        (curvature)

Optax's zoom search (Nocedal & Wright, algorithms 3.5 and 3.6; the same tests and constants)
as one ``lax.while_loop`` with one evaluation of ``value_fn`` per step and no ``lax.cond``, which
compiles faster (docs/decisions.md): t doubles until [lo, hi] brackets a step, then each trial
is the quadratic's minimiser, kept in the bracket's middle 80%. If none passes in ``max_steps``, the
lowest that passed the decrease test is taken, else the last tried (the loop judges divergence).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

APPROX_DECREASE_RTOL = 1e-6  # |φ(0)|-relative slack of the approximate decrease test
SAFEGUARD = 0.1  # trial steps stay this fraction of the bracket away from its ends


class WolfeLinesearchState(NamedTuple):
    """``learning_rate``: the last accepted step t; ``value``, ``grad``: J and ∇J at the
    parameters it led to (read by :func:`optax.value_and_grad_from_state`)."""

    learning_rate: jax.Array
    value: jax.Array
    grad: Any


class _Search(NamedTuple):
    t: jax.Array  # the next trial step
    lo: jax.Array
    value_lo: jax.Array
    slope_lo: jax.Array
    hi: jax.Array  # inf until a step is bracketed
    value_hi: jax.Array
    best: jax.Array  # the step with the lowest J that passed the decrease test (0: none)
    value_best: jax.Array
    grad_best: Any
    last: jax.Array  # the last step tried, its J and ∇J
    value_last: jax.Array
    grad_last: Any
    done: jax.Array
    count: jax.Array


def scale_by_wolfe_linesearch(
    max_steps: int = 20,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    increase_factor: float = 2.0,
    unit_first_step: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Scale the update direction d by a step t meeting the strong Wolfe conditions.

    Args:
      max_steps: evaluations per search at most.
      slope_rtol: c₁ of the decrease test; curv_rtol: c₂ of the curvature test (optax's
        defaults for L-BFGS).
      increase_factor: how much t grows while the step is not bracketed.
      unit_first_step: the first search starts at the t that makes ``t·d`` of length 1 when
        d is shorter (for L-BFGS's first direction, -∇J); False starts every search at t = 1
        (for a Newton direction, whose t = 1 is the step to try).

    ``update(d, state, params, value=J(x), grad=∇J(x), value_fn=J)`` returns ``t·d``;
    ``value_fn`` takes the parameters alone (other extra arguments are not passed on).
    """

    def init_fn(params: Any) -> WolfeLinesearchState:
        dtype = jnp.real(jax.tree.leaves(params)[0]).dtype
        return WolfeLinesearchState(jnp.asarray(1.0, dtype), jnp.asarray(jnp.inf, dtype),
                                    optax.tree.zeros_like(params))

    def update_fn(updates, state, params, *, value, grad, value_fn, **extra_args):
        del extra_args
        value_and_grad = jax.value_and_grad(value_fn)
        dtype = state.value.dtype
        slope0 = optax.tree.real(optax.tree.vdot(grad, updates)).astype(dtype)
        value0 = jnp.asarray(value, dtype)
        zero, inf = jnp.zeros((), dtype), jnp.asarray(jnp.inf, dtype)

        def body(s: _Search) -> _Search:
            trial = optax.tree.add_scale(params, s.t, updates)
            value_t, grad_t = value_and_grad(trial)
            value_t = value_t.astype(dtype)
            slope_t = optax.tree.real(optax.tree.vdot(grad_t, updates)).astype(dtype)
            armijo = value_t <= value0 + slope_rtol * s.t * slope0
            approx = (slope_t <= (2 * slope_rtol - 1) * slope0) & (
                value_t <= value0 + APPROX_DECREASE_RTOL * jnp.abs(value0))
            decrease = (armijo | approx) & jnp.isfinite(value_t) & jnp.isfinite(slope_t)
            shrink = ~decrease | ((s.lo > 0) & (value_t > s.value_lo))  # above the best point
            done = ~shrink & (jnp.abs(slope_t) <= curv_rtol * jnp.abs(slope0))
            flip = ~shrink & (slope_t * (s.hi - s.lo) >= 0)  # the minimum lies back towards lo
            hi = jnp.where(shrink, s.t, jnp.where(flip, s.lo, s.hi))
            value_hi = jnp.where(shrink, value_t, jnp.where(flip, s.value_lo, s.value_hi))
            lo = jnp.where(shrink, s.lo, s.t)
            value_lo = jnp.where(shrink, s.value_lo, value_t)
            slope_lo = jnp.where(shrink, s.slope_lo, slope_t)
            better = decrease & (value_t < s.value_best)
            inside = _next_trial(lo, value_lo, slope_lo, hi, value_hi)
            return _Search(
                t=jnp.where(jnp.isinf(hi), increase_factor * s.t, inside),
                lo=lo, value_lo=value_lo, slope_lo=slope_lo, hi=hi, value_hi=value_hi,
                best=jnp.where(better, s.t, s.best),
                value_best=jnp.where(better, value_t, s.value_best),
                grad_best=optax.tree.where(better, grad_t, s.grad_best),
                last=s.t, value_last=value_t, grad_last=grad_t, done=done, count=s.count + 1,
            )

        def searching(s: _Search) -> jax.Array:
            width = jnp.abs(s.hi - s.lo)
            collapsed = jnp.isfinite(s.hi) & (width <= jnp.finfo(dtype).eps * jnp.abs(s.hi))
            return ~s.done & ~collapsed & (s.count < max_steps)

        # The first search tries a step of unit length, as L-BFGS-B does (optax's first
        # direction is -∇J scaled to length min(1, ||∇J||): for a small gradient, a step of
        # t = 1 is tiny, and the smallest step meeting the Wolfe tests sets L-BFGS's scaling).
        length = optax.tree.norm(updates).astype(dtype)
        first = unit_first_step & jnp.isinf(state.value) & (length > 0) & (length < 1)
        t0 = jnp.where(first, 1 / jnp.where(first, length, 1), 1).astype(dtype)
        start = _Search(
            t=t0, lo=zero, value_lo=value0, slope_lo=slope0, hi=inf, value_hi=inf, best=zero,
            value_best=value0, grad_best=grad, last=zero, value_last=value0, grad_last=grad,
            done=jnp.zeros((), bool),
            count=jnp.zeros((), jnp.int32),
        )
        s = jax.lax.while_loop(searching, body, start)
        take_last = s.done | (s.best == 0)
        t = jnp.where(take_last, s.last, s.best)
        new_state = WolfeLinesearchState(
            learning_rate=t,
            value=jnp.where(take_last, s.value_last, s.value_best),
            grad=optax.tree.where(take_last, s.grad_last, s.grad_best),
        )
        return optax.tree.scale(t, updates), optax.tree.cast_like(new_state, other_tree=state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _next_trial(lo, value_lo, slope_lo, hi, value_hi) -> jax.Array:
    """The minimiser of the quadratic through φ(lo), φ'(lo), φ(hi), kept inside the middle of
    [lo, hi] (either order); the midpoint when φ(hi) is not finite or the quadratic has no
    minimum."""
    width = hi - lo
    curvature = 2 * (value_hi - value_lo - slope_lo * width)
    t = lo - slope_lo * width * width / curvature
    a, b = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
    margin = SAFEGUARD * (b - a)
    inside = jnp.isfinite(t) & jnp.isfinite(value_hi) & (curvature > 0)
    return jnp.where(inside, jnp.clip(t, a + margin, b - margin), (lo + hi) / 2)
