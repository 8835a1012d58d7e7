"""Minibatch epochs: shuffled batches of rows, one optimizer step per batch (a ``lax.scan``).

An epoch draws a permutation of the m real rows from ``fold_in(key, epoch)`` (reproducible,
padding rows never drawn), pads it to whole batches with weight-0 rows, and steps through the
batches; its loss is the weight-averaged batch loss. The streamed fits of
:mod:`jaxlogreg.scale.streaming` run the same steps from the host.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.training.spec import (
    Hyper,
    LoopSpec,
    TrainData,
    n_rows,
    optimizer,
    select,
    value_and_grad,
    with_l1,
)


def epoch_batches(key: jax.Array, epoch: jax.Array, m: int, batch_size: int):
    """Shuffled minibatch indices for one epoch and a mask of real (not padding) rows.

    The permutation of ``range(m)`` comes from ``fold_in(key, epoch)``; it is padded to whole
    batches with index 0 and mask 0, so every batch has the same shape and no row is dropped.

    Returns:
      ``(indices, mask)``, both of shape (n_batches, batch_size).
    """
    n_batches = -(-m // batch_size)
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), m)
    pad = n_batches * batch_size - m
    indices = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)])
    mask = jnp.arange(n_batches * batch_size) < m
    return indices.reshape(n_batches, batch_size), mask.reshape(n_batches, batch_size)


def minibatch_update(
    params: Params, opt_state: Any, batch: TrainData, hyper: Hyper, spec: LoopSpec
) -> tuple[Params, Any, jax.Array, jax.Array]:
    """One minibatch step on ``batch`` (Xt (n, B), y (B,), weights (B,), zero for padding).

    A batch whose weights are all zero changes nothing and counts 0 (its mean loss, 0/0, is
    not used). Returns ``(params, opt_state, J_batch, weight_of_batch)``.
    """
    weight = jnp.sum(batch.sample_weight)
    value, grads = value_and_grad(spec, hyper.l2)(params, *batch)
    updates, new_opt_state = optimizer(spec, hyper).update(grads, opt_state, params, value=value,
                                                           grad=grads)
    has_weight = weight > 0
    value = with_l1(value, grads, params, hyper, spec)[0]
    params = select(has_weight, optax.apply_updates(params, updates), params)
    opt_state = select(has_weight, new_opt_state, opt_state)
    return params, opt_state, jnp.where(has_weight, value, 0.0), weight


def _gather_batch(data: TrainData, indices: jax.Array, mask: jax.Array, rows: bool) -> TrainData:
    """The batch's examples, in the data's layout (``rows``: X (m, n), else Xt (n, m))."""
    weights = mask.astype(accumulation_dtype(data.Xt.dtype))
    if data.sample_weight is not None:
        weights = weights * data.sample_weight[indices]
    return TrainData(jnp.take(data.Xt, indices, axis=0 if rows else 1), data.y[indices], weights)


def minibatch_epoch(params: Params, opt_state: Any, key: jax.Array, epoch: jax.Array,
                    data: TrainData, hyper: Hyper, spec: LoopSpec):
    """One epoch of shuffled minibatches from ``params``: ``(J_epoch, J_first_batch, params,
    opt_state)``, J_epoch the weighted mean minibatch loss, J_first_batch the loss of its first
    batch that has weight."""
    # padding never drawn
    m = n_rows(data.Xt, spec.rows) if spec.layout is None else spec.layout.n_samples
    indices, mask = epoch_batches(key, epoch, m, spec.batch_size)

    def step(carry, batch_ids):
        params, opt_state, loss_sum, weight_sum = carry
        batch = _gather_batch(data, *batch_ids, spec.rows)
        if spec.layout is not None:
            batch = spec.layout.constrain_batch(batch)  # split each minibatch over the devices
        params, opt_state, value, weight = minibatch_update(params, opt_state, batch, hyper, spec)
        return (params, opt_state, loss_sum + value * weight, weight_sum + weight), (value, weight)

    zero = jnp.zeros((), accumulation_dtype(params.w.dtype))
    (params, opt_state, loss_sum, weight_sum), (values, weights) = jax.lax.scan(
        step, (params, opt_state, zero, zero), (indices, mask)
    )
    first = values[jnp.argmax(weights > 0)]
    return loss_sum / weight_sum, first, params, opt_state
