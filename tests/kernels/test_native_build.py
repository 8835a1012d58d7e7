"""Building, verifying and loading the C kernel: a cached library that is damaged, not a regular
file, or without its digest is built again and never loaded; a compiler that never finishes
costs one deadline; switched off, or without a compiler, fits use XLA's gradient.

The build happens once per process, so the cases seen through a fit run in a fresh process each
(marked slow), with the cache folder in ``tmp_path`` and X of exactly :data:`MIN_ELEMENTS`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxlogreg.kernels import native, native_build

REPO = Path(__file__).resolve().parents[2]
needs_compiler = pytest.mark.skipif(native_build.find_compiler() is None,
                                    reason="no C compiler here")

CHILD = """
import sys, time
import numpy as np
import jaxlogreg as jl
from jaxlogreg.kernels import native, native_build
from jaxlogreg.training import pipeline
cache, expected, reason, deadline = sys.argv[1:]
native_build.DEADLINE_S = float(deadline)
jl.enable_compilation_cache(cache)
rng = np.random.default_rng(0)
X = rng.normal(size=(native.MIN_ELEMENTS // 128, 128)).astype(np.float32)
y = (X[:, 0] + rng.logistic(size=len(X)) > 0).astype(int)
chosen, kernel_for = [], pipeline.kernel_for
pipeline.kernel_for = lambda data: chosen.append(kernel_for(data)) or chosen[-1]
start = time.monotonic()
fit = jl.fit(X, y, max_iter=3)
elapsed = time.monotonic() - start
assert chosen == [expected], chosen
assert fit.n_iter == 3 and np.isfinite(fit.loss), (fit.n_iter, fit.loss)
error = native.build_error()
assert error is None if not reason else reason in error, error
print(elapsed)
"""


def fit_in_a_child(cache: Path, kernel: str, reason: str = "", *,
                   deadline: float = native_build.DEADLINE_S, **environ: str) -> float:
    """Run :data:`CHILD` on the CPU: its fit used ``kernel``, and :func:`native.build_error`
    contains ``reason`` (is None when empty); returns the fit's seconds."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", native.SWITCH: "1",
           **environ}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(cache), kernel, reason,
                           str(deadline)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return float(proc.stdout.split()[-1])


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A folder with the verified library and its digest, as a first fit leaves them."""
    folder = tmp_path_factory.mktemp("built")
    native_build.build_and_load(folder)
    return folder


def cached_copy(built: Path, cache: Path) -> Path:
    """The library of ``built`` copied into ``cache``'s folder for the kernel."""
    shutil.copytree(built, cache / native.FOLDER_NAME)
    (library,) = (cache / native.FOLDER_NAME).glob("*.so")
    return library


def verified(library: Path) -> bool:
    """A regular file (not a link) whose sha256 is the one written beside it."""
    digest = native_build.digest_path(library)
    regular = all(not path.is_symlink() and path.is_file() for path in (library, digest))
    return regular and (hashlib.sha256(library.read_bytes()).hexdigest()
                        == digest.read_text().strip())


def flip_middle(library: Path) -> None:
    """Overwrite 256 bytes in the middle of the file, in place (its code)."""
    with open(library, "r+b") as f:
        f.seek(library.stat().st_size // 2)
        chunk = f.read(256)
        f.seek(-len(chunk), os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in chunk))


def truncate(library: Path, digest: Path) -> None:
    os.truncate(library, library.stat().st_size // 2)


def overwrite_code(library: Path, digest: Path) -> None:
    flip_middle(library)


def fifo_library(library: Path, digest: Path) -> None:
    library.unlink()
    os.mkfifo(library)


def link_library(library: Path, digest: Path) -> None:
    """A link to a good copy: a link is never followed."""
    library.rename(library.with_name("elsewhere.so"))
    library.symlink_to(library.with_name("elsewhere.so"))


def no_digest(library: Path, digest: Path) -> None:
    digest.unlink()


def wrong_digest(library: Path, digest: Path) -> None:
    digest.write_text("0" * 64 + "\n")


def fifo_digest(library: Path, digest: Path) -> None:
    digest.unlink()
    os.mkfifo(digest)


@needs_compiler
@pytest.mark.slow
@pytest.mark.parametrize("damage", [truncate, overwrite_code, fifo_library, link_library,
                                    no_digest, wrong_digest, fifo_digest],
                         ids=lambda damage: damage.__name__)
def test_a_damaged_cached_library_is_built_again_never_loaded(tmp_path, built, damage):
    """Loaded unchecked, a truncated library crashed the next large fit with SIGBUS, an
    overwritten one with SIGSEGV, and a FIFO blocked it forever (the child's timeout)."""
    library = cached_copy(built, tmp_path / "cache")
    damage(library, native_build.digest_path(library))
    assert not verified(library)
    fit_in_a_child(tmp_path / "cache", "native_rows")
    assert verified(library)


@needs_compiler
def test_a_damaged_library_is_built_again_in_process(tmp_path, built):
    library = cached_copy(built, tmp_path)
    library.write_bytes(b"not a shared library")
    loaded = native_build.build_and_load(library.parent)
    targets = native.ROWS_TARGETS.values()
    assert all(hasattr(loaded, name) for name in targets)
    assert verified(library)


@needs_compiler
def test_a_library_that_fails_its_check_again_after_a_rebuild_is_skipped(
        monkeypatch, tmp_path, built):
    """Damaged again between its build and its load: never loaded, the kernel is skipped and
    fits use XLA's gradient; built once, no other flags tried."""
    cached_copy(built, tmp_path / "cache")
    flip_middle(next((tmp_path / "cache" / native.FOLDER_NAME).glob("*.so")))
    builds, compile_library = [], native_build.compile_library

    def compile_then_damage(compiler, flags, target, deadline):
        builds.append(flags)
        compile_library(compiler, flags, target, deadline)
        flip_middle(target)

    monkeypatch.setattr(native_build, "compile_library", compile_then_damage)
    monkeypatch.setattr(native.cache, "folder", lambda: tmp_path / "cache")
    monkeypatch.setattr(native, "_OUTCOME", [])  # this process's build, done afresh
    monkeypatch.setenv(native.SWITCH, "1")
    assert not native.available()
    assert "does not match its digest" in native.build_error()
    assert not native.supports(128, native.MIN_ELEMENTS, 2, "float32")
    assert len(builds) == 1


@needs_compiler
def test_every_build_variant_compiles_and_exports_the_handlers(tmp_path):
    """The fallbacks (no libmvec, no -march=native) build too, should the first one fail."""
    compiler, deadline = native_build.find_compiler(), time.monotonic() + 60
    for k, flags in enumerate(native_build.variants()):
        target = tmp_path / f"variant{k}.so"
        native_build.compile_library(compiler, flags, target, deadline)
        assert verified(target)
        library = native_build.load_verified(target)
        assert isinstance(library, ctypes.CDLL)
        targets = native.ROWS_TARGETS.values()
        assert all(hasattr(library, name) for name in targets)
    assert "-march=native" not in native_build.variants()[-1]


HANGING_CC = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$1" = --version ] && [ "{hangs_on}" = compile ]; then echo "hanging-cc 1.0"; exit 0; fi
sleep 1000 &
echo $! >> "{pid}"
wait
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")  # a zombie is dead, only not yet reaped
    return not (status.exists() and status.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.slow
@pytest.mark.parametrize("hangs_on", ["--version", "compile"])
def test_a_compiler_that_never_finishes_costs_one_deadline(tmp_path, hangs_on):
    """Killed, with what it started, at the build's deadline (2 s here): every compiler of the
    sources (they run at once); no other flags are tried, and the fit goes on with XLA's
    gradient."""
    log, pid = tmp_path / "calls", tmp_path / "pid"
    cc = script(tmp_path / "cc", HANGING_CC.format(log=log, pid=pid, hangs_on=hangs_on))
    deadline = 2.0
    elapsed = fit_in_a_child(tmp_path / "cache", "xla", "did not finish within 2 s",
                             deadline=deadline, CC=str(cc))
    assert elapsed < deadline + 20  # the rest: compiling and running the fit's own loop
    calls = log.read_text().splitlines()
    assert calls[0] == "--version"
    hung = 1 if hangs_on == "--version" else len(native_build.SOURCES)  # one per source
    assert len(calls) == (1 if hangs_on == "--version" else 1 + hung)
    started = [int(line) for line in pid.read_text().split()]
    assert len(started) == hung and not any(alive(p) for p in started)


@pytest.mark.slow
def test_switched_off_fits_use_xla_and_nothing_is_built(tmp_path):
    log = tmp_path / "calls"
    cc = script(tmp_path / "cc", f'#!/bin/sh\necho "$*" >> "{log}"\nexit 1\n')
    fit_in_a_child(tmp_path / "cache", "xla", "turned off by JAXLOGREG_NATIVE='off'",
                   CC=str(cc), JAXLOGREG_NATIVE="off")
    assert not log.exists()
    assert not (tmp_path / "cache" / native.FOLDER_NAME).exists()


@pytest.mark.slow
def test_without_a_compiler_fits_use_xla(tmp_path):
    (tmp_path / "empty").mkdir()
    fit_in_a_child(tmp_path / "cache", "xla", "no C compiler", PATH=str(tmp_path / "empty"),
                   CC="")
