"""Truncated Newton (Newton-CG): a Newton direction by conjugate gradients on H·v products.

At parameters x with gradient g, the direction d solves ``H d = -g`` approximately by
conjugate gradients (Nocedal & Wright, algorithm 7.1), stopped when the residual is at most
``η ||g||`` with the forcing term ``η = min(1/2, sqrt(||g||))`` (superlinear convergence), or
when ``max|r| <= grad_tol / 2`` (r, the model's gradient after the step, then meets the fit's
tolerance ``max|∇J| <= grad_tol`` with room for the model's error: no product is spent beyond
it), or after ``max_cg_iter`` products. H is never formed: each CG step is one product ``H p`` from
``hvp_fn(params, p)`` (for sparse X on CPUs one pass of the C kernel). Where H is not positive
definite along p (no L2 term), CG stops with what it has (-g when that is nothing yet).
The step along d is the strong-Wolfe search of :mod:`jaxlogreg.training.linesearch` from t = 1,
which leaves J and ∇J at the new parameters in the state for the next iteration.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlogreg.training.linesearch import scale_by_wolfe_linesearch
from jaxlogreg.training.stopping import max_abs


class _CG(NamedTuple):
    d: Any  # the direction so far
    r: Any  # the residual -g - H d
    p: Any  # the search direction
    rr: jax.Array  # r·r
    count: jax.Array
    done: jax.Array


def scale_by_newton_cg(max_cg_iter: int = 200) -> optax.GradientTransformationExtraArgs:
    """``update(g, state, params, hvp_fn=..., grad_tol=0)`` returns d with
    ``||H d + g|| <= η ||g||`` or ``max|H d + g| <= grad_tol / 2``.

    ``hvp_fn(params, v) -> H v`` (pytrees like ``params``); ``grad_tol``: the fit's tolerance
    on max|∇J| (0: none); ``max_cg_iter``: products per direction at most.
    """

    def init_fn(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params, *, hvp_fn, grad_tol=0.0, **extra_args):
        del extra_args
        g = updates
        dtype = jnp.real(jax.tree.leaves(g)[0]).dtype
        g_norm = optax.tree.norm(g).astype(dtype)
        tol = jnp.minimum(0.5, jnp.sqrt(g_norm)) * g_norm
        r = optax.tree.scale(-1.0, g)
        start = _CG(d=optax.tree.zeros_like(g), r=r, p=r, rr=optax.tree.vdot(r, r).astype(dtype),
                    count=jnp.zeros((), jnp.int32), done=g_norm == 0)

        def body(s: _CG) -> _CG:
            hp = hvp_fn(params, s.p)
            curvature = optax.tree.vdot(s.p, hp).astype(dtype)
            flat = ~(curvature > 0)  # H not positive definite along p (or NaN): stop here
            alpha = s.rr / jnp.where(flat, 1, curvature)
            d = optax.tree.where(flat, s.d, optax.tree.add_scale(s.d, alpha, s.p))
            r = optax.tree.where(flat, s.r, optax.tree.add_scale(s.r, -alpha, hp))
            rr = optax.tree.vdot(r, r).astype(dtype)
            p = optax.tree.add_scale(r, rr / s.rr, s.p)
            done = flat | (jnp.sqrt(rr) <= tol) | (max_abs(r) <= grad_tol / 2)
            return _CG(d=d, r=r, p=p, rr=rr, count=s.count + 1, done=done)

        s = jax.lax.while_loop(lambda s: ~s.done & (s.count < max_cg_iter), body, start)
        nothing = optax.tree.norm(s.d) == 0
        direction = optax.tree.where(nothing, optax.tree.scale(-1.0, g), s.d)
        return optax.tree.cast_like(direction, other_tree=g), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def newton_cg(max_cg_iter: int = 200, max_linesearch_steps: int = 20
              ) -> optax.GradientTransformationExtraArgs:
    """Newton-CG: :func:`scale_by_newton_cg`, then a strong-Wolfe step from t = 1.

    ``update(g, state, params, value=J, grad=g, value_fn=J, hvp_fn=H·, grad_tol=tol)``; the
    state holds J and
    ∇J at the new parameters (for :func:`optax.value_and_grad_from_state`).
    """
    return optax.chain(
        scale_by_newton_cg(max_cg_iter),
        scale_by_wolfe_linesearch(max_steps=max_linesearch_steps, unit_first_step=False),
    )


__all__ = ["newton_cg", "scale_by_newton_cg"]
