"""Fitting: minibatches, weights, dtypes, warm starts, no recompilation.

Each solver of the table in each mode (the optimum, no intercept, manual and autodiff gradients)
is tests/training/test_solvers.py; the stopping and divergence rules have their own file
(test_stopping.py), the settings too (test_settings.py)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg import kernels
from jaxlogreg.core import reference
from jaxlogreg.core.loss import objective_t
from jaxlogreg.core.model import Params
from jaxlogreg.training import loop, minibatch
from jaxlogreg.training import spec as loop_spec
from jaxlogreg.training.pipeline import hyper_of
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.solvers import make_optimizer


def C_of(l2, m):
    """scikit-learn's C for the mean-loss penalty λ on m unit-weight samples."""
    return 1.0 / (l2 * m)


def _problem(m=300, n=6, seed=0, n_classes=2, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    if n_classes == 2:
        w = rng.normal(size=n)
        y = (rng.random(m) < 1 / (1 + np.exp(-(X @ w)))).astype(dtype)
    else:
        W = rng.normal(size=(n, n_classes))
        logits = X @ W
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = np.array([rng.choice(n_classes, p=row) for row in p], dtype=np.int32)
    return X, y


def test_gd_matches_the_course_reference_in_float64():
    X, y = _problem(m=50, n=4, dtype=np.float64)
    w_ref, b_ref, costs_ref = reference.gradient_descent(X, y, learning_rate=0.3, num_iterations=25)
    result = jl.fit(X, y, solver="gd", learning_rate=0.3, max_iter=25, tol=0.0, C=np.inf)
    assert result.n_iter == 25 and result.status == "max_iter"
    np.testing.assert_allclose(result.loss_history, costs_ref, rtol=1e-13)
    np.testing.assert_allclose(result.params.w, w_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(float(result.params.b), b_ref, rtol=1e-12, atol=1e-14)


def test_float64_fit_does_not_leak_x64():
    X, y = _problem()
    result = jl.fit(X, y, max_iter=3, dtype="float64")
    assert result.params.w.dtype == np.float64
    assert not jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float32


def test_loss_change_criterion_stops_on_relative_change():
    X, y = _problem()
    result = jl.fit(X, y, solver="gd", learning_rate=0.5, tol=1e-6, tol_criterion="loss", max_iter=5000)
    assert result.status == "converged"
    last, before = result.loss_history[-1], result.loss_history[-2]
    assert abs(before - last) <= 1e-6 * abs(last)
    assert np.all(np.abs(np.diff(result.loss_history[:-1])) > 1e-6 * np.abs(result.loss_history[1:-1]))


def test_max_iter_zero_tolerance_runs_exactly_max_iter():
    X, y = _problem()
    result = jl.fit(X, y, solver="adam", learning_rate=0.01, max_iter=17, tol=0.0)
    assert (result.n_iter, result.status, result.loss_history.shape) == (17, "max_iter", (17,))


def test_no_recompilation_for_same_shapes_and_settings():
    X, y = _problem(seed=1)
    config = TrainConfig(solver="adam", learning_rate=0.01, max_iter=40)
    jl.fit(X, y, config)
    before = loop.run_segment._cache_size()
    X2, y2 = _problem(seed=2)
    jl.fit(X2, y2, config)
    jl.fit(X2, y2, config.replace(learning_rate=0.02, tol=1e-3, C=0.1))
    result = jl.fit(X2, y2, config.replace(max_iter=50, tol=0.0))
    assert result.n_iter == 50 and len(result.loss_history) == 50
    jl.fit(X2[:-1], y2[:-1], config)  # small problems share padded shapes: no new program
    assert loop.run_segment._cache_size() == before
    jl.fit(np.tile(X2, (2, 1)), np.tile(y2, 2), config)  # a new padded shape compiles once more
    assert loop.run_segment._cache_size() == before + 1


def test_progress_callback_segments_reuse_one_program():
    X, y = _problem(seed=3)
    seen = []
    config = TrainConfig(solver="gd", learning_rate=0.5, max_iter=100, tol=0.0)
    whole = jl.fit(X, y, config)
    before = loop.run_segment._cache_size()
    pieces = jl.fit(X, y, config, callback=lambda it, loss: seen.append((it, loss)), n_segments=4)
    assert [it for it, _ in seen] == [25, 50, 75, 100]
    assert loop.run_segment._cache_size() == before
    np.testing.assert_array_equal(whole.loss_history, pieces.loss_history)
    np.testing.assert_array_equal(whole.params.w, pieces.params.w)


def test_divergence_stops_with_status_and_last_good_params():
    rng = np.random.default_rng(0)
    X = (100 * rng.normal(size=(200, 5))).astype(np.float32)
    y = (rng.random(200) < 0.5).astype(np.float32)
    result = jl.fit(X, y, solver="gd", learning_rate=1e37, max_iter=50, tol=0.0)
    assert result.status == "diverged"
    assert not np.isfinite(result.loss_history[-1])
    assert np.all(np.isfinite(result.params.w)) and np.isfinite(result.loss)
    # The returned parameters are the ones whose loss was recorded last as finite.
    finite = result.loss_history[np.isfinite(result.loss_history)]
    assert result.loss == pytest.approx(float(finite[-1]), rel=1e-6)


def test_minibatch_divergence_reverts_the_epoch():
    rng = np.random.default_rng(0)
    X = (100 * rng.normal(size=(200, 5))).astype(np.float32)
    y = (rng.random(200) < 0.5).astype(np.float32)
    result = jl.fit(X, y, solver="gd", batch_size=32, learning_rate=1e37, max_iter=5, tol=0.0)
    assert result.status == "diverged"
    assert np.all(np.isfinite(result.params.w))


def test_minibatches_are_reproducible_and_keep_every_row():
    X, y = _problem(m=101)
    kwargs = {"solver": "gd", "batch_size": 16, "learning_rate": 0.5, "max_iter": 5, "tol": 0.0}
    a = jl.fit(X, y, random_state=7, **kwargs)
    b = jl.fit(X, y, random_state=7, **kwargs)
    c = jl.fit(X, y, random_state=8, **kwargs)
    np.testing.assert_array_equal(a.params.w, b.params.w)
    assert not np.array_equal(a.params.w, c.params.w)
    indices, mask = minibatch.epoch_batches(jax.random.key(7), jnp.asarray(0), 101, 16)
    assert indices.shape == (7, 16)
    assert sorted(np.asarray(indices)[np.asarray(mask)].tolist()) == list(range(101))


@pytest.mark.slow
def test_minibatch_loop_equals_a_host_loop_over_the_same_batches():
    X, y = _problem(m=70, n=3)
    config = TrainConfig(
        solver="adam", batch_size=16, learning_rate=0.05, max_iter=3, tol=0.0, random_state=3
    )
    result = jl.fit(X, y, config)
    spec, hyper = loop.LoopSpec.of(config, 16), hyper_of(config, config.l2(70), "float32")
    params = Params(jnp.zeros(3), jnp.zeros(()))
    opt_state = make_optimizer("adam", hyper.learning_rate).init(params)
    Xt, yj = jnp.asarray(X).T, jnp.asarray(y)
    key = jax.random.key(3)
    for epoch in range(3):
        indices, mask = minibatch.epoch_batches(key, jnp.asarray(epoch), 70, 16)
        for idx, msk in zip(indices, mask, strict=True):
            batch = loop.TrainData(Xt[:, idx], yj[idx], msk.astype(jnp.float32))
            params, opt_state, _, _ = minibatch.minibatch_update(params, opt_state, batch, hyper,
                                                                 spec)
    np.testing.assert_allclose(result.params.w, params.w, rtol=1e-5, atol=1e-6)


def test_sample_weights_equal_repeated_rows():
    X, y = _problem(m=40, n=3, dtype=np.float64)
    counts = np.random.default_rng(1).integers(1, 4, size=40)
    kwargs = {"solver": "lbfgs", "C": C_of(1e-2, counts.sum()), "tol": 1e-10, "max_iter": 200,
                  "dtype": "float64"}
    weighted = jl.fit(X, y, sample_weight=counts.astype(float), **kwargs)
    repeated = jl.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts), **kwargs)
    np.testing.assert_allclose(weighted.params.w, repeated.params.w, rtol=1e-7, atol=1e-9)


@pytest.mark.slow
def test_multinomial_fit_matches_its_own_gradient_and_autodiff():
    X, y = _problem(n_classes=4)
    result = jl.fit(X, y, solver="lbfgs", C=C_of(1e-2, 300), tol=1e-6, max_iter=300,
                    dtype="float64")
    assert result.params.w.shape == (6, 4) and result.params.b.shape == (4,)
    assert result.status == "converged"
    with jax.enable_x64(True):
        Xt = jnp.asarray(X, jnp.float64).T
        auto = jax.grad(objective_t)(result.params, Xt, jnp.asarray(y), None, 1e-2)
        assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(auto)) <= 1e-6


def test_bfloat16_storage_stays_close_to_float32():
    X, y = _problem(m=500)
    f32 = jl.fit(X, y, solver="lbfgs", C=C_of(1e-2, 500), max_iter=100)
    bf16 = jl.fit(X, y, solver="lbfgs", C=C_of(1e-2, 500), max_iter=100, x_dtype="bfloat16")
    assert bf16.params.w.dtype == jnp.float32
    assert abs(bf16.loss - f32.loss) / f32.loss < 1e-2
    np.testing.assert_allclose(bf16.params.w, f32.params.w, atol=2e-2)


def test_warm_start_from_init_params_continues():
    X, y = _problem()
    kwargs = {"solver": "gd", "learning_rate": 0.5, "tol": 0.0}
    once = jl.fit(X, y, max_iter=20, **kwargs)
    first = jl.fit(X, y, max_iter=10, **kwargs)
    second = jl.fit(X, y, max_iter=10, init_params=first.params, **kwargs)
    np.testing.assert_allclose(second.params.w, once.params.w, rtol=1e-6)


def test_bad_data_is_rejected_before_training():
    X, y = _problem()
    with pytest.raises(ValueError, match=r"y must have shape \(300,\)"):
        jl.fit(X, y[:-1])
    X_bad = X.copy()
    X_bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        jl.fit(X_bad, y)
    with pytest.raises(ValueError, match=r"y must hold binary labels 0 or 1, got value\(s\) \[0.5\]"):
        jl.fit(X, np.where(y > 0, 0.5, 0.0).astype(np.float32), n_classes=2)
    with pytest.raises(ValueError, match="integer class indices"):
        jl.fit(X, np.where(y > 0, 2.5, 0.0))


def test_values_overflowing_float32_are_reported():
    X, y = _problem(dtype=np.float64)
    X[2, 1] = 1e300
    with pytest.raises(ValueError, match=r"X must be finite in float32, .*1e\+300.*dtype='float64'"):
        jl.fit(X, y, dtype="float32")
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"X must be finite, got 1 NaN or inf"):
        jl.fit(X, y)  # float64 input: a float64 fit


@pytest.mark.parametrize("weighted", [False, True])
def test_the_epoch_loss_weights_each_minibatch_by_its_weight(weighted):
    # m = 5 in batches of 4 and 1: with a negligible step, the epoch loss must be J over all
    # rows at the start (batches weighted by their weight sums), not the mean of batch means.
    X, y = _problem(m=5, n=3, dtype=np.float64)
    sw = np.array([1.0, 2.0, 0.5, 3.0, 1.5]) if weighted else None
    start = Params(np.array([0.5, -1.0, 2.0]), np.float64(0.3))
    result = jl.fit(X, y, solver="gd", learning_rate=1e-300, batch_size=4, max_iter=1, tol=0.0,
                    C=np.inf, init_params=start, sample_weight=sw, random_state=0)
    with jax.enable_x64(True):
        J = float(jl.objective(Params(*map(jnp.asarray, start)), X, y, sample_weight=sw))
    assert result.loss_history[0] == pytest.approx(J, rel=1e-12)


def test_a_minibatch_without_weight_changes_nothing():
    X, y = _problem(m=40)
    sw = np.zeros(40)
    sw[:6] = 1.0  # most batches of 4 hold only rows of weight 0
    result = jl.fit(X, y, solver="sgd", learning_rate=0.05, batch_size=4, max_iter=5, tol=0.0,
                    sample_weight=sw, random_state=0)
    assert result.status == "max_iter" and np.all(np.isfinite(result.loss_history))
    assert not np.allclose(result.params.w, 0.0)  # the batches with weight did train


def _compiled_programs(fn) -> list[str]:
    """Names of the programs JAX compiles while ``fn`` runs."""
    import logging

    names = []

    class Handler(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if message.startswith("Compiling "):
                names.append(message.split(" with ")[0].removeprefix("Compiling "))

    handler = Handler()
    logging.getLogger("jax").addHandler(handler)
    try:
        with jax.log_compiles():
            fn()
    finally:
        logging.getLogger("jax").removeHandler(handler)
    return names


def test_a_first_fit_compiles_at_most_three_programs_and_nothing_eagerly():
    X, y = _problem(m=777, n=13, dtype=np.float64, seed=9)

    def fit():
        return _compiled_programs(lambda: jl.fit(X, y, max_iter=37))

    # on a CPU, NumPy lays X out on the host (training.host_layout): nothing to compile
    prepare = [] if jax.default_backend() == "cpu" else ["jit(_prepare)"]
    jax.clear_caches()  # other tests fit data of these padded shapes
    assert fit() == prepare + ["jit(_init_state)", "jit(_run)"]
    assert fit() == []  # and nothing again


def test_the_loop_takes_over_its_state_so_a_fit_holds_one_copy():
    """run_segment donates the state it is given: the returned state reuses its buffers (one
    copy of L-BFGS's memory of 2 x 10 weight vectors, not two), and the fit is unchanged."""
    from jaxlogreg.training import loop
    from jaxlogreg.training.data import device_data
    from jaxlogreg.training.pipeline import hyper_of
    from jaxlogreg.training.problem import validate

    X, y = _problem(m=300, n=6)
    config = jl.TrainConfig(solver="lbfgs", C=1.0, tol=1e-6)
    data = device_data(validate(X, y))
    spec = loop.LoopSpec.of(config, None)
    hyper = hyper_of(config, config.l2(300), "float32")
    state = loop.init_state(data.place(jl.init_params(6)), hyper, spec, seed=0)
    new, _ = data.advance(state, hyper, spec, 100)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(state))
    compiled = loop.run_segment.lower(new, data.data, hyper, np.int32(100), spec=spec).compile()
    state_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(new))
    assert compiled.memory_analysis().alias_size_in_bytes == state_bytes
    np.testing.assert_allclose(np.asarray(new.params.w)[:6], jl.fit(X, y, config).params.w,
                               rtol=1e-6)


@pytest.mark.parametrize("order", ["F", "device", "float32", "strided", "float32 F"])
def test_input_order_and_placement_give_the_same_model(order):
    X, y = _problem(m=2_000, n=7, dtype=np.float64)
    reference = jl.fit(X, y, dtype="float32", tol=1e-7)
    wide = np.zeros((2_000, 14))
    wide[:, ::2] = X
    variant = {"F": np.asfortranarray(X), "device": jnp.asarray(X, jnp.float32),
               "float32": X.astype(np.float32), "strided": wide[:, ::2],
               "float32 F": np.asfortranarray(X, np.float32)}[order]
    result = jl.fit(variant, y, dtype="float32", tol=1e-7)
    np.testing.assert_allclose(result.params.w, reference.params.w, rtol=1e-6, atol=1e-7)
    assert result.loss == pytest.approx(reference.loss, rel=1e-6)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="zero-copy transfers are a CPU feature")
def test_a_fortran_ordered_float32_x_is_used_in_place():
    from jaxlogreg.training.data import prepare_data

    m, n = 3_000, 5
    buffer = np.empty(m * n * 4 + 64, np.uint8)  # 64-byte aligned, as XLA needs to alias it
    start = (-buffer.ctypes.data) % 64
    Xt = buffer[start : start + m * n * 4].view(np.float32).reshape(n, m)
    Xt[...] = np.random.default_rng(0).normal(size=(n, m))
    X = Xt.T  # Fortran-ordered (m, n): its transpose is already the training layout
    data = prepare_data(X, np.zeros(m), 2, "float32")
    assert data.Xt.unsafe_buffer_pointer() == Xt.ctypes.data


@pytest.fixture
def count_passes(monkeypatch):
    """Count, at run time, the loop's evaluations of J and ∇J (``value_and_grad_t``) and of J
    alone (``objective_t``) in the fits of a test (their loops are traced again)."""
    calls = {"value_and_grad": 0, "objective": 0}

    def counted(name, fun):
        def wrapper(*args):
            jax.debug.callback(lambda: calls.__setitem__(name, calls[name] + 1))
            return fun(*args)
        return wrapper

    def fresh():  # trace again
        loop_spec.hand_objective.cache_clear()
        jax.clear_caches()

    xla = kernels.get("xla")
    monkeypatch.setitem(kernels._BY_NAME, "xla", dataclasses.replace(
        xla, value_and_grad=counted("value_and_grad", xla.value_and_grad)))
    monkeypatch.setattr(loop_spec, "objective_t", counted("objective", loop_spec.objective_t))
    fresh()
    yield calls
    monkeypatch.undo()
    fresh()


def test_a_converged_fit_runs_no_last_update_and_reports_the_j_it_recorded(count_passes):
    X, y = _problem(seed=3)
    optimum = jl.fit(X.astype(np.float64), y, solver="lbfgs", tol=1e-8)
    count_passes.update(value_and_grad=0, objective=0)
    again = jl.fit(X.astype(np.float64), y, solver="lbfgs", tol=1e-6, init_params=optimum.params)
    assert again.converged and again.n_iter == 0
    # J and ∇J once, at the start: no line search after converging, no pass for the final J
    assert count_passes == {"value_and_grad": 1, "objective": 0}
    assert again.loss == again.loss_history[-1]
    with jax.enable_x64(True):
        expected = objective_t(jax.tree.map(jnp.asarray, again.params),
                               jnp.asarray(X.T, jnp.float64), jnp.asarray(y), None, 1 / len(X))
    assert again.loss == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_a_fit_stopped_by_max_iter_evaluates_j_at_its_last_parameters(solver, count_passes):
    X, y = _problem(seed=4)
    result = jl.fit(X, y, solver=solver, tol=0.0, max_iter=3)
    assert result.status == "max_iter" and count_passes["objective"] == 1
    expected = objective_t(jax.tree.map(jnp.asarray, result.params), jnp.asarray(X.T),
                           jnp.asarray(y), None, 1 / len(X))  # C = 1
    assert result.loss == pytest.approx(float(expected), rel=1e-6)
