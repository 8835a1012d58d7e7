"""The hand-written backward pass of logistic regression (lectures 2.9-2.14).

Computation graph for one example, then for m examples (s_i = 1/m, or normalised weights)::

    forward   z = wᵀx + b  ->  a = σ(z)  ->  L(a, y) = -(y log a + (1 - y) log(1 - a))
    backward  dz = da · a(1 - a) = a - y    [da = -y/a + (1 - y)/(1 - a): never formed, it
              dw = x dz,  db = dz            divides by 0 when a saturates]
    over m    dz = s ⊙ (a - y) (m,),  dw = X dz + λ w (n,),  db = Σ dz ()
    softmax   dZ = s ⊙ (A - Y) (K, m), Y one-hot,  dW = X dZᵀ + λ W (n, K),  db = Σ_i dZ (K,)

X is features-major (n, m), the course's layout, which XLA's gradient in training keeps (the
public layout is (m, n)) because XLA:CPU's ``X dz`` is then faster; the C kernel reads X (m, n)
as given (docs/performance.md, "The layout of X"). ``backward`` returns a
:class:`Params`, the structure of ``jax.grad`` of :func:`jaxlogreg.objective`, so the two can
be swapped.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxlogreg.core.loss import (
    binary_cross_entropy,
    dot,
    example_scale,
    softmax_cross_entropy,
)
from jaxlogreg.core.model import Params, check_problem, in_params_dtype


def _per_model(x: Any, ndim: int) -> jax.Array:
    """A scalar or (M,) value shaped to broadcast against arrays of ``ndim`` dimensions whose
    leading axis (if any) is the model."""
    x = jnp.asarray(x)
    return x.reshape(x.shape + (1,) * (ndim - x.ndim)) if x.ndim else x


def _penalty(w: jax.Array, l2: Any, axes: tuple[int, ...]) -> jax.Array:
    """``λ/2 ||w||²`` per model (summed over ``axes``); exactly 0 when λ = 0."""
    return jnp.where(l2 == 0, 0.0, 0.5 * l2 * jnp.sum(w * w, axis=axes)).astype(w.dtype)


def _x_times(X: Any, dz: jax.Array, feature_axis: int) -> jax.Array:
    """``X dz`` over the examples, one matrix product: X (n, m), dz (..., m) -> the features
    at ``feature_axis`` (``X dz`` for one binary model, ``X dZᵀ`` for one softmax model)."""
    lead = dz.shape[:-1]
    flat = dz.reshape((-1, dz.shape[-1])).T if lead else dz  # (m, P) or (m,)
    return jnp.moveaxis(dot(X, flat).reshape((X.shape[0], *lead)), 0, feature_axis)


def binary_value_and_grad(
    params: Params, Xt: jax.Array, y: jax.Array, s: jax.Array, l2: Any
) -> tuple[jax.Array, Params]:
    """J and ∇J for w (n,), b (): the graph above, one forward and one backward pass. With a
    leading axis of M models, w (M, n), b (M,), s (M, m) and λ (M,) give J (M,): every
    model's products in one pass over X."""
    w, b = params
    X = Xt.astype(w.dtype)  # (n, m); 16-bit storage computes in the parameters' dtype
    z = dot(w, X) + b[..., None]  # forward                         (m,)
    a = jax.nn.sigmoid(z)  #                                         (m,)
    J = jnp.sum(s * binary_cross_entropy(z, y), axis=-1) + _penalty(w, l2, (-1,))
    dz = s * (a - y.astype(a.dtype))  # backward: dL/dz, da never formed   (m,)
    dw = _x_times(X, dz, -1) + _per_model(l2, w.ndim) * w  #       (n,)   = X dz + λw
    db = jnp.sum(dz, axis=-1)  #                                     ()
    return J, Params(w=dw, b=db)


def softmax_value_and_grad(
    params: Params, Xt: jax.Array, y: jax.Array, s: jax.Array, l2: Any
) -> tuple[jax.Array, Params]:
    """J and ∇J for W (n, K), b (K,): the same graph with softmax and one-hot Y (a leading
    axis of models as in :func:`binary_value_and_grad`)."""
    W, b = params
    X = Xt.astype(W.dtype)  # (n, m)
    Z = dot(jnp.swapaxes(W, -1, -2), X) + b[..., None]  # forward   (K, m)
    A = jax.nn.softmax(Z, axis=-2)  #                                (K, m)
    s_rows = s if jnp.ndim(s) == 0 else jnp.expand_dims(s, -2)  # a row per class
    J = jnp.sum(s * softmax_cross_entropy(Z, y, axis=-2), axis=-1) + _penalty(W, l2, (-2, -1))
    Y = jax.nn.one_hot(y, Z.shape[-2], dtype=Z.dtype, axis=0)  #     (K, m)
    dZ = s_rows * (A - Y)  # backward                                (K, m)
    dW = _x_times(X, dZ, -2) + _per_model(l2, W.ndim) * W  #         (n, K) = X dZᵀ + λW
    db = jnp.sum(dZ, axis=-1)  #                                     (K,)
    return J, Params(w=dW, b=db)


def value_and_grad_t(
    params: Params, Xt: jax.Array, y: jax.Array, s: jax.Array, l2: Any, *,
    models: bool = False,
) -> tuple[jax.Array, Params]:
    """``J = Σ s_i L_i + λ/2 ||w||²`` and its hand-written gradient; Xt (n, m), s (m,) or ().

    ``s`` is the per-example scale: ``1/m``, ``s_i / Σ s``, or raw weights for partial sums.
    ``models``: the parameters, ``s`` and λ have a leading axis of models, fitted side by side
    (:mod:`jaxlogreg.training.path`).
    """
    binary = params.w.ndim == 1 + bool(models)
    step = binary_value_and_grad if binary else softmax_value_and_grad
    return step(params, Xt, y, s, l2)


def value_and_backward_t(params: Params, Xt: jax.Array, y: jax.Array,
                         sample_weight: jax.Array | None = None,
                         l2: Any = 0.0) -> tuple[jax.Array, Params]:
    """J (weighted mean loss + penalty) and its hand-written gradient, Xt (n, m); use under jit."""
    s = example_scale(sample_weight, Xt.shape[1], params.w.dtype)
    return value_and_grad_t(params, Xt, y, s, l2)


@in_params_dtype
def backward(params: Params, X: Any, y: Any, sample_weight: Any = None, l2: float = 0.0) -> Params:
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
