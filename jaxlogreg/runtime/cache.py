"""JAX's persistent compilation cache, turned on explicitly: :func:`enable_compilation_cache`.

Compiling a fit's programs takes a few tenths of a second; running them on small data takes
milliseconds. With the cache on, a new process that fits shapes seen before loads the compiled
programs from disk instead (``benchmarks/results/time_to_solution.md``). Importing jaxlogreg
changes no JAX setting: the cache is on only after a call to :func:`enable_compilation_cache`
(the ``jaxlogreg`` command makes it for its own process). The settings it changes are JAX's,
for the whole process, so the caller's own programs are cached too.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

from jaxlogreg.runtime import env

NO_CACHE = "JAXLOGREG_NO_CACHE"  # the command's opt-out (env.flag)
_THRESHOLDS = {
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "jax_persistent_cache_min_compile_time_secs",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "jax_persistent_cache_min_entry_size_bytes",
}


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/jaxlogreg``, or ``~/.cache/jaxlogreg``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxlogreg"


def enable_compilation_cache(folder: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache for this process; returns its folder.

    Args:
      folder: where compiled programs are kept; None: a folder already set in JAX's config
        (``JAX_COMPILATION_CACHE_DIR``), else :func:`default_folder`.

    Every program is cached, however quick to compile (JAX's defaults skip programs under one
    second, which are most of a fit's), unless ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``
    or ``JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES`` are set. The native gradient kernel
    (:mod:`jaxlogreg.kernels.native`) is kept in the folder too. JAX does not bound the
    folder's size: delete it to start afresh.
    """
    if folder is None:
        folder = jax.config.jax_compilation_cache_dir or default_folder()
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"folder must be a directory for the compilation cache, got the file "
                         f"{folder}")
    jax.config.update("jax_compilation_cache_dir", str(folder))
    for variable, option in _THRESHOLDS.items():
        if variable not in os.environ:
            jax.config.update(option, 0)
    return folder


def folder() -> Path | None:
    """The persistent compilation cache's folder in use, or None when the cache is off."""
    configured = jax.config.jax_compilation_cache_dir
    return Path(configured) if configured else None


def enabled_by_command() -> Path | None:
    """For the ``jaxlogreg`` command: the cache on, unless ``JAXLOGREG_NO_CACHE`` is true."""
    return None if env.flag(NO_CACHE, default=False) else enable_compilation_cache()
