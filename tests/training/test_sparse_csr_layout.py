"""Sparse X for a kernel on CSR (``Kernel.layout == "csr"``) trains as X's own CSR arrays.

The layout is a :class:`~jaxlogreg.core.sample_csr.SampleCsr`: ``data``, ``row`` (X's indices) and
``indptr``, no (nnz,) array of sample ids (XLA paths derive them from ``indptr``), no copy of
X's arrays on the host when they are already in the fit's dtypes. The L2 loop on it makes no
(nnz,) array at all; L1, autodiff and padded fits on it equal the XLA ones.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg as jl
from jaxlogreg.core.hessian import diagonal_bound_t, hvp_t
from jaxlogreg.core.loss import dot, objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.core.sample_csr import SampleCsr
from jaxlogreg.core.sparse import coo_of_csr
from jaxlogreg.kernels import native, native_build, native_csr
from jaxlogreg.runtime.memory import aligned_empty, is_aligned
from jaxlogreg.training import loop, pipeline
from jaxlogreg.training.data import device_data, sparse_layout
from jaxlogreg.training.problem import validate
from jaxlogreg.training.settings import resolve
from jaxlogreg.training.spec import LoopSpec, objective_value

needs_compiler = pytest.mark.skipif(
    native_build.find_compiler() is None or jax.default_backend() != "cpu"
    or not native.enabled(),
    reason="no C compiler here, JAX's default backend is not the CPU (the kernel's), or "
           "JAXLOGREG_NATIVE turned the kernel off",
)


def _problem(m=300, n=40, per_row=4, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(n, (m, per_row)), axis=1).astype(np.int32)
    X = sp.csr_array((rng.normal(size=m * per_row).astype(dtype), indices.ravel(),
                      np.arange(0, m * per_row + 1, per_row, dtype=np.int32)), shape=(m, n))
    X.sum_duplicates()
    y = (X @ rng.normal(size=n) + rng.logistic(size=m) > 0).astype(int)
    return X, y


def _dense_t(Xt):
    """Xt (n, m) as a dense array, from the entries of any sparse layout."""
    out = np.zeros(Xt.shape)
    np.add.at(out, (np.asarray(Xt.row), np.asarray(Xt.col)), np.asarray(Xt.data))
    return out


@pytest.fixture
def csr_kernel_for_small_fits(monkeypatch):
    monkeypatch.setattr(native_csr, "MIN_SAMPLES", 1)


def _at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """A copy of 1-D ``a`` whose data start ``offset`` bytes past a 64-byte boundary (NumPy's
    large arrays start 16 bytes past one); the bytes before it are 0xff (NaN as a float, -1
    as an index)."""
    raw = aligned_empty(a.nbytes + 64, np.uint8)
    raw[:] = 0xFF
    out = raw[offset:offset + a.nbytes].view(a.dtype)
    out[:] = a
    return out


def _x_at(offsets: tuple[int, int], dtype=np.float32) -> sp.csr_array:
    X, _ = _problem(dtype=dtype)
    X.data, X.indices = _at_offset(X.data, offsets[0]), _at_offset(X.indices, offsets[1])
    return X  # (scipy's constructor would copy the arrays)


@pytest.mark.parametrize("offset", [0, 16, 48])
def test_the_layout_is_x_own_arrays_and_the_device_shares_them(offset):
    X = _x_at((offset, offset))
    Xt = sparse_layout(X, np.float32, X.shape[::-1], X.nnz, csr=True)
    assert isinstance(Xt, SampleCsr) and Xt.shape == X.shape[::-1] and Xt.lead == offset // 4
    assert len(jax.tree.leaves(Xt)) == 3  # data, row, indptr: no (nnz,) sample ids
    for mine, theirs in ((Xt.data, X.data), (Xt.row, X.indices), (Xt.indptr, X.indptr)):
        assert np.shares_memory(mine, theirs)  # used in place, not copied
        np.testing.assert_array_equal(mine, theirs)
    assert is_aligned(Xt.stored_data) and is_aligned(Xt.stored_row)
    np.testing.assert_array_equal(Xt.col, coo_of_csr(X, np.float32, transpose=True).col)
    if jax.default_backend() == "cpu":  # the device uses X's arrays: no copy of X
        for leaf in jax.tree.leaves(Xt)[:2]:
            assert jax.device_put(leaf).unsafe_buffer_pointer() == leaf.ctypes.data


def test_the_layout_copies_only_what_it_must():
    X = _x_at((48, 16))  # data and indices at different offsets: one lead cannot serve both
    Xt = sparse_layout(X, np.float32, X.shape[::-1], X.nnz, csr=True)
    assert Xt.lead == 4 and np.shares_memory(Xt.row, X.indices)
    assert not np.shares_memory(Xt.data, X.data) and is_aligned(Xt.stored_data)
    np.testing.assert_array_equal(Xt.data, X.data)
    X64 = _x_at((16, 16), np.float64)
    cast = sparse_layout(X64, np.float32, X.shape[::-1], X.nnz, csr=True)  # copies data only
    assert cast.data.dtype == np.float32 and np.shares_memory(cast.row, X64.indices)
    assert is_aligned(cast.stored_data)  # the cast copy is the one the device uses, on a CPU
    np.testing.assert_array_equal(cast.data, X64.data.astype(np.float32))


@needs_compiler
@pytest.mark.parametrize("weighted", [False, True])
def test_kernels_read_a_layout_with_a_lead_as_x(weighted):
    """The kernels on CSR, the objective and the preconditioner's column squares on a layout
    whose arrays start before X's (a lead of entries that are not X's) equal those on X's
    entries laid out without one (XLA's COO products)."""
    X = _x_at((32, 16), np.float64)  # both shared from 4 entries before (NaN, at index -1)
    Xt = sparse_layout(X, np.float64, X.shape[::-1], X.nnz, csr=True)
    coo = coo_of_csr(X, np.float64, transpose=True)
    assert Xt.lead == 4 and np.isnan(Xt.stored_data[:4]).all() and (Xt.stored_row[:4] < 0).all()
    rng = np.random.default_rng(1)
    m, n = X.shape
    tol = {"rtol": 1e-10, "atol": 1e-12}
    with jax.enable_x64(True):
        params = Params(jnp.asarray(rng.normal(size=n)), jnp.asarray(0.3))
        v = Params(jnp.asarray(rng.normal(size=n)), jnp.asarray(-0.2))
        y = jnp.asarray(rng.integers(0, 2, m), jnp.float64)
        s = jnp.asarray(rng.uniform(0.5, 2, m)) if weighted else jnp.asarray(1.0 / m)
        args = (params, jax.device_put(Xt), y, s, 0.1)
        J, g = jax.jit(native_csr.csr_value_and_grad_t)(*args)
        J_ref, g_ref = native_csr.csr_value_and_grad_t(params, coo, y, s, 0.1)
        np.testing.assert_allclose(J, J_ref, **tol)
        np.testing.assert_allclose(g.w, g_ref.w, **tol)
        hv = jax.jit(native_csr.csr_hvp_t)(*args, v)
        np.testing.assert_allclose(hv.w, hvp_t(params, coo, y, s, 0.1, v).w, **tol)
        bound = jax.jit(diagonal_bound_t)(params, jax.device_put(Xt), s, 0.1)
        np.testing.assert_allclose(bound.w, diagonal_bound_t(params, coo, s, 0.1).w, **tol)
        J_concrete = native_csr.csr_value_and_grad_t(params, Xt, y, s, 0.1)[0]
        np.testing.assert_allclose(J_concrete, J_ref, **tol)  # checked from the lead, then C



def test_padded_layout_gives_the_products_of_x_inside_jit():
    X, _ = _problem(m=37, n=11)
    Xt = sparse_layout(X, np.float32, (16, 64), X.nnz, csr=True).padded(256)
    assert Xt.indptr.shape == (65,) and Xt.indptr[-1] == Xt.nnz == 256
    dense = np.zeros((16, 64))
    dense[:11, :37] = X.toarray().T
    np.testing.assert_allclose(_dense_t(Xt), dense, rtol=1e-6)
    w, u = np.arange(16.0, dtype=np.float32), np.linspace(-1, 1, 64, dtype=np.float32)
    z, g = jax.jit(lambda S: (dot(w, S), dot(S, u)))(jax.device_put(Xt))
    tol = 16 * np.finfo(np.float32).eps * float(np.abs(dense).sum())
    np.testing.assert_allclose(z, w @ dense, atol=tol)
    np.testing.assert_allclose(g, dense @ u, atol=tol)
    assert type(Xt.T).__name__ == "CooMatrix"
    with pytest.raises(ValueError, match="cannot shrink"):
        Xt.reshape_to((16, 63))


@needs_compiler
def test_device_data_for_the_csr_kernel_holds_no_sample_ids(csr_kernel_for_small_fits):
    X, y = _problem()
    data = device_data(validate(X, y, dtype="float32"))
    Xt = data.data.Xt
    assert data.kernel == "native_csr" and isinstance(Xt, SampleCsr)
    m_pad = data.data.y.shape[0]
    assert [leaf.shape for leaf in jax.tree.leaves(Xt)] == [(Xt.nnz,), (Xt.nnz,), (m_pad + 1,)]
    assert int(Xt.indptr[-1]) == Xt.nnz >= X.nnz
    dense = _dense_t(Xt)  # padded with zero features and samples
    np.testing.assert_allclose(dense[:40, :300], X.toarray().T, rtol=1e-6)
    assert not dense[40:].any() and not dense[:, 300:].any()


def _intermediate_shapes(jaxpr) -> list[tuple[int, ...]]:
    """The shapes of every value a jaxpr (and the jaxprs inside it) computes."""
    shapes = []
    for eqn in jaxpr.eqns:
        shapes += [tuple(getattr(v.aval, "shape", ())) for v in eqn.outvars]
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    shapes += _intermediate_shapes(inner)
    return shapes


@needs_compiler
def test_the_l2_loop_on_the_csr_layout_makes_no_array_of_entries(csr_kernel_for_small_fits):
    """The gradient, the line search and the final J all go through the kernel: nothing of
    the entries' size (sample ids, gathers) is made, only X's arrays are read."""
    X, y = _problem(m=700, per_row=5)  # nnz differs from every other size here
    data = device_data(validate(X, y, dtype="float32"), bucket=False)
    nnz = data.data.Xt.nnz
    config = resolve(None, {"solver": "lbfgs", "C": 1.0})
    hyper = pipeline.hyper_of(config, config.l2(data.weight_sum), "float32")
    spec = LoopSpec.of(config, None, None, data.kernel)
    start = data.place(pipeline.starting_params(None, 40, 2, "float32", True))
    state = loop.init_state(start, hyper, spec, 0)
    jaxpr = jax.make_jaxpr(functools.partial(loop._run, spec=spec))(
        state, data.data, hyper, np.int32(10)).jaxpr
    assert (nnz,) not in _intermediate_shapes(jaxpr)
    params = Params(jnp.linspace(-1, 1, 40, dtype=jnp.float32), jnp.float32(0.2))
    J = objective_value(params, *data.data, hyper.l2, hyper.l1, kernel="native_csr")
    reference = objective_t(params, coo_of_csr(X, np.float32, transpose=True), jnp.asarray(
        y, jnp.float32), None, hyper.l2, hyper.l1)
    assert float(J) == pytest.approx(float(reference), rel=64 * float(np.finfo(np.float32).eps))


@needs_compiler
@pytest.mark.parametrize("settings", [
    {"penalty": "l1", "solver": "proximal", "C": 0.05, "tol": 1e-9},
    pytest.param({"grad": "autodiff", "solver": "lbfgs", "tol": 1e-9}, marks=pytest.mark.slow),
    {"solver": "newton-cg", "tol": 1e-9, "sample_weight": True},  # the kernel's H v
    pytest.param({"solver": "lbfgs", "tol": 1e-9, "sample_weight": True},
                 marks=pytest.mark.slow),
])
def test_fits_on_the_csr_layout_equal_the_xla_fits(monkeypatch, csr_kernel_for_small_fits,
                                                  settings):
    """The XLA paths that read the sample ids (L1's duality gap, autodiff) derive them."""
    X, y = _problem(dtype=np.float64)
    settings = {**settings, "dtype": "float64"}
    if settings.pop("sample_weight", False):
        settings["sample_weight"] = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    chosen = []
    kernel_for = pipeline.kernel_for
    monkeypatch.setattr(pipeline, "kernel_for", lambda data: chosen.append(
        kernel_for(data)) or chosen[-1])
    ours = jl.fit(X, y, **settings)
    monkeypatch.setenv(native.SWITCH, "0")
    xla = jl.fit(X, y, **settings)
    assert chosen == ["native_csr", "xla"]
    assert ours.status == xla.status == "converged"
    assert ours.loss == pytest.approx(xla.loss, rel=1e-9)
    np.testing.assert_allclose(ours.params.w, xla.params.w, atol=1e-5)
