"""Checkpoints (jaxlogreg.checkpoint): lossless round trip, atomic files, and a training process
killed with SIGKILL that resumes to the same model as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _ckpt_cases import CONFIG, EVERY, SEED, make_data

from jaxlogreg import checkpoint, model, train

TESTS = Path(__file__).resolve().parent


def assert_trees_equal(a, b) -> None:
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_round_trip_is_lossless(tmp_path, solver):
    config = train.TrainConfig(solver=solver, max_iter=7)
    params = model.init_params(3)._replace(w=jnp.asarray([0.5, -1.25, 3.0]))
    state = train.init_state(params, config, seed=42)
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", state, config)
    assert_trees_equal(checkpoint.load_checkpoint(path, state, config), state)
    header = checkpoint.read_header(path)
    assert header["config"]["solver"] == solver and header["iteration"] == 0
    assert [leaf["path"] for leaf in header["leaves"]][:2] == [".params.w", ".params.b"]
    with np.load(path, allow_pickle=False) as z:  # plain arrays, no pickled objects
        assert all(z[k].dtype != object for k in z.files)


def test_round_trip_bfloat16_leaf(tmp_path):
    tree = {"w": jnp.asarray([1.5, -2.0], jnp.bfloat16)}
    config = train.TrainConfig()
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", _FakeState(tree), config)
    restored = checkpoint.load_checkpoint(path, _FakeState(tree))
    assert restored.tree["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(restored.tree["w"], np.float32), [1.5, -2.0])


class _FakeState(dict):
    """A minimal pytree with the header fields save_checkpoint reads."""

    def __init__(self, tree):
        super().__init__()
        self.tree = tree
        self.iteration = self.n_recorded = self.status = np.int32(0)


jax.tree_util.register_pytree_node(
    _FakeState, lambda s: ((s.tree,), None), lambda _, children: _FakeState(children[0])
)


def test_mismatched_config_or_shapes_are_refused(tmp_path):
    config = train.TrainConfig(solver="adam", max_iter=5)
    state = train.init_state(model.init_params(3), config)
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", state, config)
    other = train.TrainConfig(solver="adam", max_iter=5, learning_rate=0.5)
    with pytest.raises(ValueError, match=r"another training config \(learning_rate: saved None"):
        checkpoint.load_checkpoint(path, state, other)
    wider = train.init_state(model.init_params(4), config)
    with pytest.raises(ValueError, match="does not match this fit's state"):
        checkpoint.load_checkpoint(path, wider, config)


def test_atomic_write_leaves_no_temporary_and_keeps_the_newest(tmp_path):
    config = train.TrainConfig(max_iter=30)
    state = train.init_state(model.init_params(2), config)
    saver = checkpoint.Checkpointer(tmp_path, every=1, keep=2)
    (tmp_path / ".ckpt-000000099.npz.123.tmp").write_bytes(b"half written")  # a crashed write
    for iteration in (1, 2, 3):
        saver.save(state._replace(iteration=jnp.asarray(iteration, jnp.int32)), config)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "ckpt-000000002.npz", "ckpt-000000003.npz"]
    assert checkpoint.latest_checkpoint(tmp_path).name == "ckpt-000000003.npz"
    assert not any(n.endswith(".tmp") and "ckpt-000000003" in n for n in names)
    assert oct(os.stat(tmp_path / "ckpt-000000003.npz").st_mode & 0o777) == "0o644"


def test_checkpointed_fit_equals_plain_fit_and_resumes(tmp_path):
    X, y = make_data()
    config = train.TrainConfig(solver="gd", learning_rate=0.5, max_iter=10, tol=0.0)
    plain = train.fit(X, y, config)
    saver = checkpoint.Checkpointer(tmp_path, every=4)
    seen = []
    first = train.fit(X, y, config, checkpoint=saver, callback=lambda i, loss: seen.append(i))
    assert seen == [4, 8, 10]
    np.testing.assert_array_equal(first.params.w, plain.params.w)
    np.testing.assert_array_equal(first.loss_history, plain.loss_history)
    again = train.fit(X, y, config, checkpoint=saver)  # resumes from the final checkpoint
    np.testing.assert_array_equal(again.params.w, plain.params.w)
    assert again.n_iter == 10


def test_killed_training_resumes_to_the_uninterrupted_model(tmp_path):
    """SIGKILL a training process after its first checkpoint, resume, compare with one run."""
    ckpt_dir, out = tmp_path / "ckpt", tmp_path / "model.npz"
    worker = [sys.executable, str(TESTS / "_ckpt_worker.py"), str(ckpt_dir), str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    # 0.5 s pause after each checkpoint: the run is still going when the first one appears.
    proc = subprocess.Popen([*worker, "0.5"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while checkpoint.latest_checkpoint(ckpt_dir) is None:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    saved = checkpoint.read_header(checkpoint.latest_checkpoint(ckpt_dir))
    assert 0 < saved["iteration"] < CONFIG.max_iter and saved["iteration"] % EVERY == 0

    resumed = subprocess.run([*worker, "0"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    # it started from the saved state, not from scratch: its first checkpoint is the next one
    first = resumed.stdout.split("checkpoint ", 1)[1].split()[0]
    assert int(first) == saved["iteration"] + EVERY, resumed.stdout
    got = np.load(out)

    X, y = make_data()
    uninterrupted = train.fit(X, y, CONFIG, seed=SEED)
    assert int(got["n_iter"]) == uninterrupted.n_iter == CONFIG.max_iter
    # Same computation, same state: equal bit for bit on one machine (allow float32 rounding).
    np.testing.assert_allclose(got["w"], uninterrupted.params.w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["b"], uninterrupted.params.b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["loss_history"], uninterrupted.loss_history, rtol=1e-6)
    print(json.dumps({"killed_at_iteration": saved["iteration"],
                      "bitwise_equal": bool(np.array_equal(got["w"], uninterrupted.params.w))}))
