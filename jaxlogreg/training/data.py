"""Training data: a checked :class:`~jaxlogreg.training.problem.Problem` cast and laid out
on the device, in one pass.

:func:`prepare_data` turns X (m, n), y (m,) and the weights into :class:`TrainData`: ``Xt``
(n, m), the course's layout, or X (m, n) itself for a gradient kernel that reads rows (then
no copy of an aligned X of the fit's dtype is made). :func:`device_data` chooses the fit's
kernel from X's shape, dtype and device first, lays X out as that kernel reads it, and makes
the :class:`DeviceData` the fit pipeline (:mod:`jaxlogreg.training.pipeline`) and the path run
on: the data, how its rows are laid out over devices, and the loop segment that advances a fit.

Padding is done one way, :func:`pad_rows`: zero rows and features, with sample weight 0, after
the real ones, which vanish exactly from ``J = Σ s_i L_i / Σ s_i`` and ``dw = X dz``. Small
problems are padded to power-of-two shapes, so one compiled loop (slow to compile, quick to run
on them) serves many data sets; sharded data to a multiple of the device count.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from jaxlogreg import kernels
from jaxlogreg.core import checks as v
from jaxlogreg.core.loss import dot
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.core.sample_csr import sample_csr
from jaxlogreg.core.sparse import MAX_INDEX, CooMatrix, coo_of_csr
from jaxlogreg.runtime import compiler
from jaxlogreg.training import host_layout
from jaxlogreg.training import mesh as mesh_layout
from jaxlogreg.training.loop import LoopState, run_segment, run_segment_sparse
from jaxlogreg.training.problem import Problem
from jaxlogreg.training.spec import (
    Hyper,
    LoopSpec,
    TrainData,
    objective_value,
    reads_rows,
)

# Bucketing of small problems (see the module docstring).
PAD_MAX_ELEMENTS = 1 << 20
PAD_MIN_SAMPLES = 512
PAD_MIN_FEATURES = 32

_HOST_DTYPES = (np.float32, np.float64)  # laid out by NumPy on CPUs (host_layout)


@functools.partial(jax.jit, static_argnames=("dtype", "transposed", "shape", "rows"))
def _prepare(X: Any, y: Any, weights: Any, dtype: Any, transposed: bool, shape: tuple[int, int],
             rows: bool = False):
    """One compiled pass: ``Xt`` (n, m) in ``dtype`` (X (m, n) with ``rows``) from X (m, n) (or
    from Xᵀ when ``transposed``), whether it is all finite, and the data padded to ``shape``
    (n, m)."""
    X = X.T if transposed else X
    X = (X if rows else X.T).astype(dtype)
    finite = jnp.all(jnp.isfinite(X))
    return pad_rows(TrainData(X, y, weights), shape[1], shape[0], rows=rows), finite


def prepare_data(
    X: Any,
    y: Any,
    n_classes: int,
    dtype: str,
    x_dtype: str | None = None,
    *,
    weights: np.ndarray | None = None,
    shape: tuple[int, int] | None = None,
    rows: bool = False,
    csr: bool = False,
) -> TrainData:
    """Lay X (m, n) out features-major, Xt (n, m) (with ``rows``: as rows, X (m, n)), in its
    storage dtype, padded to ``shape`` (n, m) with zero-weight rows and zero features, checking
    that its values are finite there (dense X only with ``rows``); a sparse X as a
    :class:`CooMatrix`, or with ``csr`` (a kernel on CSR) a :class:`SampleCsr`.
    The data are a :class:`~jaxlogreg.training.problem.Problem`'s: X's type and shape, y and
    the weights were checked (not again here), and a sparse X is a canonical CSR array whose
    indices and values were checked.

    X is read once. On a CPU a NumPy X is cast, transposed and checked by NumPy, a thread per
    core (:mod:`jaxlogreg.training.host_layout`: faster than XLA:CPU's copy and transpose,
    docs/decisions.md), and an aligned X of the right dtype already in the layout (Fortran
    order for Xt, C order for rows) is used as it is, not copied. Device
    arrays, and NumPy arrays bound for an accelerator (which transposes at memory speed), go
    through one compiled program. y and the weights are cast on the host.
    """
    m, n = X.shape
    shape = (n, m) if shape is None else shape
    x_dtype = jnp.dtype(x_dtype or dtype)
    y = np.asarray(y).astype(dtype if n_classes == 2 else np.int32)
    if weights is not None:
        weights = np.asarray(weights, accumulation_dtype(dtype))
    if sp.issparse(X):
        return _prepare_sparse(X, y, weights, x_dtype, shape, csr)
    if isinstance(X, np.ndarray) and x_dtype in _HOST_DTYPES and jax.default_backend() == "cpu":
        layout = host_layout.row_major if rows else host_layout.transposed
        X_laid, finite = layout(X, x_dtype)
        data = jax.device_put(pad_rows(TrainData(X_laid, y, weights), shape[1], shape[0],
                                       rows=rows))
    else:
        transposed = isinstance(X, np.ndarray) and X.flags.f_contiguous and not X.flags.c_contiguous
        with np.errstate(over="ignore"):  # float64 input overflowing float32: reported below
            data, finite = _prepare(X.T if transposed else X, y, weights, dtype=x_dtype,
                                    transposed=transposed, shape=shape, rows=rows)
    if not bool(finite):
        v.check_finite(X, "X")  # NaN or inf in the input: names the count
        raise ValueError(
            f"X must be finite in {x_dtype}, but some values overflow it "
            f"(largest |X| is {float(np.max(np.abs(np.asarray(X)))):.3g}); use dtype='float64'"
        )
    return data


def _prepare_sparse(X: Any, y: np.ndarray, weights: Any, x_dtype: Any, shape: tuple[int, int],
                    csr: bool = False):
    """Sparse X (a checked CSR array) as ``Xt`` (n, m) sorted by sample (:func:`sparse_layout`),
    on the device; small problems get power-of-two shapes and entry counts (one compiled loop
    for many data sets). Nothing of size m × n is ever made."""
    nnz = entry_bucket(X.nnz, PAD_MIN_SAMPLES) if X.nnz <= PAD_MAX_ELEMENTS else X.nnz
    Xt = sparse_layout(X, x_dtype, X.shape[::-1], nnz, csr=csr)  # then padded with y, weights
    return jax.device_put(pad_rows(TrainData(Xt, y, weights), shape[1], shape[0]))


def sparse_layout(
    X: Any, x_dtype: Any, shape: tuple[int, int], nnz: int, rows: Any = None, name: str = "X",
    *, csr: bool = False,
) -> CooMatrix:
    """Checked CSR rows X (m, n) as the training layout: ``Xt = Xᵀ``, a :class:`CooMatrix` of
    ``shape`` (n', m') (n' >= n, m' >= m: the extra features and samples are empty), sorted by
    sample, values in ``x_dtype``, entries padded with zeros to ``nnz``. With ``csr``, for the
    kernels on CSR, a :class:`SampleCsr`: X's own arrays (copied only to cast or pad), no
    array of samples. A value that overflows ``x_dtype`` is an error naming its row (``rows``:
    the rows' numbers in ``name``, default 0..m-1)."""
    with np.errstate(over="ignore"):
        Xt = sample_csr(X, x_dtype) if csr else coo_of_csr(X, x_dtype, transpose=True)
    # X's values were checked: only a cast to a narrower dtype can make them overflow
    bad = ~np.isfinite(Xt.data) if np.dtype(X.dtype) != np.dtype(x_dtype) else None
    if bad is not None and bad.any():  # float64 values cast to float32
        k = int(np.argmax(bad))
        row = int(np.searchsorted(X.indptr, k, "right")) - 1
        row = row if rows is None else int(rows[row])
        raise ValueError(
            f"X must be finite in {np.dtype(x_dtype)}, but {X.data[k]} in row {row} (0-based) "
            f"of {name} overflows it; use dtype='float64'"
        )
    return Xt.reshape_to(shape).padded(nnz)


def entry_bucket(nnz: int, minimum: int) -> int:
    """The entry count a sparse X is padded to: a power of two (few compiled programs)."""
    return min(MAX_INDEX, _bucket(max(nnz, 1), minimum))


def check_sparse_supported(X: Any, batch_size: int | None, mesh: Any) -> int | None:
    """The number of stored entries of a sparse X (None for dense X), after checking that the
    fit can use it: sparse X trains full batch on one device."""
    if not sp.issparse(X):
        return None
    if batch_size is not None:
        raise ValueError(
            f"batch_size must be None for sparse X (full-batch solvers: 'lbfgs', 'proximal', "
            f"'gd'), got {batch_size}; minibatches of sparse rows stream with "
            "jaxlogreg.fit_streaming (a scipy matrix, or a CSR group of an HDF5 file)"
        )
    if mesh is not None:
        raise ValueError("mesh must be None for sparse X: sparse data train on one device")
    return X.nnz


def _bucket(k: int, minimum: int) -> int:
    return max(minimum, 1 << (k - 1).bit_length())


def bucketed_shape(m: int, n: int, minibatch: bool, nnz: int | None = None) -> tuple[int, int]:
    """Padded (m, n) for small problems: powers of two; m unchanged with minibatches. A sparse
    X (``nnz`` entries) is small when its entries, m and n are all at most ``PAD_MAX_ELEMENTS``."""
    m_pad = m if minibatch else _bucket(m, PAD_MIN_SAMPLES)
    n_pad = _bucket(n, PAD_MIN_FEATURES)
    size = m_pad * n_pad if nnz is None else max(nnz, m_pad, n_pad)
    if size > PAD_MAX_ELEMENTS:
        return m, n
    return m_pad, n_pad


def pad_rows(data: TrainData, n_rows: int, n_features: int | None = None, *,
             rows: bool = False) -> TrainData:
    """Append zero columns of Xt (rows of X) with weight 0 up to ``n_rows``, and zero features
    up to ``n_features``; ``rows``: the data hold X (m, n), not Xt. Works on NumPy and JAX
    arrays; unchanged data when nothing is added.

    ``sample_weight`` becomes 1 (or the given weight) for real rows and 0 for padding.
    """
    Xt, y, sample_weight = data
    n, m = Xt.shape[::-1] if rows else Xt.shape
    n_features = n if n_features is None else n_features
    if (n_rows, n_features) == (m, n):
        return data
    xp = jnp if isinstance(y, jax.Array) else np
    if sample_weight is None:
        sample_weight = xp.ones((m,), accumulation_dtype(Xt.dtype))
    pad = n_rows - m
    if isinstance(Xt, CooMatrix):  # the same entries in a larger matrix
        Xt = Xt.reshape_to((n_features, n_rows))
    else:
        widths = ((0, n_features - n), (0, pad))
        Xt = xp.pad(Xt, widths[::-1] if rows else widths)
    y = xp.concatenate([y, xp.zeros((pad,), y.dtype)])
    sample_weight = xp.concatenate([sample_weight, xp.zeros((pad,), sample_weight.dtype)])
    return TrainData(Xt, y, sample_weight)


_objective = jax.jit(objective_value, static_argnames=("kernel", "rows"))


@functools.partial(jax.jit, static_argnames="rows")
def _fingerprint(data: TrainData, m: jax.Array, rows: bool = False) -> jax.Array:
    """``[X s, X (r ⊙ s), yᵀs, yᵀ(r ⊙ s), Σ s]`` with ``r_i = i / m`` over the m real rows: column
    sums, a position-weighted sum (it changes when rows are reordered), labels and weights."""
    X, y, sample_weight = data
    m_pad = y.shape[0]
    dtype = accumulation_dtype(X.dtype)
    X = X.astype(dtype)
    sw = jnp.ones(m_pad, dtype) if sample_weight is None else sample_weight.astype(dtype)
    rs = jnp.arange(m_pad, dtype=dtype) / m * sw
    yf = y.astype(dtype)
    if rows:  # one product with both weight vectors: X's matrix-vector products on rows copy X
        x_sw, x_rs = dot(jnp.stack([sw, rs]), X)
    else:
        x_sw, x_rs = dot(X, sw), dot(X, rs)
    return jnp.concatenate([x_sw, x_rs, jnp.stack([yf @ sw, yf @ rs, sw.sum()])])


@dataclasses.dataclass(frozen=True)
class DeviceData:
    """Prepared data the whole fit can see at once (in memory, on one or several devices).

    Attributes:
      data: :class:`TrainData` in the fit's dtypes; padded rows/features have weight 0 / are 0.
      n_samples, n_features: the real sizes (the arrays may be larger).
      layout: a :class:`jaxlogreg.training.mesh.RowLayout` when sharded over a mesh, else None.
      weight_sum: Σ s over the real rows (λ = 1 / (C · Σ s)).
      kernel: the gradient kernel the data were laid out for (None: choose from the data).
      rows: ``data.Xt`` holds X (m, n), for a kernel that reads rows (else Xt (n, m)).
    """

    data: TrainData
    n_samples: int
    n_features: int
    n_classes: int
    dtype: str
    weight_sum: float
    layout: Any = None
    kernel: str | None = None
    rows: bool = False

    @property
    def padded_features(self) -> int:
        return self.data.Xt.shape[1 if self.rows else 0]

    def place(self, params: Params) -> Params:
        """Parameters (host arrays) padded to the data's features, on the device; replicated
        over the mesh if there is one."""
        pad = self.padded_features - self.n_features
        w = np.pad(params.w, ((0, pad),) + ((0, 0),) * (np.ndim(params.w) - 1))
        params = Params(w, np.asarray(params.b))
        return jax.device_put(params) if self.layout is None else self.layout.replicate(params)

    def unpad(self, params: Params) -> Params:
        return Params(params.w[: self.n_features], params.b)

    def advance(
        self, state: LoopState, hyper: Hyper, spec: LoopSpec, stop_at: int
    ) -> tuple[LoopState, jax.Array]:
        """Run the on-device loop until ``stop_at`` updates (or it stops); J at its parameters."""
        program = run_segment_sparse if isinstance(self.data.Xt, CooMatrix) else run_segment
        return program(state, self.data, hyper, np.int32(stop_at), spec=spec)

    def objective(self, params: Params, hyper: Hyper) -> float:
        """J (with both penalties) at ``params`` over all rows."""
        return float(_objective(params, *self.data, hyper.l2, hyper.l1,
                                kernel=self.kernel or "xla", rows=self.rows))

    def fingerprint(self) -> list[float]:
        """A summary of the real data (padding left out), see :func:`_fingerprint`."""
        full = np.asarray(_fingerprint(self.data, self.n_samples, rows=self.rows), np.float64)
        n, n_pad = self.n_features, self.padded_features
        return np.concatenate([full[:n], full[n_pad : n_pad + n], full[2 * n_pad :]]).tolist()


def fit_kernel(problem: Problem, x_dtype: str | None, shape: tuple[int, int],
               sharded: bool = False, models: int | None = None) -> str:
    """The gradient kernel of a fit on ``problem`` laid out to ``shape`` (n, m) (of ``models``
    models side by side: a path): the first of :data:`jaxlogreg.kernels.KERNELS` that applies,
    from X's sizes, dtypes and device alone (X is laid out after, as the kernel reads it)."""
    X = problem.X
    return kernels.choose(kernels.Shape(
        n_features=shape[0], n_samples=shape[1], n_classes=problem.n_classes,
        x_dtype=np.dtype(x_dtype or problem.dtype), dtype=problem.dtype,
        backend=compiler.platform([X]), sparse=sp.issparse(X), sharded=sharded,
        models=models)).name


def device_data(problem: Problem, x_dtype: str | None = None, *, batch_size: int | None = None,
                mesh: jax.sharding.Mesh | None = None, bucket: bool = True,
                models: int | None = None, grad: str = "manual") -> DeviceData:
    """A problem's data prepared for the loop: cast, laid out as its kernel reads it
    (:func:`fit_kernel`) and padded, on the device(s): to device multiples over a ``mesh``; to
    power-of-two buckets for small single-device problems when ``bucket`` (not for
    checkpointed fits, whose state must not depend on it). ``x_dtype``: X's storage dtype
    (None: the fit's); ``batch_size``: the fit's minibatches; ``models``: the models a path
    fits side by side on the data; ``grad``: the fit's gradient ("autodiff" differentiates
    XLA's objective, which reads Xt: X is then laid out features-major whatever the kernel)."""
    m, n = problem.X.shape
    nnz = check_sparse_supported(problem.X, batch_size, mesh)
    if mesh is not None:
        shape = (n, mesh_layout.padded_size(m, mesh_layout.check_mesh(mesh).size))
    else:
        minibatch = batch_size is not None
        m_pad, n_pad = bucketed_shape(m, n, minibatch, nnz) if bucket else (m, n)
        shape = (n_pad, m_pad)
    kernel = fit_kernel(problem, x_dtype, shape, sharded=mesh is not None, models=models)
    rows = reads_rows(kernel) and nnz is None and grad == "manual"
    csr = kernels.get(kernel).layout == "csr"  # sparse X as X's CSR arrays, no sample ids
    with jax.enable_x64(problem.dtype == "float64"):
        data = prepare_data(problem.X, problem.y, problem.n_classes, problem.dtype,
                            x_dtype, weights=problem.weights, shape=shape, rows=rows, csr=csr)
        layout = None
        if mesh is not None:
            data = mesh_layout.place_data(data, mesh)
            layout = mesh_layout.RowLayout(mesh, m)
        return DeviceData(data, m, n, problem.n_classes, problem.dtype, problem.weight_sum,
                          layout, kernel, rows)
