"""How the package's programs are compiled: :func:`jit` is ``jax.jit`` with :data:`XLA_OPTIONS`.

Every program a fit runs (the training loop, its starting state, data preparation, the
cross-validation path, streaming steps) is compiled with these options; the caller's own JAX
programs are not touched (no process-wide ``XLA_FLAGS``).

- ``xla_cpu_use_fusion_emitters=False``: XLA:CPU emits its fused kernels with its older LLVM
  emitters instead of the newer MLIR fusion emitters. Compiling the L-BFGS loop takes about
  40% less time (2.3–2.8 s → 1.3–1.6 s on a 2-core AMD EPYC; the GD loop 0.6–0.7 s → 0.3–0.4 s)
  and the compiled loop runs as fast (steady time within ±5% for binary and softmax,
  float32 and float64, L-BFGS, GD, Adam and minibatches, from 10⁴ × 50 to 10⁶ × 100;
  ``benchmarks/results/time_to_solution.md``, table "compiler options"). Other backends
  ignore it.

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
