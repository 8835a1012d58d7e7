"""Sharding training data over a mesh by hand, and the gradient written per device.

:func:`shard_data` pads and places :class:`~jaxlogreg.training.loop.TrainData` on a mesh (the
layout of :mod:`jaxlogreg.training.mesh`); :func:`value_and_grad_shard_map` is the gradient
written per device with ``shard_map`` and one explicit ``psum``, which ``benchmarks/devices.py``
compares with the compiler's own partitioning (docs/scaling.md).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxlogreg.core.gradients import value_and_grad_t
from jaxlogreg.core.loss import l2_penalty
from jaxlogreg.core.model import Params
from jaxlogreg.training.data import pad_rows
from jaxlogreg.training.mesh import DATA_AXIS, RowLayout, check_mesh, padded_size, place_data
from jaxlogreg.training.spec import TrainData


def shard_data(data: TrainData, mesh: Mesh) -> tuple[TrainData, RowLayout]:
    """Pad (zero-weight rows, never dropping one) and shard TrainData over ``mesh``.

    Args:
      data: a :class:`jaxlogreg.training.loop.TrainData` (Xt (n, m), y (m,), sample_weight or None).
      mesh: a one-axis ``("data",)`` mesh.

    Returns:
      ``(sharded_data, layout)``; the layout becomes part of the loop's static spec.
    """
    check_mesh(mesh)
    m = data.Xt.shape[1]
    padded = pad_rows(data, padded_size(m, mesh.size))
    return place_data(padded, mesh), RowLayout(mesh, m)


def value_and_grad_shard_map(
    params: Params, data: Any, l2: Any, mesh: Mesh
) -> tuple[jax.Array, Params]:
    """J and the hand-written ∇J computed per device with ``shard_map`` and one ``psum``.

    Each device computes its partial sums over its columns of Xt: ``Σ s_i L_i``, ``X dz``,
    ``Σ dz`` (with ``dz`` not yet divided by ``Σ s``) and ``Σ s``; one ``psum`` adds the four,
    then every device divides by ``Σ s`` and adds the penalty. Same math as
    :func:`jaxlogreg.core.gradients.value_and_grad_t`; used to compare with the compiler's
    partitioning (see ``benchmarks/devices.py``).
    """
    Xt, y, sample_weight = data
    if sample_weight is None:
        sample_weight = jnp.ones(y.shape, params.w.dtype)

    def local(params, Xt, y, sw):
        sw = sw.astype(params.w.dtype)
        # raw weights as the example scale, λ = 0: partial sums Σ s_i L_i, X dz, Σ dz
        loss_sum, raw = value_and_grad_t(params, Xt, y, sw, 0.0)
        return jax.lax.psum((loss_sum, raw, jnp.sum(sw)), DATA_AXIS)

    loss_sum, raw, weight_sum = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), P(None, DATA_AXIS), P(DATA_AXIS), P(DATA_AXIS)),
        out_specs=P(),
    )(params, Xt, y, sample_weight)
    J = loss_sum / weight_sum + l2_penalty(params.w, l2)
    grads = Params(w=raw.w / weight_sum + l2 * params.w, b=raw.b / weight_sum)
    return J, grads
