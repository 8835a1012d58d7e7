"""The proximal steps themselves (jaxlogreg.training.proximal, solvers.gradient_descent with
L1): the sufficient-decrease test, the stall counter, and ISTA's threshold, on problems small
enough to state the exact step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlogreg.core.model import Params
from jaxlogreg.training.proximal import MAX_UNCHANGED, proximal_gradient, soft_threshold
from jaxlogreg.training.solvers import gradient_descent

L = 100.0  # f(w) = L/2 ||w||²: a step t passes Beck & Teboulle's test exactly when t <= 1/L


def _quadratic(params: Params) -> jax.Array:
    return 0.5 * L * jnp.sum(params.w * params.w)


def _step(l1: float, state=None, w=(1.0, -2.0)):
    params = Params(jnp.asarray(w, jnp.float32), jnp.asarray(0.0, jnp.float32))
    value, grad = jax.value_and_grad(_quadratic)(params)
    optimizer = proximal_gradient(l1)
    state = optimizer.init(params) if state is None else state
    updates, new_state = optimizer.update(grad, state, params, value=value, grad=grad,
                                          value_fn=_quadratic)
    return params, optax.apply_updates(params, updates), new_state


def test_the_accepted_step_is_the_first_halving_that_passes_the_decrease_test():
    params, new, state = _step(l1=0.0)
    t = 2.0 ** -7  # from 1: halved until t <= 1/L = 0.01
    np.testing.assert_allclose(new.w, (1 - t * L) * params.w, rtol=1e-6)
    assert int(state.halvings) == 7
    assert float(_quadratic(new)) < float(_quadratic(params))


def test_with_l1_the_step_is_soft_thresholded_by_t_times_lambda():
    l1 = 0.5
    params, new, _ = _step(l1=l1)
    t = 2.0 ** -7  # the L1 part does not change when the quadratic's test passes here
    expected = soft_threshold(params.w - t * L * params.w, t * l1)
    np.testing.assert_allclose(new.w, expected, rtol=1e-6)


def test_the_unchanged_count_restarts_when_j_changes():
    _, _, state = _step(l1=0.0)
    state = state._replace(unchanged=jnp.asarray(MAX_UNCHANGED - 1, jnp.int32))
    _, _, after = _step(l1=0.0, state=state)  # this step lowers J: the count starts over
    assert int(after.unchanged) == 0 and not bool(after.stalled)


def test_ista_thresholds_by_the_learning_rate_times_lambda():
    alpha, l1 = 0.1, 1.0
    params = Params(jnp.asarray([0.5, 0.05, -0.3]), jnp.asarray(0.2))
    grads = Params(jnp.asarray([1.0, 0.0, -1.0]), jnp.asarray(0.5))
    optimizer = gradient_descent(alpha, l1)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    new = optax.apply_updates(params, updates)
    # w := prox(w - α dw, α λ₁): [0.4, 0.05, -0.2] shrunk by 0.1; b is a plain GD step
    np.testing.assert_allclose(new.w, [0.3, 0.0, -0.1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(new.b, 0.2 - alpha * 0.5, rtol=1e-6)
