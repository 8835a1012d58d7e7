"""What makes the working-set solver fast keeps its optimum: Anderson extrapolation of the
coordinate descent in C (on or off: one optimum, the same zeros), the columns of a working set
read from X by the bitmap scan (equal to scipy's), the subproblems' tolerance lowered to what
the duality gap needs once the working set holds the violations (fewer rounds, the same
certified optimum), a working set of most features that holds them all (X read once, the same
optimum), and the certificate's intercept shift that stops once converged."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.sparse as sp
from _sparse_l1 import sparse_l1_problem

from jaxlogreg.kernels import native
from jaxlogreg.kernels.native_cd import MAX_ANDERSON, HostX, solve_subproblem
from jaxlogreg.training import certificate, working_set
from jaxlogreg.training.working_set import (
    ANDERSON,
    CERTIFY,
    FULL_SHARE,
    NEWTON,
    Rounds,
    duality_gap,
    solve,
    working_set_size,
)

EPS = np.finfo(np.float64).eps


@pytest.fixture(autouse=True)
def _library():
    if not native.available():
        pytest.skip(f"the native library is not available: {native.build_error()}")


def _problem(m=400, n=300, seed=0):
    """Correlated columns (a shared factor) and a weak penalty: coordinate descent needs many
    sweeps, where the extrapolation has iterates to work on."""
    X, y = sparse_l1_problem(m, n, density=0.1, n_true=30, seed=seed)
    X = sp.csr_array(X + 0.5 * sp.random(m, 1, density=1.0, random_state=seed) @ np.ones((1, n))
                     * sp.random(1, n, density=0.5, random_state=seed + 1).toarray())
    s = np.full(m, 1.0 / m)
    l1 = 0.02 * float(np.max(np.abs(X.T @ (s * (y - y.mean())))))
    return X, y.astype(np.float64), s, l1


def _subproblem(X, y, s, l1, settings):
    """Every column of X as the working set, solved from 0 to KKT violation 1e-12."""
    m, n = X.shape
    v, z = np.zeros(n + 1), np.zeros(m)
    solve_subproblem(HostX.of(X).columns(np.arange(n)), y, s, l1, 0.0, True, v, z, 1e-12,
                     settings)
    return v


def test_anderson_on_and_off_reach_one_optimum_with_the_same_zeros():
    X, y, s, l1 = _problem()
    plain, fast = (_subproblem(X, y, s, l1, NEWTON._replace(anderson=K)) for K in (0, ANDERSON))
    J_plain, J_fast = (duality_gap(X, y, s, v[:-1], v[-1], l1, 0.0, True)[0]
                       for v in (plain, fast))
    assert abs(J_fast - J_plain) <= 1e-9 * J_plain
    np.testing.assert_array_equal(plain[:-1] == 0, fast[:-1] == 0)
    assert 0 < np.count_nonzero(fast[:-1]) < X.shape[1]


def test_anderson_on_and_off_give_one_certified_fit(monkeypatch):
    X, y, _, l1 = _problem(seed=1)
    fits = []
    for K in (0, ANDERSON):
        monkeypatch.setattr(working_set, "NEWTON", NEWTON._replace(anderson=K))
        fits.append(solve(X, y, None, l1, tol=1e-10))
    assert all(r.status == "converged" for r in fits)
    assert abs(fits[0].objective - fits[1].objective) <= 1e-9 * fits[0].objective
    np.testing.assert_array_equal(fits[0].w == 0, fits[1].w == 0)


@pytest.mark.parametrize("K", [-1, MAX_ANDERSON + 1])
def test_an_anderson_memory_out_of_range_is_refused_before_native_code(K):
    X, y, s, l1 = _problem(m=20, n=5)
    with pytest.raises(ValueError, match=rf"settings.anderson must be in \[0, {MAX_ANDERSON}\]"):
        _subproblem(X, y, s, l1, NEWTON._replace(anderson=K))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_working_set_columns_are_those_of_x(dtype):
    X = sp.random(200, 120, density=0.1, random_state=3, format="csr", dtype=dtype)
    ws = np.r_[np.arange(0, 60, 3), np.arange(61, 120, 2)]
    columns = HostX.of(X).columns(ws)
    assert columns.vals.dtype == dtype
    np.testing.assert_array_equal(sp.csc_array(
        (columns.vals, columns.rowind, columns.colptr), shape=columns.shape).toarray(),
        X.tocsc()[:, ws].toarray())
    with pytest.raises(ValueError, match="the working set must be sorted distinct"):
        HostX.of(X).columns(ws[::-1])


def test_the_inner_tolerance_is_what_the_gap_needs_once_the_working_set_holds_it():
    rounds = Rounds()
    loose = rounds.share * 1e-3
    need = CERTIFY * 1e-6 * 0.5 / 10.0  # CERTIFY tol J / ||w||₁
    assert rounds.inner_tol(0.5, 1e-6, 1e-3, 10.0, 1e-4) == loose  # violations outside W
    assert rounds.inner_tol(0.5, 1e-6, 1e-3, 10.0, 0.0) == pytest.approx(need)
    assert rounds.inner_tol(0.5, 1e-6, 1e-3, 0.0, 0.0) == loose  # w = 0: no such bound
    assert rounds.inner_tol(0.5, 1.0, 1e-3, 10.0, 0.0) == loose  # looser than the share


def test_the_gaps_tolerance_takes_fewer_rounds_to_the_same_certified_optimum(monkeypatch):
    X, y = sparse_l1_problem(2000, 1500, density=0.01, n_true=40, seed=2)
    s = np.full(len(y), 1.0 / len(y))
    l1 = 0.05 * float(np.max(np.abs(X.T @ (s * (y - y.mean())))))
    fast = solve(X, y, None, l1, tol=1e-8)
    monkeypatch.setattr(Rounds, "inner_tol", lambda self, J, tol, worst, l1_norm, outside:
                        self.share * worst)
    loose = solve(X, y, None, l1, tol=1e-8)
    assert fast.status == loose.status == "converged"
    assert fast.rounds < loose.rounds
    assert abs(fast.objective - loose.objective) <= 1e-8 * loose.objective
    np.testing.assert_array_equal(fast.w != 0, loose.w != 0)


def test_a_working_set_of_most_features_holds_them_all_and_reads_x_once(monkeypatch):
    cap = 4000
    assert working_set_size(2000, 0, 0, cap) < FULL_SHARE * cap  # below the share: as it was
    assert working_set_size(int(FULL_SHARE * cap), 0, 0, cap) == cap
    assert working_set_size(int(FULL_SHARE * cap), 0, 0, cap, every_feature=False) < cap
    X, y = sparse_l1_problem(500, 2000, density=0.05, n_true=40, seed=3)
    s = np.full(len(y), 1.0 / len(y))
    l1 = float(np.quantile(np.abs(X.T @ (s * (y - y.mean()))), 0.3))  # 70% of features violate
    reads, read = [], HostX.columns
    monkeypatch.setattr(HostX, "columns",
                        lambda host, ws, earlier=None: reads.append(ws.size) or read(host, ws))
    every = solve(X, y, s, l1, tol=1e-8)
    assert every.status == "converged" and reads == [X.shape[1]]
    monkeypatch.setattr(working_set, "FULL_SHARE", 2.0)  # never every feature
    grown = solve(X, y, s, l1, tol=1e-8)
    assert grown.status == "converged" and max(reads[1:]) < X.shape[1]
    assert abs(every.objective - grown.objective) <= 1e-8 * grown.objective
    np.testing.assert_array_equal(every.w != 0, grown.w != 0)


@pytest.mark.parametrize("scale, offset", [(0.5, 0.0), (3.0, 2.0), (8.0, -5.0)])
def test_the_intercept_shift_balances_the_classes_to_rounding(scale, offset):
    rng = np.random.default_rng(6)
    z = scale * rng.standard_normal(5000) + offset
    y = (rng.random(5000) < 0.3).astype(np.float64)
    s = rng.random(5000)
    s /= s.sum()
    with jax.enable_x64(True):
        delta = float(certificate.intercept_shift(z, y, s))
    balance = float(np.sum(s * (1 / (1 + np.exp(-(z + delta)))))) - float(s @ y)
    assert abs(balance) <= 1e3 * EPS
