"""Solvers: one record each, holding every fact the package needs about it (:class:`Solver`).

Each solver is an optax gradient transformation; the lecture's ``w := w - α dw`` is one more
(:func:`gradient_descent`), so plain (S)GD and every optax optimizer share one training loop.
:data:`SOLVERS` is the table; :func:`get` also accepts the name of any optax optimizer whose
first parameter is ``learning_rate`` (``"rmsprop"``, ``"lion"``, ...). Adding a solver is a
function and one line in the table.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from numbers import Real
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxlogreg.training.linesearch import scale_by_wolfe_linesearch
from jaxlogreg.training.newton_cg import newton_cg
from jaxlogreg.training.proximal import prox_l1, proximal_gradient

DEFAULT_LEARNING_RATE = 0.01


@dataclasses.dataclass(frozen=True)
class Solver:
    """What a solver is.

    Attributes:
      name: its name (``LogisticRegression(solver=name)``).
      build: ``build(learning_rate, l1, **params) -> optax.GradientTransformation``; ``l1`` is
        λ₁ for solvers with a proximal step, None without an L1 part.
      signature: the callable whose keyword parameters ``solver_params`` may set (their
        defaults' types are the types accepted), or None when it takes none.
      full_batch: it evaluates trial points itself (a line search): full-batch data only; the
        loop reads J and ∇J at the current point from its state.
      l1: it has a proximal step for ``λ₁ ||w||₁``.
      defaults: optax keyword arguments it is built with unless ``solver_params`` say otherwise.
      learning_rate: the default α; None when it chooses its own steps (α is unused).
      stall: when the loop may stop it for a stall (J no longer decreasing, and max|∇J| no
        longer reaching a new low, see :mod:`jaxlogreg.training.stopping`): "never" (fixed
        steps keep making progress J may be too coarse to show), "objective" (a line search
        that no longer lowers J is stuck), "objective_and_step" (also its state's ``stalled``
        flag: a proximal step can improve w and leave J unchanged in float32).
      host_loop: it runs its own loop on the host (:mod:`jaxlogreg.training.working_set`), not
        the on-device one: no optax transformation, mesh, checkpoints or minibatches.
      hessian: its update also takes ``hvp_fn(params, v) -> H v`` (the loop passes the
        kernel's product, :func:`jaxlogreg.training.spec.hvp_fn`).
    """

    name: str
    build: Callable[..., optax.GradientTransformation]
    signature: Callable[..., Any] | None
    full_batch: bool = False
    l1: bool = False
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate: float | None = DEFAULT_LEARNING_RATE
    stall: str = "never"
    host_loop: bool = False
    hessian: bool = False


def gradient_descent(learning_rate: Any, l1: Any = None) -> optax.GradientTransformation:
    """The lecture's update as an optax transformation: ``updates = -α · grads``.

    ``optax.apply_updates(params, updates)`` then gives ``w := w - α dw``, ``b := b - α db``.
    With ``l1`` (λ₁) the step is proximal (ISTA): ``w := prox(w - α dw, α λ₁)``, which needs
    ``params``. ``learning_rate`` and ``l1`` may be traced scalars, so changing them does not
    recompile a jitted loop.
    """

    def init_fn(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple[Any, Any]:
        step = jax.tree.map(lambda g: -learning_rate * g, updates)
        if l1 is None:
            return step, state
        new = prox_l1(optax.apply_updates(params, step), learning_rate * l1)
        return jax.tree.map(jnp.subtract, new, params), state

    return optax.GradientTransformation(init_fn, update_fn)


def _lbfgs(learning_rate: Any, l1: Any, linesearch: str = "wolfe", **params: Any):
    """optax.lbfgs with the strong-Wolfe line search of :mod:`jaxlogreg.training.linesearch`
    (``linesearch="wolfe"``) or optax's own (``"zoom"``)."""
    del learning_rate, l1
    if linesearch == "wolfe":
        search = scale_by_wolfe_linesearch()
    elif linesearch == "zoom":
        search = optax.scale_by_zoom_linesearch(max_linesearch_steps=20,
                                                initial_guess_strategy="one")
    else:
        raise ValueError(f"solver_params['linesearch'] must be 'wolfe' or 'zoom', got "
                         f"{linesearch!r}")
    return optax.lbfgs(linesearch=search, **params)


def _lbfgs_signature(linesearch: str = "wolfe", memory_size: int = 10,
                     scale_init_precond: bool = True) -> None:
    """The ``solver_params`` of "lbfgs" (optax.lbfgs's, less the line search object)."""


def _no_device_loop(learning_rate: Any, l1: Any) -> optax.GradientTransformation:
    raise ValueError("solver 'working_set' runs its own loop on the host "
                     "(jaxlogreg.fit and LogisticRegression on in-memory data); it has no "
                     "on-device update: use solver='proximal' here")


def _optax(name: str) -> Callable[..., optax.GradientTransformation]:
    return lambda learning_rate, l1, **params: getattr(optax, name)(learning_rate, **params)


SOLVERS: dict[str, Solver] = {s.name: s for s in (
    Solver("gd", lambda lr, l1: gradient_descent(lr, l1), None, l1=True, learning_rate=0.1),
    Solver("sgd", _optax("sgd"), optax.sgd, defaults={"momentum": 0.9}),
    Solver("adam", _optax("adam"), optax.adam),
    Solver("adamw", _optax("adamw"), optax.adamw, defaults={"weight_decay": 1e-4}),
    Solver("lbfgs", _lbfgs, _lbfgs_signature, full_batch=True, learning_rate=None,
           stall="objective"),
    Solver("newton-cg", lambda lr, l1, **params: newton_cg(**params), newton_cg,
           full_batch=True, learning_rate=None, stall="objective", hessian=True),
    Solver("proximal", lambda lr, l1: proximal_gradient(0.0 if l1 is None else l1), None,
           full_batch=True, l1=True, learning_rate=None, stall="objective_and_step"),
    Solver("working_set", _no_device_loop, None, full_batch=True, l1=True, learning_rate=None,
           host_loop=True),
)}


def _optax_optimizer(name: Any) -> Solver | None:
    """A record for ``optax.<name>`` when it is an optimizer taking a learning rate first."""
    factory = getattr(optax, name, None) if isinstance(name, str) else None
    if not callable(factory) or name.startswith("_") or not name.islower():
        return None
    try:
        first = next(iter(inspect.signature(factory).parameters.values()), None)
    except (TypeError, ValueError):
        return None
    if first is None or first.name != "learning_rate":
        return None
    return Solver(name, _optax(name), factory)


def get(name: Any) -> Solver:
    """The record of solver ``name``; a clear error for any other name."""
    solver = SOLVERS.get(name) if isinstance(name, str) else None
    solver = solver or _optax_optimizer(name)
    if solver is None:
        raise ValueError(
            f"solver must be one of {list(SOLVERS)} or the name of an optax optimizer whose "
            f"first parameter is learning_rate (e.g. 'rmsprop'), got {name!r}"
        )
    return solver


def _kind(default: Any) -> str | None:
    """"bool", "number" or "str": the type of a keyword's default value; None for another
    value (optax's annotations are unions too wide to tell)."""
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, Real):
        return "number"
    return "str" if isinstance(default, str) else None


def check_params(solver: Solver, params: dict[str, Any]) -> None:
    """Each of ``params`` is a keyword of the solver, of its default's type (the optax
    signature's, else the record's): a bool where the default is a bool (the string "false"
    is not False), a real number where it is a number, a string where it is a string."""
    accepted = {} if solver.signature is None else inspect.signature(solver.signature).parameters
    accepted = {k: p for k, p in accepted.items() if k != "learning_rate"
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_ended = solver.signature is not None and any(
        p.kind == p.VAR_KEYWORD for p in inspect.signature(solver.signature).parameters.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not open_ended:
        raise ValueError(f"solver_params {unknown} are not parameters of solver "
                         f"{solver.name!r}; it takes {sorted(accepted) or 'none'}")
    for key, value in params.items():
        default = accepted[key].default if key in accepted else None
        kind = _kind(default) or _kind(solver.defaults.get(key))  # the record's own default
        if kind is None or value is None:
            continue  # untyped: the abstract step in settings checks it
        ok = {"bool": isinstance(value, bool),
              "number": isinstance(value, Real) and not isinstance(value, bool),
              "str": isinstance(value, str)}[kind]
        expected = {"bool": "True or False", "number": "a number", "str": "a string"}[kind]
        if not ok:
            raise ValueError(f"solver_params[{key!r}] must be {expected} for solver "
                             f"{solver.name!r}, got {value!r}")


def make_optimizer(
    name: str, learning_rate: Any, l1: Any = None, **params: Any
) -> optax.GradientTransformationExtraArgs:
    """Build the optimizer ``name`` with learning rate α and extra optax keyword ``params``.

    ``learning_rate`` is ignored by solvers that choose their own steps ("lbfgs",
    "proximal"). ``l1``: λ₁ of an L1 penalty, for solvers with a proximal step (None: no L1
    part).
    """
    solver = get(name)
    if l1 is not None and not solver.l1:
        l1_solvers = [s.name for s in SOLVERS.values() if s.l1]
        raise ValueError(f"an L1 penalty needs solver {' or '.join(map(repr, l1_solvers))}, "
                         f"got solver {name!r}")
    check_params(solver, params)
    optimizer = solver.build(learning_rate, l1, **{**solver.defaults, **params})
    return optax.with_extra_args_support(optimizer)
