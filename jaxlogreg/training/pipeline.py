"""The fit pipeline: one function runs every fit on prepared data, between its hooks.

:func:`run_fit` is the only place a fit is assembled: starting parameters, the loop's state,
resuming from a checkpoint, running the on-device loop in segments with hooks (progress bar,
checkpoints, callbacks) called between them, and the :class:`FitResult`. What differs between
in-memory, sharded, multi-process and streamed training is only how the data were prepared:
each passes a :class:`Prepared` to :func:`run_fit`.

:func:`fit` is the in-memory entry point: ``fit(X, y, C=..., solver=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxlogreg import kernels
from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params, accumulation_dtype, check_params
from jaxlogreg.core.sparse import CooMatrix
from jaxlogreg.runtime import compiler
from jaxlogreg.training import working_set, working_set_softmax
from jaxlogreg.training.data import DeviceData, device_data
from jaxlogreg.training.loop import LoopState, init_state
from jaxlogreg.training.problem import Problem, check_penalty, validate
from jaxlogreg.training.progress import ProgressBar
from jaxlogreg.training.settings import TrainConfig, resolve
from jaxlogreg.training.spec import Hyper, LoopSpec
from jaxlogreg.training.stopping import DIVERGED, MAX_ITER, ROUNDING_ULPS, RUNNING, STATUS_NAMES


class FitResult(NamedTuple):
    """What a fit returns."""

    params: Params  # NumPy arrays on the host, in the fit's dtype
    n_iter: int
    loss_history: np.ndarray  # J at each iteration (epoch mean with minibatches)
    loss: float  # J at the returned parameters, over all data
    status: str  # "converged", "stalled", "max_iter" or "diverged" (training.stopping)

    @property
    def converged(self) -> bool:
        return self.status == "converged"


class Prepared(Protocol):
    """Data ready for :func:`run_fit` (:class:`~jaxlogreg.training.data.DeviceData`, or
    :class:`~jaxlogreg.scale.streaming.StreamedData` for data on disk)."""

    n_samples: int
    n_features: int
    n_classes: int
    dtype: str
    weight_sum: float
    layout: Any

    def place(self, params: Params) -> Params: ...
    def unpad(self, params: Params) -> Params: ...
    def advance(
        self, state: LoopState, hyper: Hyper, spec: LoopSpec, stop_at: int
    ) -> tuple[LoopState, Any]: ...
    def objective(self, params: Params, hyper: Hyper) -> float: ...
    def fingerprint(self) -> list[float]: ...


class Hook(Protocol):
    """Called with the loop state between segments, every ``every`` iterations and at the end."""

    every: int

    def __call__(self, state: LoopState) -> None: ...


class CallbackHook:
    """``callback(iteration, loss)`` every ``every`` iterations (a progress bar, a logger)."""

    def __init__(self, callback: Callable[[int, float], None], every: int):
        self.callback, self.every = callback, every

    def __call__(self, state: LoopState) -> None:
        n_recorded = int(state.n_recorded)
        loss = float(np.asarray(state.loss_history)[n_recorded - 1]) if n_recorded else math.nan
        self.callback(int(state.iteration), loss)


class CheckpointHook:
    """Saves the loop state with a :class:`~jaxlogreg.scale.checkpoint.Checkpointer`."""

    def __init__(self, checkpointer: Any, config: TrainConfig, fingerprint: list[float]):
        self.checkpointer, self.config, self.fingerprint = checkpointer, config, fingerprint
        self.every = checkpointer.every

    def __call__(self, state: LoopState) -> None:
        self.checkpointer.save(state, self.config, self.fingerprint)


def every_nth(max_iter: int, n_segments: int) -> int:
    """Iterations between calls so that a fit of ``max_iter`` makes ``n_segments`` calls."""
    return max(1, math.ceil(max_iter / v.check_int_at_least(n_segments, "n_segments", 1)))


def callback_hooks(
    callback: Callable[[int, float], None] | None, max_iter: int, n_segments: int
) -> list[Hook]:
    """``callback(iteration, loss)`` called ``n_segments`` times over the fit (none if None)."""
    return [] if callback is None else [CallbackHook(callback, every_nth(max_iter, n_segments))]


def hyper_of(config: TrainConfig, l2: float, dtype: str, l1: float = 0.0) -> Hyper:
    """The numeric hyper-parameters as host scalars (jit takes them without a compiled cast)."""
    dtype = np.dtype(accumulation_dtype(dtype))
    return Hyper(
        learning_rate=np.asarray(config.resolved_learning_rate, dtype),
        l2=np.asarray(l2, dtype),
        tol=np.asarray(config.tol, dtype),
        l1=np.asarray(l1, dtype),
    )


def starting_params(
    init: Params | None, n_features: int, n_classes: int, dtype: str, fit_intercept: bool
) -> Params:
    """``init`` (checked and cast) or zeros, as in the course, as host arrays; b = 0 without an
    intercept."""
    dtype = np.dtype(accumulation_dtype(dtype))
    if init is None:
        w_shape = (n_features,) if n_classes == 2 else (n_features, n_classes)
        return Params(np.zeros(w_shape, dtype), np.zeros(() if n_classes == 2 else (n_classes,),
                                                          dtype))
    if isinstance(init, Params):
        init = Params(*(v.as_array(p, f"init_params.{name}") for p, name in zip(init, "wb")))
    w, b = check_params(init, n_features)
    if not (np.all(np.isfinite(np.asarray(w))) and np.all(np.isfinite(np.asarray(b)))):
        raise ValueError("init_params must be finite, got NaN or inf in w or b")
    if (2 if np.ndim(w) == 1 else np.shape(w)[1]) != n_classes:
        raise ValueError(
            f"init_params must be for {n_classes} classes, got w of shape {tuple(np.shape(w))}"
        )
    params = Params(np.asarray(w, dtype), np.asarray(b, dtype))
    return params if fit_intercept else params._replace(b=np.zeros_like(params.b))


def kernel_for(data: Prepared) -> str:
    """The gradient kernel of a fit on ``data``: the one its data were laid out for
    (:func:`~jaxlogreg.training.data.fit_kernel`), else the first of
    :data:`jaxlogreg.kernels.KERNELS` that applies to its shape (XLA's for data streamed from
    disk)."""
    if not isinstance(data, DeviceData):
        return "xla"
    if data.kernel is not None:
        return data.kernel
    Xt = data.data.Xt
    shape = kernels.Shape(
        n_features=Xt.shape[0], n_samples=Xt.shape[1], n_classes=data.n_classes,
        x_dtype=Xt.dtype, dtype=data.dtype, backend=compiler.platform([Xt.data if isinstance(
            Xt, CooMatrix) else Xt]), sparse=isinstance(Xt, CooMatrix),
        sharded=data.layout is not None)
    return kernels.choose(shape).name


def seed_of(config: TrainConfig, minibatch: bool) -> int:
    """The shuffle seed: ``random_state``, or one drawn from NumPy's global generator."""
    if not minibatch:
        return 0
    if config.random_state is not None:
        return config.random_state
    return int(np.random.randint(np.iinfo(np.int32).max))


def run_fit(
    data: Prepared,
    config: TrainConfig,
    *,
    init_params: Params | None = None,
    hooks: Sequence[Hook] = (),
    checkpoint: Any = None,
) -> FitResult:
    """Run one fit on prepared data: the single fit pipeline of the package.

    Args:
      data: prepared data (:class:`Prepared`).
      config: the settings.
      init_params: starting point (zeros by default); for warm starts.
      hooks: called between loop segments (see :class:`Hook`); ``config.verbose`` adds a
        progress bar.
      checkpoint: a :class:`~jaxlogreg.scale.checkpoint.Checkpointer`: resume from its latest
        checkpoint of this fit and data, and save every ``checkpoint.every`` iterations.

    Returns:
      A :class:`FitResult`. A diverged fit has ``status == "diverged"`` and the last parameters
      that passed the divergence check; a full-batch fit never returns parameters with a larger
      objective than its start (it returns the start and ``status == "diverged"``).
    """
    with jax.enable_x64(data.dtype == "float64"):
        batch_size = None if config.batch_size is None else min(config.batch_size, data.n_samples)
        ws = data.weight_sum
        check_penalty(config.l2(ws) + config.l1(ws), config.C, ws, data.dtype)
        hyper = hyper_of(config, config.l2(ws), data.dtype, config.l1(ws))
        rows = isinstance(data, DeviceData) and data.rows
        spec = LoopSpec.of(config, batch_size, data.layout, kernel_for(data), rows)
        start = data.place(
            starting_params(init_params, data.n_features, data.n_classes, data.dtype,
                            config.fit_intercept)
        )
        state = init_state(start, hyper, spec, seed_of(config, batch_size is not None))
        hooks = list(hooks)
        if checkpoint is not None:  # saved first: a failing callback cannot lose a checkpoint
            fingerprint = data.fingerprint()
            state = checkpoint.restore(state, config, fingerprint) or state
            hooks.insert(0, CheckpointHook(checkpoint, config, fingerprint))
        bar = ProgressBar(config.max_iter, "fit", enabled=None if config.verbose else False)
        with bar:
            if bar.enabled:
                hooks.append(CallbackHook(bar.update, every_nth(config.max_iter, 20)))
            state, loss = _run_segments(state, data, hyper, spec, config.max_iter, hooks)
        return _result(state, loss, data, hyper, spec, start)


def _finished(state: LoopState, max_iter: int, spec: LoopSpec) -> bool:
    return (
        int(state.status) != RUNNING
        or int(state.iteration) >= max_iter
        or int(state.n_recorded) >= spec.history_size
    )


def _run_segments(state, data: Prepared, hyper, spec, max_iter: int, hooks: list[Hook]):
    """The whole loop in one call without hooks; else segments ending where a hook is due.

    Returns the final state and J at its parameters (None when the data cannot tell it along
    the way: streamed data evaluate it afterwards)."""
    if not hooks:
        return data.advance(state, hyper, spec, max_iter)
    loss = None
    while not _finished(state, max_iter, spec):
        iteration = int(state.iteration)
        stop_at = min([(iteration // h.every + 1) * h.every for h in hooks] + [max_iter])
        state, loss = data.advance(state, hyper, spec, stop_at)
        finished, iteration = _finished(state, max_iter, spec), int(state.iteration)
        for hook in hooks:
            if finished or iteration % hook.every == 0:
                hook(state)
    return state, loss


def _result(state: LoopState, loss: Any, data: Prepared, hyper: Hyper, spec: LoopSpec,
            start: Params):
    """Read the finished loop back to the host (the one synchronisation of a fit)."""
    status = int(state.status)
    status = MAX_ITER if status == RUNNING else status
    params = state.params
    loss = data.objective(params, hyper) if loss is None else float(loss)
    if spec.batch_size is None:  # J₀ is exact for full batch: never return worse than the start
        start_loss = float(state.start_loss)
        slack = ROUNDING_ULPS * float(jnp.finfo(state.start_loss.dtype).eps) * max(abs(start_loss), 1)
        if not loss <= start_loss + slack:
            params, loss, status = start, data.objective(start, hyper), DIVERGED
    n_recorded = int(state.n_recorded)
    return FitResult(  # to NumPy first: slicing a device array would compile a program
        params=data.unpad(Params(*(np.asarray(p) for p in params))),
        n_iter=int(state.iteration),
        loss_history=np.asarray(state.loss_history)[:n_recorded],
        loss=loss,
        status=STATUS_NAMES[status],
    )


def fit(X: Any, y: Any, config: TrainConfig | None = None, *, sample_weight: Any = None,
        init_params: Params | None = None, n_classes: int | None = None,
        mesh: jax.sharding.Mesh | None = None, checkpoint: Any = None,
        callback: Callable[[int, float], None] | None = None, n_segments: int = 20,
        **settings: Any) -> FitResult:
    """Fit logistic (or softmax) regression on X (m, n), y (m,) with one on-device loop.

    Args:
      X: (m, n) inputs.
      y: (m,) labels: 0/1, or class indices 0..K-1 for softmax regression.
      config: a :class:`TrainConfig`; keyword ``settings`` replace its fields
        (``fit(X, y, solver="adam", learning_rate=0.01, C=10.0)``).
      sample_weight: optional (m,) non-negative weights.
      init_params: starting point (zeros by default, as in the course); for warm starts.
      n_classes: 2 or K; inferred from y when None.
      mesh: a one-axis ``("data",)`` mesh (:func:`jaxlogreg.make_mesh`) for data-parallel
        training: rows of X are sharded over its devices (padded with zero-weight rows),
        parameters replicated; the result equals single-device training up to float rounding.
      checkpoint: a :class:`jaxlogreg.Checkpointer`: resume from its latest checkpoint of this
        fit, and save every ``checkpoint.every`` iterations.
      callback: called as ``callback(iteration, loss)`` between ``n_segments`` loop segments.

    Returns:
      A :class:`FitResult`.
    """
    config = resolve(config, settings)
    problem = validate(X, y, sample_weight=sample_weight, class_weight=config.class_weight,
                       n_classes=n_classes, dtype=config.dtype)
    hooks = callback_hooks(callback, config.max_iter, n_segments)
    return fit_problem(problem, config.replace(class_weight=None), mesh=mesh,
                       checkpoint=checkpoint, init_params=init_params, hooks=hooks)


def fit_problem(problem: Problem, config: TrainConfig, *, mesh: jax.sharding.Mesh | None = None,
                checkpoint: Any = None, **run: Any) -> FitResult:
    """:func:`fit` on checked data (the estimator's route: its own checks, then this); the
    class weights are already in ``problem.weights``. ``run``: :func:`run_fit`'s
    ``init_params`` and ``hooks``."""
    if config.solver_record.host_loop:
        return _fit_on_host(problem, config, mesh=mesh, checkpoint=checkpoint, **run)
    data = device_data(problem, config.x_dtype, batch_size=config.batch_size, mesh=mesh,
                       bucket=checkpoint is None, grad=config.grad)
    return run_fit(data, config, checkpoint=checkpoint, **run)


def _fit_on_host(problem: Problem, config: TrainConfig, *, mesh: Any, checkpoint: Any,
                 init_params: Params | None = None, hooks: Sequence[Hook] = ()) -> FitResult:
    """A solver that runs its own loop on the host (:mod:`jaxlogreg.training.working_set`,
    :mod:`~.working_set_softmax` for more than two classes): L1 part, in-memory full batch;
    ``init_params`` a warm start."""
    refused = {"mesh": mesh, "checkpoint": checkpoint, "batch_size": config.batch_size,
               "callback": "a callback" if hooks else None}
    for name, value in refused.items():
        if value is not None:
            raise ValueError(f"solver {config.solver!r} runs on the host without {name}: "
                             f"{name} must be None, got {value!r}")
    if not config.has_l1:
        raise ValueError(f"solver {config.solver!r} fits L1 and elastic-net penalties, got "
                         f"penalty={config.penalty!r} with C={config.C!r}; use solver='lbfgs'")
    start = None if init_params is None else starting_params(
        init_params, problem.X.shape[1], problem.n_classes, problem.dtype, config.fit_intercept)
    solver = working_set if problem.n_classes == 2 else working_set_softmax
    params, n_iter, history, loss, status = solver.fit_problem(problem, config, start)
    return FitResult(params, n_iter, history, loss, status)
