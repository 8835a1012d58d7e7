"""The hand-written backward pass of logistic regression (lectures 2.9-2.14).

Computation graph for one example, then for m examples (s_i = 1/m, or normalised weights)::

    forward   z = wᵀx + b  ->  a = σ(z)  ->  L(a, y) = -(y log a + (1 - y) log(1 - a))
    backward  da = -y/a + (1 - y)/(1 - a)   [never computed: divides by 0 when a saturates]
              dz = da · a(1 - a) = a - y    [σ'(z) = a(1 - a) cancels]
              dw = x dz,  db = dz

    over m    dz = s ⊙ (a - y)              (m,)
              dw = X dz + λ w                (n,)   X features-major (n, m), the course's layout
              db = Σ dz                      ()

Softmax regression has the same form with one-hot Y (K, m): ``dZ = s ⊙ (A - Y)``,
``dW = X dZᵀ + λ W`` (n, K), ``db = Σ_i dZ`` (K,).

The public layout is X (m, n). Internally X is kept features-major, (n, m): on CPU the product
``X dz`` is then about 3x faster than ``Xᵀ dz`` on the (m, n) array (../shared/docs/perf-notes.md
and benchmarks/). ``backward`` returns a :class:`Params`, the structure of ``jax.grad`` of
:func:`jaxlogreg.objective`, so the two can be swapped.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxlogreg._inputs import check_problem
from jaxlogreg.loss import example_scale, forward_t, objective_from_logits_t
from jaxlogreg.model import Params


def _dz_t(z: jax.Array, y: jax.Array, s: jax.Array) -> jax.Array:
    """``dz = s ⊙ (a - y)``: (m,) for binary, (K, m) for softmax (one-hot Y)."""
    if z.ndim == 1:
        a = jax.nn.sigmoid(z)
        return s * (a - y.astype(z.dtype))
    a = jax.nn.softmax(z, axis=0)
    Y = jax.nn.one_hot(y, z.shape[0], dtype=z.dtype, axis=0)
    return s * (a - Y)


def _dw_db_t(params: Params, Xt: jax.Array, dz: jax.Array, l2: Any) -> Params:
    """``dw = X dzᵀ + λ w`` and ``db = Σ dz`` from dz, with Xt (n, m)."""
    Xt = Xt.astype(params.w.dtype)
    if dz.ndim == 1:
        return Params(w=Xt @ dz + l2 * params.w, b=jnp.sum(dz))
    return Params(w=Xt @ dz.T + l2 * params.w, b=jnp.sum(dz, axis=1))


def _loss_and_dz_t(
    params: Params, Xt: jax.Array, y: jax.Array, sample_weight: jax.Array | None, l2: Any
) -> tuple[jax.Array, jax.Array]:
    """One forward pass over Xt (n, m): the objective J and ``dz``."""
    z = forward_t(params, Xt)
    s = example_scale(sample_weight, Xt.shape[1], params.w.dtype)
    return objective_from_logits_t(z, y, s, params.w, l2), _dz_t(z, y, s)


def value_and_backward_t(
    params: Params,
    Xt: jax.Array,
    y: jax.Array,
    sample_weight: jax.Array | None = None,
    l2: Any = 0.0,
) -> tuple[jax.Array, Params]:
    """Objective J and its hand-written gradient, one forward and one backward pass over Xt (n, m)."""
    J, dz = _loss_and_dz_t(params, Xt, y, sample_weight, l2)
    return J, _dw_db_t(params, Xt, dz, l2)


def backward_t(
    params: Params,
    Xt: jax.Array,
    y: jax.Array,
    sample_weight: jax.Array | None = None,
    l2: Any = 0.0,
) -> Params:
    """Hand-written gradient with Xt features-major (n, m); no input checks (use under jit)."""
    return value_and_backward_t(params, Xt, y, sample_weight, l2)[1]


def backward(
    params: Params,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    l2: float = 0.0,
) -> Params:
    """Hand-written gradient of :func:`jaxlogreg.objective` w.r.t. (w, b).

    Args:
      params: ``Params(w, b)``, binary (n,), () or multinomial (n, K), (K,).
      X: (m, n) inputs.
      y: (m,) labels, 0/1 or class indices.
      sample_weight: optional (m,) non-negative weights.
      l2: λ, the L2 strength (intercept not penalised).

    Returns:
      ``Params(dw, db)``, the same structure and shapes as ``params``.
    """
    X, y, sample_weight = check_problem(params, X, y, sample_weight, l2)
    return backward_t(params, X.T, y, sample_weight, l2)


@jax.custom_vjp
def objective_manual_vjp_t(
    params: Params, Xt: jax.Array, y: jax.Array, sample_weight: jax.Array | None, l2: Any
) -> jax.Array:
    """J(w, b) whose derivative (under ``jax.grad`` and inside optax) is the hand-written one.

    Lets optimizers that differentiate the objective themselves, such as optax's line search,
    use ``dz = a - y`` instead of the autodiff graph.
    """
    return _loss_and_dz_t(params, Xt, y, sample_weight, l2)[0]


def _manual_fwd(params, Xt, y, sample_weight, l2):
    J, dz = _loss_and_dz_t(params, Xt, y, sample_weight, l2)
    return J, (params, Xt, dz, l2)


def _manual_bwd(residuals, g):
    params, Xt, dz, l2 = residuals
    grads = jax.tree.map(lambda d: g * d, _dw_db_t(params, Xt, dz, l2))
    return grads, None, None, None, None  # the data and λ are not differentiated


objective_manual_vjp_t.defvjp(_manual_fwd, _manual_bwd)
