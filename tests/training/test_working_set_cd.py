"""The working-set solver's coordinate descent on columns in C (jaxlogreg/kernels/native_cd.c,
called from jaxlogreg.training.working_set): the same optimum as the dense-Hessian fallback and
liblinear (objective within 1e-6 relative in float64, the same zeros) for dense and CSR X,
float32 X (never copied to float64), sample weights, elastic net, no intercept; a support
wider than the fallback's cap certified; inputs refused before native code reads them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _sparse_l1 import sparse_l1_problem
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from jaxlogreg.kernels import native
from jaxlogreg.kernels.native_cd import Columns, HostX, solve_subproblem
from jaxlogreg.training import working_set
from jaxlogreg.training.working_set import MAX_DENSE_HESSIAN, NEWTON, duality_gap, solve

RTOL = 1e-6  # objective within 1e-6 relative
ZERO = 1e-6  # a coefficient above this where the other solution has a zero: another support
TOL = 1e-9  # the certified relative gap of the fits compared


@pytest.fixture(autouse=True)
def _library():
    if not native.available():
        pytest.skip(f"the native library is not available: {native.build_error()}")


def _problem(m=300, n=200, density=0.08, seed=0):
    return sparse_l1_problem(m, n, density=density, n_true=12, seed=seed)


def _l1(X, y, strength, weights=None):
    s = np.ones(len(y)) if weights is None else weights
    s = s / s.sum()
    return strength * float(np.max(np.abs(X.T @ (s * (y - s @ y)))))


def _score(X, y, w, b, l1, l2=0.0, weights=None, fit_intercept=True):
    s = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    X = X.astype(np.float64)
    return duality_gap(X, y.astype(float), s / s.sum(), w, b, l1, l2, fit_intercept)[0]


def _support_difference(a, b):
    return int(np.sum((a == 0) & (np.abs(b) > ZERO)) + np.sum((b == 0) & (np.abs(a) > ZERO)))


def _assert_one_optimum(native_fit, other, score):
    assert native_fit.status == "converged"
    J, J_other = score(native_fit.w, native_fit.b), score(other.w, other.b)
    assert abs(J - J_other) <= RTOL * J_other
    assert _support_difference(native_fit.w, other.w) == 0


@pytest.mark.parametrize("layout", ["csr", "dense"])
@pytest.mark.parametrize("strength", [0.3, 0.05])
def test_the_c_solver_reaches_the_dense_hessian_paths_optimum(layout, strength):
    X, y = _problem()
    l1 = _l1(X, y, strength)
    data = X if layout == "csr" else X.toarray()
    fast, dense = (solve(data, y, None, l1, tol=TOL, native=flag) for flag in (True, False))
    _assert_one_optimum(fast, dense, lambda w, b: _score(X, y, w, b, l1))
    assert 0 < np.count_nonzero(fast.w) < X.shape[1]


def test_a_support_of_every_feature_is_solved_not_stalled():
    """Every coefficient non-zero (a weak penalty on a few features): the working set is all
    of X, which is no reason to stop."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 10))
    y = (X @ rng.standard_normal(10) + rng.standard_normal(300) > 0).astype(float)
    l1 = _l1(X, y, 0.01)
    fast, dense = (solve(X, y, None, l1, tol=TOL, native=flag) for flag in (True, False))
    assert np.count_nonzero(fast.w) == X.shape[1]
    _assert_one_optimum(fast, dense, lambda w, b: _score(X, y, w, b, l1))


def test_the_c_solver_matches_liblinear_without_intercept():
    X, y = _problem(m=200, n=60, density=0.2, seed=4)
    l1 = _l1(X, y, 0.1)
    r = solve(X, y, None, l1, fit_intercept=False, tol=TOL, native=True)
    lib = SkLogisticRegression(C=1 / (l1 * len(y)), l1_ratio=1.0, solver="liblinear", tol=1e-8,
                               max_iter=1000, fit_intercept=False).fit(X, y)
    w_lib = lib.coef_.ravel()
    J, J_lib = (_score(X, y, w, 0.0, l1, fit_intercept=False) for w in (r.w, w_lib))
    assert r.status == "converged" and r.b == 0.0
    assert abs(J - J_lib) <= RTOL * J_lib
    assert _support_difference(r.w, w_lib) == 0


@pytest.mark.parametrize("layout", ["csr", "dense"])
def test_elastic_net_with_sample_weights_matches_the_fallback(layout):
    X, y = _problem(m=250, seed=3)
    weights = np.random.default_rng(2).integers(1, 4, len(y)).astype(float)
    l1 = _l1(X, y, 0.1, weights)
    l2 = 0.5 * l1
    data = X if layout == "csr" else X.toarray()
    fast, dense = (solve(data, y, weights, l1, l2, tol=TOL, native=flag) for flag in (True, False))
    _assert_one_optimum(fast, dense, lambda w, b: _score(X, y, w, b, l1, l2, weights))


@pytest.mark.parametrize("layout", ["csr", "dense"])
def test_float32_x_is_used_as_it_is_and_gives_the_float64_optimum(layout):
    """The objective of float32 X is that of its exact float64 copy: one optimum."""
    X, y = _problem(seed=5)
    X32 = X.astype(np.float32)
    l1 = _l1(X32.astype(np.float64), y, 0.05)
    data = X32 if layout == "csr" else X32.toarray()
    host = HostX.of(data)
    assert np.shares_memory(host.data if layout == "csr" else host.dense,
                            data.data if layout == "csr" else data)
    fast = solve(data, y, None, l1, tol=TOL, native=True)
    dense = solve(X32.astype(np.float64), y, None, l1, tol=TOL, native=False)
    _assert_one_optimum(fast, dense, lambda w, b: _score(X32, y, w, b, l1))


@pytest.mark.slow  # 9,000 x 8,000: seconds
def test_a_support_wider_than_the_dense_hessians_cap_is_certified():
    X, y = sparse_l1_problem(9000, 8000, density=0.004, n_true=200, seed=1)
    l1 = _l1(X, y, 0.003)
    r = solve(X, y, None, l1, tol=1e-8)
    assert r.status == "converged"
    assert np.count_nonzero(r.w) > MAX_DENSE_HESSIAN
    J, gap, _ = duality_gap(X, y.astype(float), np.full(len(y), 1 / len(y)), r.w, r.b, l1, 0.0,
                            True)
    assert gap <= 1e-8 * J and J == pytest.approx(r.objective, rel=1e-12)


def test_without_the_library_the_fallback_runs(monkeypatch):
    X, y = _problem()
    l1 = _l1(X, y, 0.05)
    expected = solve(X, y, None, l1, tol=TOL)
    monkeypatch.setenv(native.SWITCH, "0")
    assert not HostX.of(X).use_native
    r = solve(X, y, None, l1, tol=TOL)
    _assert_one_optimum(expected, r, lambda w, b: _score(X, y, w, b, l1))


def test_a_fit_stopped_by_the_fallbacks_cap_says_why(monkeypatch):
    X, y = _problem()
    l1 = _l1(X, y, 0.01)
    assert np.count_nonzero(solve(X, y, None, l1, tol=TOL).w) > 8  # the C solver: no cap
    monkeypatch.setattr(working_set, "MAX_DENSE_HESSIAN", 9)  # the fallback's: 8 weights
    with pytest.warns(RuntimeWarning, match="at 8 non-zero weights.*native=False"):
        r = solve(X, y, None, l1, tol=TOL, native=False)
    assert r.status == "stalled" and np.count_nonzero(r.w) >= 8 and r.gap > TOL * r.objective


def _columns_problem():
    """A valid subproblem on 3 columns of a (5, 4) CSR X, and its arrays."""
    X = sp.csr_array(np.array([[1.0, 0, 2, 0], [0, 1, 0, 0], [3, 0, 0, 1], [0, 2, 1, 0],
                               [1, 1, 0, 1]]))
    columns = HostX.of(X).columns(np.array([0, 2, 3]))
    m, k = columns.shape
    y = np.array([1.0, 0, 1, 0, 1])
    s = np.full(m, 1 / m)
    return columns, {"y": y, "s": s, "l1": 0.01, "l2": 0.0, "fit_intercept": True,
                     "v": np.zeros(k + 1), "z": np.zeros(m), "tol": 1e-10, "settings": NEWTON}


def test_the_working_set_columns_are_x_s_columns_and_the_subproblem_runs():
    columns, args = _columns_problem()
    dense = sp.csc_array((columns.vals, columns.rowind, columns.colptr), shape=columns.shape)
    expected = np.array([[1.0, 2, 0], [0, 0, 0], [3, 0, 1], [0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(dense.toarray(), expected)
    assert solve_subproblem(columns, **args) >= 1
    np.testing.assert_allclose(args["z"], expected @ args["v"][:-1] + args["v"][-1], rtol=1e-12)


@pytest.mark.parametrize("change, message", [
    (lambda c: c._replace(rowind=np.r_[c.rowind[:-1], 5].astype(np.int32)), "rowind must lie"),
    (lambda c: c._replace(rowind=c.rowind.astype(np.int64)), "rowind must be"),
    (lambda c: c._replace(vals=c.vals.astype(np.float16)), "float32 or float64"),
    (lambda c: c._replace(colptr=c.colptr[::-1].copy()), "colptr must go from 0"),
    (lambda c: c._replace(colptr=c.colptr[:-1]), "colptr must be"),
    (lambda c: Columns(c.shape, None, None, np.zeros(c.shape)), "Fortran-ordered"),
])
def test_bad_columns_are_refused_before_native_code(change, message):
    columns, args = _columns_problem()
    with pytest.raises(ValueError, match=message):
        solve_subproblem(change(columns), **args)


@pytest.mark.parametrize("name, value, message", [
    ("y", np.zeros(4), r"y must be a contiguous \(5,\) array of float64"),
    ("v", np.zeros(4, np.float32), r"v must be a contiguous \(4,\) array of float64"),
    ("z", np.zeros(10)[::2], "z must be a contiguous"),
    ("s", np.zeros((5, 1)), "s must be"),
])
def test_bad_vectors_are_refused_before_native_code(name, value, message):
    columns, args = _columns_problem()
    args[name] = value
    with pytest.raises(ValueError, match=message):
        solve_subproblem(columns, **args)


def test_bad_x_and_working_sets_are_refused():
    X = sp.csr_array((np.ones(2), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 3))
    with pytest.raises(ValueError, match="outside"):
        HostX.of(X)
    host = HostX.of(sp.csr_array(np.eye(3)))
    for ws in ([0, 3], [2, 1], [-1]):
        with pytest.raises(ValueError, match="working set must be sorted distinct columns"):
            host.columns(np.array(ws))
    with pytest.raises(ValueError, match=r"w must have shape \(3,\)"):
        host.matvec(np.zeros(2), 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_columns_copied_from_an_earlier_working_set_equal_those_read_from_x(dtype):
    X, _ = _problem(m=400, n=300, density=0.1, seed=4)
    host = HostX.of(sp.csr_array(X.astype(dtype)))
    rng = np.random.default_rng(2)
    old_ws = np.sort(rng.choice(300, 60, replace=False))
    ws = np.union1d(old_ws[::2], rng.choice(300, 40, replace=False))  # shared and new columns
    earlier = (old_ws, host.columns(old_ws))
    copied, read = host.columns(ws, earlier), host.columns(ws)
    assert copied.vals.dtype == dtype
    for a, b in zip(copied[1:], read[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    assert host.columns(np.array([], np.int64), earlier).vals.size == 0
    assert host.columns(old_ws, (np.array([], np.int64), host.columns([]))).vals.size == (
        earlier[1].vals.size)


def test_reusable_columns_are_small_ones_only(monkeypatch):
    X, _ = _problem(m=400, n=300, density=0.1, seed=4)
    host = HostX.of(X)
    ws = np.arange(0, 300, 6)
    columns = host.columns(ws)
    assert host.reusable(ws, columns)[1] is columns and host.reusable(None, columns) is None
    monkeypatch.setattr("jaxlogreg.kernels.native_cd.REUSE_SHARE", 0.1)  # they hold about 1/6
    assert host.reusable(ws, columns) is None


@pytest.mark.parametrize("change, message", [
    (lambda ws, c: (ws[::-1].copy(), c), "the earlier working set must be sorted"),
    (lambda ws, c: (ws, c._replace(vals=c.vals.astype(np.float32))), "the earlier columns must"),
    (lambda ws, c: (ws, HostX.of(_problem(m=400, n=300, density=0.1, seed=9)[0]).columns(ws)),
     "other entry counts"),  # another X's columns
    (lambda ws, c: (ws, c._replace(rowind=c.rowind + 400)), "rowind must lie"),
])
def test_bad_earlier_columns_are_refused_before_native_code(change, message):
    X, _ = _problem(m=400, n=300, density=0.1, seed=4)
    host = HostX.of(X)
    ws = np.arange(0, 299, 2)
    with pytest.raises(ValueError, match=message):
        host.columns(ws, change(ws, host.columns(ws)))


def test_fits_with_and_without_copied_columns_are_the_same(monkeypatch):
    X, y = _problem(m=500, n=400, density=0.05, seed=5)
    s = np.full(len(y), 1 / len(y))
    l1 = _l1(X, y, 0.05)
    copied = solve(X, y, s, l1, tol=TOL)
    monkeypatch.setattr("jaxlogreg.kernels.native_cd.REUSE_SHARE", 0.0)  # every set read from X
    read = solve(X, y, s, l1, tol=TOL)
    assert copied.status == read.status == "converged" and copied.rounds == read.rounds >= 2
    np.testing.assert_array_equal(copied.w, read.w)
    assert copied.b == read.b


def test_buffers_on_their_own_pages_hold_what_is_written_and_fits_agree(monkeypatch):
    """own_pages: from OWN_PAGES_BYTES on, an array of the dtype and length asked on a mapping of
    its own; a fit whose columns and C work arrays all come from such mappings gives the model
    that heap arrays give."""
    from jaxlogreg.kernels import native_cd

    count = native_cd.OWN_PAGES_BYTES // 4
    mapped = native_cd.own_pages(count, np.int32)
    mapped[:] = np.arange(count, dtype=np.int32)
    assert isinstance(mapped.base, memoryview) and mapped.dtype == np.int32
    assert mapped.shape == (count,) and mapped[-1] == count - 1
    assert native_cd.own_pages(4, np.float64).base is None  # small: an ordinary array
    X, y = _problem(m=500, n=400, density=0.05, seed=5)
    l1 = _l1(X, y, 0.05)
    heap = solve(X, y, None, l1, tol=TOL)
    monkeypatch.setattr(native_cd, "OWN_PAGES_BYTES", 1)
    pages = solve(X, y, None, l1, tol=TOL)
    assert heap.status == pages.status == "converged"
    np.testing.assert_array_equal(pages.w, heap.w)
    assert pages.b == heap.b
