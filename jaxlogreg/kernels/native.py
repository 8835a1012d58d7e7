"""Single-read gradients of logistic regression for CPUs: a C kernel called from XLA.

The contract of :func:`jaxlogreg.core.gradients.value_and_grad_t` with X in rows as the user
gives it, ``native_rows_value_and_grad(params, X (m, n), y, s, l2)``, binary and softmax::

    binary  z = Xw + b, J = Σ s_i softplus((1 - 2y_i) z_i) + λ/2 ||w||², dz = s ⊙ (σ(z) - y)
    softmax Z = XW + b, J = Σ s_i (logsumexp(Z_i) - Z_iy) + λ/2 ||W||², dZ = s ⊙ (softmax(Z) - Y)
            dW = Xᵀ dZ + λW, db = Σ_i dZ_i

Why: XLA:CPU forms the gradient as two products, each a full read of X; ``native_kernel.c``
reads X once, inside the jitted loop through XLA's FFI. Fits use it for X of at least
:data:`MIN_ELEMENTS` elements, at most :data:`MAX_FEATURES` features and :data:`MAX_CLASSES`
classes (:func:`supports`), unless ``JAXLOGREG_NATIVE`` is off. Built once per process
(:mod:`~.native_build`); failing that, fits use XLA's gradient and :func:`build_error` says why.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from jaxlogreg.core.loss import l2_penalty
from jaxlogreg.core.model import Params
from jaxlogreg.kernels import native_build
from jaxlogreg.runtime import cache, env

ROWS_TARGETS = {"float32": "jaxlogreg_rows_value_and_grad_f32",
                "float64": "jaxlogreg_rows_value_and_grad_f64"}
CSR_TARGETS = {"float32": "jaxlogreg_csr_value_and_grad_f32",  # native_csr.c, sparse X
               "float64": "jaxlogreg_csr_value_and_grad_f64"}
CSR_HVP_TARGETS = {"float32": "jaxlogreg_csr_hvp_f32",  # native_csr.c: H v on sparse X
                   "float64": "jaxlogreg_csr_hvp_f64"}
SWITCH = "JAXLOGREG_NATIVE"  # on by default; 0/false/no/off: never built or used (env.flag)
# X smaller than this (elements) stays with XLA's gradient: it is in the CPU's caches, where
# two reads cost little, and a first fit then never waits for the C compiler.
MIN_ELEMENTS = 1 << 22
# Wider X stays with XLA: the kernel on rows was measured faster than XLA up to 4,000
# features, not beyond (docs/decisions.md).
MAX_FEATURES = 4096
# More classes stay with XLA: the kernel, bound by its K dot products per row, was measured
# faster than XLA up to 128 classes, not beyond (docs/decisions.md).
MAX_CLASSES = 128
FOLDER_NAME = "native"  # the libraries' subfolder of the cache folder
_LOCK = threading.Lock()
_OUTCOME: list[str | None] = []  # of this process's one build: None (built) or why not
_LIBRARY: list[ctypes.CDLL] = []  # the loaded library, once built: its plain C functions


def _build_and_register() -> str | None:
    """Build (or find) the library, load it and register its handlers with XLA; returns None,
    or why it could not."""
    try:
        folder = cache.folder()
        if folder is None:  # no cache: build for this process only
            with tempfile.TemporaryDirectory(prefix="jaxlogreg-native-") as tmp:
                library = native_build.build_and_load(Path(tmp))  # once loaded, the file may go
        else:
            (folder / FOLDER_NAME).mkdir(parents=True, exist_ok=True)
            library = native_build.build_and_load(folder / FOLDER_NAME)
        for name in (*ROWS_TARGETS.values(), *CSR_TARGETS.values(),
                     *CSR_HVP_TARGETS.values()):
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)),
                                        platform="cpu")
        _LIBRARY.append(library)
    except (RuntimeError, OSError, subprocess.SubprocessError, AttributeError) as err:
        return str(err)
    return None


def _load() -> str | None:
    """:func:`_build_and_register`, once per process (XLA keeps one handler per name for the
    process's life, and refuses another library's under the same name)."""
    with _LOCK:  # fits in several threads: one build
        if not _OUTCOME:
            _OUTCOME.append(_build_and_register())
        return _OUTCOME[0]


def enabled() -> bool:
    """Whether :data:`SWITCH` allows the kernel; ValueError naming it for a value that is
    neither on nor off."""
    return env.flag(SWITCH, default=True)


def build_error() -> str | None:
    """Why the kernel is not available (None when it is): turned off, or why it could not be
    built (building it on the first call when it is on)."""
    if not enabled():
        return f"turned off by {SWITCH}={os.environ[SWITCH]!r}"
    return _load()


def available() -> bool:
    """Whether the kernel is on, built and registered (building it on the first call)."""
    return build_error() is None


def library() -> ctypes.CDLL:
    """The loaded library, for its plain C functions (ctypes); RuntimeError when the kernel is
    not :func:`available` (building it on the first call), saying why."""
    if (reason := build_error()) is not None:
        raise RuntimeError(f"the native library is not available: {reason}")
    return _LIBRARY[0]


def tried() -> bool:
    """Whether this process has tried to build the kernel (asking builds nothing)."""
    return bool(_OUTCOME)


def supports(n_features: int, n_samples: int, n_classes: int, dtype: Any) -> bool:
    """Whether a fit on the CPU uses the kernel on X in rows: :func:`enabled` (read first, so
    that a bad value is an error for every fit), binary or softmax of at most
    :data:`MAX_CLASSES` classes, X of the parameters' float32 or float64, at least
    :data:`MIN_ELEMENTS` elements, at most :data:`MAX_FEATURES` features, and the kernel
    :func:`available`."""
    return (
        enabled()
        and jax.default_backend() == "cpu"
        and 2 <= n_classes <= MAX_CLASSES
        and jnp.dtype(dtype).name in ROWS_TARGETS
        and n_features * n_samples >= MIN_ELEMENTS
        and n_features <= MAX_FEATURES
        and available()
    )


def _check_rows(params: Params, X: Any, y: Any, s: Any) -> tuple[jnp.dtype, int | None]:
    """The parameters' dtype and K (None: binary), after checking what the rows kernel reads:
    ValueError naming the argument, what was expected and what was given."""
    w, b = params
    dtype = jnp.dtype(w.dtype)
    if dtype.name not in ROWS_TARGETS or jnp.dtype(b.dtype) != dtype:
        raise ValueError(f"the native kernel takes float32 or float64 parameters w and b of one "
                         f"dtype, got w of dtype {dtype} and b of dtype {b.dtype}")
    if w.ndim not in (1, 2) or b.shape != w.shape[1:]:
        raise ValueError(f"the native kernel takes w (n,), b () (binary) or w (n, K), b (K,) "
                         f"(softmax), got w of shape {w.shape} and b of shape {b.shape}")
    m = X.shape[0] if X.ndim == 2 else -1
    if X.ndim != 2 or X.shape[1] != w.shape[0] or X.dtype != dtype:
        raise ValueError(f"X must be (m, n) = (examples, {w.shape[0]}) of dtype {dtype} (the "
                         f"parameters'), got shape {X.shape} and dtype {X.dtype}")
    if y.shape != (m,) or jnp.shape(s) not in ((), (m,)):
        raise ValueError(f"y must be ({m},) and s ({m},) or (), got y of shape {y.shape} and s "
                         f"of shape {jnp.shape(s)}")
    if w.ndim == 2 and not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"y must hold class indices (integers) for the softmax model, got "
                         f"dtype {y.dtype}")
    return dtype, (w.shape[1] if w.ndim == 2 else None)


def outputs(params: Params) -> tuple[jax.ShapeDtypeStruct, ...]:
    """What a kernel returns: J (), dw shaped as w and db as b, in the parameters' dtype."""
    dtype = params.w.dtype
    return (jax.ShapeDtypeStruct((), dtype), jax.ShapeDtypeStruct(params.w.shape, dtype),
            jax.ShapeDtypeStruct(params.b.shape, dtype))


def kernel_labels(y: jax.Array, K: int | None, dtype: Any) -> jax.Array:
    """y as a kernel reads it: 0/1 in the dtype (binary, K None), or int32 class indices,
    where an index that int32 would wrap becomes -1 (an error in the kernel)."""
    if K is None:
        return y.astype(dtype)
    return y if y.dtype == jnp.int32 else jnp.where((y >= 0) & (y < K), y, -1).astype(jnp.int32)


def native_rows_value_and_grad(
    params: Params, X: Any, y: Any, s: Any, l2: Any
) -> tuple[jax.Array, Params]:
    """``J = Σ s_i L_i + λ/2 ||W||²`` and its gradient in one read of X (m, n), row-major as
    the user gives it: binary (w (n,), b (), y 0/1) or softmax (w (n, K), b (K,), y class
    indices; an index outside [0, K) is an error when the kernel runs).

    X must have the parameters' dtype (float32 or float64), and the kernel must be
    :func:`available`; ValueError before any native code runs otherwise.
    """
    if (reason := build_error()) is not None:
        raise RuntimeError(f"the native gradient kernel is not available: {reason}")
    params = Params(jnp.asarray(params.w), jnp.asarray(params.b))
    X, y, w = jnp.asarray(X), jnp.asarray(y), params.w
    dtype, K = _check_rows(params, X, y, s)
    J, dw, db = jax.ffi.ffi_call(ROWS_TARGETS[dtype.name], outputs(params))(
        X, kernel_labels(y, K, dtype), jnp.asarray(s, dtype), w, params.b)
    return J + l2_penalty(w, l2), Params(w=dw + l2 * w, b=db)


__all__ = [
    "MAX_CLASSES",
    "MAX_FEATURES",
    "MIN_ELEMENTS",
    "SWITCH",
    "available",
    "build_error",
    "enabled",
    "library",
    "native_rows_value_and_grad",
    "supports",
    "tried",
]
