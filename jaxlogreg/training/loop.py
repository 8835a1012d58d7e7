"""The training loop: the whole fit runs on the device in one jitted ``lax.while_loop``.

One loop serves every solver (:mod:`jaxlogreg.training.solvers`). Each iteration evaluates J
and ∇J, records J in a loss history kept on the device, applies the stopping rules of
:mod:`jaxlogreg.training.stopping`, and makes the optimizer's update unless they stop it
(inside a ``lax.cond``: L-BFGS runs no line search once converged). With ``batch_size`` one
iteration is one epoch of shuffled minibatches (:mod:`jaxlogreg.training.minibatch`).

Nothing syncs with the host inside the loop. Data and numeric hyper-parameters (learning rate,
λ, tol, the iteration bound) are jit arguments: calling again with the same shapes and
settings does not recompile.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlogreg.core.loss import dot, example_scale
from jaxlogreg.core.model import Params
from jaxlogreg.runtime.compiler import jit
from jaxlogreg.training import certificate, solvers
from jaxlogreg.training.minibatch import minibatch_epoch
from jaxlogreg.training.spec import (
    Hyper,
    LoopSpec,
    TrainData,
    hessian_diagonal_fn,
    hvp_fn,
    n_rows,
    objective_value,
    optimizer,
    select,
    value_and_grad,
    value_fn,
    with_l1,
)
from jaxlogreg.training.stopping import (
    CONVERGED,
    RUNNING,
    STALLED,
    all_finite,
    grad_rule,
    loss_rule,
    max_abs,
    stall_rule,
    status_of,
    within_growth,
)

# Loops with at most this many rows x iterations (the loss history's length), and elements of
# X x iterations, compile quickly (jaxlogreg.runtime.compiler.QUICK_OPTIONS): see quick_compile.
QUICK_COMPILE_WORK = 2**21
QUICK_COMPILE_ELEMENTS = 2**27


class LoopState(NamedTuple):
    """Everything the loop carries; a pytree of arrays, so it can be checkpointed."""

    params: Params
    opt_state: Any
    iteration: jax.Array  # updates done (epochs with minibatches)
    n_recorded: jax.Array  # entries of loss_history written
    loss_history: jax.Array  # (history_size,) >= max_iter entries, NaN where unwritten
    last_good: Params  # the last parameters that passed the divergence check
    previous_loss: jax.Array
    start_loss: jax.Array  # J₀, the first recorded J (inf before it)
    grad_best: jax.Array  # the lowest max|∇J| so far (inf before the first)
    grad_best_at: jax.Array  # n_recorded when grad_best was last lowered
    status: jax.Array
    key: jax.Array  # shuffling key (raw uint32 data)


def _evaluate(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """f and ∇f at the current parameters (full-batch solvers: read from their state, where
    the last line search left them; evaluated only at the start)."""
    if solvers.get(spec.solver).full_batch:
        f = value_fn(spec, data, hyper.l2)
        return optax.value_and_grad_from_state(f)(state.params, state=state.opt_state)
    return value_and_grad(spec, hyper.l2)(state.params, *data)


def _update(state: LoopState, value, grads, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """One optimizer update from f and ∇f at the current parameters: new parameters, state."""
    extra = {}
    if solvers.get(spec.solver).hessian:  # H·v, and a preconditioner for its CG
        extra = {"hvp_fn": hvp_fn(spec, data, hyper.l2),
                 "diagonal_fn": hessian_diagonal_fn(spec, data, hyper.l2)}
    updates, opt_state = optimizer(spec, hyper).update(
        grads, state.opt_state, state.params, value=value, grad=grads,
        value_fn=value_fn(spec, data, hyper.l2), **extra,
    )
    return optax.apply_updates(state.params, updates), opt_state


def _gap_rule(params: Params, data: TrainData, hyper: Hyper, spec: LoopSpec) -> jax.Array:
    """Certified: the duality gap of the L1 / elastic-net objective, binary or softmax
    (:mod:`jaxlogreg.training.certificate`), at ``params`` is at most ``tol · J``. One forward
    pass and one product XᵀR on the loop's data (Xt or X in rows, dense or sparse). Without
    any penalty (λ₁ = λ₂ = 0) there is no dual bound: the KKT rule alone decides."""
    X, y, sample_weight = data
    m = n_rows(X, spec.rows)
    w, b = params
    s = jnp.broadcast_to(example_scale(sample_weight, m, w.dtype), (m,))
    if spec.rows:  # z (m,) or (m, K); u (m,) or (m, K) -> Xᵀu (n,) or (n, K)
        z, rmatvec = dot(X, w) + b, lambda u: dot(u.T, X).T
    else:
        z, rmatvec = dot(w.T, X).T + b, lambda u: dot(X, u)
    J, gap, _ = certificate.duality_gap(z.astype(w.dtype), y, s, w, hyper.l1, hyper.l2,
                                        spec.fit_intercept, rmatvec)
    return (gap <= hyper.tol * jnp.abs(J)) | ((hyper.l1 == 0) & (hyper.l2 == 0))


def _rules(value, grads, state: LoopState, hyper: Hyper, spec: LoopSpec,
           data: TrainData | None = None):
    """(met, stalled): the criterion ``tol`` met, and the stall rule of the solver's record
    (both False with ``tol = 0``). ``grads`` is None for a minibatch epoch. A full-batch fit
    with an L1 part (binary or softmax) also needs the duality gap certified (:func:`_gap_rule`,
    evaluated only once the criterion holds): the KKT rule alone can hold far from the optimum."""
    if spec.criterion == "grad" and grads is not None:
        met = grad_rule(grads, hyper.tol)
    else:
        met = loss_rule(value, state.previous_loss, hyper.tol)
    if spec.l1 and data is not None:
        met = met & jax.lax.cond(met, lambda: _gap_rule(state.params, data, hyper, spec),
                                 lambda: jnp.zeros((), bool))
    stall = solvers.get(spec.solver).stall
    stalled = jnp.zeros((), bool)
    if stall != "never" and grads is not None:
        stalled = stall_rule(value, state.loss_history, state.n_recorded, state.grad_best_at)
        if stall == "objective_and_step":  # a proximal step can improve w, J unchanged
            stalled = stalled & optax.tree.get(state.opt_state, "stalled")
    active = hyper.tol > 0
    return active & met, active & stalled & ~met


def _loop_body(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec) -> LoopState:
    """One iteration. Full batch: J and ∇J at the current parameters, then an update unless
    they failed the divergence check (back to the last good parameters) or a rule stopped the
    loop. Minibatch: one epoch, undone if it failed the divergence check."""
    if spec.batch_size is not None:
        key = jax.random.wrap_key_data(state.key)
        value, first, params, opt_state = minibatch_epoch(
            state.params, state.opt_state, key, state.iteration, data, hyper, spec)
        return finish_epoch(state, value, first, params, opt_state, hyper, spec)
    raw_value, raw_grads = _evaluate(state, data, hyper, spec)
    value, grads = with_l1(raw_value, raw_grads, state.params, hyper, spec)
    start = jnp.where(state.n_recorded == 0, value, state.start_loss)
    ok = jnp.isfinite(value) & all_finite(grads) & within_growth(value, start)
    met, stalled = _rules(value, grads, state, hyper, spec, data)
    advance = ok & ~met & ~stalled
    last_good = select(ok, state.params, state.last_good)
    params, opt_state = jax.lax.cond(  # the last iteration (converged) runs no line search
        advance,
        lambda: _update(state, raw_value, raw_grads, data, hyper, spec),
        lambda: (last_good, state.opt_state),
    )
    status = status_of(ok, met, stalled)
    new = _next_state(state, value, start, ok, status, advance, params, last_good, opt_state)
    gmax = max_abs(grads).astype(state.grad_best.dtype)
    lower = ok & (gmax < state.grad_best)
    return new._replace(grad_best=jnp.where(lower, gmax, state.grad_best),
                        grad_best_at=jnp.where(lower, state.n_recorded, state.grad_best_at))


def finish_epoch(
    state: LoopState,
    value: jax.Array,
    first_batch_loss: jax.Array,
    new_params: Params,
    new_opt_state: Any,
    hyper: Hyper,
    spec: LoopSpec,
) -> LoopState:
    """The loop state after one minibatch epoch with mean loss ``value`` ending at ``new_params``.

    J₀ is the loss of the very first minibatch, at the starting parameters (an unbiased
    estimate of J there). The epoch is undone if it failed the divergence check. Shared with
    :mod:`jaxlogreg.scale.streaming`, which runs the epoch's minibatches from the host.
    """
    start = jnp.where(state.n_recorded == 0, first_batch_loss, state.start_loss)
    ok = jnp.isfinite(value) & all_finite(new_params) & within_growth(value, start)
    met, stalled = _rules(value, None, state, hyper, spec)
    params = select(ok, new_params, state.params)
    status = status_of(ok, met, stalled)
    return _next_state(state, value, start, ok, status, ok, params, params, new_opt_state)


def _next_state(state, value, start, ok, status, advance, params, last_good, new_opt_state):
    return state._replace(
        params=params,
        opt_state=select(advance, new_opt_state, state.opt_state),
        iteration=state.iteration + advance.astype(state.iteration.dtype),
        n_recorded=state.n_recorded + 1,
        loss_history=state.loss_history.at[state.n_recorded].set(value),
        last_good=last_good,
        previous_loss=jnp.where(ok, value, state.previous_loss),
        start_loss=start,
        status=status,
    )


def _run(state: LoopState, data: TrainData, hyper: Hyper, stop_at: jax.Array, spec: LoopSpec):
    """The compiled program: iterations until ``stop_at`` updates, a stopping rule, or a full
    loss history; then J over all data at the final parameters."""

    def cond(s: LoopState) -> jax.Array:
        room = s.n_recorded < s.loss_history.shape[0]
        return (s.iteration < stop_at) & (s.status == RUNNING) & room

    state = jax.lax.while_loop(cond, lambda s: _loop_body(s, data, hyper, spec), state)
    return state, _final_objective(state, data, hyper, spec)


def _final_objective(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """J at the final parameters: when a full-batch loop stopped by a rule, the J it recorded
    there (it stopped without moving); else one more pass over X."""
    def evaluate():
        J = objective_value(state.params, *data, hyper.l2, hyper.l1, spec.kernel, spec.rows)
        return J.astype(state.previous_loss.dtype)

    if spec.batch_size is not None:  # an epoch's mean minibatch loss is not J
        return evaluate()
    recorded = (state.status == CONVERGED) | (state.status == STALLED)
    return jax.lax.cond(recorded, lambda: state.previous_loss, evaluate)


def quick_compile(state: LoopState, data: TrainData, *args: Any, spec: LoopSpec) -> bool:
    """Whether the loop is small enough work to compile at LLVM's -O0
    (:data:`jaxlogreg.runtime.compiler.QUICK_OPTIONS`): with h the iteration bound (the loss
    history's length), m rows x h at most :data:`QUICK_COMPILE_WORK` and the elements of Xt x
    h at most :data:`QUICK_COMPILE_ELEMENTS` (10^4 x 50, padded to 16,384 x 64, with
    ``max_iter=100``: both exactly at the bound). -O0 code is not vectorised: each evaluation
    costs more per row and per element, which the bounds keep below what the shorter compile
    saves (docs/decisions.md)."""
    n, m = data.Xt.shape[::-1] if spec.rows else data.Xt.shape  # shapes only: no transpose
    h = spec.history_size
    return m * h <= QUICK_COMPILE_WORK and n * m * h <= QUICK_COMPILE_ELEMENTS


run_segment = jit(_run, static_argnames="spec", donate_argnames="state", quick=quick_compile)
run_segment.__doc__ = """Run the loop on dense X until ``stop_at`` updates or a stopping rule
(jitted with :data:`jaxlogreg.runtime.compiler.XLA_OPTIONS`, plus
:data:`~jaxlogreg.runtime.compiler.QUICK_OPTIONS` for small work, :func:`quick_compile`).

Returns the state and J over all data at its parameters. Calling it again with a growing
``stop_at`` reuses one compiled program: the pipeline does so to call its hooks (progress bar,
checkpoints) between segments. ``state`` is donated: the returned state reuses its buffers, so
a fit holds one copy of the optimizer's state; the state passed in cannot be used after.
"""

run_segment_sparse = jax.jit(_run, static_argnames="spec", donate_argnames="state")
run_segment_sparse.__doc__ = """:data:`run_segment` for sparse X, compiled with XLA's default
options (the package's make its gathers and segment sums slower: docs/decisions.md)."""


@jit(static_argnames="spec", quick=lambda *args, **kwargs: True)  # no work over the data
def _init_state(params: Params, seed: jax.Array, hyper: Hyper, spec: LoopSpec) -> LoopState:
    dtype = params.w.dtype
    key_data = jax.random.key_data(jax.random.key(seed))
    return LoopState(
        params=params,
        opt_state=optimizer(spec, hyper).init(params),
        iteration=jnp.zeros((), jnp.int32),
        n_recorded=jnp.zeros((), jnp.int32),
        loss_history=jnp.full((spec.history_size,), jnp.nan, dtype),
        last_good=params,
        previous_loss=jnp.asarray(jnp.inf, dtype),
        start_loss=jnp.asarray(jnp.inf, dtype),
        grad_best=jnp.asarray(jnp.inf, dtype),
        grad_best_at=jnp.zeros((), jnp.int32),
        status=jnp.asarray(RUNNING, jnp.int32),
        key=key_data,
    )


def init_state(params: Params, hyper: Hyper, spec: LoopSpec, seed: int) -> LoopState:
    """The loop's starting state: ``params``, a fresh optimizer state, an empty loss history
    (one compiled program; the shuffling key is made from ``seed`` inside it)."""
    return _init_state(params, np.uint32(seed), hyper, spec)
