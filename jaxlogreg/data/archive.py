"""One file format for model files and checkpoints: an ``.npz`` (zip) archive of plain arrays
plus a JSON header stored as UTF-8 bytes in the ``header`` array. Never pickle.

Writing is atomic (a fsynced temporary file in the same folder, renamed over the final name,
then the folder fsynced): a crash leaves the old file or the new one, never half of one.
Reading checks before it trusts: the zip signature, the member names (before anything is
decompressed), the header's size, then each array's declared size against the header; every
problem raises :class:`ArchiveError` (a ``ValueError``) naming the file. JSON values go through
:func:`jsonable` everywhere: NumPy scalars become numbers, arrays and tuples lists, non-finite
floats the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (strict JSON has no such numbers).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxlogreg.data.files import open_regular

PathLike = str | os.PathLike
MAX_HEADER_BYTES = 16 * 2**20
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_HEADER_SLACK = 4096  # an .npy member is its array's bytes plus a short text header
# what a damaged archive can raise while zipfile / numpy parse it
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


class ArchiveError(ValueError):
    """A model file or checkpoint that cannot be read; ``path`` names it."""

    what = "archive"

    def __init__(self, path: PathLike, problem: str):
        super().__init__(f"cannot load {self.what} {os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


def jsonable(obj: Any) -> Any:
    """``obj`` as strict-JSON values (see the module docstring for the rules)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(x) for k, x in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(x) for x in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # "inf", "-inf", "nan"
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"{type(obj).__name__} is not a JSON value: {obj!r}")


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON of :func:`jsonable` ``(obj)``."""
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)


def write_archive(path: PathLike, header: Mapping[str, Any], arrays: Mapping[str, Any]) -> Path:
    """Write ``arrays`` and the JSON ``header`` to ``path`` atomically; returns the path.

    An ``OSError`` (a directory at ``path``, a folder that cannot be created or written) names
    ``path``, never the temporary file."""
    path = Path(path)
    header_bytes = dumps(header, sort_keys=True).encode("utf-8")
    members = {"header": np.frombuffer(header_bytes, dtype=np.uint8)}
    members.update({k: np.asarray(a) for k, a in arrays.items()})
    if path.is_dir():
        err = IsADirectoryError(f"cannot write {path}: it is a directory; give a file name")
        err.errno = errno.EISDIR
        raise err
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _write_error(err, path) from err
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _write_error(err, path) from err
        raise
    _fsync_directory(path.parent)
    return path


def _write_error(err: OSError, path: Path) -> OSError:
    """``err`` (of the same type, errno kept) with a message naming ``path``: the user's name,
    not the temporary file's; a folder on the way that is a file is named too."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        new = NotADirectoryError(f"cannot write {path}: {blocker} is not a directory")
        new.errno = errno.ENOTDIR
    else:
        new = type(err)(f"cannot write {path}: {err.strerror or err}")
        new.errno = err.errno
    return new


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ArchiveReader(contextlib.AbstractContextManager):
    """An archive opened for checked reading; use :func:`open_archive` in a ``with`` block."""

    def __init__(self, path: PathLike, error: type[ArchiveError]):
        self.path, self.error = os.fspath(path), error
        self._file = open_regular(path, error.what)  # closed by close()
        try:
            magic = self._file.read(4)
            if magic != _ZIP_MAGIC:  # keep numpy off its .npy and pickle code paths entirely
                found = "an empty file" if not magic else f"a file starting with bytes {magic!r}"
                raise self.fail(f"expected an .npz (zip) archive starting with {_ZIP_MAGIC!r}, "
                                f"got {found}")
            self._file.seek(0)
            self._zip = zipfile.ZipFile(self._file)
            self._members = {}
            for info in self._zip.infolist():
                if not info.filename.endswith(".npy"):
                    raise self.fail(f"unexpected archive member {info.filename!r}")
                self._members[info.filename[: -len(".npy")]] = info
        except _READ_ERRORS as err:
            self.close()
            if isinstance(err, ArchiveError):
                raise
            raise self.fail(f"not a readable .npz archive ({type(err).__name__}: {err})") from None

    def fail(self, problem: str) -> ArchiveError:
        return self.error(self.path, problem)

    @property
    def names(self) -> set[str]:
        return set(self._members)

    def check_names(self, expected: set[str]) -> None:
        """Exactly the ``expected`` arrays (checked before anything is decompressed)."""
        missing, extra = sorted(expected - self.names), sorted(self.names - expected)
        if missing:
            raise self.fail(f"missing array(s) {missing}; the archive holds {sorted(self.names)}")
        if extra:
            raise self.fail(f"unexpected array(s) {extra}; it should hold {sorted(expected)}")

    def array(self, name: str, max_bytes: int) -> np.ndarray:
        """The array ``name``, refused unread if its declared size exceeds ``max_bytes``."""
        info = self._members.get(name)
        if info is None:
            raise self.fail(f"missing array {name!r}; the archive holds {sorted(self.names)}")
        if info.file_size > max_bytes + _NPY_HEADER_SLACK:
            raise self.fail(
                f"array {name!r} declares {info.file_size} bytes, more than the "
                f"{max_bytes} bytes its header allows"
            )
        try:
            with self._zip.open(info) as member:
                return np.lib.format.read_array(io.BytesIO(member.read()), allow_pickle=False)
        except _READ_ERRORS as err:
            raise self.fail(f"corrupt or unsafe array {name!r} ({type(err).__name__}: {err})") from None

    def header(self) -> dict[str, Any]:
        """The JSON header (bounded size and nesting, no NaN/Infinity constants)."""
        raw = self.array("header", MAX_HEADER_BYTES)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise self.fail(
                f"array 'header' must be 1-D uint8, got dtype {raw.dtype} shape {raw.shape}"
            )

        def no_constants(name: str) -> Any:
            raise ValueError(f"non-standard JSON constant {name}")

        try:
            header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=no_constants)
        except RecursionError:
            raise self.fail("header is nested too deeply to be a valid header") from None
        except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
            raise self.fail(f"header is not valid UTF-8 JSON ({err})") from None
        if not isinstance(header, dict):
            raise self.fail(f"header must be a JSON object, got {type(header).__name__}")
        return header

    def close(self) -> None:
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        self._file.close()

    def __exit__(self, *exc: object) -> None:  # the `with` block closes it
        self.close()


def open_archive(path: PathLike, error: type[ArchiveError] = ArchiveError) -> ArchiveReader:
    """Open ``path`` for checked reading; problems raise ``error`` (an :class:`ArchiveError`)."""
    return ArchiveReader(path, error)


def array_bytes(spec: Any) -> int:
    """Bytes of an array described as ``{"dtype": ..., "shape": [...]}`` (0 if malformed)."""
    try:
        return int(np.dtype(spec["dtype"]).itemsize * math.prod(int(d) for d in spec["shape"]))
    except (TypeError, ValueError, KeyError):
        return 0
