"""Rows of the training data over a one-axis device mesh, parameters replicated.

The layout (X public (m, n), internally Xt (n, m))::

    mesh        jax.make_mesh((n_devices,), ("data",))           one axis, named "data"
    Xt          (n, m_pad)  NamedSharding(mesh, P(None, "data"))  columns = rows of X, split
    y, weights  (m_pad,)    NamedSharding(mesh, P("data"))
    params      replicated  NamedSharding(mesh, P())

``m_pad`` is m rounded up to a multiple of the device count. The padding rows come *after* the
m real rows and have sample weight 0, so they vanish exactly from ``J = Σ s_i L_i / Σ s_i`` and
from its gradient. Under ``jax.jit`` the compiler partitions the products by columns and adds
one all-reduce for the sums: every solver runs unchanged. Minibatch epochs draw rows from the m
real ones only (:class:`RowLayout`), and each gathered batch is split over the devices again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlogreg.core import checks as v

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
            f"(use jaxlogreg.make_mesh()), got {got}"
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

    def replicate(self, tree: Any) -> Any:
        """A full copy of every leaf of ``tree`` (parameters, optimizer state) on each device."""
        return jax.device_put(tree, replicated(self.mesh))

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


def place_data(data: Any, mesh: Mesh) -> Any:
    """Put already padded TrainData on the mesh: Xt by columns, y and weights by rows."""
    Xt, y, sample_weight = data
    rows = row_sharding(mesh)
    return type(data)(
        jax.device_put(Xt, column_sharding(mesh)),
        jax.device_put(y, rows),
        None if sample_weight is None else jax.device_put(sample_weight, rows),
    )
