"""Feature scaling with scikit-learn's ``StandardScaler``, and its form in model files.

``jaxlogreg train`` with ``data.standardize = true`` fits a ``StandardScaler`` on the training
part only and stores its ``mean_`` and ``scale_`` in the model file (header key
``"standardizer"``: ``{"kind": "standardizer", "mean": [...], "scale": [...]}``, the format of
earlier versions), so prediction applies the same scaling again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler


def fit_scaler(X: Any) -> StandardScaler:
    """A ``StandardScaler`` fitted on the training features ``X`` (m, n), in float64."""
    return StandardScaler().fit(np.asarray(X, dtype=np.float64))


def scale(scaler: StandardScaler | None, X: Any) -> Any:
    """``(X - mean) / scale`` in X's float dtype; X unchanged without a scaler."""
    if scaler is None:
        return X
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != scaler.n_features_in_:
        raise ValueError(
            f"X must have shape (n_samples, {scaler.n_features_in_}) to match the saved feature "
            f"scaling, got shape {X.shape}"
        )
    return scaler.transform(X).astype(X.dtype if X.dtype.kind == "f" else np.float32, copy=False)


def scaler_to_dict(scaler: StandardScaler) -> dict[str, Any]:
    """JSON-ready ``{"kind", "mean", "scale"}`` (Python floats round-trip float64 exactly)."""
    return {
        "kind": "standardizer",
        "mean": [float(x) for x in scaler.mean_],
        "scale": [float(x) for x in scaler.scale_],
    }


def scaler_from_dict(d: Mapping[str, Any]) -> StandardScaler:
    """Inverse of :func:`scaler_to_dict`; raises ``ValueError`` naming what is wrong."""
    if not isinstance(d, Mapping):
        raise TypeError(f"feature scaling must be a dict, got {type(d).__name__}")
    missing = [k for k in ("mean", "scale") if k not in d]
    if missing:
        raise ValueError(f"feature scaling is missing key(s) {missing}, got {sorted(d)}")
    if d.get("kind", "standardizer") != "standardizer":
        raise ValueError(f"feature scaling kind must be 'standardizer', got {d['kind']!r}")
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
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale_, scale_**2
    scaler.n_features_in_ = mean.shape[0]
    scaler.n_samples_seen_ = 0
    return scaler
