"""Out-of-core minibatch training: X streamed from a memory-mapped .npy file, an HDF5 dataset,
or a sparse CSR matrix stored as an HDF5 group.

:class:`StreamedData` is data prepared for the one fit pipeline
(:func:`jaxlogreg.training.pipeline.run_fit`). An epoch is the in-memory one (``jaxlogreg.fit``
with ``batch_size``): the same shuffled batches, jitted step and end-of-epoch bookkeeping
(:mod:`jaxlogreg.training.loop`), so the result equals the in-memory fit to float rounding.
Only X stays on disk (y and the weights are read into memory); rows are checked for NaN/inf
as they are read, with :func:`jaxlogreg.fit`'s error. A reader thread builds each batch from
its rows in increasing order, put back in the batch's order (sparse X: a
:class:`~jaxlogreg.core.sparse.CooMatrix` padded to a power of two of entries, never dense),
and puts it on the device ahead of the step, within ``memory_budget_bytes``. The reading, the
budget and the formats: docs/scaling.md, "Data larger than memory".
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from jaxlogreg.core import checks as v
from jaxlogreg.core.loss import forward_t, l1_penalty, l2_penalty, per_example_loss_t
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.scale.batch_reader import MIN_ENTRY_BUCKET, BatchReader, Rows, StreamPlan
from jaxlogreg.scale.rows import (
    check_finite_rows,
    load_vector,
    open_rows,
    training_layout,
)
from jaxlogreg.scale.sparse_rows import SparseRowSource
from jaxlogreg.training.data import entry_bucket, pad_rows, sparse_layout
from jaxlogreg.training.loop import LoopState, finish_epoch
from jaxlogreg.training.minibatch import minibatch_update
from jaxlogreg.training.pipeline import FitResult, callback_hooks, run_fit
from jaxlogreg.training.problem import check_labels, relative_weights, resolve_dtype
from jaxlogreg.training.settings import TrainConfig, resolve
from jaxlogreg.training.spec import Hyper, LoopSpec, TrainData
from jaxlogreg.training.stopping import RUNNING

DEFAULT_MEMORY_BUDGET = 256 * 2**20


def _stream_step(carry, batch: TrainData, hyper: Hyper, spec: LoopSpec):
    """One minibatch update, summing ``J_batch · weight`` and ``weight`` as the scan does;
    the carry's last entry is the loss of the epoch's first batch."""
    params, opt_state, loss_sum, weight_sum, first = carry
    params, opt_state, value, weight = minibatch_update(params, opt_state, batch, hyper, spec)
    first = jnp.where(weight_sum == 0, value, first)
    return params, opt_state, loss_sum + value * weight, weight_sum + weight, first


_stream_step_jit = jax.jit(_stream_step, static_argnames="spec")
_finish_epoch_jit = jax.jit(finish_epoch, static_argnames="spec")


@jax.jit
def _partial_objective(params: Params, Xt: jax.Array, y: jax.Array, weight: jax.Array):
    """``(Σ w_i L_i, Σ w_i)`` over a block of rows (padding has weight 0)."""
    losses = per_example_loss_t(forward_t(params, Xt), y)
    return jnp.sum(weight * losses), jnp.sum(weight)


@jax.jit
def _penalty(w: jax.Array, l2: jax.Array, l1: jax.Array) -> jax.Array:
    return l2_penalty(w, l2) + l1_penalty(w, l1)


@dataclasses.dataclass
class StreamedData:
    """Data on disk prepared for :func:`jaxlogreg.training.pipeline.run_fit`: X stays in the
    file and is read batch by batch; y and the weights (m values each) are in memory."""

    rows: Rows
    y: np.ndarray
    weights: np.ndarray | None  # relative to the largest (training.problem)
    weight_sum: float  # Σ s, float64
    n_classes: int
    dtype: str
    x_dtype: Any
    plan: StreamPlan
    stats: dict = dataclasses.field(
        default_factory=lambda: {"batches": 0, "read_s": 0.0, "wait_s": 0.0}
    )
    layout: Any = None

    def __post_init__(self):
        if self.sparse:
            self.stats.setdefault("entry_buckets", set())

    @property
    def sparse(self) -> bool:
        return isinstance(self.rows, SparseRowSource)

    @property
    def n_samples(self) -> int:
        return self.rows.shape[0]

    @property
    def n_features(self) -> int:
        return self.rows.shape[1]

    def place(self, params: Params) -> Params:
        return params

    def unpad(self, params: Params) -> Params:
        return params

    def advance(
        self, state: LoopState, hyper: Hyper, spec: LoopSpec, stop_at: int
    ) -> tuple[LoopState, None]:
        """Epochs from the state's iteration up to ``stop_at``, batches read ahead in a thread.

        J over all rows is not known along the way (it would take a pass over the file): the
        pipeline asks :meth:`objective` for it at the end."""
        n_batches = -(-self.n_samples // spec.batch_size)
        reader = BatchReader(self, jax.random.wrap_key_data(state.key), spec.batch_size)
        reader.start(int(state.iteration), stop_at)
        try:
            while (
                int(state.status) == RUNNING
                and int(state.iteration) < stop_at
                and int(state.n_recorded) < spec.history_size
            ):
                zero = jnp.zeros((), state.loss_history.dtype)
                carry = (state.params, state.opt_state, zero, zero, zero)
                for _ in range(n_batches):
                    t0 = time.perf_counter()
                    batch = reader.get()
                    self.stats["wait_s"] += time.perf_counter() - t0
                    carry = _stream_step_jit(carry, batch, hyper, spec=spec)
                    self.stats["batches"] += 1
                params, opt_state, loss_sum, weight_sum, first = carry
                state = _finish_epoch_jit(
                    state, loss_sum / weight_sum, first, params, opt_state, hyper, spec=spec
                )
        finally:
            reader.close()
        return state, None

    def _blocks(self) -> Iterator[tuple[int, Any, np.ndarray, np.ndarray]]:
        """Contiguous blocks ``(start, X, y, weights)`` of at most ``plan.block_rows`` rows on
        the host: X (rows, n) as read, in the file's dtype (dense, or a canonical CSR array;
        callers check dense values); y and the weights of those rows."""
        m, rows = self.n_samples, self.plan.block_rows
        weight_dtype = accumulation_dtype(self.dtype)
        for start in range(0, m, rows):
            stop = min(start + rows, m)
            X = self.rows.read_block(start, stop)
            weights = (np.ones(stop - start, weight_dtype) if self.weights is None
                       else self.weights[start:stop].astype(weight_dtype))
            yield start, X, self.y[start:stop], weights

    def objective(self, params: Params, hyper: Hyper) -> float:
        """J(w, b) over all rows, read in blocks that fit the memory budget; every block is
        padded with weight-0 rows to one shape (sparse: and its entries to a bucket size)."""
        total, weight_total = 0.0, 0.0
        m, rows = self.n_samples, self.plan.block_rows
        if self.sparse:  # one entry count for all blocks: the widest block's bucket
            starts = np.arange(0, m, rows)
            indptr = self.rows.indptr
            widest = int(np.max(indptr[np.minimum(starts + rows, m)] - indptr[starts]))
            nnz = entry_bucket(widest, MIN_ENTRY_BUCKET)
        for start, X, y, weights in self._blocks():
            if self.sparse:
                Xt = sparse_layout(X, self.x_dtype, X.shape[::-1], nnz,
                                   np.arange(start, start + X.shape[0]), self.rows.name)
            else:  # checks the values in the same pass
                Xt = training_layout(X, self.x_dtype, start, self.rows.name)
            s, w = _partial_objective(params, *pad_rows(TrainData(Xt, y, weights), rows))
            total += float(s)
            weight_total += float(w)
        return total / weight_total + float(_penalty(params.w, hyper.l2, hyper.l1))

    def fingerprint(self) -> list[float]:
        """The same summary of the data as in-memory fits use (see ``DeviceData.fingerprint``),
        in float64 from the x-dtype values; sparse blocks by scipy products (never dense)."""
        m, n = self.rows.shape
        sums = np.zeros(2 * n + 3)
        for start, X, y, weights in self._blocks():
            ramp = (start + np.arange(X.shape[0])) / m
            if self.sparse:  # the entries as the step sees them, in float64
                values = X.data.astype(self.x_dtype, copy=False).astype(np.float64)
                X = sp.csr_array((values, X.indices, X.indptr), shape=X.shape)
            else:
                check_finite_rows(X, start, self.rows.name)
                X = X.astype(self.x_dtype, copy=False).astype(np.float64)
            sw, yf = weights.astype(np.float64), y.astype(np.float64)
            Xt = X.T
            sums[:n] += Xt @ sw
            sums[n : 2 * n] += Xt @ (ramp * sw)
            sums[2 * n :] += [yf @ sw, yf @ (ramp * sw), sw.sum()]
        return sums.tolist()


def fit_streaming(X: Any, y: Any = "y", config: TrainConfig | None = None, *,
                  sample_weight: Any = None, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
                  prefetch: int = 4, x_key: str = "X", init_params: Params | None = None,
                  n_classes: int | None = None,
                  callback: Callable[[int, float], None] | None = None, checkpoint: Any = None,
                  stats: dict | None = None, **settings: Any) -> FitResult:
    """Minibatch training with X read from disk batch by batch; same result as in memory.

    ``fit_streaming(path, y, config)`` matches ``jaxlogreg.fit(X, y, config)`` (same
    ``batch_size`` and ``random_state``) up to float rounding; for a sparse X, the fit of its
    dense form (``jaxlogreg.fit`` trains sparse X full batch only).

    Args:
      X: a .npy file (memory-mapped), an HDF5 file (dataset ``x_key``, or a group ``x_key``
        holding a sparse CSR matrix: datasets ``data``, ``indices``, ``indptr`` and attribute
        ``shape`` = (m, n), as AnnData and :func:`jaxlogreg.scale.rows.save_sparse_hdf5` write
        it), or an on-disk array (``np.memmap``, ``h5py.Dataset``, or such an ``h5py.Group``)
        of shape (m, n). A scipy sparse matrix in memory is streamed the same way. Sparse rows
        are never densified: a batch is its entries; duplicate entries are summed, indices
        out of range and NaN/inf values refused naming the row.
      y: (m,) labels: an array, a .npy path, or the name of a dataset in X's HDF5 file
        (``"y"`` by default; also with an open h5py dataset or group).
      config: a :class:`~jaxlogreg.TrainConfig` with ``batch_size`` set (SGD, Adam, ...;
        not lbfgs); keyword ``settings`` replace its fields.
      sample_weight: optional (m,) weights, given like ``y``.
      memory_budget_bytes: the most memory the batches in flight may use (reader queue,
        batch being built, batch being used, one HDF5 chunk); sparse batches are estimated
        from the average number of entries per row.
      prefetch: the most batches queued ahead of the step (fewer if the budget is tight).
      init_params, n_classes, callback, checkpoint: as in :func:`jaxlogreg.fit`; ``callback``
        is called after every epoch.
      stats: if a dict, filled with ``batches``, ``read_s`` (time building batches, in the
        reader thread), ``wait_s`` (time the step waited for a batch), ``queue_size``,
        ``wall_s``; for sparse X also ``entry_buckets``, the sorted entry counts batches were
        padded to (one compiled step each).

    Returns:
      A :class:`~jaxlogreg.FitResult` whose ``loss_history`` holds the epoch losses.
    """
    t_start = time.perf_counter()
    config = resolve(config, settings)
    if config.batch_size is None:
        raise ValueError(
            "batch_size must be set for streaming, which trains on minibatches; got None "
            "(full-batch solvers such as lbfgs need the data in memory: use jaxlogreg.fit)"
        )
    v.check_int_at_least(memory_budget_bytes, "memory_budget_bytes", 1)
    v.check_int_at_least(prefetch, "prefetch", 1)
    rows, handle = open_rows(X, x_key)
    try:
        data = _prepare(rows, rows.file if handle is None else handle, y, sample_weight, n_classes, config,
                        memory_budget_bytes, prefetch)
        hooks = callback_hooks(callback, config.max_iter, config.max_iter)  # after every epoch
        result = run_fit(data, config, init_params=init_params, hooks=hooks,
                         checkpoint=checkpoint)
    finally:
        if handle is not None:
            handle.close()
    if stats is not None:
        stats.update(data.stats, queue_size=data.plan.queue_size,
                     wall_s=time.perf_counter() - t_start)
        if data.sparse:
            stats["entry_buckets"] = sorted(data.stats["entry_buckets"])
    return result


def _prepare(rows, handle, y, sample_weight, n_classes, config, budget, prefetch) -> StreamedData:
    """Labels and weights read and checked, dtypes resolved, the memory plan made."""
    m = rows.shape[0]
    y = load_vector(y, handle, "y")
    if y is None:
        raise ValueError("y is required: an array, a .npy path or an HDF5 dataset name")
    y, n_classes = check_labels(y, m, n_classes)
    sample_weight = load_vector(sample_weight, handle, "sample_weight")
    weights, weight_sum = relative_weights(y, sample_weight, config.class_weight, n_classes)
    dtype = resolve_dtype(config.dtype, rows)
    x_dtype = np.dtype(jnp.dtype(config.x_dtype or dtype))
    batch_size = min(config.batch_size, m)
    plan = StreamPlan.of(rows, batch_size, x_dtype.itemsize, budget, prefetch)
    y = y.astype(dtype if n_classes == 2 else np.int32)
    return StreamedData(rows, y, weights, weight_sum, n_classes, dtype, x_dtype, plan)
