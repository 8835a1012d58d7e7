"""What makes the L1 path fast keeps its models: the strong rule's first working set
(``solve(..., l1_start=...)``, as the path passes it) gives the certified models of the
unscreened path in fewer rounds; a wrong screen costs rounds, never the certificate (the host
gap itself: ``test_host_gap.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from _sparse_l1 import sparse_l1_problem

import jaxlogreg as jl
from jaxlogreg.kernels import native
from jaxlogreg.training.working_set import duality_gap, solve, strong_rule

EPS = np.finfo(np.float64).eps
TOL = 1e-8  # the relative duality gap of the fits below


def test_the_strong_rule_keeps_the_features_within_twice_the_step_of_the_penalty():
    w = np.array([0.0, 0.5, 0.0, 0.0, 0.0])
    grad = np.array([0.85, -0.2, -0.79, 0.95, 0.1])
    # λ₁ = 0.9 from 1.0: off the support, |∇f_j| >= 0.8 is kept (features 0 and 3)
    assert strong_rule(w, grad, 0.9, 1.0) == 2
    assert strong_rule(w, grad, 0.9, 0.9) == 1  # no step: the violating feature alone
    assert strong_rule(np.zeros(5), np.zeros(5), 0.8, 1.0) == 0


def _path(X, y, lams, screen: bool):
    """(w, b, rounds, J) of each λ₁, from the largest, warm started; ``screen``: l1_start."""
    w, b, prev, out = None, 0.0, None, []
    for lam in lams:
        r = solve(X, y, None, lam, tol=TOL, max_iter=100, w0=w, b0=b,
                  l1_start=prev if screen else None)
        assert r.status == "converged" and r.gap <= TOL * r.objective
        w, b, prev = r.w, r.b, lam
        out.append((r.w, r.b, r.rounds, r.objective))
    return out


@pytest.fixture
def _library():
    if not native.available():
        pytest.skip(f"the native library is not available: {native.build_error()}")


@pytest.mark.usefixtures("_library")
def test_a_screened_path_gives_the_unscreened_models_in_fewer_rounds():
    X, y = sparse_l1_problem(400, 300, density=0.05, n_true=20, seed=5)
    s = np.full(400, 1 / 400)
    lam_max = float(np.max(np.abs(X.T @ (s * (y - y.mean())))))
    lams = lam_max * np.logspace(-0.1, -2, 12)
    screened, plain = _path(X, y, lams, True), _path(X, y, lams, False)
    for lam, (w, b, _, J), (w_ref, b_ref, _, J_ref) in zip(lams, screened, plain, strict=True):
        # both certified to gap <= TOL · J: their objectives within TOL of each other
        assert abs(J - J_ref) <= 2 * TOL * max(J, J_ref)
        J_check = duality_gap(X, y.astype(float), s, w, b, lam, 0.0, True)[0]
        assert abs(J_check - J) <= 100 * EPS * J
        # the same support, but for weights within the tolerance's reach of 0
        near_zero = np.sqrt(2 * TOL * J / lam) * 1e-2
        assert not np.any((w == 0) & (np.abs(w_ref) > near_zero))
        assert not np.any((w_ref == 0) & (np.abs(w) > near_zero))
    rounds, rounds_ref = (sum(p[2] for p in path[1:]) for path in (screened, plain))
    assert rounds <= len(lams) + 2 < rounds_ref  # about one round a model after the first


@pytest.mark.usefixtures("_library")
def test_a_wrong_screen_costs_rounds_not_the_certificate():
    X, y = sparse_l1_problem(300, 200, density=0.08, n_true=15, seed=6)
    s = np.full(300, 1 / 300)
    lam = 0.05 * float(np.max(np.abs(X.T @ (s * (y - y.mean())))))
    # l1_start = λ₁ from w = 0: "already optimal", the first set only the violating features
    r = solve(X, y, None, lam, tol=TOL, max_iter=100, l1_start=lam)
    ref = solve(X, y, None, lam, tol=TOL, max_iter=100)
    assert r.status == ref.status == "converged"
    assert r.gap <= TOL * r.objective and abs(r.objective - ref.objective) <= 2 * TOL * r.objective


@pytest.mark.usefixtures("_library")
def test_cross_validated_l1_path_models_are_certified_in_about_one_round_each():
    X, y = sparse_l1_problem(500, 400, density=0.04, n_true=25, seed=7)
    folds = [np.flatnonzero(np.arange(500) % 4 != f) for f in range(4)]
    m_f = 375
    s = np.full(m_f, 1 / m_f)
    rows = folds[0]
    lam_max = float(np.max(np.abs(X[rows].T @ (s * (y[rows] - y[rows].mean())))))
    Cs = 1 / (m_f * lam_max * np.logspace(-0.05, -2, 10))
    r = jl.fit_path(X, y, Cs, folds=folds, penalty="l1", tol=TOL, max_iter=100,
                    dtype="float64")
    assert r.converged.all()
    solved = r.n_iter[r.n_iter > 0]
    assert solved.size >= 30 and solved.mean() <= 1.5, r.n_iter
    for f, rows in enumerate(folds):  # each model's J certified on its fold: re-scored
        for c in range(len(Cs)):
            w, b = r.params.w[f, c, 0], r.params.b[f, c, 0]
            J, gap, _ = duality_gap(X[rows], y[rows].astype(float), s, w, b, r.l1[f, c, 0],
                                    0.0, True)
            assert gap <= 1.01 * TOL * J and abs(J - r.loss[f, c, 0]) <= 1e-12 * J


@pytest.mark.usefixtures("_library")
def test_the_last_solves_dual_point_gives_the_first_gap_of_the_next():
    X, y = sparse_l1_problem(300, 150, density=0.08, n_true=10, seed=8)
    s = np.full(300, 1 / 300)
    lam = 0.1 * float(np.max(np.abs(X.T @ (s * (y - y.mean())))))
    first = solve(X, y, None, lam, tol=TOL, max_iter=100)
    assert first.dual is not None and first.dual.v.shape == (150,)
    z = first.dual.z.copy()
    for l1 in (lam, 0.7 * lam):  # its own λ₁ (certified at once) and the next one's
        reused = solve(X, y, None, l1, tol=TOL, max_iter=100, w0=first.w, b0=first.b,
                       l1_start=lam, dual0=first.dual)
        fresh = solve(X, y, None, l1, tol=TOL, max_iter=100, w0=first.w, b0=first.b,
                      l1_start=lam)
        assert reused.status == fresh.status == "converged"
        assert abs(reused.history[0] - fresh.history[0]) <= 100 * EPS * fresh.history[0]
        assert abs(reused.objective - fresh.objective) <= 2 * TOL * fresh.objective
        np.testing.assert_array_equal(first.dual.z, z)  # dual0 is read, never written
    assert solve(X, y, None, lam, tol=TOL, w0=first.w, b0=first.b, dual0=first.dual).rounds == 0
    bad = first.dual._replace(v=first.dual.v[:-1])
    with pytest.raises(ValueError, match=r"dual0 must hold .* v of shape \(150,\)"):
        solve(X, y, None, lam, w0=first.w, b0=first.b, dual0=bad)


def test_fold_weight_sums_are_the_fold_problems_and_checked_before_any_fit(monkeypatch):
    from jaxlogreg.training import path_l1
    from jaxlogreg.training.problem import Problem

    X, y = sparse_l1_problem(60, 10, density=0.3, n_true=3, seed=9)
    weights = np.random.default_rng(9).uniform(0.5, 2.0, 60)
    rows = np.arange(0, 60, 2)
    for w in (None, weights):
        problem = Problem(X=X, y=y, weights=w, weight_sum=60.0 if w is None else 120.0,
                          n_classes=2, dtype="float64")
        assert path_l1.fold_weight_sum(problem, rows) == path_l1.fold_problem(
            problem, rows).weight_sum
    zero = np.r_[np.ones(30), np.zeros(30)]  # the second fold's rows all weigh 0
    problem = Problem(X=X, y=y, weights=zero, weight_sum=30.0, n_classes=2, dtype="float64")
    masks = np.stack([np.arange(60) < 30, np.arange(60) >= 30])
    calls = []
    monkeypatch.setattr(path_l1._Fold, "fit", lambda *a: calls.append(a))
    with pytest.raises(ValueError, match="positive weight"):
        path_l1.l1_path_of(problem, np.array([1.0]), np.ones(1), masks)
    assert not calls  # refused before the first fold was fitted
