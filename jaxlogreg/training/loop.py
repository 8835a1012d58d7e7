"""The training loop: the whole fit runs on the device in one jitted ``lax.while_loop``.

One loop serves every optimizer (:mod:`jaxlogreg.training.solvers`). Each iteration evaluates
the objective J and its gradient, records J in a loss history kept on the device, checks the
stopping rules, and applies ``optimizer.update`` unless they stop the loop (inside a
``lax.cond``: L-BFGS runs no line search once converged). With ``batch_size`` set, one
iteration is one epoch of shuffled minibatches (a ``lax.scan``); the shuffle comes from an
explicit PRNG key, so runs are reproducible.

Stopping rules, checked at every iteration (full batch: at the current parameters; minibatch:
on the epoch's mean loss):

- **diverged**: J or ∇J is NaN/inf, or J rose above ``DIVERGENCE_GROWTH · max(J₀, 1)`` (J₀: J at
  the starting parameters; with minibatches, the loss of the first minibatch). The loop stops and returns the last parameters that passed this check.
- **converged** (only when ``tol > 0``): ``max|∇J| <= tol`` (criterion "grad"), or
  ``|ΔJ| <= tol · |J|`` (criterion "loss"); for line-search solvers (L-BFGS) also when the
  objective has stalled: J is not below its value ``STALL_WINDOW`` iterations earlier, so the
  line search has not lowered it for that long (in the spirit of scipy's ``ftol``; with a tol
  below the dtype's precision the gradient rule alone would never stop). Not at the first
  unchanged J: near the optimum J can stay flat to the last bit for a few iterations while
  the line search, led by slopes, still shrinks ∇J (float64 fits to tol 1e-10 do).
  Fixed-step solvers keep going: their small steps still make progress that J, in float32,
  may be too coarse to show.
- **max_iter**: ``max_iter`` updates were made. With ``tol = 0`` this is the only way to stop
  (besides divergence): exactly ``max_iter`` updates, even when the gradient is zero.

Nothing syncs with the host inside the loop. Data and numeric hyper-parameters (learning rate,
λ, tol, max_iter) are jit arguments, so calling again with the same shapes and settings, or with
another learning rate, does not recompile.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlogreg.core.gradients import value_and_grad_t, with_gradient
from jaxlogreg.core.loss import example_scale, l1_penalty, objective_t
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.kernels import native
from jaxlogreg.kernels.fused import fused_value_and_grad_t
from jaxlogreg.runtime.compiler import jit
from jaxlogreg.training.proximal import min_norm_subgradient
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.solvers import LINE_SEARCH_SOLVERS, make_optimizer

RUNNING, CONVERGED, DIVERGED, MAX_ITER = 0, 1, 2, 3
STATUS_NAMES = {CONVERGED: "converged", DIVERGED: "diverged", MAX_ITER: "max_iter"}
DIVERGENCE_GROWTH = 1e4  # J above this many times max(J₀, 1) counts as diverged
STALL_WINDOW = 10  # line-search solvers stop when J has not gone down in this many iterations
ROUNDING_ULPS = 64  # a final J within this many epsilons of max(|J₀|, 1) above J₀ is not worse
# Loops with at most this many rows x iterations (the loss history's length), and elements of
# X x iterations, compile quickly (jaxlogreg.runtime.compiler.QUICK_OPTIONS): see quick_compile.
QUICK_COMPILE_WORK = 2**21
QUICK_COMPILE_ELEMENTS = 2**27


class LoopSpec(NamedTuple):
    """The static part of a fit: what changes the compiled program.

    ``max_iter`` itself is not static: the loss history's length is ``max_iter`` rounded up to
    a power of two, so nearby values of ``max_iter`` share one compiled loop.
    """

    solver: str
    solver_params: tuple[tuple[str, Any], ...]
    history_size: int
    batch_size: int | None
    grad: str
    criterion: str
    fit_intercept: bool
    # A jaxlogreg.training.mesh.RowLayout when Xt is sharded over devices and padded with
    # zero-weight columns (n_samples real rows first, then padding); None otherwise.
    layout: Any = None
    # The hand-written gradient's implementation: "xla" (jaxlogreg.core.gradients), "fused"
    # (the single-read Pallas kernel of jaxlogreg.kernels.fused, on GPUs), "fused_interpret"
    # (the same kernel through Pallas' interpreter: tests on CPU) or "native" (the single-read
    # C kernel of jaxlogreg.kernels.native, on CPUs).
    kernel: str = "xla"
    # The objective has an L1 part λ₁ ||w||₁ (penalty "l1" or "elasticnet"): J adds it, the
    # optimizer takes a proximal step, and "grad" stops on the minimum-norm subgradient.
    l1: bool = False

    @classmethod
    def of(
        cls, config: TrainConfig, batch_size: int | None, layout: Any = None, kernel: str = "xla"
    ) -> LoopSpec:
        return cls(
            config.solver,
            tuple(sorted(config.optimizer_params.items())),
            max(16, 1 << (config.max_iter - 1).bit_length()),
            batch_size,
            config.grad,
            config.criterion,
            config.fit_intercept,
            layout,
            kernel,
            config.has_l1,
        )


class TrainData(NamedTuple):
    """Training data in the internal layout: Xt (n, m), y (m,), sample_weight (m,) or None."""

    Xt: Any
    y: Any
    sample_weight: Any


class Hyper(NamedTuple):
    """The numeric hyper-parameters, passed to jit as arrays (no recompilation when they change)."""

    learning_rate: jax.Array
    l2: jax.Array
    tol: jax.Array
    l1: jax.Array


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
    status: jax.Array
    key: jax.Array  # shuffling key (raw uint32 data)


def _frozen_intercept(params: Params) -> Params:
    """The same parameters with no gradient flowing to b (``fit_intercept=False``)."""
    return params._replace(b=jax.lax.stop_gradient(params.b))


@functools.cache
def _hand_gradient(kernel: str) -> Any:
    """The hand-written ``(params, Xt, y, s, l2) -> (J, ∇J)`` of a LoopSpec's ``kernel``."""
    if kernel == "xla":
        return value_and_grad_t
    if kernel == "native":
        return native.native_value_and_grad_t
    return functools.partial(fused_value_and_grad_t, interpret=kernel == "fused_interpret")


@functools.cache
def _hand_objective(kernel: str) -> Any:
    """J whose derivative is the hand-written gradient of ``kernel`` (for line searches)."""
    return with_gradient(_hand_gradient(kernel))


def _value_and_grad(spec: LoopSpec, l2: jax.Array):
    """(params, Xt, y, sample_weight) -> (J, ∇J), hand-written or by jax.grad."""
    if spec.grad == "manual":

        def value_and_grad(p, Xt, y, sw):
            s = example_scale(sw, Xt.shape[1], p.w.dtype)
            value, grads = _hand_gradient(spec.kernel)(p, Xt, y, s, l2)
            return value, grads if spec.fit_intercept else grads._replace(b=jnp.zeros_like(p.b))

        return value_and_grad
    return jax.value_and_grad(_objective(spec, l2))


def _objective(spec: LoopSpec, l2: jax.Array):
    """J as a function optax can differentiate; with "manual" its VJP is the hand-written one."""
    objective = _hand_objective(spec.kernel) if spec.grad == "manual" else objective_t
    if spec.fit_intercept:
        return lambda p, Xt, y, sw: objective(p, Xt, y, sw, l2)
    return lambda p, Xt, y, sw: objective(_frozen_intercept(p), Xt, y, sw, l2)


def _optimizer(spec: LoopSpec, hyper: Hyper) -> optax.GradientTransformationExtraArgs:
    l1 = hyper.l1 if spec.l1 else None
    return make_optimizer(spec.solver, hyper.learning_rate, l1, **dict(spec.solver_params))


def _with_l1(value: jax.Array, grads: Params, params: Params, hyper: Hyper, spec: LoopSpec):
    """J = f + λ₁ ||w||₁ and the minimum-norm subgradient from f and ∇f (unchanged without L1)."""
    if not spec.l1:
        return value, grads
    return value + l1_penalty(params.w, hyper.l1), min_norm_subgradient(params, grads, hyper.l1)


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _max_abs(tree: Any) -> jax.Array:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)]))


def _value_fn(spec: LoopSpec, data: TrainData, l2: jax.Array):
    """J of the parameters alone on ``data``, as line searches evaluate it."""
    f = _objective(spec, l2)
    return lambda p: f(p, *data)


def _evaluate(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """J and ∇J at the current parameters (line-search solvers: read from their state, where
    the last search left them; evaluated only at the start)."""
    if spec.solver in LINE_SEARCH_SOLVERS:
        value_fn = _value_fn(spec, data, hyper.l2)
        return optax.value_and_grad_from_state(value_fn)(state.params, state=state.opt_state)
    return _value_and_grad(spec, hyper.l2)(state.params, *data)


def _update(state: LoopState, value, grads, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """One optimizer update from J and ∇J at the current parameters: new parameters and state."""
    updates, opt_state = _optimizer(spec, hyper).update(
        grads, state.opt_state, state.params, value=value, grad=grads,
        value_fn=_value_fn(spec, data, hyper.l2),
    )
    return optax.apply_updates(state.params, updates), opt_state


def epoch_batches(key: jax.Array, epoch: jax.Array, m: int, batch_size: int):
    """Shuffled minibatch indices for one epoch and a mask of real (not padding) rows.

    The permutation of ``range(m)`` comes from ``fold_in(key, epoch)``; it is padded to whole
    batches with index 0 and mask 0, so every batch has the same shape and no row is dropped.

    Returns:
      ``(indices, mask)``, both of shape (n_batches, batch_size).
    """
    n_batches = -(-m // batch_size)
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), m)
    pad = n_batches * batch_size - m
    indices = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)])
    mask = jnp.arange(n_batches * batch_size) < m
    return indices.reshape(n_batches, batch_size), mask.reshape(n_batches, batch_size)


def minibatch_update(
    params: Params, opt_state: Any, batch: TrainData, hyper: Hyper, spec: LoopSpec
) -> tuple[Params, Any, jax.Array, jax.Array]:
    """One minibatch step on ``batch`` (Xt (n, B), y (B,), weights (B,), zero for padding).

    A batch whose weights are all zero changes nothing and counts 0 (its mean loss, 0/0, is
    not used). Returns ``(params, opt_state, J_batch, weight_of_batch)``.
    """
    weight = jnp.sum(batch.sample_weight)
    value, grads = _value_and_grad(spec, hyper.l2)(params, *batch)
    optimizer = _optimizer(spec, hyper)
    updates, new_opt_state = optimizer.update(grads, opt_state, params, value=value, grad=grads)
    has_weight = weight > 0
    value = _with_l1(value, grads, params, hyper, spec)[0]
    params = _select(has_weight, optax.apply_updates(params, updates), params)
    opt_state = _select(has_weight, new_opt_state, opt_state)
    return params, opt_state, jnp.where(has_weight, value, 0.0), weight


def _gather_batch(data: TrainData, indices: jax.Array, mask: jax.Array) -> TrainData:
    weights = mask.astype(accumulation_dtype(data.Xt.dtype))
    if data.sample_weight is not None:
        weights = weights * data.sample_weight[indices]
    return TrainData(jnp.take(data.Xt, indices, axis=1), data.y[indices], weights)


def _minibatch_epoch(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """One epoch of shuffled minibatches; returns the weighted mean minibatch loss."""
    key = jax.random.wrap_key_data(state.key)
    m = data.Xt.shape[1] if spec.layout is None else spec.layout.n_samples  # padding never drawn
    indices, mask = epoch_batches(key, state.iteration, m, spec.batch_size)

    def step(carry, batch_ids):
        params, opt_state, loss_sum, weight_sum = carry
        batch = _gather_batch(data, *batch_ids)
        if spec.layout is not None:
            batch = spec.layout.constrain_batch(batch)  # split each minibatch over the devices
        params, opt_state, value, weight = minibatch_update(params, opt_state, batch, hyper, spec)
        return (params, opt_state, loss_sum + value * weight, weight_sum + weight), (value, weight)

    zero = jnp.zeros((), state.loss_history.dtype)
    (params, opt_state, loss_sum, weight_sum), (values, weights) = jax.lax.scan(
        step, (state.params, state.opt_state, zero, zero), (indices, mask)
    )
    first = values[jnp.argmax(weights > 0)]  # the loss of the first batch that has weight
    return loss_sum / weight_sum, first, params, opt_state


def _select(flag: jax.Array, if_true: Any, if_false: Any) -> Any:
    """``if_true`` when the scalar ``flag`` holds, else ``if_false`` (pytrees of one structure).

    A ``lax.cond``: XLA copies the chosen operands, where a ``jnp.where`` per leaf compiles a
    select kernel per leaf shape (L-BFGS's state has about 15 leaves). The L-BFGS loop compiles
    about 0.1 s faster (0.53-0.59 s against 0.67-0.83 s, 10^4 x 50 float64, four fresh processes
    each, in turn, 2-core EPYC) and runs as fast. (The same change inside the line search, whose
    choices are scalars, made no difference: not taken.)"""
    return jax.lax.cond(flag, lambda: if_true, lambda: if_false)


def within_growth(value: jax.Array, start_loss: jax.Array) -> jax.Array:
    """False once J is NaN/inf or above ``DIVERGENCE_GROWTH · max(J₀, 1)``."""
    return value <= DIVERGENCE_GROWTH * jnp.maximum(start_loss, 1.0)


def grad_rule(grads: Params, tol: jax.Array) -> jax.Array:
    """Converged by the gradient: ``max|∇J| <= tol``."""
    return _max_abs(grads) <= tol


def loss_rule(value: jax.Array, previous: jax.Array, tol: jax.Array) -> jax.Array:
    """Converged by the loss: ``|J_prev - J| <= tol · |J|``."""
    return jnp.abs(previous - value) <= tol * jnp.maximum(jnp.abs(value), jnp.finfo(value.dtype).tiny)


def stall_rule(value: jax.Array, history: jax.Array, n_recorded: jax.Array) -> jax.Array:
    """J has stalled: ``J_k >= J_{k-W}``, W = ``STALL_WINDOW``, with ``J_k = value`` about to be
    recorded at ``history[n_recorded]`` (never in the first W iterations)."""
    earlier = history[jnp.maximum(n_recorded - STALL_WINDOW, 0)]
    return (n_recorded >= STALL_WINDOW) & (value >= earlier)


def _is_done(value, grads, state: LoopState, hyper: Hyper, spec: LoopSpec) -> jax.Array:
    if spec.criterion == "grad" and grads is not None:
        met = grad_rule(grads, hyper.tol)
    else:
        met = loss_rule(value, state.previous_loss, hyper.tol)
    if spec.solver in LINE_SEARCH_SOLVERS:  # a line search that no longer lowers J is stuck
        stalled = stall_rule(value, state.loss_history, state.n_recorded)
        if spec.solver == "proximal":  # in float32 a step can improve w and leave J unchanged
            stalled = stalled & optax.tree.get(state.opt_state, "stalled")
        met = met | stalled
    return (hyper.tol > 0) & met


def _loop_body(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec) -> LoopState:
    """One iteration. Full batch: J and ∇J at the current parameters, then an update unless
    they failed the divergence check (back to the last good parameters) or converged.
    Minibatch: one epoch, undone if it failed the divergence check."""
    if spec.batch_size is not None:
        value, first, new_params, new_opt_state = _minibatch_epoch(state, data, hyper, spec)
        return finish_epoch(state, value, first, new_params, new_opt_state, hyper, spec)
    raw_value, raw_grads = _evaluate(state, data, hyper, spec)
    value, grads = _with_l1(raw_value, raw_grads, state.params, hyper, spec)
    start = jnp.where(state.n_recorded == 0, value, state.start_loss)
    ok = jnp.isfinite(value) & _all_finite(grads) & within_growth(value, start)
    done = _is_done(value, grads, state, hyper, spec)
    advance = ok & ~done
    last_good = _select(ok, state.params, state.last_good)
    params, opt_state = jax.lax.cond(  # the last iteration (converged) runs no line search
        advance,
        lambda: _update(state, raw_value, raw_grads, data, hyper, spec),
        lambda: (last_good, state.opt_state),
    )
    return _next_state(state, value, start, ok, done, advance, params, last_good, opt_state)


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
    ok = jnp.isfinite(value) & _all_finite(new_params) & within_growth(value, start)
    done = _is_done(value, None, state, hyper, spec)
    params = _select(ok, new_params, state.params)
    return _next_state(state, value, start, ok, done, ok, params, params, new_opt_state)


def _next_state(state, value, start, ok, done, advance, params, last_good, new_opt_state):
    status = jnp.where(ok, jnp.where(done, CONVERGED, RUNNING), DIVERGED)
    return LoopState(
        params=params,
        opt_state=_select(advance, new_opt_state, state.opt_state),
        iteration=state.iteration + advance.astype(state.iteration.dtype),
        n_recorded=state.n_recorded + 1,
        loss_history=state.loss_history.at[state.n_recorded].set(value),
        last_good=last_good,
        previous_loss=jnp.where(ok, value, state.previous_loss),
        start_loss=start,
        status=status.astype(jnp.int32),
        key=state.key,
    )


def _run(state: LoopState, data: TrainData, hyper: Hyper, stop_at: jax.Array, spec: LoopSpec):
    def cond(s: LoopState) -> jax.Array:
        room = s.n_recorded < s.loss_history.shape[0]
        return (s.iteration < stop_at) & (s.status == RUNNING) & room

    state = jax.lax.while_loop(cond, lambda s: _loop_body(s, data, hyper, spec), state)
    return state, _final_objective(state, data, hyper, spec)


def _final_objective(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """J at the final parameters: when a full-batch loop converged, the J it recorded there
    (it stopped without moving); else one more pass over X."""
    def evaluate():
        J = objective_t(state.params, *data, hyper.l2, hyper.l1)
        return J.astype(state.previous_loss.dtype)

    if spec.batch_size is not None:  # an epoch's mean minibatch loss is not J
        return evaluate()
    return jax.lax.cond(state.status == CONVERGED, lambda: state.previous_loss, evaluate)


def quick_compile(state: LoopState, data: TrainData, *args: Any, spec: LoopSpec) -> bool:
    """Whether the loop is small enough work to compile at LLVM's -O0
    (:data:`jaxlogreg.runtime.compiler.QUICK_OPTIONS`): with h the iteration bound (the loss history's
    length), m rows x h at most :data:`QUICK_COMPILE_WORK` and the elements of Xt x h at most
    :data:`QUICK_COMPILE_ELEMENTS` (10^4 x 50, padded to 16,384 x 64, with ``max_iter=100``:
    both exactly at the bound).

    Measured (2-core AMD EPYC, 10^4 x 50 float64 L-BFGS): the loop compiles in 0.31–0.34 s
    instead of 0.61–0.75 s, and each evaluation of J and ∇J costs about 40 ns more per row
    (its elementwise passes are not vectorised): its 13 iterations take 13–14 ms instead of
    8 ms. At the bound, a loop that runs every iteration pays about a third of what the
    compilation saved. Wide X pays per element as well (its small matrix products and the
    updates of n weights are not vectorised either): on the course's 209 x 12,288 images, 2000
    GD steps took 3.2 s instead of 1.5 s, which the element bound rules out.
    """
    n, m = data.Xt.shape
    h = spec.history_size
    return m * h <= QUICK_COMPILE_WORK and n * m * h <= QUICK_COMPILE_ELEMENTS


run_segment = jit(_run, static_argnames="spec", donate_argnames="state", quick=quick_compile)
run_segment.__doc__ = """Run the loop on dense X until ``stop_at`` updates, convergence or
divergence (jitted with :data:`jaxlogreg.runtime.compiler.XLA_OPTIONS`, plus
:data:`~jaxlogreg.runtime.compiler.QUICK_OPTIONS` for small work (:func:`quick_compile`); sparse
X: :data:`run_segment_sparse`).

Returns the state and J over all data at its parameters (in the same compiled program: the J
recorded at them when a full-batch loop converged, else one more pass over X). The iteration
that finds convergence makes no update, so L-BFGS runs no line search after it.
Calling it repeatedly with a growing ``stop_at`` reuses one compiled program: the pipeline
does so to call its hooks (progress bar, checkpoints) between segments.

``state`` is donated: the returned state reuses its buffers, so a fit holds one copy of the
optimizer's state, not two (L-BFGS keeps about 28 vectors of n weights: 0.65x the CSR bytes
of a 4·10^5 x 2^20 sparse X with 50 entries per row). The state passed in cannot be used after
the call.
"""

run_segment_sparse = jax.jit(_run, static_argnames="spec", donate_argnames="state")
run_segment_sparse.__doc__ = """:data:`run_segment` for sparse X, compiled with XLA's default
options: the options of :mod:`jaxlogreg.runtime.compiler` make its gathers and segment sums about 1.7x
slower."""


@jit(static_argnames="spec", quick=lambda *args, **kwargs: True)  # no work over the data
def _init_state(params: Params, seed: jax.Array, hyper: Hyper, spec: LoopSpec) -> LoopState:
    dtype = params.w.dtype
    key_data = jax.random.key_data(jax.random.key(seed))
    return LoopState(
        params=params,
        opt_state=_optimizer(spec, hyper).init(params),
        iteration=jnp.zeros((), jnp.int32),
        n_recorded=jnp.zeros((), jnp.int32),
        loss_history=jnp.full((spec.history_size,), jnp.nan, dtype),
        last_good=params,
        previous_loss=jnp.asarray(jnp.inf, dtype),
        start_loss=jnp.asarray(jnp.inf, dtype),
        status=jnp.asarray(RUNNING, jnp.int32),
        key=key_data,
    )


def init_state(params: Params, hyper: Hyper, spec: LoopSpec, seed: int) -> LoopState:
    """The loop's starting state: ``params``, a fresh optimizer state, an empty loss history
    (one compiled program; the shuffling key is made from ``seed`` inside it)."""
    return _init_state(params, np.uint32(seed), hyper, spec)
