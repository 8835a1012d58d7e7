"""check_gradients: its result, that it catches wrong gradients, and its argument checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg.core import gradcheck
from jaxlogreg.core.gradcheck import GradientCheck, max_relative_error

M, N = 23, 4  # the shared test shape: compiled programs are reused across tests


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20)
    X = rng.normal(size=(M, N))
    return X, rng.integers(0, 2, size=M), rng.integers(0, 3, size=M), rng.uniform(0.2, 2, M)


# --- the result ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "autodiff_tol", "fd_tol"), [("float64", 1e-12, 1e-7), ("float32", 1e-5, 5e-3)]
)
def test_returns_gradient_check(data, dtype, autodiff_tol, fd_tol):
    X, y, _, sw = data
    result = jl.check_gradients(X, y, sample_weight=sw, l2=0.1, dtype=dtype)
    assert isinstance(result, GradientCheck)
    assert result.dtype == dtype
    assert isinstance(result.autodiff_rel_error, float)
    assert isinstance(result.finite_diff_rel_error, float)
    assert result.n_coords_checked == N + 1  # every coordinate of (w, b)
    assert 0.0 <= result.autodiff_rel_error <= autodiff_tol
    assert 0.0 <= result.finite_diff_rel_error <= fd_tol
    assert not jax.config.jax_enable_x64  # x64 was enabled only inside the call


def test_params_decide_the_number_of_classes(data):
    X, _, y3, sw = data
    params = jl.Params(jnp.full((N, 3), 0.1), jnp.asarray([0.0, 0.5, -0.5]))
    result = jl.check_gradients(X, y3, params=params, sample_weight=sw, l2=0.3, n_classes=2)
    assert result.n_coords_checked == (N + 1) * 3
    assert result.autodiff_rel_error <= 1e-12
    assert result.finite_diff_rel_error <= 1e-7


def test_same_seed_same_result(data):
    X, y, _, _ = data
    first = jl.check_gradients(X, y, seed=7, max_coords=3)
    again = jl.check_gradients(X, y, seed=7, max_coords=3)
    assert first == again
    assert first.n_coords_checked == 3  # a sample of the N + 1 coordinates


def test_float32_inside_an_x64_context_keeps_the_callers_setting(data):
    X, y, _, _ = data
    with jax.enable_x64(True):
        result = jl.check_gradients(X, y, dtype="float32")
        assert jax.config.jax_enable_x64
    assert result.dtype == "float32"
    assert result.autodiff_rel_error <= 1e-5


def test_dtype_may_be_a_numpy_dtype(data):
    X, y, _, _ = data
    result = jl.check_gradients(X, y, dtype=np.dtype("float64"), max_coords=2)
    assert result.dtype == "float64"
    assert result.finite_diff_rel_error <= 1e-7


# --- it can fail --------------------------------------------------------------------------------


# check_gradients compares the module's hand-written gradient; swap in broken ones.
_ORIGINAL = gradcheck.value_and_backward_t


def _backward_without_l2(params, Xt, y, sample_weight=None, l2=0.0):
    return _ORIGINAL(params, Xt, y, sample_weight, 0.0)


def _backward_with_wrong_intercept(params, Xt, y, sample_weight=None, l2=0.0):
    J, g = _ORIGINAL(params, Xt, y, sample_weight, l2)
    return J, g._replace(b=g.b + 0.05)


@pytest.mark.parametrize(
    ("broken", "max_coords"),
    [
        (_backward_without_l2, 256),
        (_backward_with_wrong_intercept, 1),  # a sample of one coordinate is the intercept
    ],
)
def test_detects_a_wrong_gradient(monkeypatch, data, broken, max_coords):
    X, y, _, _ = data
    monkeypatch.setattr(gradcheck, "value_and_backward_t", broken)
    result = jl.check_gradients(X, y, l2=0.5, max_coords=max_coords)
    assert result.n_coords_checked == min(max_coords, N + 1)
    assert result.autodiff_rel_error > 1e-2
    assert result.finite_diff_rel_error > 1e-2


# --- max_relative_error ---------------------------------------------------------------------------


def test_max_relative_error():
    ref = jl.Params(jnp.asarray([1.0, -2.5]), jnp.asarray(0.5))
    assert max_relative_error(ref, ref) == 0.0
    off = jl.Params(jnp.asarray([1.0, -2.5]), jnp.asarray(1.0))
    assert max_relative_error(off, ref) == pytest.approx(0.5 / 2.5)
    zero = jax.tree.map(jnp.zeros_like, ref)
    assert max_relative_error(off, zero) == pytest.approx(2.5)  # absolute when ref is 0
    assert max_relative_error((np.array([3.0]), 1.0), (np.array([2.0]), 1.0)) == pytest.approx(0.5)


# --- argument checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"dtype": "float16"},
            ValueError,
            r"dtype must be one of \['float32', 'float64'\], got 'float16'",
        ),
        ({"dtype": "int32"}, ValueError, r"dtype must be one of .*got 'int32'"),
        ({"dtype": None}, ValueError, r"dtype must be one of .*got None"),
        ({"eps": 0.0}, ValueError, r"eps must be a finite real number > 0, got 0.0"),
        ({"eps": -1e-6}, ValueError, r"eps must be .*> 0, got -1e-06"),
        ({"eps": float("nan")}, ValueError, r"eps must be .*got nan"),
        ({"eps": float("inf")}, ValueError, r"eps must be .*got inf"),
        ({"eps": "1e-6"}, ValueError, r"eps must be .*got '1e-6'"),
        ({"max_coords": 0}, ValueError, r"max_coords must be an integer >= 1, got 0"),
        ({"max_coords": 2.5}, ValueError, r"max_coords must be an integer >= 1, got 2.5"),
        ({"max_coords": True}, ValueError, r"max_coords must be an integer >= 1, got True"),
        ({"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
        ({"n_classes": 1}, ValueError, r"n_classes must be an integer >= 2, got 1"),
        ({"n_classes": 2.0}, ValueError, r"n_classes must be an integer >= 2, got 2.0"),
    ],
)
def test_bad_arguments(data, kwargs, error, match):
    X, y, _, _ = data
    with pytest.raises(error, match=match):
        jl.check_gradients(X, y, **kwargs)
