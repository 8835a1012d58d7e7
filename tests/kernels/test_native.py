"""The single-read C gradients for CPUs in fits, their choice, and their switch
``JAXLOGREG_NATIVE`` (its agreement with jax.grad and finite differences is the kernel
contract's, tests/kernels/test_contract.py).

The kernel is compiled with the machine's C compiler on first use; without one, or when
JAX's default backend is a GPU (``benchmarks/gpu_check.sh``), these tests skip (fits then use
XLA's gradient or the Pallas kernel; ``test_native_build.py`` checks building, and fits
without a compiler, on every machine).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlogreg.core.loss import example_scale
from jaxlogreg.core.model import Params
from jaxlogreg.kernels import native, native_build

needs_compiler = pytest.mark.skipif(
    native_build.find_compiler() is None or jax.default_backend() != "cpu"
    or not native.enabled(),
    reason="no C compiler here, JAX's default backend is not the CPU (the kernel's), or "
           "JAXLOGREG_NATIVE turned the kernel off",
)


@needs_compiler
def test_loading_it_leaves_denormals_alone():
    """Built without -ffast-math: loading it does not make the process flush denormals."""
    assert native.available(), native.build_error()
    tiny = np.array([1e-40], np.float32)  # a float32 denormal
    assert (tiny * np.float32(0.5))[0] > 0


@needs_compiler
@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_fits_the_same_model_as_the_xla_gradient(monkeypatch, solver):
    import jaxlogreg as jl
    from jaxlogreg.training import pipeline

    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 6))
    y = (X[:, 0] + rng.normal(size=500) > 0).astype(int)
    settings = {"solver": solver, "learning_rate": 0.5, "max_iter": 30, "tol": 0.0,
                "dtype": "float64"}
    reference = jl.fit(X, y, **settings)
    monkeypatch.setattr(pipeline, "kernel_for", lambda data: "native_rows")
    fit = jl.fit(X, y, **settings)
    np.testing.assert_allclose(fit.loss_history, reference.loss_history, rtol=1e-12)
    np.testing.assert_allclose(fit.params.w, reference.params.w, rtol=1e-9, atol=1e-12)


@needs_compiler
def test_is_chosen_for_large_dense_data_on_a_cpu():
    import jaxlogreg as jl
    from jaxlogreg.training import pipeline
    from jaxlogreg.training.data import device_data as prepared
    from jaxlogreg.training.problem import validate

    def device_data(X, y, config):
        return prepared(validate(X, y, dtype=config.dtype), config.x_dtype)

    config = jl.TrainConfig(dtype="float32")
    m, n = native.MIN_ELEMENTS // 8, 8
    X = np.random.default_rng(0).normal(size=(m, n)).astype(np.float32)
    y = np.arange(m) % 2
    expected = "native_rows" if jax.default_backend() == "cpu" else "fused"
    assert pipeline.kernel_for(device_data(X, y, config)) == expected
    small = device_data(X[:1000], y[:1000], config)
    assert pipeline.kernel_for(small) == ("xla" if jax.default_backend() == "cpu" else "fused")
    three_classes = device_data(X, np.arange(m) % 3, config)
    assert pipeline.kernel_for(three_classes) == expected
    many = device_data(X, np.arange(m) % (native.MAX_CLASSES + 1), config)
    assert pipeline.kernel_for(many) != "native_rows"
    bf16 = device_data(X, y, jl.TrainConfig(dtype="float32", x_dtype="bfloat16"))
    assert pipeline.kernel_for(bf16) != "native_rows"
    n_wide = native.MAX_FEATURES + 1
    wide = device_data(np.ones((native.MIN_ELEMENTS // n_wide + 1, n_wide), np.float32),
                                np.arange(native.MIN_ELEMENTS // n_wide + 1) % 2, config)
    assert pipeline.kernel_for(wide) != "native_rows"


@needs_compiler
def test_repeated_fits_with_the_kernel_compile_once(monkeypatch):
    """New data of the same shape, other numeric settings: the same compiled loop."""
    import jaxlogreg as jl
    from jaxlogreg.training import loop, pipeline

    monkeypatch.setattr(pipeline, "kernel_for", lambda data: "native_rows")
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(300, 5)), rng.integers(0, 2, 300)
    config = jl.TrainConfig(solver="lbfgs", max_iter=20)
    jl.fit(X, y, config)
    before = loop.run_segment._cache_size()
    jl.fit(rng.normal(size=(300, 5)), rng.integers(0, 2, 300), config)
    jl.fit(X, y, config.replace(C=0.1, tol=1e-3))
    assert loop.run_segment._cache_size() == before


@needs_compiler
def test_a_large_float32_fit_chooses_it_and_matches_xla(monkeypatch):
    """Chosen by itself for large X: the same model as with XLA's gradient, to float32 accuracy."""
    import jaxlogreg as jl
    from jaxlogreg.training import pipeline

    rng = np.random.default_rng(11)
    m, n = native.MIN_ELEMENTS // 8, 8
    X = rng.normal(size=(m, n)).astype(np.float32)
    y = (X @ rng.normal(size=n) + rng.logistic(size=m) > 0).astype(int)
    chosen = []
    kernel_for = pipeline.kernel_for
    monkeypatch.setattr(pipeline, "kernel_for", lambda data: chosen.append(kernel_for(data))
                        or chosen[-1])
    ours = jl.fit(X, y, solver="lbfgs", tol=1e-6)
    assert chosen == ["native_rows"]
    monkeypatch.setattr(pipeline, "kernel_for", lambda data: "xla")
    xla = jl.fit(X, y, solver="lbfgs", tol=1e-6)
    assert ours.status == xla.status == "converged"
    assert ours.loss == pytest.approx(xla.loss, rel=1e-6)
    np.testing.assert_allclose(ours.params.w, xla.params.w, rtol=1e-4, atol=1e-5)


def test_switched_off_it_is_never_built_nor_chosen(monkeypatch):
    """Fits then use XLA's gradient (a fit: test_native_build.py)."""

    def no_build():
        raise AssertionError("the kernel was built although switched off")

    monkeypatch.setattr(native, "_load", no_build)
    for value in ("0", "false", "No", " off "):
        monkeypatch.setenv(native.SWITCH, value)
        assert not native.supports(8, native.MIN_ELEMENTS, 2, "float32")
        assert not native.available()
        assert native.build_error() == f"turned off by {native.SWITCH}={value!r}"
    params = Params(jnp.zeros(3, jnp.float32), jnp.zeros((), jnp.float32))
    X, y = jnp.ones((10, 3), jnp.float32), jnp.zeros(10, jnp.float32)
    with pytest.raises(RuntimeError, match="not available: turned off by JAXLOGREG_NATIVE"):
        native.native_rows_value_and_grad(params, X, y, example_scale(None, 10, X.dtype), 0.0)


def test_a_bad_switch_value_is_an_error_naming_it(monkeypatch):
    monkeypatch.setenv(native.SWITCH, "maybe")
    message = "environment variable JAXLOGREG_NATIVE must be one of .* got 'maybe'"
    with pytest.raises(ValueError, match=message):
        native.supports(8, 10, 2, "float32")  # read first: small X does not hide it
    with pytest.raises(ValueError, match=message):
        native.build_error()


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="GPUs choose the Pallas kernel first")
def test_a_fit_with_a_bad_switch_value_fails_naming_it(monkeypatch):
    import jaxlogreg as jl

    monkeypatch.setenv(native.SWITCH, "2")
    X = np.random.default_rng(1).normal(size=(50, 3))
    with pytest.raises(ValueError, match="JAXLOGREG_NATIVE must be one of .* got '2'"):
        jl.fit(X, (X[:, 0] > 0).astype(int), max_iter=2)
