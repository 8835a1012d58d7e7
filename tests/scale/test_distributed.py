"""Multi-process training: 2 local processes (loopback coordinator, gloo CPU collectives) give
the same model as one process. The workers are tests/_dist_worker.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from _dist_cases import CASES, N_SAMPLES, SEED, make_data, sample_weight_for

import jaxlogreg as jl
from jaxlogreg.scale import distributed
from jaxlogreg.training import mesh as mesh_layout

TESTS = Path(__file__).resolve().parent
NUM_PROCESSES = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_models(tmp_path_factory) -> list[dict]:
    if jax.default_backend() != "cpu":
        pytest.skip(f"the 2-process test uses CPU collectives; backend is {jax.default_backend()}")
    out_dir = tmp_path_factory.mktemp("dist")
    port = free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, str(TESTS / "_dist_worker.py"), str(i), str(NUM_PROCESSES),
             str(port), str(out_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        for i in range(NUM_PROCESSES)
    ]
    deadline = time.monotonic() + 240
    logs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
            logs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for i, proc in enumerate(procs):
        assert proc.returncode == 0, f"worker {i} exited {proc.returncode}:\n{logs[i][-4000:]}"
    return [dict(np.load(out_dir / f"models_{i}.npz")) for i in range(NUM_PROCESSES)]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_match_one_process(two_process_models, case):
    """Full batch, L-BFGS, minibatches, and class_weight="balanced" with sample weights (its
    class weights come from the weighted class counts of all processes' rows)."""
    X, y, sample_weight = make_data()
    ref = jl.fit(X, y, CASES[case], random_state=SEED,
                 sample_weight=sample_weight_for(case, sample_weight))
    for models in two_process_models:  # every process holds the same replicated model
        np.testing.assert_allclose(models[f"{case}_w"], ref.params.w, rtol=2e-6, atol=2e-7)
        np.testing.assert_allclose(models[f"{case}_b"], ref.params.b, rtol=2e-6, atol=2e-7)
        np.testing.assert_allclose(models[f"{case}_loss"], ref.loss, rtol=1e-6)


@pytest.mark.slow
def test_each_process_loaded_only_its_rows(two_process_models):
    # 203 rows padded to 204 over 4 devices (2 per process): process 0 rows 0..101, process 1
    # rows 102..202 (its last device also holds the one padding row).
    assert [list(m["rows"]) for m in two_process_models] == [[0, 102], [102, N_SAMPLES]]


# --- in-process checks: a single process, nothing initialised ----------------------------------


def test_initialize_without_cluster_is_a_single_process_noop(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID",
                 "SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    info = distributed.initialize()
    assert info.process_count == 1 and info.process_index == 0
    assert not jax.distributed.is_initialized()


def test_initialize_validates_arguments(monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an integer"):
        distributed.initialize()
    monkeypatch.delenv("JAX_NUM_PROCESSES")
    with pytest.raises(ValueError, match=r"process_id must be in 0\.\.1"):
        distributed.initialize("127.0.0.1:1", 2, 5)
    with pytest.raises(ValueError, match="cpu_collectives"):
        distributed.initialize(cpu_collectives="nccl")


def test_local_rows_single_process():
    mesh = mesh_layout.make_mesh(1)
    assert distributed.local_rows(10, mesh) == slice(0, 10)


def test_global_train_data_checks_the_local_rows():
    mesh = mesh_layout.make_mesh(1)
    X, y, _ = make_data()
    with pytest.raises(ValueError, match=r"this process's 203 rows 0:203"):
        distributed.global_train_data(X[:100], y[:100], None, n_samples=N_SAMPLES, mesh=mesh,
                                      n_classes=2, dtype="float32")


def test_fit_distributed_single_process_equals_fit():
    """One process, one device: fit_distributed is fit (same pipeline, other data preparation)."""
    X, y, sample_weight = make_data()
    config = CASES["balanced"]
    ref = jl.fit(X, y, config, sample_weight=sample_weight)
    res = distributed.fit_distributed(X, y, config, sample_weight=sample_weight,
                                      mesh=mesh_layout.make_mesh(1))
    np.testing.assert_allclose(res.params.w, ref.params.w, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(res.loss, ref.loss, rtol=1e-6)


@pytest.mark.parametrize("class_weight", [None, "balanced", {0: 3.0}])
def test_global_weights_follow_the_single_process_rules(class_weight):
    """One process: the weights are relative_weights' (scikit-learn's rules, relative to the
    largest, with the true sum); the checks are made over all rows, so an empty share is not an
    error by itself."""
    from jaxlogreg.training.problem import relative_weights

    _, y, sample_weight = make_data()
    weights, total = distributed._global_weights(y, sample_weight, class_weight, 2)
    expected, expected_total = relative_weights(y, sample_weight, class_weight, 2)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    assert total == pytest.approx(expected_total, rel=1e-12)
    assert distributed._global_weights(y[:0], None, None, 2) == (None, 0.0)
    if class_weight == "balanced":
        with pytest.raises(ValueError, match=r'"balanced" needs every class.*\[0\.0, 0\.0\]'):
            distributed._global_weights(y[:0], sample_weight[:0], class_weight, 2)
    with pytest.raises(ValueError, match="positive sum over all rows"):
        distributed._global_weights(y, np.zeros_like(sample_weight), None, 2)
