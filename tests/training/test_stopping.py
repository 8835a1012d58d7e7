"""When a fit stops: convergence rules at their boundaries, tol = 0, stalls, and divergence.

The rules (jaxlogreg/training/stopping.py): converged when tol > 0 and max|∇J| <= tol (or the
relative change of J <= tol); stalled (not converged) when, for a line-search solver, neither
J nor max|∇J| has improved for a window of iterations; diverged when J or ∇J is NaN/inf or J
rises far above its start; a full-batch fit never returns parameters worse than its start.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_iris

import jaxlogreg as jl
from jaxlogreg.core.model import Params
from jaxlogreg.training import loop, stopping
from jaxlogreg.training.data import device_data
from jaxlogreg.training.problem import validate


def _problem(m=300, n=6, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    y = (rng.random(m) < 1 / (1 + np.exp(-(X @ rng.normal(size=n))))).astype(dtype)
    return X, y


# --- the rules at their boundaries (exact numbers, so `<=` vs `<` matters) --------------------


def test_gradient_rule_is_inclusive_at_tol():
    grads = Params(jnp.asarray([0.25, -0.5]), jnp.asarray(0.125))
    assert bool(stopping.grad_rule(grads, jnp.asarray(0.5)))
    assert not bool(stopping.grad_rule(grads, jnp.asarray(0.4999)))


def test_loss_rule_is_inclusive_at_tol():
    # |1.5 - 1.0| = 0.5 = tol * |J| exactly
    assert bool(stopping.loss_rule(jnp.asarray(1.0), jnp.asarray(1.5), jnp.asarray(0.5)))
    assert not bool(stopping.loss_rule(jnp.asarray(1.0), jnp.asarray(1.5), jnp.asarray(0.4999)))


def test_stall_rule_is_no_decrease_of_j_and_no_new_low_of_the_gradient_over_the_window():
    eps = float(jnp.finfo(jnp.float32).eps)
    w = stopping.STALL_WINDOW
    history = jnp.full(2 * w, jnp.nan, jnp.float32).at[:w].set(1.0)
    one, at, never = jnp.asarray(1.0, jnp.float32), jnp.asarray(w), jnp.asarray(0)

    def stalled(value, n_recorded, grad_best_at=never, history=history):
        return bool(stopping.stall_rule(value, history, n_recorded, grad_best_at))

    assert stalled(one, at)  # J == J_{k-W}, and the gradient's low is W iterations old
    assert stalled(one + eps, at)  # J rose by one ulp
    assert not stalled(one - eps, at)  # J went down
    assert not stalled(one, jnp.asarray(w - 1))  # too early to tell
    assert not stalled(one, at, grad_best_at=jnp.asarray(1))  # the gradient is still falling
    assert stalled(one, at, grad_best_at=jnp.asarray(0))
    # after a long fit the gradient may take longer for its next low: a quarter of the way
    late = jnp.full(1000, 1.0, jnp.float32)
    assert not stalled(one, jnp.asarray(849), grad_best_at=jnp.asarray(680), history=late)
    assert stalled(one, jnp.asarray(850), grad_best_at=jnp.asarray(680), history=late)
    moved = history.at[w - 1].set(2.0)  # J_{k-W} is the entry W back, not the last one
    assert not stalled(one, jnp.asarray(2 * w - 1), history=moved)


def test_status_names_a_stall_apart_from_convergence():
    def status(ok, met, stalled):
        return stopping.STATUS_NAMES.get(int(stopping.status_of(
            jnp.asarray(ok), jnp.asarray(met), jnp.asarray(stalled))), "running")

    assert status(True, True, False) == "converged"
    assert status(True, False, True) == "stalled"
    assert status(True, False, False) == "running"
    assert status(False, True, True) == "diverged"


def test_growth_bound_is_relative_to_the_start():
    start = jnp.asarray(0.5)
    assert bool(stopping.within_growth(jnp.asarray(stopping.DIVERGENCE_GROWTH), start))
    assert not bool(stopping.within_growth(jnp.asarray(stopping.DIVERGENCE_GROWTH * 1.01), start))
    assert not bool(stopping.within_growth(jnp.asarray(jnp.nan), start))


def test_a_fit_stops_at_the_gradient_boundary():
    # X = [[1], [1]], y = [1, 1] at w = b = 0: dw = db = -0.5 exactly, so max|∇J| = 0.5.
    X, y = np.ones((2, 1), np.float32), np.ones(2, np.float32)
    at = jl.fit(X, y, solver="gd", C=np.inf, tol=0.5, max_iter=10)
    assert (at.status, at.n_iter) == ("converged", 0)
    below = jl.fit(X, y, solver="gd", C=np.inf, tol=0.49, max_iter=10)
    assert below.n_iter > 0


# --- tol = 0 runs exactly max_iter updates ------------------------------------------------------


def test_tol_zero_runs_max_iter_even_at_a_zero_gradient():
    # X = [[1], [1]], y = [1, 0]: at w = b = 0 the gradient is exactly zero.
    X, y = np.ones((2, 1), np.float32), np.array([1.0, 0.0], np.float32)
    result = jl.fit(X, y, solver="gd", C=np.inf, tol=0.0, max_iter=7)
    assert (result.status, result.n_iter, len(result.loss_history)) == ("max_iter", 7, 7)
    stopped = jl.fit(X, y, solver="gd", C=np.inf, tol=1e-8, max_iter=7)
    assert (stopped.status, stopped.n_iter) == ("converged", 0)


def test_tol_zero_runs_every_epoch_even_when_the_epoch_loss_repeats():
    X, y = _problem(m=64)
    result = jl.fit(X, y, solver="gd", batch_size=16, learning_rate=1e-30, tol=0.0, max_iter=10,
                    random_state=0)
    assert np.all(result.loss_history == result.loss_history[0])  # a repeated epoch loss
    assert (result.status, result.n_iter) == ("max_iter", 10)


# --- stalls (defect B) ------------------------------------------------------------------------


def test_lbfgs_stops_when_the_objective_stalls_below_float32_precision_and_says_so():
    X, y = load_iris(return_X_y=True)
    result = jl.fit(X.astype(np.float32), y, C=0.01, tol=1e-12, max_iter=500)
    assert result.status == "stalled" and not result.converged  # tol 1e-12 is beyond float32
    assert result.n_iter < 100  # scikit-learn stops at 35; without the rule: all 500
    optimum = jl.fit(X, y, C=0.01, tol=1e-10, max_iter=500).loss  # float64
    assert abs(result.loss - optimum) / optimum < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("quick", [False, True])
def test_lbfgs_in_float64_goes_on_while_j_is_flat_and_the_gradient_still_shrinks(
        monkeypatch, quick):
    # scikit-learn's sample-weight check (15 x 30, 3 classes): J is flat to the last bit for
    # several iterations before max|∇J| reaches 1e-10; stopping at the first flat J leaves
    # weighted and repeated-row fits 1.5e-8 apart, beyond the check's 1e-7 relative. The
    # flat J is that of the fully optimised loop; the quickly compiled one (the default at
    # this size: jaxlogreg.runtime.compiler.QUICK_OPTIONS) rounds differently, and must converge too.
    if not quick:
        monkeypatch.setattr(loop, "QUICK_COMPILE_WORK", 0)
    rng = np.random.RandomState(42)
    X, y, sw = rng.rand(15, 30), rng.randint(0, 3, size=15), rng.randint(0, 5, size=15)
    result = jl.fit(X, y, sample_weight=sw, tol=1e-10, max_iter=300, dtype="float64")
    assert result.status == "converged"
    last = result.loss_history[-stopping.STALL_WINDOW :]  # J flat far below float32's eps,
    assert np.ptp(last) <= 1e-12 * abs(last[-1])  # and the fit went on: ∇J below 1e-10
    l2 = jl.TrainConfig().l2(float(np.sum(sw)))
    with jax.enable_x64(True):
        grads = jax.grad(jl.objective)(result.params, X, y, sw.astype(float), l2)
        assert max(float(jnp.max(jnp.abs(g))) for g in grads) <= 1e-10


@pytest.mark.slow
def test_an_ill_conditioned_float64_fit_is_not_stopped_while_its_gradient_still_falls():
    # Features scaled over 3 decades, no penalty, 4 classes: J is flat to the last bit for
    # thousands of iterations while max|∇J| falls in bursts (tol = 0 reaches 5e-11 at 8,000
    # iterations). A stall rule on J alone called it converged at 3,872 with 8.9e-7.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 8)) * np.logspace(0, 3, 8)
    y = rng.integers(0, 4, 400)
    result = jl.fit(X, y, C=np.inf, tol=1e-10, max_iter=30_000, dtype="float64")
    assert result.status == "converged"
    with jax.enable_x64(True):
        grads = jax.grad(jl.objective)(result.params, X, y)
        assert max(float(jnp.max(jnp.abs(g))) for g in grads) <= 1e-10


def test_fixed_step_solvers_are_not_stopped_by_a_slow_decrease():
    # GD's J decreases slowly near the optimum; it must reach the tolerance, not stall early.
    X, y = _problem()
    optimum = jl.fit(X.astype(np.float64), y, tol=1e-10, max_iter=500).loss
    result = jl.fit(X, y, solver="gd", tol=1e-6, max_iter=5000)
    assert result.status == "converged"
    assert abs(result.loss - optimum) / optimum < 1e-6


# --- divergence --------------------------------------------------------------------------------


def test_divergence_without_a_penalty_is_detected():  # defect D1
    X, y = _problem()
    result = jl.fit(X, y, solver="gd", learning_rate=1e9, C=np.inf, tol=0.0, max_iter=50)
    assert result.status == "diverged"
    assert result.loss <= result.loss_history[0] * (1 + 1e-6)
    assert result.loss_history[-1] > stopping.DIVERGENCE_GROWTH * max(result.loss_history[0], 1)


def test_minibatch_divergence_without_a_penalty_is_detected():
    X, y = _problem()
    result = jl.fit(X, y, solver="sgd", learning_rate=1e6, batch_size=32, C=np.inf, tol=0.0,
                    max_iter=20, random_state=0)
    assert result.status == "diverged"
    assert np.all(np.isfinite(result.params.w))


def test_lbfgs_never_returns_worse_than_its_start():  # defect D3
    X, y = _problem(dtype=np.float64)
    X[:, 0] *= 1e30
    result = jl.fit(X, y)
    assert result.status == "diverged"
    assert result.loss <= np.log(2) * (1 + 1e-12)


def test_a_full_batch_fit_ending_above_its_start_returns_the_start():
    # λ = 1 and α = 2.5: each GD step overshoots (|1 - α(λ + curvature)| > 1), so J grows
    # geometrically but stays far below the divergence bound within 6 steps.
    X = np.array([[1.0], [-1.0]], np.float32)
    y = np.array([1.0, 0.0], np.float32)
    start = np.array([0.3], np.float32)
    result = jl.fit(X, y, solver="gd", learning_rate=2.5, C=0.5, fit_intercept=False, tol=0.0,
                    max_iter=6, init_params=Params(start, np.float32(0)))
    history = result.loss_history
    assert history[0] < history[-1] < stopping.DIVERGENCE_GROWTH * max(history[0], 1)
    assert result.status == "diverged"
    np.testing.assert_array_equal(result.params.w, start)
    assert result.loss == pytest.approx(history[0], rel=1e-6)


def test_last_good_parameters_are_kept_through_many_finite_steps():
    # 20 good GD steps, then the same compiled loop continues with a huge learning rate: the
    # first huge step gives a finite J at p_20, the next J overflows, so the fit must return
    # p_20, the last parameters that passed the check (not the start p_0).
    from jaxlogreg.training.pipeline import hyper_of

    X, y = _problem()
    config = jl.TrainConfig(solver="gd", learning_rate=0.5, C=np.inf, tol=0.0, max_iter=40)
    data = device_data(validate(X, y))
    spec = loop.LoopSpec.of(config, None)
    good, huge = hyper_of(config, 0.0, "float32"), hyper_of(config.replace(learning_rate=1e37),
                                                            0.0, "float32")
    state = loop.init_state(data.place(jl.init_params(6)), good, spec, seed=0)
    state, _ = data.advance(state, good, spec, 20)
    p20 = np.asarray(state.params.w)
    state, _ = data.advance(state, huge, spec, 40)
    assert int(state.status) == stopping.DIVERGED
    assert int(state.iteration) == 21
    np.testing.assert_array_equal(np.asarray(state.params.w), p20)
    assert not np.array_equal(p20, np.zeros_like(p20))


def test_unpenalized_objective_is_not_nan_when_w_overflows():
    big = Params(jnp.asarray([3e38, 3e38], jnp.float32), jnp.asarray(0.0, jnp.float32))
    X = jnp.zeros((2, 2), jnp.float32)
    J = jl.objective(big, X, jnp.asarray([0, 1]), l2=0.0)
    assert np.isfinite(float(J))
