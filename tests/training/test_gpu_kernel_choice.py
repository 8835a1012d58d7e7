"""A fit's kernel and compile options as on a GPU, on any machine: the data's platform reads as
"gpu" (the :func:`as_on_a_gpu` fixture), and the pipeline must pick the Pallas kernel exactly
where :func:`jaxlogreg.kernels.fused.supports` says for the shape the loop sees (after
padding), XLA's gradient elsewhere, and never compile at -O0. The table's own rule at each
bound, for a given shape: tests/kernels/test_table.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.sparse as sp

from jaxlogreg.kernels import fused, fused_tiling
from jaxlogreg.runtime import compiler
from jaxlogreg.training import loop, pipeline
from jaxlogreg.training.data import device_data
from jaxlogreg.training.mesh import make_mesh
from jaxlogreg.training.problem import validate
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.spec import LoopSpec, TrainData

M = 64  # rows: small problems are padded to 512 rows, and features to a power of two >= 32


@pytest.fixture
def as_on_a_gpu(monkeypatch):
    """Every array's platform reads as "gpu", in a JAX with Pallas' Triton backend."""
    monkeypatch.setattr(compiler, "platform", lambda leaves: "gpu")
    monkeypatch.setattr(fused_tiling, "_triton_available", lambda: True)


def _data(n, k, dtype="float32", x_dtype=None, sparse=False, mesh=None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(M, n)).astype(dtype)
    y = np.arange(M) % k
    problem = validate(sp.csr_array(X) if sparse else X, y, n_classes=k, dtype=dtype)
    return device_data(problem, x_dtype, mesh=mesh)


CASES = {  # n, K, dtype, x_dtype -> the kernel; n_p = padded n
    "binary": (20, 2, "float32", None, "fused"),
    "binary-at-1024-features": (1024, 2, "float32", None, "fused"),
    "binary-1025-features": (1025, 2, "float32", None, "xla"),  # n_p = 2048
    "binary-bf16-X": (20, 2, "float32", "bfloat16", "fused"),
    "binary-float64": (20, 2, "float64", None, "xla"),
    "softmax-K10-at-256-features": (256, 10, "float32", None, "fused"),  # n_p K_p = 4096
    "softmax-K10-257-features": (257, 10, "float32", None, "xla"),
    "softmax-K128": (20, 128, "float32", None, "fused"),  # n_p = 32
    "softmax-K129": (20, 129, "float32", None, "xla"),  # K_p = 256: n_p K_p > 4096
    "softmax-bf16-X": (20, 3, "float32", "bfloat16", "fused"),
}


@pytest.mark.parametrize(("n", "k", "dtype", "x_dtype", "expected"), CASES.values(),
                         ids=CASES.keys())
def test_dense_data_on_one_gpu_take_the_pallas_kernel_where_it_applies(
        as_on_a_gpu, n, k, dtype, x_dtype, expected):
    data = _data(n, k, dtype, x_dtype)
    Xt = data.data.Xt
    assert pipeline.kernel_for(data) == expected
    assert (expected == "fused") == fused.supports(Xt.shape[0], k, Xt.dtype, "gpu")


@pytest.mark.parametrize("kind", ["sparse", "sharded"])
def test_sparse_and_sharded_data_on_gpus_take_xla(as_on_a_gpu, kind):
    data = _data(20, 2, sparse=kind == "sparse", mesh=make_mesh(1) if kind == "sharded" else None)
    assert fused.supports(data.data.Xt.shape[0], 2, "float32", "gpu")  # the shape alone would
    assert pipeline.kernel_for(data) == "xla"


def test_the_quick_compile_stays_off_on_gpus(monkeypatch):
    """The loop and its starting state compile at -O0 only on CPUs (:class:`Jitted.quick`)."""
    config = TrainConfig()
    spec = LoopSpec.of(config, None)
    hyper = pipeline.hyper_of(config, 1e-3, "float32")
    params = pipeline.starting_params(None, 32, 2, "float32", True)
    data = TrainData(jax.ShapeDtypeStruct((32, 512), np.float32), None, None)  # small work
    state = loop._init_state.eval_shape(params, np.uint32(0), hyper, spec=spec)
    for platform, quick in (("cpu", True), ("gpu", False)):
        monkeypatch.setattr(compiler, "platform", lambda leaves, p=platform: p)
        assert loop.run_segment.quick(state, data, hyper, np.int32(1), spec=spec) is quick
        assert loop._init_state.quick(params, np.uint32(0), hyper, spec=spec) is quick


def test_show_config_reports_the_kernel_of_the_fit(as_on_a_gpu):
    from jaxlogreg.report.environment import show_config

    def kernel(*shape, kind="dense"):
        text = show_config(*shape)
        return next(line for line in text.splitlines() if line.startswith(kind)).split(": ")[1]

    assert kernel(64, 20) == "fused" and kernel(64, 20, kind="sparse") == "xla"
    assert kernel(64, 1025) == "xla"  # n_p = 2048
    # 129 classes: K_p = 256, so the kernel takes n_p = 16 features, not the 32 of a padded
    # small problem
    assert kernel(10**6, 16, 129) == "fused" and kernel(64, 16, 129) == "xla"
