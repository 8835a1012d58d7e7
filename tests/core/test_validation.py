"""Bad input to every public function gives an error that names the parameter and what was given."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

import jaxlogreg as jl

M, N = 23, 4  # the shared test shape: compiled programs are reused across tests

_rng = np.random.default_rng(30)
X_OK = _rng.normal(size=(M, N)).astype(np.float32)
Y_OK = _rng.integers(0, 2, size=M)
Y3_OK = _rng.integers(0, 3, size=M)
P2 = jl.init_params(N)
P3 = jl.init_params(N, 3)


def with_value(a, index, value):
    a = np.array(a, dtype=np.result_type(a, type(value)))
    a[index] = value
    return a


def corrupted(X, array, index, value):
    """A copy of the sparse X with ``X.<array>[index] = value``, as a user's code may leave it
    (scipy checks its arrays only when the matrix is built)."""
    X = X.copy()
    getattr(X, array)[index] = value
    return X


X_CSR = sp.csr_array(np.where(np.abs(X_OK) > 0.5, X_OK, 0))  # about 60 % non-zero


# Every function that takes (params, X, y, sample_weight, l2), called the same way.
PROBLEM_FUNCTIONS = {
    "objective": lambda p, X, y, sw=None, l2=0.0: jl.objective(p, X, y, sw, l2),
    "backward": lambda p, X, y, sw=None, l2=0.0: jl.backward(p, X, y, sw, l2),
    "check_gradients": lambda p, X, y, sw=None, l2=0.0: jl.check_gradients(
        X, y, p, sample_weight=sw, l2=l2, max_coords=1
    ),
}


def _with_valid_y(f):
    return lambda p, X: f(p, X, Y_OK if p.w.ndim == 1 else Y3_OK)


# Every function that takes (params, X): the forward pass and the problem functions above.
X_FUNCTIONS = {
    "logits": jl.logits,
    "predict_proba": jl.predict_proba,
    "predict": jl.predict,
    **{name: _with_valid_y(f) for name, f in PROBLEM_FUNCTIONS.items()},
}

# --- X and params: every public function ----------------------------------------------------------

X_CASES = {
    "nan": (
        with_value(X_OK, (1, 2), np.nan),
        ValueError,
        r"X must be finite, got 1 NaN or inf value\(s\) in array of shape \(23, 4\)",
    ),
    "inf": (
        with_value(with_value(X_OK, (0, 0), np.inf), (3, 1), -np.inf),
        ValueError,
        r"X must be finite, got 2 NaN or inf value\(s\)",
    ),
    "nan_jax_array": (
        jnp.asarray(with_value(X_OK, (1, 2), np.nan)),
        ValueError,
        r"X must be finite, got 1 NaN or inf",
    ),
    "int": (
        np.ones((M, N), np.int64),
        TypeError,
        r"X must have a floating dtype .*got dtype int64",
    ),
    "bool": (np.ones((M, N), bool), TypeError, r"X must have a floating dtype .*got dtype bool"),
    "string": (np.full((M, N), "a"), TypeError, r"X must hold real numbers .*got dtype <U1"),
    "object": (X_OK.astype(object), TypeError, r"X must hold real numbers .*got dtype object"),
    "not_array_like": (object(), TypeError, r"X must hold real numbers .*got dtype object"),
    "1d": (
        X_OK[0],
        ValueError,
        r"X must be 2-D with shape \(n_samples, n_features\), got array of shape \(4,\)",
    ),
    "3d": (X_OK[None], ValueError, r"X must be 2-D .*got array of shape \(1, 23, 4\)"),
    "no_rows": (
        np.zeros((0, N), np.float32),
        ValueError,
        r"X must not be empty, got array of shape \(0, 4\)",
    ),
    "no_columns": (
        np.zeros((M, 0), np.float32),
        ValueError,
        r"X must not be empty, got array of shape \(23, 0\)",
    ),
    # sparse X whose index arrays were changed after scipy built it: checked before any
    # conversion or product (scipy's native code would read or write out of bounds)
    "csr_column_out_of_range": (
        corrupted(X_CSR, "indices", 0, N + 3),
        ValueError,
        r"X has invalid sparse indices: column index 7 of entry 0 \(row 0\) is outside \[0, 4\)",
    ),
    "csr_indptr_decreasing": (
        corrupted(X_CSR, "indptr", 3, 0),
        ValueError,
        r"X has invalid sparse indices: indptr must not decrease",
    ),
    "csc_row_out_of_range": (
        corrupted(X_CSR.tocsc(), "indices", 0, M + 3),
        ValueError,
        r"X has invalid sparse indices: row index 26 of entry 0 \(column 0\) is outside",
    ),
    "coo_row_out_of_range": (
        corrupted(X_CSR.tocoo(), "row", 0, M + 5),
        ValueError,
        r"X has invalid sparse indices: row index 28 of entry 0 is outside \[0, 23\)",
    ),
    "bcoo_value_outside": (
        jsparse.BCOO((jnp.ones(2), jnp.array([[0, 0], [M, 0]])), shape=(M, N)),
        ValueError,
        r"X has invalid sparse indices: entry 1 at \(23, 0\) is outside the shape .*value 1.0",
    ),
}


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("case", X_CASES)
@pytest.mark.parametrize("fn", X_FUNCTIONS)
def test_bad_X(fn, case, n_classes):
    X, error, match = X_CASES[case]
    with pytest.raises(error, match=match):
        X_FUNCTIONS[fn](P2 if n_classes == 2 else P3, X)


PARAMS_CASES = {
    "too_many_features": (
        jl.init_params(N + 1),
        ValueError,
        r"params.w must have 4 rows to match X's 4 features, got w of shape \(5,\)",
    ),
    "too_few_features_multinomial": (
        jl.init_params(N - 1, 3),
        ValueError,
        r"params.w must have 4 rows .*got w of shape \(3, 3\)",
    ),
    "tuple": (
        (jnp.zeros(N), jnp.zeros(())),
        TypeError,
        r"params must be jaxlogreg.Params\(w, b\), got tuple",
    ),
    "dict": (
        {"w": jnp.zeros(N), "b": jnp.zeros(())},
        TypeError,
        r"params must be jaxlogreg.Params\(w, b\), got dict",
    ),
    "b_shape": (
        jl.Params(jnp.zeros(N), jnp.zeros(2)),
        ValueError,
        r"params must be binary .* or multinomial .*got w \(4,\) and b \(2,\)",
    ),
    "one_class": (
        jl.Params(jnp.zeros((N, 1)), jnp.zeros(1)),
        ValueError,
        r"params must be binary .*got w \(4, 1\) and b \(1,\)",
    ),
    "b_vs_w_classes": (
        jl.Params(jnp.zeros((N, 3)), jnp.zeros(4)),
        ValueError,
        r"params must be .*got w \(4, 3\) and b \(4,\)",
    ),
}


@pytest.mark.parametrize("case", PARAMS_CASES)
@pytest.mark.parametrize("fn", ["logits", "predict_proba", "predict"])
def test_bad_params_forward(fn, case):
    params, error, match = PARAMS_CASES[case]
    with pytest.raises(error, match=match):
        X_FUNCTIONS[fn](params, X_OK)


@pytest.mark.parametrize("case", PARAMS_CASES)
@pytest.mark.parametrize("fn", PROBLEM_FUNCTIONS)
def test_bad_params_problem(fn, case):
    params, error, match = PARAMS_CASES[case]
    with pytest.raises(error, match=match):
        PROBLEM_FUNCTIONS[fn](params, X_OK, Y_OK)


# --- y --------------------------------------------------------------------------------------------

BINARY_Y_CASES = {
    "short": (
        Y_OK[:-1],
        ValueError,
        r"y must have shape \(23,\) to match X's 23 samples, got shape \(22,\)",
    ),
    "empty": (np.zeros(0, np.int64), ValueError, r"y must have shape \(23,\) .*got shape \(0,\)"),
    "2d": (
        Y_OK[:, None],
        ValueError,
        r"y must be 1-D with shape \(n_samples,\), got array of shape \(23, 1\)",
    ),
    "nan": (
        with_value(Y_OK, 4, np.nan),
        ValueError,
        r"y must be finite, got 1 NaN or inf value\(s\)",
    ),
    "inf": (with_value(Y_OK, 4, np.inf), ValueError, r"y must be finite, got 1 NaN or inf"),
    "label_2_and_minus_1": (
        with_value(with_value(Y_OK, 0, 2), 1, -1),
        ValueError,
        r"y must hold binary labels 0 or 1, got value\(s\) \[-1, 2\]",
    ),
    "fraction": (
        with_value(Y_OK, 3, 0.5),
        ValueError,
        r"y must hold binary labels 0 or 1, got value\(s\) \[0.5\]",
    ),
    "string": (np.array(["cat"] * M), TypeError, r"y must hold real numbers .*got dtype <U3"),
    "sparse": (
        sp.csr_array(Y_OK[:, None]),
        TypeError,
        r"y must be a 1-D array of labels, got a sparse matrix of shape \(23, 1\)",
    ),
}


@pytest.mark.parametrize("case", BINARY_Y_CASES)
@pytest.mark.parametrize("fn", PROBLEM_FUNCTIONS)
def test_bad_binary_y(fn, case):
    y, error, match = BINARY_Y_CASES[case]
    with pytest.raises(error, match=match):
        PROBLEM_FUNCTIONS[fn](P2, X_OK, y)


MULTINOMIAL_Y_CASES = {
    "class_out_of_range": (
        with_value(Y3_OK, 2, 3),
        ValueError,
        r"y must hold class indices in \[0, 2\], got values from 0 to 3",
    ),
    "negative_class": (
        with_value(Y3_OK, 2, -1),
        ValueError,
        r"y must hold class indices in \[0, 2\], got values from -1 to 2",
    ),
    "float_labels": (
        Y3_OK.astype(np.float64),
        TypeError,
        r"y must hold integer class indices for 3 classes, got dtype float64",
    ),
    "nan": (
        with_value(Y3_OK, 0, np.nan),
        TypeError,
        r"y must hold integer class indices for 3 classes, got dtype float64",
    ),
    "short": (Y3_OK[:5], ValueError, r"y must have shape \(23,\) .*got shape \(5,\)"),
}


@pytest.mark.parametrize("case", MULTINOMIAL_Y_CASES)
@pytest.mark.parametrize("fn", PROBLEM_FUNCTIONS)
def test_bad_multinomial_y(fn, case):
    y, error, match = MULTINOMIAL_Y_CASES[case]
    with pytest.raises(error, match=match):
        PROBLEM_FUNCTIONS[fn](P3, X_OK, y)


# --- sample_weight ----------------------------------------------------------------------------

SW_OK = np.linspace(0.5, 2.0, M)
SAMPLE_WEIGHT_CASES = {
    "short": (
        SW_OK[:-2],
        ValueError,
        r"sample_weight must have shape \(23,\) to match X's 23 samples, got shape \(21,\)",
    ),
    "empty": (np.zeros(0), ValueError, r"sample_weight must have shape \(23,\) .*got shape \(0,\)"),
    "2d": (SW_OK[:, None], ValueError, r"sample_weight must be 1-D .*got array of shape \(23, 1\)"),
    "nan": (
        with_value(SW_OK, 5, np.nan),
        ValueError,
        r"sample_weight must be finite, got 1 NaN or inf value\(s\)",
    ),
    "inf": (with_value(SW_OK, 5, np.inf), ValueError, r"sample_weight must be finite, got 1 NaN"),
    "negative": (
        with_value(SW_OK, 5, -1.0),
        ValueError,
        r"sample_weight must be >= 0, got minimum -1.0",
    ),
    "all_zero": (np.zeros(M), ValueError, r"sample_weight must have a positive sum, got all zeros"),
    "string": (
        np.array(["1"] * M),
        TypeError,
        r"sample_weight must hold real numbers .*got dtype <U1",
    ),
    "sparse": (
        sp.csr_array(SW_OK[None, :]),
        TypeError,
        r"sample_weight must be a 1-D array of weights, got a sparse matrix of shape \(1, 23\)",
    ),
}


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("case", SAMPLE_WEIGHT_CASES)
@pytest.mark.parametrize("fn", PROBLEM_FUNCTIONS)
def test_bad_sample_weight(fn, case, n_classes):
    sw, error, match = SAMPLE_WEIGHT_CASES[case]
    params, y = (P2, Y_OK) if n_classes == 2 else (P3, Y3_OK)
    with pytest.raises(error, match=match):
        PROBLEM_FUNCTIONS[fn](params, X_OK, y, sw)


# --- l2 ---------------------------------------------------------------------------------------

L2_CASES = {
    "negative": (-1.0, r"l2 must be a finite real number >= 0, got -1.0"),
    "nan": (float("nan"), r"l2 must be a finite real number >= 0, got nan"),
    "inf": (float("inf"), r"l2 must be .*got inf"),
    "string": ("0.1", r"l2 must be .*got '0.1'"),
    "none": (None, r"l2 must be .*got None"),
    "bool": (True, r"l2 must be .*got True"),
    "vector": (np.array([0.1, 0.2]), r"l2 must be .*got array\(\[0.1, 0.2\]\)"),
    "negative_0d_array": (np.array(-0.5), r"l2 must be .*got -0.5"),
}


@pytest.mark.parametrize("case", L2_CASES)
@pytest.mark.parametrize("fn", PROBLEM_FUNCTIONS)
def test_bad_l2(fn, case):
    l2, match = L2_CASES[case]
    with pytest.raises(ValueError, match=match):
        PROBLEM_FUNCTIONS[fn](P2, X_OK, Y_OK, None, l2)


# --- init_params ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0,), ValueError, r"n_features must be an integer >= 1, got 0"),
        ((-3,), ValueError, r"n_features must be an integer >= 1, got -3"),
        ((2.0,), ValueError, r"n_features must be an integer >= 1, got 2.0"),
        ((True,), ValueError, r"n_features must be an integer >= 1, got True"),
        (("4",), ValueError, r"n_features must be an integer >= 1, got '4'"),
        ((None,), ValueError, r"n_features must be an integer >= 1, got None"),
        ((4, 1), ValueError, r"n_classes must be an integer >= 2, got 1"),
        ((4, 0), ValueError, r"n_classes must be an integer >= 2, got 0"),
        ((4, 2.5), ValueError, r"n_classes must be an integer >= 2, got 2.5"),
        (
            (4, 2, "int32"),
            TypeError,
            r"dtype must be a floating dtype such as float32, got 'int32'",
        ),
        ((4, 2, jnp.int8), TypeError, r"dtype must be a floating dtype .*got <class"),
        ((4, 2, "complex64"), TypeError, r"dtype must be a floating dtype .*got 'complex64'"),
        ((4, 2, "not-a-dtype"), TypeError, r"dtype must be a floating dtype .*got 'not-a-dtype'"),
    ],
)
def test_bad_init_params(args, error, match):
    with pytest.raises(error, match=match):
        jl.init_params(*args)


def test_init_params_accepts_numpy_integers():
    params = jl.init_params(np.int64(N), np.int32(3))
    assert params.w.shape == (N, 3)


# --- valid input that must not be rejected ------------------------------------------------------


def test_accepted_input_variants():
    """Lists, bool and float 0/1 labels, integer weights and 0-d array l2 all give the same J."""
    sw = np.arange(1, M + 1)
    expected = float(jl.objective(P2, X_OK, Y_OK, sw.astype(np.float32), 0.25))
    variants = [
        (X_OK.tolist(), Y_OK.tolist(), sw.tolist(), 0.25),
        (X_OK, Y_OK.astype(bool), sw, 0.25),
        (jnp.asarray(X_OK), Y_OK.astype(np.float32), sw, np.float32(0.25)),
        (X_OK, Y_OK, sw, np.array(0.25)),
        (X_OK, Y_OK, sw, jnp.asarray(0.25)),
        (X_OK, Y_OK, sw, 0),  # an int l2 is fine
    ]
    for X, y, w, l2 in variants:
        got = float(jl.objective(P2, X, y, w, l2))
        if l2 == 0:
            assert got == pytest.approx(float(jl.objective(P2, X_OK, Y_OK, sw, 0.0)), rel=1e-6)
        else:
            assert got == pytest.approx(expected, rel=1e-6)


def test_zero_weights_are_fine_while_the_sum_is_positive():
    sw = np.zeros(M)
    sw[:3] = 1.0
    params = jl.Params(jnp.full(N, 0.3, jnp.float32), jnp.asarray(0.1, jnp.float32))
    J = jl.objective(params, X_OK, Y_OK, sw)
    np.testing.assert_allclose(J, jl.objective(params, X_OK[:3], Y_OK[:3]), rtol=1e-6)


# --- under jit the static (shape/dtype) checks still run ------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((P2, X_OK, Y_OK[:-1]), ValueError, r"y must have shape \(23,\) .*got shape \(22,\)"),
        ((jl.init_params(N + 1), X_OK, Y_OK), ValueError, r"params.w must have 4 rows"),
        ((P2, X_OK.astype(np.int32), Y_OK), TypeError, r"X must have a floating dtype .*int32"),
        ((P2, X_OK, Y_OK, SW_OK[:-1]), ValueError, r"sample_weight must have shape \(23,\)"),
        ((P3, X_OK, Y3_OK.astype(np.float32)), TypeError, r"y must hold integer class indices"),
    ],
)
@pytest.mark.parametrize("fn", [jl.objective, jl.backward])
def test_static_checks_run_under_jit(fn, args, error, match):
    with pytest.raises(error, match=match):
        jax.jit(fn)(*args)
