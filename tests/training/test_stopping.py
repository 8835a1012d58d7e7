"""When a fit stops: convergence rules at their boundaries, tol = 0, stalls, and divergence.

The rules (jaxlogreg/training/loop.py): converged when tol > 0 and max|∇J| <= tol (or the
relative change of J <= tol), or, for L-BFGS, when J no longer changes beyond rounding;
diverged when J or ∇J is NaN/inf or J rises far above its start; a full-batch fit never
returns parameters worse than its start.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_iris

import jaxlogreg as jl
from jaxlogreg.core.model import Params
from jaxlogreg.training import loop


def _problem(m=300, n=6, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    y = (rng.random(m) < 1 / (1 + np.exp(-(X @ rng.normal(size=n))))).astype(dtype)
    return X, y


# --- the rules at their boundaries (exact numbers, so `<=` vs `<` matters) --------------------


def test_gradient_rule_is_inclusive_at_tol():
    grads = Params(jnp.asarray([0.25, -0.5]), jnp.asarray(0.125))
    assert bool(loop.grad_rule(grads, jnp.asarray(0.5)))
    assert not bool(loop.grad_rule(grads, jnp.asarray(0.4999)))


def test_loss_rule_is_inclusive_at_tol():
    # |1.5 - 1.0| = 0.5 = tol * |J| exactly
    assert bool(loop.loss_rule(jnp.asarray(1.0), jnp.asarray(1.5), jnp.asarray(0.5)))
    assert not bool(loop.loss_rule(jnp.asarray(1.0), jnp.asarray(1.5), jnp.asarray(0.4999)))


def test_stall_rule_is_no_decrease_over_the_window():
    eps = float(jnp.finfo(jnp.float32).eps)
    w = loop.STALL_WINDOW
    history = jnp.full(2 * w, jnp.nan, jnp.float32).at[:w].set(1.0)
    one = jnp.asarray(1.0, jnp.float32)
    assert bool(loop.stall_rule(one, history, jnp.asarray(w)))  # J == J_{k-W}
    assert bool(loop.stall_rule(one + eps, history, jnp.asarray(w)))  # J rose by one ulp
    assert not bool(loop.stall_rule(one - eps, history, jnp.asarray(w)))  # J went down
    assert not bool(loop.stall_rule(one, history, jnp.asarray(w - 1)))  # too early to tell
    history = history.at[w - 1].set(2.0)  # J_{k-W} is the entry W back, not the last one
    assert not bool(loop.stall_rule(one, history, jnp.asarray(2 * w - 1)))


def test_growth_bound_is_relative_to_the_start():
    start = jnp.asarray(0.5)
    assert bool(loop.within_growth(jnp.asarray(loop.DIVERGENCE_GROWTH), start))
    assert not bool(loop.within_growth(jnp.asarray(loop.DIVERGENCE_GROWTH * 1.01), start))
    assert not bool(loop.within_growth(jnp.asarray(jnp.nan), start))


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


def test_lbfgs_stops_when_the_objective_stalls_below_float32_precision():
    X, y = load_iris(return_X_y=True)
    result = jl.fit(X.astype(np.float32), y, C=0.01, tol=1e-12, max_iter=500)
    assert result.status == "converged"
    assert result.n_iter < 100  # scikit-learn stops at 35; without the rule: all 500
    optimum = jl.fit(X, y, C=0.01, tol=1e-10, max_iter=500).loss  # float64
    assert abs(result.loss - optimum) / optimum < 1e-6


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
    if not quick:
        assert np.any(np.diff(result.loss_history[-loop.STALL_WINDOW :]) == 0)  # J was flat
    l2 = jl.TrainConfig().l2(float(np.sum(sw)))
    with jax.enable_x64(True):
        grads = jax.grad(jl.objective)(result.params, X, y, sw.astype(float), l2)
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
    assert result.loss_history[-1] > loop.DIVERGENCE_GROWTH * max(result.loss_history[0], 1)


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
    assert history[0] < history[-1] < loop.DIVERGENCE_GROWTH * max(history[0], 1)
    assert result.status == "diverged"
    np.testing.assert_array_equal(result.params.w, start)
    assert result.loss == pytest.approx(history[0], rel=1e-6)


def test_last_good_parameters_are_kept_through_many_finite_steps():
    # 20 good GD steps, then the same compiled loop continues with a huge learning rate: the
    # first huge step gives a finite J at p_20, the next J overflows, so the fit must return
    # p_20, the last parameters that passed the check (not the start p_0).
    from jaxlogreg.training.pipeline import device_data, hyper_of

    X, y = _problem()
    config = jl.TrainConfig(solver="gd", learning_rate=0.5, C=np.inf, tol=0.0, max_iter=40)
    data = device_data(X, y, config)
    spec = loop.LoopSpec.of(config, None)
    good, huge = hyper_of(config, 0.0, "float32"), hyper_of(config.replace(learning_rate=1e37),
                                                            0.0, "float32")
    state = loop.init_state(data.place(jl.init_params(6)), good, spec, seed=0)
    state, _ = data.advance(state, good, spec, 20)
    p20 = np.asarray(state.params.w)
    state, _ = data.advance(state, huge, spec, 40)
    assert int(state.status) == loop.DIVERGED
    assert int(state.iteration) == 21
    np.testing.assert_array_equal(np.asarray(state.params.w), p20)
    assert not np.array_equal(p20, np.zeros_like(p20))


def test_unpenalized_objective_is_not_nan_when_w_overflows():
    big = Params(jnp.asarray([3e38, 3e38], jnp.float32), jnp.asarray(0.0, jnp.float32))
    X = jnp.zeros((2, 2), jnp.float32)
    J = jl.objective(big, X, jnp.asarray([0, 1]), l2=0.0)
    assert np.isfinite(float(J))
