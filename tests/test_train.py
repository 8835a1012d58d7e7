"""The training loop: solvers, stopping, divergence, minibatches, dtypes, no recompilation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlogreg import reference, train
from jaxlogreg.gradients import backward_t
from jaxlogreg.loss import objective_t
from jaxlogreg.model import Params
from jaxlogreg.train import TrainConfig


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


def _grad_max(params, X, y, l2, sample_weight=None):
    g = backward_t(params, jnp.asarray(X).T, jnp.asarray(y), sample_weight, l2)
    return max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(g))


def test_gd_matches_the_course_reference_in_float64():
    X, y = _problem(m=50, n=4, dtype=np.float64)
    w_ref, b_ref, costs_ref = reference.gradient_descent(X, y, learning_rate=0.3, num_iterations=25)
    result = train.fit(X, y, solver="gd", learning_rate=0.3, max_iter=25, tol=0.0, dtype="float64")
    assert result.n_iter == 25 and result.status == "max_iter"
    np.testing.assert_allclose(result.loss_history, costs_ref, rtol=1e-13)
    np.testing.assert_allclose(result.params.w, w_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(float(result.params.b), b_ref, rtol=1e-12, atol=1e-14)


def test_float64_fit_does_not_leak_x64():
    X, y = _problem()
    result = train.fit(X, y, max_iter=3, dtype="float64")
    assert result.params.w.dtype == np.float64
    assert not jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float32


@pytest.mark.parametrize("solver", ["gd", "sgd", "adam", "adamw", "lbfgs"])
def test_manual_and_autodiff_gradients_train_identically(solver):
    X, y = _problem()
    kwargs = dict(solver=solver, max_iter=30, tol=0.0, l2=1e-2, dtype="float64")
    manual = train.fit(X, y, grad="manual", **kwargs)
    auto = train.fit(X, y, grad="autodiff", **kwargs)
    assert manual.n_iter == auto.n_iter
    np.testing.assert_allclose(manual.loss_history, auto.loss_history, rtol=1e-10)
    np.testing.assert_allclose(manual.params.w, auto.params.w, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "solver, learning_rate",
    [("gd", 1.0), ("sgd", 0.3), ("adam", 0.05), ("adamw", 0.05), ("lbfgs", None)],
)
def test_every_solver_converges_to_the_same_optimum(solver, learning_rate):
    X, y = _problem()
    l2 = 1e-2
    reference_fit = train.fit(X, y, solver="lbfgs", l2=l2, tol=1e-12, max_iter=200, dtype="float64")
    result = train.fit(
        X, y, solver=solver, learning_rate=learning_rate, l2=l2, tol=1e-4, max_iter=5000
    )
    assert result.status == "converged", result
    assert _grad_max(result.params, X, y, l2) <= 1e-4
    assert abs(result.loss - reference_fit.loss) / reference_fit.loss < 1e-5
    assert result.loss_history[0] > result.loss_history[-1]


def test_any_optax_optimizer_by_name_with_parameters():
    X, y = _problem()
    result = train.fit(
        X, y, solver="rmsprop", learning_rate=0.01, solver_params=(("decay", 0.8),), max_iter=300
    )
    optimum = train.fit(X, y, solver="lbfgs", tol=1e-8, max_iter=200).loss
    assert result.loss_history[0] - result.loss > 0.95 * (result.loss_history[0] - optimum)
    with pytest.raises(ValueError, match="not valid for solver 'rmsprop'"):
        TrainConfig(solver="rmsprop", solver_params=(("no_such_option", 1),))


def test_loss_change_criterion_stops_on_relative_change():
    X, y = _problem()
    result = train.fit(X, y, solver="gd", learning_rate=0.5, tol=1e-6, tol_criterion="loss", max_iter=5000)
    assert result.status == "converged"
    last, before = result.loss_history[-1], result.loss_history[-2]
    assert abs(before - last) <= 1e-6 * abs(last)
    assert np.all(np.abs(np.diff(result.loss_history[:-1])) > 1e-6 * np.abs(result.loss_history[1:-1]))


def test_max_iter_zero_tolerance_runs_exactly_max_iter():
    X, y = _problem()
    result = train.fit(X, y, solver="adam", learning_rate=0.01, max_iter=17, tol=0.0)
    assert (result.n_iter, result.status, result.loss_history.shape) == (17, "max_iter", (17,))


def test_no_recompilation_for_same_shapes_and_settings():
    X, y = _problem(seed=1)
    config = TrainConfig(solver="adam", learning_rate=0.01, max_iter=40)
    train.fit(X, y, config)
    before = train.run_segment._cache_size()
    X2, y2 = _problem(seed=2)
    train.fit(X2, y2, config)
    train.fit(X2, y2, dataclasses.replace(config, learning_rate=0.02, tol=1e-3, l2=0.1))
    result = train.fit(X2, y2, dataclasses.replace(config, max_iter=50, tol=0.0))
    assert result.n_iter == 50 and len(result.loss_history) == 50
    assert train.run_segment._cache_size() == before
    train.fit(X2[:-1], y2[:-1], config)  # a new shape compiles once more
    assert train.run_segment._cache_size() == before + 1


def test_progress_callback_segments_reuse_one_program():
    X, y = _problem(seed=3)
    seen = []
    config = TrainConfig(solver="gd", learning_rate=0.5, max_iter=100, tol=0.0)
    whole = train.fit(X, y, config)
    before = train.run_segment._cache_size()
    pieces = train.fit(X, y, config, callback=lambda it, loss: seen.append((it, loss)), n_segments=4)
    assert [it for it, _ in seen] == [25, 50, 75, 100]
    assert train.run_segment._cache_size() == before
    np.testing.assert_array_equal(whole.loss_history, pieces.loss_history)
    np.testing.assert_array_equal(whole.params.w, pieces.params.w)


def test_divergence_stops_with_status_and_last_good_params():
    rng = np.random.default_rng(0)
    X = (100 * rng.normal(size=(200, 5))).astype(np.float32)
    y = (rng.random(200) < 0.5).astype(np.float32)
    result = train.fit(X, y, solver="gd", learning_rate=1e37, max_iter=50, tol=0.0)
    assert result.status == "diverged"
    assert np.isnan(result.loss_history[-1])
    assert np.all(np.isfinite(result.params.w)) and np.isfinite(result.loss)
    # The returned parameters are the ones whose loss was recorded last as finite.
    finite = result.loss_history[np.isfinite(result.loss_history)]
    assert result.loss == pytest.approx(float(finite[-1]), rel=1e-6)


def test_minibatch_divergence_reverts_the_epoch():
    rng = np.random.default_rng(0)
    X = (100 * rng.normal(size=(200, 5))).astype(np.float32)
    y = (rng.random(200) < 0.5).astype(np.float32)
    result = train.fit(X, y, solver="gd", batch_size=32, learning_rate=1e37, max_iter=5, tol=0.0)
    assert result.status == "diverged"
    assert np.all(np.isfinite(result.params.w))


def test_minibatches_are_reproducible_and_keep_every_row():
    X, y = _problem(m=101)
    kwargs = dict(solver="gd", batch_size=16, learning_rate=0.5, max_iter=5, tol=0.0)
    a = train.fit(X, y, seed=7, **kwargs)
    b = train.fit(X, y, seed=7, **kwargs)
    c = train.fit(X, y, seed=8, **kwargs)
    np.testing.assert_array_equal(a.params.w, b.params.w)
    assert not np.array_equal(a.params.w, c.params.w)
    indices, mask = train.epoch_batches(jax.random.key(7), jnp.asarray(0), 101, 16)
    assert indices.shape == (7, 16)
    assert sorted(np.asarray(indices)[np.asarray(mask)].tolist()) == list(range(101))


def test_minibatch_loop_equals_a_host_loop_over_the_same_batches():
    X, y = _problem(m=70, n=3)
    config = TrainConfig(solver="adam", batch_size=16, learning_rate=0.05, max_iter=3, tol=0.0)
    result = train.fit(X, y, config, seed=3)
    spec, hyper = train.LoopSpec.of(config), train.hyper_of(config)
    params = Params(jnp.zeros(3), jnp.zeros(()))
    opt_state = train.make_optimizer("adam", hyper.learning_rate).init(params)
    Xt, yj = jnp.asarray(X).T, jnp.asarray(y)
    key = jax.random.key(3)
    for epoch in range(3):
        indices, mask = train.epoch_batches(key, jnp.asarray(epoch), 70, 16)
        for idx, msk in zip(indices, mask, strict=True):
            batch = train.TrainData(Xt[:, idx], yj[idx], msk.astype(jnp.float32))
            params, opt_state, _, _ = train.minibatch_update(params, opt_state, batch, hyper, spec)
    np.testing.assert_allclose(result.params.w, params.w, rtol=1e-5, atol=1e-6)


def test_sample_weights_equal_repeated_rows():
    X, y = _problem(m=40, n=3, dtype=np.float64)
    counts = np.random.default_rng(1).integers(1, 4, size=40)
    kwargs = dict(solver="lbfgs", l2=1e-2, tol=1e-10, max_iter=200, dtype="float64")
    weighted = train.fit(X, y, sample_weight=counts.astype(float), **kwargs)
    repeated = train.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts), **kwargs)
    np.testing.assert_allclose(weighted.params.w, repeated.params.w, rtol=1e-7, atol=1e-9)


def test_multinomial_fit_matches_its_own_gradient_and_autodiff():
    X, y = _problem(n_classes=4)
    result = train.fit(X, y, solver="lbfgs", l2=1e-2, tol=1e-6, max_iter=300, dtype="float64")
    assert result.params.w.shape == (6, 4) and result.params.b.shape == (4,)
    assert result.status == "converged"
    with jax.enable_x64(True):
        Xt = jnp.asarray(X, jnp.float64).T
        auto = jax.grad(objective_t)(result.params, Xt, jnp.asarray(y), None, 1e-2)
        assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(auto)) <= 1e-6


def test_bfloat16_storage_stays_close_to_float32():
    X, y = _problem(m=500)
    f32 = train.fit(X, y, solver="lbfgs", l2=1e-2, max_iter=100)
    bf16 = train.fit(X, y, solver="lbfgs", l2=1e-2, max_iter=100, x_dtype="bfloat16")
    assert bf16.params.w.dtype == jnp.float32
    assert abs(bf16.loss - f32.loss) / f32.loss < 1e-2
    np.testing.assert_allclose(bf16.params.w, f32.params.w, atol=2e-2)


def test_warm_start_from_init_params_continues():
    X, y = _problem()
    kwargs = dict(solver="gd", learning_rate=0.5, tol=0.0)
    once = train.fit(X, y, max_iter=20, **kwargs)
    first = train.fit(X, y, max_iter=10, **kwargs)
    second = train.fit(X, y, max_iter=10, init_params=first.params, **kwargs)
    np.testing.assert_allclose(second.params.w, once.params.w, rtol=1e-6)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(learning_rate=0.0), r"learning_rate must be a finite real number > 0, got 0.0"),
        (dict(learning_rate=-1.0), r"learning_rate must be .* > 0, got -1.0"),
        (dict(max_iter=0), r"max_iter must be an integer >= 1, got 0"),
        (dict(max_iter=2.5), r"max_iter must be an integer >= 1, got 2.5"),
        (dict(solver="newton"), r"solver must be one of .*'gd'.* got 'newton'"),
        (dict(tol=-1.0), r"tol must be a finite real number >= 0, got -1.0"),
        (dict(l2=float("nan")), r"l2 must be a finite real number >= 0, got nan"),
        (dict(batch_size=0), r"batch_size must be an integer >= 1, got 0"),
        (dict(solver="lbfgs", batch_size=8), r"solver 'lbfgs' needs full-batch .* got 8"),
        (dict(grad="numeric"), r"grad must be one of \['manual', 'autodiff'\], got 'numeric'"),
        (dict(dtype="float16"), r"dtype must be one of .* got 'float16'"),
        (dict(solver="adam", solver_params=(("bogus", 1),)), r"solver_params .*bogus.* not valid"),
    ],
)
def test_bad_hyper_parameters_are_rejected_by_name(overrides, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**overrides)


def test_bad_data_is_rejected_before_training():
    X, y = _problem()
    with pytest.raises(ValueError, match=r"y must have shape \(300,\)"):
        train.fit(X, y[:-1])
    X_bad = X.copy()
    X_bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        train.fit(X_bad, y)
    with pytest.raises(ValueError, match=r"y must hold binary labels 0 or 1, got value\(s\) \[0.5\]"):
        train.fit(X, np.where(y > 0, 0.5, 0.0).astype(np.float32), n_classes=2)
    with pytest.raises(ValueError, match="integer class indices"):
        train.fit(X, np.where(y > 0, 2.5, 0.0))


@pytest.mark.parametrize("solver", ["gd", "adam", "lbfgs"])
@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_fit_intercept_false_keeps_b_at_zero_and_matches_scikit_learn(solver, grad):
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    X, y = _problem(m=200, n=4, dtype=np.float64)
    y = y.astype(np.int64)
    l2 = 1e-2
    result = train.fit(
        X, y, solver=solver, learning_rate=0.5 if solver == "gd" else 0.05, l2=l2,
        fit_intercept=False, tol=1e-7, max_iter=20_000, dtype="float64", grad=grad,
    )
    assert float(result.params.b) == 0.0
    sk = SkLogisticRegression(C=1 / (l2 * 200), fit_intercept=False, tol=1e-12, max_iter=10_000)
    sk.fit(X, y)
    np.testing.assert_allclose(result.params.w, sk.coef_[0], rtol=1e-4, atol=1e-5)


def test_values_overflowing_float32_are_reported():
    X, y = _problem(dtype=np.float64)
    X[2, 1] = 1e300
    with pytest.raises(ValueError, match=r"X must be finite in float32, .*1e\+300.*dtype='float64'"):
        train.fit(X, y)
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"X must be finite, got 1 NaN or inf"):
        train.fit(X, y, dtype="float64")


def test_config_stores_numpy_numbers_as_python_numbers():
    config = TrainConfig(max_iter=np.int64(7), tol=np.float32(0.5), l2=np.float64(0.1), batch_size=np.int32(4))
    assert (type(config.max_iter), type(config.tol), type(config.l2), type(config.batch_size)) == (
        int, float, float, int
    )
    assert config == TrainConfig(max_iter=7, tol=0.5, l2=0.1, batch_size=4)
