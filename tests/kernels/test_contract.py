"""One contract, every kernel: ``(params, Xt, y, s, l2) -> (J, ∇J)`` of each entry of the
kernel table (X = Xtᵀ, C-ordered (m, n), for kernels of layout "rows") against ``jax.grad``
of the objective and, in float64, central finite differences; binary and softmax, float32 and
float64, with and without weights and penalty, ragged shapes and extreme logits (|z| ~ 1e4). Tolerances follow the dtype's epsilon: J
relative to itself, ∇J relative to the sum of the absolute terms of each sum ``Σ_i s_i x_ij``
(the lecture's ``dz = a - y`` rounds to about one ulp of 1 when ``a`` saturates).
The hand-written Hessian and its vector product (:mod:`jaxlogreg.core.hessian`) are held to
``jax.hessian`` of the same objective here too.

The compiled Pallas kernel needs a GPU: here it runs through Pallas' interpreter (the same
kernel body); the C kernel needs a C compiler and a CPU backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlogreg import kernels
from jaxlogreg.core import hessian
from jaxlogreg.core.loss import example_scale, objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.core.sparse import coo_of_csr
from jaxlogreg.kernels import native

pytestmark = pytest.mark.filterwarnings(
    "ignore:The Pallas Triton backend is deprecated:DeprecationWarning")


def _runnable(kernel: kernels.Kernel) -> str | None:
    """Why ``kernel`` cannot run on this machine, or None: a kernel compiled for another
    platform (its record's), or a C kernel that does not build here."""
    if kernel.platform not in (None, jax.default_backend()):
        return f"{kernel.name} is compiled for {kernel.platform}, JAX's backend is not"
    if kernel.name.startswith("native") and not native.available():
        return f"no C kernel here: {native.build_error()}"
    return None


KERNELS = [pytest.param(k, id=k.name, marks=pytest.mark.skipif(
    _runnable(k) is not None, reason=str(_runnable(k)))) for k in kernels.KERNELS]
# Relative agreement with jax.grad: a few hundred ulps of the dtype (sums over m terms)
ULPS = 256


def _problem(m, n, k, dtype, *, weighted, logit_scale=1.0, seed=0):
    """params, Xt (n, m), y, the example scale s and the raw weights (JAX, under x64)."""
    rng = np.random.default_rng(seed)
    w_shape, b_shape = ((n,), ()) if k == 2 else ((n, k), (k,))
    params = Params(jnp.asarray(rng.normal(size=w_shape) * logit_scale / np.sqrt(n), dtype),
                    jnp.asarray(0.3 * logit_scale * rng.normal(size=b_shape), dtype))
    Xt = jnp.asarray(rng.normal(size=(n, m)), dtype)
    y = jnp.asarray(rng.integers(0, k, m), dtype if k == 2 else jnp.int32)
    sw = jnp.asarray(rng.uniform(0.1, 3.0, m), dtype) if weighted else None
    return params, Xt, y, example_scale(sw, m, dtype), sw


def _call(kernel: kernels.Kernel, params, Xt, y, s, l2, *, jit: bool = True):
    """``kernel``'s value and gradient, X given in the layout its record says."""
    X = jnp.asarray(np.ascontiguousarray(np.asarray(Xt).T)) if kernel.layout == "rows" else Xt
    return (jax.jit(kernel.value_and_grad) if jit else kernel.value_and_grad)(
        params, X, y, s, l2)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def _check(kernel, k, dtype, *, m=37, n=5, weighted=False, l2=0.0, logit_scale=1.0, seed=0):
    with jax.enable_x64(dtype == "float64"), jax.default_matmul_precision("highest"):
        params, Xt, y, s, sw = _problem(m, n, k, dtype, weighted=weighted,
                                        logit_scale=logit_scale, seed=seed)
        J, g = _call(kernel, params, Xt, y, s, l2)
        J_ref, g_ref = jax.value_and_grad(objective_t)(params, Xt, y, sw, l2)
    assert J.dtype == params.w.dtype and np.isfinite(float(J))
    for leaf, ref, p in zip(g, g_ref, params, strict=True):
        assert leaf.shape == p.shape and leaf.dtype == p.dtype
        assert np.all(np.isfinite(np.asarray(leaf)))
    tol = ULPS * float(jnp.finfo(dtype).eps)
    assert _rel(J, J_ref) <= tol
    s_all = np.broadcast_to(np.asarray(s, np.float64), (m,))
    terms = np.abs(np.asarray(Xt, np.float64)) @ s_all  # Σ_i s_i |x_ij| (n,)
    bounds = (terms if k == 2 else terms[:, None], s_all.sum())
    for leaf, ref, bound in zip(g, g_ref, bounds, strict=True):
        error = np.abs(np.asarray(leaf, np.float64) - np.asarray(ref, np.float64))
        assert np.all(error <= tol * (np.abs(np.asarray(ref, np.float64)) + bound))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("weighted", "l2"), [(False, 0.0), (True, 0.3)])
def test_every_kernel_equals_jax_grad(kernel, k, dtype, weighted, l2):
    _check(kernel, k, dtype, weighted=weighted, l2=l2)


@pytest.mark.slow
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("m, n, k", [(1, 1, 2), (2, 3, 2), (130, 17, 2), (1, 4, 3), (65, 9, 7)])
def test_ragged_and_tiny_shapes(kernel, m, n, k):
    _check(kernel, k, "float64", m=m, n=n, weighted=True, l2=0.1)


ROWS_KERNELS = [k for k in KERNELS if k.values[0].layout == "rows"]


# The C kernel on rows cuts X into blocks of about 32 KiB (at least 16 rows): m not a multiple
# of a block over several blocks, rows wider than a block, odd n, one row, one feature.
@pytest.mark.parametrize("kernel", ROWS_KERNELS)
@pytest.mark.parametrize("k", [3, pytest.param(2, marks=pytest.mark.slow), pytest.param(7, marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", ["float64", pytest.param("float32", marks=pytest.mark.slow)])
@pytest.mark.parametrize("m, n", [(1001, 17), pytest.param(1, 1, marks=pytest.mark.slow),
                                  pytest.param(37, 4500, marks=pytest.mark.slow), pytest.param(333, 1, marks=pytest.mark.slow)])
def test_rows_kernels_over_blocks_and_odd_shapes(kernel, k, dtype, m, n):
    _check(kernel, k, dtype, m=m, n=n, weighted=True, l2=0.1)


@pytest.mark.parametrize("kernel", ROWS_KERNELS)
@pytest.mark.parametrize("k", [3, pytest.param(7, marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
@pytest.mark.parametrize("logit_scale", [1e4, pytest.param(-1e4, marks=pytest.mark.slow)])
def test_rows_kernels_softmax_at_extreme_logits(kernel, k, dtype, logit_scale):
    _check(kernel, k, dtype, m=203, n=6, logit_scale=logit_scale, weighted=True)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [2, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("logit_scale", [1e4, -1e4])
def test_extreme_logits_stay_finite_and_agree(kernel, k, dtype, logit_scale):
    _check(kernel, k, dtype, logit_scale=logit_scale, weighted=True)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [2, 3, pytest.param(7, marks=pytest.mark.slow)])
def test_every_kernel_equals_central_finite_differences_in_float64(kernel, k):
    h, l2 = 1e-6, 0.2
    with jax.enable_x64(True):
        params, Xt, y, s, _ = _problem(29, 4, k, "float64", weighted=True)
        _, g = _call(kernel, params, Xt, y, s, l2)

        def J(p):
            return float(_call(kernel, p, Xt, y, s, l2, jit=False)[0])

        for leaf_index, leaf in enumerate(params):
            flat = np.asarray(leaf, np.float64).ravel()
            for i in range(flat.size):
                def at(delta, i=i, flat=flat, leaf_index=leaf_index, shape=leaf.shape):
                    moved = flat.copy()
                    moved[i] += delta
                    new = list(params)
                    new[leaf_index] = jnp.asarray(moved.reshape(shape))
                    return J(Params(*new))

                numeric = (at(h) - at(-h)) / (2 * h)
                analytic = float(np.asarray(g[leaf_index]).ravel()[i])
                assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(analytic))


@pytest.mark.slow
@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 70), n=st.integers(1, 12), k=st.sampled_from([2, 3, 5]),
       dtype=st.sampled_from(["float32", "float64"]), weighted=st.booleans(),
       l2=st.sampled_from([0.0, 1e-3, 1.0]), logit_scale=st.sampled_from([0.1, 1.0, 30.0]),
       seed=st.integers(0, 2**16))
def test_property_every_kernel_equals_jax_grad(kernel, m, n, k, dtype, weighted, l2,
                                               logit_scale, seed):
    _check(kernel, k, dtype, m=m, n=n, weighted=weighted, l2=l2, logit_scale=logit_scale,
           seed=seed)


# The Hessian: the hand-written Xa D Xaᵀ (and its product with a vector) against jax.hessian
# of the same objective, on the flat parameter vector.
@pytest.mark.parametrize("k", [2, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", ["float64", pytest.param("float32", marks=pytest.mark.slow)])
@pytest.mark.parametrize(("weighted", "l2", "fit_intercept"),
                         [(True, 0.3, True), pytest.param(False, 0.0, True, marks=pytest.mark.slow),
                          pytest.param(True, 0.1, False, marks=pytest.mark.slow)])
def test_hand_written_hessian_equals_jax_hessian(k, dtype, weighted, l2, fit_intercept):
    with jax.enable_x64(dtype == "float64"), jax.default_matmul_precision("highest"):
        params, Xt, y, s, sw = _problem(41, 4, k, dtype, weighted=weighted)
        if not fit_intercept:
            params = Params(params.w, jnp.zeros_like(params.b))
        vector = hessian.flat(params, fit_intercept)

        def J(theta):
            return objective_t(hessian.unflat(theta, params, fit_intercept), Xt, y, sw, l2)

        H = jax.jit(hessian.hessian_t, static_argnames="fit_intercept")(
            params, Xt, y, s, l2, fit_intercept=fit_intercept)
        H_ref = jax.hessian(J)(vector)
        v = jnp.asarray(np.random.default_rng(1).normal(size=vector.shape), dtype)
        Hv = hessian.flat(hessian.hvp_t(params, Xt, y, s, l2,
                                        hessian.unflat(v, params, fit_intercept)),
                          fit_intercept)
        Hv_ref = H_ref @ v
    assert H.shape == (hessian.n_params(params, fit_intercept),) * 2 and H.dtype == dtype
    tol = ULPS * float(jnp.finfo(dtype).eps)
    assert _rel(H, H_ref) <= tol
    assert _rel(H, H.T) <= tol
    assert _rel(Hv, Hv_ref) <= tol


@pytest.mark.slow
def test_hessian_vector_product_takes_sparse_x():
    with jax.enable_x64(True):
        params, Xt, y, s, _ = _problem(23, 6, 3, "float64", weighted=True)
        Xt = np.where(np.abs(np.asarray(Xt)) > 0.8, np.asarray(Xt), 0.0)
        rng = np.random.default_rng(2)
        v = Params(jnp.asarray(rng.normal(size=params.w.shape)),
                   jnp.asarray(rng.normal(size=params.b.shape)))
        dense = hessian.hvp_t(params, jnp.asarray(Xt), y, s, 0.2, v)
        sparse = hessian.hvp_t(params, coo_of_csr(sp.csr_array(Xt), np.float64), y, s, 0.2, v)
    for a, b in zip(dense, sparse, strict=True):
        assert _rel(a, b) <= 1e-12
