"""Truncated Newton (Newton-CG): a Newton direction by conjugate gradients on H·v products.

At parameters x with gradient g, the direction d solves ``H d = -g`` approximately by
conjugate gradients (Nocedal & Wright, algorithms 7.1 and 5.3, preconditioned by an estimate
of H's diagonal from ``diagonal_fn``: Jacobi), stopped when the residual is at most
``η ||g||`` with the forcing term ``η = min(1/2, sqrt(||g||))`` (superlinear convergence) or
after ``max_cg_iter`` products. H is never formed: each CG step is one product ``H p`` from
``hvp_fn(params, p)`` (for sparse X on CPUs one pass of the C kernel). Where H is not positive
definite along p (no L2 term), CG stops with what it has (-g when that is nothing yet).
The step along d is the strong-Wolfe search of :mod:`jaxlogreg.training.linesearch` from t = 1,
which leaves J and ∇J at the new parameters in the state for the next iteration.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlogreg.training.linesearch import scale_by_wolfe_linesearch


class NewtonCGState(NamedTuple):
    """``diagonal``: the preconditioner M (like the parameters; ones until ``ready``)."""

    diagonal: Any
    ready: jax.Array


def _positive(diagonal: Any, like: Any) -> Any:
    """The preconditioner as ``like``'s dtypes, 1 where the estimate is not positive (a
    feature without entries and no L2 term)."""
    diagonal = optax.tree.cast_like(diagonal, like)
    return jax.tree.map(lambda m: jnp.where(m > 0, m, jnp.ones_like(m)), diagonal)


class _CG(NamedTuple):
    d: Any  # the direction so far
    r: Any  # the residual -g - H d
    p: Any  # the search direction
    rz: jax.Array  # r·M⁻¹r
    count: jax.Array
    done: jax.Array


def scale_by_newton_cg(max_cg_iter: int = 200) -> optax.GradientTransformationExtraArgs:
    """``update(g, state, params, hvp_fn=..., diagonal_fn=None)`` returns d with
    ``||H d + g|| <= η ||g||``.

    ``hvp_fn(params, v) -> H v`` (pytrees like ``params``); ``diagonal_fn(params)``: a positive
    estimate of H's diagonal that depends on the data alone (evaluated at the first update and
    kept), the Jacobi preconditioner of CG (None: none); ``max_cg_iter``: products per
    direction at most.
    """

    def init_fn(params: Any) -> NewtonCGState:
        return NewtonCGState(optax.tree.ones_like(params), jnp.zeros((), bool))

    def update_fn(updates, state, params, *, hvp_fn, diagonal_fn=None, **extra_args):
        del extra_args
        g = updates
        dtype = jnp.real(jax.tree.leaves(g)[0]).dtype
        diagonal = state.diagonal
        if diagonal_fn is not None:
            diagonal = jax.lax.cond(state.ready, lambda: state.diagonal,
                                    lambda: _positive(diagonal_fn(params), g))

        def precondition(r: Any) -> Any:  # M⁻¹ r
            return jax.tree.map(jnp.divide, r, diagonal)

        g_norm = optax.tree.norm(g).astype(dtype)
        tol = jnp.minimum(0.5, jnp.sqrt(g_norm)) * g_norm
        r = optax.tree.scale(-1.0, g)
        z = precondition(r)
        start = _CG(d=optax.tree.zeros_like(g), r=r, p=z, rz=optax.tree.vdot(r, z).astype(dtype),
                    count=jnp.zeros((), jnp.int32), done=g_norm == 0)

        def body(s: _CG) -> _CG:
            hp = hvp_fn(params, s.p)
            curvature = optax.tree.vdot(s.p, hp).astype(dtype)
            flat = ~(curvature > 0)  # H not positive definite along p (or NaN): stop here
            alpha = s.rz / jnp.where(flat, 1, curvature)
            d = optax.tree.where(flat, s.d, optax.tree.add_scale(s.d, alpha, s.p))
            r = optax.tree.where(flat, s.r, optax.tree.add_scale(s.r, -alpha, hp))
            z = precondition(r)
            rz = optax.tree.vdot(r, z).astype(dtype)
            p = optax.tree.add_scale(z, rz / s.rz, s.p)
            done = flat | (optax.tree.norm(r) <= tol)
            return _CG(d=d, r=r, p=p, rz=rz, count=s.count + 1, done=done)

        s = jax.lax.while_loop(lambda s: ~s.done & (s.count < max_cg_iter), body, start)
        nothing = optax.tree.norm(s.d) == 0
        direction = optax.tree.where(nothing, optax.tree.scale(-1.0, g), s.d)
        new_state = NewtonCGState(diagonal, jnp.asarray(diagonal_fn is not None))
        return optax.tree.cast_like(direction, other_tree=g), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def newton_cg(max_cg_iter: int = 200, max_linesearch_steps: int = 20
              ) -> optax.GradientTransformationExtraArgs:
    """Newton-CG: :func:`scale_by_newton_cg`, then a strong-Wolfe step from t = 1; ValueError
    unless ``max_cg_iter`` and ``max_linesearch_steps`` are integers >= 1.

    ``update(g, state, params, value=J, grad=g, value_fn=J, hvp_fn=H·, diagonal_fn=...)``;
    the state holds J and ∇J at the new parameters (for
    :func:`optax.value_and_grad_from_state`).
    """
    for name, value in (("max_cg_iter", max_cg_iter),
                        ("max_linesearch_steps", max_linesearch_steps)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"solver_params[{name!r}] must be an integer >= 1 for solver "
                             f"'newton-cg', got {value!r}")
    return optax.chain(
        scale_by_newton_cg(max_cg_iter),
        scale_by_wolfe_linesearch(max_steps=max_linesearch_steps, unit_first_step=False),
    )


__all__ = ["newton_cg", "scale_by_newton_cg"]
