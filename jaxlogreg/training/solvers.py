"""Optimizers as optax gradient transformations, chosen by name.

The lecture's update ``w := w - α dw`` is one more :class:`optax.GradientTransformation`
(:func:`gradient_descent`), so plain (S)GD and every optax optimizer share one training loop.

Names: ``"gd"`` (the lecture's rule; minibatch SGD when a batch size is set), ``"sgd"``
(optax.sgd, momentum 0.9 by default), ``"adam"``, ``"adamw"``, ``"lbfgs"`` (optax.lbfgs with
its zoom line search, full batch only), or the name of any other optax optimizer taking a
learning rate as first argument (``"rmsprop"``, ``"adagrad"``, ...).
"""

from __future__ import annotations

from typing import Any

import jax
import optax

SOLVERS = ("gd", "sgd", "adam", "adamw", "lbfgs")
LINE_SEARCH_SOLVERS = ("lbfgs",)
_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "gd": {},
    "sgd": {"momentum": 0.9},
    "adam": {},
    "adamw": {"weight_decay": 1e-4},
    "lbfgs": {},
}


def gradient_descent(learning_rate: Any) -> optax.GradientTransformation:
    """The lecture's update as an optax transformation: ``updates = -α · grads``.

    ``optax.apply_updates(params, updates)`` then gives ``w := w - α dw``, ``b := b - α db``.
    ``learning_rate`` may be a traced scalar, so changing it does not recompile a jitted loop.
    """

    def init_fn(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple[Any, Any]:
        del params
        return jax.tree.map(lambda g: -learning_rate * g, updates), state

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


def make_optimizer(
    name: str, learning_rate: Any, **params: Any
) -> optax.GradientTransformationExtraArgs:
    """Build the optimizer ``name`` with learning rate α and extra optax keyword ``params``.

    ``learning_rate`` is ignored by ``"lbfgs"``, whose line search chooses the step.
    """
    check_solver(name)
    params = {**_DEFAULT_PARAMS.get(name, {}), **params}
    if name == "gd":
        if params:
            raise ValueError(f"solver 'gd' takes no optimizer parameters, got {sorted(params)}")
        optimizer = gradient_descent(learning_rate)
    elif name == "lbfgs":
        optimizer = optax.lbfgs(**params)
    else:
        optimizer = getattr(optax, name)(learning_rate, **params)
    return optax.with_extra_args_support(optimizer)
