"""How the training loop is compiled: :func:`jit` is ``jax.jit`` with :data:`XLA_OPTIONS`.

The in-memory training loop on dense X and its starting state (``jaxlogreg.training.loop``)
are compiled with these options, as the first call of a fit is mostly compiling that loop. The
other programs keep XLA's defaults, by measurement: with these options the loop on sparse X
(gathers and segment sums) ran 1.7x slower at steady state (2.3 s against 1.35 s, 2·10^5 x
2^16, L-BFGS) and the cross-validation path (batched products over (models, m)) 1.6x slower
(0.49 s against 0.30 s, ``LogisticRegressionCV`` on 5·10^4 x 50). The caller's own JAX
programs are not touched (no process-wide ``XLA_FLAGS``).

- ``xla_cpu_use_fusion_emitters=False``: XLA:CPU emits its fused kernels with its older LLVM
  emitters instead of the newer MLIR fusion emitters. On a 2-core AMD EPYC, in fresh
  processes, the L-BFGS loop compiles in 1.0–1.4 s instead of 1.6–2.0 s from 10⁴ × 50 to
  10⁶ × 100 over the last two runs (``benchmarks/results/time_to_solution.md``, table "line
  search and compiler options"), the GD loop in 0.30–0.33 s instead of 0.63 s, and the
  compiled loops run as fast (steady times within 9%; binary and softmax, float32 and
  float64, L-BFGS, GD, Adam and minibatches were compared). Other backends ignore it.

The options are part of the persistent compilation cache's key (:mod:`jaxlogreg.cache`). An
XLA that does not know an option refuses to compile with it ("No such compile option"); the
programs then compile with XLA's defaults (:class:`Jitted`), so a newer jaxlib that drops the
older emitters only loses the shorter compile time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax

XLA_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}
_UNKNOWN = "No such compile option"  # XLA's error for an option it does not have
T = TypeVar("T")


class Jitted:
    """A function jitted with :data:`XLA_OPTIONS`, and without them once XLA says it does not
    know one (an XLA that dropped the option): then every :class:`Jitted` of the process
    compiles with XLA's defaults. Attributes (``lower``, ``trace``, ...) are the jitted
    function's."""

    options_known = True  # per process: the installed XLA accepts XLA_OPTIONS

    def __init__(self, fun: Callable[..., Any], **jit_kwargs: Any):
        self._with_options = jax.jit(fun, compiler_options=XLA_OPTIONS, **jit_kwargs)
        self._without = jax.jit(fun, **jit_kwargs)
        self.__doc__ = fun.__doc__

    def _active(self) -> Any:
        return self._with_options if Jitted.options_known else self._without

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return with_options(
            lambda options: (self._with_options if options else self._without)(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._active(), name)


def with_options(build: Callable[[dict[str, Any] | None], T]) -> T:
    """``build(XLA_OPTIONS)``; ``build(None)`` (XLA's defaults) once XLA has said it does not
    know an option, which it does before anything runs: then for every later program too."""
    if Jitted.options_known:
        try:
            return build(XLA_OPTIONS)
        except jax.errors.JaxRuntimeError as err:
            if _UNKNOWN not in str(err):
                raise
            Jitted.options_known = False
    return build(None)


def jit(fun: Callable[..., Any] | None = None, **jit_kwargs: Any) -> Any:
    """``jax.jit`` with the package's :data:`XLA_OPTIONS` (a :class:`Jitted`): ``jit(f,
    static_argnames=...)``, or ``@jit(static_argnames=...)`` as a decorator."""
    if fun is None:
        return lambda f: Jitted(f, **jit_kwargs)
    return Jitted(fun, **jit_kwargs)
