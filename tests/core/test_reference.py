"""The lectures' reference algorithms, the course's published numbers, the library against both."""

from __future__ import annotations

import hashlib
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg.core import reference
from jaxlogreg.core.gradcheck import max_relative_error

M, N = 23, 4  # the shared test shape: compiled programs are reused across tests

# jitted once per shape; float64 throughout this file (inside `with jax.enable_x64(True):`)
objective_jit = jax.jit(jl.objective)
backward_jit = jax.jit(jl.backward)


def params64(w, b) -> jl.Params:
    return jl.Params(jnp.asarray(w, jnp.float64), jnp.asarray(b, jnp.float64))


# --- lecture 2.9: one example, two features -----------------------------------------------------

SINGLE_CASES = [
    # x1, x2, y, w1, w2, b, alpha
    (1.0, 2.0, 1, 0.5, -0.3, 0.1, 0.1),
    (1.0, 2.0, 0, 0.5, -0.3, 0.1, 0.1),
    (-3.0, 0.5, 1, 2.0, 1.0, -1.0, 0.01),
    (0.2, -0.7, 0, -4.0, 3.0, 2.5, 1.0),
    (10.0, 5.0, 0, 0.3, 0.4, 0.0, 0.05),  # z = 5: a close to 1, wrong label
]


@pytest.mark.parametrize(("x1", "x2", "y", "w1", "w2", "b", "alpha"), SINGLE_CASES)
def test_single_example_step_chain_rule(x1, x2, y, w1, w2, b, alpha):
    s = reference.single_example_step(x1, x2, y, w1, w2, b, alpha)
    z = w1 * x1 + w2 * x2 + b
    assert s.z == pytest.approx(z, rel=1e-15)
    assert s.a == pytest.approx(1.0 / (1.0 + math.exp(-z)), rel=1e-15)
    assert s.loss == pytest.approx(np.logaddexp(0.0, -z if y == 1 else z), rel=1e-12)
    assert s.da == pytest.approx(-y / s.a + (1 - y) / (1 - s.a), rel=1e-15)
    # σ'(z) = a(1 - a) cancels the division in da:  da · a(1 - a) = a - y
    assert s.da * s.a * (1 - s.a) == pytest.approx(s.a - y, rel=1e-12)
    assert s.dz == pytest.approx(s.a - y, rel=1e-12)
    assert (s.dw1, s.dw2, s.db) == pytest.approx((x1 * s.dz, x2 * s.dz, s.dz), rel=1e-15)
    assert (s.w1, s.w2, s.b) == pytest.approx(
        (w1 - alpha * s.dw1, w2 - alpha * s.dw2, b - alpha * s.db), rel=1e-15, abs=1e-15
    )


@pytest.mark.parametrize(("x1", "x2", "y", "w1", "w2", "b", "alpha"), SINGLE_CASES)
def test_single_example_step_equals_library(x1, x2, y, w1, w2, b, alpha):
    s = reference.single_example_step(x1, x2, y, w1, w2, b, alpha)
    with jax.enable_x64(True):
        params = params64([w1, w2], b)
        X, Y = np.array([[x1, x2]]), np.array([y])
        J = float(objective_jit(params, X, Y, None, 0.0))
        g = backward_jit(params, X, Y, None, 0.0)
        updated = jax.tree.map(lambda p, d: p - alpha * d, params, g)
        J_after = float(objective_jit(updated, X, Y, None, 0.0))
    assert J == pytest.approx(s.loss, rel=1e-12)
    np.testing.assert_allclose(np.asarray(g.w), [s.dw1, s.dw2], rtol=1e-12)
    assert float(g.b) == pytest.approx(s.db, rel=1e-12)
    np.testing.assert_allclose(np.asarray(updated.w), [s.w1, s.w2], rtol=1e-14)
    assert float(updated.b) == pytest.approx(s.b, rel=1e-14, abs=1e-15)
    assert J_after < J  # one small step downhill


def test_reference_sigmoid_is_stable_and_symmetric():
    assert reference.sigmoid(0.0) == 0.5
    assert reference.sigmoid(-1000.0) == 0.0
    assert reference.sigmoid(1000.0) == 1.0
    for z in (-30.0, -2.5, 0.1, 7.0, 36.0):
        assert reference.sigmoid(-z) == pytest.approx(1.0 - reference.sigmoid(z), abs=2.3e-16)
        assert reference.sigmoid(z) == pytest.approx(0.5 * (1 + math.tanh(z / 2)), rel=1e-15)


# --- lectures 2.10-2.14: loop == vectorized == library ---------------------------------------------


@pytest.mark.parametrize(("m", "n"), [(1, 1), (7, 3), (M, N)])
@pytest.mark.parametrize("seed", [0, 1])
def test_loop_vectorized_and_library_agree(m, n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = rng.integers(0, 2, size=m)
    w, b = rng.normal(size=n), 0.3
    J_loop, dw_loop, db_loop = reference.loop_gradients(X, y, w, b)
    J_vec, dw_vec, db_vec = reference.vectorized_gradients(X, y, w, b)
    with jax.enable_x64(True):
        params = params64(w, b)
        J_lib = float(objective_jit(params, X, y, None, 0.0))
        g = backward_jit(params, X, y, None, 0.0)
        g_lib = (np.asarray(g.w), float(g.b))
    assert J_loop == pytest.approx(J_vec, rel=1e-14)
    # the lectures' log(1 - a) is itself off by a few ulps near a = 1; softplus is not
    assert J_lib == pytest.approx(J_vec, rel=5e-14)
    assert max_relative_error((dw_loop, db_loop), (dw_vec, db_vec)) <= 1e-14
    assert max_relative_error(g_lib, (dw_vec, db_vec)) <= 1e-14


# --- the course's published values ---------------------------------------------------------------
# From its assignment "Logistic Regression with a Neural Network mindset". Its X is
# features-major (n, m); ours is its transpose.

COURSE_X = np.array([[1.0, 2.0, -1.0], [3.0, 4.0, -3.2]]).T
COURSE_Y = np.array([1, 0, 1])


def test_course_propagate_values():
    """propagate(w=[1, 2], b=2) prints cost 5.801545319394553, dw [0.99845601, 2.39507239],
    db 0.00145557813678."""
    w, b = np.array([1.0, 2.0]), 2.0
    for J, dw, db in (
        reference.loop_gradients(COURSE_X, COURSE_Y, w, b),
        reference.vectorized_gradients(COURSE_X, COURSE_Y, w, b),
    ):
        assert J == pytest.approx(5.801545319394553, rel=1e-13)
        np.testing.assert_allclose(dw, [0.99845601, 2.39507239], atol=5e-9)
        assert db == pytest.approx(0.00145557813678, abs=5e-15)
    with jax.enable_x64(True):
        params = params64(w, b)
        J = float(objective_jit(params, COURSE_X, COURSE_Y, None, 0.0))
        g = backward_jit(params, COURSE_X, COURSE_Y, None, 0.0)
    assert J == pytest.approx(5.801545319394553, rel=1e-13)
    np.testing.assert_allclose(np.asarray(g.w), [0.99845601, 2.39507239], atol=5e-9)
    assert float(g.b) == pytest.approx(0.00145557813678, abs=5e-15)


def test_course_optimize_values():
    """optimize(w=[1, 2], b=2, 100 iterations, lr 0.009): the course's printed w, b, dw, db."""
    lr = 0.009
    with jax.enable_x64(True):
        params = params64([1.0, 2.0], 2.0)
        for _ in range(100):
            g = backward_jit(params, COURSE_X, COURSE_Y, None, 0.0)
            params = jax.tree.map(lambda p, d: p - lr * d, params, g)
    np.testing.assert_allclose(np.asarray(params.w), [0.19033591, 0.12259159], atol=5e-9)
    assert float(params.b) == pytest.approx(1.92535983008, abs=5e-12)
    np.testing.assert_allclose(np.asarray(g.w), [0.67752042, 1.41625495], atol=5e-9)
    assert float(g.b) == pytest.approx(0.219194504541, abs=5e-12)


def test_course_predict_values():
    """predict(w=[0.1124579, 0.23106775], b=-0.3) on the course's X gives [1, 1, 0]."""
    X = np.array([[1.0, -1.1, -3.2], [1.2, 2.0, 0.1]]).T
    params = jl.Params(jnp.asarray([0.1124579, 0.23106775]), jnp.asarray(-0.3))
    np.testing.assert_array_equal(np.asarray(jl.predict(params, X)), [1, 1, 0])


# --- gradient descent ---------------------------------------------------------------------------


def test_reference_gradient_descent_equals_manual_steps_with_backward():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(M, N))
    y = (X @ rng.normal(size=N) + 0.5 * rng.normal(size=M) > 0).astype(np.int64)
    lr, steps = 0.5, 6
    w_ref, b_ref, costs = reference.gradient_descent(X, y, lr, steps)
    assert len(costs) == steps
    assert costs[0] == pytest.approx(math.log(2.0), rel=1e-15)
    assert all(later < earlier for earlier, later in itertools.pairwise(costs))
    with jax.enable_x64(True):
        params = jl.init_params(N, dtype=jnp.float64)
        manual_costs = []
        for _ in range(steps):
            manual_costs.append(float(objective_jit(params, X, y, None, 0.0)))
            g = backward_jit(params, X, y, None, 0.0)
            params = jax.tree.map(lambda p, d: p - lr * d, params, g)
    np.testing.assert_allclose(manual_costs, costs, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(params.w), w_ref, rtol=1e-13)
    assert float(params.b) == pytest.approx(b_ref, rel=1e-13)


# --- the course's data ------------------------------------------------------------------------

CATVNONCAT_SHA256 = {
    "train_catvnoncat.h5": "fbe56ab67c3ae28d564e3a644189117976d6b31af0a3ce9bb17dbf22908af242",
    "test_catvnoncat.h5": "6a9d39ce52fa85953c5834695b8534a30ed8cfd54971fb2f080b5a24d002b951",
}


def test_catvnoncat_files_and_flattening(catvnoncat_dir, catvnoncat):
    for name, digest in CATVNONCAT_SHA256.items():
        assert hashlib.sha256((catvnoncat_dir / name).read_bytes()).hexdigest() == digest, name
    assert catvnoncat.train_raw.shape == (209, 12288)
    assert catvnoncat.test_raw.shape == (50, 12288)
    assert tuple(catvnoncat.train_raw[0, :5]) == (17, 31, 56, 22, 33)  # EXPECTED.md
    assert catvnoncat.X_train.dtype == np.float64
    assert 0.0 <= catvnoncat.X_train.min() and catvnoncat.X_train.max() <= 1.0
    np.testing.assert_array_equal(catvnoncat.X_train * 255.0, catvnoncat.train_raw)
    assert set(np.unique(catvnoncat.y_train)) == {0, 1}
    assert set(np.unique(catvnoncat.y_test)) <= {0, 1}


def test_catvnoncat_published_costs(catvnoncat):
    """The course's GD (w = b = 0, lr 0.005) prints J = 0.693147 at step 0 and 0.584508 at 100."""
    X, y = catvnoncat.X_train, catvnoncat.y_train
    w_100, b_100, costs = reference.gradient_descent(X, y, 0.005, 100)
    J_100, dw_100, db_100 = reference.vectorized_gradients(X, y, w_100, b_100)
    assert round(costs[0], 6) == 0.693147
    assert round(J_100, 6) == 0.584508
    with jax.enable_x64(True):  # the library at the same point: same J and gradient
        params = params64(w_100, b_100)
        J_lib = float(objective_jit(params, X, y, None, 0.0))
        g = backward_jit(params, X, y, None, 0.0)
        g_lib = (np.asarray(g.w), float(g.b))
    assert J_lib == pytest.approx(J_100, rel=1e-13)
    assert max_relative_error(g_lib, (dw_100, db_100)) <= 1e-13
