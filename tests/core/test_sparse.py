"""Sparse X: the hand-written gradient on sparse data, every entry point, never densified."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import sparse as jsparse

import jaxlogreg as jl
from jaxlogreg.core.gradients import value_and_backward_t
from jaxlogreg.core.model import check_X
from jaxlogreg.core.sparse import CooMatrix, as_csr, sparse_dot
from jaxlogreg.training import loop


def _problem(m=300, n=40, density=0.1, k=2, seed=0, dtype=np.float64):
    """Sparse X (CSR) with labels from a linear model on it."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, n, density=density, format="csr", random_state=rng, dtype=dtype,
                  data_rvs=rng.standard_normal)
    z = X @ rng.standard_normal((n, k if k > 2 else 1))
    z = z + rng.gumbel(size=z.shape) - (rng.gumbel(size=z.shape) if k == 2 else 0)  # noisy labels
    y = (z[:, 0] > 0).astype(np.int64) if k == 2 else np.argmax(z, axis=1)
    return X, y


def _params(n, k, rng):
    if k == 2:
        return jl.Params(jnp.asarray(rng.standard_normal(n)), jnp.asarray(0.3))
    return jl.Params(jnp.asarray(rng.standard_normal((n, k))), jnp.asarray(rng.standard_normal(k)))


# ---------------------------------------------------------------- products and gradients


@pytest.mark.parametrize("left", [False, True])
def test_sparse_products_equal_the_dense_ones(left):
    X, _ = _problem(50, 30, density=0.2)
    with jax.enable_x64(True):
        S = check_X(X)
        rng = np.random.default_rng(1)
        B = jnp.asarray(rng.standard_normal((30, 3)) if not left else rng.standard_normal((4, 50)))
        got = sparse_dot(S, B) if not left else sparse_dot(B, S)
        want = X.toarray() @ np.asarray(B) if not left else np.asarray(B) @ X.toarray()
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
        v = jnp.asarray(rng.standard_normal(50))
        np.testing.assert_allclose(sparse_dot(S.T, v), X.toarray().T @ np.asarray(v), rtol=1e-13)


@pytest.mark.slow
@settings(max_examples=6)
@given(
    shape=st.sampled_from([(1, 1), (7, 5), (40, 30)]),  # few shapes: few compilations
    density=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    k=st.sampled_from([2, 3]),
    weighted=st.booleans(),
    l2=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_sparse_gradient_equals_dense_autodiff_and_finite_differences(
    shape, density, k, weighted, l2, seed
):
    """dz = a - y, dw = Xᵀ dz on sparse X equals the dense path and jax.grad to 1e-12 (float64)."""
    (m, n), rng = shape, np.random.default_rng(seed)
    X = sp.random(m, n, density=density, format="csr", random_state=rng,
                  data_rvs=lambda size: 3 * rng.standard_normal(size))
    y = rng.integers(0, k, m)
    sw = rng.uniform(0.1, 2.0, m) if weighted else None
    with jax.enable_x64(True):
        params = _params(n, k, rng)
        S = check_X(X)
        swj = None if sw is None else jnp.asarray(sw)
        J_s, g_s = value_and_backward_t(params, S.T, jnp.asarray(y), swj, l2)
        J_d, g_d = value_and_backward_t(params, jnp.asarray(X.toarray().T), jnp.asarray(y), swj, l2)
        g_auto = jax.grad(jl.objective)(params, X, y, sw, l2)
        assert abs(float(J_s) - float(J_d)) <= 1e-12 * max(1.0, abs(float(J_d)))
        for hand, other in ((g_s, g_d), (g_s, g_auto)):
            for a, b in zip(hand, other, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    check = jl.check_gradients(X, y, n_classes=k, sample_weight=sw, l2=l2, seed=seed % 100)
    assert check.autodiff_rel_error <= 1e-12
    assert check.finite_diff_rel_error <= 1e-6


# ---------------------------------------------------------------- every entry point


def _formats(X):
    yield "csr", X
    yield "csc", X.tocsc()
    yield "coo", X.tocoo()
    yield "lil", X.tolil()
    yield "bcoo", jsparse.BCOO.from_scipy_sparse(X)
    yield "bcsr", jsparse.BCSR.from_scipy_sparse(X)


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3])
def test_estimator_on_every_sparse_format_equals_the_dense_fit(k):
    X, y = _problem(400, 25, density=0.2, k=k)
    fits = {}  # the dense fit of each dtype
    for name, Xs in _formats(X):
        # scikit-learn's dtype rule: JAX's matrices are float32 here (x64 is off), scipy's float64
        Xd = X.toarray().astype(Xs.dtype)
        rtol = 1e-6 if Xs.dtype == np.float64 else 1e-3
        if Xs.dtype not in fits:
            fits[Xs.dtype] = jl.LogisticRegression(tol=1e-8, max_iter=500).fit(Xd, y)
        dense = fits[Xs.dtype]
        clf = jl.LogisticRegression(tol=1e-8, max_iter=500).fit(Xs, y)
        assert clf.loss_ == pytest.approx(dense.loss_, rel=rtol / 100), name
        np.testing.assert_allclose(clf.coef_, dense.coef_, rtol=rtol, atol=rtol, err_msg=name)
        np.testing.assert_allclose(clf.predict_proba(Xs), dense.predict_proba(Xd),
                                   rtol=rtol, atol=rtol, err_msg=name)
        np.testing.assert_allclose(clf.decision_function(Xs), dense.decision_function(Xd),
                                   rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.slow
def test_fit_objective_and_predict_functions_take_sparse_x():
    X, y = _problem(300, 20, density=0.3, dtype=np.float32)
    Xd = X.toarray()
    fitted, fitted_dense = jl.fit(X, y, tol=1e-6), jl.fit(Xd, y, tol=1e-6)
    assert fitted.params.w.dtype == np.float32  # scikit-learn's dtype rule holds for sparse X
    assert fitted.loss == pytest.approx(fitted_dense.loss, rel=1e-6)
    np.testing.assert_allclose(fitted.params.w, fitted_dense.params.w, rtol=1e-3, atol=1e-3)
    p = jl.Params(*map(jnp.asarray, fitted.params))
    np.testing.assert_allclose(jl.objective(p, X, y, l2=0.1), jl.objective(p, Xd, y, l2=0.1),
                               rtol=1e-6)
    np.testing.assert_allclose(jl.predict_proba(p, X), jl.predict_proba(p, Xd), rtol=1e-5)
    assert (np.asarray(jl.predict(p, X)) == np.asarray(jl.predict(p, Xd))).all()


@pytest.mark.slow
def test_cross_validation_and_path_on_sparse_x_equal_dense():
    X, y = _problem(600, 30, density=0.15)
    cv_sparse = jl.LogisticRegressionCV(Cs=4, cv=3, tol=1e-8, max_iter=300).fit(X, y)
    cv_dense = jl.LogisticRegressionCV(Cs=4, cv=3, tol=1e-8, max_iter=300).fit(X.toarray(), y)
    assert cv_sparse.C_ == pytest.approx(cv_dense.C_)
    np.testing.assert_allclose(cv_sparse.coef_, cv_dense.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cv_sparse.scores_[1], cv_dense.scores_[1])


@pytest.mark.slow
def test_a_matrix_whose_dense_form_would_not_fit_in_memory_trains_and_predicts():
    """100,000 x 2,000,000: dense, 800 GB in float32; sparse, 200,000 entries."""
    m, n = 100_000, 2_000_000
    rng = np.random.default_rng(0)
    cols = rng.integers(0, 1000, (m, 2))  # a few active features, so the labels are learnable
    cols[:, 1] = rng.integers(0, n, m)
    X = sp.csr_array((np.ones(2 * m, np.float32), cols.reshape(-1), np.arange(0, 2 * m + 1, 2)),
                     shape=(m, n))
    y = (cols[:, 0] % 2).astype(np.int64)
    clf = jl.LogisticRegression(C=10.0, max_iter=50).fit(X, y)
    assert clf.coef_.shape == (1, n)
    assert clf.score(X[:1000], y[:1000]) > 0.95
    l1 = jl.LogisticRegression(C=0.1, penalty="l1", solver="proximal", max_iter=100).fit(X, y)
    assert 0 < np.count_nonzero(l1.coef_) <= 1000  # the noise columns (one row each) are zeroed
    assert l1.score(X[:1000], y[:1000]) > 0.95


def test_small_sparse_problems_share_one_compiled_loop():
    """nnz is padded to a power of two (like m and n), so nearby sizes do not recompile."""
    X1, y1 = _problem(300, 20, density=0.2, seed=1)
    X2, y2 = _problem(310, 22, density=0.21, seed=2)
    assert X1.nnz != X2.nnz
    jl.fit(X1, y1)
    before = loop.run_segment_sparse._cache_size()
    assert before > 0  # sparse X runs this program
    jl.fit(X2, y2)
    jl.fit(X1, y1, C=0.5)
    assert loop.run_segment_sparse._cache_size() == before


@pytest.mark.parametrize("entry", ["fit", "fit_path"])
def test_a_sparse_x_is_checked_once_per_fit(entry, monkeypatch):
    """as_csr reads every index and value: fit and fit_path run it once, not once per layer."""
    from jaxlogreg.core import model

    calls = []
    monkeypatch.setattr(model, "as_csr", lambda X, name="X": calls.append(name) or as_csr(X, name))
    X, y = _problem()
    if entry == "fit":
        jl.fit(X, y, max_iter=3)
    else:
        jl.fit_path(X, y, [1.0], max_iter=3)
    assert calls == ["X"]


# ---------------------------------------------------------------- canonical form, bad input


def test_duplicates_are_summed_and_unsorted_indices_sorted_on_a_copy():
    data, indices, indptr = [1.0, 2.0, 3.0, 4.0], [2, 0, 2, 1], [0, 3, 4]
    X = sp.csr_matrix((data, indices, indptr), shape=(2, 3))  # row 0: col 2 twice, unsorted
    original = X.data.copy(), X.indices.copy()
    canonical = as_csr(X)
    np.testing.assert_array_equal(canonical.toarray(), [[2.0, 0.0, 4.0], [0.0, 4.0, 0.0]])
    assert canonical.has_canonical_format
    np.testing.assert_array_equal(X.data, original[0])  # the caller's matrix is unchanged
    np.testing.assert_array_equal(X.indices, original[1])
    y = np.array([0, 1])
    p = jl.Params(jnp.asarray([0.5, -1.0, 2.0]), jnp.asarray(0.1))
    np.testing.assert_allclose(jl.objective(p, X, y), jl.objective(p, X.toarray(), y), rtol=1e-6)


def _csr_unchecked(data, indices, indptr, shape):
    X = sp.csr_matrix(shape)
    X.data, X.indices, X.indptr = (np.asarray(data, np.float64), np.asarray(indices, np.int32),
                                   np.asarray(indptr, np.int32))
    return X


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (sp.csr_matrix(np.array([[1.0, np.nan], [0.0, 1.0]])), ValueError,
         r"X must be finite.*1 NaN or inf.*row 0"),
        (sp.csr_matrix(np.array([[1.0, 0.0], [0.0, np.inf]])), ValueError, r"X must be finite.*row 1"),
        (_csr_unchecked([1.0, 2.0], [0, 5], [0, 1, 2], (2, 3)), ValueError,
         r"X has invalid sparse indices"),
        (_csr_unchecked([1.0, 2.0], [0, -1], [0, 1, 2], (2, 3)), ValueError,
         r"X has invalid sparse indices"),
        (sp.csr_matrix(np.array([[1, 0], [0, 1]])), TypeError, r"X must have a floating dtype"),
        (sp.csr_matrix((0, 3)), ValueError, r"X must be non-empty"),
        (sp.csr_matrix((2, 2**31)), ValueError, r"X must have at most 2147483647 rows, columns"),
        (jsparse.BCOO.fromdense(jnp.ones((2, 3, 2)), n_batch=1), ValueError,
         r"X must be a 2-D sparse matrix without batch or dense dimensions"),
    ],
)
def test_bad_sparse_input_names_x(X, error, match):
    with pytest.raises(error, match=match):
        jl.fit(X, np.array([0, 1]))


def test_bcoo_with_out_of_range_indices_is_refused():
    X = jsparse.BCOO((jnp.array([1.0, 2.0]), jnp.array([[0, 0], [1, 7]])), shape=(2, 3))
    with pytest.raises(ValueError, match="X has invalid sparse indices"):
        jl.fit(X, np.array([0, 1]))


def test_minibatches_and_meshes_with_sparse_x_are_refused_with_the_parameter():
    X, y = _problem(100, 10)
    with pytest.raises(ValueError, match="batch_size must be None for sparse X"):
        jl.fit(X, y, solver="sgd", batch_size=10)
    with pytest.raises(ValueError, match="mesh must be None for sparse X"):
        jl.fit(X, y, mesh=jl.make_mesh())
    with pytest.raises(ValueError, match="mesh must be None for sparse X"):
        jl.fit_path(X, y, [1.0], mesh=jl.make_mesh())


def test_the_training_layout_keeps_only_the_entries():
    X, _ = _problem(1000, 500, density=0.01)
    S = check_X(X)
    assert isinstance(S, CooMatrix)
    assert S.data.shape == (X.nnz,) and S.shape == (1000, 500)


def test_sparse_values_overflowing_float32_name_the_row():
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1e300], [2.0, 0.0]]))
    with pytest.raises(ValueError, match=r"X must be finite in float32, but 1e\+300 in row 1 "
                                         r"\(0-based\) of X overflows it; use dtype='float64'"):
        jl.fit(X, np.array([0, 1, 0]), dtype="float32")
