"""A single-read gradient of binary logistic regression for CPUs: a C kernel called from XLA.

Same contract as :func:`jaxlogreg.core.gradients.value_and_grad_t` for the binary model::

    Xt (n, m)  y (m,)  s (m,) or ()  w (n,)  b ()
    z = wᵀX + b,  J = Σ s_i softplus((1 - 2y_i) z_i) + λ/2 ||w||²
    dz = s ⊙ (σ(z) - y),  dw = X dz + λw,  db = Σ dz

Why: XLA:CPU forms it as two products, ``wᵀX`` and ``X dz``, each a full read of X;
``native_kernel.c`` reads X once, called through XLA's FFI inside the jitted loop. Fits use it
for binary X of at least :data:`MIN_ELEMENTS` elements and at most :data:`MAX_FEATURES`
features (:func:`supports`; docs/decisions.md), unless ``JAXLOGREG_NATIVE`` is off. Built once
per process (:mod:`~jaxlogreg.kernels.native_build`), in the cache folder (trusted as JAX's
compilation cache is: both hold machine code) or a temporary one; failing that, fits use XLA's
gradient and :func:`build_error` says why (docs/performance.md, "The C kernel on CPUs").
"""

from __future__ import annotations

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

TARGETS = {"float32": "jaxlogreg_value_and_grad_f32", "float64": "jaxlogreg_value_and_grad_f64"}
SWITCH = "JAXLOGREG_NATIVE"  # on by default; 0/false/no/off: never built or used (env.flag)
# X smaller than this (elements) stays with XLA's gradient: it is in the CPU's caches, where
# two reads cost little, and a first fit then never waits for the C compiler.
MIN_ELEMENTS = 1 << 22
# Wider X stays with XLA: a block of examples that fits in L2 is then too narrow for the
# hardware prefetcher, and the kernel loses its lead (docs/decisions.md).
MAX_FEATURES = 512
FOLDER_NAME = "native"  # the libraries' subfolder of the cache folder
_LOCK = threading.Lock()
_OUTCOME: list[str | None] = []  # of this process's one build: None (built) or why not


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
        for name in TARGETS.values():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)),
                                        platform="cpu")
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


def tried() -> bool:
    """Whether this process has tried to build the kernel (asking builds nothing)."""
    return bool(_OUTCOME)


def supports(n_features: int, n_samples: int, n_classes: int, dtype: Any) -> bool:
    """Whether a fit on the CPU uses the kernel: :func:`enabled` (read first, so that a bad
    value is an error for every fit), binary, X of the parameters' float32 or float64, at
    least :data:`MIN_ELEMENTS` elements, at most :data:`MAX_FEATURES` features, and the kernel
    :func:`available`."""
    return (
        enabled()
        and jax.default_backend() == "cpu"
        and n_classes == 2
        and jnp.dtype(dtype).name in TARGETS
        and n_features * n_samples >= MIN_ELEMENTS
        and n_features <= MAX_FEATURES
        and available()
    )


def native_value_and_grad_t(
    params: Params, Xt: jax.Array, y: jax.Array, s: Any, l2: Any
) -> tuple[jax.Array, Params]:
    """``J = Σ s_i L_i + λ/2 ||w||²`` and its gradient in one read of Xt (n, m), binary only.

    The contract of :func:`jaxlogreg.core.gradients.value_and_grad_t`; Xt must have the
    parameters' dtype (float32 or float64), and the kernel must be :func:`available`.
    """
    if (reason := build_error()) is not None:
        raise RuntimeError(f"the native gradient kernel is not available: {reason}")
    w, b = params
    dtype = jnp.dtype(w.dtype)
    if w.ndim != 1 or dtype.name not in TARGETS or Xt.dtype != dtype:
        raise ValueError(
            f"the native kernel takes binary float32 or float64 parameters and X of their "
            f"dtype, got w of shape {w.shape} and dtype {dtype}, X of dtype {Xt.dtype}")
    out = (jax.ShapeDtypeStruct((), dtype), jax.ShapeDtypeStruct(w.shape, dtype),
           jax.ShapeDtypeStruct((), dtype))
    call = jax.ffi.ffi_call(TARGETS[dtype.name], out)
    J, dw, db = call(Xt, y.astype(dtype), jnp.asarray(s, dtype), w, jnp.asarray(b, dtype))
    return J + l2_penalty(w, l2), Params(w=dw + l2 * w, b=db)


__all__ = [
    "MAX_FEATURES",
    "MIN_ELEMENTS",
    "SWITCH",
    "available",
    "build_error",
    "enabled",
    "native_value_and_grad_t",
    "supports",
    "tried",
]
