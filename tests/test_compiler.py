"""jaxlogreg.compiler: the dense training loop compiled with the package's XLA options, and
with XLA's defaults when the installed XLA does not know an option."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxlogreg as jl
from jaxlogreg import compiler
from jaxlogreg.training import loop


def test_the_dense_loop_carries_the_options_and_the_sparse_loop_does_not():
    assert isinstance(loop.run_segment.fallback, compiler.Jitted)  # and the saved route:
    # tests/test_saved.py
    assert not isinstance(loop.run_segment_sparse.fallback, compiler.Jitted)
    X = np.random.default_rng(0).normal(size=(50, 3))
    jl.fit(X, (X[:, 0] > 0).astype(int), max_iter=5)
    assert loop.run_segment._cache_size() > 0  # a dense fit compiled the program with options


def test_an_option_this_xla_does_not_know_falls_back_to_the_defaults(monkeypatch):
    monkeypatch.setattr(compiler, "XLA_OPTIONS", {"xla_cpu_no_such_option": False})
    monkeypatch.setattr(compiler.Jitted, "options_known", True)
    double = compiler.jit(lambda x: 2 * x)
    assert float(double(jnp.float32(3.0))) == 6.0  # compiled without the unknown option
    assert compiler.Jitted.options_known is False  # and so is every later program
    assert float(compiler.jit(lambda x: x + 1)(jnp.float32(1.0))) == 2.0
