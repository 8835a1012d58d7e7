"""Out-of-core minibatch training: X streamed from a memory-mapped .npy file or an HDF5 dataset.

The epoch is the in-memory one (:func:`jaxlogreg.train.fit` with ``batch_size``), run from the
host: the same shuffled batches (:func:`jaxlogreg.train.epoch_batches` with the same key and epoch
number), the same jitted step (:func:`jaxlogreg.train.minibatch_update`), the same end-of-epoch
bookkeeping (:func:`jaxlogreg.train.finish_epoch`: epoch loss = weighted mean of the minibatch
losses, divergence and ``tol`` checks). Only X stays on disk; y (m values) and the sample weights
are read into memory.

A background thread builds the batches and puts them on the device ahead of the step that needs
them (a bounded queue of ``jax.device_put`` arrays), so reading overlaps computing::

    reader thread:  rows of batch k+2 from disk -> (n, B) array -> device_put -> queue
    main thread:    queue -> minibatch_update(params, opt_state, batch k) (asynchronous dispatch)

To read with locality, a batch's rows are read in increasing row order (whole HDF5 chunks at a
time), then put back into the batch's own order: the step sees exactly the rows the in-memory
gather would give it, in the same order, so the two paths agree to float rounding.

``memory_budget_bytes`` bounds what the reader holds at once: the queue, the batch being built,
the one being used, and one HDF5 chunk. The final loss over all rows is computed in blocks that
fit the budget.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlogreg import _validation as v
from jaxlogreg import model, train
from jaxlogreg._inputs import check_y
from jaxlogreg.loss import forward_t, l2_penalty, per_example_loss_t
from jaxlogreg.model import Params, accumulation_dtype, check_params

PathLike = str | os.PathLike
DEFAULT_MEMORY_BUDGET = 256 * 2**20
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


class RowSource:
    """Read rows of an (m, n) array kept on disk: a NumPy memmap or an h5py dataset."""

    def __init__(self, array: Any, name: str = "X"):
        shape = getattr(array, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
            raise ValueError(
                f"{name} must be a non-empty 2-D array (m, n) on disk, got shape {shape}"
            )
        dtype = np.dtype(array.dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"{name} must hold floating-point numbers, got dtype {dtype}")
        self.array = array
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dtype
        chunks = getattr(array, "chunks", None)  # h5py: None for contiguous datasets
        self.chunk_rows = int(chunks[0]) if chunks else None

    @property
    def row_bytes(self) -> int:
        return self.shape[1] * self.dtype.itemsize

    @property
    def chunk_bytes(self) -> int:
        return 0 if self.chunk_rows is None else self.chunk_rows * self.row_bytes

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (increasing, unique) as an in-memory (len(rows), n) array."""
        if self.chunk_rows is None:
            return np.asarray(self.array[rows])
        out = np.empty((rows.size, self.shape[1]), self.dtype)
        chunk_ids = rows // self.chunk_rows
        bounds = np.flatnonzero(np.diff(chunk_ids)) + 1
        for part in np.split(np.arange(rows.size), bounds):
            start = int(chunk_ids[part[0]]) * self.chunk_rows
            stop = min(start + self.chunk_rows, self.shape[0])
            block = self.array[start:stop]  # one whole chunk: HDF5's unit of I/O
            out[part] = block[rows[part] - start]
        return out

    def read_block(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.array[start:stop])


def open_rows(source: Any, key: str = "X") -> tuple[RowSource, Any]:
    """A :class:`RowSource` for a path (.npy memory-mapped, .h5/.hdf5 dataset ``key``) or array.

    Returns ``(rows, handle)``; ``handle`` is the open h5py file to close, or None.
    """
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such data file")
        if path.endswith(".npy"):
            return RowSource(np.load(path, mmap_mode="r"), path), None
        if path.endswith(_HDF5_SUFFIXES):
            import h5py

            handle = h5py.File(path, "r")
            if key not in handle:
                names = sorted(handle.keys())
                handle.close()
                raise KeyError(f"{path}: no dataset {key!r}; datasets: {names}")
            return RowSource(handle[key], f"{path}:{key}"), handle
        suffixes = ", ".join(_HDF5_SUFFIXES)
        raise ValueError(f"{path}: expected a .npy file or an HDF5 file ({suffixes})")
    return RowSource(source), None


def _load_vector(source: Any, handle: Any, key: str, name: str) -> np.ndarray | None:
    """y or sample_weight: an array, a .npy path, a dataset name of the HDF5 file, or None."""
    if source is None:
        return None
    if isinstance(source, str) and handle is not None and source in handle:
        return np.asarray(handle[source])
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such {name} file")
        return np.load(path)
    return np.asarray(source)


@dataclasses.dataclass(frozen=True)
class StreamPlan:
    """Batches in flight, from the budget: ``(queue + 2) * batch + chunk <= budget``."""

    batch_bytes: int
    queue_size: int
    block_rows: int  # rows per block when evaluating the final loss

    @classmethod
    def of(cls, rows: RowSource, batch_size: int, x_itemsize: int, budget: int, prefetch: int):
        n = rows.shape[1]
        # a batch as read (file dtype), as cast (x dtype) and its y and weights
        batch_bytes = batch_size * (n * (rows.dtype.itemsize + x_itemsize) + 16)
        room = budget - rows.chunk_bytes
        if room < 3 * batch_bytes:
            raise ValueError(
                f"memory_budget_bytes={budget} is too small: streaming needs room for 3 batches "
                f"of {batch_bytes} bytes (batch_size={batch_size}, {n} features)"
                + (f" plus one HDF5 chunk of {rows.chunk_bytes} bytes" if rows.chunk_bytes else "")
                + "; lower batch_size or raise the budget"
            )
        queue_size = max(1, min(prefetch, room // batch_bytes - 2))
        row_cost = n * (rows.dtype.itemsize + x_itemsize) + 16
        block_rows = max(1, min(rows.shape[0], room // (2 * row_cost)))
        return cls(batch_bytes, queue_size, block_rows)


def _stream_step(carry, batch: train.TrainData, hyper: train.Hyper, spec: train.LoopSpec):
    """One minibatch update, summing ``J_batch · weight`` and ``weight`` as the scan does."""
    params, opt_state, loss_sum, weight_sum = carry
    params, opt_state, value, weight = train.minibatch_update(params, opt_state, batch, hyper, spec)
    return params, opt_state, loss_sum + value * weight, weight_sum + weight


_stream_step_jit = jax.jit(_stream_step, static_argnames="spec")
_finish_epoch_jit = jax.jit(train.finish_epoch, static_argnames="spec")
_epoch_batches_jit = jax.jit(train.epoch_batches, static_argnames=("m", "batch_size"))


@jax.jit
def _partial_objective(params: Params, Xt: jax.Array, y: jax.Array, weight: jax.Array):
    """``(Σ w_i L_i, Σ w_i)`` over a block of rows (padding has weight 0)."""
    losses = per_example_loss_t(forward_t(params, Xt), y)
    return jnp.sum(weight * losses), jnp.sum(weight)


class _BatchReader:
    """The background thread: builds each epoch's batches and puts them on the device."""

    _DONE = object()

    def __init__(self, rows, y, sample_weight, x_dtype, weight_dtype, key, m, batch_size, plan):
        self.rows, self.y, self.sample_weight = rows, y, sample_weight
        self.x_dtype, self.weight_dtype = x_dtype, weight_dtype
        self.key, self.m, self.batch_size = key, m, batch_size
        self.queue: queue.Queue = queue.Queue(maxsize=plan.queue_size)
        self.stop = threading.Event()
        self.read_s = 0.0
        self.thread: threading.Thread | None = None
        self.x64 = bool(jax.config.jax_enable_x64)

    def start(self, first_epoch: int, last_epoch: int) -> None:
        self.thread = threading.Thread(
            target=self._run, args=(first_epoch, last_epoch), name="jaxlogreg-reader", daemon=True
        )
        self.thread.start()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, first_epoch: int, last_epoch: int) -> None:
        try:
            # jax.enable_x64 is thread-local: use the fit's setting for the permutation and
            # device_put (which would otherwise turn float64 batches into float32).
            with jax.enable_x64(self.x64):
                for epoch in range(first_epoch, last_epoch):
                    for batch in self._epoch(epoch):
                        if not self._put(batch):
                            return
        except BaseException as err:  # handed to the main thread, which re-raises it
            self._put(err)

    def _epoch(self, epoch: int) -> Iterator[train.TrainData]:
        indices, mask = _epoch_batches_jit(
            self.key, jnp.asarray(epoch, jnp.int32), m=self.m, batch_size=self.batch_size
        )
        indices, mask = np.asarray(indices), np.asarray(mask)
        for idx, msk in zip(indices, mask, strict=True):
            t0 = time.perf_counter()
            unique, inverse = np.unique(idx, return_inverse=True)  # increasing: disk locality
            X_batch = self.rows.read_rows(unique)[inverse]  # back to the batch's own row order
            Xt = np.ascontiguousarray(X_batch.astype(self.x_dtype, copy=False).T)
            weights = msk.astype(self.weight_dtype)
            if self.sample_weight is not None:
                weights = weights * self.sample_weight[idx]
            self.read_s += time.perf_counter() - t0
            yield jax.device_put(train.TrainData(Xt, self.y[idx], weights))

    def get(self) -> train.TrainData:
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


def fit_streaming(
    X: Any,
    y: Any = "y",
    config: train.TrainConfig | None = None,
    *,
    sample_weight: Any = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    prefetch: int = 4,
    x_key: str = "X",
    init_params: Params | None = None,
    n_classes: int | None = None,
    seed: int | jax.Array = 0,
    callback: Callable[[int, float], None] | None = None,
    stats: dict | None = None,
    **overrides: Any,
) -> train.FitResult:
    """Minibatch training with X read from disk batch by batch; same result as in memory.

    ``fit_streaming(path, y, config, seed=S)`` matches
    ``train.fit(X, y, config, seed=S)`` (same ``batch_size``) up to float rounding.

    Args:
      X: a .npy file (memory-mapped), an HDF5 file (dataset ``x_key``), or an on-disk array
        (``np.memmap``, ``h5py.Dataset``) of shape (m, n).
      y: (m,) labels: an array, a .npy path, or the name of a dataset in X's HDF5 file
        (``"y"`` by default).
      config: a :class:`~jaxlogreg.train.TrainConfig` with ``batch_size`` set (SGD, Adam, ...;
        not lbfgs); keyword ``overrides`` replace its fields.
      sample_weight: optional (m,) weights, given like ``y``.
      memory_budget_bytes: the most memory the batches in flight may use (reader queue,
        batch being built, batch being used, one HDF5 chunk).
      prefetch: the most batches queued ahead of the step (fewer if the budget is tight).
      init_params, n_classes, seed, callback: as in :func:`jaxlogreg.train.fit`; ``callback``
        is called after every epoch.
      stats: if a dict, filled with ``batches``, ``read_s`` (time building batches, in the
        reader thread), ``wait_s`` (time the step waited for a batch), ``queue_size``,
        ``wall_s``.

    Returns:
      A :class:`~jaxlogreg.train.FitResult` whose ``loss_history`` holds the epoch losses.
    """
    config = dataclasses.replace(config or train.TrainConfig(), **overrides)
    if config.batch_size is None:
        raise ValueError(
            "streaming trains on minibatches: config.batch_size must be set, got None "
            "(full-batch solvers such as lbfgs need the data in memory: use jaxlogreg.train.fit)"
        )
    v.check_int_at_least(memory_budget_bytes, "memory_budget_bytes", 1)
    v.check_int_at_least(prefetch, "prefetch", 1)
    rows, handle = open_rows(X, x_key)
    try:
        return _fit(rows, handle, y, sample_weight, config, memory_budget_bytes, prefetch,
                    init_params, n_classes, seed, callback, stats)
    finally:
        if handle is not None:
            handle.close()


def _fit(rows, handle, y, sample_weight, config, budget, prefetch, init_params, n_classes, seed,
         callback, stats) -> train.FitResult:
    t_start = time.perf_counter()
    m, n = rows.shape
    y = _load_vector(y, handle, "y", "y")
    if y is None:
        raise ValueError("y is required: an array, a .npy path or an HDF5 dataset name")
    n_classes = train.infer_n_classes(y) if n_classes is None else n_classes
    sample_weight = _load_vector(sample_weight, handle, "sample_weight", "sample_weight")
    with jax.enable_x64(config.dtype == "float64"):
        dtype = np.dtype(jnp.dtype(config.dtype))
        x_dtype = np.dtype(jnp.dtype(config.x_dtype or config.dtype))
        y = np.asarray(check_y(y, m, n_classes)).astype(dtype if n_classes == 2 else np.int32)
        if sample_weight is not None:
            sample_weight = v.as_array(sample_weight, "sample_weight")
            v.check_sample_weight(sample_weight, m)
            sample_weight = np.asarray(sample_weight, dtype)
        weight_dtype = x_dtype if x_dtype.itemsize >= 4 else np.dtype(np.float32)
        plan = StreamPlan.of(rows, config.batch_size, x_dtype.itemsize, budget, prefetch)

        param_dtype = accumulation_dtype(config.dtype)
        if init_params is None:
            params = model.init_params(n, n_classes, param_dtype)
        else:
            params = Params(*(jnp.asarray(p, param_dtype) for p in check_params(init_params, n)))
        if not config.fit_intercept:
            params = train._zero_intercept(params)
        state = train.init_state(params, config, seed)
        hyper, spec = train.hyper_of(config), train.LoopSpec.of(config)
        n_batches = -(-m // config.batch_size)
        reader = _BatchReader(
            rows, y, sample_weight, x_dtype, weight_dtype,
            jax.random.wrap_key_data(state.key), m, config.batch_size, plan,
        )
        reader.start(int(state.iteration), config.max_iter)
        wait_s, batches = 0.0, 0
        try:
            while int(state.status) == train.RUNNING and int(state.n_recorded) < config.max_iter:
                zero = jnp.zeros((), state.loss_history.dtype)
                carry = (state.params, state.opt_state, zero, zero)
                for _ in range(n_batches):
                    t0 = time.perf_counter()
                    batch = reader.get()
                    wait_s += time.perf_counter() - t0
                    carry = _stream_step_jit(carry, batch, hyper, spec=spec)
                    batches += 1
                params, opt_state, loss_sum, weight_sum = carry
                state = _finish_epoch_jit(
                    state, loss_sum / weight_sum, params, opt_state, hyper, spec=spec
                )
                if callback is not None:
                    n_recorded = int(state.n_recorded)
                    callback(int(state.iteration), float(state.loss_history[n_recorded - 1]))
        finally:
            reader.close()
        loss = objective_streaming(state.params, rows, y, sample_weight, config.l2, plan.block_rows,
                                   x_dtype)
        if stats is not None:
            stats.update(
                batches=batches, read_s=reader.read_s, wait_s=wait_s,
                queue_size=plan.queue_size, wall_s=time.perf_counter() - t_start,
            )
        status = int(state.status)
        status = train.MAX_ITER if status == train.RUNNING else status
        n_recorded = int(state.n_recorded)
        return train.FitResult(
            params=Params(*(np.asarray(p) for p in state.params)),
            n_iter=int(state.iteration),
            loss_history=np.asarray(state.loss_history[:n_recorded]),
            loss=loss,
            status=train.STATUS_NAMES[status],
        )


def objective_streaming(
    params: Params,
    rows: RowSource,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    l2: float,
    block_rows: int,
    x_dtype: Any,
) -> float:
    """J(w, b) over all rows, read in contiguous blocks of ``block_rows`` (the last one padded)."""
    m = rows.shape[0]
    weight_dtype = np.dtype(params.w.dtype)
    total, weight_total = 0.0, 0.0
    for start in range(0, m, block_rows):
        stop = min(start + block_rows, m)
        pad = block_rows - (stop - start)
        Xt = rows.read_block(start, stop).astype(x_dtype, copy=False).T
        weights = np.ones(stop - start, weight_dtype) if sample_weight is None else (
            sample_weight[start:stop].astype(weight_dtype))
        y_block = y[start:stop]
        if pad:
            Xt = np.concatenate([Xt, np.zeros((Xt.shape[0], pad), Xt.dtype)], axis=1)
            y_block = np.concatenate([y_block, np.zeros(pad, y.dtype)])
            weights = np.concatenate([weights, np.zeros(pad, weight_dtype)])
        s, w = _partial_objective(params, np.ascontiguousarray(Xt), y_block, weights)
        total += float(s)
        weight_total += float(w)
    penalty = float(l2_penalty(params.w, jnp.asarray(l2, params.w.dtype)))
    return total / weight_total + penalty
