"""The solver table's contract: every record of ``solvers.SOLVERS`` (and one optax optimizer by
name) reaches the optimum in every mode its record allows, and the record's facts hold.

The solvers come from the table, so a new one is tested without editing this file: it runs with
its :data:`TEST_SETTINGS` entry, or :data:`FALLBACK` (small per-coordinate steps). Modes: full
batch; minibatches unless ``full_batch``; L1 and elastic net when ``l1``; binary and softmax
(K = 3); without intercept; float32. The tolerances are derived in tests/training/_optimum.py
(:func:`check_full_batch`, :func:`check_minibatch`). Default tier: binary, full batch, float64.
Solvers with ``host_loop`` (binary L1 only) have their own tests: test_working_set*.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import re
from numbers import Real
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _optimum import BATCH, C, check_full_batch, check_minibatch, problem
from jax.flatten_util import ravel_pytree

import jaxlogreg as jl
from jaxlogreg.training import solvers
from jaxlogreg.training.settings import TrainConfig

# The table's solvers of the on-device loop, and optax by name; a host_loop solver
# ("working_set": binary L1 / elastic net only) has its own tests (test_working_set*.py).
CASES = [*(s for s in solvers.SOLVERS.values() if not s.host_loop), solvers.get("rmsprop")]
FLOAT32_TOL = 1e-4  # a float32 fit's max|G| target: far above its gradient's rounding
MAX_ITER = 8000  # m <= 256 rows x at most 2^13 iterations: a quick compile (training.loop)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the test runs a solver. Full batch: ``learning_rate`` (None: the record's) until
    max|G| <= ``tol`` (float64) within MAX_ITER iterations. Minibatches of BATCH rows:
    ``batch_learning_rate`` for ``epochs``; ``adaptive``: per-coordinate steps (Adam's)."""

    learning_rate: float | None = None
    tol: float = 1e-8
    batch_learning_rate: float | None = None
    epochs: int = 1000
    adaptive: bool = False


# Full batch: GD's α = 3 < 2/L (L, the largest eigenvalue of ∇²f, is below 0.5 here); AdamW's
# decoupled decay (1e-4 w) holds max|∇J| above 1e-8 for 10^4 iterations: it stops at 1e-6.
# FALLBACK: per-coordinate steps of about α circle the optimum at about Lα, hence tol 3e-4.
TEST_SETTINGS = {
    "gd": Settings(3.0, batch_learning_rate=0.1),
    "sgd": Settings(0.3, batch_learning_rate=0.003),
    "adam": Settings(0.05, batch_learning_rate=3e-3, adaptive=True),
    "adamw": Settings(0.05, tol=1e-6, batch_learning_rate=3e-3, adaptive=True),
}
FALLBACK = Settings(1e-3, tol=3e-4, batch_learning_rate=1e-3, epochs=2000, adaptive=True)


def settings_of(record: solvers.Solver) -> Settings:
    """Its entry; the defaults for solvers that choose their own steps; else FALLBACK."""
    if record.name in TEST_SETTINGS:
        return TEST_SETTINGS[record.name]
    return Settings() if record.learning_rate is None else FALLBACK


def _name(record: solvers.Solver) -> str:
    return record.name


def _slow_unless(default: bool) -> list[pytest.MarkDecorator]:
    return [] if default else [pytest.mark.slow]


# --- reaching the optimum ------------------------------------------------------------------------


def _fit_cases():
    for record in CASES:
        penalties = ("l2", "l1", "elasticnet") if record.l1 else ("l2",)
        batches = (None,) if record.full_batch else (None, BATCH)
        for penalty, batch, k in itertools.product(penalties, batches, (2, 3)):
            mode = f"{record.name}-{penalty}-{'full' if batch is None else 'minibatch'}-K{k}"
            yield pytest.param(record, penalty, batch, k, id=mode,
                               marks=_slow_unless(k == 2 and batch is None))


@pytest.mark.parametrize(("record", "penalty", "batch_size", "k"), list(_fit_cases()))
def test_every_solver_reaches_the_optimum_in_every_mode_it_allows(record, penalty, batch_size,
                                                                  k):
    p, s = problem(k, penalty), settings_of(record)
    if batch_size is None:
        result = jl.fit(p.X, p.y, solver=record.name, learning_rate=s.learning_rate, tol=s.tol,
                        max_iter=MAX_ITER, **p.fit_settings())
        check_full_batch(p, result, s.tol, np.float64)
        return
    rate = s.batch_learning_rate or record.learning_rate
    result = jl.fit(p.X, p.y, solver=record.name, learning_rate=rate, batch_size=batch_size,
                    tol=0.0, max_iter=s.epochs, random_state=0, **p.fit_settings())
    check_minibatch(p, result, rate, record.defaults.get("momentum") or 0.0, s.adaptive)


@pytest.mark.slow
@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize("record", CASES, ids=_name)
def test_without_intercept_b_stays_zero_and_w_is_optimal(record, grad):
    p, s = problem(2, fit_intercept=False), settings_of(record)
    result = jl.fit(p.X, p.y, solver=record.name, learning_rate=s.learning_rate, tol=s.tol,
                    max_iter=MAX_ITER, grad=grad, **p.fit_settings())
    assert float(result.params.b) == 0.0
    check_full_batch(p, result, s.tol, np.float64)


@pytest.mark.slow
@pytest.mark.parametrize("record", CASES, ids=_name)
def test_float32_fits_reach_the_optimum(record):
    p, s = problem(2), settings_of(record)
    tol = max(s.tol, FLOAT32_TOL)
    result = jl.fit(p.X.astype(np.float32), p.y, solver=record.name,
                    learning_rate=s.learning_rate, tol=tol, max_iter=MAX_ITER, **p.fit_settings())
    assert result.params.w.dtype == np.float32
    check_full_batch(p, result, tol, np.float32)


def _short_fit(record: solvers.Solver, **settings: Any) -> jl.TrainConfig:
    """30 iterations without intercept (b must stay 0), the solver's default α: one compiled
    program per solver for the two tests below."""
    return TrainConfig(solver=record.name, C=C, max_iter=30, tol=0.0,
                       **{"fit_intercept": False, **settings})


@pytest.mark.parametrize("fit_intercept", [pytest.param(False, id="no-intercept"),
                                           pytest.param(True, id="intercept",
                                                        marks=pytest.mark.slow)])
@pytest.mark.parametrize("record", CASES, ids=_name)
def test_manual_and_autodiff_gradients_train_identically(record, fit_intercept):
    p = problem(2)
    config = _short_fit(record, fit_intercept=fit_intercept)
    manual = jl.fit(p.X, p.y, config, grad="manual")
    auto = jl.fit(p.X, p.y, config, grad="autodiff")
    assert manual.n_iter == auto.n_iter == 30
    np.testing.assert_allclose(manual.loss_history, auto.loss_history, rtol=1e-10)
    np.testing.assert_allclose(manual.params.w, auto.params.w, rtol=1e-8, atol=1e-10)
    if not fit_intercept:
        assert float(manual.params.b) == float(auto.params.b) == 0.0


# --- the records' facts --------------------------------------------------------------------------


@pytest.mark.parametrize("record", CASES, ids=_name)
def test_full_batch_solvers_refuse_minibatches(record):
    if not record.full_batch:
        assert TrainConfig(solver=record.name, batch_size=8).batch_size == 8
        return
    with pytest.raises(ValueError, match=rf"batch_size must be None with solver '{record.name}' "
                                         r"\(it needs full-batch gradients\), got 8"):
        TrainConfig(solver=record.name, batch_size=8)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
@pytest.mark.parametrize("record", CASES, ids=_name)
def test_only_solvers_with_a_proximal_step_take_an_l1_penalty(record, penalty):
    settings = {"solver": record.name, "penalty": penalty,
                "l1_ratio": 0.5 if penalty == "elasticnet" else None}
    if record.l1:
        assert TrainConfig(**settings).has_l1
        solvers.make_optimizer(record.name, 0.1, 0.01)
        return
    with pytest.raises(ValueError, match=rf"penalty='{penalty}' needs a proximal solver") as error:
        TrainConfig(**settings)
    assert f"got solver='{record.name}'" in str(error.value)
    assert all(f"'{s.name}'" in str(error.value) for s in solvers.SOLVERS.values() if s.l1)
    with pytest.raises(ValueError, match=rf"an L1 penalty needs solver .*got solver '{record.name}'"):
        solvers.make_optimizer(record.name, 0.1, 0.01)


@pytest.mark.parametrize("record", CASES, ids=_name)
def test_the_default_learning_rate_is_the_records(record):
    """Same fits with α left out and α = the record's; solvers choosing their steps ignore α."""
    p = problem(2)
    config = _short_fit(record)
    default = jl.fit(p.X, p.y, config)
    if record.learning_rate is None:
        for rate in (1e-3, 10.0):
            again = jl.fit(p.X, p.y, config.replace(learning_rate=rate))
            np.testing.assert_array_equal(again.loss_history, default.loss_history)
        return
    same = jl.fit(p.X, p.y, config.replace(learning_rate=record.learning_rate))
    np.testing.assert_array_equal(same.loss_history, default.loss_history)
    np.testing.assert_array_equal(same.params.w, default.params.w)
    half = jl.fit(p.X, p.y, config.replace(learning_rate=record.learning_rate / 2))
    assert not np.allclose(half.loss_history, default.loss_history, rtol=1e-6)


def _wraps_optax(record: solvers.Solver) -> bool:
    """Whether the record's signature is an optax optimizer function (not a stub of its own)."""
    return record.signature is not None and record.signature.__module__.startswith("optax")


def _factory(record: solvers.Solver):
    """``factory(α, **params)``: optax's function when the record wraps one, else its build."""
    if _wraps_optax(record):
        return lambda rate, **params: optax.with_extra_args_support(
            record.signature(rate, **params))
    return lambda rate, **params: optax.with_extra_args_support(record.build(rate, None, **params))


def _trajectory(optimizer, steps: int = 3) -> np.ndarray:
    """The parameters after each of ``steps`` updates on f = (w₁² + 3 w₂² + b²)/2, float64."""
    def f(p):
        return 0.5 * (p.w[0] ** 2 + 3 * p.w[1] ** 2 + p.b**2)

    with jax.enable_x64(True):
        params = jl.Params(jnp.array([1.0, -2.0]), jnp.asarray(0.5))
        state, path = optimizer.init(params), []
        for _ in range(steps):
            value, grad = jax.value_and_grad(f)(params)
            updates, state = optimizer.update(grad, state, params, value=value, grad=grad,
                                              value_fn=f)
            params = optax.apply_updates(params, updates)
            path.append(np.asarray(ravel_pytree(params)[0]))
    return np.array(path)


def _keywords(record: solvers.Solver) -> dict[str, Any]:
    """The keywords ``solver_params`` may set, with their defaults (the record's first)."""
    if record.signature is None:
        return {}
    parameters = inspect.signature(record.signature).parameters.items()
    found = {k: p.default for k, p in parameters if k != "learning_rate"
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {**found, **record.defaults}


def _signature_default(record: solvers.Solver, key: str) -> Any:
    parameter = inspect.signature(record.signature).parameters.get(key)
    return None if parameter is None else parameter.default


def _other(value: Any) -> Any:
    """A different value of the same type."""
    if isinstance(value, bool):
        return not value
    assert isinstance(value, Real), f"add a case for a default {value!r}"
    return value / 2 if value else 0.5


def _override_cases():
    """Each record default; for records wrapping an optax function without defaults, its first
    numeric keyword (solver_params reach an optax optimizer named by the user too)."""
    for record in CASES:
        keys = list(record.defaults)
        if not keys and _wraps_optax(record):
            keys = [k for k, v in _keywords(record).items()
                    if isinstance(v, Real) and not isinstance(v, bool)][:1]
        for key in keys:
            yield pytest.param(record, key, id=f"{record.name}-{key}")


@pytest.mark.parametrize(("record", "key"), list(_override_cases()))
def test_defaults_are_used_and_solver_params_override_them(record, key):
    factory, default = _factory(record), _keywords(record)[key]
    built = _trajectory(solvers.make_optimizer(record.name, 0.1))
    np.testing.assert_allclose(built, _trajectory(factory(0.1, **record.defaults)), rtol=1e-12)
    if key in record.defaults:  # the default is of a type solver_params accept
        accepted = TrainConfig(solver=record.name, solver_params={key: default})
        assert accepted.optimizer_params == {key: default}
        factory_default = _signature_default(record, key)
        if factory_default != default:  # and it is used
            assert not np.allclose(built, _trajectory(factory(0.1)), rtol=1e-9)
    other = _other(default)
    config = TrainConfig(solver=record.name, solver_params={key: other})
    changed = _trajectory(solvers.make_optimizer(record.name, 0.1, **config.optimizer_params))
    expected = _trajectory(factory(0.1, **{**record.defaults, key: other}))
    np.testing.assert_allclose(changed, expected, rtol=1e-12)
    assert np.max(np.abs(changed - built)) > 1e-9


_WRONG = {bool: ("false", "True or False"), str: (1, "a string"), Real: (True, "a number")}


def _kind(value: Any) -> type | None:
    return next((t for t in (bool, str, Real) if isinstance(value, t)), None)


def _typed_cases():
    """(record, keyword) for each keyword whose default (the record's, else the signature's)
    is a bool, number or string."""
    for record in CASES:
        for key, default in _keywords(record).items():
            if _kind(default) is None:
                continue  # untyped (None): checked by one abstract step
            yield pytest.param(record, key, id=f"{record.name}-{key}")


@pytest.mark.parametrize(("record", "key"), list(_typed_cases()))
def test_solver_params_of_the_wrong_type_are_refused_naming_the_key(record, key):
    """A keyword whose default is a bool, number or string takes only that type: the string
    "false" is not False (it turned Nesterov on), True is not a number."""
    value, expected = _WRONG[_kind(_keywords(record)[key])]
    message = f"solver_params[{key!r}] must be {expected} for solver {record.name!r}, got {value!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(solver=record.name, solver_params={key: value})


@pytest.mark.parametrize("record", CASES, ids=_name)
def test_solver_params_that_are_not_the_solvers_are_refused(record):
    name, keywords = record.name, _keywords(record)
    with pytest.raises(ValueError, match=re.escape(
            f"solver_params values must be numbers, booleans or strings, got {{'x': [0.5]}} "
            f"for solver {name!r}")):
        TrainConfig(solver=name, solver_params={"x": [0.5]})
    open_ended = record.signature is not None and any(
        p.kind == p.VAR_KEYWORD for p in inspect.signature(record.signature).parameters.values())
    if not open_ended:
        with pytest.raises(ValueError, match=re.escape(
                f"solver_params ['no_such_option'] are not parameters of solver {name!r}; "
                f"it takes {sorted(keywords) or 'none'}")):
            TrainConfig(solver=name, solver_params={"no_such_option": 1})
