"""The hand-written backward pass of logistic regression (lectures 2.9-2.14).

Computation graph for one example, then for m examples (s_i = 1/m, or normalised weights)::

    forward   z = wᵀx + b  ->  a = σ(z)  ->  L(a, y) = -(y log a + (1 - y) log(1 - a))
    backward  da = -y/a + (1 - y)/(1 - a)   [never computed: divides by 0 when a saturates]
              dz = da · a(1 - a) = a - y    [σ'(z) = a(1 - a) cancels]
              dw = x dz,  db = dz

    over m    dz = s ⊙ (a - y)              (m,)
              dw = X dz + λ w                (n,)   X features-major (n, m), the course's layout
              db = Σ dz                      ()

Softmax regression is the sibling with one-hot Y (K, m): ``dZ = s ⊙ (A - Y)``,
``dW = X dZᵀ + λ W`` (n, K), ``db = Σ_i dZ`` (K,).

The public layout is X (m, n). Inside training X is kept features-major, (n, m): on CPU the
product ``X dz`` is then several times faster than ``Xᵀ dz`` on the (m, n) array
(``benchmarks/results/roofline.md``). ``backward`` returns a :class:`Params`, the structure of
``jax.grad`` of :func:`jaxlogreg.objective`, so the two can be swapped.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxlogreg.core.loss import (
    binary_cross_entropy,
    dot,
    example_scale,
    l2_penalty,
    softmax_cross_entropy,
)
from jaxlogreg.core.model import Params, check_problem, in_params_dtype


def binary_value_and_grad(
    params: Params, Xt: jax.Array, y: jax.Array, s: jax.Array, l2: Any
) -> tuple[jax.Array, Params]:
    """J and ∇J for w (n,), b (): the graph above, one forward and one backward pass."""
    w, b = params
    X = Xt.astype(w.dtype)  # (n, m); 16-bit storage computes in the parameters' dtype
    z = dot(w, X) + b  # forward                                    (m,)
    a = jax.nn.sigmoid(z)  #                                         (m,)
    J = jnp.sum(s * binary_cross_entropy(z, y)) + l2_penalty(w, l2)
    dz = s * (a - y.astype(a.dtype))  # backward: dL/dz, da never formed   (m,)
    dw = dot(X, dz) + l2 * w  #                                      (n,)
    db = jnp.sum(dz)  #                                              ()
    return J, Params(w=dw, b=db)


def softmax_value_and_grad(
    params: Params, Xt: jax.Array, y: jax.Array, s: jax.Array, l2: Any
) -> tuple[jax.Array, Params]:
    """J and ∇J for W (n, K), b (K,): the same graph with softmax and one-hot Y."""
    W, b = params
    X = Xt.astype(W.dtype)  # (n, m)
    Z = dot(W.T, X) + b[:, None]  # forward                         (K, m)
    A = jax.nn.softmax(Z, axis=0)  #                                 (K, m)
    J = jnp.sum(s * softmax_cross_entropy(Z, y, axis=0)) + l2_penalty(W, l2)
    Y = jax.nn.one_hot(y, Z.shape[0], dtype=Z.dtype, axis=0)  #      (K, m)
    dZ = s * (A - Y)  # backward                                     (K, m)
    dW = dot(X, dZ.T) + l2 * W  #                                    (n, K)
    db = jnp.sum(dZ, axis=1)  #                                      (K,)
    return J, Params(w=dW, b=db)


def value_and_grad_t(
    params: Params, Xt: jax.Array, y: jax.Array, s: jax.Array, l2: Any
) -> tuple[jax.Array, Params]:
    """``J = Σ s_i L_i + λ/2 ||w||²`` and its hand-written gradient; Xt (n, m), s (m,) or ().

    ``s`` is the per-example scale: ``1/m``, ``s_i / Σ s``, or raw weights for partial sums.
    """
    step = binary_value_and_grad if params.w.ndim == 1 else softmax_value_and_grad
    return step(params, Xt, y, s, l2)


def value_and_backward_t(
    params: Params,
    Xt: jax.Array,
    y: jax.Array,
    sample_weight: jax.Array | None = None,
    l2: Any = 0.0,
) -> tuple[jax.Array, Params]:
    """J (weighted mean loss + penalty) and its hand-written gradient, Xt (n, m); use under jit."""
    s = example_scale(sample_weight, Xt.shape[1], params.w.dtype)
    return value_and_grad_t(params, Xt, y, s, l2)


@in_params_dtype
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
    return value_and_backward_t(params, X.T, y, sample_weight, l2)[1]


def with_gradient(value_and_grad: Any) -> Any:
    """J(params, Xt, y, sample_weight, l2) whose derivative (under ``jax.grad`` and inside optax)
    is ``value_and_grad``'s, a hand-written gradient ``(params, Xt, y, s, l2) -> (J, ∇J)``.

    Lets optimizers that differentiate the objective themselves, such as optax's line search,
    use ``dz = a - y`` (or the fused kernel) instead of the autodiff graph.
    """

    def both(params, Xt, y, sample_weight, l2):
        s = example_scale(sample_weight, Xt.shape[1], params.w.dtype)
        return value_and_grad(params, Xt, y, s, l2)

    @jax.custom_vjp
    def objective(params, Xt, y, sample_weight, l2):
        return both(params, Xt, y, sample_weight, l2)[0]

    def bwd(grads, g):
        return jax.tree.map(lambda d: g * d, grads), None, None, None, None  # data, λ: constants

    objective.defvjp(both, bwd)
    return objective


objective_manual_vjp_t = with_gradient(value_and_grad_t)
