"""A fit as the compiled loop sees it: the static :class:`LoopSpec`, the data and the numeric
hyper-parameters passed as arrays, and the objective, its gradient and the optimizer that the
spec selects (the gradient from :mod:`jaxlogreg.kernels`' table, the optimizer from
:mod:`jaxlogreg.training.solvers`' records).

The objective is ``J = f + λ₁ ||w||₁``, ``f = Σ s_i L_i / Σ s_i + λ₂/2 ||w||²``; with an L1
part the optimizer takes a proximal step and the gradient rule uses the minimum-norm
subgradient of J (:func:`with_l1`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlogreg import kernels
from jaxlogreg.core.gradients import with_gradient
from jaxlogreg.core.hessian import diagonal_bound_t, hvp_t
from jaxlogreg.core.loss import example_scale, l1_penalty, objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.training.proximal import min_norm_subgradient
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.solvers import make_optimizer


class LoopSpec(NamedTuple):
    """The static part of a fit: what changes the compiled program.

    ``max_iter`` itself is not static: the loss history's length is ``max_iter`` rounded up to
    a power of two, so nearby values of ``max_iter`` share one compiled loop.
    """

    solver: str
    solver_params: tuple[tuple[str, Any], ...]
    history_size: int
    batch_size: int | None
    grad: str  # "manual" (a kernel of the table) or "autodiff" (jax.grad of J)
    criterion: str
    fit_intercept: bool
    # A jaxlogreg.training.mesh.RowLayout when Xt is sharded over devices and padded with
    # zero-weight columns (n_samples real rows first, then padding); None otherwise.
    layout: Any = None
    kernel: str = "xla"  # the name of the hand-written gradient's kernel (jaxlogreg.kernels)
    l1: bool = False  # the objective has an L1 part λ₁ ||w||₁
    rows: bool = False  # the data hold X (m, n) as given, not Xt (n, m): see TrainData

    @classmethod
    def of(
        cls, config: TrainConfig, batch_size: int | None, layout: Any = None, kernel: str = "xla",
        rows: bool = False,
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
            rows,
        )


class TrainData(NamedTuple):
    """Training data in the internal layout: Xt (n, m), y (m,), sample_weight (m,) or None.

    With a kernel that reads rows (``Kernel.layout == "rows"``) the field ``Xt`` holds X (m, n)
    itself, and the loop's ``LoopSpec.rows`` says so: whatever needs features-major then reads
    ``X.T`` inside jit (:func:`features_major`).
    """

    Xt: Any
    y: Any
    sample_weight: Any


class Hyper(NamedTuple):
    """The numeric hyper-parameters, passed to jit as arrays (no recompilation when they change)."""

    learning_rate: jax.Array
    l2: jax.Array
    tol: jax.Array
    l1: jax.Array


def _frozen_intercept(params: Params) -> Params:
    """The same parameters with no gradient flowing to b (``fit_intercept=False``)."""
    return params._replace(b=jax.lax.stop_gradient(params.b))


def reads_rows(kernel: str) -> bool:
    """Whether the kernel called ``kernel`` takes X (m, n) rather than Xt (n, m)."""
    return getattr(kernels.get(kernel), "layout", "features") == "rows"


def features_major(X: Any, rows: bool) -> Any:
    """Xt (n, m) from the loop's data: ``X.T`` when they hold rows. Inside jit a rows kernel
    given ``X.T.T`` reads X itself (XLA drops the two transposes); XLA's own binary products
    on ``X.T`` copy X, so the loop on rows evaluates J with the kernel (:func:`objective_value`)
    and autodiff fits keep Xt (:func:`~jaxlogreg.training.data.device_data`)."""
    return X.T if rows else X


def n_rows(X: Any, rows: bool) -> int:
    """m, the samples of the loop's data (Xt (n, m), or X (m, n) when ``rows``)."""
    return X.shape[0] if rows else X.shape[1]


@functools.cache
def hand_objective(kernel: str) -> Any:
    """J(params, Xt, ...) whose derivative is ``kernel``'s hand-written gradient (for line
    searches); a kernel that reads rows gets ``Xt.T``."""
    value_and_grad = kernels.get(kernel).value_and_grad
    if reads_rows(kernel):
        return with_gradient(lambda p, Xt, y, s, l2: value_and_grad(p, Xt.T, y, s, l2))
    return with_gradient(value_and_grad)


def value_and_grad(spec: LoopSpec, l2: jax.Array):
    """(params, X, y, sample_weight) -> (f, ∇f), hand-written (the spec's kernel) or by
    jax.grad; ∂f/∂b is 0 without an intercept. X is the loop's data (see :class:`TrainData`)."""
    if spec.grad == "manual":
        kernel_rows = reads_rows(spec.kernel)

        def hand_written(p, X, y, sw):
            s = example_scale(sw, n_rows(X, spec.rows), p.w.dtype)
            X = X if kernel_rows == spec.rows else X.T  # the kernel's layout
            value, grads = kernels.get(spec.kernel).value_and_grad(p, X, y, s, l2)
            return value, grads if spec.fit_intercept else grads._replace(b=jnp.zeros_like(p.b))

        return hand_written
    return jax.value_and_grad(objective(spec, l2))


def objective(spec: LoopSpec, l2: jax.Array):
    """f as a function optax can differentiate; with "manual" its VJP is the hand-written one."""
    f = hand_objective(spec.kernel) if spec.grad == "manual" else objective_t
    if spec.fit_intercept:
        return lambda p, X, y, sw: f(p, features_major(X, spec.rows), y, sw, l2)
    return lambda p, X, y, sw: f(_frozen_intercept(p), features_major(X, spec.rows), y, sw, l2)


def value_fn(spec: LoopSpec, data: TrainData, l2: jax.Array):
    """f of the parameters alone on ``data``, as line searches evaluate it."""
    f = objective(spec, l2)
    return lambda p: f(p, *data)


def hvp_fn(spec: LoopSpec, data: TrainData, l2: jax.Array):
    """``(params, v) -> H v`` on ``data``, H the Hessian of f: the kernel's own product where
    its record has one (:attr:`jaxlogreg.kernels.Kernel.hvp`), else
    :func:`~jaxlogreg.core.hessian.hvp_t` on features-major X; with "autodiff", forward-over-
    reverse differentiation of f. Without an intercept, b's part of H v is 0 (b stays put)."""
    X, y, sample_weight = data
    if spec.grad == "manual":
        kernel = kernels.get(spec.kernel)
        product = kernel.hvp if kernel.hvp is not None and not reads_rows(spec.kernel) else hvp_t

        def hvp(p: Params, v: Params) -> Params:
            s = example_scale(sample_weight, n_rows(X, spec.rows), p.w.dtype)
            return product(p, features_major(X, spec.rows), y, s, l2, v)
    else:
        f = objective(spec, l2)

        def hvp(p: Params, v: Params) -> Params:
            return jax.jvp(jax.grad(lambda q: f(q, X, y, sample_weight)), (p,), (v,))[1]

    if spec.fit_intercept:
        return hvp
    return lambda p, v: hvp(p, v._replace(b=jnp.zeros_like(v.b)))._replace(
        b=jnp.zeros_like(p.b))


def hessian_diagonal_fn(spec: LoopSpec, data: TrainData, l2: jax.Array):
    """``params -> ``:func:`~jaxlogreg.core.hessian.diagonal_bound_t` on ``data``: H's diagonal
    bounded over all parameters (data alone), a preconditioner for Newton-CG."""
    X, _, sample_weight = data

    def diagonal(p: Params) -> Params:
        s = example_scale(sample_weight, n_rows(X, spec.rows), p.w.dtype)
        return diagonal_bound_t(p, features_major(X, spec.rows), s, l2)

    return diagonal


def objective_value(params: Params, X: Any, y: Any, sample_weight: Any, l2: Any, l1: Any,
                    kernel: str = "xla", rows: bool = False) -> jax.Array:
    """J = f + λ₁ ||w||₁ at ``params`` over all the data, in one pass: on rows or for a kernel
    on CSR, the kernel's own value (XLA's objective on ``X.T`` copies X for the binary model;
    on a :class:`~jaxlogreg.core.sample_csr.SampleCsr` it makes (nnz,) sample ids and products);
    else :func:`~jaxlogreg.core.loss.objective_t`."""
    if not (rows or kernels.get(kernel).layout == "csr"):
        return objective_t(params, X, y, sample_weight, l2, l1)
    s = example_scale(sample_weight, n_rows(X, rows), params.w.dtype)
    X = X if reads_rows(kernel) == rows else X.T
    return kernels.get(kernel).value_and_grad(params, X, y, s, l2)[0] + l1_penalty(params.w, l1)


def optimizer(spec: LoopSpec, hyper: Hyper) -> optax.GradientTransformationExtraArgs:
    l1 = hyper.l1 if spec.l1 else None
    return make_optimizer(spec.solver, hyper.learning_rate, l1, **dict(spec.solver_params))


def with_l1(value: jax.Array, grads: Params, params: Params, hyper: Hyper, spec: LoopSpec):
    """J = f + λ₁ ||w||₁ and the minimum-norm subgradient from f and ∇f (unchanged without L1)."""
    if not spec.l1:
        return value, grads
    return value + l1_penalty(params.w, hyper.l1), min_norm_subgradient(params, grads, hyper.l1)


def select(flag: jax.Array, if_true: Any, if_false: Any) -> Any:
    """``if_true`` when the scalar ``flag`` holds, else ``if_false`` (pytrees of one structure).

    A ``lax.cond``, not a ``jnp.where`` per leaf: XLA copies the chosen operands instead of
    compiling a select kernel per leaf shape (L-BFGS's state has about 15 leaves), which
    compiles faster (docs/decisions.md)."""
    return jax.lax.cond(flag, lambda: if_true, lambda: if_false)
