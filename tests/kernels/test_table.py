"""The kernel table (jaxlogreg.kernels): which kernel a fit of a given shape uses, on a CPU and
as on a GPU (the choice is a function of the Shape, whose backend the test sets), exactly at
the bounds of each kernel."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlogreg import kernels
from jaxlogreg.kernels import fused, fused_tiling, native

F32, F64, BF16 = np.dtype("float32"), np.dtype("float64"), "bfloat16"


def _shape(n, m=1 << 16, k=2, x_dtype=F32, dtype=F32, backend="cpu", **kw):
    return kernels.Shape(n, m, k, x_dtype, dtype, backend, **kw)


def test_every_kernel_is_in_the_table_once_and_xla_always_applies():
    names = [k.name for k in kernels.KERNELS]
    assert len(set(names)) == len(names)
    assert {"xla", "native_rows", "fused"} <= set(names)
    assert kernels.get("xla").applies(_shape(10**6, backend="tpu", sparse=True))
    with pytest.raises(ValueError, match="kernel must be one of .* got 'nope'"):
        kernels.get("nope")


@pytest.mark.parametrize("backend", ["gpu", "cuda"])
def test_as_on_a_gpu_the_pallas_kernel_up_to_its_bounds_else_xla(backend, monkeypatch):
    monkeypatch.setattr(fused_tiling, "_triton_available", lambda: True)

    def chosen(**kw):
        return kernels.choose(_shape(backend=backend, **kw)).name

    limit = fused.MAX_FEATURES
    assert chosen(n=100) == "fused"
    assert chosen(n=limit) == "fused"  # inclusive at its bound
    assert chosen(n=limit + 1) == "xla"
    assert chosen(n=100, k=10) == "fused"
    assert chosen(n=100, x_dtype=BF16) == "fused"
    assert chosen(n=100, x_dtype=F64, dtype=F64) == "xla"  # Triton's float64 is slow
    assert chosen(n=100, sparse=True) == "xla"
    assert chosen(n=100, sharded=True) == "xla"
    monkeypatch.setattr(fused_tiling, "_triton_available", lambda: False)  # a JAX without it
    assert chosen(n=100) == "xla"


def test_the_pallas_kernel_is_never_chosen_on_a_cpu(monkeypatch):
    monkeypatch.setattr(fused_tiling, "_triton_available", lambda: True)
    monkeypatch.setattr(native, "supports", lambda *args: False)
    assert kernels.choose(_shape(100)).name == "xla"


def test_on_a_cpu_the_c_kernel_exactly_within_its_bounds(monkeypatch):
    calls = []

    def supports(n, m, k, dtype):  # the kernel's own rule, without building it
        calls.append((n, m, k))
        return (k <= native.MAX_CLASSES and n * m >= native.MIN_ELEMENTS
                and n <= native.MAX_FEATURES)

    monkeypatch.setattr(native, "supports", supports)

    def chosen(n, m, **kw):
        return kernels.choose(_shape(n, m, **kw)).name

    n = native.MAX_FEATURES
    m = -(-native.MIN_ELEMENTS // n)
    assert chosen(n, m) == "native_rows"  # inclusive at both bounds
    assert kernels.get("native_rows").layout == "rows"  # the pipeline hands it X (m, n)
    assert chosen(n + 1, m) == "xla"
    assert chosen(1, native.MIN_ELEMENTS) == "native_rows"
    assert chosen(1, native.MIN_ELEMENTS - 1) == "xla"
    assert chosen(n, m, x_dtype=F64, dtype=F64) == "native_rows"
    assert chosen(n, m, k=native.MAX_CLASSES) == "native_rows"  # softmax too
    assert chosen(n, m, k=native.MAX_CLASSES + 1) == "xla"
    assert chosen(n, m, x_dtype=BF16) == "xla"  # X stored narrower than the parameters
    assert chosen(n, m, sparse=True) == "xla" and chosen(n, m, sharded=True) == "xla"
    assert chosen(n, m, backend="gpu") != "native_rows"
    assert len(calls) == 7  # bf16, sparse, sharded and GPU shapes never ask it (nor build it)
    assert [k.name for k in kernels.KERNELS if k.layout == "rows"] == ["native_rows"]


def test_the_c_kernel_rule_itself_at_its_bounds(monkeypatch):
    monkeypatch.setattr(native, "available", lambda: True)  # the rule, not the build
    n = native.MAX_FEATURES
    m = native.MIN_ELEMENTS // n
    assert n * m == native.MIN_ELEMENTS  # both bounds met exactly
    assert native.supports(n, m, 2, F32) and native.supports(n, m, 2, F64)
    assert not native.supports(n + 1, m, 2, F32)
    assert not native.supports(n, m - 1, 2, F32)
    assert native.supports(n, m, 3, F32)  # softmax too, up to its bound
    assert not native.supports(n, m, native.MAX_CLASSES + 1, F32)
    assert not native.supports(n, m, 2, BF16)


def test_models_side_by_side_take_a_kernel_that_computes_them(monkeypatch):
    """A path's M models: only kernels whose record says ``models`` (XLA's) qualify, whatever
    the others' own rules say."""
    monkeypatch.setattr(native, "supports", lambda *args: True)
    monkeypatch.setattr(fused_tiling, "_triton_available", lambda: True)
    for backend in ("cpu", "gpu"):
        for models in (12, 1):  # a path of one model still has the leading axis
            shape = _shape(64, backend=backend, models=models)
            assert kernels.choose(shape).name == "xla" and kernels.choose(shape).models
    assert [k.name for k in kernels.KERNELS if k.models] == ["xla"]


def test_a_path_of_one_model_where_the_c_kernel_would_apply_runs(monkeypatch):
    import jaxlogreg as jl

    monkeypatch.setattr(native, "supports", lambda *args: True)  # as for a large X
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    result = jl.fit_path(X, y, [1.0])
    assert result.converged.all() and result.params.w.shape == (1, 1, 4)
