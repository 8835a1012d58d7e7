"""The host solvers' binary duality gap (:func:`certificate.host_binary_gap`: C with the native
library, the JAX functions eagerly without) equals the JAX gap of the jitted loop
(:func:`certificate.duality_gap`), dual point included, on weighted problems with and without
intercept, λ₂ > 0, logits of ±1e4 and a class without weight; bad lengths are refused before C
reads anything."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxlogreg.kernels import native
from jaxlogreg.training import certificate

EPS = np.finfo(np.float64).eps
RTOL = 4096 * EPS  # about 1e-12: sums of 300 terms in another order, and the gap's J - D


@pytest.fixture(params=["native", "jax"])
def backend(request, monkeypatch):
    """The host gap in C (skipped without the library) or, the library turned off, in JAX."""
    if request.param == "native" and not native.available():
        pytest.skip(f"the native library is not available: {native.build_error()}")
    if request.param == "jax":
        monkeypatch.setattr(native, "available", lambda: False)
    return request.param


def _problem(seed: int, fit_intercept: bool, extreme: bool = False):
    rng = np.random.default_rng(seed)
    m, n = 300, 40
    X = rng.standard_normal((m, n))
    y = (rng.random(m) < 0.3).astype(np.float64)
    s = rng.uniform(0.1, 2.0, m)
    w = rng.standard_normal(n) * (rng.random(n) < 0.3)
    z = X @ w + (0.3 if fit_intercept else 0.0)
    if extreme:  # confident rows, right and wrong: σ and softplus at ±1e4
        z[rng.random(m) < 0.3] = 1e4
        z[rng.random(m) < 0.3] = -1e4
    return X, y, s / s.sum(), w, z


def _assert_equal_to_jax(X, y, s, w, z, l1, l2, fit_intercept):
    point = certificate.host_dual_point(z, y, s, fit_intercept, lambda u: X.T @ u)
    J, gap, grad = certificate.host_gap_at(point, y, s, w, l1, l2)
    with jax.enable_x64(True):
        J_ref, gap_ref, grad_ref = certificate.duality_gap(z, y, s, w, l1, l2, fit_intercept,
                                                           lambda u: X.T @ np.asarray(u))
        p_ref, _, loss_ref = certificate._dual_residual(z, y, s, fit_intercept)
    J_ref, gap_ref = float(J_ref), float(gap_ref)
    assert np.isfinite([J, gap, point.loss]).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(point.p, np.asarray(p_ref), rtol=RTOL, atol=EPS)
    assert abs(point.loss - float(loss_ref)) <= RTOL * float(loss_ref)
    assert abs(J - J_ref) <= RTOL * J_ref and abs(gap - gap_ref) <= RTOL * J_ref
    np.testing.assert_allclose(grad, np.asarray(grad_ref), rtol=0,
                               atol=100 * EPS * float(np.max(np.abs(grad_ref))))
    assert gap >= 0
    return J


@pytest.mark.parametrize(("l1", "l2", "fit_intercept"), [
    (0.01, 0.0, True), (0.01, 0.02, True), (0.05, 0.0, False), (0.0, 0.1, True),
    (0.0, 0.0, False), (10.0, 0.0, True),  # λ₁ above max|Xᵀr|: the dual point unscaled
])
@pytest.mark.parametrize("extreme", [False, True])
def test_the_host_gap_equals_the_jax_gap(backend, l1, l2, fit_intercept, extreme):
    X, y, s, w, z = _problem(int(l1 * 100 + l2 * 10), fit_intercept, extreme)
    J = _assert_equal_to_jax(X, y, s, w, z, l1, l2, fit_intercept)
    if extreme:  # a wrong row at 1e4 costs about 1e4 s_i
        assert J > 100


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_a_class_without_weight_has_no_intercept_shift(backend, fit_intercept):
    X, y, s, w, z = _problem(7, fit_intercept)
    s = np.where(y == 1, 0.0, s)
    s /= s.sum()
    _assert_equal_to_jax(X, y, s, w, z, 0.01, 0.0, fit_intercept)
    point = certificate.host_dual_point(z, y, s, fit_intercept, lambda u: X.T @ u)
    np.testing.assert_allclose(point.p, 1 / (1 + np.exp(-z)), rtol=RTOL)  # δ = 0: no such δ
    _assert_equal_to_jax(X, np.zeros_like(y), s, w, z, 0.01, 0.02, fit_intercept)


def test_the_native_and_the_jax_gaps_agree(monkeypatch):
    if not native.available():
        pytest.skip(f"the native library is not available: {native.build_error()}")
    X, y, s, w, z = _problem(3, True)
    native_gap = certificate.host_binary_gap(z, y, s, w, 0.01, 0.0, True, lambda u: X.T @ u)
    monkeypatch.setattr(native, "available", lambda: False)
    jax_gap = certificate.host_binary_gap(z, y, s, w, 0.01, 0.0, True, lambda u: X.T @ u)
    assert abs(native_gap[0] - jax_gap[0]) <= RTOL * jax_gap[0]
    assert abs(native_gap[1] - jax_gap[1]) <= RTOL * jax_gap[0]


def test_bad_lengths_are_refused_before_c_reads_them():
    if not native.available():
        pytest.skip(f"the native library is not available: {native.build_error()}")
    X, y, s, w, z = _problem(5, True)
    with pytest.raises(ValueError, match=r"s must have shape \(300,\)"):
        certificate.host_dual_point(z, y, s[:-1], True, lambda u: X.T @ u)
    with pytest.raises(ValueError, match=r"y must have shape \(300,\)"):
        certificate.host_dual_point(z, y[:10], s, True, lambda u: X.T @ u)
    with pytest.raises(ValueError, match=r"z must have a 1-D shape"):
        certificate.host_dual_point(z[:, None], y, s, True, lambda u: X.T @ u)
    point = certificate.host_dual_point(z, y, s, True, lambda u: X.T @ u)
    with pytest.raises(ValueError, match=r"v must have shape \(39,\)"):
        certificate.host_gap_at(point, y, s, w[:-1], 0.01, 0.0)
    with pytest.raises(ValueError, match=r"s must have shape \(300,\)"):
        certificate.host_gap_at(point, y, s[:5], w, 0.01, 0.0)


def test_a_nan_in_the_product_gives_no_certificate():
    if not native.available():
        pytest.skip(f"the native library is not available: {native.build_error()}")
    X, y, s, w, z = _problem(6, True)
    point = certificate.host_dual_point(z, y, s, True, lambda u: X.T @ u)
    point.v[3] = np.nan
    J, gap, _ = certificate.host_gap_at(point, y, s, w, 0.01, 0.0)
    assert np.isfinite(J) and np.isnan(gap)
