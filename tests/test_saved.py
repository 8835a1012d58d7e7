"""jaxlogreg.saved: the dense training loop saved with jax.export is read back instead of traced,
gives the same fit as the jitted loop, and survives a corrupt file."""

from __future__ import annotations

import struct

import jax
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg import cache, compiler, saved
from jaxlogreg.core import native
from jaxlogreg.training import loop


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A fresh cache folder, and an empty record of the loops this process compiled, as in a
    new process."""
    monkeypatch.setattr(cache, "folder", lambda environ=None: tmp_path)
    monkeypatch.setattr(loop.run_segment, "_compiled", {})
    return tmp_path / saved.FOLDER_NAME


def _problem(m=200, n=5, seed=0):
    """float32 data (tests/test_train.py counts the programs of a first float64 fit)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(np.float32)
    return X, (X @ rng.normal(size=n) + rng.normal(size=m) > 0).astype(int)


def _no_tracing(*args, **kwargs):
    raise AssertionError("the loop was traced")


def test_a_saved_loop_is_read_back_instead_of_traced(folder, monkeypatch):
    X, y = _problem()
    first = jl.fit(X, y, solver="lbfgs")
    files = sorted(folder.iterdir())
    assert len(files) == 1 and files[0].name.startswith("run-")
    monkeypatch.setattr(loop.run_segment, "_compiled", {})  # a new process
    monkeypatch.setattr(loop, "_loop_body", _no_tracing)
    again = jl.fit(X, y, solver="lbfgs")
    np.testing.assert_array_equal(again.params.w, first.params.w)
    assert again.loss == first.loss and sorted(folder.iterdir()) == files


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_the_saved_loop_fits_the_same_model_as_the_jitted_one(folder, monkeypatch, solver):
    X, y = _problem(seed=1)
    via_saved = jl.fit(X, y, solver=solver, max_iter=50, sample_weight=np.linspace(0.5, 2, 200))
    assert loop.run_segment._compiled and any(folder.iterdir())
    monkeypatch.setattr(cache, "folder", lambda environ=None: None)  # the cache is off
    jitted = jl.fit(X, y, solver=solver, max_iter=50, sample_weight=np.linspace(0.5, 2, 200))
    np.testing.assert_array_equal(via_saved.params.w, jitted.params.w)  # one HLO
    np.testing.assert_array_equal(via_saved.loss_history, jitted.loss_history)
    assert (via_saved.n_iter, via_saved.status) == (jitted.n_iter, jitted.status)


def test_a_corrupt_file_is_traced_and_written_again(folder, monkeypatch):
    X, y = _problem(seed=2)
    expected = jl.fit(X, y)
    (path,) = folder.iterdir()
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(struct.error):
        jax.export.deserialize(bytearray(path.read_bytes()))
    monkeypatch.setattr(loop.run_segment, "_compiled", {})
    np.testing.assert_array_equal(jl.fit(X, y).params.w, expected.params.w)
    assert jax.export.deserialize(bytearray(path.read_bytes())).in_avals  # whole again


def test_a_file_holding_another_program_is_traced_and_written_again(folder, monkeypatch):
    X, y = _problem(seed=6)
    expected = jl.fit(X, y)
    (mine,) = folder.iterdir()
    jl.fit(np.tile(X, (4, 1)), np.tile(y, 4))  # another padded shape: another file
    (other,) = set(folder.iterdir()) - {mine}
    mine.write_bytes(other.read_bytes())  # reads fine, but takes other shapes
    monkeypatch.setattr(loop.run_segment, "_compiled", {})
    np.testing.assert_array_equal(jl.fit(X, y).params.w, expected.params.w)
    assert mine.read_bytes() != other.read_bytes()


def test_one_program_per_shape_and_settings(folder):
    X, y = _problem(seed=3)
    jl.fit(X, y, max_iter=30)
    jl.fit(X[:-3], y[:-3], max_iter=30, C=0.5)  # same padded shape, a numeric setting: reused
    assert loop.run_segment._compiled.__len__() == 1 and len(list(folder.iterdir())) == 1
    jl.fit(np.tile(X, (4, 1)), np.tile(y, 4), max_iter=30)  # a new padded shape
    jl.fit(X, y, max_iter=30, solver="gd")  # a new solver (static)
    assert len(loop.run_segment._compiled) == 3 and len(list(folder.iterdir())) == 3


def test_the_key_names_what_decides_the_program():
    import jax.numpy as jnp

    def key(name="run", static="spec", leaves=None, platform="cpu"):
        leaves = [jnp.zeros(3)] if leaves is None else leaves
        return saved.program_key(name, static, "tree", leaves, platform)

    assert key() == key(leaves=[jnp.ones(3)])  # values: no
    others = [key(static="other"), key(leaves=[jnp.zeros(4)]),
              key(leaves=[jnp.zeros(3, jnp.int32)]), key(leaves=[jnp.asarray(0.0, jnp.float32)]),
              key(leaves=[0.0]),  # weak type
              key(name="init"), key(platform="cuda")]
    assert len({key(), *others}) == 8


def test_a_program_that_cannot_be_exported_is_jitted(folder, monkeypatch):
    def refuse(*args, **kwargs):
        raise NotImplementedError("cannot export this")

    monkeypatch.setattr(jax.export, "export", refuse)
    X, y = _problem(seed=9)
    result = jl.fit(X, y)
    assert result.status == "converged" and not folder.exists()
    assert loop.run_segment._compiled and loop.run_segment._cache_size() >= 1


def test_off_with_the_cache_or_without_flatbuffers(tmp_path, monkeypatch):
    assert cache.folder({cache.OPT_OUT: "1"}) is None
    monkeypatch.setattr(cache, "folder", lambda environ=None: tmp_path)
    monkeypatch.setattr(saved, "_can_serialize", lambda: False)
    X, y = _problem(seed=4)
    assert jl.fit(X, y).status == "converged"
    assert not (tmp_path / saved.FOLDER_NAME).exists()


def test_an_unknown_xla_option_falls_back_to_the_defaults(folder, monkeypatch):
    monkeypatch.setattr(compiler, "XLA_OPTIONS", {"xla_cpu_no_such_option": False})
    monkeypatch.setattr(compiler.Jitted, "options_known", True)
    X, y = _problem(seed=5)
    assert jl.fit(X, y).status == "converged"
    assert compiler.Jitted.options_known is False and loop.run_segment._compiled


def test_the_loop_on_sparse_x_is_saved_too_and_fits_the_same_model(folder, monkeypatch):
    import scipy.sparse as sp

    X = sp.random(300, 40, density=0.1, format="csr", random_state=7, dtype=np.float32)
    y = (np.asarray(X.sum(axis=1)).ravel() > np.median(np.asarray(X.sum(axis=1)))).astype(int)
    via_saved = jl.fit(X, y, penalty="l1", C=10.0, solver="proximal", max_iter=60)
    assert [p.name.split("-")[0] for p in folder.iterdir()] == ["run_sparse"]
    monkeypatch.setattr(loop.run_segment_sparse, "_compiled", {})  # a new process: read back
    body = loop._loop_body
    monkeypatch.setattr(loop, "_loop_body", _no_tracing)
    again = jl.fit(X, y, penalty="l1", C=10.0, solver="proximal", max_iter=60)
    monkeypatch.setattr(loop, "_loop_body", body)
    monkeypatch.setattr(cache, "folder", lambda environ=None: None)  # the cache is off
    jitted = jl.fit(X, y, penalty="l1", C=10.0, solver="proximal", max_iter=60)
    np.testing.assert_array_equal(via_saved.params.w, again.params.w)
    np.testing.assert_array_equal(via_saved.params.w, jitted.params.w)


def test_the_cross_validation_path_is_saved_too(folder, monkeypatch):
    from jaxlogreg.training import path

    monkeypatch.setattr(path._run_path_program, "_compiled", {})
    X, y = _problem(m=240, seed=8)
    Cs = [0.1, 1.0, 10.0]
    folds = [np.arange(m) for m in (80, 160, 240)]  # training rows of three fits
    via_saved = jl.fit_path(X, y, Cs, folds=folds)
    assert [p.name.split("-")[0] for p in folder.iterdir()] == ["path"]
    monkeypatch.setattr(path._run_path_program, "_compiled", {})  # a new process: read back
    evaluate = path.batched_value_and_grad
    monkeypatch.setattr(path, "batched_value_and_grad", _no_tracing)
    again = jl.fit_path(X, y, Cs, folds=folds)
    monkeypatch.setattr(path, "batched_value_and_grad", evaluate)
    monkeypatch.setattr(cache, "folder", lambda environ=None: None)  # the cache is off
    jitted = jl.fit_path(X, y, Cs, folds=folds)
    np.testing.assert_array_equal(again.params.w, via_saved.params.w)
    np.testing.assert_array_equal(jitted.params.w, via_saved.params.w)
    np.testing.assert_array_equal(jitted.n_iter, via_saved.n_iter)


def test_the_saved_sparse_loop_keeps_xlas_default_options_as_its_jitted_route(folder, monkeypatch):
    import scipy.sparse as sp

    monkeypatch.setattr(compiler, "XLA_OPTIONS", {"xla_cpu_no_such_option": False})
    monkeypatch.setattr(compiler.Jitted, "options_known", True)
    monkeypatch.setattr(loop.run_segment_sparse, "_compiled", {})
    X = sp.random(200, 30, density=0.1, format="csr", random_state=3, dtype=np.float32)
    jl.fit(X, (np.arange(200) % 2).astype(int), max_iter=20)
    assert loop.run_segment_sparse._compiled and any(folder.iterdir())
    assert compiler.Jitted.options_known is True  # the unknown option was never tried


@pytest.mark.skipif(native._compiler() is None or jax.default_backend() != "cpu",
                    reason="no C compiler here, or JAX's default backend is not the CPU")
def test_a_loop_with_the_c_kernel_is_saved_and_read_back(folder, monkeypatch):
    """Its custom call is allowed in the export; a later process (which registers the kernel
    when it chooses it) reads the loop back instead of tracing it."""
    from jaxlogreg.training import pipeline

    monkeypatch.setattr(pipeline, "kernel_for", lambda data: "native")
    X, y = _problem(seed=4)
    first = jl.fit(X, y, solver="lbfgs")
    files = sorted(folder.iterdir())
    assert len(files) == 1 and b"jaxlogreg_value_and_grad_f32" in files[0].read_bytes()
    monkeypatch.setattr(loop.run_segment, "_compiled", {})  # a new process
    monkeypatch.setattr(loop, "_loop_body", _no_tracing)
    again = jl.fit(X, y, solver="lbfgs")
    np.testing.assert_array_equal(again.params.w, first.params.w)
    assert again.loss == first.loss and sorted(folder.iterdir()) == files


def test_the_saved_loop_is_compiled_with_the_options_of_its_size(folder, monkeypatch,
                                                                 quick_flags):
    X, y = _problem(seed=6)  # 200 rows, padded to 512; at most 16 iterations
    small = jl.fit(X, y, max_iter=10)
    monkeypatch.setattr(loop, "QUICK_COMPILE_WORK", 512 * 16 - 1)
    large = jl.fit(X, y, max_iter=10)
    assert quick_flags == [True, True, True, False]  # (starting state, loop), twice
    assert len(list(folder.iterdir())) == 1  # one saved program: the options are not in it
    np.testing.assert_allclose(large.params.w, small.params.w, rtol=1e-5)
