"""The settings of a fit: one model for the estimator, ``jaxlogreg.fit`` and the TOML config.

:class:`TrainConfig`'s fields are exactly :class:`jaxlogreg.LogisticRegression`'s parameters
(same names, same defaults) and exactly the keys of a config file's ``[train]`` section; every
value is checked here, once, with a message that names the parameter, what was expected and
what was given.

The objective, as in scikit-learn, is ``C Σ_i s_i L_i + r ||w||₁ + (1 - r)/2 ||w||²``, i.e.
the mean loss plus ``λ₁ ||w||₁ + λ₂/2 ||w||²`` with ``λ₁ = r / (C Σ_i s_i)`` and
``λ₂ = (1 - r) / (C Σ_i s_i)``; r is 0 for ``penalty="l2"``, 1 for ``"l1"`` and ``l1_ratio``
for ``"elasticnet"`` (``s_i``: sample weight times class weight; the intercept is not
penalised; ``C = inf`` or ``penalty=None`` means no penalty).
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real
from typing import Any

import jax
import jax.numpy as jnp

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params
from jaxlogreg.training import solvers

MAX_ITER_LIMIT = 10_000_000  # the loss history is kept on the device: at most 10^7 entries
_SOLVER_PARAM_TYPES = (bool, int, float, str, type(None))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one fit; the :class:`~jaxlogreg.LogisticRegression` parameters.

    Attributes:
      C: inverse regularization strength, ``λ = 1 / (C Σ s)``; ``inf`` for no penalty.
      penalty: "l2" (default), "l1", "elasticnet" or None; L1 parts need solver "proximal",
        "working_set" or "gd" (ISTA).
      l1_ratio: r in [0, 1], the L1 share of an elastic-net penalty; only with "elasticnet".
      fit_intercept: learn b; False keeps b = 0 (∂J/∂b is held at 0).
      solver: "lbfgs" (optax L-BFGS with line search), "newton-cg" (truncated Newton on H·v
        products, :mod:`jaxlogreg.training.newton_cg`), "proximal" (proximal gradient with
        Barzilai-Borwein steps, for L1 parts), "gd" (the lecture's ``w := w - α dw``; ISTA
        with L1), "working_set" (L1 / elastic-net: working sets and proximal Newton on
        the host, :mod:`jaxlogreg.training.working_set`; no mesh, checkpoint, batch_size or
        callback), "sgd" (momentum 0.9), "adam", "adamw", or any optax optimizer name.
      learning_rate: α; None picks 0.1 for gd, 0.01 otherwise; unused by the solvers that choose
        their own steps (lbfgs, newton-cg, proximal, working_set).
      max_iter: iterations (epochs when ``batch_size`` is set), 0 to 10^7 (0 fits nothing).
      tol: stopping tolerance (see :mod:`jaxlogreg.training.loop`); 0 runs exactly ``max_iter``
        iterations. A full-batch binary fit with an L1 part is converged only when also its
        duality gap is at most ``tol · J`` (docs/stopping.md); for "working_set" ``tol`` is
        that relative gap alone, and ``max_iter`` its working-set rounds.
      tol_criterion: "grad" (stop when max|∇J| <= tol), "loss" (relative change of J <= tol),
        or "auto": "grad" for full batch, "loss" for minibatches.
      batch_size: None for full batch; an integer for shuffled minibatches (capped at m).
      random_state: seed of the minibatch shuffle; None draws one from NumPy's global
        generator (scikit-learn's convention). Full-batch fits do not use it.
      dtype: "float32", "float64", or None: float32 for float32 (or 16-bit) X, else float64
        (scikit-learn's rule). float64 enables x64 only inside the fit.
      x_dtype: storage dtype of X: None (= dtype) or "bfloat16" (products accumulate in float32).
      class_weight: None, "balanced" (weighted class counts, as scikit-learn) or a dict
        {class: weight}, multiplied into the sample weights.
      warm_start: the estimator starts from its previous coefficients (``fit`` takes
        ``init_params`` instead; a CLI run fits once).
      verbose: 1 draws a progress bar on stderr when it is a terminal; 2 also prints a summary.
      grad: "manual" (hand-written ``dz = a - y``) or "autodiff" (``jax.grad``).
      solver_params: extra optax keyword arguments, e.g. ``{"momentum": 0.5}``; they override
        the built-in defaults.
    """

    C: float = 1.0
    penalty: str | None = "l2"
    l1_ratio: float | None = None
    fit_intercept: bool = True
    solver: str = "lbfgs"
    learning_rate: float | None = None
    max_iter: int = 100
    tol: float = 1e-4
    tol_criterion: str = "auto"
    batch_size: int | None = None
    random_state: int | None = None
    dtype: str | None = None
    x_dtype: str | None = None
    class_weight: str | dict | None = None
    warm_start: bool = False
    verbose: int = 0
    grad: str = "manual"
    solver_params: dict | None = None

    def __post_init__(self) -> None:
        """Check every field (errors name it) and store numbers as Python int / float."""
        set_ = object.__setattr__
        if not isinstance(self.C, Real) or isinstance(self.C, bool) or math.isnan(self.C) or (
            self.C <= 0
        ):
            raise ValueError(f"C must be a real number > 0 (inf for no penalty), got {v.show(self.C)}")
        set_(self, "C", float(self.C))
        for name in ("fit_intercept", "warm_start"):
            value = getattr(self, name)
            if not isinstance(value, bool) and type(value).__name__ != "bool_":
                raise ValueError(f"{name} must be True or False, got {v.show(value)}")
            set_(self, name, bool(value))
        solver = solvers.get(self.solver)
        self._check_penalty(solver)
        if self.learning_rate is not None:
            set_(self, "learning_rate", v.check_positive(self.learning_rate, "learning_rate"))
        set_(self, "max_iter", v.check_int_at_least(self.max_iter, "max_iter", 0, MAX_ITER_LIMIT))
        set_(self, "tol", v.check_positive(self.tol, "tol", allow_zero=True))
        v.check_choice(self.tol_criterion, "tol_criterion", ("auto", "grad", "loss"))
        if self.batch_size is not None:
            set_(self, "batch_size", v.check_int_at_least(self.batch_size, "batch_size", 1))
            if solver.full_batch:
                raise ValueError(
                    f"batch_size must be None with solver {self.solver!r} (it needs full-batch "
                    f"gradients), got {self.batch_size}"
                )
        if self.random_state is not None:
            set_(self, "random_state", v.check_int_at_least(
                self.random_state, "random_state", 0, 2**32 - 1))
        v.check_choice(self.dtype, "dtype", (None, "float32", "float64"))
        v.check_choice(self.x_dtype, "x_dtype", (None, "float32", "float64", "bfloat16"))
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {v.show(cw)}")
        if isinstance(cw, dict):
            bad = {k: w for k, w in cw.items() if not _finite_nonnegative(w)}
            if bad:
                raise ValueError(f"class_weight values must be finite numbers >= 0, got {bad}")
        if not isinstance(self.verbose, Integral) or isinstance(self.verbose, bool) or (
            self.verbose < 0
        ):
            raise ValueError(f"verbose must be an integer >= 0, got {v.show(self.verbose)}")
        set_(self, "verbose", int(self.verbose))
        v.check_choice(self.grad, "grad", ("manual", "autodiff"))
        _check_solver_params(solver, self.solver_params)

    @property
    def solver_record(self) -> solvers.Solver:
        """Every fact about the solver (:class:`jaxlogreg.training.solvers.Solver`)."""
        return solvers.get(self.solver)

    def _check_penalty(self, solver: solvers.Solver) -> None:
        v.check_choice(self.penalty, "penalty", ("l2", "l1", "elasticnet", None))
        if self.penalty == "elasticnet":
            if self.l1_ratio is None:
                raise ValueError("l1_ratio must be a number in [0, 1] with penalty='elasticnet', "
                                 "got None")
            ratio = self.l1_ratio
            if not isinstance(ratio, Real) or isinstance(ratio, bool) or not 0 <= ratio <= 1:
                raise ValueError(f"l1_ratio must be a number in [0, 1], got {v.show(ratio)}")
            object.__setattr__(self, "l1_ratio", float(ratio))
        elif self.l1_ratio is not None:
            raise ValueError(f"l1_ratio is only used with penalty='elasticnet'; got l1_ratio="
                             f"{v.show(self.l1_ratio)} with penalty={self.penalty!r}")
        if self.has_l1 and not solver.l1:
            l1_solvers = " or ".join(repr(s.name) for s in solvers.SOLVERS.values() if s.l1)
            raise ValueError(f"penalty={self.penalty!r} needs a proximal solver, "
                             f"solver={l1_solvers}, got solver={self.solver!r}")

    @property
    def l1_share(self) -> float:
        """r: the L1 part of the penalty (0 for "l2" and None, 1 for "l1")."""
        return {"l1": 1.0, "elasticnet": self.l1_ratio}.get(self.penalty, 0.0)

    @property
    def has_l1(self) -> bool:
        """Whether the objective has an L1 part (a proximal step is needed)."""
        return self.l1_share > 0 and not math.isinf(self.C)

    @property
    def optimizer_params(self) -> dict[str, Any]:
        """``solver_params`` as a dict (empty when None)."""
        return dict(self.solver_params or {})

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return self.solver_record.learning_rate or solvers.DEFAULT_LEARNING_RATE

    @property
    def criterion(self) -> str:
        if self.tol_criterion != "auto":
            return self.tol_criterion
        return "grad" if self.batch_size is None else "loss"

    def l2(self, weight_sum: float) -> float:
        """λ₂ of the mean-loss objective: ``(1 - r) / (C Σ s)``; 0 for ``C = inf`` or no penalty."""
        return self._strength(weight_sum, 1.0 - self.l1_share)

    def l1(self, weight_sum: float) -> float:
        """λ₁ of the mean-loss objective: ``r / (C Σ s)``; 0 without an L1 part."""
        return self._strength(weight_sum, self.l1_share)

    def _strength(self, weight_sum: float, share: float) -> float:
        if self.penalty is None or math.isinf(self.C) or share == 0:
            return 0.0
        return share / (self.C * weight_sum)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (and checked again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(
                f"unknown setting(s) {unknown}; the settings are "
                f"{[f.name for f in dataclasses.fields(self)]}"
            )
        return dataclasses.replace(self, **changes)


def resolve(config: TrainConfig | None, settings: dict[str, Any]) -> TrainConfig:
    """``config`` (the defaults when None) with keyword ``settings`` replacing its fields."""
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a jaxlogreg.TrainConfig, got {type(config).__name__}")
    return config.replace(**settings) if settings else config


def _finite_nonnegative(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and (
        value >= 0
    )


def _check_solver_params(solver: solvers.Solver, solver_params: Any) -> None:
    """Types first, then one abstract optimizer step (``jax.eval_shape``: traced, nothing
    computed), so a bad value fails here with the parameter's name instead of inside jit."""
    if solver_params is None:
        return
    if not isinstance(solver_params, dict) or not all(isinstance(k, str) for k in solver_params):
        raise ValueError(
            f"solver_params must be a dict of optax keyword arguments or None, got "
            f"{v.show(solver_params)}"
        )
    bad = {k: x for k, x in solver_params.items() if not isinstance(x, _SOLVER_PARAM_TYPES)}
    if bad:
        raise ValueError(
            f"solver_params values must be numbers, booleans or strings, got {bad} for solver "
            f"{solver.name!r}"
        )
    if not solver_params:
        return
    solvers.check_params(solver, solver_params)
    params = Params(jnp.zeros(2), jnp.zeros(()))

    def one_step():
        optimizer = solvers.make_optimizer(solver.name, 0.1, **solver_params)
        state = optimizer.init(params)
        value_fn = lambda p: jnp.sum(p.w * p.w) + p.b * p.b
        return optimizer.update(params, state, params, value=jnp.zeros(()), grad=params,
                                value_fn=value_fn)

    try:
        jax.eval_shape(one_step)
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(
            f"solver_params {solver_params} are not valid for solver {solver.name!r}: "
            f"{' '.join(str(err).split())[:300]}"
        ) from None
