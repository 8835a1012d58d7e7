"""Standard errors, z-tests and confidence intervals from the Hessian at the fitted parameters.

With ``x̃ = [x, 1]``, weights ``s_i`` (1 without ``sample_weight``) and scores
``g_i = s_i (a_i - y_i) ⊗ x̃_i``, for the objective ``J = Σ s_i L_i + ||W||² / (2C)``::

    H = ∇²J (core.hessian.hessian_t)       M = Σ_i g_i g_iᵀ = Gᵀ G   (clusters: Σ_c S_c S_cᵀ)
    nonrobust  H⁻¹      HC0  H⁻¹ M H⁻¹      HC1  HC0 · n/(n-k)
    cluster    H⁻¹ M_c H⁻¹ · G/(G-1) · (n-1)/(n-k)     (statsmodels' CRV1 correction)

n rows, k parameters, G clusters; z = β/se, two-sided normal p-values and intervals.
Softmax (K columns W_0..W_{K-1}) is over-parameterised; results are in statsmodels MNLogit's
reference-class form β_k = W_k - W_0, b_k - b_0 (k >= 1). Its log-likelihood is the softmax
one with W_0 = 0, so without an L2 part its Hessian and scores are the softmax ones with
class 0's rows and columns deleted. With an L2 part (finite C) only b_0 is deleted (the
penalty pins the W shift) and the covariance is mapped by the delta method, ``A Σ Aᵀ``
with ``A: W_k - W_0``; it tends to the first as C -> inf. L1 fits: the active set only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from scipy.stats import norm

from jaxlogreg.core import checks as v
from jaxlogreg.core.hessian import flat, hessian_t, hvp_t, n_params, unflat, weighted_gram_t
from jaxlogreg.core.loss import dot
from jaxlogreg.core.model import Params, check_params, check_X_structure, float64_enabled
from jaxlogreg.core.sparse import coo_of_csr

COV_TYPES = ("nonrobust", "HC0", "HC1", "cluster")
_RCOND = 1e-12  # smallest eigenvalue / largest of the unit-diagonal Hessian still invertible
_SEPARATED = 1e-8  # every example's own-class probability above 1 - this: separation


@dataclasses.dataclass(frozen=True)
class Inference:
    """Estimates (k,), their standard errors, z, two-sided p-values, ``conf_int`` (k, 2) at
    level 1 - alpha, the covariance ``cov`` (k, k), the parameter ``names`` and ``cov_type``."""

    coef: np.ndarray
    std_err: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    conf_int: np.ndarray
    cov: np.ndarray
    names: tuple[str, ...]
    cov_type: str
    alpha: float

    def _bounds(self) -> tuple[str, str]:
        return f"[{self.alpha / 2:g}", f"{1 - self.alpha / 2:g}]"

    def summary(self) -> str:
        """A plain-text table, one row per parameter: coef, std err, z, P>|z| and the interval."""
        width = max(10, *(len(name) for name in self.names))
        head = ["coef", "std err", "z", "P>|z|", *self._bounds()]
        line = "=" * (width + 12 * len(head))
        title = f"Logistic regression inference, cov_type={self.cov_type}, alpha={self.alpha:g}"
        rows = [title, line, " " * width + "".join(f"{h:>12}" for h in head), "-" * len(line)]
        for i, name in enumerate(self.names):
            values = (self.coef[i], self.std_err[i], self.z[i], self.p_value[i],
                      *self.conf_int[i])
            rows.append(f"{name:<{width}}" + "".join(f"{x:>12.4g}" for x in values))
        return "\n".join([*rows, line])

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (for JSON)."""
        return {"cov_type": self.cov_type, "alpha": self.alpha, "names": list(self.names),
                "coef": self.coef.tolist(), "std_err": self.std_err.tolist(),
                "z": self.z.tolist(), "p_value": self.p_value.tolist(),
                "conf_int": self.conf_int.tolist(), "cov": self.cov.tolist()}

    def to_frame(self) -> Any:
        """A pandas DataFrame indexed by name: coef, std_err, z, p_value, ci_lower, ci_upper."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Inference.to_frame needs pandas, which is not installed; "
                              "use to_dict() or summary(), or pip install pandas") from None
        columns = {"coef": self.coef, "std_err": self.std_err, "z": self.z,
                   "p_value": self.p_value, "ci_lower": self.conf_int[:, 0],
                   "ci_upper": self.conf_int[:, 1]}
        return pd.DataFrame(columns, index=pd.Index(list(self.names), name="name"))


def inference(params: Params, X: Any, y: Any, *, sample_weight: Any = None, C: float = np.inf,
              fit_intercept: bool = True, cov_type: str = "nonrobust", groups: Any = None,
              alpha: float = 0.05, penalty: str | None = "l2", l1_ratio: float | None = None,
              feature_names: Any = None, classes: Any = None) -> Inference:
    """Inference for ``params`` (binary ``w`` (n,), ``b`` (); softmax ``w`` (n, K), ``b`` (K,))
    fitted on X (m, n) dense or scipy.sparse, y (m,) 0/1 or class indices, with scikit-learn's
    ``C``, ``penalty`` and ``l1_ratio`` (the L2 part ``(1 - r)/C`` enters H; an L1 part
    restricts inference to the non-zero features, with a UserWarning). ``groups`` (m,): the
    cluster of each row, for ``cov_type="cluster"``. Names: ``feature_names`` (default x0..),
    ``"intercept"``; softmax ``name[class]`` with ``classes`` (default 0..K-1).
    Computed in float64. Raises ValueError for bad options and a singular Hessian."""
    check_params(params)
    w, b = np.asarray(params.w, np.float64), np.asarray(params.b, np.float64)
    v.check_finite(w, "params.w")
    v.check_finite(b, "params.b")
    X, y, s, m = _checked_data(X, y, sample_weight, w)
    cov_type, groups, alpha = _checked_options(cov_type, groups, alpha, m)
    l2, has_l1 = _penalty(C, penalty, l1_ratio)
    names = _feature_names(feature_names, w.shape[0])
    K = 2 if w.ndim == 1 else w.shape[1]
    classes = [str(c) for c in (range(K) if classes is None else list(classes))]
    if len(classes) != K:
        raise ValueError(f"classes must have {K} labels to match params, got {len(classes)}")
    if has_l1:
        active = np.flatnonzero(np.any(w.reshape(w.shape[0], -1) != 0, axis=1))
        warnings.warn(
            f"L1 fit: inference on the {active.size} of {w.shape[0]} features with non-zero "
            "coefficients (and the intercept) only, treating that set as given: the results are "
            "conditional on the selected set, not valid post-selection inference", UserWarning,
            stacklevel=2)
        w, X, names = w[active], X[:, active], [names[i] for i in active]
    fitted = Params(w, b)
    residual = s[:, None] * (_probabilities(fitted, X) - _one_hot(y, K))  # (m, K or 1)
    if l2 == 0:
        _check_separation(residual, s)
    with float64_enabled(True):
        H = np.asarray(_hessian(fitted, X, s, l2, fit_intercept), np.float64)
        M = None if cov_type == "nonrobust" else _meat(X, residual, groups, fit_intercept)
        theta = np.asarray(flat(Params(jnp.asarray(w), jnp.asarray(b)), fit_intercept))
    keep, A, out_names = _parameterisation(names, classes, K, fit_intercept, l2 > 0)
    H_inv = _inverse(H[np.ix_(keep, keep)], [_sym_name(keep_i, names, classes, K)
                                               for keep_i in keep])
    cov = H_inv if M is None else H_inv @ M[np.ix_(keep, keep)] @ H_inv
    cov = A @ cov @ A.T
    if K > 2:  # β_k = θ_k - θ_0 (k >= 1), class-major
        theta = (theta.reshape(-1, K)[:, 1:] - theta.reshape(-1, K)[:, :1]).T.ravel()
    coef = theta
    cov *= _correction(cov_type, m, coef.size, groups)
    return _result(coef, cov, tuple(out_names), cov_type, alpha)


def _checked_data(X: Any, y: Any, sample_weight: Any, w: np.ndarray):
    """X (dense NumPy, float32 kept, other dtypes as float64; or CSR), y, the weights s (m,)
    float64, m; errors name them."""
    X = check_X_structure(X)
    if not sp.issparse(X):
        X = np.asarray(X)
        X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
        v.check_finite(X, "X")
    if X.shape[1] != w.shape[0]:
        raise ValueError(f"X must have {w.shape[0]} columns to match params.w of shape "
                         f"{w.shape}, got X of shape {X.shape}")
    m = X.shape[0]
    y = np.asarray(v.check_y(y, m, 2 if w.ndim == 1 else w.shape[1])).astype(np.int64)
    if sample_weight is None:
        return X, y, np.ones(m), m
    return X, y, np.asarray(v.check_sample_weight(sample_weight, m), np.float64), m


def _checked_options(cov_type: Any, groups: Any, alpha: Any, m: int):
    """cov_type, the cluster index of each row (or None) and alpha, checked."""
    v.check_choice(cov_type, "cov_type", COV_TYPES)
    ok = isinstance(alpha, int | float | np.floating) and not isinstance(alpha, bool)
    if not ok or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), got {v.show(alpha)}")
    if cov_type != "cluster":
        if groups is not None:
            raise ValueError(f"groups is only used with cov_type='cluster', got "
                             f"cov_type={cov_type!r}")
        return cov_type, None, float(alpha)
    if groups is None:
        raise ValueError("cov_type='cluster' needs groups: the cluster label of each row")
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != m:
        raise ValueError(f"groups must have shape ({m},), one cluster label per row of X, "
                         f"got shape {groups.shape}")
    index = np.unique(groups, return_inverse=True)[1].ravel()
    if index.max() < 1:
        raise ValueError("groups must hold at least 2 different clusters, got 1")
    return cov_type, index, float(alpha)


def _penalty(C: Any, penalty: Any, l1_ratio: Any) -> tuple[float, bool]:
    """The L2 strength of the summed objective, ``(1 - r)/C``, and whether there is an L1 part."""
    ok = isinstance(C, int | float | np.floating) and not isinstance(C, bool)
    if not ok or math.isnan(C) or C <= 0:
        raise ValueError(f"C must be a number > 0 (inf for no penalty), got {v.show(C)}")
    v.check_choice(penalty, "penalty", ("l2", "l1", "elasticnet", None))
    share = {"l1": 1.0, "elasticnet": l1_ratio}.get(penalty, 0.0)
    if penalty == "elasticnet" and not (isinstance(share, int | float) and 0 <= share <= 1):
        raise ValueError(f"l1_ratio must be a number in [0, 1] with penalty='elasticnet', "
                         f"got {v.show(l1_ratio)}")
    if penalty is None or math.isinf(C):
        return 0.0, False
    return (1.0 - share) / float(C), share > 0


def _feature_names(feature_names: Any, n: int) -> list[str]:
    if feature_names is None:
        return [f"x{j}" for j in range(n)]
    names = [str(name) for name in feature_names]
    if len(names) != n:
        raise ValueError(f"feature_names must have {n} names, one per feature, got {len(names)}")
    return names


def _with_intercept(X: Any, fit_intercept: bool) -> Any:
    """x̃ = [x, 1] (m, p): dense or CSR as X."""
    if not fit_intercept:
        return X
    if sp.issparse(X):
        return sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _probabilities(params: Params, X: Any) -> np.ndarray:
    """a (m, 1) for binary, softmax (m, K) otherwise, in float64 on the host (z in X's dtype:
    a float32 X is not copied to float64)."""
    z = np.asarray(X @ params.w.astype(X.dtype), np.float64) + params.b
    return expit(z)[:, None] if z.ndim == 1 else softmax(z, axis=1)


def _one_hot(y: np.ndarray, K: int) -> np.ndarray:
    return y[:, None].astype(np.float64) if K == 2 else np.eye(K)[y]


def _check_separation(residual: np.ndarray, s: np.ndarray) -> None:
    """Without a penalty, every weighted example fitted to within 1e-8 means separation."""
    worst = np.abs(residual[s > 0] / s[s > 0, None]).max()
    if worst < _SEPARATED:
        raise ValueError(
            "perfect separation: the parameters classify every example with probability > "
            f"1 - {_SEPARATED:g} (the maximum likelihood estimate is at infinity), so there are "
            "no finite standard errors; use a finite C (an L2 penalty) or drop the separating "
            "features")


def _hessian(params: Params, X: Any, s: np.ndarray, l2: float, fit_intercept: bool) -> Any:
    """H (k, k) from core.hessian: one product for dense X (in X's dtype), k Hessian-vector
    products for sparse X (H's columns; X stays sparse)."""
    dtype = np.float64 if sp.issparse(X) else X.dtype
    jparams = Params(jnp.asarray(params.w, dtype), jnp.asarray(params.b, dtype))
    if not sp.issparse(X):
        return _dense_hessian(jparams, jnp.asarray(X), jnp.asarray(s, dtype), l2, fit_intercept)
    Xt = jax.tree.map(jnp.asarray, coo_of_csr(sp.csr_array(X), np.float64, transpose=True))
    k = n_params(jparams, fit_intercept)

    def column(e: jax.Array) -> jax.Array:
        return flat(hvp_t(jparams, Xt, None, jnp.asarray(s), l2,
                          unflat(e, jparams, fit_intercept)), fit_intercept)

    return jax.vmap(column)(jnp.eye(k))  # H is symmetric: rows = columns


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _dense_hessian(params: Params, X: jax.Array, s: jax.Array, l2: float,
                   fit_intercept: bool) -> jax.Array:
    return hessian_t(params, X.T, None, s, l2, fit_intercept=fit_intercept)


@functools.partial(jax.jit, static_argnames="fit_intercept")
def _dense_gram(X: jax.Array, c: jax.Array, fit_intercept: bool) -> jax.Array:
    return weighted_gram_t(X.T, c, fit_intercept)


def _meat(X: Any, residual: np.ndarray, groups: np.ndarray | None,
          fit_intercept: bool) -> np.ndarray:
    """M = Gᵀ G (k, k) with G (m, pK) the scores ``x̃_ij r_ik`` in H's (j, k) order; with
    clusters G is first summed within each cluster (an indicator product). Binary dense X
    without clusters: ``X̃ᵀ diag(r²) X̃``, one product in X's dtype (G is not formed)."""
    m, K = residual.shape
    if K == 1 and groups is None and not sp.issparse(X):
        c = jnp.asarray(residual[:, 0] ** 2, X.dtype)
        return np.asarray(_dense_gram(jnp.asarray(X), c, fit_intercept), np.float64)
    Xa = _with_intercept(X, fit_intercept)
    if sp.issparse(Xa):
        blocks = [sp.csr_array(sp.diags(residual[:, k]) @ Xa) for k in range(K)]
        order = np.arange(Xa.shape[1] * K).reshape(K, -1).T.ravel()  # (j, k) order
        G = sp.hstack(blocks, format="csc")[:, order]
        if groups is not None:
            G = sp.csr_array((np.ones(m), (groups, np.arange(m)))) @ G
        return np.asarray((G.T @ G).toarray(), np.float64)
    G = (jnp.asarray(Xa)[:, :, None] * jnp.asarray(residual)[:, None, :]).reshape(m, -1)
    if groups is not None:
        G = jax.ops.segment_sum(G, jnp.asarray(groups), int(groups.max()) + 1)
    return np.asarray(dot(G.T, G), np.float64)


def _sym_name(index: int, names: list[str], classes: list[str], K: int) -> str:
    """The name of H's row ``index``: the feature (or intercept), with its class for softmax."""
    per = 1 if K == 2 else K
    j, k = divmod(index, per)
    name = names[j] if j < len(names) else "intercept"
    return name if K == 2 else f"{name}[{classes[k]}]"


def _parameterisation(names: list[str], classes: list[str], K: int, fit_intercept: bool,
                      penalised: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """H's rows kept, the map A from them to the reported parameters, and their names.

    Binary: all, A = I. Softmax: reported β_{j,k} = θ_{j,k} - θ_{j,0} (k >= 1) class-major as
    MNLogit's; without L2 class 0 is deleted (A = I after reordering), with L2 only b_0 (A
    subtracts the class-0 weight; the intercepts kept are already b_k - b_0 with b_0 = 0).
    """
    p = len(names) + int(fit_intercept)
    all_names = names + ["intercept"] * int(fit_intercept)
    if K == 2:
        return np.arange(p), np.eye(p), all_names
    if not penalised:
        keep = np.array([j * K + k for j in range(p) for k in range(1, K)])
    else:
        keep = np.array([i for i in range(p * K) if not (fit_intercept and i == (p - 1) * K)])
    position = {int(i): c for c, i in enumerate(keep)}
    rows, out_names = [], []
    for k in range(1, K):
        for j in range(p):
            row = np.zeros(keep.size)
            row[position[j * K + k]] = 1.0
            if j * K in position:  # the class-0 entry is a parameter: subtract it
                row[position[j * K]] = -1.0
            rows.append(row)
            out_names.append(f"{all_names[j]}[{classes[k]}]")
    return keep, np.array(rows), out_names


def _inverse(H: np.ndarray, names: list[str]) -> np.ndarray:
    """H⁻¹ from the eigenvalues of H scaled to a unit diagonal; a singular H is an error
    naming the parameters of its null direction."""
    d = np.sqrt(np.diag(H))
    if not np.all(d > 0):
        zero = [names[i] for i in np.flatnonzero(~(d > 0))]
        raise ValueError(_singular(f"the Hessian's diagonal is 0 for {zero} (no information: a "
                                   "column of zeros, or zero weights)"))
    values, vectors = np.linalg.eigh(H / np.outer(d, d))
    if not values[0] > _RCOND * values[-1]:
        null = np.abs(vectors[:, 0])
        involved = [names[i] for i in np.flatnonzero(null >= 0.3 * null.max())]
        raise ValueError(_singular(
            f"smallest / largest eigenvalue of the scaled Hessian {values[0] / values[-1]:.2g}, "
            f"its null direction involves {involved}"))
    return (vectors / values) @ vectors.T / np.outer(d, d)


def _singular(detail: str) -> str:
    return (f"the Hessian is singular, so the parameters are not identified ({detail}): perfect "
            "separation (some features predict the labels exactly; use a finite C) or collinear "
            "features (a constant column with fit_intercept=True, duplicated or linearly "
            "dependent columns; drop them)")


def _correction(cov_type: str, n: int, k: int, groups: np.ndarray | None) -> float:
    """HC1's n/(n - k); cluster's G/(G - 1) · (n - 1)/(n - k); else 1."""
    if cov_type not in ("HC1", "cluster"):
        return 1.0
    if n <= k:
        raise ValueError(f"cov_type={cov_type!r} needs more rows than parameters, got n={n} "
                         f"rows and k={k} parameters")
    if cov_type == "HC1":
        return n / (n - k)
    G = int(groups.max()) + 1
    return G / (G - 1) * (n - 1) / (n - k)


def _result(coef: np.ndarray, cov: np.ndarray, names: tuple[str, ...], cov_type: str,
            alpha: float) -> Inference:
    std_err = np.sqrt(np.diag(cov))
    z = coef / std_err
    half = norm.ppf(1 - alpha / 2) * std_err
    return Inference(coef=coef, std_err=std_err, z=z, p_value=2 * norm.sf(np.abs(z)),
                     conf_int=np.column_stack([coef - half, coef + half]), cov=cov,
                     names=names, cov_type=cov_type, alpha=alpha)


__all__ = ["COV_TYPES", "Inference", "inference"]
