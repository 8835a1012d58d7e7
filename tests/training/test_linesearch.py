"""The strong-Wolfe line search of L-BFGS (jaxlogreg/training/linesearch.py).

Each accepted step is checked against the two Wolfe conditions it promises; the search is
compared with optax's zoom line search (same optimum, same iterations on a course-sized
problem); its program has one evaluation of J per step and no conditional; and a search that
finds no acceptable step hands the training loop something to report, not a silent zero step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlogreg.training.linesearch import scale_by_wolfe_linesearch

C1, C2 = 1e-4, 0.9


def _search(f, x, d, **kwargs):
    """One search from x along d; returns (t, J(x + t d), state)."""
    search = scale_by_wolfe_linesearch(**kwargs)
    value, grad = jax.value_and_grad(f)(x)
    updates, state = search.update(d, search.init(x), x, value=value, grad=grad, value_fn=f)
    t = float(state.learning_rate)
    np.testing.assert_allclose(np.asarray(updates), t * np.asarray(d), rtol=1e-6)
    return t, float(state.value), state


def _wolfe(f, x, d, t):
    phi = lambda s: f(x + s * d)
    slope0 = float(jax.grad(phi)(0.0))
    decrease = float(phi(t)) <= float(phi(0.0)) + C1 * t * slope0
    curvature = abs(float(jax.grad(phi)(t))) <= C2 * abs(slope0)
    return decrease, curvature


def _quadratic(scales):
    scales = jnp.asarray(scales, jnp.float32)
    return lambda x: 0.5 * jnp.sum(scales * (x - 1.0) ** 2)


@pytest.mark.slow
@settings(deadline=None, max_examples=15)
@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_the_step_meets_both_wolfe_conditions(a, b):
    f = _quadratic([a, b])
    x = jnp.zeros(2, jnp.float32)
    d = -jax.grad(f)(x)  # steepest descent: t = 1 can be far too long or far too short
    t, value, state = _search(f, x, d)
    assert _wolfe(f, x, d, t) == (True, True)
    assert value == pytest.approx(float(f(x + t * d)), rel=1e-6)
    expected = np.asarray(jax.grad(f)(x + t * d))
    np.testing.assert_allclose(np.asarray(state.grad), expected, rtol=1e-5)


def test_a_too_long_first_step_is_cut_and_a_too_short_one_is_stretched():
    x = jnp.zeros(1, jnp.float32)
    steep = _quadratic([100.0])
    t_cut, _, _ = _search(steep, x, -jax.grad(steep)(x))  # t = 1 overshoots 100x
    assert t_cut < 0.05
    flat = _quadratic([1e-3])
    t_stretched, _, _ = _search(flat, x, -jax.grad(flat)(x))  # t = 1 moves 1/1000 of the way
    assert t_stretched > 100


@pytest.mark.slow
def test_lbfgs_with_it_reaches_the_optimum_of_optax_zoom_in_as_many_iterations():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((200, 5)))
    y = jnp.asarray((rng.random(200) < 0.5).astype(np.float64))

    def J(w):
        z = X @ w
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.01 * jnp.sum(w**2)

    def run(optimizer):
        w, state = jnp.zeros(5), optimizer.init(jnp.zeros(5))
        value_and_grad = optax.value_and_grad_from_state(J)
        for k in range(100):
            value, grad = value_and_grad(w, state=state)
            if float(jnp.max(jnp.abs(grad))) <= 1e-10:
                return w, k
            updates, state = optimizer.update(grad, state, w, value=value, grad=grad, value_fn=J)
            w = optax.apply_updates(w, updates)
        raise AssertionError("no convergence")

    with jax.enable_x64(True):
        ours, k_ours = run(optax.lbfgs(linesearch=scale_by_wolfe_linesearch()))
        zoom, k_zoom = run(optax.lbfgs())
    np.testing.assert_allclose(np.asarray(ours), np.asarray(zoom), atol=1e-9)
    assert k_ours <= k_zoom + 1


def test_the_program_evaluates_j_once_per_step_and_branches_nowhere():
    calls = []

    def f(x):
        calls.append(1)  # counts traces of f
        return jnp.sum((x - 1.0) ** 2)

    search = scale_by_wolfe_linesearch()
    x = jnp.zeros(3)
    value, grad = jax.value_and_grad(f)(x)
    calls.clear()
    def update(x, state):
        return search.update(-grad, state, x, value=value, grad=grad, value_fn=f)

    jaxpr = jax.make_jaxpr(update)(x, search.init(x))
    assert len(calls) == 1
    assert "cond[" not in str(jaxpr) and str(jaxpr).count("while[") == 1


def test_no_acceptable_step_takes_the_last_trial_for_the_loop_to_judge():
    # J is finite only at x = 0: every trial is inf, so no step passes; the search hands back
    # the last trial and its inf, which the training loop reports as divergence.
    f = lambda x: jnp.where(jnp.all(x == 0), 0.0, jnp.inf) + jnp.sum(x)
    x = jnp.zeros(2, jnp.float32)
    t, value, _ = _search(f, x, -jnp.ones(2, jnp.float32), max_steps=5)
    assert t > 0 and value == np.inf


def test_without_a_wolfe_step_the_lowest_decreasing_step_is_taken():
    # φ(t) = -t up to t = 1.5, inf beyond: the slope never flattens, so no trial passes the
    # curvature test. Trials 1 (decrease), 2 (inf), 1.5 (decrease, lowest), 1.75 (inf): the
    # search keeps t = 1.5, not the last trial.
    f = lambda x: jnp.sum(jnp.where(x <= 1.5, -x, jnp.inf))
    x = jnp.zeros(1, jnp.float32)
    t, value, _ = _search(f, x, jnp.ones(1, jnp.float32), max_steps=4)
    assert (t, value) == (1.5, -1.5)


def test_fit_takes_optax_zoom_by_name_and_both_reach_the_same_model():
    import jaxlogreg as jl

    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 6))
    y = (X @ rng.standard_normal(6) + rng.standard_normal(400) > 0).astype(int)
    ours = jl.fit(X, y, tol=1e-8, dtype="float64")
    zoom = jl.fit(X, y, tol=1e-8, dtype="float64", solver_params={"linesearch": "zoom"})
    assert ours.converged and zoom.converged
    np.testing.assert_allclose(ours.params.w, zoom.params.w, atol=1e-7)
    message = r"solver_params\['linesearch'\] must be 'wolfe' or 'zoom', got 'armijo'"
    with pytest.raises(ValueError, match=message):
        jl.TrainConfig(solver_params={"linesearch": "armijo"})


def test_the_first_search_tries_a_unit_step_as_lbfgs_b_does():
    """A small gradient: t = 1 along -∇J is a step of length 1e-3 and doubling from there
    stops at the first t meeting the tests (t = 128 here, an eighth of the way to the
    minimum); the first search starts at unit length, 1/||d||, the 1-D minimum here. Later
    searches start at t = 1 (L-BFGS's scaled directions)."""
    f = lambda x: 0.5e-3 * jnp.sum((x - 1.0) ** 2)
    x = jnp.zeros(1, jnp.float32)
    d = -jax.grad(f)(x)  # length 1e-3: the minimum is at t = 1000
    t, _, state = _search(f, x, d)
    assert t == pytest.approx(1000.0, rel=1e-5)
    search = scale_by_wolfe_linesearch()
    value, grad = jax.value_and_grad(f)(x)
    later = state._replace(value=value)  # a state after a step: J is finite
    _, second = search.update(d, later, x, value=value, grad=grad, value_fn=f)
    assert float(second.learning_rate) == pytest.approx(128.0)
