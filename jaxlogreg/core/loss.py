"""Numerically stable losses computed from logits, and the training objective.

Per example (lecture 2.9), with ``a = σ(z)``::

    L(a, y) = -(y log a + (1 - y) log(1 - a))  =  softplus(z)  if y = 0
                                                softplus(-z) if y = 1

computed from ``z``, never as ``log(σ(z))`` (``σ(z)`` rounds to exactly 1 in float32 once
``z > 17``). Softmax: ``L = logsumexp(z) - z[y]``. Objective over m examples (lecture 2.14),
with optional weights ``s_i`` and L2 strength λ (the intercept is not penalised)::

    J(w, b) = Σ_i s_i L_i / Σ_i s_i  +  λ/2 ||w||²        (s_i = 1 gives the mean)

scikit-learn's ``LogisticRegression(C=...)`` minimises the same J when ``C = 1 / (λ Σ_i s_i)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxlogreg.core.model import Params, check_problem, in_params_dtype
from jaxlogreg.core.sparse import CooMatrix, sparse_dot


@jax.custom_jvp
def softplus(t: jax.Array) -> jax.Array:
    """``log(1 + e^t)`` without overflow: ``max(t, 0) + log1p(e^-|t|)``, elementwise; its
    derivative is σ(t).

    The same operations as ``jax.nn.softplus`` (``logaddexp(t, 0)``) without its NaN test and
    select per element (a NaN t gives NaN here too), which slow the quickly compiled training
    loop (:data:`jaxlogreg.runtime.compiler.QUICK_OPTIONS`; docs/decisions.md).
    """
    return jnp.maximum(t, 0) + jnp.log1p(jnp.exp(-jnp.abs(t)))


@softplus.defjvp
def _softplus_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    (t,), (dt,) = primals, tangents
    return softplus(t), jax.nn.sigmoid(t) * dt


def binary_cross_entropy(z: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example BCE from logits ``z`` and labels ``y`` in {0, 1}, elementwise.

    ``softplus((1 - 2y) z)`` is exact for both labels: the sign flip is exact in floating point.
    """
    return softplus((1 - 2 * y.astype(z.dtype)) * z)


def softmax_cross_entropy(z: jax.Array, y: jax.Array, axis: int = -1) -> jax.Array:
    """Per-example cross-entropy ``logsumexp(z) - z[y]`` from logits (class axis ``axis``).

    Computed as ``logsumexp(d)``, ``d = z - z[y]`` with ``d[y] = 0`` exactly, so it is never
    below 0 even where the compiler rounds two copies of ``z`` differently; the derivative is
    unchanged (``softmax(z) - onehot(y)``). Leading axes of z (models) share y.
    """
    axis = axis % z.ndim
    y = jnp.expand_dims(jnp.broadcast_to(y, z.shape[:axis] + z.shape[axis + 1:]), axis)
    classes = lax.broadcasted_iota(y.dtype, z.shape, axis)
    d = jnp.where(classes == y, 0.0, z - jnp.take_along_axis(z, y, axis=axis))
    return jax.nn.logsumexp(d, axis=axis)


def example_scale(sample_weight: jax.Array | None, m: int, dtype: Any) -> jax.Array:
    """``s_i / Σ s`` per example, or the scalar ``1/m`` without weights."""
    if sample_weight is None:
        return jnp.asarray(1.0 / m, dtype)
    sample_weight = sample_weight.astype(dtype)
    return sample_weight / jnp.sum(sample_weight)


def l2_penalty(w: jax.Array, l2: Any) -> jax.Array:
    """``λ/2 ||w||²`` (intercept excluded); exactly 0 when λ = 0, even if ``||w||²`` overflows."""
    return jnp.where(l2 == 0, 0.0, 0.5 * l2 * jnp.sum(w * w)).astype(w.dtype)


def l1_penalty(w: jax.Array, l1: Any) -> jax.Array:
    """``λ₁ ||w||₁`` (intercept excluded); exactly 0 when λ₁ = 0."""
    return jnp.where(l1 == 0, 0.0, l1 * jnp.sum(jnp.abs(w))).astype(w.dtype)


def dot(a: Any, b: Any) -> jax.Array:
    """``a @ b`` in full precision: on GPUs XLA's float32 products default to one-pass TF32,
    about 1e-4 relative, too coarse for the gradient checks and a 1e-6 optimum. One operand
    may be a sparse :class:`~jaxlogreg.core.sparse.CooMatrix` (gathers and segment sums)."""
    if isinstance(a, CooMatrix) or isinstance(b, CooMatrix):
        return sparse_dot(a, b)
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def forward_t(params: Params, Xt: jax.Array) -> jax.Array:
    """``z = wᵀX + b`` in the course's features-major layout: Xt (n, m) -> z (m,) or (K, m)."""
    w, b = params
    Xt = Xt.astype(w.dtype)
    if w.ndim == 1:
        return dot(w, Xt) + b
    return dot(w.T, Xt) + b[:, None]


def per_example_loss_t(z: jax.Array, y: jax.Array) -> jax.Array:
    """Loss of each example from logits in features-major layout: z (m,) or (K, m)."""
    return binary_cross_entropy(z, y) if z.ndim == 1 else softmax_cross_entropy(z, y, axis=0)


def objective_t(params: Params, Xt: jax.Array, y: jax.Array, sample_weight: jax.Array | None = None,
                l2: Any = 0.0, l1: Any = 0.0) -> jax.Array:
    """J(w, b) (+ ``λ₁ ||w||₁``) with X given features-major as Xt (n, m); no input checks."""
    z = forward_t(params, Xt)
    s = example_scale(sample_weight, Xt.shape[1], params.w.dtype)
    penalty = l2_penalty(params.w, l2) + l1_penalty(params.w, l1)
    return jnp.sum(s * per_example_loss_t(z, y)) + penalty


@in_params_dtype
def objective(params: Params, X: Any, y: Any, sample_weight: Any = None, l2: float = 0.0,
              l1: float = 0.0) -> jax.Array:
    """The training objective J(w, b) for X (m, n) (dense or sparse), y (m,), optional
    sample_weight (m,), λ₂ = l2 and λ₁ = l1 (``J + λ₁ ||w||₁``).

    Labels are 0/1 for binary params and integer class indices for multinomial params.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxlogreg import Params, objective
      >>> params = Params(w=jnp.zeros(2), b=jnp.array(0.0))
      >>> round(float(objective(params, jnp.ones((3, 2)), jnp.array([0, 1, 1]))), 6)
      0.693147
    """
    X, y, sample_weight = check_problem(params, X, y, sample_weight, l2, l1)
    return objective_t(params, X.T, y, sample_weight, l2, l1)
