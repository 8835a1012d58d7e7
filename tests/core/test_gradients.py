"""The hand-written backward pass against jax.grad, finite differences and a converged optimum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from jax.test_util import check_grads
from sklearn.linear_model import LogisticRegression

import jaxlogreg as jl
from jaxlogreg.core.gradcheck import max_relative_error
from jaxlogreg.core.gradients import objective_manual_vjp_t

DTYPES = ["float32", "float64"]
GRAD_RTOL = {"float32": 1e-5, "float64": 1e-12}  # hand vs jax.grad, max-norm relative
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}
M, N = 23, 4  # the shared test shape: compiled programs are reused across tests


def x64(dtype):
    return jax.enable_x64(np.dtype(dtype) == np.float64)


def _hand_and_auto(params, X, y, sample_weight, l2):
    """J, the hand-written gradient and jax.grad, in one compiled program per shape."""
    J, auto = jax.value_and_grad(jl.objective)(params, X, y, sample_weight, l2)
    return J, jl.backward(params, X, y, sample_weight, l2), auto


# Compiled with LLVM at -O0: these tests compile one program per shape/dtype/K and are
# compile-bound; -O0 halves that. XLA's HLO passes (fusion, simplification) and IEEE semantics
# are those of the default build; the eager and default-jit paths are covered in other tests.
hand_and_auto = jax.jit(_hand_and_auto, compiler_options={"xla_backend_optimization_level": 0})


def leaves(tree):
    return [np.asarray(leaf, np.float64) for leaf in jax.tree.leaves(tree)]


def assert_same_structure(grads, params):
    assert isinstance(grads, jl.Params)
    for g, p in zip(grads, params, strict=True):
        assert g.shape == p.shape
        assert g.dtype == p.dtype


# --- hand-written == jax.grad --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_backward_matches_autodiff(problem_factory, dtype, n_classes, weighted, l2):
    p = problem_factory(M, N, n_classes, dtype, weighted=weighted, seed=10)
    with x64(dtype):
        params = p.params()
        _, hand, auto = hand_and_auto(params, p.X, p.y, p.sample_weight, l2)
        assert_same_structure(hand, params)
        assert_same_structure(auto, params)
        err = max_relative_error(hand, auto)
    assert err <= GRAD_RTOL[dtype], err


@pytest.mark.parametrize(
    ("m", "n", "n_classes", "dtype"),
    [
        (1, 1, 2, "float32"),
        (1, 1, 3, "float64"),
        (1, 7, 2, "float64"),
        (9, 1, 3, "float32"),
        (64, 20, 2, "float32"),
        (64, 20, 5, "float64"),
    ],
)
def test_backward_matches_autodiff_edge_shapes(problem_factory, m, n, n_classes, dtype):
    p = problem_factory(m, n, n_classes, dtype, weighted=True, seed=11)
    with x64(dtype):
        _, hand, auto = hand_and_auto(p.params(), p.X, p.y, p.sample_weight, 0.05)
        err = max_relative_error(hand, auto)
    assert err <= GRAD_RTOL[dtype], err


def test_backward_eager_equals_jitted(problem_factory):
    p = problem_factory(M, N, 2, np.float32, weighted=True, seed=6)
    params = p.params()
    eager = jl.backward(params, p.X, p.y, p.sample_weight, 0.1)
    _, jitted, _ = hand_and_auto(params, p.X, p.y, p.sample_weight, 0.1)
    for a, b in zip(leaves(eager), leaves(jitted), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_backward_at_zero_init_is_lecture_closed_form(problem_factory):
    """At w = 0, b = 0: a = 1/2, so dw = Xᵀ(1/2 - y)/m and db = mean(1/2 - y)."""
    p = problem_factory(M, N, 2, np.float64, seed=12)
    with jax.enable_x64(True):
        _, g, _ = hand_and_auto(jl.init_params(N, dtype=jnp.float64), p.X, p.y, None, 0.0)
    dz = 0.5 - p.y
    np.testing.assert_allclose(g.w, p.X.T @ dz / M, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(g.b, dz.mean(), rtol=1e-14, atol=1e-16)


# --- dz = σ(z) - y ----------------------------------------------------------------------------

Z_EXTREMES = np.array([-1e4, -40.0, -30.0, -17.5, -1.0, 0.0, 0.3, 17.5, 30.0, 40.0, 1e4])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_dz_is_sigmoid_minus_y(dtype, weighted):
    """With X = I (one feature per example), dw_i = s_i (σ(z_i) - y_i): dz itself, exposed.

    Checked against σ(z) - y in float64 at logits from -1e4 to 1e4 with both labels.
    """
    z = np.concatenate([Z_EXTREMES, Z_EXTREMES])
    y = np.repeat([0, 1], Z_EXTREMES.size)
    m = z.size
    b = 0.25
    s = np.linspace(0.5, 2.0, m) if weighted else np.ones(m)
    s = s / s.sum()
    with x64(dtype):
        params = jl.Params(jnp.asarray(z - b, dtype), jnp.asarray(b, dtype))
        X = np.eye(m, dtype=dtype)
        _, g, _ = hand_and_auto(params, X, y, s.astype(dtype) if weighted else None, 0.0)
    zf = (z - b).astype(dtype).astype(np.float64) + b  # the logits the library actually sees
    dz = s * (0.5 * (1 + np.tanh(0.5 * zf)) - y)  # σ(z) - y without cancellation
    gw = np.asarray(g.w, np.float64)
    assert np.isfinite(gw).all()
    # σ rounds to 1 within eps: the hand formula a - y is exact up to ~eps absolute
    np.testing.assert_allclose(gw, dz, rtol=8 * EPS[dtype], atol=2 * EPS[dtype] * s.max())
    np.testing.assert_allclose(float(g.b), dz.sum(), rtol=1e-5, atol=m * EPS[dtype])


@pytest.mark.parametrize("n_classes", [3, 5])
def test_dz_is_softmax_minus_onehot(n_classes):
    rng = np.random.default_rng(n_classes)
    m = 12
    Z = rng.normal(size=(m, n_classes)) * np.array([[1.0], [1e2], [1e4]]).repeat(4, axis=0)
    y = rng.integers(0, n_classes, size=m)
    with jax.enable_x64(True):
        params = jl.Params(jnp.asarray(Z), jnp.zeros(n_classes))
        _, g, _ = hand_and_auto(params, np.eye(m), y, None, 0.0)
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    dZ = (e / e.sum(axis=1, keepdims=True) - np.eye(n_classes)[y]) / m
    np.testing.assert_allclose(np.asarray(g.w), dZ, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(np.asarray(g.b), dZ.sum(axis=0), atol=1e-15)


# --- finite differences and jax.test_util ------------------------------------------------------


@pytest.mark.parametrize(("n_classes", "weighted", "l2"), [(2, True, 0.1), (3, True, 0.3)])
def test_finite_differences_float64(problem_factory, n_classes, weighted, l2):
    p = problem_factory(M, N, n_classes, np.float64, weighted=weighted, seed=13)
    result = jl.check_gradients(
        p.X, p.y, sample_weight=p.sample_weight, l2=l2, n_classes=n_classes, dtype="float64"
    )
    assert result.n_coords_checked == (N + 1) * (1 if n_classes == 2 else n_classes)
    assert result.finite_diff_rel_error <= 1e-7
    assert result.autodiff_rel_error <= GRAD_RTOL["float64"]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_jax_check_grads_on_objective(problem_factory, n_classes):
    p = problem_factory(M, N, n_classes, np.float64, weighted=True, seed=14)
    with jax.enable_x64(True):
        params = p.params()
        f = jax.jit(lambda w, b: jl.objective(jl.Params(w, b), p.X, p.y, p.sample_weight, 0.1))
        check_grads(f, tuple(params), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_manual_vjp_objective_uses_the_hand_written_gradient(problem_factory, n_classes):
    """objective_manual_vjp_t (used by optimizers that differentiate J) == objective, backward."""
    p = problem_factory(M, N, n_classes, np.float64, weighted=True, seed=15)
    with jax.enable_x64(True):
        params = p.params()
        Xt, y, sw = jnp.asarray(p.X.T), jnp.asarray(p.y), jnp.asarray(p.sample_weight)
        J, g = jax.jit(jax.value_and_grad(objective_manual_vjp_t))(params, Xt, y, sw, 0.1)
        J_ref, hand, _ = hand_and_auto(params, p.X, p.y, p.sample_weight, 0.1)
        np.testing.assert_allclose(J, J_ref, rtol=1e-14)
        assert max_relative_error(g, hand) <= 1e-14
        f = jax.jit(lambda w, b: objective_manual_vjp_t(jl.Params(w, b), Xt, y, sw, 0.1))
        check_grads(f, tuple(params), order=1, modes=("rev",))


# --- zero gradient at a converged optimum (l2 > 0) ---------------------------------------------


@pytest.mark.parametrize(("n_classes", "weighted"), [(2, False), (2, True), (3, True)])
def test_gradient_vanishes_at_sklearn_optimum(problem_factory, n_classes, weighted):
    """sklearn minimises (1/Σs) Σ s_i L_i + ||w||²/(2 C Σs); with C = 1/(λ Σs) that is J."""
    l2 = 0.05
    p = problem_factory(M, N, n_classes, np.float64, weighted=weighted, seed=16)
    total = M if p.sample_weight is None else float(p.sample_weight.sum())
    clf = LogisticRegression(
        C=1.0 / (l2 * total), tol=1e-12, max_iter=1000, solver="newton-cholesky"
    )
    clf.fit(p.X, p.y, sample_weight=p.sample_weight)
    if n_classes == 2:
        w, b = clf.coef_[0], clf.intercept_[0]
    else:
        w, b = clf.coef_.T, clf.intercept_
    with jax.enable_x64(True):
        opt = jl.Params(jnp.asarray(w), jnp.asarray(b))
        J_opt, g_opt, _ = hand_and_auto(opt, p.X, p.y, p.sample_weight, l2)
        moved = opt._replace(w=opt.w * 1.1)
        J_moved, g_moved, _ = hand_and_auto(moved, p.X, p.y, p.sample_weight, l2)
    assert max(np.abs(g).max() for g in leaves(g_opt)) <= 1e-9
    # the same check at a nearby point does fail, so the bound above says something
    assert max(np.abs(g).max() for g in leaves(g_moved)) > 1e-4
    assert float(J_opt) < float(J_moved)


# --- the course's data ------------------------------------------------------------------------


def test_catvnoncat_gradients(catvnoncat):
    """12288 features /255 from the course: hand == jax.grad to 1e-12, finite differences too."""
    X, y = catvnoncat.X_train, catvnoncat.y_train
    assert X.shape == (209, 12288)
    result = jl.check_gradients(X, y, dtype="float64", max_coords=24, l2=0.01)
    assert result.n_coords_checked == 24
    assert result.autodiff_rel_error <= 1e-12
    assert result.finite_diff_rel_error <= 1e-7
    with jax.enable_x64(True):  # and at the course's own starting point w = 0, b = 0
        _, hand, auto = hand_and_auto(jl.init_params(12288, dtype=jnp.float64), X, y, None, 0.0)
        assert max_relative_error(hand, auto) <= 1e-12
    np.testing.assert_allclose(np.asarray(hand.b), np.mean(0.5 - y), rtol=1e-14)


# --- property tests -----------------------------------------------------------------------------


@st.composite
def problems(draw):
    return {
        "m": draw(st.integers(1, 50)),
        "n": draw(st.integers(1, 20)),
        "n_classes": draw(st.sampled_from([2, 3])),
        "dtype": draw(st.sampled_from(DTYPES)),
        "weighted": draw(st.booleans()),
        "l2": draw(st.sampled_from([0.0, 1e-3, 0.5])),
        "log_max_abs_z": draw(st.floats(-1.0, 4.0)),  # |z| up to 1e4
        "seed": draw(st.integers(0, 2**16)),
    }


def _case(m, n, n_classes, dtype, weighted, l2, log_max_abs_z, seed):
    return dict(locals())


@pytest.mark.slow
@given(case=problems())
@example(case=_case(1, 1, 2, "float32", weighted=False, l2=0.0, log_max_abs_z=4.0, seed=0))
@example(case=_case(1, 20, 3, "float64", weighted=True, l2=0.5, log_max_abs_z=4.0, seed=1))
@example(case=_case(50, 1, 2, "float32", weighted=True, l2=1e-3, log_max_abs_z=2.0, seed=2))
@example(case=_case(1, 1, 3, "float32", weighted=True, l2=0.0, log_max_abs_z=1.3125, seed=4090))
def test_property_loss_and_gradient(problem_factory, reference_objective, case):
    dtype = case["dtype"]
    p = problem_factory(
        case["m"], case["n"], case["n_classes"], dtype, weighted=case["weighted"], seed=case["seed"]
    )
    z = p.X.astype(np.float64) @ p.w + p.b
    scale = 10.0 ** case["log_max_abs_z"] / max(np.abs(z).max(), 1e-3)
    w, b = (p.w * scale).astype(dtype), (p.b * scale).astype(dtype)
    l2 = case["l2"]
    with x64(dtype):
        params = jl.Params(jnp.asarray(w), jnp.asarray(b))
        J, hand, auto = hand_and_auto(params, p.X, p.y, p.sample_weight, l2)
    J = float(J)
    hand, auto = leaves(hand), leaves(auto)
    eps = EPS[dtype]

    assert np.isfinite(J) and J >= 0
    assert all(np.isfinite(g).all() for g in hand + auto)

    # J against float64 NumPy: softplus/logsumexp change by at most |Δz|, so the bound is the
    # rounding of z = Xw + b in the test's dtype, plus relative rounding of the sums
    s = np.ones(case["m"]) if p.sample_weight is None else p.sample_weight.astype(np.float64)
    X64, w64, b64 = p.X.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    z_mag = np.abs(X64) @ np.abs(w64) + np.abs(b64)
    z_mag = z_mag if z_mag.ndim == 1 else z_mag.max(axis=1)
    J_ref = reference_objective(p.X, p.y, w, b, p.sample_weight, l2)
    tol_J = 1e2 * eps * J_ref + 4 * (case["n"] + 2) * eps * float(s @ z_mag / s.sum())
    assert abs(J - J_ref) <= tol_J, (J, J_ref, tol_J)

    # hand vs autodiff: the relative bound, plus the absolute floor of dz = a - y
    # (σ(z) rounds to 1 within eps, so each dz_i is exact only to ~eps; |dw| error ≤ eps max|X|)
    scale_ref = max(np.abs(g).max() for g in auto)
    err = max(np.abs(h - a).max() for h, a in zip(hand, auto, strict=True))
    tol = GRAD_RTOL[dtype] * scale_ref + 8 * eps * max(1.0, np.abs(p.X).max())
    assert err <= tol, (err, tol, scale_ref)


@pytest.mark.parametrize(("n_classes", "sparse"), [
    (2, False), pytest.param(3, True, marks=pytest.mark.slow)])
def test_models_side_by_side_equal_each_model_alone(problem_factory, n_classes, sparse):
    """value_and_grad_t(models=True): a leading axis of M models (the path's batch) gives each
    model's J and gradient, with its own example scale and λ."""
    import scipy.sparse as sps

    from jaxlogreg.core.gradients import value_and_grad_t
    from jaxlogreg.core.model import check_X

    M = 3
    with jax.enable_x64(True):
        problems = [problem_factory(31, 4, n_classes, weighted=True, seed=s) for s in range(M)]
        X = problems[0].X
        Xt = check_X(sps.csr_array(X)).T if sparse else jnp.asarray(X.T)
        y = jnp.asarray(problems[0].y, jnp.float64 if n_classes == 2 else jnp.int32)
        s = jnp.stack([jnp.asarray(p.sample_weight / p.sample_weight.sum()) for p in problems])
        l2 = jnp.asarray([0.0, 0.1, 2.0])
        W = jnp.stack([jnp.asarray(p.w) for p in problems])
        b = jnp.stack([jnp.asarray(p.b) for p in problems])
        J, g = value_and_grad_t(jl.Params(W, b), Xt, y, s, l2, models=True)
        assert J.shape == (M,) and g.w.shape == W.shape and g.b.shape == b.shape
        for j in range(M):
            J1, g1 = value_and_grad_t(jl.Params(W[j], b[j]), Xt, y, s[j], l2[j])
            np.testing.assert_allclose(J[j], J1, rtol=1e-13)
            np.testing.assert_allclose(g.w[j], g1.w, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(g.b[j], g1.b, rtol=1e-12, atol=1e-15)
