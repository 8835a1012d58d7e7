"""The fused single-read Pallas gradient against the XLA hand-written gradient and jax.grad.

On CPU the kernel runs in Pallas interpret mode (``interpret=True``): the same kernel body,
executed as a loop over the grid, with out-of-bounds reads returning NaN, so the masking of
padded rows, classes and examples is exercised for real. Sizes are small: interpret mode is
slow. :func:`test_lowers_to_triton` lowers the kernel for CUDA without a GPU (the Pallas to
Triton-IR step), and :func:`test_compiled_kernel_on_gpu` runs the compiled kernel when JAX has
a GPU (``bash benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlogreg.core.gradcheck import max_relative_error
from jaxlogreg.core.gradients import value_and_grad_t
from jaxlogreg.core.loss import example_scale, objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.kernels import fused, fused_tiling
from jaxlogreg.kernels.fused import fused_value_and_grad_t, supports, tile_config

# JAX 0.11 warns at lowering that Pallas' Triton backend is deprecated (supports() checks it).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The Pallas Triton backend is deprecated:DeprecationWarning"
)
RTOL = {"float32": 1e-5, "float64": 1e-12}
ON_GPU = jax.default_backend() == "gpu"
# XLA's float32 matrix products on NVIDIA GPUs default to one-pass TF32 (~1e-4 relative error):
# the references run at full float32 precision everywhere.
HIGHEST = "highest"


def x64(dtype):
    return jax.enable_x64(np.dtype(dtype) == np.float64)


def make(m, n, K=2, dtype="float64", *, weighted=False, seed=0, logit_scale=1.0, x_dtype=None):
    """JAX arrays (call under ``x64``): params, Xt (n, m), y, s, and the raw weights or None."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    if K == 2:
        w = rng.normal(size=n) * logit_scale / np.sqrt(n)
        b = np.asarray(0.3 * logit_scale * rng.normal())
        y = jnp.asarray(rng.integers(0, 2, m), dtype)  # 0/1 in the float dtype
    else:
        w = rng.normal(size=(n, K)) * logit_scale / np.sqrt(n)
        b = 0.3 * logit_scale * rng.normal(size=K)
        y = jnp.asarray(rng.integers(0, K, m), jnp.int32)
    params = Params(jnp.asarray(w, dtype), jnp.asarray(b, dtype))
    Xt = jnp.asarray(X, x_dtype or dtype)
    sw = jnp.asarray(rng.uniform(0.1, 3.0, m), dtype) if weighted else None
    return params, Xt, y, example_scale(sw, m, dtype), sw


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def _three(params, Xt, y, s, sw, l2, tile=None, max_programs=None):
    """The kernel (interpret mode), the XLA hand-written gradient and jax.grad: one program."""
    return (
        fused_value_and_grad_t(
            params, Xt, y, s, l2, interpret=True, tile=tile, max_programs=max_programs
        ),
        value_and_grad_t(params, Xt, y, s, l2),
        jax.value_and_grad(objective_t)(params, Xt, y, sw, l2),
    )


# LLVM at -O0: these tests are compile-bound (one program per shape); XLA's HLO passes and IEEE
# semantics are those of the default build (as in test_gradients.py).
three = jax.jit(
    _three,
    static_argnames=("tile", "max_programs"),
    compiler_options={"xla_backend_optimization_level": 0},
)
vag_t = jax.jit(value_and_grad_t, compiler_options={"xla_backend_optimization_level": 0})


def check_against_references(params, Xt, y, s, sw, l2, dtype, **kw):
    """J and ∇ of the kernel within RTOL of value_and_grad_t and of jax.grad(objective_t)."""
    with jax.default_matmul_precision(HIGHEST):
        (J, g), (J_hand, g_hand), (J_auto, g_auto) = three(params, Xt, y, s, sw, l2, **kw)
    assert isinstance(g, Params)
    for leaf, p in zip(g, params, strict=True):
        assert leaf.shape == p.shape and leaf.dtype == p.dtype
    assert J.shape == () and J.dtype == params.w.dtype
    assert np.all(np.isfinite(np.asarray(J))) and all(
        np.all(np.isfinite(np.asarray(leaf))) for leaf in g
    )
    tol = RTOL[dtype]
    assert rel(J, J_hand) <= tol, (float(J), float(J_hand))
    assert rel(J, J_auto) <= tol, (float(J), float(J_auto))
    assert max_relative_error(g, g_hand) <= tol, max_relative_error(g, g_hand)
    assert max_relative_error(g, g_auto) <= tol, max_relative_error(g, g_auto)
    return J, g


# --- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("K", [2, 5])
def test_several_tiles_per_program(dtype, K):
    """m = 70 in tiles of 16 on 2 programs: 5 tiles, 3 per program, the last one all past m."""
    m, tile, programs = 70, 16, 2
    assert fused._grid(m, tile, programs) == (2, 3)
    with x64(dtype):
        params, Xt, y, s, sw = make(m, 19, K, dtype, weighted=True, seed=7)
        check_against_references(params, Xt, y, s, sw, 0.0, dtype, tile=tile, max_programs=2)


@pytest.mark.parametrize("K", [2, 3])
def test_bfloat16_storage_accumulates_in_float32(K):
    """Xt stored as bfloat16, params float32: each tile is cast to float32 before any sum."""
    params, Xt, y, s, _ = make(45, 9, K, "float32", weighted=True, seed=5, x_dtype=jnp.bfloat16)
    assert Xt.dtype == jnp.bfloat16
    J, g = fused_value_and_grad_t(params, Xt, y, s, 0.01, interpret=True)
    assert J.dtype == jnp.float32 and g.w.dtype == jnp.float32
    with jax.default_matmul_precision(HIGHEST):
        J_hand, g_hand = vag_t(params, Xt, y, s, 0.01)  # casts X to float32 too
    assert rel(J, J_hand) <= 1e-5 and max_relative_error(g, g_hand) <= 1e-5
    # the same as float32 storage of the bf16-rounded values
    _, g32 = fused_value_and_grad_t(params, Xt.astype(jnp.float32), y, s, 0.01, interpret=True)
    assert max_relative_error(g, g32) <= 1e-6


# --- the predicate and the tiling -----------------------------------------------------------


def test_supports_answers():
    f32, bf16, f64 = jnp.float32, jnp.bfloat16, jnp.float64
    assert supports(100, 2, f32, "gpu") and supports(100, 2, bf16, "cuda")
    assert supports(100, 10, f32, "gpu") and supports(100, 10, bf16, "gpu")
    assert supports(1024, 2, f32, "gpu") and not supports(1025, 2, f32, "gpu")
    assert supports(256, 16, f32, "gpu") and not supports(257, 16, f32, "gpu")
    assert supports(128, 32, f32, "gpu") and not supports(129, 32, f32, "gpu")
    assert supports(16, 256, f32, "gpu") and not supports(16, 257, f32, "gpu")
    assert not supports(300, 2, f32, "gpu", binary=False)  # softmax params with K = 2
    assert not supports(100, 2, f64, "gpu")  # float64: XLA on GPUs
    assert not supports(100, 2, jnp.float16, "gpu") and not supports(100, 2, jnp.int32, "gpu")
    for backend in ("cpu", "tpu", "rocm", "METAL"):
        assert not supports(100, 2, f32, backend)
    assert supports(100, 2, f64, "interpret") and supports(7, 3, f32, "INTERPRET")
    assert not supports(100, 2, jnp.int32, "interpret") and not supports(0, 2, f32, "gpu")
    assert not supports(100, 1, f32, "gpu")
    assert supports(100, 2, f32) == (jax.default_backend() == "gpu")


def test_tile_config_shapes():
    assert tile_config(100) == fused.TileConfig(128, 1, 128, 4)
    assert tile_config(5) == fused.TileConfig(16, 1, 1024, 4)
    assert tile_config(100, 10) == fused.TileConfig(128, 16, 64, 4)  # shared memory bound
    assert tile_config(1024) == fused.TileConfig(1024, 1, 16, 4)
    assert tile_config(1025) is None and tile_config(64, 300) is None
    for n in (1, 2, 3, 15, 16, 17, 100, 255, 256, 511, 777, 1024):
        for K in (2, 3, 10, 16, 17, 64, 200):
            cfg = tile_config(n, K)
            if cfg is None:
                continue
            for d in (cfg.n_pad, cfg.k_pad, cfg.tile):
                assert d & (d - 1) == 0  # powers of two
            assert cfg.n_pad >= max(n, 16) and fused_tiling.MIN_TILE <= cfg.tile <= fused_tiling.MAX_TILE
            assert cfg.n_pad * cfg.tile <= fused_tiling.TILE_ELEMENTS
            if K > 2:
                assert cfg.k_pad >= max(K, 16) and cfg.k_pad * cfg.tile <= fused_tiling.TILE_ELEMENTS
                assert cfg.n_pad * cfg.k_pad <= fused_tiling.PARAM_ELEMENTS
                assert cfg.n_pad * cfg.tile <= fused_tiling.SOFTMAX_TILE_ELEMENTS


def test_unsupported_shapes_raise():
    params = Params(jnp.zeros(1100), jnp.zeros(()))
    with pytest.raises(ValueError, match="does not support n_features=1100"):
        fused_value_and_grad_t(
            params, jnp.zeros((1100, 4)), jnp.zeros(4), 0.25, 0.0, interpret=True
        )
    params = Params(jnp.zeros(3), jnp.zeros(()))
    with pytest.raises(ValueError, match="tile must be a power of two"):
        fused_value_and_grad_t(params, jnp.zeros((3, 4)), jnp.zeros(4), 0.25, 0.0, tile=24)


# --- jit ----------------------------------------------------------------------------------------


def test_jit_traces_once_per_shape():
    traces = []

    @jax.jit
    def step(params, Xt, y, s, l2):
        traces.append(1)
        return fused_value_and_grad_t(params, Xt, y, s, l2, interpret=True)

    params, Xt, y, s, _ = make(30, 4, 3, "float32", weighted=True, seed=1)
    J1, _ = step(params, Xt, y, s, 0.1)
    params2 = Params(params.w + 0.5, params.b - 0.5)
    J2, g2 = step(params2, Xt * 2, y, s, 0.2)  # new values, same shapes and dtypes
    assert len(traces) == 1
    assert float(J1) != float(J2)  # it really recomputed
    with jax.default_matmul_precision(HIGHEST):
        J_ref, g_ref = vag_t(params2, Xt * 2, y, s, 0.2)
    assert rel(J2, J_ref) <= 1e-5 and max_relative_error(g2, g_ref) <= 1e-5
    step(params, Xt[:, :20], y[:20], s[:20], 0.1)  # a new shape traces again
    assert len(traces) == 2


# --- the GPU kernel -------------------------------------------------------------------------


@pytest.mark.parametrize("K", [2, 10])
@pytest.mark.parametrize("x_dtype", ["float32", "bfloat16"])
def test_lowers_to_triton(K, x_dtype):
    """The kernel lowers for CUDA through Pallas' Triton backend, with no GPU present.

    Checks the Pallas-level constraints (power-of-two block shapes, lowering rules for every
    primitive used); Triton's own compilation to PTX needs a GPU.
    """
    from jax import export

    m, n = 5000, 100
    Xt = jax.ShapeDtypeStruct((n, m), jnp.dtype(x_dtype))
    f32 = jnp.float32
    if K == 2:
        params = Params(jax.ShapeDtypeStruct((n,), f32), jax.ShapeDtypeStruct((), f32))
        y = jax.ShapeDtypeStruct((m,), f32)
    else:
        params = Params(jax.ShapeDtypeStruct((n, K), f32), jax.ShapeDtypeStruct((K,), f32))
        y = jax.ShapeDtypeStruct((m,), jnp.int32)
    s = jax.ShapeDtypeStruct((m,), f32)
    exported = export.export(
        jax.jit(lambda p, X, y, s: fused_value_and_grad_t(p, X, y, s, 0.1)),
        platforms=["cuda"],
        disabled_checks=[export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")],
    )(params, Xt, y, s)
    text = exported.mlir_module()
    assert text.count("__gpu$xla.gpu.triton") == 1  # one kernel: X is read by it alone
    tile = tile_config(n, K).tile  # 128 (binary) or 64 (softmax) for n_p = 128
    assert tile == (128 if K == 2 else 64)
    n_programs = -(-m // tile)  # < 1024 programs: one tile each
    assert f"grid_x = {n_programs} : i32" in text
    assert "num_warps = 4 : i32" in text


@pytest.mark.skipif(not ON_GPU, reason="needs a GPU (JAX default backend is not gpu)")
@pytest.mark.parametrize("K", [2, 10])
@pytest.mark.parametrize("x_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_kernel_on_gpu(K, x_dtype, weighted):
    """The Triton-compiled kernel (not interpret mode) against the XLA gradient on the GPU.

    The reference runs at full float32 precision; the softmax kernel's products are 3xTF32.
    """
    params, Xt, y, s, _ = make(
        50_003, 100, K, "float32", weighted=weighted, seed=K, x_dtype=x_dtype
    )
    J, g = fused_value_and_grad_t(params, Xt, y, s, 0.1)
    with jax.default_matmul_precision(HIGHEST):
        J_hand, g_hand = jax.jit(value_and_grad_t)(params, Xt, y, s, 0.1)
    assert rel(J, J_hand) <= 1e-5, (float(J), float(J_hand))
    assert max_relative_error(g, g_hand) <= 1e-5, max_relative_error(g, g_hand)
    # several tiles per program and a ragged last tile
    J2, g2 = fused_value_and_grad_t(params, Xt, y, s, 0.1, tile=16, max_programs=7)
    assert rel(J2, J_hand) <= 1e-5 and max_relative_error(g2, g_hand) <= 1e-5


# --- the benchmark ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(ON_GPU, reason="the GPU path is run by benchmarks/gpu_check.sh")
def test_gpu_roofline_smoke_on_cpu():
    """Without a GPU, benchmarks/gpu_roofline.py says so and smoke-tests the kernel (interpret)."""
    from benchmarks import gpu_roofline

    parser = argparse.ArgumentParser()
    gpu_roofline.add_arguments(parser)
    args = parser.parse_args([])
    args.quick, args.repeats, args.out = True, 1, None
    result = gpu_roofline.run(args)
    assert result["config"]["platform"] == "cpu"
    assert any("no GPU" in note for note in result["notes"])
    rows = result["rows"]
    assert {r["problem"] for r in rows} == {"binary", "softmax K=3"}
    assert all(r["err vs xla"] <= 1e-5 and r["variant"] == "fused (interpret)" for r in rows)


@pytest.mark.parametrize(("solver", "n_classes"), [("lbfgs", 2), ("gd", 3)])
def test_the_training_loop_with_the_fused_kernel_fits_the_same_model(monkeypatch, solver,
                                                                     n_classes):
    """The loop's kernel switch (chosen on GPUs): here through the interpreter."""
    import jaxlogreg as jl
    from jaxlogreg.training import pipeline

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, n_classes, size=60)
    settings = {"solver": solver, "learning_rate": 0.5, "max_iter": 8, "tol": 0.0,
                "dtype": "float64", "n_classes": n_classes}
    reference = jl.fit(X, y, **settings)
    monkeypatch.setattr(pipeline, "kernel_for", lambda data: "fused_interpret")
    fused_fit = jl.fit(X, y, **settings)
    np.testing.assert_allclose(fused_fit.loss_history, reference.loss_history, rtol=1e-12)
    np.testing.assert_allclose(fused_fit.params.w, reference.params.w, rtol=1e-10, atol=1e-12)


def test_the_fused_kernel_is_chosen_on_a_gpu_only():
    from jaxlogreg.training import pipeline
    from jaxlogreg.training.data import device_data
    from jaxlogreg.training.problem import validate

    data = device_data(validate(np.ones((4, 2)), np.array([0, 1, 0, 1]), dtype="float32"))
    assert pipeline.kernel_for(data) == ("fused" if jax.default_backend() == "gpu" else "xla")
