"""The C gradient on sparse X in CSR (``native_csr.c`` through :mod:`jaxlogreg.kernels.native_csr`):
its J and gradient against XLA's hand-written gradient and ``jax.grad`` of the objective
(float32 and float64, binary and softmax, weights, empty rows, duplicate indices, extreme
logits, tiny and odd shapes), bad input refused before native code reads it, its choice for
sparse fits on a CPU, and fits equal to those with XLA's gradient (the table's contract test,
tests/kernels/test_contract.py, runs it on dense X too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from jaxlogreg.core.gradients import value_and_grad_t
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
ULPS = 256  # relative agreement: a few hundred ulps of the dtype (sums over rows)
SLOW = pytest.mark.slow


def _csr(m, n, density, dtype, seed, *, empty_rows=(), duplicates=False):
    """A CSR matrix (m, n): random entries, some rows emptied, optionally every stored
    entry's column repeated once (duplicates, which the kernel must sum like XLA)."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, n, density=density, format="csr", random_state=rng, dtype=np.float64)
    X = X.astype(dtype)
    for i in empty_rows:
        X.data[X.indptr[i]:X.indptr[i + 1]] = 0
    X.eliminate_zeros()
    if duplicates:
        counts = np.diff(X.indptr)
        data = np.repeat(X.data, 2) * np.tile(np.asarray([0.25, 0.75], dtype), X.nnz)
        X = sp.csr_array((data, np.repeat(X.indices, 2), np.concatenate([[0], np.cumsum(
            2 * counts)]).astype(np.int32)), shape=X.shape)
    return X


def _problem(X, k, dtype, *, weighted, logit_scale=1.0, seed=0):
    rng = np.random.default_rng(seed + 1)
    m, n = X.shape
    w_shape, b_shape = ((n,), ()) if k == 2 else ((n, k), (k,))
    params = Params(jnp.asarray(rng.normal(size=w_shape) * logit_scale, dtype),
                    jnp.asarray(0.3 * logit_scale * rng.normal(size=b_shape), dtype))
    y = jnp.asarray(rng.integers(0, k, m), dtype if k == 2 else jnp.int32)
    sw = jnp.asarray(rng.uniform(0.1, 3.0, m), dtype) if weighted else None
    return params, y, sw, example_scale(sw, m, dtype)


def _check(X, k, dtype, *, weighted=True, l2=0.1, logit_scale=1.0, seed=0):
    """The kernel (on the CSR arrays, and on training's layout under jit) against XLA's
    gradient and jax.grad of the objective on dense Xt; tolerances from the dtype."""
    with jax.enable_x64(dtype == "float64"):
        params, y, sw, s = _problem(X, k, dtype, weighted=weighted, logit_scale=logit_scale,
                                    seed=seed)
        Xt = jnp.asarray(X.toarray().T)
        J_ref, g_ref = jax.value_and_grad(objective_t)(params, Xt, y, sw, l2)
        J_xla, _ = value_and_grad_t(params, Xt, y, s, l2)
        direct = native_csr.csr_value_and_grad(
            params, X.indptr.astype(np.int32), X.indices.astype(np.int32), X.data, y, s, l2)
        layout = sample_csr(X, dtype)
        traced = jax.jit(native_csr.csr_value_and_grad_t)(params, layout, y, s, l2)
        tol = ULPS * float(jnp.finfo(dtype).eps)
        s_all = np.broadcast_to(np.asarray(s, np.float64), (X.shape[0],))
        terms = np.abs(np.asarray(Xt, np.float64)) @ s_all  # Σ_i s_i |x_ij|
        bounds = (terms if k == 2 else terms[:, None], s_all.sum())
        for J, g in (direct, traced):
            assert J.dtype == params.w.dtype and np.isfinite(float(J))
            assert abs(float(J) - float(J_ref)) <= tol * (abs(float(J_ref)) + 1e-30)
            assert abs(float(J) - float(J_xla)) <= tol * (abs(float(J_xla)) + 1e-30)
            for leaf, ref, bound, p in zip(g, g_ref, bounds, params, strict=True):
                assert leaf.shape == p.shape and leaf.dtype == p.dtype
                error = np.abs(np.asarray(leaf, np.float64) - np.asarray(ref, np.float64))
                scale = np.abs(np.asarray(ref, np.float64)) + bound + np.abs(np.asarray(
                    p, np.float64)) * l2
                assert np.all(error <= tol * scale + 1e-300)


@needs_compiler
@pytest.mark.parametrize(("k", "dtype"), [(2, "float32"), (3, "float64"),
                                          pytest.param(2, "float64", marks=SLOW),
                                          pytest.param(3, "float32", marks=SLOW)])
def test_equals_jax_grad_with_weights_empty_rows_and_duplicates(k, dtype):
    X = _csr(203, 17, 0.2, dtype, seed=k, empty_rows=(0, 5, 202), duplicates=True)
    assert np.diff(X.indptr)[[0, 5, 202]].tolist() == [0, 0, 0]
    _check(X, k, dtype)


@needs_compiler
@pytest.mark.parametrize("k", [2, pytest.param(3, marks=SLOW)])
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=SLOW)])
@pytest.mark.parametrize("logit_scale", [1e4, pytest.param(-1e4, marks=SLOW)])
def test_extreme_logits_stay_finite_and_agree(k, dtype, logit_scale):
    X = _csr(64, 9, 0.5, dtype, seed=7)
    _check(X, k, dtype, logit_scale=logit_scale)


@needs_compiler
@pytest.mark.parametrize(("m", "n", "k"), [
    (1, 1, 2), (129, 7, 2), *(pytest.param(*shape, marks=SLOW)
                              for shape in [(1, 1, 3), (3, 1, 2), (1, 5, 4), (77, 3, 7)])])
def test_tiny_and_odd_shapes_without_weights(m, n, k):
    X = _csr(m, n, 0.6, "float64", seed=m + n)
    _check(X, k, "float64", weighted=False, l2=0.0)


@needs_compiler
@SLOW
def test_many_rows_over_several_parts_equal_xla():
    """Enough entries for several parts (threads): the same sums, whatever ran them."""
    X = _csr(30_000, 300, 0.05, "float64", seed=3, empty_rows=(0, 29_999))
    _check(X, 2, "float64")
    _check(X, 4, "float64", l2=0.0)


@needs_compiler
@SLOW
def test_training_layouts_sorted_by_row_or_dense_give_the_same_gradient():
    """The table's entry on a CooMatrix sorted by sample without indptr (found by a search),
    in another order (XLA's gradient), and dense (every entry stored)."""
    X = _csr(50, 6, 0.3, "float64", seed=2, empty_rows=(49,))
    with jax.enable_x64(True):
        params, y, _, s = _problem(X, 2, "float64", weighted=False)
        Xt = coo_of_csr(X, np.float64, transpose=True)
        want = value_and_grad_t(params, jnp.asarray(X.toarray().T), y, s, 0.2)
        unsorted = coo_of_csr(X, np.float64)  # X itself: sorted by row (feature of Xᵀ)
        for layout in (Xt, unsorted.T, jnp.asarray(X.toarray().T)):
            J, g = jax.jit(native_csr.csr_value_and_grad_t)(params, layout, y, s, 0.2)
            np.testing.assert_allclose(J, want[0], rtol=1e-12)
            np.testing.assert_allclose(g.w, want[1].w, rtol=1e-10, atol=1e-14)
        sorted_by_feature = coo_of_csr(sp.csr_array(X.T), np.float64)  # Xt sorted by feature
        J, g = native_csr.csr_value_and_grad_t(params, sorted_by_feature, y, s, 0.2)
        np.testing.assert_allclose(g.w, want[1].w, rtol=1e-10, atol=1e-14)


def _arrays(dtype="float64"):
    X = _csr(20, 6, 0.4, dtype, seed=4)
    with jax.enable_x64(dtype == "float64"):
        params, y, _, s = _problem(X, 2, dtype, weighted=False)
    return params, X.indptr.astype(np.int32), X.indices.astype(np.int32), X.data, y, s


@needs_compiler
@pytest.mark.parametrize(("change", "match"), [
    (lambda a: a.update(indices=np.where(a["indices"] == a["indices"].max(), 6,
                                         a["indices"]).astype(np.int32)),
     r"column index 6 of entry \d+ \(row \d+\) is outside \[0, 6\)"),
    (lambda a: a.update(indices=a["indices"] - 7), r"outside \[0, 6\)"),
    (lambda a: a.update(indptr=a["indptr"][::-1].copy()), "indptr must not decrease"),
    (lambda a: a.update(indptr=a["indptr"] - 1), "indptr must start at 0, got -1"),
    (lambda a: a.update(indptr=np.concatenate([a["indptr"][:-1], [a["indptr"][-1] + 5]])
                        .astype(np.int32)), "indptr must end at most"),
    (lambda a: a.update(indices=a["indices"].astype(np.int64)), "indices must be int32"),
    (lambda a: a.update(indptr=a["indptr"][:-1]), "indptr must have 21 entries"),
    (lambda a: a.update(data=a["data"].astype(np.float32)), "data must be .* float64"),
])
def test_bad_input_is_refused_before_native_code(monkeypatch, change, match):
    params, indptr, indices, data, y, s = _arrays()
    arrays = {"indptr": indptr, "indices": indices, "data": data}
    change(arrays)

    def never(*args, **kwargs):
        raise AssertionError("native code was called")

    monkeypatch.setattr(jax.ffi, "ffi_call", never)
    with jax.enable_x64(True), pytest.raises(ValueError, match=match):
        native_csr.csr_value_and_grad(params, arrays["indptr"], arrays["indices"],
                                      arrays["data"], y, s, 0.0)


@needs_compiler
def test_the_kernel_itself_refuses_bad_indices_under_jit():
    """Traced arrays cannot be read in Python: the kernel checks them and reads none."""
    params, indptr, indices, data, y, s = _arrays()
    f = jax.jit(native_csr.csr_value_and_grad)
    bad_indices = np.where(indices == indices.max(), 1 << 30, indices).astype(np.int32)
    bad_indptr = indptr.copy()
    bad_indptr[3], bad_indptr[4] = bad_indptr[4] + 1, bad_indptr[3]
    with jax.enable_x64(True):
        with pytest.raises(Exception, match=r"indices holds a column outside \[0, 6\)"):
            jax.block_until_ready(f(params, indptr, bad_indices, data, y, s, 0.0))
        with pytest.raises(Exception, match="indptr must start at 0 or above, never decrease"):
            jax.block_until_ready(f(params, bad_indptr, indices, data, y, s, 0.0))
        labels = jnp.asarray(np.full(20, 5), jnp.int32)
        W = Params(jnp.zeros((6, 3)), jnp.zeros(3))
        with pytest.raises(Exception, match=r"class index outside \[0, 3\)"):
            jax.block_until_ready(f(W, indptr, indices, data, labels, s, 0.0))


def test_training_layout_is_x_s_own_csr_arrays():
    X = _csr(10, 4, 0.5, "float64", seed=1)
    Xt = sample_csr(X, np.float64)
    np.testing.assert_array_equal(Xt.indptr, X.indptr)
    np.testing.assert_array_equal(Xt.row, X.indices)
    np.testing.assert_array_equal(Xt.col, coo_of_csr(X, np.float64, transpose=True).col)
    assert type(Xt.T).__name__ == "CooMatrix"  # the transpose drops the row pointers


def _sparse_problem(m, n, per_row, k, seed):
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(n, (m, per_row)), axis=1)
    X = sp.csr_array((rng.normal(size=m * per_row), indices.ravel(),
                      np.arange(0, m * per_row + 1, per_row)), shape=(m, n))
    X.sum_duplicates()
    scores = X @ rng.normal(size=(n, k))
    y = np.argmax(scores + rng.gumbel(size=(m, k)), axis=1)
    return X, (y if k > 2 else (scores[:, 0] - scores[:, 1] + rng.logistic(size=m) > 0)
               .astype(int))


@needs_compiler
@pytest.mark.parametrize(("k", "dtype"), [(2, "float64"), pytest.param(2, "float32", marks=SLOW),
                                          pytest.param(3, "float64", marks=SLOW)])
def test_a_sparse_fit_chooses_it_and_equals_the_xla_fit(monkeypatch, k, dtype):
    import jaxlogreg as jl
    from jaxlogreg.training import loop, pipeline

    X, y = _sparse_problem(native_csr.MIN_SAMPLES + 37, 50, 5, k, seed=k)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    chosen = []
    kernel_for = pipeline.kernel_for
    monkeypatch.setattr(pipeline, "kernel_for", lambda data: chosen.append(
        (kernel_for(data), type(data.data.Xt).__name__)) or chosen[-1][0])
    settings = {"solver": "lbfgs", "tol": 1e-8 if dtype == "float64" else 1e-4, "dtype": dtype,
                "C": 0.5}
    ours = jl.fit(X, y, sample_weight=sw, **settings)
    assert chosen == [("native_csr", "SampleCsr")]
    before = loop.run_segment_sparse._cache_size()
    again = jl.fit(X, y, sample_weight=sw[::-1].copy(), **settings)  # same shapes: no retrace
    assert loop.run_segment_sparse._cache_size() == before and again.status == "converged"
    monkeypatch.setenv(native.SWITCH, "0")
    xla = jl.fit(X, y, sample_weight=sw, **settings)
    assert chosen[-1][0] == "xla"
    rtol = 1e-9 if dtype == "float64" else 1e-5
    assert ours.status == xla.status == "converged"
    assert ours.loss == pytest.approx(xla.loss, rel=rtol)
    scale = float(np.max(np.abs(xla.params.w)))
    np.testing.assert_allclose(ours.params.w, xla.params.w, atol=1e3 * rtol * scale)


@needs_compiler
@SLOW
def test_small_padded_sparse_fits_use_it_when_allowed(monkeypatch):
    """Small problems are padded (zero-weight rows, zero entries): the same model."""
    import jaxlogreg as jl

    X, y = _sparse_problem(300, 40, 4, 2, seed=9)
    settings = {"solver": "lbfgs", "tol": 1e-9, "dtype": "float64"}
    xla = jl.fit(X, y, **settings)
    monkeypatch.setattr(native_csr, "MIN_SAMPLES", 1)
    ours = jl.fit(X, y, **settings)
    assert ours.loss == pytest.approx(xla.loss, rel=1e-10)
    np.testing.assert_allclose(ours.params.w, xla.params.w, rtol=1e-6, atol=1e-9)


def test_not_chosen_for_dense_sharded_paths_small_or_switched_off(monkeypatch):
    from jaxlogreg import kernels

    def shape(m=1 << 16, k=2, dtype=np.float32, **kw):
        return kernels.Shape(100, m, k, np.dtype(dtype), np.dtype(dtype), "cpu", **kw)

    calls = []
    monkeypatch.setattr(native, "available", lambda: calls.append(1) or True)
    assert kernels.choose(shape(sparse=True)).name == "native_csr"
    assert kernels.choose(shape(sparse=True, dtype=np.float64)).name == "native_csr"
    assert kernels.choose(shape(sparse=True, k=native.MAX_CLASSES)).name == "native_csr"
    assert kernels.choose(shape(sparse=True, k=native.MAX_CLASSES + 1)).name == "xla"
    assert kernels.choose(shape(native_csr.MIN_SAMPLES - 1, sparse=True)).name == "xla"
    assert kernels.choose(shape(sparse=True, sharded=True)).name == "xla"
    assert kernels.choose(shape(sparse=True, models=3)).name == "xla"
    assert kernels.choose(shape(sparse=True)._replace(backend="gpu")).name != "native_csr"
    assert kernels.choose(shape(sparse=True)._replace(x_dtype=np.dtype("float32"),
                                                      dtype=np.dtype("float64"))).name == "xla"
    monkeypatch.setenv(native.SWITCH, "off")
    assert kernels.choose(shape(sparse=True)).name == "xla"
    assert len(calls) == 3  # only the shapes it takes ask for the library
    monkeypatch.delenv(native.SWITCH)
    assert kernels.choose(shape()).name != "native_csr"  # dense X
