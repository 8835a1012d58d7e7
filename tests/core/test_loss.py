"""Losses from logits and the objective J: values against float64 NumPy, stability at |z| ~ 1e4."""

from __future__ import annotations

import doctest
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxlogreg as jl
import jaxlogreg.core.loss

DTYPES = ["float32", "float64"]
# jitted once per shape/dtype: XLA compiles one program instead of one per eager primitive.
# Shape and dtype checks still run at trace time; value checks are in test_validation.py.
objective_jit = jax.jit(jl.objective)
backward_jit = jax.jit(jl.backward)
bce_jit = jax.jit(jl.binary_cross_entropy)
softmax_ce_jit = jax.jit(jl.softmax_cross_entropy, static_argnames="axis")
# relative tolerance of a float32/float64 loss value against the float64 reference
LOSS_RTOL = {"float32": 2e-6, "float64": 1e-14}
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


def x64(dtype):
    return jax.enable_x64(dtype == "float64")


def bce_ref(z, y):
    """float64 reference: -(y log σ(z) + (1-y) log(1-σ(z))) = log(1 + e^{±z})."""
    z = np.asarray(z, np.float64)
    return np.logaddexp(0.0, np.where(np.asarray(y) == 1, -z, z))


def softmax_ce_ref(z, y):
    """float64 reference: logsumexp(z) - z[y] over the last axis, max-shifted."""
    z = np.asarray(z, np.float64)
    zmax = z.max(axis=-1, keepdims=True)
    lse = (zmax + np.log(np.exp(z - zmax).sum(axis=-1, keepdims=True)))[..., 0]
    return lse - np.take_along_axis(z, np.asarray(y)[..., None], axis=-1)[..., 0]


# --- binary cross-entropy ---------------------------------------------------------------------

BCE_CASES = [
    # (z, y, exact value)
    (1e4, 0, 1e4),
    (1e4, 1, 0.0),
    (-1e4, 1, 1e4),
    (-1e4, 0, 0.0),
    (-30.0, 1, 30.0 + math.log1p(math.exp(-30.0))),
    (30.0, 0, 30.0 + math.log1p(math.exp(-30.0))),
    (0.0, 0, math.log(2.0)),
    (0.0, 1, math.log(2.0)),
    (20.0, 1, math.log1p(math.exp(-20.0))),  # float32 σ(20) == 1.0: log(σ) would give 0
    (-40.0, 0, math.log1p(math.exp(-40.0))),  # ~4.2e-18, representable in float32
    (88.0, 0, 88.0 + math.log1p(math.exp(-88.0))),  # exp(89) overflows float32
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("z", "y", "expected"), BCE_CASES)
def test_bce_exact_values_at_extremes(dtype, z, y, expected):
    with x64(dtype):
        out = jl.binary_cross_entropy(jnp.asarray([z], dtype), jnp.asarray([y]))
        assert out.dtype == jnp.dtype(dtype)
        value = float(out[0])
    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=LOSS_RTOL[dtype], abs=0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_grid_finite_nonnegative_and_matches_logaddexp(dtype):
    mags = np.logspace(-4, 4, 161)
    z = np.concatenate([-mags[::-1], [0.0], mags]).astype(dtype)
    z = np.concatenate([z, z])
    y = np.repeat([0, 1], z.size // 2)
    with x64(dtype):
        out = np.asarray(bce_jit(jnp.asarray(z), jnp.asarray(y)))
    assert np.isfinite(out).all()
    assert (out >= 0).all()
    # below the smallest normal number XLA flushes to zero
    tiny = float(np.finfo(dtype).tiny)
    np.testing.assert_allclose(out, bce_ref(z, y), rtol=LOSS_RTOL[dtype], atol=tiny)


def test_bce_equals_lecture_formula_for_moderate_logits():
    z = np.linspace(-20, 20, 81)
    with jax.enable_x64(True):
        for label in (0, 1):
            y = np.full_like(z, label)
            a = 1 / (1 + np.exp(-z))
            lecture = -(y * np.log(a) + (1 - y) * np.log(1 - a))
            out = np.asarray(jl.binary_cross_entropy(jnp.asarray(z), jnp.asarray(y)))
            # the literal formula itself loses ~1e-8 relative in log(1 - a) as a -> 1
            np.testing.assert_allclose(out, lecture, rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_derivative_is_sigmoid_minus_y(dtype):
    """d L / d z = σ(z) - y (jaxopt's loss test), finite up to |z| = 1e4."""
    z = np.array([-1e4, -40.0, -5.0, -1.2, 0.0, 1.2, 5.0, 40.0, 1e4] * 2, dtype)
    y = np.repeat([0, 1], 9)
    with x64(dtype):
        dz = jax.jit(jax.vmap(jax.grad(jl.binary_cross_entropy)))(jnp.asarray(z), jnp.asarray(y))
        dz = np.asarray(dz, np.float64)
    expected = 0.5 * (1 + np.tanh(0.5 * z.astype(np.float64))) - y  # σ(z) - y, exact in f64
    assert np.isfinite(dz).all()
    np.testing.assert_allclose(dz, expected, rtol=4 * EPS[dtype], atol=4 * EPS[dtype])


def test_bce_accepts_bool_and_integer_labels():
    z = jnp.asarray([-2.0, 0.5, 3.0])
    y_int = jnp.asarray([0, 1, 1])
    ref = bce_ref(z, y_int)
    for y in (y_int, y_int.astype(bool), y_int.astype(jnp.float32)):
        np.testing.assert_allclose(jl.binary_cross_entropy(z, y), ref, rtol=1e-6)


LOGITS = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@given(z=LOGITS, y=st.integers(0, 1), dtype=st.sampled_from(DTYPES))
def test_property_bce(z, y, dtype):
    with x64(dtype):
        out = float(bce_jit(jnp.asarray([z], dtype), jnp.asarray([y]))[0])
    ref = float(bce_ref(np.float64(np.asarray(z, dtype)), y))  # at the z the dtype can hold
    assert math.isfinite(out)
    assert out >= 0
    assert out == pytest.approx(ref, rel=LOSS_RTOL[dtype], abs=float(np.finfo(dtype).tiny))


@given(
    z=st.lists(LOGITS, min_size=2, max_size=5),
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
)
def test_property_softmax_ce(z, data, dtype):
    y = data.draw(st.integers(0, len(z) - 1), label="y")
    z = np.asarray(z, dtype)
    with x64(dtype):
        out = float(softmax_ce_jit(jnp.asarray(z[None]), jnp.asarray([y]))[0])
    ref = float(softmax_ce_ref(z[None], [y])[0])
    assert math.isfinite(out)
    tol = 2 * LOSS_RTOL[dtype] * ref + 8 * EPS[dtype] * max(1.0, float(np.abs(z).max()))
    assert out >= -tol
    assert abs(out - ref) <= tol


# --- softmax cross-entropy --------------------------------------------------------------------

SOFTMAX_CASES = [
    # (logits, label, exact value)
    ([1e4, 0.0, -1e4], 0, 0.0),
    ([1e4, 0.0, -1e4], 1, 1e4),
    ([1e4, 0.0, -1e4], 2, 2e4),
    ([0.0, 0.0, 0.0], 1, math.log(3.0)),
    ([-30.0, 0.0], 0, 30.0 + math.log1p(math.exp(-30.0))),
    ([-1e4, -1e4, -1e4, -1e4, -1e4], 3, math.log(5.0)),  # shift invariance at the extreme
    ([1e4, 1e4], 0, math.log(2.0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("z", "y", "expected"), SOFTMAX_CASES)
def test_softmax_ce_exact_values_at_extremes(dtype, z, y, expected):
    with x64(dtype):
        out = softmax_ce_jit(jnp.asarray([z], dtype), jnp.asarray([y]))
        value = float(out[0])
    assert math.isfinite(value)
    # logsumexp(z) - z_y cancels |z| ~ 1e4 when the true class wins: a few ulps of 1e4 remain
    atol = 4 * EPS[dtype] * max(abs(v) for v in z)
    assert value == pytest.approx(expected, rel=LOSS_RTOL[dtype], abs=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_softmax_ce_random_logits(dtype, n_classes):
    """Rows with |z| of order 1, 1e2 and 1e4: finite, >= 0, equal to the reference, shift-free."""
    rng = np.random.default_rng(n_classes)
    scale = np.repeat([1.0, 1e2, 1e4], 32)[:, None]
    z = (scale * rng.normal(size=(96, n_classes))).astype(dtype)
    y = rng.integers(0, n_classes, size=96)
    with x64(dtype):
        out = np.asarray(softmax_ce_jit(jnp.asarray(z), jnp.asarray(y)))
        shifted = np.asarray(softmax_ce_jit(jnp.asarray(z) + 7.0, jnp.asarray(y)))
    ref = softmax_ce_ref(z, y)
    # logsumexp(z) - z_y: relative accuracy, plus a few ulps of max|z| from the cancellation
    tol = 2 * LOSS_RTOL[dtype] * ref + 8 * EPS[dtype] * np.abs(z).max(axis=1)
    assert np.isfinite(out).all()
    assert (out >= -tol).all()
    assert (np.abs(out - ref) <= tol).all(), np.max(np.abs(out - ref) / tol)
    assert (np.abs(shifted - ref) <= 2 * tol).all(), np.max(np.abs(shifted - ref) / tol)


def test_softmax_with_two_classes_equals_bce():
    """Logits (0, z) for classes (0, 1) give σ(z) for class 1: the same loss as BCE(z)."""
    z = np.concatenate([-np.logspace(-3, 4, 30), [0.0], np.logspace(-3, 4, 30)])
    with jax.enable_x64(True):
        for label in (0, 1):
            y = jnp.full(z.shape, label)
            two = jnp.stack([jnp.zeros_like(z), jnp.asarray(z)], axis=-1)
            # logsumexp(z) - z_y is accurate to a few ulps of max|z| in absolute terms (it
            # cancels when the true class wins); softplus is accurate in relative terms
            soft = np.asarray(softmax_ce_jit(two, y))
            bce = np.asarray(bce_jit(jnp.asarray(z), y))
            tol = 1e-14 * np.abs(bce) + 4 * EPS["float64"] * np.maximum(1.0, np.abs(z))
            assert (np.abs(soft - bce) <= tol).all(), np.abs(soft - bce) / tol


def test_softmax_ce_class_axis():
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, size=6))
    np.testing.assert_allclose(
        softmax_ce_jit(z.T, y, axis=0), softmax_ce_jit(z, y, axis=-1), rtol=1e-6
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_ce_derivative_is_softmax_minus_onehot(dtype):
    z = np.array([[1e4, 0.0, -1e4], [-3.0, 0.5, 2.0], [0.0, 0.0, 0.0]], dtype)
    y = np.array([1, 2, 0])
    with x64(dtype):
        dz = jax.jit(jax.vmap(jax.grad(jl.softmax_cross_entropy)))(jnp.asarray(z), jnp.asarray(y))
        dz = np.asarray(dz, np.float64)
    z64 = z.astype(np.float64)
    e = np.exp(z64 - z64.max(axis=1, keepdims=True))
    expected = e / e.sum(axis=1, keepdims=True) - np.eye(3)[y]
    assert np.isfinite(dz).all()
    np.testing.assert_allclose(dz, expected, atol=8 * EPS[dtype])


# --- the objective J ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_objective_matches_numpy_reference(
    problem_factory, reference_objective, dtype, n_classes, weighted, l2
):
    p = problem_factory(23, 4, n_classes, dtype, weighted=weighted, seed=1)
    with x64(dtype):
        J = objective_jit(p.params(), p.X, p.y, p.sample_weight, l2)
        assert J.shape == ()
        assert J.dtype == jnp.dtype(dtype)
        J = float(J)
    ref = reference_objective(p.X, p.y, p.w, p.b, p.sample_weight, l2)
    assert J == pytest.approx(ref, rel=10 * LOSS_RTOL[dtype])


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_objective_at_zero_params_is_log_k(problem_factory, n_classes):
    p = problem_factory(23, 4, n_classes, np.float32, seed=2)
    params = jl.init_params(4, n_classes)
    assert float(objective_jit(params, p.X, p.y, None, 0.5)) == pytest.approx(
        math.log(n_classes), rel=1e-6
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_objective_integer_weights_equal_repeated_rows(problem_factory, n_classes):
    p = problem_factory(9, 3, n_classes, np.float64, seed=3)
    counts = np.array([1, 2, 0, 3, 1, 1, 4, 0, 2])
    with jax.enable_x64(True):
        params = p.params()
        weighted = objective_jit(params, p.X, p.y, counts.astype(np.float64), 0.2)
        repeated = objective_jit(
            params, np.repeat(p.X, counts, axis=0), np.repeat(p.y, counts), None, 0.2
        )
        scaled = objective_jit(params, p.X, p.y, 2.5 * counts, 0.2)
        ones = objective_jit(params, p.X, p.y, np.ones(9), 0.2)
        unweighted = objective_jit(params, p.X, p.y, None, 0.2)
        # integer weights are accepted as they are
        np.testing.assert_allclose(objective_jit(params, p.X, p.y, counts, 0.2), weighted)
    np.testing.assert_allclose(weighted, repeated, rtol=1e-14)
    np.testing.assert_allclose(scaled, weighted, rtol=1e-14)
    np.testing.assert_allclose(ones, unweighted, rtol=1e-14)


def test_objective_intercept_is_not_penalised(problem_factory):
    p = problem_factory(23, 4, 2, np.float64, seed=4)
    l2 = 0.7
    with jax.enable_x64(True):
        for b in (0.0, 5.0):
            params = jl.Params(jnp.asarray(p.w), jnp.asarray(b))
            penalty = objective_jit(params, p.X, p.y, None, l2) - objective_jit(
                params, p.X, p.y, None, 0.0
            )
            np.testing.assert_allclose(penalty, 0.5 * l2 * np.sum(p.w**2), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("max_abs_z", [1e2, 1e4])
def test_objective_finite_and_correct_at_extreme_logits(
    problem_factory, reference_objective, dtype, n_classes, max_abs_z
):
    p = problem_factory(23, 4, n_classes, dtype, weighted=True, seed=5)
    z = p.X.astype(np.float64) @ p.w + p.b
    scale = max_abs_z / np.abs(z).max()
    w, b = (p.w * scale).astype(dtype), (p.b * scale).astype(dtype)
    with x64(dtype):
        params = jl.Params(jnp.asarray(w), jnp.asarray(b))
        J = float(objective_jit(params, p.X, p.y, p.sample_weight, 1e-3))
        grads = backward_jit(params, p.X, p.y, p.sample_weight, 1e-3)
    ref = reference_objective(p.X, p.y, w, b, p.sample_weight, 1e-3)
    assert math.isfinite(J)
    assert J >= 0
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)
    assert J == pytest.approx(ref, rel=1e-5 if dtype == "float32" else 1e-12)


def test_objective_zero_when_separated_by_a_huge_margin():
    X = np.array([[-1.0], [-2.0], [1.0], [3.0]], np.float32)
    y = np.array([0, 0, 1, 1])
    params = jl.Params(jnp.asarray([1e4], jnp.float32), jnp.asarray(0.0, jnp.float32))
    assert float(objective_jit(params, X, y)) == 0.0
    # and the worst possible fit: every example wrong by |z| >= 1e4
    wrong = objective_jit(params, X, 1 - y)
    assert float(wrong) == pytest.approx(1e4 * (1 + 2 + 1 + 3) / 4, rel=1e-6)


def test_objective_under_jit_matches_eager(problem_factory):
    p = problem_factory(23, 4, 2, np.float32, weighted=True, seed=6)
    params = p.params()
    eager = jl.objective(params, p.X, p.y, p.sample_weight, 0.1)
    jitted = jax.jit(jl.objective)(params, p.X, p.y, p.sample_weight, 0.1)
    default_l2 = jax.jit(jl.objective)(params, p.X, p.y)  # l2 left at its default
    np.testing.assert_allclose(jitted, eager, rtol=1e-6)
    np.testing.assert_allclose(default_l2, jl.objective(params, p.X, p.y), rtol=1e-6)


def test_loss_module_doctests():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(jaxlogreg.core.loss) if t.examples]
    assert tests, "jaxlogreg.core.loss should carry doctested examples"
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_is_jax_softplus_without_the_nan_select(dtype):
    """The same value as ``jax.nn.softplus`` to the last bit, NaN and ±inf included."""
    mags = np.logspace(-6, 4, 201)
    t = np.concatenate([-mags[::-1], [-0.0, 0.0], mags, [np.inf, -np.inf, np.nan]]).astype(dtype)
    with x64(dtype):
        ours = np.asarray(jax.jit(jaxlogreg.core.loss.softplus)(jnp.asarray(t)))
        theirs = np.asarray(jax.jit(jax.nn.softplus)(jnp.asarray(t)))
        slope = np.asarray(jax.jit(jax.vmap(jax.grad(jaxlogreg.core.loss.softplus)))(
            jnp.asarray(t[:-3])))
    np.testing.assert_array_equal(ours, theirs)
    expected = 0.5 * (1 + np.tanh(0.5 * t[:-3].astype(np.float64)))  # σ(t)
    np.testing.assert_allclose(slope, expected, rtol=4 * EPS[dtype], atol=4 * EPS[dtype])
