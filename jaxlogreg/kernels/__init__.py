"""Gradient kernels: implementations of one contract, chosen from one table.

Every kernel computes ``J = Σ s_i L_i + λ/2 ||w||²`` and its gradient,
``(params, X, y, s, l2) -> (J, Params(dw, db))`` (:func:`jaxlogreg.core.gradients.value_and_grad_t`
is the reference), with X features-major (n, m) or in rows (m, n) as its record's ``layout``
says: XLA's two products, the single-read C kernel for CPUs (:mod:`~.native`), the
single-read Pallas kernel for GPUs (:mod:`~.fused`); some also give H v (``Kernel.hvp``,
:func:`jaxlogreg.core.hessian.hvp_t`'s contract). :func:`choose`
picks the first entry of :data:`KERNELS` that applies to a fit's :class:`Shape`; the training
loop, the pipeline and the benchmarks all ask this table. Adding a kernel: its module and one
:class:`Kernel` line.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from jaxlogreg.core.gradients import value_and_grad_t
from jaxlogreg.core.hessian import hvp_t
from jaxlogreg.kernels import fused, native, native_csr


class Shape(NamedTuple):
    """What decides the kernel of a fit: sizes, dtypes (of stored X and of the parameters),
    the backend of the data's device, and whether X is sparse or sharded over devices."""

    n_features: int
    n_samples: int
    n_classes: int
    x_dtype: Any
    dtype: Any
    backend: str
    sparse: bool = False
    sharded: bool = False
    models: int | None = None  # M models side by side (a regularization path), even M = 1

    @property
    def dense_on_one_device(self) -> bool:
        return not (self.sparse or self.sharded) and self.models is None


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One implementation of the gradient contract.

    Attributes:
      name: its name in the loop's static spec.
      value_and_grad: ``(params, Xt, y, s, l2) -> (J, ∇J)``, or ``(params, X, y, s, l2)``
        for layout "rows".
      applies: whether a fit of this :class:`Shape` uses it (cheap tests first; the C kernel's
        last test builds it).
      platform: the backend it is compiled for ("cpu", "gpu"), None for any.
      models: it also computes several models side by side (``value_and_grad(...,
        models=True)``: parameters, s and λ with a leading axis of models).
      layout: the X it takes: "features" (Xt (n, m), features-major, as training stores X)
        or "rows" (X (m, n), row-major, as the user gives it: no transposed copy), or "csr"
        (sparse Xt with X's CSR row pointers, :class:`~jaxlogreg.core.sample_csr.SampleCsr`).
      hvp: H v at the parameters, ``(params, X, y, s, l2, v) -> Params`` with X in the same
        layout (:func:`jaxlogreg.core.hessian.hvp_t` is the reference), for Newton solvers;
        None where the kernel has none (those solvers then use ``hvp_t`` on features-major X).
    """

    name: str
    value_and_grad: Callable[..., Any]
    applies: Callable[[Shape], bool]
    platform: str | None = None
    models: bool = False
    layout: str = "features"
    hvp: Callable[..., Any] | None = None


def _fused_applies(shape: Shape) -> bool:
    return shape.dense_on_one_device and fused.supports(
        shape.n_features, shape.n_classes, shape.x_dtype, shape.backend)


def _native_csr_applies(shape: Shape) -> bool:
    return (shape.sparse and not shape.sharded and shape.models is None
            and shape.backend == "cpu" and np.dtype(shape.x_dtype) == np.dtype(shape.dtype)
            and native_csr.supports(shape.n_classes, shape.n_samples, shape.x_dtype))


def _native_applies(shape: Shape) -> bool:
    return (shape.dense_on_one_device and shape.backend == "cpu"
            and np.dtype(shape.x_dtype) == np.dtype(shape.dtype)
            and native.supports(shape.n_features, shape.n_samples, shape.n_classes,
                                shape.x_dtype))


KERNELS: tuple[Kernel, ...] = (
    Kernel("fused", fused.fused_value_and_grad_t, _fused_applies, "gpu"),
    Kernel("native_rows", native.native_rows_value_and_grad, _native_applies, "cpu",
           layout="rows"),
    Kernel("native_csr", native_csr.csr_value_and_grad_t, _native_csr_applies, "cpu",
           layout="csr", hvp=native_csr.csr_hvp_t),
    Kernel("xla", value_and_grad_t, lambda shape: True, models=True, hvp=hvp_t),
    # the Pallas kernel through Pallas' interpreter: for tests on CPUs, never chosen
    Kernel("fused_interpret", functools.partial(fused.fused_value_and_grad_t, interpret=True),
           lambda shape: False),
)
_BY_NAME = {kernel.name: kernel for kernel in KERNELS}


def get(name: str) -> Kernel:
    """The kernel called ``name``."""
    if name not in _BY_NAME:
        raise ValueError(f"kernel must be one of {list(_BY_NAME)}, got {name!r}")
    return _BY_NAME[name]


def choose(shape: Shape) -> Kernel:
    """The first kernel of :data:`KERNELS` that applies to ``shape`` (XLA's always does)."""
    return next(kernel for kernel in KERNELS
                if kernel.applies(shape) and (shape.models is None or kernel.models))
