"""Optimizers as optax gradient transformations, chosen by name.

The lecture's update ``w := w - α dw`` is one more :class:`optax.GradientTransformation`
(:func:`gradient_descent`), so plain (S)GD and every optax optimizer share one training loop.

Names: ``"gd"`` (the lecture's rule; minibatch SGD when a batch size is set), ``"sgd"``
(optax.sgd, momentum 0.9 by default), ``"adam"``, ``"adamw"``, ``"lbfgs"`` (optax.lbfgs with
the strong-Wolfe line search of :mod:`jaxlogreg.training.linesearch`, or optax's own with
``solver_params={"linesearch": "zoom"}``; full batch only), ``"proximal"`` (proximal gradient with
Barzilai-Borwein steps, full batch only, :mod:`jaxlogreg.training.proximal`), or the name of
any other optax optimizer taking a learning rate as first argument (``"rmsprop"``, ...).

L1 and elastic-net penalties need a proximal step: ``"proximal"``, or ``"gd"`` (ISTA).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxlogreg.training.linesearch import scale_by_wolfe_linesearch
from jaxlogreg.training.proximal import prox_l1, proximal_gradient

SOLVERS = ("gd", "sgd", "adam", "adamw", "lbfgs", "proximal")
LINE_SEARCH_SOLVERS = ("lbfgs", "proximal")  # full batch; they evaluate trial points themselves
L1_SOLVERS = ("proximal", "gd")  # solvers with a proximal step for λ₁ ||w||₁
_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "gd": {},
    "sgd": {"momentum": 0.9},
    "adam": {},
    "adamw": {"weight_decay": 1e-4},
    "lbfgs": {},
    "proximal": {},
}


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


def is_known_solver(name: str) -> bool:
    """True for the names in :data:`SOLVERS` and for optax optimizer functions."""
    if name in SOLVERS:
        return True
    factory = getattr(optax, name, None)
    return callable(factory) and not name.startswith("_") and name.islower()


def check_solver(name: Any) -> str:
    """Raise a clear error for an unknown solver name."""
    if not isinstance(name, str) or not is_known_solver(name):
        raise ValueError(
            f"solver must be one of {list(SOLVERS)} or the name of an optax optimizer "
            f"(e.g. 'rmsprop'), got {name!r}"
        )
    return name


def _linesearch(name: Any) -> optax.GradientTransformationExtraArgs:
    """L-BFGS's line search by name: ``"wolfe"`` (:mod:`jaxlogreg.training.linesearch`, the
    default) or ``"zoom"`` (optax's, as ``optax.lbfgs`` builds it)."""
    if name == "wolfe":
        return scale_by_wolfe_linesearch()
    if name == "zoom":
        return optax.scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")
    raise ValueError(f"solver_params['linesearch'] must be 'wolfe' or 'zoom', got {name!r}")


def make_optimizer(
    name: str, learning_rate: Any, l1: Any = None, **params: Any
) -> optax.GradientTransformationExtraArgs:
    """Build the optimizer ``name`` with learning rate α and extra optax keyword ``params``.

    ``learning_rate`` is ignored by ``"lbfgs"`` and ``"proximal"``, which choose their steps.
    ``l1``: λ₁ of an L1 penalty, for the solvers of :data:`L1_SOLVERS` (None: no L1 part).
    """
    check_solver(name)
    if l1 is not None and name not in L1_SOLVERS:
        raise ValueError(f"an L1 penalty needs solver {' or '.join(map(repr, L1_SOLVERS))}, "
                         f"got solver {name!r}")
    params = {**_DEFAULT_PARAMS.get(name, {}), **params}
    if name in ("gd", "proximal"):
        if params:
            raise ValueError(f"solver {name!r} takes no optimizer parameters, got {sorted(params)}")
        optimizer = (gradient_descent(learning_rate, l1) if name == "gd"
                     else proximal_gradient(0.0 if l1 is None else l1))
    elif name == "lbfgs":
        linesearch = _linesearch(params.pop("linesearch", "wolfe"))
        optimizer = optax.lbfgs(linesearch=linesearch, **params)
    else:
        optimizer = getattr(optax, name)(learning_rate, **params)
    return optax.with_extra_args_support(optimizer)
