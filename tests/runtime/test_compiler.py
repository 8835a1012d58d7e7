"""jaxlogreg.runtime.compiler: the dense training loop compiled with the package's XLA options, and
with XLA's defaults when the installed XLA does not know an option."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg.runtime import compiler
from jaxlogreg.training import loop


def test_the_dense_loop_carries_the_options_and_the_sparse_loop_does_not():
    assert isinstance(loop.run_segment, compiler.Jitted)
    assert not isinstance(loop.run_segment_sparse, compiler.Jitted)
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



def _binary(m, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    return X, (X @ rng.normal(size=n) + rng.normal(size=m) > 0).astype(int)


def test_small_loops_compile_quickly_and_large_ones_with_full_optimisation():
    spec = loop.LoopSpec("lbfgs", (), 128, None, "manual", "grad", True)

    def data(n, m):
        return loop.TrainData(jax.ShapeDtypeStruct((n, m), jnp.float32), None, None)

    rows = loop.QUICK_COMPILE_WORK // 128
    assert loop.quick_compile(None, data(64, 16384), spec=spec)  # 10^4 x 50, padded
    assert loop.quick_compile(None, data(8, rows), spec=spec)
    assert not loop.quick_compile(None, data(8, rows + 1), spec=spec)  # too many rows
    assert not loop.quick_compile(None, data(8, rows), spec=spec._replace(history_size=256))
    wide = loop.QUICK_COMPILE_ELEMENTS // 128 // 256
    assert loop.quick_compile(None, data(wide, 256), spec=spec)
    assert not loop.quick_compile(None, data(wide + 1, 256), spec=spec)  # too many elements


def test_the_rule_picks_the_program(monkeypatch, quick_flags):
    X, y = _binary(300, 4, seed=1)  # padded to 512 rows; 16 iterations at most
    jl.fit(X, y, max_iter=7, tol=0.0)
    assert quick_flags == [True, True]  # the starting state, the loop
    monkeypatch.setattr(loop, "QUICK_COMPILE_WORK", 512 * 16 - 1)
    jl.fit(X, y, max_iter=7, tol=0.0)
    assert quick_flags == [True, True, True, False]


def test_the_quickly_compiled_loop_fits_the_same_model(monkeypatch):
    X, y = _binary(400, 6, seed=2)
    with jax.enable_x64(True):
        quick = jl.fit(X, y, solver="lbfgs", dtype="float64")
        monkeypatch.setattr(loop, "QUICK_COMPILE_WORK", 0)
        optimised = jl.fit(X, y, solver="lbfgs", dtype="float64")
    assert quick.n_iter == optimised.n_iter and quick.status == optimised.status == "converged"
    np.testing.assert_allclose(quick.params.w, optimised.params.w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(quick.loss, optimised.loss, rtol=1e-14)


def test_the_quick_compile_is_for_cpus_only(monkeypatch):
    X, y = _binary(300, 4, seed=3)
    data = loop.TrainData(jnp.asarray(X.T), jnp.asarray(y), None)
    spec = loop.LoopSpec("lbfgs", (), 16, None, "manual", "grad", True)
    assert loop.run_segment.quick(None, data, None, 7, spec=spec)
    monkeypatch.setattr(compiler, "platform", lambda leaves: "gpu")  # measured on CPUs only
    assert not loop.run_segment.quick(None, data, None, 7, spec=spec)


def test_lower_gives_the_program_the_call_would_run(monkeypatch):
    """A quick call lowers (and so compiles) the quickly compiled program, a large one the
    optimised one."""
    monkeypatch.setattr(compiler, "platform", lambda leaves: "cpu")
    double = compiler.jit(lambda x: 2 * x, quick=lambda x: x.shape[0] < 4)
    small, large = jnp.ones(2), jnp.ones(8)
    seen = []
    for name in ("_quick_options", "_with_options"):
        jitted = getattr(double, name)
        monkeypatch.setattr(double, name, _Recording(jitted, name, seen))
    double.lower(small)
    double.lower(large)
    assert seen == ["_quick_options", "_with_options"]


class _Recording:
    def __init__(self, jitted, name, seen):
        self.jitted, self.name, self.seen = jitted, name, seen

    def lower(self, *args, **kwargs):
        self.seen.append(self.name)
        return self.jitted.lower(*args, **kwargs)


def test_an_xla_error_other_than_an_unknown_option_is_raised_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(compiler.Jitted, "options_known", True)

    def build(options):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: out of memory")

    with pytest.raises(jax.errors.JaxRuntimeError, match="out of memory"):
        compiler.with_options(build)
    assert compiler.Jitted.options_known is True  # the process keeps the package's options
