"""Model files without pickle: one ``.npz`` archive of numeric arrays plus a JSON header.

Layout of the archive (written with ``np.savez``, read with ``np.load(allow_pickle=False)``)::

    header   uint8 (bytes,)   UTF-8 JSON: format name and version, n_features, n_classes,
                              dtype and shape of every array, classes, config, standardizer,
                              metadata
    w        float (n,) or (n, K)
    b        float () or (K,)
    classes  (K,) numeric class labels; absent when the labels are strings (kept in the JSON)

Loading never unpickles and checks everything against the header, so a truncated, corrupt or
edited file raises :class:`ModelFileError` (a ``ValueError``) naming the file and the problem,
instead of producing a model that silently predicts something else. Arrays round-trip exactly.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxlogreg.data import Standardizer
from jaxlogreg.model import Params, check_params, n_classes_of

FORMAT_NAME = "jaxlogreg-model"
FORMAT_VERSION = 1

_PARAM_DTYPES = ("float16", "float32", "float64")
_ZIP_MAGIC = b"PK\x03\x04"
# what a damaged archive can raise while numpy/zipfile parse it
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    KeyError,
    ValueError,
    SyntaxError,
    NotImplementedError,
)


class ModelFileError(ValueError):
    """A model file that cannot be loaded; ``path`` names it."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"cannot load model file {os.fspath(path)}: {problem}")
        self.path = os.fspath(path)


class SavedModel(NamedTuple):
    """What :func:`load_model` returns.

    ``params`` hold NumPy arrays with the dtypes they were saved with; ``classes`` is a (K,)
    array (numeric, or ``str`` for string labels); ``standardizer`` is the dict for
    :meth:`jaxlogreg.data.Standardizer.from_dict`, or None.
    """

    params: Params
    classes: np.ndarray
    config: dict[str, Any]
    standardizer: dict[str, Any] | None
    metadata: dict[str, Any]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _check_json_dict(value: Any, name: str) -> dict[str, Any]:
    """A dict with string keys that strict JSON can hold; returned after a JSON round trip."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{name} must be a dict with string keys, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(dict(value), default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must hold only JSON values (finite numbers, str, ...): {err}")


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
    standardizer: Mapping[str, Any] | Standardizer | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``params`` and their context to ``path`` as one ``.npz`` file (atomically).

    Args:
      params: binary ``w`` (n,), ``b`` () or multinomial ``w`` (n, K), ``b`` (K,); float16/32/64.
      classes: (K,) class labels in column order (K = 2 for binary): numbers or strings.
      config: the training configuration (JSON values only; tuples come back as lists).
      standardizer: ``Standardizer.to_dict()`` (or the Standardizer) fitted on n features.
      metadata: free-form JSON information (data source, metrics, date...).

    Returns:
      The path written.
    """
    if not isinstance(params, Params):
        raise TypeError(f"params must be jaxlogreg.Params(w, b), got {type(params).__name__}")
    w = np.asarray(params.w)
    b = np.asarray(params.b)
    for name, arr in (("params.w", w), ("params.b", b)):
        if arr.dtype.name not in _PARAM_DTYPES:
            raise TypeError(f"{name} must have dtype in {list(_PARAM_DTYPES)}, got {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got NaN or inf")
    check_params(Params(w, b))
    n_features, n_classes = int(w.shape[0]), n_classes_of(Params(w, b))
    classes_entry, classes_arr = _classes_entry(classes, n_classes)
    if isinstance(standardizer, Standardizer):
        standardizer = standardizer.to_dict()
    if standardizer is not None:
        std = Standardizer.from_dict(standardizer)
        if std.n_features != n_features:
            raise ValueError(
                f"standardizer must have {n_features} features to match params.w, "
                f"got {std.n_features}"
            )
        standardizer = _check_json_dict(standardizer, "standardizer")
    arrays = {"w": w, "b": b}
    if classes_arr is not None:
        arrays["classes"] = classes_arr
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "library_version": _library_version(),
        "n_features": n_features,
        "n_classes": n_classes,
        "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape)} for k, a in arrays.items()},
        "classes": classes_entry,
        "config": _check_json_dict(config, "config"),
        "standardizer": standardizer,
        "metadata": _check_json_dict(metadata, "metadata"),
    }
    header_bytes = json.dumps(header, allow_nan=False, sort_keys=True).encode("utf-8")
    arrays["header"] = np.frombuffer(header_bytes, dtype=np.uint8)

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _library_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("jaxlogreg")
    except metadata.PackageNotFoundError:
        return "unknown"


def load_model(path: str | os.PathLike) -> SavedModel:
    """Read and validate a file written by :func:`save_model` (never unpickles).

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ModelFileError: (a ``ValueError``) the file is not a valid model file of a supported
        version: not an archive, truncated, corrupt, arrays missing or extra, dtypes or shapes
        that disagree with the header or with each other, inconsistent classes, bad JSON.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {os.fspath(path)} does not exist or is not a file")
    # np.load gets our file object: a path would leak its handle when the archive is corrupt
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != _ZIP_MAGIC:  # keep np.load off its .npy and pickle code paths entirely
            found = "an empty file" if not magic else f"a file starting with bytes {magic!r}"
            raise ModelFileError(
                path, f"expected an .npz (zip) archive starting with {_ZIP_MAGIC!r}, got {found}"
            )
        f.seek(0)
        try:
            loaded = np.load(f, allow_pickle=False)
        except _READ_ERRORS as err:
            raise ModelFileError(
                path, f"not a readable .npz archive ({type(err).__name__}: {err})"
            ) from err
        try:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
        except _READ_ERRORS as err:
            raise ModelFileError(
                path, f"corrupt or unsafe array data ({type(err).__name__}: {err})"
            ) from err
    return _parse(path, arrays)


def _parse(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> SavedModel:
    def fail(problem: str) -> ModelFileError:
        return ModelFileError(path, problem)

    header = _read_header(path, arrays)
    fmt, version = header.get("format"), header.get("version")
    if fmt != FORMAT_NAME:
        raise fail(f"header format is {fmt!r}, expected {FORMAT_NAME!r}")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise fail(
            f"format version {version!r} is not supported; this jaxlogreg reads version "
            f"{FORMAT_VERSION}"
        )
    expected_types = {
        "n_features": int,
        "n_classes": int,
        "arrays": dict,
        "classes": dict,
        "config": dict,
        "metadata": dict,
    }
    for key, typ in expected_types.items():
        if not isinstance(header.get(key), typ) or isinstance(header.get(key), bool):
            raise fail(f"header field {key!r} must be a {typ.__name__}, got {header.get(key)!r}")
    if "standardizer" not in header or not isinstance(header["standardizer"], dict | None):
        raise fail("header field 'standardizer' must be a dict or null")
    n_features, n_classes = header["n_features"], header["n_classes"]
    classes_entry = header["classes"]
    kind = classes_entry.get("kind")
    if kind not in ("str", "array"):
        raise fail(f"header classes kind must be 'str' or 'array', got {kind!r}")

    expected = {"header", "w", "b"} | ({"classes"} if kind == "array" else set())
    missing = sorted(expected - arrays.keys())
    if missing:
        raise fail(f"missing array(s) {missing}; the archive holds {sorted(arrays)}")
    extra = sorted(arrays.keys() - expected)
    if extra:
        raise fail(f"unexpected array(s) {extra}; a model file holds {sorted(expected)}")
    declared = header["arrays"]
    if set(declared) != expected - {"header"}:
        raise fail(
            f"header lists arrays {sorted(declared)}, expected {sorted(expected - {'header'})}"
        )
    for key, spec in declared.items():
        arr = arrays[key]
        if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list):
            raise fail(f"header entry for array {key!r} must give dtype and shape, got {spec!r}")
        if arr.dtype.name != spec.get("dtype") or list(arr.shape) != spec["shape"]:
            raise fail(
                f"array {key!r} has dtype {arr.dtype.name} and shape {list(arr.shape)}, but the "
                f"header says dtype {spec.get('dtype')} and shape {spec['shape']}"
            )

    w, b = arrays["w"], arrays["b"]
    for name, arr in (("w", w), ("b", b)):
        if arr.dtype.name not in _PARAM_DTYPES:
            raise fail(f"array {name!r} must have dtype in {list(_PARAM_DTYPES)}, got {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise fail(f"array {name!r} holds NaN or inf")
    try:
        params = check_params(Params(w=w, b=b))
    except ValueError as err:
        raise fail(str(err)) from None
    if w.shape[0] != n_features or n_classes_of(params) != n_classes:
        raise fail(
            f"header says n_features={n_features} and n_classes={n_classes}, but w has shape "
            f"{list(w.shape)} and b {list(b.shape)}"
        )

    if kind == "str":
        values = classes_entry.get("values")
        if not isinstance(values, list) or not all(isinstance(c, str) for c in values):
            raise fail(f"header classes values must be a list of strings, got {values!r}")
        classes = np.array(values, dtype=str)
    else:
        classes = arrays["classes"]
        if classes.dtype.kind not in "biuf":
            raise fail(f"array 'classes' must be numeric, got dtype {classes.dtype}")
    if classes.ndim != 1 or classes.shape[0] != n_classes:
        raise fail(f"expected {n_classes} classes, got shape {list(classes.shape)}")
    if np.unique(classes).shape[0] != n_classes:
        raise fail(f"classes must be unique, got {classes.tolist()}")

    standardizer = header["standardizer"]
    if standardizer is not None:
        try:
            std = Standardizer.from_dict(standardizer)
        except ValueError as err:
            raise fail(f"invalid standardizer: {err}") from None
        if std.n_features != n_features:
            raise fail(f"standardizer has {std.n_features} features, the parameters {n_features}")
    return SavedModel(
        params=params,
        classes=classes,
        config=header["config"],
        standardizer=standardizer,
        metadata=header["metadata"],
    )


def _read_header(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if "header" not in arrays:
        raise ModelFileError(path, f"missing array 'header'; the archive holds {sorted(arrays)}")
    raw = arrays["header"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(
            path, f"array 'header' must be 1-D uint8, got dtype {raw.dtype} shape {raw.shape}"
        )

    def no_constants(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    try:
        header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise ModelFileError(path, f"header is not valid UTF-8 JSON ({err})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, f"header must be a JSON object, got {type(header).__name__}")
    return header
