"""Multi-process (multi-host) data-parallel training through ``jax.distributed``.

Each process runs the same program (SPMD, "multi-controller" JAX)::

    from jaxlogreg.scale import distributed
    distributed.initialize()                     # first, before any other JAX call
    mesh = jaxlogreg.make_mesh()                 # all devices of all processes
    rows = distributed.local_rows(m, mesh)       # the rows this process must load
    result = distributed.fit_distributed(X[rows], y[rows], config, n_samples=m, mesh=mesh)

The m rows, padded with zero-weight rows to a multiple of the device count, are split into
equal contiguous blocks, one per device in mesh order, so a process loads only its real rows
``local_rows(m, mesh)``; :func:`global_train_data` makes the global arrays of them
(``jax.make_array_from_process_local_data``). The fit is the single-process pipeline, its
all-reduces across processes; every process gets the same model. Launching: docs/scaling.md.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from sklearn.utils.class_weight import compute_class_weight

from jaxlogreg.core import checks as v
from jaxlogreg.core import model
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.training import mesh as mesh_layout
from jaxlogreg.training.data import DeviceData, pad_rows
from jaxlogreg.training.pipeline import FitResult, callback_hooks, run_fit
from jaxlogreg.training.problem import infer_n_classes, resolve_dtype
from jaxlogreg.training.settings import TrainConfig, resolve
from jaxlogreg.training.spec import TrainData

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


class ProcessInfo(NamedTuple):
    """Where this process stands in the run."""

    process_index: int
    process_count: int
    local_device_count: int
    device_count: int


def process_info() -> ProcessInfo:
    return ProcessInfo(
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count()
    )


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: Any = None,
    cpu_collectives: str = "gloo",
    initialization_timeout: int = 300,
) -> ProcessInfo:
    """Start ``jax.distributed`` for a multi-process run; call it before any other JAX call.

    Each argument left as None is read from the environment: ``JAX_COORDINATOR_ADDRESS``
    (``host:port`` of process 0), ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``. Whatever is still
    missing is auto-detected by JAX on SLURM (``srun``), Open MPI (``mpirun``), Kubernetes
    JobSets and Cloud TPU. With none of these and no arguments, the run is a single process
    and nothing is initialised.

    Args:
      coordinator_address: ``"host:port"`` of the coordinator (process 0), reachable by all.
      num_processes: number of processes in the run.
      process_id: this process's index, ``0 .. num_processes-1``.
      local_device_ids: restrict this process to these local devices (e.g. one GPU each).
      cpu_collectives: cross-process collectives for the CPU backend, ``"gloo"`` or ``"mpi"``
        (sets ``jax_cpu_collectives_implementation``; GPUs use NCCL regardless).
      initialization_timeout: seconds to wait for all processes to connect.

    Returns:
      This process's :class:`ProcessInfo`.
    """
    v.check_choice(cpu_collectives, "cpu_collectives", ("gloo", "mpi"))
    if jax.distributed.is_initialized():
        return process_info()
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if num_processes is not None:
        v.check_int_at_least(num_processes, "num_processes", 1)
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id must be in 0..{num_processes - 1} (num_processes={num_processes}), "
            f"got {process_id}"
        )
    explicit = (coordinator_address, num_processes, process_id)
    if all(x is None for x in explicit) and not _cluster_detected():
        return process_info()  # a plain single-process run
    if num_processes == 1 and coordinator_address is None:
        return process_info()
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        initialization_timeout=initialization_timeout,
    )
    return process_info()


def _cluster_detected() -> bool:
    """True under a cluster manager that ``jax.distributed.initialize`` detects by itself."""
    slurm = all(k in os.environ for k in ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_PROCID"))
    slurm = slurm and int(os.environ["SLURM_NTASKS"]) > 1
    ompi = "OMPI_COMM_WORLD_SIZE" in os.environ and int(os.environ["OMPI_COMM_WORLD_SIZE"]) > 1
    return slurm or ompi


def shutdown() -> None:
    """Stop ``jax.distributed`` if it is running (all processes should call it at the end)."""
    if jax.distributed.is_initialized():
        jax.distributed.shutdown()


def local_rows(n_samples: int, mesh: Mesh) -> slice:
    """The rows ``start:stop`` of the global data set that this process must provide.

    The padded data set (``padded_size(n_samples, mesh.size)`` rows) is split into equal blocks,
    one per device in mesh order; this process owns the blocks of its local devices, which must
    be contiguous (true for :func:`jaxlogreg.make_mesh`). Padding rows are not loaded:
    ``stop`` is at most ``n_samples``, so the last processes may get fewer rows, or none.
    """
    v.check_int_at_least(n_samples, "n_samples", 1)
    start, stop = _padded_block(n_samples, mesh)
    return slice(min(start, n_samples), min(stop, n_samples))


def _padded_block(n_samples: int, mesh: Mesh) -> tuple[int, int]:
    m_pad = mesh_layout.padded_size(n_samples, mesh_layout.check_mesh(mesh).size)
    index_map = mesh_layout.row_sharding(mesh).addressable_devices_indices_map((m_pad,))
    bounds = sorted((s[0].start or 0, m_pad if s[0].stop is None else s[0].stop)
                    for s in index_map.values())
    for (_, stop), (start, _) in itertools.pairwise(bounds):
        if stop != start:
            raise ValueError(
                "this process's devices do not hold one contiguous block of rows in the mesh; "
                "build the mesh with jaxlogreg.make_mesh() (devices ordered by process)"
            )
    return bounds[0][0], bounds[-1][1]


def global_train_data(
    X_local: Any,
    y_local: Any,
    weights_local: np.ndarray | None,
    *,
    n_samples: int,
    mesh: Mesh,
    n_classes: int,
    dtype: str,
    x_dtype: str | None = None,
) -> tuple[TrainData, mesh_layout.RowLayout]:
    """Global, sharded :class:`~jaxlogreg.training.loop.TrainData` from this process's rows.

    Args:
      X_local: (m_local, n) rows ``local_rows(n_samples, mesh)`` of the global X, on the host.
      y_local: (m_local,) the matching labels.
      weights_local: optional (m_local,) weights (sample times class weights).
      n_samples: m, the rows of the global data set.
      mesh: the one-axis ``("data",)`` mesh over all processes' devices.
      n_classes: 2 or K, the same on every process.
      dtype, x_dtype: the fit's dtype and the storage dtype of X.

    Returns:
      ``(data, layout)`` as :func:`jaxlogreg.scale.sharding.shard_data` returns them.
    """
    mesh_layout.check_mesh(mesh)
    rows = local_rows(n_samples, mesh)
    start, stop = _padded_block(n_samples, mesh)
    m_local = rows.stop - rows.start
    X_local = np.asarray(X_local)
    if X_local.ndim != 2 or X_local.shape[0] != m_local:
        raise ValueError(
            f"X_local must hold this process's {m_local} rows {rows.start}:{rows.stop} of the "
            f"{n_samples} (see jaxlogreg.scale.distributed.local_rows), got shape {X_local.shape}"
        )
    if m_local:
        model.check_X(X_local, "X_local")
    y_local = v.check_y(y_local, m_local, n_classes, "y_local") if m_local else np.asarray(y_local)
    y_local = np.asarray(y_local).astype(dtype if n_classes == 2 else np.int32)
    Xt_local = np.asarray(X_local, jnp.dtype(x_dtype or dtype)).T
    local = TrainData(Xt_local, y_local, weights_local)
    m_pad = mesh_layout.padded_size(n_samples, mesh.size)
    if m_pad > n_samples and local.sample_weight is None:
        local = local._replace(sample_weight=np.ones((m_local,), accumulation_dtype(dtype)))
    local = pad_rows(local, stop - start)
    n = Xt_local.shape[0]
    cols, rows_sharding = mesh_layout.column_sharding(mesh), mesh_layout.row_sharding(mesh)
    make = jax.make_array_from_process_local_data
    data = TrainData(
        make(cols, local.Xt, (n, m_pad)),
        make(rows_sharding, local.y, (m_pad,)),
        None if local.sample_weight is None else make(rows_sharding, local.sample_weight, (m_pad,)),
    )
    return data, mesh_layout.RowLayout(mesh, n_samples)


def _all_processes_gather(x: np.ndarray) -> np.ndarray:
    """``x`` of every process, stacked on a first axis."""
    if jax.process_count() == 1:
        return x[None]
    return np.asarray(multihost_utils.process_allgather(x))


def _all_processes_sum(x: np.ndarray) -> np.ndarray:
    """The sum of ``x`` over every process (``x`` itself in a single-process run)."""
    return np.sum(_all_processes_gather(x), axis=0)


def _global_n_classes(y_local: np.ndarray, n_classes: int | None) -> int:
    """The same n_classes on every process: the largest one any process infers."""
    if n_classes is not None:
        return v.check_int_at_least(n_classes, "n_classes", 2)
    local = infer_n_classes(y_local) if y_local.size else 2
    if jax.process_count() == 1:
        return local
    return int(np.max(multihost_utils.process_allgather(np.asarray(local, np.int32))))


def _global_weights(
    y_local: np.ndarray, sample_weight: Any, class_weight: Any, n_classes: int
) -> tuple[np.ndarray | None, float]:
    """This process's weights (sample weight times class weight, or None) and Σ s over all rows.

    The rules are :func:`jaxlogreg.training.problem.relative_weights`' (scikit-learn's), applied to
    the whole data set: "balanced" uses the weighted class counts of every process's rows,
    ``Σ s / (K · Σ_{y_i = k} s_i)``. Values are checked over all rows, so a process whose own
    rows all have weight 0 (or that holds no rows) is fine, and every process raises the same
    error when the weights are unusable overall.
    """
    m_local = y_local.shape[0]
    sw = None
    if sample_weight is not None:  # this process's part may weigh 0; the sum is checked below
        sw = np.asarray(v.check_sample_weight(sample_weight, m_local, positive_sum=False),
                        np.float64)
    weights = sw
    if class_weight is not None:
        labels = np.asarray(y_local, np.int64)
        classes = np.arange(n_classes)
        if class_weight == "balanced":
            local_counts = np.bincount(labels, weights=sw, minlength=n_classes)
            counts = _all_processes_sum(local_counts.astype(np.float64))
            if not np.all(counts > 0):
                raise ValueError(
                    'class_weight="balanced" needs every class 0..K-1 in y with a positive '
                    f"weight; the weighted class counts are {counts.tolist()}"
                )
            per_class = counts.sum() / (n_classes * counts)
        else:  # a dict: scikit-learn's rules (missing classes weigh 1)
            per_class = compute_class_weight(class_weight, classes=classes, y=classes)
        weights = per_class[labels] if sw is None else per_class[labels] * sw
    if weights is None:
        return None, float(_all_processes_sum(np.asarray([float(m_local)]))[0])
    local_largest = float(weights.max()) if m_local else 0.0
    largest = float(np.max(_all_processes_gather(np.asarray([local_largest]))))
    if not largest > 0:
        raise ValueError("sample_weight times class_weight must have a positive sum over all "
                         "rows, got 0")
    weights = weights / largest  # relative to the largest, as jaxlogreg.training.problem's
    weight_sum = float(_all_processes_sum(np.asarray([weights.sum()]))[0]) * largest
    return weights, weight_sum


def _shared_seed(config: TrainConfig) -> TrainConfig:
    """Minibatch shuffles must agree: a missing random_state is drawn once, on process 0."""
    if config.batch_size is None or config.random_state is not None or jax.process_count() == 1:
        return config
    seed = multihost_utils.broadcast_one_to_all(np.int64(np.random.randint(2**31 - 1)))
    return config.replace(random_state=int(seed))


def fit_distributed(X: Any, y: Any, config: TrainConfig | None = None, *,
                    n_samples: int | None = None, sample_weight: Any = None,
                    mesh: Mesh | None = None, init_params: Params | None = None,
                    n_classes: int | None = None,
                    callback: Callable[[int, float], None] | None = None, n_segments: int = 20,
                    checkpoint: Any = None, **settings: Any) -> FitResult:
    """Data-parallel :func:`jaxlogreg.fit` over every device of every process.

    Call :func:`initialize` first. All processes call this with the same settings.

    Args:
      X, y, sample_weight: with ``n_samples=None``, the whole data set, identical on every
        process (each keeps only its rows). With ``n_samples=m``, only this process's rows
        ``local_rows(m, mesh)`` of an m-row data set (each process loads its own part).
      config, settings, init_params, callback, n_segments, checkpoint: as in
        :func:`jaxlogreg.fit`.
      mesh: a one-axis ``("data",)`` mesh; all global devices by default.
      n_classes: 2 or K; inferred from the labels (agreed between processes) when None.

    Returns:
      The :class:`~jaxlogreg.FitResult`, the same on every process.
    """
    config = _shared_seed(resolve(config, settings))
    mesh = mesh_layout.make_mesh() if mesh is None else mesh_layout.check_mesh(mesh)
    if n_samples is None:
        n_samples = int(np.shape(X)[0])
        rows = local_rows(n_samples, mesh)
        X, y = np.asarray(X)[rows], np.asarray(y)[rows]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)[rows]
    y = np.asarray(y)
    n_classes = _global_n_classes(y, n_classes)
    if y.size:
        y = np.asarray(v.check_y(y, y.shape[0], n_classes, "y"))
    dtype = resolve_dtype(config.dtype, X)
    weights, weight_sum = _global_weights(y, sample_weight, config.class_weight, n_classes)
    with jax.enable_x64(dtype == "float64"):
        if weights is not None:
            weights = weights.astype(accumulation_dtype(dtype))
        data, layout = global_train_data(
            X, y, weights, n_samples=n_samples, mesh=mesh, n_classes=n_classes, dtype=dtype,
            x_dtype=config.x_dtype,
        )
        prepared = DeviceData(data, n_samples, data.Xt.shape[0], n_classes, dtype, weight_sum,
                              layout)
        hooks = callback_hooks(callback, config.max_iter, n_segments)
        return run_fit(prepared, config, init_params=init_params, hooks=hooks,
                       checkpoint=checkpoint)
