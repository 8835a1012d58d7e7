"""The C Hessian-vector product on sparse X in CSR (``native_csr.c`` through
:func:`jaxlogreg.kernels.native_csr.csr_hvp`): against the hand-written ``hvp_t`` (float32 and
float64, binary and softmax, per-example and scalar s, padding rows of weight 0, empty rows,
v_b zero or not) and ``jax.jvp`` of ``jax.grad`` of the objective, on every layout the kernel
table's entry takes, and bad input refused before native code reads it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from jaxlogreg import kernels
from jaxlogreg.core.hessian import hvp_t
from jaxlogreg.core.loss import example_scale, objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.core.sample_csr import sample_csr
from jaxlogreg.core.sparse import coo_of_csr
from jaxlogreg.kernels import native, native_build, native_csr

needs_compiler = pytest.mark.skipif(
    native_build.find_compiler() is None or jax.default_backend() != "cpu"
    or not native.enabled(),
    reason="no C compiler here, JAX's default backend is not the CPU (the kernel's), or "
           "JAXLOGREG_NATIVE turned the kernel off",
)
SLOW = pytest.mark.slow
# Allowed error relative to the sums of absolute values behind each entry: a few hundred ulps
# for float32 (sums over rows in float32 per part), about 1e-10 for float64.
TOLERANCE = {"float32": 256 * float(np.finfo(np.float32).eps), "float64": 1e-10}


def _csr(m, n, density, dtype, seed, empty_rows=()):
    """A random CSR matrix (m, n) of ``dtype`` with the rows ``empty_rows`` emptied."""
    X = sp.random(m, n, density=density, format="csr", random_state=np.random.default_rng(seed),
                  dtype=np.float64).astype(dtype)
    for i in empty_rows:
        X.data[X.indptr[i]:X.indptr[i + 1]] = 0
    X.eliminate_zeros()
    return X


def _problem(X, k, dtype, *, scalar_s=False, zero_vb=False, padding=(), seed=0):
    """Parameters, labels, s (per example with ``padding`` rows of weight 0, or scalar) and a
    direction v (v_b zero when ``zero_vb``)."""
    rng = np.random.default_rng(seed)
    m, n = X.shape
    w_shape, b_shape = ((n,), ()) if k == 2 else ((n, k), (k,))

    def draw(shape, scale=1.0):
        return jnp.asarray(scale * rng.normal(size=shape), dtype)

    params = Params(draw(w_shape), draw(b_shape, 0.3))
    v = Params(draw(w_shape), jnp.zeros(b_shape, dtype) if zero_vb else draw(b_shape))
    y = jnp.asarray(rng.integers(0, k, m), dtype if k == 2 else jnp.int32)
    weights = rng.uniform(0.1, 3.0, m)
    weights[list(padding)] = 0.0
    s = jnp.asarray(1.0 / m, dtype) if scalar_s else jnp.asarray(weights / weights.sum(), dtype)
    return params, y, s, v


def _assert_close(got, X, params, s, l2, v):
    """``got`` against ``hvp_t`` in float64 on the same (rounded) inputs, entry by entry within
    the dtype's tolerance of the sums of absolute values that make the entry."""
    dtype = params.w.dtype.name
    with jax.enable_x64(True):
        as64 = [Params(*(jnp.asarray(leaf, jnp.float64) for leaf in p)) for p in (params, v)]
        Xt = jnp.asarray(X.toarray().T, jnp.float64)
        want = hvp_t(as64[0], Xt, None, jnp.asarray(s, jnp.float64), l2, as64[1])
        absX = np.abs(np.asarray(Xt))
        s_abs = np.broadcast_to(np.abs(np.asarray(s, np.float64)), (X.shape[0],))
        v_w, v_b = (np.abs(np.asarray(leaf)) for leaf in as64[1])
        u = v_w.T @ absX + (v_b if v_w.ndim == 1 else v_b[:, None])  # |U| bound (K, m) or (m,)
        if u.ndim == 2:  # dZ_c = s A_c (U_c - A·U) mixes the classes
            u = u + u.sum(axis=0)
        terms = s_abs * u  # |dz| <= s |u| (the curvature weights are at most 1)
        bounds = (absX @ terms.T + l2 * v_w, terms.sum(axis=-1))
    for leaf, ref, bound, p in zip(got, want, bounds, params, strict=True):
        assert leaf.shape == p.shape and leaf.dtype == p.dtype
        error = np.abs(np.asarray(leaf, np.float64) - np.asarray(ref))
        assert np.all(error <= TOLERANCE[dtype] * (bound + 1e-30)), float(np.max(error))


def _run(X, k, dtype, l2=0.2, **options):
    """The kernel on the CSR arrays, and the table's entry on training's layout under jit,
    both against ``hvp_t``."""
    with jax.enable_x64(dtype == "float64"):
        params, y, s, v = _problem(X, k, dtype, **options)
        direct = native_csr.csr_hvp(params, X.indptr.astype(np.int32),
                                    X.indices.astype(np.int32), X.data, s, l2, v)
        layout = sample_csr(X, dtype)
        traced = jax.jit(native_csr.csr_hvp_t)(params, layout, y, s, l2, v)
    for got in (direct, traced):
        _assert_close(got, X, params, s, l2, v)


@needs_compiler
@pytest.mark.parametrize(("k", "dtype", "options"), [
    (2, "float64", {"padding": (3, 4, 60)}),
    (3, "float32", {"padding": (3, 4, 60), "zero_vb": True}),
    *(pytest.param(*case, marks=SLOW) for case in [
        (2, "float32", {"padding": (3, 4, 60)}),
        (3, "float64", {"padding": (3, 4, 60)}),
        (2, "float64", {"scalar_s": True, "zero_vb": True}),
        (2, "float32", {"scalar_s": True}),
        (3, "float64", {"scalar_s": True, "zero_vb": True}),
        (3, "float32", {"scalar_s": True}),
    ])])
def test_equals_hvp_t_with_padding_and_empty_rows(k, dtype, options):
    X = _csr(61, 13, 0.3, dtype, seed=k, empty_rows=(0, 4, 30))
    assert np.diff(X.indptr)[[0, 4, 30]].tolist() == [0, 0, 0]
    _run(X, k, dtype, **options)


@needs_compiler
def test_equals_jvp_of_the_gradient_of_the_objective():
    X = _csr(40, 9, 0.4, "float64", seed=5, empty_rows=(7,))
    with jax.enable_x64(True):
        params, y, _, v = _problem(X, 3, "float64")
        sw = jnp.asarray(np.random.default_rng(3).uniform(0.5, 2.0, 40))
        Xt = jnp.asarray(X.toarray().T)
        _, want = jax.jvp(jax.grad(lambda p: objective_t(p, Xt, y, sw, 0.3)), (params,), (v,))
        got = native_csr.csr_hvp(params, X.indptr.astype(np.int32), X.indices.astype(np.int32),
                                 X.data, example_scale(sw, 40, jnp.float64), 0.3, v)
    for leaf, ref in zip(got, want, strict=True):
        np.testing.assert_allclose(leaf, ref, rtol=1e-10, atol=1e-13)


@needs_compiler
@SLOW
def test_many_rows_over_several_parts_equal_hvp_t():
    """Enough entries for several parts (threads): the same sums, whatever ran them."""
    X = _csr(40_000, 300, 0.05, "float64", seed=3, empty_rows=(0, 39_999))
    _run(X, 2, "float64", padding=(1, 20_000))
    _run(X, 4, "float64", l2=0.0)


@needs_compiler
@SLOW
def test_every_layout_of_the_table_entry_gives_hvp_t():
    """A CooMatrix sorted by sample without indptr, one sorted by feature (``hvp_t`` itself),
    and dense Xt (every entry stored)."""
    X = _csr(50, 6, 0.3, "float64", seed=2, empty_rows=(49,))
    with jax.enable_x64(True):
        params, y, s, v = _problem(X, 3, "float64")
        want = hvp_t(params, jnp.asarray(X.toarray().T), y, s, 0.2, v)
        layouts = (coo_of_csr(X, np.float64, transpose=True),
                   coo_of_csr(sp.csr_array(X.T), np.float64), jnp.asarray(X.toarray().T))
        for layout in layouts:
            got = jax.jit(native_csr.csr_hvp_t)(params, layout, y, s, 0.2, v)
            for leaf, ref in zip(got, want, strict=True):
                np.testing.assert_allclose(leaf, ref, rtol=1e-10, atol=1e-14)


def test_the_table_gives_h_v_for_xla_and_the_csr_kernel_only():
    assert kernels.get("xla").hvp is hvp_t
    assert kernels.get("native_csr").hvp is native_csr.csr_hvp_t
    assert [kernel.name for kernel in kernels.KERNELS if kernel.hvp is not None] == [
        "native_csr", "xla"]


def _arrays():
    X = _csr(20, 6, 0.4, "float64", seed=4)
    with jax.enable_x64(True):
        params, _, s, v = _problem(X, 2, "float64")
    return {"params": params, "indptr": X.indptr.astype(np.int32),
            "indices": X.indices.astype(np.int32), "data": X.data, "s": s, "v": v}


def _swapped(indptr):
    """indptr that decreases from row 3 to row 4 (and still starts at 0, ends at nnz)."""
    indptr = indptr.copy()
    indptr[3], indptr[4] = indptr[4] + 1, indptr[3]
    return indptr


def _max_to(arrays, value):
    indices = arrays["indices"]
    return np.where(indices == indices.max(), value, indices).astype(np.int32)


@needs_compiler
@pytest.mark.parametrize(("change", "match"), [
    (lambda a: a.update(indices=_max_to(a, 6)),
     r"column index 6 of entry \d+ \(row \d+\) is outside \[0, 6\)"),
    (lambda a: a.update(indptr=a["indptr"][::-1].copy()), "indptr must not decrease"),
    (lambda a: a.update(indptr=a["indptr"] - 1), "indptr must start at 0, got -1"),
    (lambda a: a.update(indptr=_swapped(a["indptr"])), "indptr must not decrease"),
    (lambda a: a.update(indices=a["indices"].astype(np.int64)), "indices must be int32"),
    (lambda a: a.update(data=a["data"].astype(np.float32)), "data must be .* float64"),
    (lambda a: a.update(v=Params(a["v"].w[:-1], a["v"].b)), r"v\.w must be .* \(6,\)"),
    (lambda a: a.update(v=Params(a["v"].w, a["v"].w)), r"v\.b must be .* \(\)"),
    (lambda a: a.update(v=Params(a["v"].w.astype(jnp.int32), a["v"].b)), r"v\.w must be floats"),
    (lambda a: a.update(s=a["s"][:-1]), r"s must be \(20,\)"),
])
def test_bad_input_is_refused_before_native_code(monkeypatch, change, match):
    arrays = _arrays()
    change(arrays)

    def never(*args, **kwargs):
        raise AssertionError("native code was called")

    monkeypatch.setattr(jax.ffi, "ffi_call", never)
    with jax.enable_x64(True), pytest.raises(ValueError, match=match):
        native_csr.csr_hvp(arrays["params"], arrays["indptr"], arrays["indices"],
                           arrays["data"], arrays["s"], 0.0, arrays["v"])


@needs_compiler
def test_the_kernel_itself_refuses_bad_indices_under_jit():
    """Traced arrays cannot be read in Python: the kernel checks them and reads none."""
    a = _arrays()
    f = jax.jit(native_csr.csr_hvp)
    bad_indptr = _swapped(a["indptr"])
    with jax.enable_x64(True):
        with pytest.raises(Exception, match=r"indices holds a column outside \[0, 6\)"):
            jax.block_until_ready(f(a["params"], a["indptr"], _max_to(a, 1 << 30), a["data"],
                                    a["s"], 0.0, a["v"]))
        with pytest.raises(Exception, match="indptr must start at 0 or above, never decrease"):
            jax.block_until_ready(f(a["params"], bad_indptr, a["indices"], a["data"], a["s"],
                                    0.0, a["v"]))
