"""The influence of each training example on a fitted model: leverage, Cook's distance, DFBETA
and the influence on a test loss, from the Hessian of ``J = Σ s_i L_i + ||w||²/(2C)``.

With ``x̃ = [x; 1]`` (no 1 without an intercept), ``M_i = x̃_i ⊗ I_K``, residual
``r_i = a_i - e_{y_i}`` (binary: ``a_i - y_i``, K = 1), ``V_i = diag(a_i) - a_i a_iᵀ``
(binary: ``a_i(1 - a_i)``), ``H`` from :func:`~jaxlogreg.core.hessian.hessian_t`::

    Q_i = M_iᵀ H⁻¹ M_i   L_i = s_i V_i Q_i   leverage h_i = tr L_i   u_i = (I - L_i)⁻¹ r_i
    dfbeta_i = β̂ - β̂_(i) ≈ -s_i H⁻¹ M_i u_i      cooks_i = s_i² u_iᵀ Q_i u_i / k
    test_loss_influence_i = -∇L_testᵀ H⁻¹ ∇L_i   (∇L_i = M_i r_i, unweighted)
    test_loss_change_i = -∇L_testᵀ dfbeta_i       (leaving example i out)

``dfbeta_i`` is one Newton step of the fit without example i from β̂ (Sherman-Morrison-Woodbury
on ``H - s_i M_i V_i M_iᵀ``), statsmodels' ``d_params``. Softmax's H is singular along
``c ⊗ 1_K`` (unpenalised coordinates); H⁻¹ is then the pseudo-inverse. Two passes over X, in
row chunks (sparse X densified per chunk): H, then everything per example. docs/influence.md.
"""

from __future__ import annotations

import dataclasses
import functools
from numbers import Real
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from jaxlogreg.core import checks as v
from jaxlogreg.core.hessian import hessian_t, n_params
from jaxlogreg.core.loss import dot
from jaxlogreg.core.model import (
    Params,
    accumulation_dtype,
    check_params,
    check_X_structure,
    in_params_dtype,
    n_classes_of,
)
from jaxlogreg.core.sparse import check_dense

CHUNK_ELEMENTS = 1 << 23  # per-chunk temporaries: rows x max(n, K k) values
RANKINGS = ("cooks_distance", "leverage", "test_loss_influence", "test_loss_change", "dfbeta")


@dataclasses.dataclass(frozen=True)
class Influence:
    """Per-example influence measures (NumPy, in the parameters' dtype).

    ``leverage`` (m,), ``cooks_distance`` (m,), ``dfbeta`` (m, k) with columns in
    :func:`~jaxlogreg.core.hessian.flat` order (w row-major, then b), ``test_loss_influence``
    (m,) or None: d(total test loss)/dε when example i's loss gets weight ``s_i + ε`` (first
    order: leaving i out changes the test loss by about ``-s_i * test_loss_influence[i]``);
    ``test_loss_change`` (m,) or None: that change with the leverage correction, from dfbeta.
    """

    leverage: np.ndarray
    cooks_distance: np.ndarray
    dfbeta: np.ndarray
    test_loss_influence: np.ndarray | None
    test_loss_change: np.ndarray | None
    n_params: int

    def most_influential(self, k: int = 10, by: str = "cooks_distance") -> np.ndarray:
        """Indices of the ``k`` examples with the largest ``|by|`` (``"dfbeta"``: the largest
        ``max_j |dfbeta_ij|``), largest first."""
        v.check_choice(by, "by", RANKINGS)
        k = v.check_int_at_least(k, "k", 1)
        if by.startswith("test_") and self.test_loss_influence is None:
            raise ValueError(f"by={by!r} needs X_test and y_test in influence()")
        score = np.abs(self.dfbeta).max(axis=1) if by == "dfbeta" else np.abs(getattr(self, by))
        return np.argsort(-score, kind="stable")[:k]


def _check_C(C: Any) -> float:
    if not isinstance(C, Real) or isinstance(C, bool) or not C > 0:
        raise ValueError(f"C must be a real number > 0 (inf for no penalty), got {v.show(C)}")
    return float(C)


def _check_data(params: Params, X: Any, y: Any, name: str, y_name: str) -> tuple[Any, Any]:
    """X (m, n) dense (NumPy/JAX, finite) or a canonical CSR array, and its labels."""
    X = check_X_structure(X, name)
    if not sp.issparse(X):
        v.check_finite(X, name)
    if X.shape[1] != params.w.shape[0]:
        raise ValueError(f"{name} must have {params.w.shape[0]} columns to match params.w of "
                         f"shape {tuple(params.w.shape)}, got shape {tuple(X.shape)}")
    check_dense(y, y_name, "a 1-D array of labels")
    return X, np.asarray(v.check_y(y, X.shape[0], n_classes_of(params), y_name))


def _chunk_rows(m: int, n: int, K: int, k: int) -> int:
    return int(min(m, max(1, CHUNK_ELEMENTS // max(n + 1, K * k))))


def _chunks(X: Any, arrays: tuple[np.ndarray, ...], rows: int, dtype: Any):
    """``(X_c, *arrays_c, valid)`` per block of ``rows`` rows, the last padded with zero rows
    (zero weight) to ``rows`` so that one compiled program serves every block."""
    m = X.shape[0]
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        block = X[start:stop]
        block = np.asarray(block.toarray() if sp.issparse(block) else block, dtype)
        pad = rows - (stop - start)
        parts = [np.pad(a[start:stop], (0, pad)) for a in arrays]
        yield (np.pad(block, ((0, pad), (0, 0))), *parts, stop - start)


def _residuals(params: Params, Xa: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per example ``r = a - e_y`` (c, K) and ``V = diag(a) - a aᵀ`` (c, K, K); K = 1 binary."""
    w, b = params
    z = dot(Xa[:, : w.shape[0]], w) + b
    if w.ndim == 1:
        a = jax.nn.sigmoid(z)
        return (a - y)[:, None], (a * (1 - a))[:, None, None]
    A = jax.nn.softmax(z, axis=1)
    V = jax.vmap(jnp.diag)(A) - A[:, :, None] * A[:, None, :]
    return A - jax.nn.one_hot(y, A.shape[1], dtype=A.dtype), V


def _augment(X: jax.Array, fit_intercept: bool) -> jax.Array:
    return jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], 1) if fit_intercept else X


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _chunk_hessian(params: Params, X: jax.Array, y: jax.Array, s: jax.Array, l2: jax.Array, *,
                   fit_intercept: bool) -> jax.Array:
    return hessian_t(params, X.T, y, s, l2, fit_intercept=fit_intercept)


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _chunk_test_gradient(params: Params, X: jax.Array, y: jax.Array, valid: jax.Array, *,
                         fit_intercept: bool) -> jax.Array:
    """``Σ_i M_i r_i`` (k,) over the chunk's rows: the gradient of the total test loss."""
    Xa = _augment(X.astype(params.w.dtype), fit_intercept)
    r, _ = _residuals(params, Xa, y)
    return dot(Xa.T, r * valid[:, None]).reshape(-1)


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _chunk_measures(params: Params, X: jax.Array, y: jax.Array, s: jax.Array,
                    H_inv: jax.Array, test_direction: jax.Array, *, fit_intercept: bool):
    """Leverage, Cook's distance (before ``/ k``), dfbeta, test-loss influence and change."""
    Xa = _augment(X.astype(params.w.dtype), fit_intercept)  # (c, p)
    r, V = _residuals(params, Xa, y)  # (c, K), (c, K, K)
    (c, p), K = Xa.shape, r.shape[1]
    G = dot(Xa, H_inv.reshape(p, K * p * K)).reshape(c, K, p, K)  # G_i = M_iᵀ H⁻¹ (K, k)
    Q = jnp.einsum("ckjq,cj->ckq", G, Xa, precision=jax.lax.Precision.HIGHEST)  # (c, K, K)
    L = s[:, None, None] * jnp.einsum("ckl,clq->ckq", V, Q, precision=jax.lax.Precision.HIGHEST)
    u = jnp.linalg.solve(jnp.eye(K, dtype=L.dtype) - L, r[:, :, None])[:, :, 0]  # (c, K)
    dfbeta = -s[:, None] * jnp.einsum("ckl,ck->cl", G.reshape(c, K, p * K), u,
                                      precision=jax.lax.Precision.HIGHEST)
    cooks = s**2 * jnp.einsum("ck,ckq,cq->c", u, Q, u, precision=jax.lax.Precision.HIGHEST)
    toward_test = dot(Xa, test_direction.reshape(p, K))  # M_iᵀ H⁻¹ ∇L_test (c, K)
    influence = -jnp.sum(toward_test * r, axis=1)
    change = s * jnp.sum(toward_test * u, axis=1)
    return jnp.trace(L, axis1=1, axis2=2), cooks, dfbeta, influence, change


def _null_space(k: int, K: int, p: int, penalised: bool, fit_intercept: bool) -> np.ndarray:
    """The projector onto softmax's null directions ``c ⊗ 1_K`` over unpenalised coordinates
    (all of them without a penalty, else the intercept's); zero for binary."""
    if K == 1:
        return np.zeros((k, k))
    free = np.full(p, 0.0 if penalised else 1.0)
    if fit_intercept:
        free[-1] = 1.0
    return np.kron(np.diag(free), np.full((K, K), 1.0 / K))


def _inverse(H: np.ndarray, K: int, p: int, penalised: bool, fit_intercept: bool) -> np.ndarray:
    """H⁻¹ (the pseudo-inverse for softmax) in float64, from the eigenvalues of ``H + τ E``;
    refuses an H whose condition number is beyond float64's precision."""
    E = _null_space(H.shape[0], K, p, penalised, fit_intercept)
    tau = max(float(np.trace(H)) / H.shape[0], np.finfo(np.float64).tiny)
    eigenvalues, vectors = np.linalg.eigh(H + tau * E)
    if not eigenvalues[0] > H.shape[0] * np.finfo(np.float64).eps * eigenvalues[-1]:
        raise np.linalg.LinAlgError(
            f"the Hessian at params is singular (eigenvalues from {eigenvalues[0]:.3g} to "
            f"{eigenvalues[-1]:.3g}): collinear features, a separable problem without penalty, "
            "or params far from a fit; use a finite C")
    return (vectors / eigenvalues) @ vectors.T - E / tau


def _check_inputs(params: Any, X: Any, y: Any, sample_weight: Any, C: Any, X_test: Any,
                  y_test: Any) -> tuple[Any, np.ndarray, np.ndarray, float, tuple | None]:
    check_params(params)
    v.check_finite(params.w, "params.w")
    v.check_finite(params.b, "params.b")
    X, y = _check_data(params, X, y, "X", "y")
    check_dense(sample_weight, "sample_weight", "a 1-D array of weights")
    s = (np.ones(X.shape[0]) if sample_weight is None
         else np.asarray(v.check_sample_weight(sample_weight, X.shape[0]), np.float64))
    if (X_test is None) != (y_test is None):
        given, missing = ("X_test", "y_test") if y_test is None else ("y_test", "X_test")
        raise ValueError(f"{given} was given without {missing}: pass both or neither")
    test = None if X_test is None else _check_data(params, X_test, y_test, "X_test", "y_test")
    return X, y, s, _check_C(C), test


@in_params_dtype
def influence(params: Params, X: Any, y: Any, *, sample_weight: Any = None, C: float = np.inf,
              fit_intercept: bool = True, X_test: Any = None, y_test: Any = None) -> Influence:
    """The influence of each training example on the fit ``params`` of X (m, n), y (m,).

    ``params`` should minimise ``Σ s_i L_i + ||w||²/(2C)`` (scikit-learn's C; ``s`` =
    ``sample_weight``, raw). Dense (NumPy/JAX) or scipy.sparse X. With ``X_test, y_test`` also
    the influence on the total test loss ``Σ_test L``. Raises ``LinAlgError`` if H is singular.
    """
    X, y, s, C, test = _check_inputs(params, X, y, sample_weight, C, X_test, y_test)
    dtype = accumulation_dtype(params.w.dtype)
    params = Params(jnp.asarray(params.w, dtype), jnp.asarray(params.b, dtype))
    s = s.astype(dtype)
    K = 1 if params.w.ndim == 1 else params.w.shape[1]
    k, p = n_params(params, fit_intercept), params.w.shape[0] + int(fit_intercept)
    rows = _chunk_rows(X.shape[0], X.shape[1], K, k)
    H = sum(np.asarray(_chunk_hessian(params, Xc, yc, sc, 0.0, fit_intercept=fit_intercept),
                       np.float64) for Xc, yc, sc, _ in _chunks(X, (y, s), rows, dtype))
    H += np.diag(np.r_[np.full(params.w.size, 1 / C), np.zeros(k - params.w.size)])
    H_inv = _inverse(H, K, p, np.isfinite(C), fit_intercept)
    direction = np.zeros(k)
    if test is not None:
        X_t, y_t = test
        test_rows = _chunk_rows(X_t.shape[0], X_t.shape[1], K, k)
        gradient = sum(np.asarray(_chunk_test_gradient(
            params, Xc, yc, (np.arange(test_rows) < n).astype(dtype),
            fit_intercept=fit_intercept), np.float64)
            for Xc, yc, n in _chunks(X_t, (y_t,), test_rows, dtype))
        direction = H_inv @ gradient
    parts = [_chunk_measures(params, Xc, yc, sc, jnp.asarray(H_inv, dtype),
                             jnp.asarray(direction, dtype), fit_intercept=fit_intercept)
             for Xc, yc, sc, _ in _chunks(X, (y, s), rows, dtype)]
    leverage, cooks, dfbeta, test_influence, test_change = (
        np.concatenate([np.asarray(part[j]) for part in parts])[: X.shape[0]] for j in range(5))
    return Influence(leverage=leverage, cooks_distance=cooks / k, dfbeta=dfbeta,
                     test_loss_influence=None if test is None else test_influence,
                     test_loss_change=None if test is None else test_change, n_params=k)


__all__ = ["Influence", "influence"]
