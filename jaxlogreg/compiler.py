"""How the package's programs are compiled: :func:`jit` is ``jax.jit`` with :data:`XLA_OPTIONS`.

Every program a fit runs (the training loop, its starting state, data preparation, the
cross-validation path, streaming steps) is compiled with these options; the caller's own JAX
programs are not touched (no process-wide ``XLA_FLAGS``).

- ``xla_cpu_use_fusion_emitters=False``: XLA:CPU emits its fused kernels with its older LLVM
  emitters instead of the newer MLIR fusion emitters. On a 2-core AMD EPYC, in fresh
  processes, the L-BFGS loop compiles in 1.3–1.4 s instead of 1.8–2.0 s from 10⁴ × 50 to
  10⁶ × 100 (``benchmarks/results/time_to_solution.md``, table "line search and compiler
  options"), the GD loop in 0.30–0.33 s instead of 0.63 s, and the compiled loops run as fast
  (steady times within 9%; binary and softmax, float32 and float64, L-BFGS, GD, Adam and
  minibatches were compared). Other backends ignore it.

The options are part of the persistent compilation cache's key (:mod:`jaxlogreg.cache`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax

XLA_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}

jit = functools.partial(jax.jit, compiler_options=XLA_OPTIONS)
jit.__doc__ = """``jax.jit`` with the package's :data:`XLA_OPTIONS`; the same arguments
(``jit(f, static_argnames=...)``, or ``@jit(static_argnames=...)`` as a decorator)."""
