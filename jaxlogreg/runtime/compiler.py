"""How the training loop is compiled: :func:`jit` is ``jax.jit`` with :data:`XLA_OPTIONS`.

A fit's first call is mostly compiling its loop, so the loop on dense X and its starting state
(``jaxlogreg.training.loop``) compile with options that shorten that. Other programs (sparse X,
the path) keep XLA's defaults, under which they run faster, and the caller's own programs are
not touched (no process-wide ``XLA_FLAGS``). The measurements: docs/decisions.md.

- ``xla_cpu_use_fusion_emitters=False``: XLA:CPU's older LLVM emitters, which compile the loop
  faster and run it as fast. Other backends ignore it.
- :data:`QUICK_OPTIONS` (LLVM at -O0), on CPUs only, for programs with little work over the
  data (a :class:`Jitted`'s ``quick`` rule): half the compile time, slower code per row of X.

An XLA that does not know an option compiles with its defaults (:class:`Jitted`). The options
are part of the persistent compilation cache's key (:mod:`jaxlogreg.runtime.cache`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax

XLA_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}
# Added to XLA_OPTIONS for programs whose work is small (a Jitted's ``quick`` rule says so).
QUICK_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 0}
_UNKNOWN = "No such compile option"  # XLA's error for an option it does not have
T = TypeVar("T")


class Jitted:
    """A function jitted with :data:`XLA_OPTIONS` (plus :data:`QUICK_OPTIONS` for calls that
    ``quick(*args, **kwargs)`` calls small), and without them once XLA says it does not know
    one (an XLA that dropped an option): then every :class:`Jitted` of the process compiles
    with XLA's defaults. Attributes (``trace``, ...) are the jitted function's."""

    options_known = True  # per process: the installed XLA accepts the options

    def __init__(self, fun: Callable[..., Any], quick: Callable[..., bool] | None = None,
                 **jit_kwargs: Any):
        self._quick = quick
        self._with_options = jax.jit(fun, compiler_options=compile_options(False), **jit_kwargs)
        self._quick_options = jax.jit(fun, compiler_options=compile_options(True), **jit_kwargs)
        self._without = jax.jit(fun, **jit_kwargs)
        self.__doc__ = fun.__doc__

    def quick(self, *args: Any, **kwargs: Any) -> bool:
        """Whether this call compiles with :data:`QUICK_OPTIONS`: on CPUs only (measured
        there), when the ``quick`` rule says so."""
        if self._quick is None or platform(jax.tree.leaves((args, kwargs))) != "cpu":
            return False
        return bool(self._quick(*args, **kwargs))

    def _jitted(self, options: dict[str, Any] | None, quick: bool) -> Any:
        if options is None:
            return self._without
        return self._quick_options if quick else self._with_options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        quick = self.quick(*args, **kwargs)
        return with_options(
            lambda options: self._jitted(options, quick)(*args, **kwargs), quick)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.jit(...).lower`` of the program this call would run."""
        options = XLA_OPTIONS if Jitted.options_known else None
        return self._jitted(options, self.quick(*args, **kwargs)).lower(*args, **kwargs)

    def _cache_size(self) -> int:
        return sum(j._cache_size() for j in (self._with_options, self._quick_options, self._without))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._with_options if Jitted.options_known else self._without, name)


def platform(leaves: list[Any]) -> str:
    """The platform of the arguments' device (as ``jax.default_backend()`` names it), the
    default backend's when none is a JAX array."""
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            return next(iter(leaf.sharding.device_set)).platform
    return jax.default_backend()


def compile_options(quick: bool) -> dict[str, Any]:
    """The compile options of a program: :data:`XLA_OPTIONS`, plus :data:`QUICK_OPTIONS` when
    ``quick``."""
    return {**XLA_OPTIONS, **QUICK_OPTIONS} if quick else XLA_OPTIONS


def with_options(build: Callable[[dict[str, Any] | None], T], quick: bool = False) -> T:
    """``build(XLA_OPTIONS)`` (with :data:`QUICK_OPTIONS` added when ``quick``); ``build(None)``
    (XLA's defaults) once XLA has said it does not know an option, which it does before
    anything runs: then for every later program too."""
    if Jitted.options_known:
        try:
            return build(compile_options(quick))
        except jax.errors.JaxRuntimeError as err:
            if _UNKNOWN not in str(err):
                raise
            Jitted.options_known = False
    return build(None)


def jit(fun: Callable[..., Any] | None = None, quick: Callable[..., bool] | None = None,
        **jit_kwargs: Any) -> Any:
    """``jax.jit`` with the package's :data:`XLA_OPTIONS` (a :class:`Jitted`): ``jit(f,
    static_argnames=...)``, or ``@jit(static_argnames=...)`` as a decorator. ``quick(*args,
    **kwargs)``: whether a call's program is small work, compiled with :data:`QUICK_OPTIONS`."""
    if fun is None:
        return lambda f: Jitted(f, quick, **jit_kwargs)
    return Jitted(fun, quick, **jit_kwargs)
