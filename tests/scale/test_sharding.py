"""Data-parallel training (jaxlogreg.scale.sharding): sharded fits equal single-device fits.

The 8-device checks run in a subprocess (tests/_sharding_worker.py) because the number of
simulated CPU devices is fixed when JAX's backend starts; this process keeps its own devices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg.core.loss import objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.training import mesh as mesh_layout
from jaxlogreg.training.data import pad_rows
from jaxlogreg.training.loop import LoopSpec, TrainData

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
if str(REPO_ROOT) not in sys.path:  # the benchmarks are the checkout's benchmarks/, not installed
    sys.path.insert(0, str(REPO_ROOT))
FLOAT32_ROUNDING = 2e-6  # relative to the largest |w|: a few float32 ulps after 30 updates


def run_worker(script: str, timeout: float = 240) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, str(TESTS / script)], capture_output=True, text=True, env=env,
        timeout=timeout, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{script} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def eight_devices() -> dict:
    if jax.default_backend() != "cpu":
        pytest.skip("simulated devices are a CPU feature; this machine's default backend is "
                    f"{jax.default_backend()}")
    return run_worker("_sharding_worker.py")


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["gd_m203", "gd_m200_divisible", "lbfgs_m203", "newton_cg_softmax_weighted_m203",
     "adam_minibatch_m203",
     "softmax_gd_weighted_m203"],
)
def test_sharded_fit_equals_single_device(eight_devices, case):
    r = eight_devices[case]
    assert r["max_abs_diff"] <= FLOAT32_ROUNDING * max(r["scale"], 1.0), r
    assert r["loss_diff"] <= 1e-6, r
    assert r["history_diff"] <= 1e-6, r
    assert r["n_iter"][0] == r["n_iter"][1] and r["status"][0] == r["status"][1], r


@pytest.mark.slow
def test_sharded_layout_pads_with_zero_weight_and_splits_columns(eight_devices):
    r = eight_devices["layout"]
    assert r["Xt_shape"] == [5, 208]  # 203 rows padded to a multiple of 8, none dropped
    assert r["n_samples"] == 203
    assert r["Xt_spec"] == "P(None, 'data')" and r["y_spec"] == "P('data',)"
    assert r["real_weights_one"] and r["pad_weights_zero"]
    assert r["shard_shapes"] == [[5, 26]]


@pytest.mark.slow
def test_shard_map_gradient_equals_compiler_partitioned(eight_devices):
    r = eight_devices["shard_map_gradient"]
    assert r["max_abs_diff"] <= 1e-6 and r["vs_single_device"] <= 1e-6, r
    assert r["params_spec"] == "P()"


@pytest.mark.slow
def test_checkpoint_saved_on_8_devices_resumes_on_1(eight_devices):
    """D7: the fingerprint of sharded (row-padded) data equals the single-device one, so a
    checkpoint written on 8 devices resumes on 1 and ends with the single-device model."""
    r = eight_devices["checkpoint_across_devices"]
    assert r["saved"] == ["ckpt-000000002.npz"], r
    assert r["fingerprint_lengths"][0] == r["fingerprint_lengths"][1] and r["same_fingerprint"], r
    assert "error" not in r, r["error"]
    assert r["resumed_iterations"] == [3, 4, 5, 6], r
    assert r["max_abs_diff"] <= FLOAT32_ROUNDING * max(r["scale"], 1.0), r
    assert r["n_iter"] == [6, 6], r


# --- in-process checks (whatever devices this process has) ------------------------------------


@pytest.mark.slow
def test_fit_path_on_8_devices_equals_one_device(eight_devices):
    r = eight_devices["fit_path"]
    assert r["converged"] and r["loss_diff"] <= 1e-5 * r["loss_scale"], r


def test_padded_size():
    assert mesh_layout.padded_size(203, 8) == 208
    assert mesh_layout.padded_size(200, 8) == 200
    assert mesh_layout.padded_size(3, 8) == 8


@pytest.mark.parametrize("xp", [np, jnp])
def test_pad_rows_appends_zero_weight_rows(xp):
    Xt = xp.arange(10.0, dtype=xp.float32).reshape(2, 5)
    y = xp.asarray([0.0, 1.0, 1.0, 0.0, 1.0], xp.float32)
    padded = pad_rows(TrainData(Xt, y, None), mesh_layout.padded_size(5, 4))
    assert padded.Xt.shape == (2, 8) and padded.y.shape == (8,)
    np.testing.assert_array_equal(np.asarray(padded.Xt[:, :5]), np.asarray(Xt))
    np.testing.assert_array_equal(np.asarray(padded.Xt[:, 5:]), 0)
    np.testing.assert_array_equal(np.asarray(padded.sample_weight), [1, 1, 1, 1, 1, 0, 0, 0])


def test_pad_rows_keeps_weights_and_skips_when_nothing_is_added():
    data = TrainData(np.ones((2, 4), np.float32), np.zeros(4, np.float32), None)
    assert pad_rows(data, mesh_layout.padded_size(4, 2)) is data
    weighted = data._replace(sample_weight=np.asarray([1, 2, 3, 4], np.float32))
    padded = pad_rows(weighted, mesh_layout.padded_size(4, 3))
    np.testing.assert_array_equal(padded.sample_weight, [1, 2, 3, 4, 0, 0])


def test_padding_does_not_change_the_objective():
    rng = np.random.default_rng(0)
    data = TrainData(rng.normal(size=(3, 7)).astype(np.float32),
                     (rng.random(7) > 0.5).astype(np.float32), None)
    params = Params(jnp.asarray([0.3, -0.2, 0.1]), jnp.asarray(0.05))
    expected = objective_t(params, *data, 0.1)
    np.testing.assert_allclose(objective_t(params, *pad_rows(data, 8), 0.1), expected, rtol=1e-6)
    # zero features too (single-device bucketing), with zero weights for them
    wide = Params(jnp.asarray([0.3, -0.2, 0.1, 0.0, 0.0]), params.b)
    np.testing.assert_allclose(objective_t(wide, *pad_rows(data, 8, 5), 0.1), expected, rtol=1e-6)


def test_make_mesh_and_errors():
    mesh = mesh_layout.make_mesh(1)
    assert mesh.axis_names == ("data",) and mesh.size == 1
    with pytest.raises(ValueError, match="visible devices"):
        mesh_layout.make_mesh(len(jax.devices()) + 1)
    with pytest.raises(ValueError, match="single axis"):
        mesh_layout.check_mesh(jax.make_mesh((1,), ("batch",)))


def test_row_layout_is_hashable_static_spec():
    mesh = mesh_layout.make_mesh(1)
    assert hash(mesh_layout.RowLayout(mesh, 10)) == hash(mesh_layout.RowLayout(mesh, 10))
    spec = LoopSpec.of(jl.TrainConfig(), None, mesh_layout.RowLayout(mesh, 10))
    assert spec == LoopSpec.of(jl.TrainConfig(), None, mesh_layout.RowLayout(mesh, 10))
    assert hash(spec) == hash(LoopSpec.of(jl.TrainConfig(), None, mesh_layout.RowLayout(mesh, 10)))


@pytest.mark.slow
def test_devices_benchmark_rows(tmp_path):
    """benchmarks/devices.py (``python -m benchmarks devices``): one subprocess per device
    count, rows of steps/second."""
    import argparse

    from benchmarks import devices

    parser = argparse.ArgumentParser()
    devices.add_arguments(parser)
    args = parser.parse_args(["--devices", "2", "--m", "501", "--n", "4",
                              "--batch-size", "64", "--steps", "3"])
    args.quick, args.repeats, args.out = True, 1, str(tmp_path)
    result = devices.run(args)
    assert result["plots"] == [str(tmp_path / "devices.png")]
    assert (tmp_path / "devices.png").read_bytes()[:4] == b"\x89PNG"
    rows = result["rows"]
    assert [(r["devices"], r["mode"]) for r in rows] == [
        (2, mode) for mode in ("gradient (jit)", "gradient (shard_map)", "gd", "adam minibatch")]
    for r in rows:
        assert r["steps_per_s"] > 0 and r["max_abs_diff"] < 1e-5, r
