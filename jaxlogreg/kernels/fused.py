"""A fused, single-read gradient of logistic regression: a Pallas kernel for GPUs (Triton).

Same contract as :func:`jaxlogreg.core.gradients.value_and_grad_t`, with X features-major::

    Xt (n, m)  y (m,)  s (m,) or ()  λ = l2

    binary    z = wᵀX + b                  (m,)     w (n,), b ()
              J = Σ s_i softplus((1 - 2y_i) z_i) + λ/2 ||w||²
              dz = s ⊙ (σ(z) - y),  dw = X dz + λw,  db = Σ dz

    softmax   Z = WᵀX + b                  (K, m)   W (n, K), b (K,)
              J = Σ s_i (logsumexp(Z_:i) - Z_{y_i, i}) + λ/2 ||W||²
              dZ = s ⊙ (A - Y),  A = softmax(Z),  Y one-hot (K, m)
              dW = X dZᵀ + λW,  db = Σ_i dZ

Why one read: written in XLA the gradient is two matrix-vector products, ``z = wᵀX`` (forward)
and ``X dz`` (backward). ``dz_i`` needs only example i's own column ``x_i``, but XLA emits the
two products as separate kernels with the elementwise work between them, so X (n m elements, by
far the largest operand) is streamed from memory twice. Here each program loads a column tile ``X[:, cols]``
once into registers and does everything that needs it: the tile's logits, loss, ``dz``, and
its share ``X[:, cols] dz[cols]`` of the gradient. Memory traffic is ~bytes(X) instead of
~2 bytes(X), so the floor for a bandwidth-bound gradient halves.

Tiling (all block shapes are powers of two, as Triton requires):

- ``n_p = max(16, next_pow2(n))`` feature rows, ``K_p = max(16, next_pow2(K))`` classes (16 is
  the smallest operand dimension of Triton's ``tt.dot``); padded rows of X are masked to 0 when
  loaded and padded entries of w, W, b are 0, padded classes get logit -inf (probability 0);
- a column tile of ``T`` examples, ``T = clamp(prev_pow2(16384 / n_p), 16, 1024)``, so a
  program holds at most 16384 elements of X (64 KiB in float32) in registers. Softmax:
  ``T <= 8192 / n_p`` and ``T <= 16384 / K_p``, because Triton stages the tile in shared memory
  for the two ``tt.dot`` products, about ``2 n_p T`` float32 + a little: 64 KiB at the bound,
  an estimate from the one data point there is (n_p = 128, T = 256 failed to compile on an
  H200: "Shared memory size limit exceeded: requested 278528, available: 232448"), below the
  ~100 KiB per block of consumer GPUs and 164 KiB of an A100;
- the grid is ``P <= 1024`` programs; program p handles tiles p, p + P, p + 2P, ... in a loop
  and accumulates in registers, then writes one partial row: ``dw`` (P, n_p) or (P, n_p, K_p),
  ``db`` (P,) or (P, K_p), ``J`` (P,). A small XLA reduction sums the P rows, crops the padding
  and adds the penalty. Examples past m (the last tile) are masked: X, y and s load as 0, so
  they have scale 0 and add nothing.

X is never padded or copied: the kernel takes Xt as it is and masks out-of-range rows and
columns at the load (padding X in the wrapper would cost a full read and write of X per call,
more than the kernel saves).

Bounds (:func:`supports`, :func:`tile_config`): binary ``n <= 1024``; softmax
``n_p K_p <= 4096`` (W and its partial gradient stay in registers), i.e. ``n <= 256`` for
``K <= 16``, ``n <= 128`` for ``K <= 32``, ``n <= 64`` for ``K <= 64``, and ``K <= 256``.
Beyond them the caller uses the XLA gradient. On GPU the predicate accepts X stored as float32
or bfloat16 (16-bit X is converted per tile to the parameters' float32, so every sum runs in
float32); float64 runs in interpret mode (tests) and is left to XLA on GPUs, where Triton's
float64 is slow. Mosaic GPU (``plgpu.kernel``) is not used: this kernel is written for the
Triton lowering (masked pointer loads, ``plgpu.load``; Mosaic GPU has neither these nor
arbitrary masked tiles, and targets Hopper and newer). It was compiled and checked on an H200
(sm_90) only; the 3xTF32 products need tensor cores with TF32 (sm_80 and newer).

Measured on one H200 (JAX 0.11.2, ``benchmarks/gpu_roofline.py``, m = 4e6, n = 100, float32 X,
floor = bytes(X) / jnp.sum bandwidth, 4.5 TB/s): binary 0.48 ms = 1.33x the floor, 3.3x faster
than the XLA gradient (1.60 ms); bfloat16 X 0.30 ms (4.6x XLA); softmax K = 10 1.56 ms = 4.3x
the floor, 1.3x faster than XLA (2.05 ms): its two 3xTF32 products, not memory, bound it.

JAX 0.11 deprecates Pallas' Triton backend (a DeprecationWarning at lowering); :func:`supports`
answers False once it is gone, and the caller keeps the XLA gradient.

Precision: the binary kernel has no matrix product (elementwise products and row/column sums
in the parameters' dtype, exact float32). The softmax products ``WᵀX`` and ``X dZᵀ`` run on
tensor cores as 3xTF32 on the GPU (float32 operands split into TF32 pairs: about float32
accuracy), IEEE (``HIGHEST``) in interpret mode and for float64. XLA's own float32 products on
NVIDIA GPUs default to one-pass TF32 (about 1e-4 relative); the library's XLA gradient asks for
``HIGHEST`` instead, so both are float32-accurate.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxlogreg.core.loss import l2_penalty, softplus
from jaxlogreg.core.model import Params
from jaxlogreg.kernels.fused_tiling import (  # MAX_FEATURES, TileConfig, supports, tile_config: re-exported
    MAX_FEATURES,
    MAX_PROGRAMS,
    MAX_TILE,
    MIN_TILE,
    TileConfig,
    _next_pow2,
    supports,
    tile_config,
)

# ----------------------------------------------------------------------------------------------
# The kernels. Refs: X, y and (per-example) s are whole arrays in memory, indexed by the
# program's column tiles with masked loads; w/W and b are padded and loaded whole.


def _load_tile(x_ref, y_ref, s_ref, cols, n, m, n_pad, cdt, per_example):
    """X[:, cols] (n_p, T) in the compute dtype, y[cols], and the scale (0 past m)."""
    rows = lax.broadcasted_iota(jnp.int32, (n_pad,), 0)
    cmask = cols < m
    xmask = (rows < n)[:, None] & cmask[None, :]
    x = pallas_load(x_ref.at[rows[:, None], cols[None, :]], xmask, x_ref.dtype).astype(cdt)
    y = pallas_load(y_ref.at[cols], cmask, y_ref.dtype)
    if per_example:
        s = pallas_load(s_ref.at[cols], cmask, s_ref.dtype).astype(cdt)
    else:
        s = jnp.where(cmask, s_ref[...].astype(cdt), jnp.zeros((), cdt))
    return x, y, s, cmask


def pallas_load(ref, mask, dtype):
    """``plgpu.load`` with ``other = 0``: masked-off elements read as 0 (never garbage)."""
    from jax.experimental.pallas import triton as plgpu

    return plgpu.load(ref, mask=mask, other=jnp.zeros((), dtype))


def _sigmoid(z):
    """``σ(z)`` from ``e^-|z|`` (never overflows; ``σ(-z) = 1 - σ(z)`` exactly mirrored)."""
    e = jnp.exp(-jnp.abs(z))
    return jnp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _binary_kernel(x_ref, y_ref, s_ref, w_ref, b_ref, dw_ref, db_ref, j_ref, *,
                   n, m, cfg, n_programs, tiles_per_program, per_example):
    cdt = w_ref.dtype
    T = cfg.tile
    pid = pl_program_id()
    w = w_ref[...]  # (n_p,)
    b = b_ref[...]  # ()
    iota_t = lax.broadcasted_iota(jnp.int32, (T,), 0)

    def body(j, carry):
        dw, dz_sum, loss_sum = carry
        x, y, s, cmask = _load_tile(x_ref, y_ref, s_ref, (pid + j * n_programs) * T + iota_t,
                                    n, m, cfg.n_pad, cdt, per_example)
        y = y.astype(cdt)
        z = jnp.sum(x * w[:, None], axis=0) + b  # forward: z = wᵀX + b        (T,)
        loss = softplus((1 - 2 * y) * z)  # BCE from logits, never log σ
        dz = s * (_sigmoid(z) - y)  # backward: dz = s (a - y)              (T,)
        dw = dw + jnp.sum(x * dz[None, :], axis=1)  # X dz, this tile       (n_p,)
        return dw, dz_sum + dz, loss_sum + jnp.where(cmask, s * loss, 0)

    zeros_t = jnp.zeros((T,), cdt)
    dw, dz_sum, loss_sum = lax.fori_loop(
        0, tiles_per_program, body, (jnp.zeros((cfg.n_pad,), cdt), zeros_t, zeros_t)
    )
    dw_ref[...] = dw
    db_ref[...] = jnp.sum(dz_sum)
    j_ref[...] = jnp.sum(loss_sum)


def _softmax_kernel(x_ref, y_ref, s_ref, w_ref, b_ref, dw_ref, db_ref, j_ref, *,
                    n, m, k, cfg, n_programs, tiles_per_program, per_example, precision):
    cdt = w_ref.dtype
    T, K_p = cfg.tile, cfg.k_pad
    pid = pl_program_id()
    W = w_ref[...]  # (n_p, K_p)
    b = b_ref[...]  # (K_p,)
    iota_t = lax.broadcasted_iota(jnp.int32, (T,), 0)
    classes = lax.broadcasted_iota(jnp.int32, (K_p, T), 0)
    real_class = classes < k
    neg_inf = jnp.full((), -jnp.inf, cdt)

    def body(j, carry):
        dW, dZ_sum, loss_sum = carry
        cols = (pid + j * n_programs) * T + iota_t
        x, y, s, cmask = _load_tile(x_ref, y_ref, s_ref, cols, n, m, cfg.n_pad, cdt, per_example)
        # forward: Z = WᵀX + b (K_p, T); padded classes -> -inf (probability 0)
        Z = lax.dot_general(
            W,
            x,
            (((0,), (0,)), ((), ())),
            precision=precision,
            preferred_element_type=cdt,
        )
        Z = jnp.where(real_class, Z + b[:, None], neg_inf)
        zmax = jnp.max(Z, axis=0)  # (T,)
        E = jnp.exp(Z - zmax[None, :])  # exp(-inf) = 0 on padded classes
        total = jnp.sum(E, axis=0)
        Y = classes == y.astype(jnp.int32)[None, :]  # one-hot (K_p, T)
        z_y = jnp.sum(jnp.where(Y, Z, 0), axis=0)
        loss = zmax + jnp.log(total) - z_y  # logsumexp(Z) - Z[y]
        A = E / total[None, :]
        dZ = s[None, :] * (A - Y.astype(cdt))  # backward (K_p, T); 0 past m
        dW = dW + lax.dot_general(
            x,
            dZ,
            (((1,), (1,)), ((), ())),
            precision=precision,
            preferred_element_type=cdt,
        )  # X dZᵀ, this tile (n_p, K_p)
        return dW, dZ_sum + dZ, loss_sum + jnp.where(cmask, s * loss, 0)

    dW, dZ_sum, loss_sum = lax.fori_loop(
        0,
        tiles_per_program,
        body,
        (jnp.zeros((cfg.n_pad, K_p), cdt), jnp.zeros((K_p, T), cdt), jnp.zeros((T,), cdt)),
    )
    dw_ref[...] = dW
    db_ref[...] = jnp.sum(dZ_sum, axis=1)
    j_ref[...] = jnp.sum(loss_sum)


def pl_program_id():
    from jax.experimental import pallas as pl

    return pl.program_id(0)


# ----------------------------------------------------------------------------------------------


def _dot_precision(cdt, interpret: bool):
    """float32 on the GPU: 3xTF32 (tensor cores, ~float32 accuracy); else IEEE ``HIGHEST``.

    Triton's IEEE float32 dot runs on CUDA cores and was 4x slower than XLA's gradient on an
    H200 (K = 10); one-pass TF32 (XLA's default on GPUs) rounds X to 10 mantissa bits (~1e-4
    relative error in the gradient). XLA's CPU (interpret mode) has no 3xTF32: IEEE there.
    """
    if jnp.dtype(cdt) == jnp.float32 and not interpret:
        return lax.DotAlgorithmPreset.TF32_TF32_F32_X3
    return lax.Precision.HIGHEST


def _grid(m: int, tile: int, max_programs: int = MAX_PROGRAMS) -> tuple[int, int]:
    """(programs P, tiles per program): P <= max_programs programs share the ceil(m / T) tiles."""
    n_tiles = -(-m // tile)
    per_program = -(-n_tiles // max_programs)
    return -(-n_tiles // per_program), per_program


def _partials(params, Xt, y, s, *, interpret, tile=None, max_programs=None, num_warps=None):
    """The kernel's per-program partial sums: dw (P, n_p[, K_p]), db (P[, K_p]), J (P,)."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plgpu

    w, b = params
    cdt = w.dtype
    binary = w.ndim == 1
    if Xt.ndim != 2 or y.shape != (Xt.shape[1],):
        raise ValueError(f"Xt must be (n, m) and y (m,), got {Xt.shape} and {y.shape}")
    n, m = Xt.shape
    k = 2 if binary else w.shape[1]
    cfg = tile_config(n, k, binary=binary)
    if cfg is None:
        raise ValueError(
            f"the fused kernel does not support n_features={n}, n_classes={k} "
            f"({'binary' if binary else 'softmax'}); check fused.supports(...) and use "
            "jaxlogreg.core.gradients.value_and_grad_t instead"
        )
    s = jnp.asarray(s)
    per_example = s.ndim == 1
    if per_example and s.shape != (m,):
        raise ValueError(f"s must be a scalar or of shape ({m},), got {s.shape}")
    if not per_example:
        s = s.reshape(()).astype(cdt)

    if tile is not None:
        if tile < MIN_TILE or tile & (tile - 1) or tile > MAX_TILE:
            raise ValueError(f"tile must be a power of two in [{MIN_TILE}, {MAX_TILE}], got {tile}")
        cfg = cfg._replace(tile=int(tile))
    else:  # no wider than m needs (a small problem is one partial tile)
        cfg = cfg._replace(tile=min(cfg.tile, max(MIN_TILE, _next_pow2(m))))
    cfg = cfg._replace(num_warps=num_warps or cfg.num_warps)
    n_programs, per_program = _grid(m, cfg.tile, max_programs or MAX_PROGRAMS)
    if binary:
        w_p = jnp.zeros((cfg.n_pad,), cdt).at[:n].set(w)
        b_p = b.astype(cdt).reshape(())
        kernel = _binary_kernel
        dw_shape, db_shape = (n_programs, cfg.n_pad), (n_programs,)
        dw_spec = pl.BlockSpec((None, cfg.n_pad), lambda p: (p, 0))
        db_spec = pl.BlockSpec((None,), lambda p: (p,))
    else:
        w_p = jnp.zeros((cfg.n_pad, cfg.k_pad), cdt).at[:n, :k].set(w)
        b_p = jnp.zeros((cfg.k_pad,), cdt).at[:k].set(b)
        kernel = functools.partial(_softmax_kernel, k=k, precision=_dot_precision(cdt, interpret))
        dw_shape, db_shape = (n_programs, cfg.n_pad, cfg.k_pad), (n_programs, cfg.k_pad)
        dw_spec = pl.BlockSpec((None, cfg.n_pad, cfg.k_pad), lambda p: (p, 0, 0))
        db_spec = pl.BlockSpec((None, cfg.k_pad), lambda p: (p, 0))
    kernel = functools.partial(kernel, n=n, m=m, cfg=cfg, n_programs=n_programs,
                               tiles_per_program=per_program, per_example=per_example)
    # Inputs without a BlockSpec are whole arrays: X, y and s are indexed inside the kernel.
    call = pl.pallas_call(
        kernel,
        grid=(n_programs,),
        out_shape=(
            jax.ShapeDtypeStruct(dw_shape, cdt),
            jax.ShapeDtypeStruct(db_shape, cdt),
            jax.ShapeDtypeStruct((n_programs,), cdt),
        ),
        out_specs=(dw_spec, db_spec, pl.BlockSpec((None,), lambda p: (p,))),
        compiler_params=plgpu.CompilerParams(num_warps=cfg.num_warps, num_stages=1),
        interpret=interpret,
        name="jaxlogreg_fused_grad",
    )
    return call(Xt, y, s, w_p, b_p), cfg


@functools.partial(jax.jit, static_argnames=("interpret", "tile", "max_programs", "num_warps"))
def _fused(params, Xt, y, s, l2, interpret=False, tile=None, max_programs=None, num_warps=None):
    w, _ = params
    n = Xt.shape[0]
    (dw_p, db_p, J_p), _cfg = _partials(params, Xt, y, s, interpret=interpret, tile=tile,
                                        max_programs=max_programs, num_warps=num_warps)
    dw = jnp.sum(dw_p, axis=0)[:n]
    db = jnp.sum(db_p, axis=0)
    if w.ndim == 2:
        dw, db = dw[:, : w.shape[1]], db[: w.shape[1]]
    J = jnp.sum(J_p) + l2_penalty(w, l2)
    return J, Params(w=dw + l2 * w, b=db.reshape(params.b.shape))


def fused_value_and_grad_t(
    params: Params, Xt: jax.Array, y: jax.Array, s: Any, l2: Any, *, interpret: bool = False,
    tile: int | None = None, max_programs: int | None = None, num_warps: int | None = None,
) -> tuple[jax.Array, Params]:
    """``J = Σ s_i L_i + λ/2 ||w||²`` and its gradient in one read of Xt (n, m): a Pallas kernel.

    The contract of :func:`jaxlogreg.core.gradients.value_and_grad_t`: ``params`` binary
    (w (n,), b ()) or softmax (W (n, K), b (K,)); y (m,) 0/1 labels in a float dtype (binary)
    or int32 class indices (softmax); ``s`` (m,) per-example scales or a scalar (e.g. 1/m);
    ``l2`` = λ. Xt may be stored in a narrower dtype (bfloat16): each tile is converted to
    the parameters' dtype, in which all sums run.

    Args:
      interpret: run the kernel with Pallas' interpreter (any backend, CPU included; slow,
        for tests). False compiles it with the Triton lowering, which needs a CUDA GPU.
      tile: examples per tile T, a power of two in [16, 1024]; default :func:`tile_config`'s
        choice (capped at m). Other tiles are for tests and tuning: a wider one may spill
        registers.
      max_programs: the grid size cap (default :data:`MAX_PROGRAMS`); each program loops
        over ceil(tiles / programs) tiles.
      num_warps: Triton warps per program (default 4); for tuning.

    Raises:
      ValueError: shapes the kernel does not support (:func:`supports` says False).
    """
    return _fused(params, Xt, y, s, l2, interpret=bool(interpret), tile=tile,
                  max_programs=max_programs, num_warps=num_warps)


__all__ = [
    "MAX_FEATURES",
    "TileConfig",
    "fused_value_and_grad_t",
    "supports",
    "tile_config",
]
