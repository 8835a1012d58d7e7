"""Every program a GPU fit runs, lowered for CUDA on a machine without a GPU.

``jax.export.export(jax.jit(f), platforms=["cuda"])`` traces a program and lowers it to
StableHLO for CUDA; a Pallas kernel lowers to Triton IR inside a ``__gpu$xla.gpu.triton``
custom call (export's check of custom call targets is lifted for that one). Nothing runs: the
arguments are ``jax.ShapeDtypeStruct``s. Caught here: a primitive without a CUDA lowering, a
Pallas block shape or op Triton refuses, a wrong grid, a host callback (it does not even lower
for CUDA on a CPU host), a float64 op in a float32 program, a sharding that no longer reaches
X. Not caught: Triton's and XLA's compilation for the GPU and the numerics, which need one
(``benchmarks/gpu_check.sh``). The kernel is the one the table chooses for a GPU.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export
from jax.sharding import AbstractMesh, AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlogreg import kernels
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.core.sparse import CooMatrix
from jaxlogreg.kernels import fused_tiling
from jaxlogreg.scale import batch_reader, streaming
from jaxlogreg.training import data as training_data
from jaxlogreg.training import loop, path, pipeline
from jaxlogreg.training.mesh import DATA_AXIS, RowLayout
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.spec import LoopSpec, TrainData

pytestmark = pytest.mark.filterwarnings(
    "ignore:The Pallas Triton backend is deprecated:DeprecationWarning")

TRITON = "__gpu$xla.gpu.triton"
# The dense loop as run_segment runs it (its compile options act when compiling, not lowering).
DENSE_LOOP = jax.jit(loop._run, static_argnames="spec")
TWO_DEVICES = AbstractMesh((2,), (DATA_AXIS,), axis_types=(AxisType.Auto,))
N, M, BATCH, K = 100, 4096, 256, 10


def sds(shape: tuple[int, ...], dtype: Any, sharding: Any = None) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, jnp.dtype(dtype), sharding=sharding)


def abstract(tree: Any) -> Any:
    return jax.tree.map(lambda a: sds(np.shape(a), np.asarray(a).dtype), tree)


def lower_for_cuda(program: Any, *args: Any, **static: Any) -> tuple[str, export.Exported]:
    """The program lowered for CUDA and its StableHLO text, after the checks every GPU
    program passes: no host callback, and no float64 unless an argument is float64."""
    exported = export.export(program, platforms=["cuda"],
                             disabled_checks=[export.DisabledSafetyCheck.custom_call(TRITON)])
    exported = exported(*args, **static)
    text = exported.mlir_module()
    assert not re.findall(r"custom_call @[\w$.]*callback", text), "a host callback"
    if not any(a.dtype == jnp.float64 for a in jax.tree.leaves(args)):
        assert not re.findall(r"\bf64\b|xf64\b", text), "float64 in a float32 program"
    return text, exported


def gpu_kernel(n: int, m: int, k: int, x_dtype: Any, dtype: Any, **kind: Any) -> str:
    """The kernel the table chooses for this fit on a GPU."""
    shape = kernels.Shape(n, m, k, jnp.dtype(x_dtype), jnp.dtype(dtype), "gpu", **kind)
    return kernels.choose(shape).name


def params_of(n: int, k: int, dtype: Any, sharding: Any = None) -> Params:
    w, b = ((n,), ()) if k == 2 else ((n, k), (k,))
    return Params(sds(w, dtype, sharding), sds(b, dtype, sharding))


def loop_args(config: TrainConfig, Xt: Any, k: int, dtype: Any, kernel: str,
              layout: Any = None, row_sharding: Any = None, replicated: Any = None):
    """(state, data, hyper, stop_at) and the spec of a fit's loop, as the pipeline makes them."""
    n, m = Xt.shape
    spec = LoopSpec.of(config, config.batch_size, layout, kernel)
    hyper = abstract(pipeline.hyper_of(config, 1e-3, dtype, 1e-3 if config.has_l1 else 0.0))
    params = params_of(n, k, dtype, replicated)
    state = loop._init_state.eval_shape(params, sds((), np.uint32), hyper, spec=spec)
    if replicated is not None:
        state = jax.tree.map(lambda a: sds(a.shape, a.dtype, replicated), state)
    y = sds((m,), dtype if k == 2 else np.int32, row_sharding)
    weights = sds((m,), accumulation_dtype(Xt.dtype), row_sharding)
    return (state, TrainData(Xt, y, weights), hyper, sds((), np.int32)), spec


class Fit(NamedTuple):
    config: TrainConfig
    n: int = N
    k: int = 2
    dtype: str = "float32"
    x_dtype: str | None = None
    kernel: str = "fused"  # what the table must choose on a GPU
    grid: int | None = None  # programs of the Pallas kernel: rows / T


# T = 16384 / n_p = 128 for binary (n_p = 128), 64 for softmax K = 10 (8192 / n_p): the grid
# is ceil(rows / T), all rows (M) or a minibatch (BATCH).
FITS = {
    "lbfgs-binary": Fit(TrainConfig(), grid=M // 128),
    "lbfgs-softmax": Fit(TrainConfig(), k=K, grid=M // 64),
    "lbfgs-autodiff": Fit(TrainConfig(grad="autodiff")),  # jax.grad: no kernel call
    "proximal-l1": Fit(TrainConfig(solver="proximal", penalty="l1"), grid=M // 128),
    "gd-minibatch": Fit(TrainConfig(solver="gd", batch_size=BATCH), grid=BATCH // 128),
    "sgd-minibatch-softmax": Fit(TrainConfig(solver="sgd", batch_size=BATCH), k=K,
                                 grid=BATCH // 64),
    "adam-minibatch-bf16-X": Fit(TrainConfig(solver="adam", batch_size=BATCH),
                                 x_dtype="bfloat16", grid=BATCH // 128),
    "lbfgs-float64": Fit(TrainConfig(), dtype="float64", kernel="xla"),
    "lbfgs-too-wide": Fit(TrainConfig(), n=1025, kernel="xla"),
    "lbfgs-softmax-too-wide": Fit(TrainConfig(), n=257, k=K, kernel="xla"),
}


@pytest.mark.parametrize("fit", FITS.values(), ids=FITS.keys())
def test_the_dense_loop_lowers_with_the_gpu_kernel(fit: Fit):
    if fit.kernel == "fused" and not fused_tiling._triton_available():
        pytest.skip("this JAX has no Pallas Triton backend: GPUs use XLA's gradient")
    x_dtype = fit.x_dtype or fit.dtype
    kernel = gpu_kernel(fit.n, M, fit.k, x_dtype, fit.dtype)
    assert kernel == fit.kernel
    with jax.enable_x64(fit.dtype == "float64"):
        args, spec = loop_args(fit.config, sds((fit.n, M), x_dtype), fit.k, fit.dtype, kernel)
        text, _ = lower_for_cuda(DENSE_LOOP, *args, spec=spec)
    if fit.grid is None:
        assert TRITON not in text
    else:
        assert TRITON in text
        assert set(re.findall(r"grid_x = (\d+) : i32", text)) == {str(fit.grid)}


def coo(n: int, m: int, nnz: int) -> CooMatrix:
    """Xt (n, m) as the training layout holds sparse X: entries sorted by sample."""
    return CooMatrix(sds((nnz,), "float32"), sds((nnz,), np.int32), sds((nnz,), np.int32),
                     (n, m), 1)


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "newton-cg"])
def test_the_sparse_loop_lowers(solver):
    n = 10_000  # wide, as sparse data are
    assert gpu_kernel(n, M, 2, "float32", "float32", sparse=True) == "xla"
    args, spec = loop_args(TrainConfig(solver=solver), coo(n, M, 4 * M), 2, "float32", "xla")
    text, _ = lower_for_cuda(loop.run_segment_sparse, *args, spec=spec)
    assert TRITON not in text


@pytest.mark.parametrize("batch_size", [None, BATCH], ids=["lbfgs", "sgd-minibatch"])
def test_the_loop_sharded_over_two_devices_lowers(batch_size):
    """Rows of X over a two-device mesh (an abstract one: no devices needed)."""
    config = TrainConfig(solver="lbfgs" if batch_size is None else "sgd", batch_size=batch_size)
    assert gpu_kernel(N, M, 2, "float32", "float32", sharded=True) == "xla"
    columns = NamedSharding(TWO_DEVICES, P(None, DATA_AXIS))
    args, spec = loop_args(config, sds((N, M), "float32", columns), 2, "float32", "xla",
                           layout=RowLayout(TWO_DEVICES, M - 3),
                           row_sharding=NamedSharding(TWO_DEVICES, P(DATA_AXIS)),
                           replicated=NamedSharding(TWO_DEVICES, P()))
    text, exported = lower_for_cuda(DENSE_LOOP, *args, spec=spec)
    assert exported.nr_devices == 2
    split = r'\{sdy.sharding = #sdy.sharding<@mesh, \[\{\}, \{"data"\}\]>\}'
    assert re.search(rf"tensor<{N}x{M}xf32> {split}", text)  # Xt's columns over the devices
    if batch_size is not None:  # each gathered minibatch is split again
        assert re.search(rf'sdy.sharding_constraint %\w+ <@mesh, \[\{{\}}, \{{"data"\}}\]> : '
                         rf"tensor<{N}x{BATCH}xf32>", text)


PATHS = {
    "dense-binary": (sds((N, M), "float32"), None),
    "dense-softmax": (sds((N, M), "float32"), K),
    "sparse-binary": (coo(1000, M, 4 * M), None),
}


@pytest.mark.parametrize(("Xt", "k"), PATHS.values(), ids=PATHS.keys())
def test_the_path_program_lowers(Xt, k):
    """The CV/path program: 6 models side by side (XLA's gradient: the kernel table's choice
    for models on every backend)."""
    n, m = Xt.shape
    assert gpu_kernel(n, m, k or 2, "float32", "float32", models=6,
                      sparse=isinstance(Xt, CooMatrix)) == "xla"
    p = n * (k or 1) + (k or 1)
    f32 = "float32"
    text, _ = lower_for_cuda(
        path._run_path_program, sds((6, p), f32), Xt, sds((m,), f32 if k is None else np.int32),
        sds((6, m), f32), sds((6,), f32), sds((), f32), sds((), np.int32),
        n=n, k=k, fit_intercept=True, grad="manual", memory=path.LBFGS_MEMORY)
    assert TRITON not in text


def test_the_path_program_sharded_over_two_devices_lowers():
    columns = NamedSharding(TWO_DEVICES, P(None, DATA_AXIS))
    f32 = "float32"
    text, exported = lower_for_cuda(
        path._run_path_program, sds((6, N + 1), f32), sds((N, M), f32, columns),
        sds((M,), f32, NamedSharding(TWO_DEVICES, P(DATA_AXIS))), sds((6, M), f32, columns),
        sds((6,), f32), sds((), f32), sds((), np.int32),
        n=N, k=None, fit_intercept=True, grad="manual", memory=path.LBFGS_MEMORY)
    assert exported.nr_devices == 2 and "sdy.sharding" in text


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_the_streamed_step_and_epoch_end_lower(sparse):
    """:mod:`jaxlogreg.scale.streaming`'s minibatch step (XLA's gradient: data from disk)
    and the end of its epoch."""
    config = TrainConfig(solver="adam", batch_size=BATCH)
    Xt = coo(N, BATCH, 8 * BATCH) if sparse else sds((N, BATCH), "float32")
    (state, batch, hyper, _), spec = loop_args(config, Xt, 2, "float32", "xla")
    zero = sds((), "float32")
    carry = (state.params, state.opt_state, zero, zero, zero)
    lower_for_cuda(streaming._stream_step_jit, carry, batch, hyper, spec=spec)
    lower_for_cuda(streaming._finish_epoch_jit, state, zero, zero, state.params,
                   state.opt_state, hyper, spec=spec)


def test_the_programs_around_the_loop_lower():
    """Starting state, layout of X on the device, J at the end, checkpoint fingerprint, the
    streamed fit's shuffles and its J over blocks."""
    config = TrainConfig()
    (state, data, hyper, _), spec = loop_args(config, sds((N, M), "float32"), K, "float32",
                                              "fused")
    lower_for_cuda(jax.jit(loop._init_state.__wrapped__, static_argnames="spec"),
                   params_of(N, K, "float32"), sds((), np.uint32), hyper, spec=spec)
    lower_for_cuda(training_data._prepare, sds((M - 5, N), "float32"), data.y, data.sample_weight,
                   dtype=jnp.dtype("bfloat16"), transposed=False, shape=(N, M))
    lower_for_cuda(training_data._objective, state.params, *data, hyper.l2, hyper.l1)
    lower_for_cuda(training_data._fingerprint, data, sds((), np.int32))
    key = jax.eval_shape(lambda: jax.random.key(0))
    lower_for_cuda(batch_reader._epoch_batches_jit, key, sds((), np.int32), m=M,
                   batch_size=BATCH)
    binary = params_of(N, 2, "float32")
    lower_for_cuda(streaming._partial_objective, binary, sds((N, BATCH), "float32"),
                   sds((BATCH,), "float32"), sds((BATCH,), "float32"))
    lower_for_cuda(streaming._penalty, binary.w, hyper.l2, hyper.l1)
