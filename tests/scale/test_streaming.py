"""Out-of-core training (jaxlogreg.scale.streaming) matches in-memory minibatch training."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg.scale import checkpoint
from jaxlogreg.scale.rows import RowSource

M, N, BATCH = 1003, 12, 64  # m not a multiple of the batch size: the last batch is padded


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(M, N)).astype(np.float32)
    y = (X @ np.linspace(-1, 1, N) + rng.normal(size=M) > 0).astype(np.float32)
    sample_weight = rng.uniform(0.5, 2.0, size=M).astype(np.float32)
    return X, y, sample_weight


@pytest.fixture(scope="module")
def npy_files(problem, tmp_path_factory):
    X, y, _ = problem
    d = tmp_path_factory.mktemp("npy")
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    return d / "X.npy", d / "y.npy"


@pytest.fixture(scope="module")
def hdf5_file(problem, tmp_path_factory):
    X, y, sample_weight = problem
    path = tmp_path_factory.mktemp("h5") / "data.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=X.astype(np.float64), chunks=(50, N), compression="gzip")
        f.create_dataset("y", data=y)
        f.create_dataset("w", data=sample_weight)
    return path


def assert_same_fit(ref: jl.FitResult, res: jl.FitResult) -> None:
    np.testing.assert_allclose(res.params.w, ref.params.w, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(res.params.b, ref.params.b, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(res.loss_history, ref.loss_history, rtol=1e-6)
    np.testing.assert_allclose(res.loss, ref.loss, rtol=1e-6)
    assert (res.n_iter, res.status) == (ref.n_iter, ref.status)


ADAM = jl.TrainConfig(solver="adam", learning_rate=0.05, batch_size=BATCH, max_iter=4, tol=0.0,
                      C=np.inf)


def test_npy_memmap_larger_than_budget_matches_in_memory(problem, npy_files):
    X, y, _ = problem
    budget = 40_000
    assert X.nbytes > budget  # the file does not fit the budget: it must be streamed
    ref = jl.fit(X, y, ADAM, random_state=5)
    stats: dict = {}
    epochs: list = []
    res = jl.fit_streaming(
        npy_files[0], npy_files[1], ADAM, random_state=5, memory_budget_bytes=budget,
        stats=stats, callback=lambda it, loss: epochs.append((it, loss)),
    )
    assert_same_fit(ref, res)
    assert stats["batches"] == ADAM.max_iter * -(-M // BATCH)
    assert 1 <= stats["queue_size"] and (stats["queue_size"] + 2) * 64 * N * 8 <= budget
    assert [it for it, _ in epochs] == [1, 2, 3, 4]  # the epoch loss is reported like fit's
    np.testing.assert_allclose([loss for _, loss in epochs], ref.loss_history, rtol=1e-6)


def test_chunked_hdf5_with_weights_matches_in_memory(problem, hdf5_file):
    X, y, sample_weight = problem
    l2 = 1e-3  # λ of the mean-loss objective: C = 1 / (λ Σ s)
    config = jl.TrainConfig(solver="sgd", learning_rate=0.05, batch_size=BATCH, max_iter=3,
                            tol=0.0, C=1.0 / (l2 * float(sample_weight.astype(np.float64).sum())))
    # the file holds float64: both paths train in float64
    ref = jl.fit(X.astype(np.float64), y, config, sample_weight=sample_weight, random_state=9)
    res = jl.fit_streaming(hdf5_file, "y", config, sample_weight="w", random_state=9,
                           memory_budget_bytes=60_000)
    assert res.params.w.dtype == np.float64
    assert_same_fit(ref, res)


def test_stops_on_convergence_like_in_memory(problem, npy_files):
    X, y, _ = problem
    config = ADAM.replace(max_iter=50, tol=1e-2)
    ref = jl.fit(X, y, config, random_state=5)
    res = jl.fit_streaming(npy_files[0], y, config, random_state=5, memory_budget_bytes=40_000)
    assert ref.status == "converged" and ref.n_iter < 50
    assert_same_fit(ref, res)


class Interrupted(Exception):
    pass


def test_checkpointed_stream_resumes_to_the_uninterrupted_run(problem, npy_files, tmp_path):
    """fit_streaming(checkpoint=...): stopped after epoch 2's checkpoint, resumed from it, the
    result equals an uninterrupted streamed run (and the in-memory one)."""
    X, y, _ = problem
    config = ADAM.replace(random_state=5)
    uninterrupted = jl.fit_streaming(npy_files[0], y, config, memory_budget_bytes=40_000)

    def stop_at_epoch_3(epoch, loss):
        if epoch == 3:
            raise Interrupted

    saver = jl.Checkpointer(tmp_path, every=2)
    with pytest.raises(Interrupted):
        jl.fit_streaming(npy_files[0], y, config, memory_budget_bytes=40_000, checkpoint=saver,
                         callback=stop_at_epoch_3)
    assert checkpoint.latest_checkpoint(tmp_path).name == "ckpt-000000002.npz"
    epochs = []
    resumed = jl.fit_streaming(npy_files[0], y, config, memory_budget_bytes=40_000,
                               checkpoint=jl.Checkpointer(tmp_path, every=2),
                               callback=lambda it, loss: epochs.append(it))
    assert epochs == [3, 4]  # it continued from epoch 2
    np.testing.assert_array_equal(resumed.params.w, uninterrupted.params.w)
    np.testing.assert_array_equal(resumed.params.b, uninterrupted.params.b)
    np.testing.assert_array_equal(resumed.loss_history, uninterrupted.loss_history)
    assert (resumed.n_iter, resumed.status) == (uninterrupted.n_iter, uninterrupted.status)
    assert_same_fit(jl.fit(X, y, config), resumed)
    # the checkpoint is tied to the file's data: other rows are refused
    other = tmp_path / "other.npy"
    np.save(other, X[::-1])
    with pytest.raises(checkpoint.CheckpointMismatch, match="other data"):
        jl.fit_streaming(other, y[::-1], config, checkpoint=jl.Checkpointer(tmp_path, every=2))


@pytest.mark.parametrize("fmt", ["npy", "hdf5"])
def test_nan_or_inf_in_X_is_the_fit_error_naming_the_row(problem, tmp_path, fmt):
    """D8: NaN/inf in the file is "X must be finite" (as jaxlogreg.fit says), naming the row,
    not a fit that "diverged" at iteration 0."""
    X, y, _ = problem
    bad = X.copy()
    bad_row, bad_col, value = (17, 3, np.nan) if fmt == "npy" else (530, 0, np.inf)
    bad[bad_row, bad_col] = value
    if fmt == "npy":
        path, y_arg = tmp_path / "X.npy", y
        np.save(path, bad)
    else:
        path, y_arg = tmp_path / "X.h5", "y"
        with h5py.File(path, "w") as f:
            f.create_dataset("X", data=bad, chunks=(50, N))
            f.create_dataset("y", data=y)
    with pytest.raises(ValueError, match="X must be finite"):
        jl.fit(bad, y, ADAM)
    with pytest.raises(ValueError, match=rf"X must be finite, got {value} in row {bad_row} "
                                         rf"\(0-based\), feature {bad_col} of {path}"):
        jl.fit_streaming(path, y_arg, ADAM, memory_budget_bytes=40_000)


def test_a_float64_value_overflowing_float32_is_the_fit_error_naming_the_row(problem, tmp_path):
    """As jaxlogreg.fit says: finite in the file, inf once cast to the fit's float32."""
    X, y, _ = problem
    bad = X.astype(np.float64)
    bad[41, 2] = 1e39
    path = tmp_path / "X.npy"
    np.save(path, bad)
    with pytest.raises(ValueError, match=r"X must be finite in float32, .* use dtype='float64'"):
        jl.fit(bad, y, ADAM, dtype="float32")
    with pytest.raises(ValueError, match=rf"X must be finite in float32, but 1e\+39 in row 41 "
                                         rf"\(0-based\), feature 2 of {path} overflows it"):
        jl.fit_streaming(path, y, ADAM, dtype="float32", memory_budget_bytes=40_000)
    assert jl.fit_streaming(path, y, ADAM, memory_budget_bytes=40_000).status != "diverged"


def test_budget_too_small_is_a_clear_error(npy_files):
    with pytest.raises(ValueError, match=r"memory_budget_bytes=1000 is too small.*3 batches"):
        jl.fit_streaming(npy_files[0], npy_files[1], ADAM, memory_budget_bytes=1000)


def test_needs_a_batch_size_and_an_existing_file(npy_files, tmp_path):
    with pytest.raises(ValueError, match="batch_size must be set"):
        jl.fit_streaming(npy_files[0], npy_files[1], jl.TrainConfig(solver="lbfgs"))
    with pytest.raises(FileNotFoundError, match="no such data file"):
        jl.fit_streaming(tmp_path / "missing.npy", npy_files[1], ADAM)
    with pytest.raises(KeyError, match="no dataset 'features'"):
        path = tmp_path / "d.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("X", data=np.zeros((4, 2)))
        jl.fit_streaming(path, "y", ADAM, x_key="features")


def test_reader_errors_reach_the_caller(problem):
    X, y, _ = problem

    class Broken:
        shape, dtype = X.shape, X.dtype

        def __getitem__(self, index):
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        jl.fit_streaming(Broken(), y, ADAM, memory_budget_bytes=40_000)


def test_row_source_reads_rows_by_chunk(problem, hdf5_file):
    X = problem[0].astype(np.float64)
    with h5py.File(hdf5_file, "r") as f:
        rows = RowSource(f["X"])
        assert rows.chunk_rows == 50
        wanted = np.asarray([0, 3, 49, 50, 51, 700, 1002])
        np.testing.assert_array_equal(rows.read_rows(wanted), X[wanted])


def _damaged_copy(source, target, how: str):
    """``source``'s bytes cut in half ("cut") or with 3000 bytes overwritten in the middle."""
    data = bytearray(source.read_bytes())
    if how == "cut":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle : middle + 3000] = b"\x55" * 3000
    target.write_bytes(bytes(data))
    return target


def test_truncated_or_damaged_files_are_errors_naming_them(npy_files, hdf5_file, tmp_path):
    X_path, y_path = npy_files
    cut = _damaged_copy(X_path, tmp_path / "cut.npy", "cut")
    with pytest.raises(ValueError, match=f"^{cut}: not a readable .npy array .*mmap length"):
        jl.fit_streaming(cut, y_path, ADAM)
    cut_y = _damaged_copy(y_path, tmp_path / "cut_y.npy", "cut")
    with pytest.raises(ValueError, match=f"^{cut_y}: not a readable .npy array"):
        jl.fit_streaming(X_path, cut_y, ADAM)
    cut_h5 = _damaged_copy(hdf5_file, tmp_path / "cut.h5", "cut")
    with pytest.raises(ValueError, match=f"^{cut_h5}: not a readable HDF5 file .*truncated"):
        jl.fit_streaming(cut_h5, "y", ADAM)
    damaged = _damaged_copy(hdf5_file, tmp_path / "damaged.h5", "overwrite")  # gzip chunks
    with pytest.raises(OSError, match=f"^cannot read {damaged}:X: "):
        jl.fit_streaming(damaged, "y", ADAM)


def test_paths_that_are_not_regular_files_are_refused_by_name(npy_files, tmp_path):
    from jaxlogreg.data.files import NotRegularFileError

    (tmp_path / "dir.npy").mkdir()
    (tmp_path / "dev.npy").symlink_to("/dev/null")
    with pytest.raises(NotRegularFileError, match=f"^data file {tmp_path / 'dir.npy'} is a dir"):
        jl.fit_streaming(tmp_path / "dir.npy", npy_files[1], ADAM)
    with pytest.raises(NotRegularFileError, match=f"^y file {tmp_path / 'dev.npy'} is a char"):
        jl.fit_streaming(npy_files[0], tmp_path / "dev.npy", ADAM)


def test_the_start_loss_is_that_of_the_epoch_s_first_batch(problem, npy_files, monkeypatch):
    """J₀ (the divergence check's reference) is the loss of the first minibatch at the
    starting parameters, as in memory; not that of another batch."""
    import jax
    import jax.numpy as jnp

    from jaxlogreg.scale import streaming
    from jaxlogreg.training import minibatch, pipeline, spec
    from jaxlogreg.training.data import device_data
    from jaxlogreg.training.problem import validate

    X, y, _ = problem
    start = jl.Params(np.linspace(-0.5, 0.5, N).astype(np.float32), np.float32(0.3))
    seen = []
    finish = streaming._finish_epoch_jit

    def spy(state, value, first, *args, **kwargs):
        seen.append(float(first))
        return finish(state, value, first, *args, **kwargs)

    monkeypatch.setattr(streaming, "_finish_epoch_jit", spy)
    config = ADAM.replace(max_iter=1, random_state=3)
    jl.fit_streaming(npy_files[0], npy_files[1], config, init_params=start)
    data = device_data(validate(X, y), bucket=False)
    loop_spec = spec.LoopSpec.of(config, BATCH)
    hyper = pipeline.hyper_of(config, 0.0, "float32")
    opt_state = spec.optimizer(loop_spec, hyper).init(start)
    key = jax.random.wrap_key_data(jax.random.key_data(jax.random.key(np.uint32(3))))
    _, first, _, _ = minibatch.minibatch_epoch(
        jl.Params(jnp.asarray(start.w), jnp.asarray(start.b)), opt_state, key, jnp.int32(0),
        data.data, hyper, loop_spec)
    assert seen == pytest.approx([float(first)], rel=1e-6)
