"""Data-parallel training: rows of X sharded over a one-axis device mesh, parameters replicated.

The layout (X public (m, n), internally Xt (n, m))::

    mesh        jax.make_mesh((n_devices,), ("data",))           one axis, named "data"
    Xt          (n, m_pad)  NamedSharding(mesh, P(None, "data"))  columns = rows of X, split
    y, weights  (m_pad,)    NamedSharding(mesh, P("data"))
    params      replicated  NamedSharding(mesh, P())

``m_pad`` is m rounded up to a multiple of the device count. The padding rows come *after* the
m real rows and have sample weight 0, so they vanish exactly from the weighted mean
``J = Σ s_i L_i / Σ s_i`` and from its gradient ``dw = X dz``, ``dz = s ⊙ (a - y) / Σ s``.
Minibatch epochs draw their permutation over the m real rows only (:class:`RowLayout`), so
padding is never taken for a real row.

Under ``jax.jit`` the compiler partitions ``z = wᵀX + b`` by columns and inserts one all-reduce
for the sums ``X dz``, ``Σ dz`` and ``J``: every optimizer in :mod:`jaxlogreg.solvers` runs
unchanged. In a minibatch step the rows of the batch are gathered from their devices, then the
batch is split over the devices again (:meth:`RowLayout.constrain_batch`), so each device
computes on ``B / n_devices`` rows.

:func:`value_and_grad_shard_map` is the same gradient written per device with ``shard_map`` and
one explicit ``psum``; ``jaxlogreg.bench.devices`` compares the two (docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlogreg import _validation as v
from jaxlogreg.gradients import _dw_db_t
from jaxlogreg.loss import forward_t, l2_penalty, per_example_loss_t
from jaxlogreg.model import Params

DATA_AXIS = "data"


def make_mesh(n_devices: int | None = None, *, devices: Any = None) -> Mesh:
    """A one-axis mesh named ``"data"`` over ``n_devices`` devices (all visible ones by default).

    The axis type is ``Auto``: the compiler propagates shardings from the inputs, so the
    training code needs no sharding annotations. In a multi-process run, ``jax.devices()``
    lists the devices of every process and the mesh spans all of them.

    Examples:
      >>> mesh = make_mesh(1)
      >>> mesh.axis_names
      ('data',)
    """
    devices = list(jax.devices() if devices is None else devices)
    if n_devices is None:
        n_devices = len(devices)
    v.check_int_at_least(n_devices, "n_devices", 1)
    if n_devices > len(devices):
        raise ValueError(
            f"n_devices must be at most the {len(devices)} visible devices, got {n_devices}; "
            "on CPU, simulate more with jax.config.update('jax_num_cpu_devices', N) before "
            "the first JAX computation"
        )
    return jax.make_mesh(
        (n_devices,), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices[:n_devices]
    )


def check_mesh(mesh: Any) -> Mesh:
    """Raise a clear error unless ``mesh`` is a one-axis mesh named ``"data"``."""
    if not isinstance(mesh, Mesh) or tuple(mesh.axis_names) != (DATA_AXIS,):
        got = getattr(mesh, "axis_names", type(mesh).__name__)
        raise ValueError(
            f"mesh must be a jax.sharding.Mesh with the single axis ('{DATA_AXIS}',) "
            f"(use jaxlogreg.sharding.make_mesh()), got {got}"
        )
    return mesh


def row_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of per-row arrays (y, weights): split over the ``"data"`` axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def column_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of Xt (n, m): its columns (the rows of X) split over the ``"data"`` axis."""
    return NamedSharding(mesh, P(None, DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters and scalars: a full copy on every device."""
    return NamedSharding(mesh, P())


def padded_size(m: int, n_shards: int) -> int:
    """m rounded up to a multiple of ``n_shards`` (at least one row per shard)."""
    return max(-(-m // n_shards), 1) * n_shards


@dataclasses.dataclass(frozen=True)
class RowLayout:
    """How sharded training data are laid out; hashable, so it is part of the static jit spec.

    Attributes:
      mesh: the one-axis ``("data",)`` mesh.
      n_samples: m, the real rows; they are columns ``0..m-1`` of Xt, padding follows.
    """

    mesh: Mesh
    n_samples: int

    def constrain_batch(self, batch: Any) -> Any:
        """Split a gathered minibatch (Xt (n, B), y (B,), weights (B,)) over the devices."""
        Xt, y, sample_weight = batch
        cols, rows = column_sharding(self.mesh), row_sharding(self.mesh)
        constrain = jax.lax.with_sharding_constraint
        return type(batch)(
            constrain(Xt, cols),
            constrain(y, rows),
            None if sample_weight is None else constrain(sample_weight, rows),
        )


def pad_rows(data: Any, n_shards: int) -> tuple[Any, int]:
    """Pad TrainData to a multiple of ``n_shards`` rows with zero-weight rows at the end.

    Works on NumPy or JAX arrays. Without padding, ``data`` is returned unchanged (a missing
    ``sample_weight`` stays None); with padding, ``sample_weight`` is 1 (or the given weight)
    for real rows and 0 for padding.

    Returns:
      ``(padded_data, m)`` where m is the number of real rows.
    """
    Xt, y, sample_weight = data
    m = Xt.shape[1]
    pad = padded_size(m, n_shards) - m
    if pad == 0:
        return data, m
    xp = jnp if isinstance(Xt, jax.Array) else np
    if xp.issubdtype(y.dtype, xp.floating):
        weight_dtype = y.dtype  # binary labels are stored in the fit's dtype
    else:
        weight_dtype = Xt.dtype if Xt.dtype.itemsize >= 4 else xp.float32  # not bfloat16
    if sample_weight is None:
        sample_weight = xp.ones((m,), weight_dtype)
    Xt = xp.concatenate([Xt, xp.zeros((Xt.shape[0], pad), Xt.dtype)], axis=1)
    y = xp.concatenate([y, xp.zeros((pad,), y.dtype)])
    sample_weight = xp.concatenate([sample_weight, xp.zeros((pad,), sample_weight.dtype)])
    return type(data)(Xt, y, sample_weight), m


def place_data(data: Any, mesh: Mesh) -> Any:
    """Put already padded TrainData on the mesh: Xt by columns, y and weights by rows."""
    Xt, y, sample_weight = data
    rows = row_sharding(mesh)
    return type(data)(
        jax.device_put(Xt, column_sharding(mesh)),
        jax.device_put(y, rows),
        None if sample_weight is None else jax.device_put(sample_weight, rows),
    )


def shard_data(data: Any, mesh: Mesh) -> tuple[Any, RowLayout]:
    """Pad (zero-weight rows, never dropping one) and shard TrainData over ``mesh``.

    Args:
      data: a :class:`jaxlogreg.train.TrainData` (Xt (n, m), y (m,), sample_weight or None).
      mesh: a one-axis ``("data",)`` mesh.

    Returns:
      ``(sharded_data, layout)``; pass ``layout`` to :func:`jaxlogreg.train.run_loop`.
    """
    check_mesh(mesh)
    padded, m = pad_rows(data, mesh.size)
    return place_data(padded, mesh), RowLayout(mesh, m)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """A full copy of every leaf of ``tree`` (parameters, optimizer state) on each device."""
    return jax.device_put(tree, replicated(check_mesh(mesh)))


def value_and_grad_shard_map(
    params: Params, data: Any, l2: Any, mesh: Mesh
) -> tuple[jax.Array, Params]:
    """J and the hand-written ∇J computed per device with ``shard_map`` and one ``psum``.

    Each device computes its partial sums over its columns of Xt: ``Σ s_i L_i``, ``X dz``,
    ``Σ dz`` (with ``dz`` not yet divided by ``Σ s``) and ``Σ s``; one ``psum`` adds the four,
    then every device divides by ``Σ s`` and adds the penalty. Same math as
    :func:`jaxlogreg.gradients.value_and_backward_t`; used to compare with the compiler's
    partitioning (see ``jaxlogreg.bench.devices``).
    """
    Xt, y, sample_weight = data
    if sample_weight is None:
        sample_weight = jnp.ones(y.shape, params.w.dtype)

    def local(params, Xt, y, sw):
        z = forward_t(params, Xt)
        sw = sw.astype(params.w.dtype)
        loss_sum = jnp.sum(sw * per_example_loss_t(z, y))
        raw = _dw_db_t(params, Xt, _raw_dz(z, y, sw), 0.0)  # l2 = 0: X dz and Σ dz only
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


def _raw_dz(z: jax.Array, y: jax.Array, sw: jax.Array) -> jax.Array:
    """``sw ⊙ (a - y)`` without the division by ``Σ s`` (binary (m,) or softmax (K, m))."""
    if z.ndim == 1:
        return sw * (jax.nn.sigmoid(z) - y.astype(z.dtype))
    Y = jax.nn.one_hot(y, z.shape[0], dtype=z.dtype, axis=0)
    return sw * (jax.nn.softmax(z, axis=0) - Y)
