"""A fused, single-read gradient of logistic regression: a Pallas kernel for GPUs (Triton).

Same contract as :func:`jaxlogreg.core.gradients.value_and_grad_t`, with X features-major::

    Xt (n, m)  y (m,)  s (m,) or ()  λ = l2;  binary w (n,) b (),  softmax W (n, K) b (K,)
    binary   z = wᵀX + b,  J = Σ s_i softplus((1 - 2y_i) z_i) + λ/2 ||w||²
             dz = s ⊙ (σ(z) - y),  dw = X dz + λw,  db = Σ dz
    softmax  Z = WᵀX + b (K, m),  J = Σ s_i (logsumexp(Z_:i) - Z_{y_i, i}) + λ/2 ||W||²
             dZ = s ⊙ (softmax(Z) - Y),  Y one-hot,  dW = X dZᵀ + λW,  db = Σ_i dZ

Why: XLA forms the gradient as two products, ``wᵀX`` and ``X dz``, each a full read of X, by
far the largest operand. Here each program loads a column tile of X once and computes its
logits, loss, ``dz`` and share of ``X dz``: ~bytes(X) of traffic instead of ~2 bytes(X). Tiling,
bounds (:func:`supports`), dtypes and precision: docs/performance.md, "Tiling, bounds and
precision of the Pallas kernel"; the measurements: docs/decisions.md.
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

    Triton's IEEE float32 dot runs on CUDA cores, slower than XLA's gradient
    (docs/decisions.md); one-pass TF32 (XLA's default on GPUs) rounds X to 10 mantissa bits
    (~1e-4 relative error in the gradient). XLA's CPU (interpret mode) has no 3xTF32: IEEE there.
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
