"""The model: Params, zero init, logits z = Xw + b, probabilities and class predictions."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg as jl

M, N = 23, 4  # the shared test shape: compiled programs are reused across tests
DTYPES = ["float32", "float64"]


def x64(dtype):
    return jax.enable_x64(np.dtype(dtype) == np.float64)


# --- Params and init ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_classes", "w_shape", "b_shape"), [(2, (N,), ()), (3, (N, 3), (3,)), (5, (N, 5), (5,))]
)
def test_init_params_shapes_and_zeros(n_classes, w_shape, b_shape):
    params = jl.init_params(N, n_classes)
    assert isinstance(params, jl.Params)
    assert params.w.shape == w_shape and params.b.shape == b_shape
    assert params.w.dtype == params.b.dtype == jnp.float32
    assert not np.asarray(params.w).any() and not np.asarray(params.b).any()


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", "float32"),
        ("float64", "float64"),
        ("float16", "float32"),
        ("bfloat16", "float32"),
    ],
)
def test_init_params_dtype(dtype, expected):
    """16-bit requests accumulate in float32; float64 needs x64 (enabled locally here)."""
    with jax.enable_x64(True):
        params = jl.init_params(N, dtype=dtype)
    assert params.w.dtype == params.b.dtype == np.dtype(expected)


def test_params_is_a_pytree_matching_jax_grad():
    params = jl.init_params(N, 3)
    assert len(jax.tree.leaves(params)) == 2
    doubled = jax.tree.map(lambda p: p + 2.0, params)
    assert isinstance(doubled, jl.Params)
    X = np.ones((M, N), np.float32)
    grads = jax.grad(lambda p: jnp.sum(jl.logits(p, X)))(params)
    assert isinstance(grads, jl.Params)
    np.testing.assert_allclose(grads.w, np.full((N, 3), M))
    np.testing.assert_allclose(grads.b, np.full(3, M))


# --- forward pass -----------------------------------------------------------------------------------

logits_jit = jax.jit(jl.logits)
proba_jit = jax.jit(jl.predict_proba)
predict_jit = jax.jit(jl.predict)


def _problem(n_classes, dtype, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(M, N)).astype(dtype)
    w_shape = (N,) if n_classes == 2 else (N, n_classes)
    w = (scale * rng.normal(size=w_shape)).astype(dtype)
    b = np.asarray(scale * rng.normal(size=w_shape[1:]), dtype)
    return X, w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_logits_and_probabilities_match_numpy(dtype, n_classes):
    X, w, b = _problem(n_classes, dtype)
    with x64(dtype):
        params = jl.Params(jnp.asarray(w), jnp.asarray(b))
        z = np.asarray(logits_jit(params, X))
        a = np.asarray(proba_jit(params, X))
        labels = np.asarray(predict_jit(params, X))
    z_ref = X.astype(np.float64) @ w + b
    rtol = 1e-5 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(z, z_ref, rtol=rtol, atol=rtol)
    assert labels.dtype == np.int32
    if n_classes == 2:
        assert z.shape == a.shape == labels.shape == (M,)
        np.testing.assert_allclose(a, 0.5 * (1 + np.tanh(0.5 * z_ref)), rtol=rtol, atol=rtol)
        np.testing.assert_array_equal(labels, (z_ref > 0).astype(np.int32))
        np.testing.assert_array_equal(labels, (a > 0.5).astype(np.int32))
    else:
        assert z.shape == a.shape == (M, n_classes) and labels.shape == (M,)
        e = np.exp(z_ref - z_ref.max(axis=1, keepdims=True))
        np.testing.assert_allclose(a, e / e.sum(axis=1, keepdims=True), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=rtol)
        np.testing.assert_array_equal(labels, z_ref.argmax(axis=1))


def test_eager_forward_equals_jitted():
    X, w, b = _problem(2, "float32", seed=1)
    params = jl.Params(jnp.asarray(w), jnp.asarray(b))
    np.testing.assert_allclose(jl.logits(params, X), logits_jit(params, X), rtol=1e-6)
    np.testing.assert_allclose(jl.predict_proba(params, X), proba_jit(params, X), rtol=1e-6)
    np.testing.assert_array_equal(jl.predict(params, X), predict_jit(params, X))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_probabilities_at_extreme_logits(dtype, n_classes):
    """|z| ~ 1e4: probabilities stay finite in [0, 1] (rows sum to 1) and predictions follow z."""
    X, w, b = _problem(n_classes, dtype, seed=2, scale=3e3)
    with x64(dtype):
        params = jl.Params(jnp.asarray(w), jnp.asarray(b))
        z = np.asarray(logits_jit(params, X), np.float64)
        a = np.asarray(proba_jit(params, X), np.float64)
        labels = np.asarray(predict_jit(params, X))
    assert np.abs(z).max() > 1e3
    assert np.isfinite(a).all() and (a >= 0).all() and (a <= 1).all()
    if n_classes == 2:
        np.testing.assert_array_equal(labels, (z > 0).astype(np.int32))
        assert set(np.round(a[np.abs(z) > 100])) <= {0.0, 1.0}
    else:
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(labels, z.argmax(axis=1))


def test_predict_threshold_is_strictly_positive_logit():
    """a > 0.5 means z > 0: z = 0 exactly predicts class 0."""
    params = jl.Params(jnp.asarray([1.0]), jnp.asarray(0.0))
    X = np.array([[-1e-3], [0.0], [1e-3]], np.float32)
    np.testing.assert_array_equal(jl.predict(params, X), [0, 0, 1])


def test_16bit_inputs_are_computed_in_float32():
    X, w, b = _problem(2, "float32", seed=3)
    params = jl.Params(jnp.asarray(w), jnp.asarray(b))
    for low in (jnp.float16, jnp.bfloat16):
        z = logits_jit(params, jnp.asarray(X, low))
        assert z.dtype == jnp.float32
        z_ref = np.asarray(jnp.asarray(X, low), np.float64) @ w + b
        np.testing.assert_allclose(z, z_ref, rtol=1e-5, atol=1e-5)


def test_inputs_may_be_lists():
    params = jl.Params(jnp.asarray([1.0, -2.0]), jnp.asarray(0.5))
    np.testing.assert_allclose(jl.logits(params, [[1.0, 1.0], [0.0, -1.0]]), [-0.5, 2.5])


# --- float64 parameters -------------------------------------------------------------------------


def _reference(X, w, b, y, l2):
    """z, a, J and (dw, db) of the objective in float64 NumPy (the mean loss + λ/2 ||w||²)."""
    z = X @ w + b
    m = X.shape[0]
    if w.ndim == 1:
        a = 1 / (1 + np.exp(-z))
        J = np.mean(np.logaddexp(0, z) - y * z)
        dz = (a - y) / m
    else:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        a = e / e.sum(axis=1, keepdims=True)
        J = np.mean(np.log(e.sum(axis=1)) + z.max(axis=1) - z[np.arange(m), y])
        dz = (a - np.eye(w.shape[1])[y]) / m
    return z, a, J + 0.5 * l2 * np.sum(w * w), (X.T @ dz + l2 * w, dz.sum(axis=0))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_classes", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_float64_params_compute_in_float64_with_x64_only_inside_the_call(n_classes, sparse):
    """NumPy float64 parameters (what jaxlogreg.fit returns for float64 data) give float64
    results equal to a float64 reference (float32 would be ~1e-7 off), without the "truncated
    to float32" warning, and x64 is off again after each call."""
    X, w, b = _problem(n_classes, "float64", seed=4)
    y = np.random.default_rng(4).integers(0, n_classes, M)
    params, l2 = jl.Params(w, np.asarray(b)), 0.1
    Xin = sp.csr_array(X) if sparse else X
    z_ref, a_ref, J_ref, (dw_ref, db_ref) = _reference(X, w, b, y, l2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the truncation warning fails the test
        results = {
            "logits": (jl.logits(params, Xin), z_ref),
            "predict_proba": (jl.predict_proba(params, Xin), a_ref),
            "objective": (jl.objective(params, Xin, y, l2=l2), J_ref),
            "backward.w": (jl.backward(params, Xin, y, l2=l2).w, dw_ref),
            "backward.b": (jl.backward(params, Xin, y, l2=l2).b, db_ref),
        }
        labels = jl.predict(params, Xin)
        check = jl.check_gradients(Xin, y, params, l2=l2)
    assert not jax.config.jax_enable_x64
    tol = 1e4 * np.finfo(np.float64).eps
    for name, (got, want) in results.items():
        assert got.dtype == jnp.float64, name
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)
    want_labels = (z_ref > 0) if n_classes == 2 else z_ref.argmax(axis=1)
    np.testing.assert_array_equal(labels, want_labels.astype(np.int32))
    assert check.dtype == "float64" and check.autodiff_rel_error <= tol


def test_float32_params_stay_float32_and_x64_set_by_the_caller_stays_on():
    X, w, b = _problem(2, "float32", seed=5)
    params = jl.Params(jnp.asarray(w), jnp.asarray(b))
    assert jl.logits(params, X).dtype == jnp.float32
    with jax.enable_x64(True):
        assert jl.logits(jl.Params(w.astype(np.float64), np.float64(b)), X).dtype == jnp.float64
        assert jax.config.jax_enable_x64  # the call did not switch it off
