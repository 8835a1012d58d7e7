"""Tiling of the fused gradient kernel (:mod:`jaxlogreg.kernels.fused`): padded shapes, tile
width, warps, and which problems, dtypes and backends the kernel serves (:func:`supports`).

All block shapes are powers of two, as Triton requires: ``n_p = max(16, next_pow2(n))``
features, ``K_p = max(16, next_pow2(K))`` classes (16 is the smallest operand dimension of
Triton's ``tt.dot``), and a column tile of ``T`` examples with ``n_p T <= 16384`` (softmax:
``n_p T <= 8192`` and ``K_p T <= 16384``, the tile being staged in shared memory for the two
products). The bounds and their reasons: docs/performance.md, "Tiling, bounds and precision of
the Pallas kernel"; the measurements behind them: docs/decisions.md.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

TILE_ELEMENTS = 16384  # elements of X one program holds: n_p * T
SOFTMAX_TILE_ELEMENTS = 8192  # softmax: n_p * T, the tile is staged in shared memory for tt.dot
MIN_TILE, MAX_TILE = 16, 1024  # examples per tile T
MIN_DIM = 16  # smallest padded n and K: Triton's dot needs operand dims >= 16
MAX_FEATURES = TILE_ELEMENTS // MIN_TILE  # 1024: n_p * T <= TILE_ELEMENTS with T >= 16
PARAM_ELEMENTS = 4096  # softmax: n_p * K_p, W and its partial gradient held in registers
MAX_CLASSES = 256
MAX_PROGRAMS = 1024  # grid size cap: partial outputs are P rows
# 4 warps (128 threads) per program, for every shape: as fast as 8 or faster (docs/decisions.md).
DEFAULT_NUM_WARPS = 4
GPU_STORAGE_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))
GPU_BACKENDS = ("gpu", "cuda")


class TileConfig(NamedTuple):
    """Padded shapes and launch parameters of the kernel for one problem shape."""

    n_pad: int  # n_p, power of two >= 16
    k_pad: int  # K_p, power of two >= 16 (softmax), 1 for binary
    tile: int  # T, examples per tile, power of two
    num_warps: int


def _next_pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def _prev_pow2(x: int) -> int:
    return 1 << (int(x).bit_length() - 1)


def tile_config(
    n_features: int, n_classes: int = 2, *, binary: bool | None = None
) -> TileConfig | None:
    """The kernel's padded shapes and tile for n features and K classes, or None if too large.

    ``binary`` defaults to ``n_classes == 2`` (params ``w`` of shape (n,)); pass False for
    softmax parameters with two classes, ``w`` of shape (n, 2).
    """
    binary = n_classes == 2 if binary is None else binary
    if n_features < 1 or n_classes < 2:
        return None
    n_pad = max(MIN_DIM, _next_pow2(n_features))
    if n_pad > MAX_FEATURES:
        return None
    tile = min(MAX_TILE, _prev_pow2(TILE_ELEMENTS // n_pad))
    k_pad = 1
    if not binary:
        if n_classes > MAX_CLASSES:
            return None
        k_pad = max(MIN_DIM, _next_pow2(n_classes))
        if n_pad * k_pad > PARAM_ELEMENTS:
            return None
        tile = min(
            tile,
            _prev_pow2(SOFTMAX_TILE_ELEMENTS // n_pad),
            _prev_pow2(TILE_ELEMENTS // k_pad),
        )
    if tile < MIN_TILE:
        return None
    return TileConfig(n_pad, k_pad, tile, DEFAULT_NUM_WARPS)


def supports(n_features: int, n_classes: int, dtype: Any, backend: str | None = None, *,
             binary: bool | None = None) -> bool:
    """Whether :func:`fused_value_and_grad_t` should be used for this problem on ``backend``.

    Args:
      n_features: n.
      n_classes: K; 2 means binary parameters (``w`` of shape (n,)) unless ``binary=False``.
      dtype: the storage dtype of X (float32 or bfloat16 on GPU).
      backend: ``jax.default_backend()`` by default; "gpu"/"cuda" for the compiled kernel,
        "interpret" for Pallas interpret mode (any float dtype: tests only, slow). CPU, TPU
        and ROCm answer False: use the XLA gradient there.

    Returns:
      True when the shapes fit the kernel's tiling (see :func:`tile_config`), the backend
      and dtype are ones the kernel is meant for, and JAX has Pallas' Triton backend (JAX 0.11
      deprecates it); otherwise the caller falls back to
      :func:`jaxlogreg.core.gradients.value_and_grad_t`.
    """
    backend = jax.default_backend() if backend is None else str(backend).lower()
    if tile_config(n_features, n_classes, binary=binary) is None:
        return False
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        return False
    if backend == "interpret":
        return bool(jnp.issubdtype(dtype, jnp.floating))
    return backend in GPU_BACKENDS and dtype in GPU_STORAGE_DTYPES and _triton_available()


def _triton_available() -> bool:
    """Whether this JAX still has Pallas' Triton backend (deprecated in JAX 0.11)."""
    try:
        from jax._src.pallas.triton import pallas_call_registration  # noqa: F401
    except ImportError:
        return False
    return True
