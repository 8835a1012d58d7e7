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
