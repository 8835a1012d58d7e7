"""The gradient on sparse X for CPUs in one pass over the non-zeros: ``native_csr.c`` via XLA's FFI.

The contract of :func:`jaxlogreg.core.gradients.value_and_grad_t` on X (m, n) in CSR,
``csr_value_and_grad(params, indptr, indices, data, y, s, l2)``, binary and softmax: for each
row its logits ``z_i = Σ_k data_k w[indices_k] + b``, its loss and ``dz_i``, then
``dw[indices_k] += data_k dz_i`` (per-thread float64 totals, added in a fixed order).
:func:`csr_hvp` is H v in the same single pass (:func:`~jaxlogreg.core.hessian.hvp_t`'s
contract): each row's z and the direction's ``u_i = x_i·v_w + v_b`` from one read of its entries.

Why: XLA's gradient on a :class:`~jaxlogreg.core.sparse.CooMatrix` gathers and segment-sums the
entries twice, with intermediates of nnz. Training keeps sparse X as ``Xt``, a CooMatrix sorted
by sample; for this kernel it is a :class:`~jaxlogreg.core.sample_csr.SampleCsr`, X's own CSR arrays
(``indices = Xt.row``), which everything else still sees as a CooMatrix.
:func:`csr_value_and_grad_t` is the kernel table's entry (:func:`csr_hvp_t` its H v); fits use
it for sparse X on one CPU from :data:`MIN_SAMPLES` rows (:func:`supports`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxlogreg.core.gradients import value_and_grad_t
from jaxlogreg.core.hessian import hvp_t
from jaxlogreg.core.loss import l2_penalty
from jaxlogreg.core.model import Params
from jaxlogreg.core.sample_csr import SampleCsr
from jaxlogreg.core.sparse import CooMatrix, check_compressed
from jaxlogreg.kernels import native

# Fewer rows stay with XLA's gradient: quick either way, and a first small fit never waits
# for the C compiler.
MIN_SAMPLES = 1 << 14


def supports(n_classes: int, n_samples: int, dtype: Any) -> bool:
    """Whether a sparse fit on one CPU uses the kernel: :func:`native.enabled` (read first),
    at most :data:`native.MAX_CLASSES` classes, float32 or float64, at least
    :data:`MIN_SAMPLES` rows, and the library :func:`native.available` (built on first ask)."""
    return (
        native.enabled()
        and jax.default_backend() == "cpu"
        and 2 <= n_classes <= native.MAX_CLASSES
        and jnp.dtype(dtype).name in native.CSR_TARGETS
        and n_samples >= MIN_SAMPLES
        and native.available()
    )


def _check_x(params: Params, indptr: Any, indices: Any, data: Any, m: int) -> None:
    """The parameters and X (m, n) in CSR as the kernels read them: ValueError naming the
    argument. Concrete index arrays are checked here too (indptr from 0 or above, as the
    entries before its first are not read; non-decreasing, within the entries; indices in
    [0, n)); traced ones were checked at the fit's entry, and the kernel checks them again."""
    w, b = params
    dtype = jnp.dtype(w.dtype)
    if dtype.name not in native.CSR_TARGETS or jnp.dtype(b.dtype) != dtype:
        raise ValueError(f"the native CSR kernel takes float32 or float64 parameters w and b "
                         f"of one dtype, got w of dtype {dtype} and b of dtype {b.dtype}")
    if w.ndim not in (1, 2) or b.shape != w.shape[1:]:
        raise ValueError(f"the native CSR kernel takes w (n,), b () (binary) or w (n, K), b (K,) "
                         f"(softmax), got w of shape {w.shape} and b of shape {b.shape}")
    if data.ndim != 1 or data.dtype != dtype:
        raise ValueError(f"data must be (nnz,) of dtype {dtype} (the parameters'), got shape "
                         f"{data.shape} and dtype {data.dtype}")
    for name, arr in (("indptr", indptr), ("indices", indices)):
        if arr.dtype != jnp.int32:
            raise ValueError(f"{name} must be int32, got dtype {arr.dtype}")
    if not any(isinstance(a, jax.core.Tracer) for a in (indptr, indices, data)):
        try:
            check_compressed(indptr, indices, data.shape[0], m, w.shape[0], ("row", "column"),
                             lead=max(int(indptr.reshape(-1)[0]), 0) if indptr.size else 0)
        except ValueError as err:
            raise ValueError(f"X (CSR) has invalid sparse indices: {err}") from None


def _check(params: Params, indptr: Any, indices: Any, data: Any, y: Any, s: Any) -> int | None:
    """K (None: binary) after checking what the gradient kernel reads (:func:`_check_x`, y
    and s): ValueError naming the argument."""
    m = y.shape[0] if y.ndim == 1 else -1
    if y.ndim != 1 or jnp.shape(s) not in ((), (m,)):
        raise ValueError(f"y must be (m,) and s (m,) or (), got y of shape {y.shape} and s of "
                         f"shape {jnp.shape(s)}")
    if params.w.ndim == 2 and not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"y must hold class indices (integers) for the softmax model, got "
                         f"dtype {y.dtype}")
    _check_x(params, indptr, indices, data, m)
    return params.w.shape[1] if params.w.ndim == 2 else None


def _check_hvp(params: Params, indptr: Any, indices: Any, data: Any, s: Any, v: Params) -> None:
    """What the H v kernel reads (:func:`_check_x`, s, and v shaped as the parameters, of a
    float dtype): ValueError naming the argument."""
    if indptr.ndim != 1 or indptr.shape[0] < 1:
        raise ValueError(f"indptr must be (m + 1,), got shape {indptr.shape}")
    m = indptr.shape[0] - 1
    if jnp.shape(s) not in ((), (m,)):
        raise ValueError(f"s must be ({m},) (one per row of X) or (), got shape {jnp.shape(s)}")
    for name, leaf, like in (("w", v.w, params.w), ("b", v.b, params.b)):
        if leaf.shape != like.shape or not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise ValueError(f"v.{name} must be floats shaped as the parameters' {name} "
                             f"{like.shape}, got shape {leaf.shape} and dtype {leaf.dtype}")
    _check_x(params, indptr, indices, data, m)


def csr_value_and_grad(
    params: Params, indptr: Any, indices: Any, data: Any, y: Any, s: Any, l2: Any
) -> tuple[jax.Array, Params]:
    """``J = Σ s_i L_i + λ/2 ||W||²`` and its gradient in one pass over X (m, n) in CSR:
    ``indptr`` (m + 1,) and ``indices`` (nnz,) int32, ``data`` (nnz,) of the parameters' dtype;
    binary (w (n,), b (), y 0/1) or softmax (w (n, K), b (K,), y class indices). ValueError
    before any native code runs for bad dtypes, shapes or (concrete) indices; RuntimeError
    when the kernel is not :func:`native.available`."""
    if (reason := native.build_error()) is not None:
        raise RuntimeError(f"the native gradient kernel is not available: {reason}")
    params = Params(jnp.asarray(params.w), jnp.asarray(params.b))
    indptr, indices, data, y = map(jnp.asarray, (indptr, indices, data, y))
    K = _check(params, indptr, indices, data, y, s)
    w, dtype = params.w, params.w.dtype
    J, dw, db = jax.ffi.ffi_call(native.CSR_TARGETS[jnp.dtype(dtype).name],
                                 native.outputs(params))(
        indptr, indices, data, native.kernel_labels(y, K, dtype), jnp.asarray(s, dtype), w,
        params.b)
    return J + l2_penalty(w, l2), Params(w=dw + l2 * w, b=db)


def _csr_of(Xt: Any) -> tuple[jax.Array, jax.Array, jax.Array] | None:
    """X = Xtᵀ as (indptr, indices, data), or None for a CooMatrix not sorted by sample.
    A dense Xt (n, m) is every entry of X stored (zeros too)."""
    if isinstance(Xt, SampleCsr):
        return Xt.csr_arrays()
    if isinstance(Xt, CooMatrix):
        if Xt.sorted_by != 1:
            return None
        m = Xt.shape[1]
        return jnp.searchsorted(Xt.col, jnp.arange(m + 1, dtype=jnp.int32)).astype(
            jnp.int32), Xt.row, Xt.data
    n, m = Xt.shape
    indptr = jnp.arange(m + 1, dtype=jnp.int32) * n
    return indptr, jnp.tile(jnp.arange(n, dtype=jnp.int32), m), Xt.T.reshape(-1)


def csr_value_and_grad_t(
    params: Params, Xt: Any, y: Any, s: Any, l2: Any
) -> tuple[jax.Array, Params]:
    """The kernel table's contract ``(params, Xt (n, m), y, s, l2) -> (J, ∇J)`` through
    :func:`csr_value_and_grad`: Xt a :class:`~jaxlogreg.core.sample_csr.SampleCsr` (as training
    lays sparse X out), a CooMatrix sorted by sample (its indptr found by a search), or dense;
    a CooMatrix in another order takes XLA's gradient."""
    csr = _csr_of(Xt)
    if csr is None:
        return value_and_grad_t(params, Xt, y, s, l2)
    indptr, indices, data = csr
    return csr_value_and_grad(params, indptr, indices, data.astype(params.w.dtype), y, s, l2)


def csr_hvp(params: Params, indptr: Any, indices: Any, data: Any, s: Any, l2: Any,
            v: Params) -> Params:
    """``H v`` at ``params`` in one pass over X (m, n) in CSR (arrays as for
    :func:`csr_value_and_grad`), as :func:`~jaxlogreg.core.hessian.hvp_t` defines it: per row
    ``dz_i = s_i a_i (1 - a_i) (x_i·v_w + v_b)`` (binary) or ``s_i (A_i ⊙ U_i - A_i (A_i·U_i))``
    with ``U_i = V_wᵀ x_i + v_b`` (softmax), then ``Params(Xᵀ dz + λ v_w, Σ dz)`` in the
    parameters' dtype (v is cast to it). ValueError before any native code runs for bad dtypes,
    shapes or (concrete) indices; RuntimeError when the kernel is not available."""
    if (reason := native.build_error()) is not None:
        raise RuntimeError(f"the native Hessian-vector kernel is not available: {reason}")
    params = Params(jnp.asarray(params.w), jnp.asarray(params.b))
    v = Params(jnp.asarray(v.w), jnp.asarray(v.b))
    indptr, indices, data = map(jnp.asarray, (indptr, indices, data))
    _check_hvp(params, indptr, indices, data, s, v)
    dtype = params.w.dtype
    v = Params(v.w.astype(dtype), v.b.astype(dtype))
    hv_w, hv_b = jax.ffi.ffi_call(native.CSR_HVP_TARGETS[jnp.dtype(dtype).name],
                                  native.outputs(params)[1:])(
        indptr, indices, data, jnp.asarray(s, dtype), params.w, params.b, v.w, v.b)
    return Params(w=hv_w + l2 * v.w, b=hv_b)


def csr_hvp_t(params: Params, Xt: Any, y: Any, s: Any, l2: Any, v: Params) -> Params:
    """:func:`~jaxlogreg.core.hessian.hvp_t`'s contract ``(params, Xt (n, m), y, s, l2, v) ->
    H v`` through :func:`csr_hvp`, Xt as :func:`csr_value_and_grad_t` takes it (a CooMatrix in
    another order takes ``hvp_t``); ``y`` is unused."""
    csr = _csr_of(Xt)
    if csr is None:
        return hvp_t(params, Xt, y, s, l2, v)
    indptr, indices, data = csr
    return csr_hvp(params, indptr, indices, data.astype(params.w.dtype), s, l2, v)


__all__ = ["MIN_SAMPLES", "csr_hvp", "csr_hvp_t", "csr_value_and_grad",
           "csr_value_and_grad_t", "supports"]
