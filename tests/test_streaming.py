"""Out-of-core training (jaxlogreg.streaming) matches in-memory minibatch training."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from jaxlogreg import streaming, train

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


def assert_same_fit(ref: train.FitResult, res: train.FitResult) -> None:
    np.testing.assert_allclose(res.params.w, ref.params.w, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(res.params.b, ref.params.b, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(res.loss_history, ref.loss_history, rtol=1e-6)
    np.testing.assert_allclose(res.loss, ref.loss, rtol=1e-6)
    assert (res.n_iter, res.status) == (ref.n_iter, ref.status)


ADAM = train.TrainConfig(solver="adam", learning_rate=0.05, batch_size=BATCH, max_iter=4, tol=0.0)


def test_npy_memmap_larger_than_budget_matches_in_memory(problem, npy_files):
    X, y, _ = problem
    budget = 40_000
    assert X.nbytes > budget  # the file does not fit the budget: it must be streamed
    ref = train.fit(X, y, ADAM, seed=5)
    stats: dict = {}
    epochs: list = []
    res = streaming.fit_streaming(
        npy_files[0], npy_files[1], ADAM, seed=5, memory_budget_bytes=budget, stats=stats,
        callback=lambda it, loss: epochs.append((it, loss)),
    )
    assert_same_fit(ref, res)
    assert stats["batches"] == ADAM.max_iter * -(-M // BATCH)
    assert 1 <= stats["queue_size"] and (stats["queue_size"] + 2) * 64 * N * 8 <= budget
    assert [it for it, _ in epochs] == [1, 2, 3, 4]  # the epoch loss is reported like fit's
    np.testing.assert_allclose([loss for _, loss in epochs], ref.loss_history, rtol=1e-6)


def test_chunked_hdf5_with_weights_matches_in_memory(problem, hdf5_file):
    X, y, sample_weight = problem
    config = train.TrainConfig(solver="sgd", learning_rate=0.05, batch_size=BATCH, max_iter=3,
                               tol=0.0, l2=1e-3)
    # the file holds float64: the in-memory path casts to float32 the same way
    ref = train.fit(X.astype(np.float64), y, config, sample_weight=sample_weight, seed=9)
    res = streaming.fit_streaming(hdf5_file, "y", config, sample_weight="w", seed=9,
                                  memory_budget_bytes=60_000)
    assert_same_fit(ref, res)


def test_stops_on_convergence_like_in_memory(problem, npy_files):
    X, y, _ = problem
    config = train.TrainConfig(solver="adam", learning_rate=0.05, batch_size=BATCH, max_iter=50,
                               tol=1e-2)
    ref = train.fit(X, y, config, seed=5)
    res = streaming.fit_streaming(npy_files[0], y, config, seed=5, memory_budget_bytes=40_000)
    assert ref.status == "converged" and ref.n_iter < 50
    assert_same_fit(ref, res)


def test_budget_too_small_is_a_clear_error(npy_files):
    with pytest.raises(ValueError, match=r"memory_budget_bytes=1000 is too small.*3 batches"):
        streaming.fit_streaming(npy_files[0], npy_files[1], ADAM, memory_budget_bytes=1000)


def test_needs_a_batch_size_and_an_existing_file(npy_files, tmp_path):
    with pytest.raises(ValueError, match="batch_size must be set"):
        streaming.fit_streaming(npy_files[0], npy_files[1], train.TrainConfig(solver="lbfgs"))
    with pytest.raises(FileNotFoundError, match="no such data file"):
        streaming.fit_streaming(tmp_path / "missing.npy", npy_files[1], ADAM)
    with pytest.raises(KeyError, match="no dataset 'features'"):
        path = tmp_path / "d.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("X", data=np.zeros((4, 2)))
        streaming.fit_streaming(path, "y", ADAM, x_key="features")


def test_reader_errors_reach_the_caller(problem):
    X, y, _ = problem

    class Broken:
        shape, dtype = X.shape, X.dtype

        def __getitem__(self, index):
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        streaming.fit_streaming(Broken(), y, ADAM, memory_budget_bytes=40_000)


def test_row_source_reads_rows_by_chunk(problem, hdf5_file):
    X = problem[0].astype(np.float64)
    with h5py.File(hdf5_file, "r") as f:
        rows = streaming.RowSource(f["X"])
        assert rows.chunk_rows == 50
        wanted = np.asarray([0, 3, 49, 50, 51, 700, 1002])
        np.testing.assert_array_equal(rows.read_rows(wanted), X[wanted])
