"""The C kernel on X in rows (``native.native_rows_value_and_grad``): what it refuses, with a
clear error before native code reads anything, and what it takes (its agreement with jax.grad
and finite differences is the kernel contract's, tests/kernels/test_contract.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlogreg.core.gradients import value_and_grad_t
from jaxlogreg.core.model import Params
from jaxlogreg.kernels import native, native_build

pytestmark = pytest.mark.skipif(
    native_build.find_compiler() is None or jax.default_backend() != "cpu"
    or not native.available(),
    reason="no C kernel here (no compiler, JAX's backend is not the CPU, or switched off)")


def _problem(m=23, n=5, k=2, dtype="float64", seed=0):
    """params, X (m, n) as numpy, y, s."""
    rng = np.random.default_rng(seed)
    binary = k == 2
    params = Params(jnp.asarray(rng.normal(size=(n,) if binary else (n, k)), dtype),
                    jnp.asarray(rng.normal(size=() if binary else (k,)), dtype))
    X = rng.normal(size=(m, n)).astype(dtype)
    y = jnp.asarray(rng.integers(0, k, m), dtype if binary else jnp.int32)
    return params, X, y, jnp.asarray(rng.uniform(0.1, 2.0, m), dtype)


@pytest.mark.parametrize("k", [2, 4])
def test_a_fortran_ordered_x_gives_the_same_result(k):
    """JAX takes a Fortran-ordered array in its own row-major layout: same J and gradient."""
    with jax.enable_x64(True):
        params, X, y, s = _problem(k=k)
        J, g = native.native_rows_value_and_grad(params, np.asfortranarray(X), y, s, 0.1)
        J_ref, g_ref = value_and_grad_t(params, jnp.asarray(X.T), y, s, 0.1)
    eps = float(np.finfo(np.float64).eps)
    assert abs(float(J) - float(J_ref)) <= 64 * eps * abs(float(J_ref))
    for leaf, ref in zip(g, g_ref, strict=True):
        np.testing.assert_allclose(leaf, ref, rtol=64 * eps * X.shape[0], atol=1e-12)


@pytest.mark.parametrize("k", [17, pytest.param(128, marks=pytest.mark.slow)])  # over several vectors of lanes
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_many_classes_give_xlas_value_and_gradient(k, dtype):
    """The kernel pads the classes to whole vectors: the padding never reaches J or ∇J."""
    with jax.enable_x64(dtype == "float64"), jax.default_matmul_precision("highest"):
        params, X, y, s = _problem(m=203, n=11, k=k, dtype=dtype, seed=4)
        J, g = native.native_rows_value_and_grad(params, X, y, s, 0.2)
        J_ref, g_ref = value_and_grad_t(params, jnp.asarray(X.T), y, s, 0.2)
    eps = float(np.finfo(dtype).eps)
    assert abs(float(J) - float(J_ref)) <= 256 * eps * abs(float(J_ref))
    for leaf, ref in zip(g, g_ref, strict=True):  # sums of 203 terms of size about 1
        assert leaf.shape == ref.shape
        np.testing.assert_allclose(leaf, ref, rtol=0, atol=256 * eps * np.sqrt(203))


@pytest.mark.parametrize("k", [2, 3])
def test_refuses_x_params_and_labels_it_does_not_take(k):
    with jax.enable_x64(True):
        params, X, y, s = _problem(k=k)
        call = native.native_rows_value_and_grad
        with pytest.raises(ValueError, match=r"X must be \(m, n\) = \(examples, 5\) of dtype "
                                             r"float64 .* got shape \(23, 5\) and dtype float32"):
            call(params, X.astype(np.float32), y, s, 0.0)
        with pytest.raises(ValueError, match=r"X must be .* got shape \(5, 23\)"):
            call(params, X.T, y, s, 0.0)  # features-major X
        with pytest.raises(ValueError, match=r"X must be .* got shape \(23,\)"):
            call(params, X[:, 0], y, s, 0.0)
        with pytest.raises(ValueError, match=r"y must be \(23,\) and s \(23,\) or \(\), got y "
                                             r"of shape \(22,\)"):
            call(params, X, y[:-1], s, 0.0)
        with pytest.raises(ValueError, match=r"got y of shape \(23,\) and s of shape \(3,\)"):
            call(params, X, y, s[:3], 0.0)
        with pytest.raises(ValueError, match="float32 or float64 parameters .* got w of dtype "
                                             "bfloat16"):
            call(Params(params.w.astype(jnp.bfloat16), params.b), X, y, s, 0.0)
        with pytest.raises(ValueError, match=r"w \(n,\), b \(\) \(binary\) or w \(n, K\), b "
                                             r"\(K,\) \(softmax\), got w of shape"):
            call(Params(params.w, jnp.zeros((9,))), X, y, s, 0.0)


def test_softmax_labels_must_be_class_indices_within_range():
    with jax.enable_x64(True):
        params, X, y, s = _problem(k=3)
        call = jax.jit(native.native_rows_value_and_grad)
        with pytest.raises(ValueError, match="y must hold class indices .* got dtype float64"):
            call(params, X, y.astype(jnp.float64), s, 0.0)
        for bad in (3, -1, 2**32 + 1):  # 2**32 + 1 would wrap to 1 as int32
            labels = np.asarray(y, np.int64)
            labels[7] = bad
            labels = jnp.asarray(labels)
            assert labels.dtype == jnp.int64 and int(labels[7]) == bad
            with pytest.raises(jax.errors.JaxRuntimeError, match=r"class index outside \[0, 3\)"):
                jax.block_until_ready(call(params, X, labels, s, 0.0))
        J, _ = call(params, X, y, s, 0.0)  # the kernel still runs after refusing
        assert np.isfinite(float(J))


def test_the_handler_itself_refuses_shapes_that_do_not_agree():
    """Called without the wrapper's checks: an error naming the expected shapes, no crash."""
    params, X, y, s = _problem(dtype="float32")
    X = jnp.asarray(X)
    out = (jax.ShapeDtypeStruct((), jnp.float32), jax.ShapeDtypeStruct((5,), jnp.float32),
           jax.ShapeDtypeStruct((), jnp.float32))
    call = jax.ffi.ffi_call(native.ROWS_TARGETS["float32"], out)
    message = r"expected X \(m, n\), y \(m,\), s \(m,\) or \(\)"
    with pytest.raises(jax.errors.JaxRuntimeError, match=message):
        jax.block_until_ready(call(X, y[:-1], s, params.w, params.b))  # y too short
    with pytest.raises(jax.errors.JaxRuntimeError, match=message):
        jax.block_until_ready(call(X.T, y, s, params.w, params.b))  # Xt, not X
    with pytest.raises(jax.errors.JaxRuntimeError, match=message):
        jax.block_until_ready(call(X, y.astype(jnp.int32), s, params.w, params.b))
    with pytest.raises(jax.errors.JaxRuntimeError, match=message):
        jax.block_until_ready(call(X, y, s, params.w, params.b, params.b))  # six inputs


def test_the_rule_takes_softmax_up_to_its_bound(monkeypatch):
    monkeypatch.setattr(native, "available", lambda: True)  # the rule, not the build
    m = native.MIN_ELEMENTS // 64
    assert native.supports(64, m, 2, "float32") and native.supports(64, m, 3, "float64")
    assert native.supports(64, m, native.MAX_CLASSES, "float32")
    assert not native.supports(64, m, native.MAX_CLASSES + 1, "float32")
