"""JAX's persistent compilation cache, on by default in the user's cache folder.

Compiling the training loop takes about a second; running it on small data takes milliseconds.
With the cache, a new process that fits a model of shapes seen before loads the compiled
programs from disk instead (``benchmarks/results/time_to_solution.md`` has the numbers).

:func:`enable` runs when ``jaxlogreg`` is imported:

- the cache folder is ``$JAX_COMPILATION_CACHE_DIR`` when set (or a folder already set in
  ``jax.config``), else ``$XDG_CACHE_HOME/jaxlogreg`` or ``~/.cache/jaxlogreg``;
- every program is cached, however quick to compile (JAX's defaults skip programs under one
  second or smaller than a threshold, which are most of a fit's), unless
  ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` / ``JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES``
  say otherwise;
- ``JAXLOGREG_NO_CACHE=1`` turns all of this off, and the saved training loops of
  :mod:`jaxlogreg.saved` (kept in a subfolder of this one) with it.

These are JAX settings of the process, so they apply to the caller's own JAX programs too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import jax

OPT_OUT = "JAXLOGREG_NO_CACHE"
_THRESHOLDS = {
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "jax_persistent_cache_min_compile_time_secs",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "jax_persistent_cache_min_entry_size_bytes",
}


def default_folder(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/jaxlogreg``, or ``~/.cache/jaxlogreg``."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxlogreg"


def opted_out(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``JAXLOGREG_NO_CACHE`` is set (to anything but "", "0", "false" or "no")."""
    return environ.get(OPT_OUT, "").strip().lower() not in ("", "0", "false", "no")


def enable(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Turn the persistent compilation cache on (see the module docstring); returns its folder,
    or None when ``JAXLOGREG_NO_CACHE`` is set."""
    if opted_out(environ):
        return None
    folder = environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir
    if not folder:
        folder = str(default_folder(environ))
        jax.config.update("jax_compilation_cache_dir", folder)
    for variable, option in _THRESHOLDS.items():
        if variable not in environ:
            jax.config.update(option, 0)
    return Path(folder)


def folder(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The compilation cache folder in use now, or None (opted out, or no folder set)."""
    if opted_out(environ) or not jax.config.jax_compilation_cache_dir:
        return None
    return Path(jax.config.jax_compilation_cache_dir)
