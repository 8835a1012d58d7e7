"""Feature scaling with scikit-learn's ``StandardScaler``, and its form in model files.

``jaxlogreg train`` with ``data.standardize = true`` fits it on the training part only. Dense
features are centred and scaled, ``(X - mean) / scale``, and the model file stores ``mean_``
and ``scale_`` (header key ``"standardizer"``: ``{"kind": "standardizer", "mean": [...],
"scale": [...]}``, as earlier versions) for prediction. Sparse features are only divided by
the standard deviation (``with_mean=False``: centring would make every zero non-zero), and the
model is saved with the scaling folded into its weights (:func:`fold_scaling`:
``X / s · w = X · (w / s)``), so the file holds no per-feature lists and applies to raw
features; a centring scaler is applied to sparse features by the same folding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import StandardScaler

from jaxlogreg.core.model import Params


def fit_scaler(X: Any) -> StandardScaler:
    """A ``StandardScaler`` fitted on the training features ``X`` (m, n), in float64.

    Dense X: centered and scaled. Sparse X: scaled only (``with_mean=False``), kept sparse.
    """
    if sp.issparse(X):
        return StandardScaler(with_mean=False).fit(X.tocsr().astype(np.float64))
    return StandardScaler().fit(np.asarray(X, dtype=np.float64))


def scale(scaler: StandardScaler | None, X: Any) -> Any:
    """``(X - mean) / scale`` (``X / scale`` for a scaler without centering) in X's float
    dtype; X unchanged without a scaler. A sparse X stays sparse (CSR)."""
    if scaler is None:
        return X
    sparse = sp.issparse(X)
    X = X.tocsr() if sparse else np.asarray(X)
    if X.ndim != 2 or X.shape[1] != scaler.n_features_in_:
        raise ValueError(
            f"X must have shape (n_samples, {scaler.n_features_in_}) to match the saved feature "
            f"scaling, got shape {X.shape}"
        )
    if sparse and scaler.with_mean:
        raise ValueError(
            "X is sparse, but the feature scaling centers the features (it was fitted on dense "
            "data), which would densify X; give X in the dense format it was fitted on, or "
            "fold the scaling into the model (jaxlogreg.data.scaling.fold_scaling)"
        )
    dtype = X.dtype if X.dtype.kind == "f" else np.float32
    return scaler.transform(X).astype(dtype, copy=False)


def fold_scaling(params: Params, scaler: StandardScaler) -> Params:
    """Parameters that give on raw features what ``params`` give on ``scale(scaler, X)``:
    ``w / s`` and ``b - (mean / s) · w`` (the mean term is 0 for a scaler without centering),
    computed in float64 and returned in the dtype of ``params``. Exact up to rounding."""
    w, b = np.asarray(params.w), np.asarray(params.b)
    s = np.asarray(scaler.scale_, np.float64)
    w64 = np.asarray(w, np.float64) / (s if w.ndim == 1 else s[:, None])
    b64 = np.asarray(b, np.float64)
    if scaler.with_mean:
        b64 = b64 - np.asarray(scaler.mean_, np.float64) @ w64
    return Params(w=w64.astype(w.dtype), b=np.asarray(b64, dtype=b.dtype))


def scaler_to_dict(scaler: StandardScaler) -> dict[str, Any]:
    """JSON-ready ``{"kind", "mean", "scale"}`` (Python floats round-trip float64 exactly).

    A scaler without centering is written with ``"mean"`` all 0 and ``"with_mean": false``
    (earlier readers then apply ``(X - 0) / scale``: the same)."""
    mean = scaler.mean_ if scaler.with_mean else np.zeros_like(scaler.scale_)
    out = {
        "kind": "standardizer",
        "mean": [float(x) for x in mean],
        "scale": [float(x) for x in scaler.scale_],
    }
    if not scaler.with_mean:
        out["with_mean"] = False
    return out


def scaler_from_dict(d: Mapping[str, Any]) -> StandardScaler:
    """Inverse of :func:`scaler_to_dict`; raises ``ValueError`` naming what is wrong."""
    if not isinstance(d, Mapping):
        raise TypeError(f"feature scaling must be a dict, got {type(d).__name__}")
    missing = [k for k in ("mean", "scale") if k not in d]
    if missing:
        raise ValueError(f"feature scaling is missing key(s) {missing}, got {sorted(d)}")
    if d.get("kind", "standardizer") != "standardizer":
        raise ValueError(f"feature scaling kind must be 'standardizer', got {d['kind']!r}")
    with_mean = d.get("with_mean", True)
    if not isinstance(with_mean, bool):
        raise TypeError(f"feature scaling with_mean must be true or false, got {with_mean!r}")
    try:
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale_ = np.asarray(d["scale"], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"feature scaling mean and scale must be lists of numbers ({err})") from None
    if mean.ndim != 1 or mean.shape[0] == 0 or scale_.shape != mean.shape:
        raise ValueError(
            "feature scaling mean and scale must be non-empty lists of the same length, got "
            f"shapes {mean.shape} and {scale_.shape}"
        )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale_)) and np.all(scale_ > 0)):
        raise ValueError("feature scaling mean must be finite and scale finite and > 0")
    if not with_mean and np.any(mean != 0):
        raise ValueError("feature scaling with_mean = false needs a mean of all 0")
    scaler = StandardScaler(with_mean=with_mean)
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale_, scale_**2
    scaler.n_features_in_ = mean.shape[0]
    scaler.n_samples_seen_ = 0
    return scaler
