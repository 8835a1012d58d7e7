"""fit_path: every (fold, C) model fitted together equals the model fitted alone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg.training import path
from jaxlogreg.training.path import fit_path

CS = np.array([1e-3, 0.1, 10.0, np.inf])


def _data(m=240, n=6, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)) * rng.uniform(0.5, 2.0, size=n)
    Z = X @ rng.normal(size=(n, k)) + rng.gumbel(size=(m, k))  # not separable
    return X, np.argmax(Z, axis=1)


def _folds(m, n_folds=3):
    return [np.flatnonzero(np.arange(m) % n_folds != f) for f in range(n_folds)]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("grad", ["manual", pytest.param("autodiff", marks=pytest.mark.slow)])
def test_every_model_equals_its_independent_fit(k, grad):
    X, y = _data(k=k)
    folds = _folds(len(y))
    result = fit_path(X, y, CS, folds=folds, tol=1e-9, grad=grad)
    assert result.params.w.shape == ((3, 4, 6) if k == 2 else (3, 4, 6, k))
    assert result.converged.all() and result.loss.shape == (3, 4)
    for f, train in enumerate(folds):
        for c, C in enumerate(CS):
            alone = jl.fit(X[train], y[train], C=C, tol=1e-10, max_iter=2000, n_classes=k)
            assert abs(result.loss[f, c] - alone.loss) <= 1e-6 * alone.loss, (f, C)
            if k == 2 and np.isfinite(C):  # softmax intercepts are unique only up to a shift
                np.testing.assert_allclose(result.params.w[f, c], alone.params.w, atol=1e-4)


def test_weights_fit_intercept_and_a_path_without_folds():
    X, y = _data()
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    result = fit_path(X, y, CS[:2], sample_weight=sw, fit_intercept=False, tol=1e-9)
    assert result.params.w.shape == (1, 2, 6) and np.all(result.params.b == 0)
    alone = jl.fit(X, y, C=CS[1], sample_weight=sw, fit_intercept=False, tol=1e-10)
    assert abs(result.loss[0, 1] - alone.loss) <= 1e-6 * alone.loss
    np.testing.assert_allclose(result.l2[0], 1.0 / (CS[:2] * sw.sum()))


@pytest.mark.slow
def test_float32_data_give_float32_models_near_the_float64_ones():
    X, y = _data()
    r32 = fit_path(X.astype(np.float32), y, CS[:3], folds=_folds(len(y)), tol=1e-5)
    r64 = fit_path(X, y, CS[:3], folds=_folds(len(y)), tol=1e-9)
    assert r32.params.w.dtype == np.float32
    np.testing.assert_allclose(r32.loss, r64.loss, rtol=1e-5)


def test_one_program_for_every_model(monkeypatch):
    X, y = _data(m=97, n=3, seed=4)  # shapes no other test uses
    before = path._run_path_program._cache_size()
    fit_path(X, y, [0.1, 1.0], folds=_folds(97))
    fit_path(X, y, [5.0, 50.0], folds=_folds(97), tol=1e-3, max_iter=7)  # same program
    assert path._run_path_program._cache_size() == before + 1


@pytest.mark.parametrize(
    "Cs, folds, match",
    [
        ([], None, r"Cs must be a non-empty list of numbers > 0"),
        ([1.0, -1.0], None, r"Cs must be .* got \[1.0, -1.0\]"),
        ([np.nan], None, r"Cs must be .* got \[nan\]"),
        ("many", None, r"Cs must be a list of numbers > 0, got 'many'"),
        ([1.0], [np.array([0, 1, 500])], r"folds\[0\] has row indices outside \[0, 239\]"),
        ([1.0], [np.ones(3, bool)], r"folds\[0\] as a mask must have shape \(240,\)"),
        ([1.0], [], r"folds must hold at least one fold"),
    ],
)
def test_bad_input_names_the_argument_before_compiling(Cs, folds, match):
    X, y = _data()
    before = path._run_path_program._cache_size()
    with pytest.raises(ValueError, match=match):
        fit_path(X, y, Cs, folds=folds)
    assert path._run_path_program._cache_size() == before


@pytest.mark.slow
def test_the_gradient_reaches_tolerances_below_what_j_can_resolve():
    # Near the optimum J no longer changes at float64 precision (steps of 1e-9 change J by
    # 1e-18); the line search then goes on the gradient, so max|∇J| <= 1e-11 is reached.
    X, y = _data()
    result = fit_path(X, y, [1.0], tol=1e-11, max_iter=1000)
    assert result.converged.all()
    from jaxlogreg.core.gradients import backward

    with jax.enable_x64(True):
        params = jl.Params(jnp.asarray(result.params.w[0, 0]), jnp.asarray(result.params.b[0, 0]))
        g = backward(params, X, y, l2=float(result.l2[0, 0]))
    assert max(float(np.max(np.abs(g.w))), abs(float(g.b))) <= 1e-11


@pytest.mark.parametrize("max_iter", [3, 100])
def test_each_loss_is_j_at_the_returned_parameters(max_iter):
    """The loop's J at each model's last accepted point, stopped early or converged."""
    X, y = _data(k=3)
    folds = _folds(len(y))
    result = fit_path(X, y, CS[:3], folds=folds, tol=1e-9, max_iter=max_iter)
    for f, train in enumerate(folds):
        for c in range(3):
            params = jl.Params(result.params.w[f, c], result.params.b[f, c])
            with jax.enable_x64(True):  # X is float64
                J = float(jl.objective(params, X[train], y[train], l2=result.l2[f, c]))
            assert result.loss[f, c] == pytest.approx(J, rel=1e-12), (f, c)


def test_the_gradient_rule_is_inclusive_at_tol_and_counts_no_step():
    # X = [[1], [1]], y = [1, 1] at w = b = 0: dw = db = -0.5 exactly, so max|∇J| = 0.5
    X, y = np.ones((2, 1)), np.ones(2, int)
    at = fit_path(X, y, [np.inf], tol=0.5, n_classes=2)
    assert at.converged[0, 0] and at.n_iter[0, 0] == 0
    np.testing.assert_array_equal(at.params.w[0, 0], [0.0])
    below = fit_path(X, y, [np.inf], tol=0.49, n_classes=2, max_iter=3)
    assert below.n_iter[0, 0] > 0


@pytest.mark.parametrize("max_iter", [1, 2, 5])
def test_n_iter_counts_the_accepted_steps_exactly(max_iter):
    X, y = _data()
    result = fit_path(X, y, [1.0], tol=0.0, max_iter=max_iter)
    assert result.n_iter[0, 0] == max_iter and not result.converged[0, 0]


def test_a_finished_model_is_frozen_while_the_others_go_on():
    """C = 1e-3 converges in fewer steps than C = inf: in one program the first must stop
    where it stops alone, its step count and its parameters unchanged by the others' steps."""
    X, y = _data()
    both = fit_path(X, y, [1e-3, np.inf], tol=1e-6, max_iter=200)
    assert both.n_iter[0, 0] + 3 <= both.n_iter[0, 1]
    for c, C in enumerate([1e-3, np.inf]):
        alone = fit_path(X, y, [C], tol=1e-6, max_iter=200)
        assert both.n_iter[0, c] == alone.n_iter[0, 0]
        np.testing.assert_allclose(both.params.w[0, c], alone.params.w[0, 0], rtol=1e-9,
                                   atol=1e-12)
