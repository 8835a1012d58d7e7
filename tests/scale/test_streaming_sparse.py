"""Sparse X streamed from disk (an HDF5 CSR group): the same fit as the dense rows in memory,
never densified, checked as it is read."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg as jl
from jaxlogreg.scale import checkpoint, streaming
from jaxlogreg.scale.rows import open_rows
from jaxlogreg.scale.sparse_rows import SparseRowSource, save_sparse_hdf5

M, N, BATCH = 1003, 40, 64  # m not a multiple of the batch size: the last batch is padded


def _problem(m=M, n=N, density=0.1, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = sp.random_array((m, n), density=density, format="csr", rng=rng, dtype=dtype)
    X.data -= 0.5  # both signs; some rows are empty
    y = (X @ np.linspace(-2, 2, n) + 0.05 * rng.normal(size=m) > 0).astype(np.float64)
    return X, y


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    X, y = _problem()
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=M)
    path = tmp_path_factory.mktemp("sparse") / "data.h5"
    save_sparse_hdf5(path, X, y, sample_weight=weights)
    return X, y, weights, path


def _write_group(path, data, indices, indptr, attrs, y=None):
    with h5py.File(path, "w") as f:
        group = f.create_group("X")
        for name, values in (("data", data), ("indices", indices), ("indptr", indptr)):
            if values is not None:
                group.create_dataset(name, data=np.asarray(values))
        group.attrs.update(attrs)
        if y is not None:
            f.create_dataset("y", data=y)
    return path


def assert_same_fit(ref: jl.FitResult, res: jl.FitResult, rtol: float) -> None:
    np.testing.assert_allclose(res.params.w, ref.params.w, rtol=rtol, atol=rtol / 10)
    np.testing.assert_allclose(res.params.b, ref.params.b, rtol=rtol, atol=rtol / 10)
    np.testing.assert_allclose(res.loss_history, ref.loss_history, rtol=rtol)
    np.testing.assert_allclose(res.loss, ref.loss, rtol=rtol)
    assert (res.n_iter, res.status) == (ref.n_iter, ref.status)


SGD = jl.TrainConfig(solver="sgd", learning_rate=0.5, batch_size=BATCH, max_iter=3, tol=0.0,
                     C=10.0, random_state=0)


@pytest.mark.parametrize("precision", ["float64", pytest.param("float32", marks=pytest.mark.slow)])
def test_sparse_hdf5_matches_the_dense_in_memory_fit_without_recompiling(problem, precision):
    """Weighted SGD: fit_streaming on the CSR group (float64 values) equals jaxlogreg.fit on
    X.toarray() with the same batches, in float64 and in float32 (values cast as read); the
    final loss is summed over several blocks, and the step compiles once per entry bucket, not
    once per batch."""
    X, y, weights, path = problem
    config = SGD.replace(dtype=precision)
    ref = jl.fit(X.toarray().astype(precision), y, config, sample_weight=weights)
    before = streaming._stream_step_jit._cache_size()
    stats: dict = {}
    res = jl.fit_streaming(path, "y", config, sample_weight="sample_weight",
                           memory_budget_bytes=150_000, stats=stats)
    assert res.params.w.dtype == np.dtype(precision)
    assert_same_fit(ref, res, 1e-10 if precision == "float64" else 2e-5)
    assert stats["batches"] == 3 * -(-M // BATCH)
    # batches hold different entry counts, padded to a power of two: a compile per bucket
    assert 1 <= len(stats["entry_buckets"]) <= 2
    assert streaming._stream_step_jit._cache_size() - before <= len(stats["entry_buckets"])
    rows, handle = open_rows(path)
    plan = streaming.StreamPlan.of(rows, BATCH, np.dtype(precision).itemsize, 150_000, 4)
    handle.close()
    assert plan.block_rows < M  # the final loss was summed over several blocks


def test_l1_streams_with_exact_zeros_like_in_memory(problem):
    """Minibatch ISTA (penalty="l1", solver="gd") on streamed sparse rows: the in-memory
    dense result, with the same coefficients exactly zero."""
    X, y, _, path = problem
    config = jl.TrainConfig(penalty="l1", solver="gd", learning_rate=0.5, batch_size=BATCH,
                            max_iter=4, tol=0.0, C=0.05, random_state=3)
    ref = jl.fit(X.toarray(), y, config)
    res = jl.fit_streaming(path, "y", config, memory_budget_bytes=150_000)
    assert_same_fit(ref, res, 1e-10)
    zeros = res.params.w == 0
    assert 0 < zeros.sum() < N
    np.testing.assert_array_equal(zeros, ref.params.w == 0)


@pytest.mark.slow
def test_a_matrix_whose_dense_form_would_not_fit_in_memory_streams(tmp_path):
    """200,000 x 5,000,000: 4 TB dense in float32, 400,000 entries (4.8 MB) on disk."""
    m, n = 200_000, 5_000_000
    rng = np.random.default_rng(0)
    cols = np.sort(rng.integers(0, n, (m, 2)), axis=1)
    cols[:, 0] = rng.integers(0, 1000, m)  # an informative feature per row (and a noise one)
    X = sp.csr_array((np.ones(2 * m, np.float32), cols.reshape(-1), np.arange(0, 2 * m + 1, 2)),
                     shape=(m, n))
    y = (cols[:, 0] % 2).astype(np.float32)
    path = tmp_path / "wide.h5"
    save_sparse_hdf5(path, X, y)
    stats: dict = {}
    res = jl.fit_streaming(path, "y", solver="adam", learning_rate=0.5, batch_size=20_000,
                           max_iter=2, tol=0.0, C=np.inf, random_state=0, stats=stats)
    assert res.params.w.shape == (n,) and stats["batches"] == 20
    assert res.loss_history[1] < res.loss_history[0] < np.log(2)
    accuracy = np.mean(((X[:2000] @ res.params.w + res.params.b) > 0) == y[:2000])
    assert accuracy > 0.95


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_checkpointed_sparse_stream_resumes_and_its_fingerprint_is_the_dense_one(
    problem, tmp_path
):
    """Stopped after epoch 2's checkpoint and resumed: the uninterrupted run. The fingerprint
    (scipy products over blocks of rows) ties the checkpoint to the file's data."""
    X, y, _, path = problem
    config = SGD.replace(max_iter=4, random_state=5)
    uninterrupted = jl.fit_streaming(path, "y", config)

    def stop_at_epoch_3(epoch, loss):
        if epoch == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        jl.fit_streaming(path, "y", config, checkpoint=jl.Checkpointer(tmp_path, every=2),
                         callback=stop_at_epoch_3)
    assert checkpoint.latest_checkpoint(tmp_path).name == "ckpt-000000002.npz"
    epochs: list = []
    resumed = jl.fit_streaming(path, "y", config, checkpoint=jl.Checkpointer(tmp_path, every=2),
                               callback=lambda it, loss: epochs.append(it))
    assert epochs == [3, 4]
    np.testing.assert_array_equal(resumed.params.w, uninterrupted.params.w)
    np.testing.assert_array_equal(resumed.loss_history, uninterrupted.loss_history)
    # other rows in the file: refused
    other = tmp_path / "other.h5"
    save_sparse_hdf5(other, X[::-1], y[::-1])
    with pytest.raises(checkpoint.CheckpointMismatch, match="other data"):
        jl.fit_streaming(other, "y", config, checkpoint=jl.Checkpointer(tmp_path, every=2))
    # the fingerprint (scipy products over blocks) is the one of the same rows stored dense
    dense = tmp_path / "dense.npy"
    np.save(dense, X.toarray())
    prints = []
    for source in (path, dense):
        rows, handle = open_rows(source)
        data = streaming._prepare(rows, handle, y, None, None, config, 200_000, 4)
        prints.append(data.fingerprint())
        if handle is not None:
            handle.close()
    np.testing.assert_allclose(prints[0], prints[1], rtol=1e-12, atol=1e-12)


def _count_slices(rows: SparseRowSource) -> list:
    """The sizes of the slices ``rows`` reads from now on."""
    sizes: list = []
    read = rows._read

    def counted(lo, hi):
        sizes.append(hi - lo)
        return read(lo, hi)

    rows._read = counted
    return sizes


def test_rows_are_read_in_any_order_from_every_layout(problem, tmp_path):
    """read_rows/read_block give X's rows (canonical CSR) from: the saved group, one with
    unsorted and repeated column indices (summed, as scipy does), a chunked and compressed
    one (h5sparse attributes), an open h5py group, and a scipy matrix in memory. Scattered
    rows are read as one point selection, runs of nearby rows as slices (cut at ``span``)."""
    X, y, _, path = problem
    run = np.arange(600, 900)[::-1]  # ~1200 entries close together: read as slices
    wanted = np.concatenate([[500, 3, 3, 1002, 0, 499, 501, 17], run, [100]])
    expected = X.toarray()[wanted]

    # the same matrix with each row's entries reversed and its first entry split in two
    data, indices, indptr = [], [], [0]
    for i in range(M):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        d, j = list(X.data[lo:hi][::-1]), list(X.indices[lo:hi][::-1])
        if d:
            d, j = [d[0] / 2, *d[1:], d[0] / 2], [j[0], *j[1:], j[0]]
        data += d
        indices += j
        indptr.append(len(data))
    messy = _write_group(tmp_path / "messy.h5", data, indices, indptr, {"shape": X.shape})
    chunked = tmp_path / "chunked.h5"
    with h5py.File(chunked, "w") as f:
        group = f.create_group("features")
        for name in ("data", "indices", "indptr"):
            group.create_dataset(name, data=getattr(X, name), chunks=(64,), compression="gzip")
        group.attrs.update({"h5sparse_format": "csr", "h5sparse_shape": X.shape})

    sources = [open_rows(path), open_rows(messy), open_rows(chunked, "features")]
    with h5py.File(path, "r") as f:
        sources += [open_rows(f["X"]), open_rows(X.tocoo())]
        for rows, handle in sources:
            assert isinstance(rows, SparseRowSource) and rows.shape == (M, N)
            slices = _count_slices(rows)
            got = rows.read_rows(wanted)
            assert len(slices) == 1 and slices[0] >= 1000  # the run; the rest: one selection
            assert isinstance(got, sp.csr_array) and got.has_canonical_format
            np.testing.assert_allclose(got.toarray(), expected, rtol=1e-15)
            rows.span = 37  # slices of at most 37 entries (or one row)
            np.testing.assert_allclose(rows.read_rows(wanted).toarray(), expected, rtol=1e-15)
            assert len(slices) > 20 and max(slices[1:]) <= 37
            np.testing.assert_allclose(rows.read_block(10, 300).toarray(), X.toarray()[10:300],
                                       rtol=1e-15)
            if handle is not None:
                handle.close()
    # an open group streams, with y looked up by name in its file
    with h5py.File(messy, "a") as f:
        f.create_dataset("y", data=y)
    config = jl.TrainConfig(solver="sgd", learning_rate=0.5, batch_size=BATCH, max_iter=1,
                            tol=0.0, C=10.0, random_state=0)
    with h5py.File(messy, "r") as f:
        res = jl.fit_streaming(f["X"], "y", config)
    np.testing.assert_allclose(res.params.w, jl.fit(X.toarray(), y, config).params.w, rtol=1e-10)


def _bad_file(tmp_path, case):
    X, y = _problem(m=20, n=6, density=0.5)
    data, indices, indptr = X.data.copy(), X.indices.copy(), X.indptr.copy()
    attrs: dict = {"shape": X.shape, "encoding-type": "csr_matrix"}
    row = 7
    k = indptr[row]  # the first entry of row 7
    if case == "nan":
        data[k + 1] = np.nan
    elif case == "inf":
        data[k] = -np.inf
    elif case == "index_too_large":
        indices[k] = 6
    elif case == "negative_index":
        indices[k] = -1
    elif case == "int_values":
        data = np.ones(data.size, np.int64)
    elif case == "indptr_length":
        indptr = indptr[:-1]
    elif case == "indptr_decreasing":
        indptr[row + 1] = indptr[row] - 1
    elif case == "indptr_end":
        indptr[-1] -= 1
    elif case == "no_shape":
        del attrs["shape"]
    elif case == "no_indptr":
        indptr = None
    elif case == "csc":
        attrs["encoding-type"] = "csc_matrix"
    return _write_group(tmp_path / f"{case}.h5", data, indices, indptr, attrs, y), X, y


@pytest.mark.parametrize(
    ("case", "error", "match"),
    [
        ("nan", ValueError, r"X must be finite, got nan in row 7 \(0-based\), feature \d of "),
        ("inf", ValueError, r"X must be finite, got -inf in row 7 \(0-based\), feature \d of "),
        ("index_too_large", ValueError, r"column index 6 out of range \[0, 6\) in row 7"),
        ("negative_index", ValueError, r"column index -1 out of range \[0, 6\) in row 7"),
        ("int_values", TypeError, "must hold floating-point numbers, got dtype int64"),
        ("indptr_length", ValueError, r"indptr must have m \+ 1 = 21 entries"),
        ("indptr_decreasing", ValueError, "indptr must not decrease.* at row 7"),
        ("indptr_end", ValueError, "indptr must end at the number of stored entries"),
        ("no_shape", ValueError, "needs a 'shape' attribute"),
        ("no_indptr", ValueError, r"missing \['indptr'\]"),
        ("csc", ValueError, "stored as 'csc_matrix'; only CSR"),
    ],
)
def test_bad_sparse_files_are_refused_naming_the_file_and_key(tmp_path, case, error, match):
    path, _, _ = _bad_file(tmp_path, case)
    with pytest.raises(error, match=match) as info:
        jl.fit_streaming(path, "y", solver="sgd", batch_size=8, max_iter=2)
    assert f"{path}:X" in str(info.value)


def test_overflow_and_a_small_budget_are_clear_errors(tmp_path):
    X, y = _problem(m=50, n=6, density=0.5)
    X.data[X.indptr[9]] = 1e300  # fine in float64, inf in float32
    path = tmp_path / "big_values.h5"
    save_sparse_hdf5(path, X, y)
    with pytest.raises(ValueError, match=rf"X must be finite in float32, but 1e\+300 in row 9 "
                                         rf"\(0-based\) of {path}:X overflows it"):
        jl.fit_streaming(path, "y", solver="sgd", batch_size=8, max_iter=2, dtype="float32")
    with pytest.raises(ValueError, match=r"memory_budget_bytes=1000 is too small.*3 batches.*"
                                         r"non-zeros per row on average"):
        jl.fit_streaming(path, "y", solver="sgd", batch_size=8, max_iter=2, memory_budget_bytes=1000)


def test_a_damaged_sparse_file_is_an_error_naming_it(tmp_path):
    X, y = _problem(m=400, n=30, density=0.3)
    path = tmp_path / "gzip.h5"
    save_sparse_hdf5(path, X, y, compression="gzip", chunks=(256,))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = b"\x55" * 3000  # inside the compressed chunks
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match=f"^cannot read {path}:X: "):
        jl.fit_streaming(path, "y", solver="sgd", batch_size=8, max_iter=2)
