"""Reading a streamed fit's minibatches: the memory plan (:class:`StreamPlan`) and the
background thread that builds each epoch's batches and puts them on the device ahead of the
step that needs them (:class:`BatchReader`), in the batch order of the in-memory loop.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlogreg.core.model import accumulation_dtype
from jaxlogreg.core.sparse import MAX_INDEX
from jaxlogreg.scale.rows import RowSource, training_layout
from jaxlogreg.scale.sparse_rows import SparseRowSource
from jaxlogreg.training.data import entry_bucket, sparse_layout
from jaxlogreg.training.minibatch import epoch_batches
from jaxlogreg.training.spec import TrainData

MIN_ENTRY_BUCKET = 256  # a sparse batch's entries are padded to a power of two, at least this
Rows = RowSource | SparseRowSource
_epoch_batches_jit = jax.jit(epoch_batches, static_argnames=("m", "batch_size"))


@dataclasses.dataclass(frozen=True)
class StreamPlan:
    """Batches in flight, from the budget: ``(queue + 2) * batch + chunk <= budget``."""

    batch_bytes: int
    queue_size: int
    block_rows: int  # rows per block when evaluating the final loss

    @classmethod
    def of(cls, rows: Rows, batch_size: int, x_itemsize: int, budget: int, prefetch: int):
        m, n = rows.shape
        # a row of a batch as read (file dtype), as cast (x dtype), its y and weight; sparse
        # rows: their entries, nnz / m per row on average (see SparseRowSource.batch_row_bytes)
        row_cost = rows.batch_row_bytes(x_itemsize) + 16
        batch_bytes = int(np.ceil(batch_size * row_cost))
        room = budget - rows.chunk_bytes
        if room < 3 * batch_bytes:
            per_row = (f"{rows.nnz / m:.3g} non-zeros per row on average, {n} features"
                       if isinstance(rows, SparseRowSource) else f"{n} features")
            extra = ("one read of the sparse rows" if isinstance(rows, SparseRowSource)
                     else "one HDF5 chunk")
            raise ValueError(
                f"memory_budget_bytes={budget} is too small: streaming needs room for 3 batches "
                f"of {batch_bytes} bytes (batch_size={batch_size}, {per_row})"
                + (f" plus {extra} of {rows.chunk_bytes} bytes" if rows.chunk_bytes else "")
                + "; lower batch_size or raise the budget"
            )
        queue_size = max(1, min(prefetch, room // batch_bytes - 2))
        block_rows = max(1, min(m, int(room // (2 * row_cost))))
        return cls(batch_bytes, queue_size, block_rows)


def _check_batch_entries(X: Any, name: str) -> None:
    if X.nnz > MAX_INDEX:
        raise ValueError(f"{name}: a batch of sparse rows holds {X.nnz} entries, more than "
                         f"{MAX_INDEX}; lower batch_size")


class BatchReader:
    """The background thread: builds each epoch's batches and puts them on the device."""

    def __init__(self, source: Any, key: jax.Array, batch_size: int):
        self.source, self.key, self.batch_size = source, key, batch_size
        self.queue: queue.Queue = queue.Queue(maxsize=source.plan.queue_size)
        self.stop = threading.Event()
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
        except BaseException as err:  # noqa: BLE001 -- handed to the main thread, re-raised there
            self._put(err)

    def _epoch(self, epoch: int) -> Iterator[TrainData]:
        src = self.source
        indices, mask = _epoch_batches_jit(
            self.key, jnp.asarray(epoch, jnp.int32), m=src.n_samples, batch_size=self.batch_size
        )
        indices, mask = np.asarray(indices), np.asarray(mask)
        for idx, msk in zip(indices, mask, strict=True):
            t0 = time.perf_counter()
            if src.sparse:
                # the padding of the last batch comes last (weight 0): its rows stay empty
                real = idx[msk]
                X_batch = src.rows.read_rows(real)
                _check_batch_entries(X_batch, src.rows.name)
                Xt = sparse_layout(X_batch, src.x_dtype, (X_batch.shape[1], idx.size),
                                   entry_bucket(X_batch.nnz, MIN_ENTRY_BUCKET), real,
                                   src.rows.name)
                src.stats["entry_buckets"].add(Xt.nnz)
            else:
                unique, inverse = np.unique(idx, return_inverse=True)  # increasing: locality
                X_batch = src.rows.read_rows(unique)[inverse]  # back to the batch's row order
                Xt = training_layout(X_batch, src.x_dtype, idx, src.rows.name)
            # the dtypes of fit's minibatch gather: mask in X's, weights in the fit's precision
            weights = msk.astype(accumulation_dtype(src.x_dtype))
            if src.weights is not None:
                weights = weights * src.weights[idx].astype(accumulation_dtype(src.dtype))
            src.stats["read_s"] += time.perf_counter() - t0
            yield jax.device_put(TrainData(Xt, src.y[idx], weights))

    def get(self) -> TrainData:
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
