"""Checkpoints (jaxlogreg.scale.checkpoint): lossless round trip, atomic files, damaged files
skipped for the previous intact one, checkpoints tied to their fit and their data, and a
training process killed with SIGKILL that resumes to the same model as an uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _ckpt_cases import CONFIG, EVERY, make_data

import jaxlogreg as jl
from jaxlogreg.core.model import Params, init_params
from jaxlogreg.data.archive import write_archive
from jaxlogreg.scale import checkpoint
from jaxlogreg.scale.checkpoint import CheckpointError, CheckpointMismatch
from jaxlogreg.training.loop import LoopSpec, init_state
from jaxlogreg.training.pipeline import hyper_of

TESTS = Path(__file__).resolve().parent
FINGERPRINT = [1.5, -2.0, 3.0]
# A cheap full-batch fit, interrupted and resumed by the tests below.
GD = jl.TrainConfig(solver="gd", learning_rate=0.5, max_iter=6, tol=0.0, C=10.0)


def make_state(config: jl.TrainConfig, n_features: int, seed: int = 0, params=None):
    """The loop's starting state for ``config``, as the fit pipeline builds it."""
    params = init_params(n_features) if params is None else params
    spec = LoopSpec.of(config, config.batch_size)
    return init_state(params, hyper_of(config, 0.0, "float32"), spec, seed)


def assert_trees_equal(a, b) -> None:
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_round_trip_is_lossless(tmp_path, solver):
    config = jl.TrainConfig(solver=solver, max_iter=7)
    params = init_params(3)._replace(w=jnp.asarray([0.5, -1.25, 3.0]))
    state = make_state(config, 3, seed=42, params=params)
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", state, config, FINGERPRINT)
    assert_trees_equal(checkpoint.load_checkpoint(path, state, config, FINGERPRINT), state)
    header = checkpoint.read_header(path)
    assert header["config"]["solver"] == solver and header["iteration"] == 0
    assert header["fingerprint"] == FINGERPRINT and header["version"] == checkpoint.VERSION
    assert [leaf["path"] for leaf in header["leaves"]][:2] == [".params.w", ".params.b"]
    with np.load(path, allow_pickle=False) as z:  # plain arrays, no pickled objects
        assert all(z[k].dtype != object for k in z.files)


def test_round_trip_bfloat16_leaf(tmp_path):
    config = jl.TrainConfig()
    state = make_state(config, 2)
    state = state._replace(params=Params(jnp.asarray([1.5, -2.0], jnp.bfloat16), state.params.b))
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", state, config, FINGERPRINT)
    restored = checkpoint.load_checkpoint(path, state, config, FINGERPRINT)
    assert restored.params.w.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(restored.params.w, np.float32), [1.5, -2.0])
    assert_trees_equal(restored, state)


def test_mismatched_config_or_shapes_are_refused(tmp_path):
    config = jl.TrainConfig(solver="adam", max_iter=5)
    state = make_state(config, 3)
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", state, config, FINGERPRINT)
    other = config.replace(learning_rate=0.5)
    with pytest.raises(CheckpointMismatch,
                       match=r"other settings \(learning_rate: saved None, now 0\.5\)"):
        checkpoint.load_checkpoint(path, state, other)
    with pytest.raises(CheckpointMismatch, match="does not match this fit's state"):
        checkpoint.load_checkpoint(path, make_state(config, 4), config)
    # settings that do not change the fit are not compared
    checkpoint.load_checkpoint(path, state, config.replace(verbose=1, warm_start=True))


def test_atomic_write_leaves_no_temporary_and_keeps_the_newest(tmp_path):
    config = jl.TrainConfig(max_iter=30)
    state = make_state(config, 2)
    saver = jl.Checkpointer(tmp_path, every=1, keep=2)
    (tmp_path / ".ckpt-000000099.npz.123.tmp").write_bytes(b"half written")  # a crashed write
    for iteration in (1, 2, 3):
        saver.save(state._replace(iteration=jnp.asarray(iteration, jnp.int32)), config,
                   FINGERPRINT)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "ckpt-000000002.npz", "ckpt-000000003.npz"]
    assert checkpoint.latest_checkpoint(tmp_path).name == "ckpt-000000003.npz"
    assert not any(n.endswith(".tmp") and "ckpt-000000003" in n for n in names)
    assert oct(os.stat(tmp_path / "ckpt-000000003.npz").st_mode & 0o777) == "0o644"


def test_checkpointer_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="every"):
        jl.Checkpointer(tmp_path, every=0)
    with pytest.raises(ValueError, match="keep"):
        jl.Checkpointer(tmp_path, keep=0)
    with pytest.raises(TypeError, match="force must be True or False, got 'yes'"):
        jl.Checkpointer(tmp_path, force="yes")


def test_checkpointed_fit_equals_plain_fit_and_resumes(tmp_path):
    X, y = make_data()
    config = jl.TrainConfig(solver="gd", learning_rate=0.5, max_iter=10, tol=0.0, C=np.inf)
    plain = jl.fit(X, y, config)
    saver = jl.Checkpointer(tmp_path, every=4)
    seen = []
    first = jl.fit(X, y, config, checkpoint=saver, callback=lambda i, loss: seen.append(i),
                   n_segments=3)
    assert seen == [4, 8, 10]
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "ckpt-000000008.npz", "ckpt-000000010.npz"]  # every 4, the last one, keep=2
    # checkpointing does not change the fit (to float rounding: the data may be padded otherwise)
    np.testing.assert_allclose(first.params.w, plain.params.w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(first.loss_history, plain.loss_history, rtol=1e-6)
    assert (first.n_iter, first.status) == (plain.n_iter, plain.status)
    seen.clear()
    again = jl.fit(X, y, config, checkpoint=saver, callback=lambda i, loss: seen.append(i))
    assert seen == []  # resumed from the final checkpoint: nothing left to run
    np.testing.assert_array_equal(again.params.w, first.params.w)
    np.testing.assert_array_equal(again.loss_history, first.loss_history)
    assert again.n_iter == 10


# --- interrupted fits, damaged checkpoints, checkpoints of other fits or other data ------------


class Interrupted(Exception):
    pass


def interrupt_at(iteration: int):
    """A callback that stops the fit at ``iteration`` (before that iteration's checkpoint)."""

    def callback(i: int, loss: float) -> None:
        if i == iteration:
            raise Interrupted(i)

    return callback


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> jl.FitResult:
    """GD run to the end with checkpoints, never interrupted: what every resume must equal."""
    X, y = make_data()
    directory = tmp_path_factory.mktemp("uninterrupted")
    return jl.fit(X, y, GD, checkpoint=jl.Checkpointer(directory, every=2, keep=3))


def assert_same_result(result: jl.FitResult, expected: jl.FitResult) -> None:
    """Bit for bit: the same computation from the same state."""
    np.testing.assert_array_equal(result.params.w, expected.params.w)
    np.testing.assert_array_equal(result.params.b, expected.params.b)
    np.testing.assert_array_equal(result.loss_history, expected.loss_history)
    assert (result.n_iter, result.status, result.loss) == (
        expected.n_iter, expected.status, expected.loss)


def interrupted_run(directory: Path, X, y, **kwargs) -> None:
    """GD stopped at iteration 5 with checkpoints every 2: ckpt-2 and ckpt-4 remain."""
    with pytest.raises(Interrupted):
        jl.fit(X, y, GD, checkpoint=jl.Checkpointer(directory, every=2, keep=3),
               callback=interrupt_at(5), n_segments=GD.max_iter, **kwargs)
    assert [p.name for p in checkpoint.list_checkpoints(directory)] == [
        "ckpt-000000002.npz", "ckpt-000000004.npz"]


def resume(directory: Path, X, y, **kwargs):
    """Resume with a fresh Checkpointer; returns the result and the iterations it ran."""
    seen = []
    saver = jl.Checkpointer(directory, every=2, keep=3, force=kwargs.pop("force", False))
    result = jl.fit(X, y, GD, checkpoint=saver, callback=lambda i, loss: seen.append(i),
                    n_segments=GD.max_iter, **kwargs)
    return result, seen


def _rewrite(path: Path, change) -> None:
    """Rewrite a checkpoint's members: ``change(header, arrays)`` edits them in place."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays.pop("header").tobytes())
    change(header, arrays)
    write_archive(path, header, arrays)


def _savez(path: Path, **members) -> None:
    with open(path, "wb") as f:
        np.savez(f, **members)


def _members(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _nan_in_params(header, arrays):
    i = [leaf["path"] for leaf in header["leaves"]].index(".params.w")
    arrays[f"leaf_{i:04d}"] = np.full_like(arrays[f"leaf_{i:04d}"], np.nan)


def _drop_a_leaf(header, arrays):
    del arrays["leaf_0003"]


DAMAGES = {
    # how the newest checkpoint is damaged -> what the warning says about it (verbatim)
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                  "not a readable .npz archive"),
    "garbage_bytes": (lambda p: p.write_bytes(b"\x00\x13garbage " * 64),
                      "expected an .npz (zip) archive"),
    "empty": (lambda p: p.write_bytes(b""), "got an empty file"),
    "zip_without_header": (
        lambda p: _savez(p, **{k: a for k, a in _members(p).items() if k != "header"}),
        "missing array 'header'"),
    "header_not_json": (
        lambda p: _savez(p, **{**_members(p), "header": np.frombuffer(b'{"format": ',
                                                                       np.uint8)}),
        "header is not valid UTF-8 JSON"),
    "pickled_header": (  # numpy refuses it with its allow_pickle hint, which must not leak
        lambda p: _savez(p, **{**_members(p), "header": np.array([{"format": 1}], object)}),
        "corrupt or unsafe array 'header'"),
    "missing_leaf": (lambda p: _rewrite(p, _drop_a_leaf), "missing array(s) ['leaf_0003']"),
    "nan_params": (lambda p: _rewrite(p, _nan_in_params), "the saved params hold NaN or inf"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, uninterrupted,
                                                                   damage):
    """D6: a damaged newest file is named in a warning, the previous one is used, and the
    resumed fit still ends with the uninterrupted model."""
    X, y = make_data()
    interrupted_run(tmp_path, X, y)
    newest = checkpoint.latest_checkpoint(tmp_path)
    damage_file, problem = DAMAGES[damage]
    damage_file(newest)

    with pytest.warns(RuntimeWarning) as caught:
        result, seen = resume(tmp_path, X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"cannot load checkpoint {newest}: "), messages
    assert problem in messages[0], messages
    assert "trying the previous checkpoint" in messages[0]
    assert "load it unsafely" not in messages[0]  # numpy's allow_pickle hint does not leak
    assert seen == [3, 4, 5, 6]  # resumed from ckpt-2
    assert_same_result(result, uninterrupted)

    if damage not in ("nan_params", "missing_leaf"):  # a damaged header read directly:
        damage_file(newest)  # a CheckpointError (a ValueError) naming the file
        with pytest.raises(CheckpointError, match=re.escape(str(newest))) as err:
            checkpoint.read_header(newest)
        assert err.value.path == str(newest) and isinstance(err.value, ValueError)


def test_all_damaged_is_a_clear_error_naming_the_directory_and_files(tmp_path, uninterrupted):
    X, y = make_data()
    interrupted_run(tmp_path, X, y)
    files = checkpoint.list_checkpoints(tmp_path)
    files[0].write_bytes(b"")
    _rewrite(files[1], _nan_in_params)
    with pytest.warns(RuntimeWarning), pytest.raises(CheckpointError) as err:
        resume(tmp_path, X, y)
    message = str(err.value)
    assert not isinstance(err.value, CheckpointMismatch)
    assert message.startswith(f"cannot load checkpoint {tmp_path}: no intact checkpoint"), message
    assert all(str(f) in message for f in files), message
    assert "resume=False" in message
    # starting afresh, as the message suggests, works and overwrites the damaged files
    fresh = jl.fit(X, y, GD, checkpoint=jl.Checkpointer(tmp_path, every=2, keep=3, resume=False))
    assert_same_result(fresh, uninterrupted)
    assert len(checkpoint.list_checkpoints(tmp_path)) == 3


def test_checkpoint_of_another_fit_is_refused_not_skipped(tmp_path, recwarn):
    """Intact checkpoints of other settings or another model size raise CheckpointMismatch
    (they are not damaged: no fallback to an older file, no warning)."""
    X, y = make_data()
    interrupted_run(tmp_path, X, y)
    with pytest.raises(CheckpointMismatch,
                       match=r"ckpt-000000004\.npz: it was saved with other settings "
                             r"\(learning_rate: saved 0\.5, now 0\.25\)"):
        jl.fit(X, y, GD.replace(learning_rate=0.25), checkpoint=jl.Checkpointer(tmp_path))
    y3 = (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 0)  # 3 classes: w is (n, 3)
    with pytest.raises(CheckpointMismatch, match="does not match this fit's state"):
        jl.fit(X, y3, GD, checkpoint=jl.Checkpointer(tmp_path))
    header = checkpoint.read_header(checkpoint.latest_checkpoint(tmp_path))
    wider = make_state(GD, header["leaves"][0]["shape"][0] + 1)  # leaf 0 is params.w
    with pytest.raises(CheckpointMismatch, match="does not match this fit's state"):
        jl.Checkpointer(tmp_path).restore(wider, GD, header["fingerprint"])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def _other_values(X, y):
    X = X.copy()
    X[7, 2] += 0.5  # one value of one row
    return X, y, None


def _slightly_other_values(X, y):
    X = X.copy()
    X[7, 2] += 1e-2  # a change of 1e-2 in one value: a column sum moves by about 1e-3
    return X, y, None


def _row_order(X, y):
    order = np.random.default_rng(3).permutation(len(y))
    return X[order], y[order], None


def _labels(X, y):
    y = y.copy()
    y[:5] = 1 - y[:5]
    return X, y, None


def _weights(X, y):
    sample_weight = np.ones(len(y))
    sample_weight[10] = 2.0
    return X, y, sample_weight


@pytest.mark.parametrize("change", [_other_values, _slightly_other_values, _row_order, _labels,
                                    _weights],
                         ids=lambda f: f.__name__.strip("_"))
def test_checkpoint_of_other_data_is_refused(tmp_path, change):
    """D7: a checkpoint is tied to its data; the same shapes with other values, another row
    order, other labels or other weights are refused with a message."""
    X, y = make_data()
    interrupted_run(tmp_path, X, y)
    X2, y2, sample_weight = change(X, y)
    with pytest.raises(CheckpointMismatch, match=r"ckpt-000000004\.npz: it was saved while "
                                                 r"training on other data.*force=True"):
        resume(tmp_path, X2, y2, sample_weight=sample_weight)


def test_force_resumes_on_changed_data(tmp_path, uninterrupted):
    """D7: Checkpointer(..., force=True) continues the saved fit on the new data."""
    X, y = make_data()
    interrupted_run(tmp_path, X, y)
    X2 = X + 0.5 * np.random.default_rng(5).normal(size=X.shape).astype(X.dtype)
    forced, seen = resume(tmp_path, X2, y, force=True)
    assert seen == [5, 6] and forced.n_iter == GD.max_iter  # resumed from ckpt-4
    saved_part = uninterrupted.loss_history[:4]
    np.testing.assert_array_equal(forced.loss_history[:4], saved_part)
    assert not np.allclose(forced.loss_history[4:], uninterrupted.loss_history[4:])  # on X2
    np.testing.assert_allclose(forced.loss, jl.fit(X2, y, GD, init_params=forced.params,
                                                   max_iter=1).loss_history[0], rtol=1e-6)


# --- a killed process ---------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_training_resumes_to_the_uninterrupted_model(tmp_path):
    """SIGKILL a training process after its first checkpoint, resume, compare with one run."""
    ckpt_dir, out = tmp_path / "ckpt", tmp_path / "model.npz"
    worker = [sys.executable, str(TESTS / "_ckpt_worker.py"), str(ckpt_dir), str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    # 0.5 s pause at each checkpoint: the run is still going when the first one appears.
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

    resumed = subprocess.run([*worker, "0"], env=env, capture_output=True, text=True, timeout=120,
                             check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    # it started from the saved state, not from scratch: its first checkpoint is the next one
    first = resumed.stdout.split("checkpoint ", 1)[1].split()[0]
    assert int(first) == saved["iteration"] + EVERY, resumed.stdout
    got = np.load(out)

    X, y = make_data()
    uninterrupted = jl.fit(X, y, CONFIG, checkpoint=jl.Checkpointer(tmp_path / "ref", EVERY))
    assert int(got["n_iter"]) == uninterrupted.n_iter == CONFIG.max_iter
    # Same computation from the same state on the same machine: equal bit for bit.
    np.testing.assert_array_equal(got["w"], uninterrupted.params.w)
    np.testing.assert_array_equal(got["b"], uninterrupted.params.b)
    np.testing.assert_array_equal(got["loss_history"], uninterrupted.loss_history)
    plain = jl.fit(X, y, CONFIG)  # and, to float rounding, a fit without checkpoints
    np.testing.assert_allclose(got["w"], plain.params.w, rtol=1e-6, atol=1e-7)
    print(json.dumps({"killed_at_iteration": saved["iteration"]}))
