"""The environment in a few lines, for a bug report: :func:`show_config`.

One item per line, ``name: value``: the versions of jaxlogreg and of what it runs on, Python,
JAX's backend and devices, the C kernel's state, the gradient kernel that a dense and a sparse
fit of a given shape would use (the kernel table asked as a fit asks it, on the padded shape
the loop sees), and the compilation cache's folder. ``jaxlogreg --version --verbose`` prints
it. An item that cannot be found out says why on its line: the report itself never fails.
"""

from __future__ import annotations

import collections
import functools
import platform
import sys
from collections.abc import Callable
from importlib import metadata

import jax
import numpy as np

from jaxlogreg.core import checks as v
from jaxlogreg.core.sparse import CooMatrix
from jaxlogreg.kernels import native
from jaxlogreg.runtime import cache
from jaxlogreg.runtime.version import __version__
from jaxlogreg.training.data import DeviceData, bucketed_shape
from jaxlogreg.training.pipeline import kernel_for
from jaxlogreg.training.spec import TrainData

PACKAGES = ("jax", "jaxlib", "optax", "numpy", "scipy", "scikit-learn")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _devices() -> str:
    kinds = collections.Counter(
        d.platform if d.device_kind == d.platform else f"{d.platform} {d.device_kind}"
        for d in jax.devices())
    return ", ".join(f"{count} x {kind}" for kind, count in kinds.items())


def _fit_kernel(n_samples: int, n_features: int, n_classes: int, dtype: str,
                sparse: bool) -> str:
    """The kernel :func:`~jaxlogreg.training.pipeline.kernel_for` picks for such data on the
    default device (for dense X: padded as :func:`~jaxlogreg.training.data.device_data` pads)."""
    if sparse:
        entries = [jax.ShapeDtypeStruct((1,), t) for t in (dtype, np.int32, np.int32)]
        Xt = CooMatrix(*entries, (n_features, n_samples), 1)
    else:
        m, n = bucketed_shape(n_samples, n_features, minibatch=False)
        Xt = jax.ShapeDtypeStruct((n, m), dtype)
    data = DeviceData(TrainData(Xt, None, None), n_samples, n_features, n_classes, dtype,
                      float(n_samples))
    return kernel_for(data)


def _native_state(build: bool) -> str:
    if not native.enabled():
        return f"off, {native.build_error()}"
    if jax.default_backend() != "cpu":
        return f"not used on {jax.default_backend()} (for CPUs)"
    if not (build or native.tried()):
        return ("not built yet in this process (binary fits of at least 2^22 elements of X "
                "build it; show_config(build_native=True) builds it now)")
    error = native.build_error()
    return "built" if error is None else f"not available: {error}"


def _item(name: str, find: Callable[[], str]) -> str:
    try:
        return f"{name}: {find()}"
    except Exception as err:  # noqa: BLE001 -- a broken part is what the report must show
        return f"{name}: unknown ({type(err).__name__}: {' '.join(str(err).split())})"


def show_config(n_samples: int = 10_000, n_features: int = 100, n_classes: int = 2, *,
                dtype: str = "float32", build_native: bool = False) -> str:
    """Print the environment report, one item per line, and return its text.

    Args:
      n_samples, n_features, n_classes, dtype: the fit whose gradient kernel is reported,
        for dense and for sparse X (float32 or float64 X and parameters).
      build_native: build the C kernel now to report whether it builds (else reported only
        once this process has tried: fits on a CPU of binary X with at least 2^22 elements
        build it, and so does asking about such a dense fit here).

    Returns:
      The text printed (what to paste into a bug report).
    """
    v.check_int_at_least(n_samples, "n_samples", 1)
    v.check_int_at_least(n_features, "n_features", 1)
    v.check_int_at_least(n_classes, "n_classes", 2)
    v.check_choice(dtype, "dtype", ("float32", "float64"))
    shape = f"{n_samples} x {n_features}, {n_classes} classes, {dtype}"
    # before the C kernel's line, which then says whether asking about a dense fit built it
    kernels = [_item(f"{kind} fit {shape}", functools.partial(
        _fit_kernel, n_samples, n_features, n_classes, dtype, kind == "sparse"))
        for kind in ("dense", "sparse")]
    folder = cache.folder()
    lines = [
        f"jaxlogreg: {__version__}",
        *(f"{package}: {_version(package)}" for package in PACKAGES),
        f"Python: {platform.python_version()} {platform.python_implementation()} {sys.executable}",
        _item("backend", jax.default_backend),
        _item("devices", _devices),
        _item("C kernel", lambda: _native_state(build_native)),
        *kernels,
        "compilation cache: " + (str(folder) if folder else
                                 f"off (jaxlogreg.enable_compilation_cache() turns it on; the "
                                 f"jaxlogreg command uses {cache.default_folder()})"),
    ]
    text = "\n".join(lines)
    print(text)
    return text
