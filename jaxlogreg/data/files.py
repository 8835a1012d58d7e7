"""Files opened for reading are regular files: a FIFO, a directory or a device is refused by name.

``open()`` on a named pipe (FIFO) waits for a writer, forever if none comes; a directory or a
device fails later, or reads without end, with a message that may not name the file. Every
reader of the package checks its path first with :func:`regular_file` (also before a library
such as h5py, NumPy or scikit-learn opens it), and the files it opens itself it opens with
:func:`open_regular`, which opens without blocking and checks what it opened, so a path
replaced by a FIFO between the check and the open cannot block either.

Errors: ``FileNotFoundError`` for a missing path, :class:`NotRegularFileError` (an
``OSError``) for anything else that is not a regular file; both name the path.
"""

from __future__ import annotations

import os
import stat
from typing import IO, Any

PathLike = str | os.PathLike

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """A path to read that exists but is not a regular file (a FIFO, directory, device...)."""


def _refusal(path: PathLike, what: str, mode: int) -> NotRegularFileError | None:
    """The error for a file of ``mode`` that is not regular (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return NotRegularFileError(f"{what} {os.fspath(path)} is {kind}, not a regular file")


def regular_file(path: PathLike, what: str = "file") -> str:
    """``path`` as a string, once it is known to name a regular file (symbolic links followed).

    ``what`` names the file in errors ("data file", "model file", ...).

    Raises:
      FileNotFoundError: nothing at ``path``.
      NotRegularFileError: a directory, FIFO, device or socket.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {name} does not exist") from None
    refusal = _refusal(name, what, mode)
    if refusal is not None:
        raise refusal
    return name


def open_regular(path: PathLike, what: str = "file", mode: str = "rb", **kwargs: Any) -> IO:
    """``open(path, mode, **kwargs)`` for reading a regular file, without ever blocking.

    The file is opened with ``O_NONBLOCK`` (no effect on regular files) and checked with
    ``fstat`` before it is returned. Errors as :func:`regular_file`.
    """
    if any(c in mode for c in "wax+"):
        raise ValueError(f"open_regular opens files for reading, got mode {mode!r}")
    name = regular_file(path, what)

    def opener(file: str, flags: int) -> int:
        fd = os.open(file, flags | getattr(os, "O_NONBLOCK", 0))
        try:
            refusal = _refusal(name, what, os.fstat(fd).st_mode)
        except BaseException:
            os.close(fd)
            raise
        if refusal is not None:
            os.close(fd)
            raise refusal
        return fd

    return open(name, mode, opener=opener, **kwargs)
