"""Fits whose kernel reads rows (``Kernel.layout == "rows"``) train on X (m, n) as given.

A stand-in kernel (XLA's gradient on ``X.T``, first in the table for dense X on a CPU) takes
the rows path through device_data, the loop, minibatches and the final objective; its fits
must equal the features-major XLA ones (the C kernels switched off), and an aligned C-ordered
X of the fit's dtype must be used in place. The last test runs the C kernel itself.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg import kernels
from jaxlogreg.core.gradients import value_and_grad_t
from jaxlogreg.kernels import native
from jaxlogreg.training import host_layout, pipeline
from jaxlogreg.training.data import device_data
from jaxlogreg.training.problem import validate

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu",
                                reason="the stand-in rows kernel applies on CPUs")


@dataclasses.dataclass(frozen=True)
class _RowsKernel(kernels.Kernel):
    layout: str = "rows"


def _xla_on_rows(params, X, y, s, l2):
    return value_and_grad_t(params, X.T, y, s, l2)


ROWS = _RowsKernel("xla_rows_test", _xla_on_rows,
                   lambda shape: shape.dense_on_one_device and shape.backend == "cpu", "cpu")


@pytest.fixture(autouse=True)
def xla_reference(monkeypatch):
    """The C kernels off: fits without the stand-in are XLA's, on Xt (n, m)."""
    monkeypatch.setenv(native.SWITCH, "0")


@pytest.fixture
def rows_kernel(monkeypatch):
    """The stand-in rows kernel first in the kernel table."""
    monkeypatch.setattr(kernels, "KERNELS", (ROWS, *kernels.KERNELS))
    monkeypatch.setitem(kernels._BY_NAME, ROWS.name, ROWS)


@pytest.fixture
def copies(monkeypatch):
    """The aligned buffers host_layout makes (one per copy of X)."""
    made = []
    original = host_layout.aligned_empty

    def spy(shape, dtype):
        made.append(tuple(shape))
        return original(shape, dtype)

    monkeypatch.setattr(host_layout, "aligned_empty", spy)
    return made


def _problem(m=300, n=5, n_classes=2, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    y = rng.integers(0, n_classes, m)
    return X, y, rng.random(m) + 0.5


def _aligned(X):
    out = host_layout.aligned_empty(X.shape, X.dtype)
    out[...] = X
    return out


@pytest.mark.parametrize(("dtype", "n_classes"), [
    ("float32", 2),
    pytest.param("float32", 3, marks=pytest.mark.slow),  # each about 2 s: two compiled loops
    pytest.param("float64", 2, marks=pytest.mark.slow),
    pytest.param("float64", 3, marks=pytest.mark.slow),
])
def test_a_fit_on_rows_equals_the_features_major_fit(dtype, n_classes, request):
    X, y, weights = _problem(n_classes=n_classes)
    kwargs = {"dtype": dtype, "C": 0.5, "sample_weight": weights, "tol": 1e-8}
    reference = jl.fit(X, y, **kwargs)
    request.getfixturevalue("rows_kernel")
    problem = validate(X, y, sample_weight=weights, dtype=dtype)
    data = device_data(problem)
    assert data.rows and pipeline.kernel_for(data) == ROWS.name
    assert data.data.Xt.shape == (512, 32)  # X (m, n), bucketed
    result = jl.fit(X, y, **kwargs)
    assert result.loss == pytest.approx(reference.loss, rel=1e-6)
    assert result.n_iter == pytest.approx(reference.n_iter, abs=2)
    atol = 100 * np.sqrt(np.finfo(dtype).eps)
    np.testing.assert_allclose(result.params.w, reference.params.w, atol=atol)


@pytest.mark.parametrize("settings", [
    {"solver": "adam", "batch_size": 64, "random_state": 0, "max_iter": 5, "tol": 0.0},
    {"solver": "proximal", "penalty": "l1", "tol": 1e-7, "max_iter": 7},  # stops at max_iter
], ids=["minibatch", "l1"])
def test_minibatches_and_l1_on_rows_equal_features_major(settings, request):
    X, y, weights = _problem(dtype=np.float32)
    reference = jl.fit(X, y, sample_weight=weights, **settings)
    request.getfixturevalue("rows_kernel")
    result = jl.fit(X, y, sample_weight=weights, **settings)
    assert result.loss == pytest.approx(reference.loss, rel=1e-6)
    assert (result.n_iter, result.status) == (reference.n_iter, reference.status)


def test_an_aligned_c_ordered_x_of_the_fit_dtype_is_not_copied(rows_kernel, copies):
    X, y, _ = _problem(m=700, dtype=np.float32)
    X = _aligned(X)
    copies.clear()
    data = device_data(validate(X, y, dtype="float32"), bucket=False)
    assert data.rows and copies == []
    assert data.data.Xt.unsafe_buffer_pointer() == X.ctypes.data
    reference = device_data(validate(X, y, dtype="float32"), bucket=False, models=1)
    config = jl.TrainConfig(C=1.0)
    hyper = pipeline.hyper_of(config, config.l2(700), "float32")
    params = jl.init_params(5)._replace(w=np.linspace(-1, 1, 5, dtype=np.float32))
    assert data.objective(params, hyper) == pytest.approx(reference.objective(params, hyper),
                                                          rel=1e-6)
    np.testing.assert_allclose(data.fingerprint(), reference.fingerprint(), rtol=1e-5,
                               atol=700 * 10 * np.finfo(np.float32).eps)  # sums of 700 rows


@pytest.mark.parametrize("variant", ["F", "misaligned", "float64", "strided"])
def test_any_other_x_is_copied_once_and_fits_the_same(variant, rows_kernel, copies):
    X, y, _ = _problem(m=700, dtype=np.float32)
    aligned = _aligned(X)
    buffer = host_layout.aligned_empty((701 * 5,), np.float32)
    misaligned = buffer[3:3 + 3500].reshape(700, 5)
    misaligned[...] = X
    wide = np.zeros((700, 10), np.float32)
    wide[:, ::2] = X
    given = {"F": np.asfortranarray(X), "misaligned": misaligned, "float64": X.astype(np.float64),
             "strided": wide[:, ::2]}[variant]
    copies.clear()
    data = device_data(validate(given, y, dtype="float32"), bucket=False)
    assert data.rows and copies == [(700, 5)]
    np.testing.assert_array_equal(np.asarray(data.data.Xt), X)
    fitted = jl.fit(given, y, dtype="float32", tol=1e-7)
    assert fitted.loss == pytest.approx(jl.fit(aligned, y, dtype="float32", tol=1e-7).loss,
                                        rel=1e-6)


def test_a_device_array_is_laid_out_as_rows_by_the_compiled_pass(rows_kernel, copies):
    X, y, _ = _problem(m=700, dtype=np.float32)
    data = device_data(validate(jnp.asarray(X), y, dtype="float32"))
    assert data.rows and copies == [] and data.data.Xt.shape == (1024, 32)  # bucketed rows
    np.testing.assert_array_equal(np.asarray(data.data.Xt)[:700, :5], X)
    assert not np.asarray(data.data.Xt)[700:].any() and not np.asarray(data.data.Xt)[:, 5:].any()


def test_bad_values_on_rows_get_the_same_errors(rows_kernel):
    X, y, _ = _problem()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X must be finite, got 1 NaN or inf"):
        jl.fit(X, y)
    X[3, 2] = 1e300
    overflow = r"X must be finite in float32, .*1e\+300.*dtype='float64'"
    with pytest.raises(ValueError, match=overflow):
        jl.fit(X, y, dtype="float32")


def test_paths_sharded_and_autodiff_fits_keep_features_major(rows_kernel):
    X, y, _ = _problem()
    problem = validate(X, y)
    assert device_data(problem).rows
    assert not device_data(problem, models=4).rows
    assert not device_data(problem, mesh=jl.make_mesh()).rows
    assert not device_data(problem, grad="autodiff").rows  # jax.grad of XLA's J reads Xt


@pytest.mark.slow
def test_a_path_fits_with_a_rows_kernel_in_the_table(rows_kernel):
    X, y, _ = _problem()
    path = jl.fit_path(X, y, [0.1, 1.0])
    fits = [jl.fit(X, y, C=C, tol=1e-7).loss for C in (0.1, 1.0)]
    np.testing.assert_allclose(path.loss.reshape(-1), fits, rtol=1e-5)


@pytest.mark.slow  # 2^22 elements: the C kernel's smallest X
@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_c_kernel_fits_on_the_given_x_as_xla_does_on_xt(n_classes, monkeypatch):
    monkeypatch.delenv(native.SWITCH)
    if not native.available():
        pytest.skip(f"the C kernel is not available: {native.build_error()}")
    X, y, weights = _problem(m=(1 << 22) // 64, n=64, n_classes=n_classes, dtype=np.float32)
    X = _aligned(X)
    data = device_data(validate(X, y, dtype="float32"))
    assert data.rows and kernels.get(data.kernel).layout == "rows"
    assert data.data.Xt.unsafe_buffer_pointer() == X.ctypes.data
    del data
    result = jl.fit(X, y, sample_weight=weights, tol=1e-7)
    monkeypatch.setenv(native.SWITCH, "0")
    reference = jl.fit(X, y, sample_weight=weights, tol=1e-7)
    assert result.loss == pytest.approx(reference.loss, rel=1e-6)


@pytest.mark.slow  # about 2.5 s: checkpointed fits are not bucketed, two more compiled loops
def test_a_checkpointed_fit_on_rows_resumes_where_it_stopped(rows_kernel, tmp_path):
    X, y, _ = _problem(dtype=np.float32)
    settings = {"tol": 0.0, "max_iter": 8}
    full = jl.fit(X, y, **settings)

    class Stop(Exception):
        pass

    def stop_at_4(iteration, loss):
        if iteration >= 4:
            raise Stop

    with pytest.raises(Stop):
        jl.fit(X, y, checkpoint=jl.Checkpointer(tmp_path, every=2), callback=stop_at_4,
               n_segments=4, **settings)
    seen = []
    resumed = jl.fit(X, y, checkpoint=jl.Checkpointer(tmp_path, every=2), n_segments=4,
                     callback=lambda iteration, loss: seen.append(iteration), **settings)
    assert seen == [6, 8]  # from the checkpoint of iteration 4: same data, same fingerprint
    assert resumed.n_iter == 8 and len(resumed.loss_history) == 8
    assert resumed.loss == pytest.approx(full.loss, rel=1e-6)
