"""Sparse X whose index arrays are wrong, at every entry point that takes X: a clear error naming
X before scipy's native conversions or products read them (they would crash the process, read
out of bounds, or drop the entry in silence); JAX's padded BCOO/BCSR accepted; sparse y refused.

The bad matrices are built valid, then changed, as a user's code can: scipy checks a matrix's
arrays only when it builds it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

import jaxlogreg as jl
from jaxlogreg.core.sparse import as_csr, check_sparse

M, N = 40, 6
_rng = np.random.default_rng(7)
X_DENSE = np.where(_rng.random((M, N)) < 0.5, _rng.standard_normal((M, N)), 0.0)
X_DENSE[0, 0] = 1.0  # entry 0 of every format is (0, 0)
Y = (X_DENSE @ _rng.standard_normal(N) > 0).astype(np.int64)
X_CSR = sp.csr_array(X_DENSE)


def corrupted(X, array, index, value):
    """A copy of X with ``X.<array>[index] = value``."""
    X = X.copy()
    getattr(X, array)[index] = value
    return X


def _lil_with_a_value_too_many():
    X = sp.lil_array(X_DENSE)
    X.data[0] = X.data[0] + [1.0]  # scipy's tocsr would write past its arrays
    return X


def _dia_with_fewer_offsets():
    X = sp.dia_array(X_DENSE)
    X.offsets = X.offsets[:1]  # scipy's tocsr would read offsets past their end
    return X


def _dok_out_of_range():
    X = sp.dok_array(X_DENSE)
    entries = getattr(X, "_dict", X)  # before scipy 1.12 the DOK is itself the dict
    dict.__setitem__(entries, (M + 2, 0), 1.0)  # no bound check
    return X


BAD = {  # name: (matrix, what the message says after "X has invalid sparse indices: ")
    "csr_column_n_plus_3": (corrupted(X_CSR, "indices", 0, N + 3),
                            r"column index 9 of entry 0 \(row 0\) is outside \[0, 6\)"),
    "csr_column_1e7": (corrupted(X_CSR, "indices", 0, 10**7), r"column index 10000000 of entry 0"),
    "csr_column_negative": (corrupted(X_CSR, "indices", 0, -1), r"column index -1 of entry 0"),
    "csr_indptr_not_monotone": (corrupted(X_CSR, "indptr", 2, X_CSR.indptr[4]),
                                r"indptr must not decrease, but it goes from \d+ to \d+ at row 2"),
    "csr_indptr_past_the_entries": (corrupted(X_CSR, "indptr", -1, X_CSR.nnz + 5),
                                    rf"indptr must end at most at the {X_CSR.nnz} stored entries"),
    "csr_indptr_not_from_0": (corrupted(X_CSR, "indptr", 0, 1), r"indptr must start at 0, got 1"),
    "csc_row_m_plus_3": (corrupted(X_CSR.tocsc(), "indices", 0, M + 3),
                         r"row index 43 of entry 0 \(column 0\) is outside \[0, 40\)"),
    "csc_row_1e8": (corrupted(X_CSR.tocsc(), "indices", 0, 10**8), r"row index 100000000"),
    "coo_row_m_plus_5": (corrupted(X_CSR.tocoo(), "row", 0, M + 5),
                         r"row index 45 of entry 0 is outside \[0, 40\)"),
    "coo_row_1e8": (corrupted(X_CSR.tocoo(), "row", 0, 10**8), r"row index 100000000"),
    "coo_column_n": (corrupted(X_CSR.tocoo(), "col", 0, N), r"column index 6 of entry 0"),
    "bsr_block_column": (corrupted(sp.bsr_array(X_DENSE, blocksize=(2, 2)), "indices", 0, 3),
                         r"block column index 3 of entry 0 \(block row 0\) is outside \[0, 3\)"),
    "lil_value_without_column": (_lil_with_a_value_too_many(),
                                 r"row 0 has \d+ column indices but \d+ values"),
    "dia_fewer_offsets": (_dia_with_fewer_offsets(), r"DIA data must have one row per offset"),
    "dok_row_out_of_range": (_dok_out_of_range(), r".*index 42\b"),  # scipy's COO check
}


@pytest.fixture(scope="module")
def fitted():
    return (jl.LogisticRegression().fit(X_CSR, Y),
            jl.LogisticRegressionCV(Cs=2, cv=2).fit(X_CSR, Y))


ENTRY_POINTS = {  # name: function of (X, fitted models)
    "LogisticRegression.fit": lambda X, f: jl.LogisticRegression(max_iter=5).fit(X, Y),
    "LogisticRegression.predict_proba": lambda X, f: f[0].predict_proba(X),
    "LogisticRegression.predict": lambda X, f: f[0].predict(X),
    "LogisticRegression.decision_function": lambda X, f: f[0].decision_function(X),
    "LogisticRegression.score": lambda X, f: f[0].score(X, Y),
    "LogisticRegressionCV.fit": lambda X, f: jl.LogisticRegressionCV(Cs=2, cv=2).fit(X, Y),
    "LogisticRegressionCV.predict_proba": lambda X, f: f[1].predict_proba(X),
    "fit": lambda X, f: jl.fit(X, Y, max_iter=3),
    "fit_path": lambda X, f: jl.fit_path(X, Y, [1.0], max_iter=3),
    "fit_streaming": lambda X, f: jl.fit_streaming(X, Y, solver="sgd", batch_size=8, max_iter=1),
    "objective": lambda X, f: jl.objective(jl.init_params(N), X, Y),
    "predict_proba": lambda X, f: jl.predict_proba(jl.init_params(N), X),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", BAD)
def test_bad_sparse_indices_are_refused_at_every_entry_point(case, entry, fitted):
    X, detail = BAD[case]
    match = r"X has invalid sparse indices: " + detail
    if entry == "fit_streaming" and X.format == "csr":  # CSR rows are checked as they are read
        match = r"X: (column index -?\d+ out of range \[0, 6\) in row 0|indptr must)"
    with pytest.raises(ValueError, match=match):
        ENTRY_POINTS[entry](X, fitted)


def _arrays(X):
    return (X.data, X.row, X.col) if X.format == "coo" else (X.data, X.indices, X.indptr)


def test_checking_changes_nothing_and_keeps_the_format():
    for X in (X_CSR, X_CSR.tocsc(), X_CSR.tocoo(), sp.bsr_array(X_DENSE, blocksize=(2, 2))):
        before = [a.copy() for a in _arrays(X)]
        assert check_sparse(X) is X
        for old, new in zip(before, _arrays(X), strict=True):
            np.testing.assert_array_equal(old, new)
    for X in (sp.lil_array(X_DENSE), sp.dia_array(X_DENSE), sp.dok_array(X_DENSE)):
        checked = check_sparse(X)
        assert checked.format == "csr"
        np.testing.assert_array_equal(checked.toarray(), X_DENSE)


def test_storage_past_indptr_end_is_not_part_of_the_matrix():
    """scipy allows len(indices) > indptr[-1]; the extra entries (even NaN) are ignored."""
    X = X_CSR.copy()
    X.indices = np.append(X.indices, np.int32(10**7))
    X.data = np.append(X.data, np.nan)
    np.testing.assert_array_equal(as_csr(X).toarray(), X_DENSE)
    p = jl.Params(jnp.linspace(-1.0, 1.0, N), jnp.asarray(0.2))
    np.testing.assert_allclose(jl.objective(p, X, Y), jl.objective(p, X_DENSE, Y), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bcoo", "bcsr"])
def test_jax_padded_sparse_matrices_fit_like_unpadded_ones(fmt):
    """``fromdense(x, nse=k)`` with k > nnz pads with entries out of range of value 0 (JAX's
    convention): they are dropped."""
    cls = jsparse.BCOO if fmt == "bcoo" else jsparse.BCSR
    x = jnp.asarray(X_DENSE, jnp.float32)
    padded, plain = cls.fromdense(x, nse=X_CSR.nnz + 7), cls.fromdense(x)
    assert np.asarray(padded.data)[-1] == 0
    np.testing.assert_array_equal(as_csr(padded).toarray(), X_DENSE.astype(np.float32))
    clf = jl.LogisticRegression(tol=1e-6).fit(padded, Y)
    ref = jl.LogisticRegression(tol=1e-6).fit(plain, Y)
    tol = 1e3 * np.finfo(np.float32).eps
    np.testing.assert_allclose(clf.coef_, ref.coef_, rtol=tol, atol=tol)
    np.testing.assert_allclose(clf.predict_proba(padded), ref.predict_proba(plain), rtol=tol)


def test_a_bcsr_index_out_of_range_is_refused():
    X = jsparse.BCSR((jnp.ones(2), jnp.array([0, N + 1]), jnp.array([0, 1, 2] + [2] * (M - 2))),
                     shape=(M, N))
    with pytest.raises(ValueError, match=r"X has invalid sparse indices: column index 7 of "
                                         r"entry 1 \(row 1\) is outside \[0, 6\)"):
        jl.fit(X, Y)


SPARSE_Y = sp.csr_array(Y[:, None])


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (lambda: jl.fit(X_CSR, SPARSE_Y),
         r"y must be a 1-D array of labels, got a sparse matrix of shape \(40, 1\)"),
        (lambda: jl.objective(jl.init_params(N), X_CSR, SPARSE_Y),
         r"y must be a 1-D array of labels, got a sparse matrix of shape \(40, 1\)"),
        # scikit-learn's own message names y
        (lambda: jl.LogisticRegression().fit(X_CSR, SPARSE_Y),
         r"Sparse data was passed for y, but dense data is required"),
        (lambda: jl.LogisticRegressionCV(Cs=2).fit(X_CSR, SPARSE_Y),
         r"Sparse data was passed for y, but dense data is required"),
    ],
)
def test_sparse_y_is_refused_naming_y(entry, match):
    with pytest.raises(TypeError, match=match):
        entry()
