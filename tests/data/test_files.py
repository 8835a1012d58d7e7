"""Every reader opens regular files only (jaxlogreg.data.files): a FIFO, a directory or a device
is refused by name, at once, instead of blocking in open() or failing without the file's name.

A FIFO would block a reader forever: each call runs under a 10 s SIGALRM deadline, so a
regression fails the test instead of hanging the suite."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jaxlogreg.data import (
    files,
    load_catvnoncat,
    load_csv,
    load_dataset,
    load_hdf5,
    load_npy,
    load_npz,
    load_svmlight,
)
from jaxlogreg.data.archive import open_archive
from jaxlogreg.data.files import NotRegularFileError, open_regular, regular_file
from jaxlogreg.data.model_io import load_model


@contextlib.contextmanager
def deadline(seconds: int = 10) -> Iterator[None]:
    """Raise TimeoutError in the main thread (interrupting a blocked open()) after ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s: a reader opened a FIFO")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _not_regular(tmp_path: Path, kind: str, name: str) -> tuple[Path, str]:
    """A path of ``kind`` ("fifo", "directory", "device") and how the error describes it."""
    path = tmp_path / name
    if kind == "device":
        path.symlink_to(os.devnull)  # the link is followed to what it names
        return path, "a character device"
    if kind == "fifo":
        os.mkfifo(path)
        return path, r"a named pipe \(FIFO\)"
    path.mkdir()
    return path, "a directory"


READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "csv": ("d.csv", load_csv),
    "npy": ("x.npy", lambda p: load_npy(p)),
    "npz": ("d.npz", load_npz),
    "hdf5": ("d.h5", load_hdf5),
    "svmlight": ("d.svm", load_svmlight),
    "any format": ("d.csv", load_dataset),
    "model": ("m.npz", load_model),
    "archive": ("c.npz", open_archive),
}


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_readers_refuse_what_is_not_a_regular_file_by_name(tmp_path, kind, reader):
    name, read = READERS[reader]
    path, described = _not_regular(tmp_path, kind, name)
    with deadline(), pytest.raises(NotRegularFileError, match=f"{path} is {described}, not a "):
        read(path)


def test_a_labels_file_and_the_course_files_are_checked_too(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    os.mkfifo(tmp_path / "y.npy")
    with deadline(), pytest.raises(NotRegularFileError, match=r"y.npy is a named pipe"):
        load_npy(tmp_path / "x.npy", tmp_path / "y.npy")
    os.mkfifo(tmp_path / "train_catvnoncat.h5")
    (tmp_path / "test_catvnoncat.h5").write_bytes(b"")
    with deadline(), pytest.raises(NotRegularFileError, match=r"train_catvnoncat.h5 is a named"):
        load_catvnoncat(tmp_path)


def test_open_regular_checks_what_it_opened_without_blocking(tmp_path, monkeypatch):
    """A path that becomes a FIFO after the check (here: a check that lets it pass) is still
    opened without blocking and refused by fstat."""
    fifo = tmp_path / "late.csv"
    os.mkfifo(fifo)
    monkeypatch.setattr(files, "regular_file", lambda path, what="file": os.fspath(path))
    with deadline(), pytest.raises(NotRegularFileError, match="late.csv is a named pipe"):
        open_regular(fifo, "data file")


def test_regular_files_open_and_missing_ones_are_named(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("é\n", encoding="utf-8")
    with open_regular(path, "text file", "r", encoding="utf-8") as f:
        assert f.read() == "é\n"
    link = tmp_path / "link.txt"
    link.symlink_to(path)  # links are followed
    assert regular_file(link) == os.fspath(link)
    with pytest.raises(FileNotFoundError, match=f"^config file {tmp_path / 'no.toml'} does not "):
        regular_file(tmp_path / "no.toml", "config file")
    with pytest.raises(ValueError, match="opens files for reading, got mode 'w'"):
        open_regular(path, mode="w")
