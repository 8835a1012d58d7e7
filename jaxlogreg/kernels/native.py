"""A single-read gradient of binary logistic regression for CPUs: a C kernel called from XLA.

Same contract as :func:`jaxlogreg.core.gradients.value_and_grad_t` for the binary model::

    Xt (n, m)  y (m,)  s (m,) or ()  w (n,)  b ()
    z = wᵀX + b,  J = Σ s_i softplus((1 - 2y_i) z_i) + λ/2 ||w||²
    dz = s ⊙ (σ(z) - y),  dw = X dz + λw,  db = Σ dz

Why: XLA:CPU emits the gradient as two matrix-vector products, ``z = wᵀX`` and ``X dz``, each
a full read of X from memory; with X at 10^6 x 100 float32 (400 MB) those two reads are the
fit's time. ``native_kernel.c`` reads X once: it cuts the examples into blocks whose rows of X
fit in a core's L2 cache, forms the block's z, loss and dz, then reads the block again from
the cache for its share of ``X dz`` (its header has the details). XLA calls it through its FFI
(:func:`jax.ffi.ffi_call`), so it runs inside the jitted training loop like any other op, and
its work is split over XLA's own thread pool.

Measured on a 2-core AMD EPYC (``benchmarks/results/roofline.md``, interleaved with the
floor): at 10^6 x 100 float32 the kernel takes 1.2-1.5x the time of one ``jnp.sum`` over X
(the floor), XLA's two products 2.1-2.3x; the L-BFGS loop there takes 0.21 s against
0.36-0.39 s with XLA's gradient (``benchmarks/results/time_to_solution.md``). Fits use it for
binary problems with at least :data:`MIN_ELEMENTS` elements and at most :data:`MAX_FEATURES`
features (:func:`supports`).

Building: on first use the C file is compiled with the system's C compiler (``$CC``, else
``cc``, ``gcc`` or ``clang``) for this machine's CPU (``-march=native``), with the headers of
XLA's FFI that jaxlib ships, and the library is kept in the package's cache folder
(:mod:`jaxlogreg.runtime.cache`) under a name that hashes the source, the flags, the compiler, jaxlib's
version and the CPU; with ``JAXLOGREG_NO_CACHE=1`` it is built in a temporary folder for each
process. On glibc x86-64 the elementwise pass calls libmvec's vectorised ``exp`` and ``log1p``
(no ``-ffast-math``: it would let the compiler assume there are no NaN or inf, and switch the
whole process to flushing denormals when linked). Without a compiler, or when the build fails,
:func:`available` is False and fits use XLA's gradient; :func:`build_error` says why. The
build, and the registration of its handlers with XLA, happen once per process.

The cache folder is trusted as JAX's compilation cache in it is: both hold machine code that
the process runs (unlike the package's model files, which load without running any code).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib

from jaxlogreg.core.loss import l2_penalty
from jaxlogreg.core.model import Params
from jaxlogreg.runtime import cache

SOURCE = Path(__file__).with_name("native_kernel.c")
TARGETS = {"float32": "jaxlogreg_value_and_grad_f32", "float64": "jaxlogreg_value_and_grad_f64"}
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math",
         "-fassociative-math", "-fno-signed-zeros", "-freciprocal-math")
LIBMVEC = ("-DJAXLOGREG_LIBMVEC", "-lmvec")  # "-l" flags go after the source (_compile)
# X smaller than this (elements) stays with XLA's gradient: it is in the CPU's caches, where
# two reads cost little, and a first fit then never waits for the C compiler.
MIN_ELEMENTS = 1 << 22
# Wider X stays with XLA: a block of examples that fits in L2 is then too narrow for the
# hardware prefetcher, and the kernel loses its lead (0.82x XLA's time at 512 features,
# 1.1-1.4x at 1,024 to 5,000; 0.53x at 100; 10^5-10^6 examples, float32, 2-core EPYC).
MAX_FEATURES = 512
BUILD_TIMEOUT_S = 120
FOLDER_NAME = "native"  # the libraries' subfolder of the cache folder
_LOCK = threading.Lock()
_OUTCOME: list[str | None] = []  # of this process's one build: None (built) or why not


def _compiler() -> str | None:
    names = [os.environ.get("CC", ""), "cc", "gcc", "clang"]
    return next((path for name in names if name and (path := shutil.which(name))), None)


def _cpu_signature() -> str:
    """What ``-march=native`` compiles for: the CPU's feature flags where Linux lists them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return flags or platform.processor() or platform.machine()


def _build_key(compiler: str) -> str:
    """What decides the library besides its flags: source, compiler, jaxlib, CPU, platform."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                             check=True, timeout=BUILD_TIMEOUT_S).stdout
    parts = (SOURCE.read_text(), version, jaxlib.__version__, _cpu_signature(), sys.platform)
    return "\0".join(parts)


def _library_name(build_key: str, flags: tuple[str, ...]) -> str:
    key = f"{build_key}\0{' '.join(flags)}"
    return f"native_kernel-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> None:
    """Compile :data:`SOURCE` into ``target`` (written under a temporary name, then renamed,
    so processes building at once never load a half-written file)."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    libraries = [flag for flag in flags if flag.startswith("-l")]  # linked after the source
    options = [flag for flag in flags if not flag.startswith("-l")]
    command = [compiler, *options, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o",
               str(partial), *libraries, "-lm"]
    try:
        subprocess.run(command, capture_output=True, text=True, check=True,
                       timeout=BUILD_TIMEOUT_S)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _variants() -> list[tuple[str, ...]]:
    """Compiler flags to try in turn: with libmvec on glibc x86-64 (vectorised exp and log1p),
    then without, then without ``-march=native`` (a compiler that does not know it)."""
    linux_x86 = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
    with_libmvec = linux_x86 and platform.libc_ver()[0] == "glibc"
    portable = tuple(flag for flag in FLAGS if flag != "-march=native")
    return ([FLAGS + LIBMVEC] if with_libmvec else []) + [FLAGS, portable]


def _open(folder: Path) -> ctypes.CDLL:
    """The compiled library, built into ``folder`` unless there already, and loaded: the first
    of :func:`_variants` that compiles and loads (an old glibc may lack a vector function)."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found ($CC, cc, gcc or clang)")
    errors, build_key = [], _build_key(compiler)
    for flags in _variants():
        target = folder / _library_name(build_key, flags)
        try:
            if target.exists():
                try:
                    return ctypes.CDLL(str(target))
                except OSError:  # a damaged file (a full disk, say): build it again
                    target.unlink()
            _compile(compiler, flags, target)
            return ctypes.CDLL(str(target))
        except subprocess.CalledProcessError as err:
            errors.append(err.stderr or str(err))
        except (subprocess.TimeoutExpired, OSError) as err:
            errors.append(str(err))
    raise RuntimeError(f"compiling {SOURCE.name} failed: {errors[-1].strip()[-2000:]}")


def _build_and_register() -> str | None:
    """Build (or find) the library, load it and register its handlers with XLA; returns None,
    or why it could not."""
    try:
        folder = cache.folder()
        if folder is None:  # no cache: build for this process only
            with tempfile.TemporaryDirectory(prefix="jaxlogreg-native-") as tmp:
                library = _open(Path(tmp))  # once loaded, the file may go
        else:
            (folder / FOLDER_NAME).mkdir(parents=True, exist_ok=True)
            library = _open(folder / FOLDER_NAME)
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


def available() -> bool:
    """Whether the kernel is built and registered (building it on the first call)."""
    return _load() is None


def build_error() -> str | None:
    """Why the kernel is not available (None when it is)."""
    return _load()


def supports(n_features: int, n_samples: int, n_classes: int, dtype: Any) -> bool:
    """Whether a fit on the CPU uses the kernel: binary, X of the parameters' float32 or
    float64, at least :data:`MIN_ELEMENTS` elements, at most :data:`MAX_FEATURES` features,
    and the kernel :func:`available`."""
    return (
        jax.default_backend() == "cpu"
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
    if (reason := _load()) is not None:
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
    "available",
    "build_error",
    "native_value_and_grad_t",
    "supports",
]
