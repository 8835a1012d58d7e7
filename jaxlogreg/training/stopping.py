"""When the training loop stops, and what its status then says (docs/stopping.md).

Checked at every iteration, on J and ∇J at the current parameters (minibatches: the epoch's
mean loss):

- **diverged**: J or ∇J is NaN/inf, or J rose above ``DIVERGENCE_GROWTH · max(J₀, 1)``;
- **converged** (``tol > 0``): ``max|∇J| <= tol`` (criterion "grad") or ``|ΔJ| <= tol · |J|``
  ("loss");
- **stalled** (``tol > 0``, solvers whose record allows it): J is not below its value
  ``STALL_WINDOW`` iterations earlier *and* max|∇J| has not reached a new low for a while
  (:func:`stall_rule`), with the criterion not met: the solver can make no more progress the
  dtype can show. A stalled fit is not converged (scikit-learn's ConvergenceWarning says so);
- **max_iter**: ``max_iter`` updates were made.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

RUNNING, CONVERGED, DIVERGED, MAX_ITER, STALLED = 0, 1, 2, 3, 4
STATUS_NAMES = {CONVERGED: "converged", DIVERGED: "diverged", MAX_ITER: "max_iter",
                STALLED: "stalled"}
DIVERGENCE_GROWTH = 1e4  # J above this many times max(J₀, 1) counts as diverged
STALL_WINDOW = 10  # iterations without a decrease of J, and at least as many without a new
# low of max|∇J|, that make a stall
ROUNDING_ULPS = 64  # a final J within this many epsilons of max(|J₀|, 1) above J₀ is not worse


def max_abs(tree: Any) -> jax.Array:
    """``max |x|`` over every leaf of ``tree``."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)]))


def all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def within_growth(value: jax.Array, start_loss: jax.Array) -> jax.Array:
    """False once J is NaN/inf or above ``DIVERGENCE_GROWTH · max(J₀, 1)``."""
    return value <= DIVERGENCE_GROWTH * jnp.maximum(start_loss, 1.0)


def grad_rule(grads: Any, tol: jax.Array) -> jax.Array:
    """Converged by the gradient: ``max|∇J| <= tol``."""
    return max_abs(grads) <= tol


def loss_rule(value: jax.Array, previous: jax.Array, tol: jax.Array) -> jax.Array:
    """Converged by the loss: ``|J_prev - J| <= tol · |J|``."""
    scale = jnp.maximum(jnp.abs(value), jnp.finfo(value.dtype).tiny)
    return jnp.abs(previous - value) <= tol * scale


def stall_rule(value: jax.Array, history: jax.Array, n_recorded: jax.Array,
               grad_best_at: jax.Array) -> jax.Array:
    """Stalled: ``J_k >= J_{k-W}`` (W = ``STALL_WINDOW``, ``J_k = value`` about to be recorded
    at ``history[n_recorded]``, k = n_recorded) and max|∇J| last reached a new low at iteration
    ``grad_best_at``, at least ``max(W, grad_best_at / 4)`` iterations ago: no progress for a
    quarter of the iterations it took to get there. (An ill-conditioned float64 fit lowers ∇J
    in bursts hundreds of iterations apart while J is flat to the last bit: not a stall;
    docs/decisions.md.)"""
    earlier = history[jnp.maximum(n_recorded - STALL_WINDOW, 0)]
    flat = (n_recorded >= STALL_WINDOW) & (value >= earlier)
    return flat & (n_recorded - grad_best_at >= jnp.maximum(STALL_WINDOW, grad_best_at // 4))


def status_of(ok: jax.Array, met: jax.Array, stalled: jax.Array) -> jax.Array:
    """The loop's status after an iteration: diverged unless ``ok``, then converged when the
    criterion is ``met``, stalled, or still running."""
    return jnp.where(ok, jnp.where(met, CONVERGED, jnp.where(stalled, STALLED, RUNNING)),
                     DIVERGED).astype(jnp.int32)
