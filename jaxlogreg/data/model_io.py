"""Model files without pickle: an archive (:mod:`jaxlogreg.data.archive`) holding::

    header   UTF-8 JSON: format name and version, n_features, n_classes, dtype and shape of
             every array, classes, feature names (or null), config, feature scaling, metadata
    w        float (n,) or (n, K)
    b        float () or (K,)
    classes  (K,) numeric class labels; absent when the labels are strings (kept in the JSON)

Loading checks everything against the header, so a truncated, corrupt or edited file raises
:class:`ModelFileError` (a ``ValueError``) naming the file and the problem, instead of producing
a model that silently predicts something else. Arrays round-trip exactly.

Feature names, like scikit-learn's ``feature_names_in_``, are the names of the training data's
columns (a CSV header), so that new data can be matched to them by name; None for data
without names. Format version 2 added them: files of version 1 load, with no names.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sklearn.preprocessing import StandardScaler

from jaxlogreg.core.model import Params, check_params, n_classes_of
from jaxlogreg.data.archive import ArchiveError, array_bytes, jsonable, open_archive, write_archive
from jaxlogreg.data.scaling import scaler_from_dict, scaler_to_dict

FORMAT_NAME = "jaxlogreg-model"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
_PARAM_DTYPES = ("float16", "float32", "float64")


class ModelFileError(ArchiveError):
    """A model file that cannot be loaded; ``path`` names it."""

    what = "model file"


class SavedModel(NamedTuple):
    """What :func:`load_model` returns.

    ``params`` hold NumPy arrays with the dtypes they were saved with; ``classes`` is a (K,)
    array (numeric, or ``str`` for string labels); ``scaler`` is the fitted
    ``sklearn.preprocessing.StandardScaler`` of the features, or None; ``feature_names`` the
    names of the n features (the training data's columns), or None.
    """

    params: Params
    classes: np.ndarray
    config: dict[str, Any]
    scaler: StandardScaler | None
    metadata: dict[str, Any]
    feature_names: tuple[str, ...] | None = None


def _json_dict(value: Any, name: str) -> dict[str, Any]:
    """A dict with string keys as JSON values (non-finite floats as strings)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{name} must be a dict with string keys, got {type(value).__name__}")
    try:
        return jsonable(value)
    except TypeError as err:
        raise TypeError(f"{name} must hold only JSON values (numbers, str, ...): {err}") from None


def _classes_entry(classes: Any, n_classes: int) -> tuple[dict[str, Any], np.ndarray | None]:
    """Header entry for ``classes`` and the numeric array to store (None for strings)."""
    arr = np.asarray(classes)
    if arr.ndim != 1 or arr.shape[0] != n_classes:
        raise ValueError(
            f"classes must have shape ({n_classes},) to match the parameters' {n_classes} "
            f"classes, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "biufUS":
        raise TypeError(f"classes must be numbers or strings, got dtype {arr.dtype}")
    if np.unique(arr).shape[0] != n_classes:
        raise ValueError(f"classes must be unique, got {arr.tolist()}")
    if arr.dtype.kind in "US":
        values = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in arr.tolist()]
        return {"kind": "str", "values": values}, None
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"classes must be finite, got {arr.tolist()}")
    return {"kind": "array"}, arr


def save_model(
    path: str | os.PathLike,
    params: Params,
    *,
    classes: Sequence[Any] | np.ndarray,
    config: Mapping[str, Any] | None = None,
    scaler: StandardScaler | None = None,
    metadata: Mapping[str, Any] | None = None,
    feature_names: Sequence[str] | np.ndarray | None = None,
) -> Path:
    """Write ``params`` and their context to ``path`` as one ``.npz`` file (atomically).

    Args:
      params: binary ``w`` (n,), ``b`` () or multinomial ``w`` (n, K), ``b`` (K,); float16/32/64.
      classes: (K,) class labels in column order (K = 2 for binary): numbers or strings.
      config: the training configuration (JSON values; tuples come back as lists).
      scaler: a fitted ``StandardScaler`` of the n features, applied again before prediction.
      metadata: free-form JSON information (data source, metrics, date...).
      feature_names: the n names of the features (unique strings, e.g. a CSV header or
        ``clf.feature_names_in_``), or None when the training data had none.

    Returns:
      The path written.
    """
    if not isinstance(params, Params):
        raise TypeError(f"params must be jaxlogreg.Params(w, b), got {type(params).__name__}")
    w, b = np.asarray(params.w), np.asarray(params.b)
    _check_arrays({"params.w": w, "params.b": b}, TypeError, ValueError)
    check_params(Params(w, b))
    n_features, n_classes = int(w.shape[0]), n_classes_of(Params(w, b))
    classes_entry, classes_arr = _classes_entry(classes, n_classes)
    scaling = None if scaler is None else scaler_to_dict(scaler)
    if scaling is not None and len(scaling["mean"]) != n_features:
        raise ValueError(
            f"scaler must have {n_features} features to match params.w, got {len(scaling['mean'])}"
        )
    names = None
    if feature_names is not None:
        names = _checked_names(feature_names, n_features, TypeError, ValueError)
    from jaxlogreg.runtime.version import __version__  # the package's __init__ imports this module

    arrays = {"w": w, "b": b}
    if classes_arr is not None:
        arrays["classes"] = classes_arr
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "library_version": __version__,
        "n_features": n_features,
        "n_classes": n_classes,
        "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape)} for k, a in arrays.items()},
        "classes": classes_entry,
        "feature_names": names,
        "config": _json_dict(config, "config"),
        "standardizer": scaling,
        "metadata": _json_dict(metadata, "metadata"),
    }
    return write_archive(path, header, arrays)


_HEADER_TYPES = {
    "n_features": int,
    "n_classes": int,
    "arrays": dict,
    "classes": dict,
    "config": dict,
    "metadata": dict,
}


def load_model(path: str | os.PathLike) -> SavedModel:
    """Read and validate a file written by :func:`save_model` (never unpickles).

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ModelFileError: (a ``ValueError``) the file is not a valid model file of a supported
        version: not an archive, truncated, corrupt, arrays missing or extra, dtypes or shapes
        that disagree with the header or with each other, inconsistent classes, bad JSON.
    """
    with open_archive(path, ModelFileError) as archive:
        fail = archive.fail
        if not {"header", "w", "b"} <= archive.names:
            archive.check_names({"header", "w", "b"})  # names what is missing
        header = archive.header()
        _check_header(header, fail)
        kind = header["classes"]["kind"]
        expected = {"header", "w", "b"} | ({"classes"} if kind == "array" else set())
        archive.check_names(expected)
        declared = header["arrays"]
        if set(declared) != expected - {"header"}:
            raise fail(
                f"header lists arrays {sorted(declared)}, expected {sorted(expected - {'header'})}"
            )
        for key, spec in declared.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list):
                raise fail(f"header entry for array {key!r} must give dtype and shape, got {spec!r}")
        arrays = {key: archive.array(key, array_bytes(spec)) for key, spec in declared.items()}
    for key, spec in declared.items():
        arr = arrays[key]
        if arr.dtype.name != spec.get("dtype") or list(arr.shape) != spec["shape"]:
            raise fail(
                f"array {key!r} has dtype {arr.dtype.name} and shape {list(arr.shape)}, but the "
                f"header says dtype {spec.get('dtype')} and shape {spec['shape']}"
            )
    params = _params(arrays["w"], arrays["b"], header, fail)
    classes = _classes(header["classes"], arrays.get("classes"), header["n_classes"], fail)
    scaler = None
    if header["standardizer"] is not None:
        try:
            scaler = scaler_from_dict(header["standardizer"])
        except (TypeError, ValueError) as err:
            raise fail(f"invalid feature scaling: {err}") from None
        if scaler.n_features_in_ != header["n_features"]:
            raise fail(
                f"feature scaling has {scaler.n_features_in_} features, the parameters "
                f"{header['n_features']}"
            )
    names = header.get("feature_names")  # absent from version 1 files
    if names is not None:
        names = _checked_names(names, header["n_features"], fail, fail)
    return SavedModel(params, classes, header["config"], scaler, header["metadata"], names)


def _checked_names(names: Any, n: int, bad_type: Any, bad_value: Any) -> tuple[str, ...]:
    """``names`` as n unique strings; else ``bad_type`` (not strings) or ``bad_value``."""
    if isinstance(names, np.ndarray) and names.ndim == 1:
        names = names.tolist()
    if not isinstance(names, list | tuple) or not all(isinstance(x, str) for x in names):
        raise bad_type(f"feature_names must be a list of {n} strings, got {_short(names)}")
    if len(names) != n:
        raise bad_value(f"feature_names must have one name per feature, {n}, got {len(names)}")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise bad_value(f"feature_names must be unique, got {_short(repeated)} more than once")
    return tuple(names)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_header(header: dict[str, Any], fail: Any) -> None:
    fmt, version = header.get("format"), header.get("version")
    if fmt != FORMAT_NAME:
        raise fail(f"header format is {fmt!r}, expected {FORMAT_NAME!r}")
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise fail(
            f"format version {version!r} is not supported; this jaxlogreg reads versions "
            f"{' and '.join(map(str, READ_VERSIONS))}"
        )
    if version >= 2 and "feature_names" not in header:
        raise fail("header field 'feature_names' (a list of strings or null) is missing")
    for key, typ in _HEADER_TYPES.items():
        if not isinstance(header.get(key), typ) or isinstance(header.get(key), bool):
            raise fail(f"header field {key!r} must be a {typ.__name__}, got {header.get(key)!r}")
    if "standardizer" not in header or not isinstance(header["standardizer"], dict | None):
        raise fail("header field 'standardizer' must be a dict or null")
    kind = header["classes"].get("kind")
    if kind not in ("str", "array"):
        raise fail(f"header classes kind must be 'str' or 'array', got {kind!r}")


def _check_arrays(arrays: dict[str, np.ndarray], bad_dtype: Any, bad_value: Any) -> None:
    """Parameter arrays must be float16/32/64 (else ``bad_dtype``) and finite (``bad_value``)."""
    for name, arr in arrays.items():
        if arr.dtype.name not in _PARAM_DTYPES:
            raise bad_dtype(f"{name} must have dtype in {list(_PARAM_DTYPES)}, got {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise bad_value(f"{name} must be finite, got NaN or inf")


def _params(w: np.ndarray, b: np.ndarray, header: dict[str, Any], fail: Any) -> Params:
    _check_arrays({"array 'w'": w, "array 'b'": b}, fail, fail)
    try:
        params = check_params(Params(w=w, b=b))
    except ValueError as err:
        raise fail(str(err)) from None
    n_features, n_classes = header["n_features"], header["n_classes"]
    if w.shape[0] != n_features or n_classes_of(params) != n_classes:
        raise fail(
            f"header says n_features={n_features} and n_classes={n_classes}, but w has shape "
            f"{list(w.shape)} and b {list(b.shape)}"
        )
    return params


def _classes(entry: dict[str, Any], stored: np.ndarray | None, n_classes: int, fail: Any):
    if entry["kind"] == "str":
        values = entry.get("values")
        if not isinstance(values, list) or not all(isinstance(c, str) for c in values):
            raise fail(f"header classes values must be a list of strings, got {values!r}")
        classes = np.array(values, dtype=str)
    else:
        classes = stored
        if classes.dtype.kind not in "biuf":
            raise fail(f"array 'classes' must be numeric, got dtype {classes.dtype}")
    if classes.ndim != 1 or classes.shape[0] != n_classes:
        raise fail(f"expected {n_classes} classes, got shape {list(classes.shape)}")
    if np.unique(classes).shape[0] != n_classes:
        raise fail(f"classes must be unique, got {classes.tolist()}")
    return classes
