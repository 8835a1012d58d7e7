"""Training: the whole fit runs on the device in one jitted ``lax.while_loop``.

One loop serves every optimizer (:mod:`jaxlogreg.solvers`): each iteration evaluates the
objective J and its gradient, records J in a loss history kept on the device, checks for
divergence and convergence, and applies ``optimizer.update``. With ``batch_size`` set, one
iteration is one epoch of shuffled minibatches (a ``lax.scan``); the shuffle comes from an
explicit PRNG key, so runs are reproducible.

The gradient is the hand-written one (``dz = a - y``, :mod:`jaxlogreg.gradients`) unless
``grad="autodiff"``. X is transposed once to the features-major layout (n, m) before the loop.

Nothing syncs with the host inside the loop. Data and numeric hyper-parameters (learning rate,
λ, tol) are jit arguments, so calling :func:`fit` again with the same shapes and settings, or
with another learning rate, does not recompile.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlogreg import _validation as v
from jaxlogreg import model
from jaxlogreg._inputs import check_y
from jaxlogreg.gradients import objective_manual_vjp_t, value_and_backward_t
from jaxlogreg.loss import objective_t
from jaxlogreg.model import Params, accumulation_dtype, check_params, check_X_structure
from jaxlogreg.solvers import LINE_SEARCH_SOLVERS, check_solver, make_optimizer

RUNNING, CONVERGED, DIVERGED, MAX_ITER = 0, 1, 2, 3
STATUS_NAMES = {CONVERGED: "converged", DIVERGED: "diverged", MAX_ITER: "max_iter"}
_DEFAULT_LEARNING_RATE = {"gd": 0.1, "sgd": 0.01}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one fit; frozen and hashable.

    Attributes:
      solver: "gd" (the lecture's ``w := w - α dw``), "sgd" (momentum), "adam", "adamw",
        "lbfgs", or any optax optimizer name.
      learning_rate: α; None picks 0.1 for gd, 0.01 otherwise; unused by lbfgs.
      max_iter: iterations (epochs when ``batch_size`` is set), at least 1.
      tol: stopping tolerance, 0 to always run ``max_iter`` iterations.
      tol_criterion: "grad" (stop when max|∇J| <= tol), "loss" (stop when the relative change
        of J between iterations is <= tol), or "auto": "grad" for full batch, "loss" for minibatches.
      l2: λ of the penalty ``λ/2 ||w||²`` (intercept not penalised).
      batch_size: None for full batch; an integer for shuffled minibatches.
      grad: "manual" (hand-written ``dz = a - y``) or "autodiff" (``jax.grad``).
      solver_params: extra optax keyword arguments as ``(("name", value), ...)``.
      dtype: "float32" or "float64" (x64 is enabled only inside the fit).
      x_dtype: storage dtype of X: None (= dtype) or "bfloat16" (products accumulate in float32).
      fit_intercept: False keeps b = 0: J is evaluated at b = 0, so ∂J/∂b = 0 and b never moves.
    """

    solver: str = "gd"
    learning_rate: float | None = None
    max_iter: int = 100
    tol: float = 1e-4
    tol_criterion: str = "auto"
    l2: float = 0.0
    batch_size: int | None = None
    grad: str = "manual"
    solver_params: tuple[tuple[str, Any], ...] = ()
    dtype: str = "float32"
    x_dtype: str | None = None
    fit_intercept: bool = True

    def __post_init__(self) -> None:
        """Check every field (errors name it) and store numbers as Python int / float."""
        canonical = functools.partial(object.__setattr__, self)
        check_solver(self.solver)
        if self.learning_rate is not None:
            canonical("learning_rate", v.check_positive(self.learning_rate, "learning_rate"))
        canonical("max_iter", v.check_int_at_least(self.max_iter, "max_iter", 1))
        canonical("tol", v.check_positive(self.tol, "tol", allow_zero=True))
        v.check_choice(self.tol_criterion, "tol_criterion", ("auto", "grad", "loss"))
        canonical("l2", v.check_positive(self.l2, "l2", allow_zero=True))
        if self.batch_size is not None:
            canonical("batch_size", v.check_int_at_least(self.batch_size, "batch_size", 1))
            if self.solver in LINE_SEARCH_SOLVERS:
                raise ValueError(
                    f"solver {self.solver!r} needs full-batch gradients: batch_size must be None, "
                    f"got {self.batch_size}"
                )
        v.check_choice(self.grad, "grad", ("manual", "autodiff"))
        v.check_choice(self.dtype, "dtype", ("float32", "float64"))
        v.check_choice(self.x_dtype, "x_dtype", (None, "float32", "float64", "bfloat16"))
        if not isinstance(self.fit_intercept, bool):
            raise ValueError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        if not isinstance(self.solver_params, tuple):
            canonical("solver_params", tuple(sorted(dict(self.solver_params).items())))
        # Build once on the host so that bad optimizer parameters fail here, not inside jit.
        try:
            make_optimizer(self.solver, 0.1, **dict(self.solver_params))
        except TypeError as err:
            raise ValueError(
                f"solver_params {dict(self.solver_params)} are not valid for solver "
                f"{self.solver!r}: {err}"
            ) from err

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return _DEFAULT_LEARNING_RATE.get(self.solver, 0.01)

    @property
    def criterion(self) -> str:
        if self.tol_criterion != "auto":
            return self.tol_criterion
        return "grad" if self.batch_size is None else "loss"


class LoopSpec(NamedTuple):
    """The static part of a config: what changes the compiled program.

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
    # A jaxlogreg.sharding.RowLayout when Xt is sharded over devices and padded with zero-weight
    # columns (n_samples real rows first, then padding); None for plain single-device data.
    layout: Any = None

    @classmethod
    def of(cls, config: TrainConfig, layout: Any = None) -> LoopSpec:
        return cls(
            config.solver,
            config.solver_params,
            max(16, 1 << (config.max_iter - 1).bit_length()),
            config.batch_size,
            config.grad,
            config.criterion,
            config.fit_intercept,
            layout,
        )


class Hyper(NamedTuple):
    """The numeric hyper-parameters, passed to jit as arrays (no recompilation when they change)."""

    learning_rate: jax.Array
    l2: jax.Array
    tol: jax.Array


class TrainData(NamedTuple):
    """Training data in the internal layout: Xt (n, m), y (m,), sample_weight (m,) or None."""

    Xt: jax.Array
    y: jax.Array
    sample_weight: jax.Array | None


class LoopState(NamedTuple):
    """Everything the loop carries; a pytree of arrays, so it can be checkpointed."""

    params: Params
    opt_state: Any
    iteration: jax.Array  # updates done (epochs with minibatches)
    n_recorded: jax.Array  # entries of loss_history written
    loss_history: jax.Array  # (history_size,) >= max_iter entries, NaN where unwritten
    last_good: Params  # the last parameters with a finite objective
    previous_loss: jax.Array
    status: jax.Array
    key: jax.Array  # shuffling key (raw uint32 data)


class FitResult(NamedTuple):
    """What :func:`fit` returns."""

    params: Params  # NumPy arrays on the host, in the fit's dtype
    n_iter: int
    loss_history: np.ndarray  # J at each iteration (epoch mean with minibatches)
    loss: float  # J at the returned parameters, over all data
    status: str  # "converged", "max_iter" or "diverged"

    @property
    def converged(self) -> bool:
        return self.status == "converged"


def _zero_intercept(params: Params) -> Params:
    """``b = 0``: the start of a fit with ``fit_intercept=False``."""
    return params._replace(b=jnp.zeros_like(params.b))


def _frozen_intercept(params: Params) -> Params:
    """The same parameters with no gradient flowing to b (``fit_intercept=False``)."""
    return params._replace(b=jax.lax.stop_gradient(params.b))


def _value_and_grad_fn(spec: LoopSpec, l2: jax.Array) -> Callable[..., tuple[jax.Array, Params]]:
    """(params, Xt, y, sample_weight) -> (J, ∇J), hand-written or by jax.grad."""
    if spec.grad == "manual":

        def value_and_grad(p, Xt, y, sw):
            value, grads = value_and_backward_t(p, Xt, y, sw, l2)
            return value, grads if spec.fit_intercept else grads._replace(b=jnp.zeros_like(p.b))

        return value_and_grad
    return jax.value_and_grad(_objective_fn(spec, l2))


def _objective_fn(spec: LoopSpec, l2: jax.Array) -> Callable[..., jax.Array]:
    """J as a function optax can differentiate; with "manual" its VJP is the hand-written one."""
    objective = objective_manual_vjp_t if spec.grad == "manual" else objective_t
    if spec.fit_intercept:
        return lambda p, Xt, y, sw: objective(p, Xt, y, sw, l2)
    return lambda p, Xt, y, sw: objective(_frozen_intercept(p), Xt, y, sw, l2)


def _optimizer(spec: LoopSpec, hyper: Hyper) -> optax.GradientTransformationExtraArgs:
    return make_optimizer(spec.solver, hyper.learning_rate, **dict(spec.solver_params))


def _all_finite(value: jax.Array, grads: Params) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]
    return jnp.isfinite(value) & jnp.all(jnp.stack(leaves))


def _max_abs(tree: Any) -> jax.Array:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)]))


def _full_batch_step(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec):
    """J and ∇J at the current parameters, then one optimizer update."""
    optimizer = _optimizer(spec, hyper)
    f = _objective_fn(spec, hyper.l2)

    def value_fn(p):
        return f(p, *data)

    if spec.solver in LINE_SEARCH_SOLVERS:
        value, grads = optax.value_and_grad_from_state(value_fn)(state.params, state=state.opt_state)
    else:
        value, grads = _value_and_grad_fn(spec, hyper.l2)(state.params, *data)
    updates, opt_state = optimizer.update(
        grads, state.opt_state, state.params, value=value, grad=grads, value_fn=value_fn
    )
    return value, grads, optax.apply_updates(state.params, updates), opt_state


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
    params: Params,
    opt_state: Any,
    batch: TrainData,
    hyper: Hyper,
    spec: LoopSpec,
) -> tuple[Params, Any, jax.Array, jax.Array]:
    """One minibatch step on ``batch`` (Xt (n, B), y (B,), weights (B,), zero for padding).

    Returns ``(params, opt_state, J_batch, weight_of_batch)``.
    """
    value, grads = _value_and_grad_fn(spec, hyper.l2)(params, *batch)
    optimizer = _optimizer(spec, hyper)
    updates, opt_state = optimizer.update(grads, opt_state, params, value=value, grad=grads)
    return optax.apply_updates(params, updates), opt_state, value, jnp.sum(batch.sample_weight)


def _gather_batch(data: TrainData, indices: jax.Array, mask: jax.Array) -> TrainData:
    weights = mask.astype(data.Xt.dtype if data.Xt.dtype.itemsize >= 4 else jnp.float32)
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
        return (params, opt_state, loss_sum + value * weight, weight_sum + weight), None

    zero = jnp.zeros((), state.loss_history.dtype)
    (params, opt_state, loss_sum, weight_sum), _ = jax.lax.scan(
        step, (state.params, state.opt_state, zero, zero), (indices, mask)
    )
    return loss_sum / weight_sum, params, opt_state


def _select(flag: jax.Array, if_true: Any, if_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), if_true, if_false)


def _is_done(value: jax.Array, grads: Params | None, state: LoopState, hyper: Hyper, spec: LoopSpec):
    if spec.criterion == "grad" and grads is not None:
        return _max_abs(grads) <= hyper.tol
    change = jnp.abs(state.previous_loss - value)
    return change <= hyper.tol * jnp.maximum(jnp.abs(value), jnp.finfo(value.dtype).tiny)


def _loop_body(state: LoopState, data: TrainData, hyper: Hyper, spec: LoopSpec) -> LoopState:
    """One iteration. Full batch: J and ∇J at the current parameters, then an update unless
    they are non-finite (diverged: back to the last good parameters) or converged. Minibatch:
    one epoch, undone if it produced a non-finite loss or parameters."""
    if spec.batch_size is not None:
        value, new_params, new_opt_state = _minibatch_epoch(state, data, hyper, spec)
        return finish_epoch(state, value, new_params, new_opt_state, hyper, spec)
    value, grads, new_params, new_opt_state = _full_batch_step(state, data, hyper, spec)
    ok = _all_finite(value, grads)
    done = _is_done(value, grads, state, hyper, spec)
    advance = ok & ~done
    params = _select(advance, new_params, _select(ok, state.params, state.last_good))
    last_good = _select(ok, state.params, state.last_good)
    return _next_state(state, value, ok, done, advance, params, last_good, new_opt_state)


def finish_epoch(
    state: LoopState,
    value: jax.Array,
    new_params: Params,
    new_opt_state: Any,
    hyper: Hyper,
    spec: LoopSpec,
) -> LoopState:
    """The loop state after one minibatch epoch with mean loss ``value`` ending at ``new_params``.

    The epoch is undone if it produced a non-finite loss or parameters. Shared with
    :mod:`jaxlogreg.streaming`, which runs the epoch's minibatches from the host.
    """
    ok = _all_finite(value, new_params)
    done = _is_done(value, None, state, hyper, spec)
    params = _select(ok, new_params, state.params)
    return _next_state(state, value, ok, done, ok, params, params, new_opt_state)


def _next_state(state, value, ok, done, advance, params, last_good, new_opt_state) -> LoopState:
    status = jnp.where(ok, jnp.where(done, CONVERGED, RUNNING), DIVERGED)
    return LoopState(
        params=params,
        opt_state=_select(advance, new_opt_state, state.opt_state),
        iteration=state.iteration + advance.astype(state.iteration.dtype),
        n_recorded=state.n_recorded + 1,
        loss_history=state.loss_history.at[state.n_recorded].set(value),
        last_good=last_good,
        previous_loss=jnp.where(ok, value, state.previous_loss),
        status=status.astype(jnp.int32),
        key=state.key,
    )


def _run(state: LoopState, data: TrainData, hyper: Hyper, stop_at: jax.Array, spec: LoopSpec):
    def cond(s: LoopState) -> jax.Array:
        room = s.n_recorded < s.loss_history.shape[0]
        return (s.iteration < stop_at) & (s.status == RUNNING) & room

    return jax.lax.while_loop(cond, lambda s: _loop_body(s, data, hyper, spec), state)


run_segment = jax.jit(_run, static_argnames="spec")
run_segment.__doc__ = """Run the loop until ``stop_at`` updates, convergence or divergence (jitted).

Calling it repeatedly with a growing ``stop_at`` reuses one compiled program; :func:`fit`
does so to report progress, and checkpointing does so to save between segments.
"""


@jax.jit(static_argnames="spec")
def _init_state(params: Params, key_data: jax.Array, hyper: Hyper, spec: LoopSpec) -> LoopState:
    dtype = params.w.dtype
    return LoopState(
        params=params,
        opt_state=_optimizer(spec, hyper).init(params),
        iteration=jnp.zeros((), jnp.int32),
        n_recorded=jnp.zeros((), jnp.int32),
        loss_history=jnp.full((spec.history_size,), jnp.nan, dtype),
        last_good=params,
        previous_loss=jnp.asarray(jnp.inf, dtype),
        status=jnp.asarray(RUNNING, jnp.int32),
        key=key_data,
    )


_objective = jax.jit(objective_t)


def infer_n_classes(y: Any) -> int:
    """2 when all labels are 0/1, else ``max(y) + 1`` for integer class indices."""
    y = np.asarray(y)
    if y.size and np.isin(y, (0, 1)).all():
        return 2
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "y must hold 0/1 labels or integer class indices 0..K-1 (use "
            f"jaxlogreg.LogisticRegression for arbitrary labels), got dtype {y.dtype}"
        )
    return int(y.max()) + 1 if y.size else 2


@functools.partial(jax.jit, static_argnames="dtype")
def _features_major(X: jax.Array, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """``Xt = Xᵀ`` in ``dtype`` and whether all of it is finite: one compiled pass over X."""
    Xt = X.astype(dtype).T
    return Xt, jnp.all(jnp.isfinite(Xt))


def _to_features_major(X: Any, dtype: Any) -> jax.Array:
    """Validate X (m, n) and return it features-major, Xt (n, m), cast to ``dtype``."""
    X = check_X_structure(X)
    with np.errstate(over="ignore"):  # float64 input overflowing float32: reported below
        Xt, finite = _features_major(X, dtype=jnp.dtype(dtype))
    if not bool(finite):
        v.check_finite(X, "X")  # NaN or inf in the input: names the count
        raise ValueError(
            f"X must be finite in {jnp.dtype(dtype)}, but some values overflow it "
            f"(largest |X| is {float(np.max(np.abs(np.asarray(X)))):.3g}); use dtype='float64'"
        )
    return Xt


def prepare_data(
    X: Any, y: Any, sample_weight: Any, n_classes: int, config: TrainConfig
) -> TrainData:
    """Validate, cast and transpose once to the internal layout Xt (n, m)."""
    Xt = _to_features_major(X, config.x_dtype or config.dtype)
    m = Xt.shape[1]
    y = check_y(y, m, n_classes)
    dtype = jnp.dtype(config.dtype)
    y = y.astype(dtype) if n_classes == 2 else y.astype(jnp.int32)
    if sample_weight is not None:
        sample_weight = v.as_array(sample_weight, "sample_weight")
        v.check_sample_weight(sample_weight, m)
        sample_weight = jnp.asarray(sample_weight, dtype)
    return TrainData(Xt, y, sample_weight)


def hyper_of(config: TrainConfig) -> Hyper:
    dtype = jnp.dtype(config.dtype)
    return Hyper(
        learning_rate=jnp.asarray(config.resolved_learning_rate, dtype),
        l2=jnp.asarray(config.l2, dtype),
        tol=jnp.asarray(config.tol, dtype),
    )


def init_state(
    params: Params, config: TrainConfig, seed: int | jax.Array = 0
) -> LoopState:
    """The loop's starting state: ``params``, a fresh optimizer state, an empty loss history."""
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    return _init_state(params, jax.random.key_data(key), hyper_of(config), LoopSpec.of(config))


def result_of(state: LoopState, data: TrainData, config: TrainConfig) -> FitResult:
    """Read a finished loop state back to the host (the one synchronisation of a fit)."""
    status = int(state.status)
    status = MAX_ITER if status == RUNNING else status
    n_recorded = int(state.n_recorded)
    loss = float(_objective(state.params, *data, hyper_of(config).l2))
    return FitResult(
        params=Params(*(np.asarray(p) for p in state.params)),
        n_iter=int(state.iteration),
        loss_history=np.asarray(state.loss_history[:n_recorded]),
        loss=loss,
        status=STATUS_NAMES[status],
    )


def fit(
    X: Any,
    y: Any,
    config: TrainConfig | None = None,
    *,
    sample_weight: Any = None,
    init_params: Params | None = None,
    n_classes: int | None = None,
    seed: int | jax.Array = 0,
    callback: Callable[[int, float], None] | None = None,
    n_segments: int = 20,
    mesh: jax.sharding.Mesh | None = None,
    checkpoint: Any = None,
    **overrides: Any,
) -> FitResult:
    """Fit logistic (or softmax) regression on X (m, n), y (m,) with one on-device loop.

    Args:
      X: (m, n) inputs.
      y: (m,) labels: 0/1, or class indices 0..K-1 for softmax regression.
      config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields
        (``fit(X, y, solver="adam", learning_rate=0.01)``).
      sample_weight: optional (m,) non-negative weights.
      init_params: starting point (zeros by default, as in the course); kept for warm starts.
      n_classes: 2 or K; inferred from y when None.
      seed: integer seed or PRNG key for minibatch shuffling.
      callback: called as ``callback(iteration, loss)`` between loop segments, e.g. to draw a
        progress bar; the loop then runs in ``n_segments`` jitted calls instead of one.
      mesh: a one-axis ``("data",)`` mesh (:func:`jaxlogreg.sharding.make_mesh`) for data-parallel
        training: rows of X are sharded over its devices (padded with zero-weight rows when m is
        not divisible), parameters replicated; the result equals single-device training up to
        float rounding.
      checkpoint: a :class:`jaxlogreg.checkpoint.Checkpointer`: resume from its latest
        checkpoint if there is one, and save every ``checkpoint.every`` iterations.

    Returns:
      A :class:`FitResult`. A diverged fit has ``status == "diverged"`` and the last
      parameters whose loss was finite.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    n_classes = infer_n_classes(y) if n_classes is None else n_classes
    with jax.enable_x64(config.dtype == "float64"):
        data = prepare_data(X, y, sample_weight, n_classes, config)
        n_features = data.Xt.shape[0]
        dtype = accumulation_dtype(config.dtype)
        if init_params is None:
            params = model.init_params(n_features, n_classes, dtype)
        else:
            params = Params(*(jnp.asarray(p, dtype) for p in check_params(init_params, n_features)))
        layout = None
        if mesh is not None:
            from jaxlogreg import sharding

            data, layout = sharding.shard_data(data, mesh)
            params = sharding.replicate(params, mesh)
        if not config.fit_intercept:
            params = _zero_intercept(params)
        state = init_state(params, config, seed)
        if checkpoint is not None:
            state = checkpoint.run(state, data, config, callback=callback, layout=layout)
        else:
            state = run_loop(state, data, config, callback, n_segments, layout=layout)
        return result_of(state, data, config)


def run_loop(
    state: LoopState,
    data: TrainData,
    config: TrainConfig,
    callback: Callable[[int, float], None] | None = None,
    n_segments: int = 20,
    *,
    layout: Any = None,
) -> LoopState:
    """Run from ``state`` to the end: one jitted call, or ``n_segments`` with a callback.

    ``layout`` is the :class:`jaxlogreg.sharding.RowLayout` of sharded, padded ``data``.
    """
    hyper, spec = hyper_of(config), LoopSpec.of(config, layout)
    if callback is None:
        return run_segment(state, data, hyper, jnp.asarray(config.max_iter, jnp.int32), spec=spec)
    v.check_int_at_least(n_segments, "n_segments", 1)
    for k in range(1, n_segments + 1):
        stop_at = math.ceil(config.max_iter * k / n_segments)
        state = run_segment(state, data, hyper, jnp.asarray(stop_at, jnp.int32), spec=spec)
        n_recorded = int(state.n_recorded)
        loss = float(state.loss_history[n_recorded - 1]) if n_recorded else math.nan
        callback(int(state.iteration), loss)
        if int(state.status) != RUNNING:
            break
    return state
