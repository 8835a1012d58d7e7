"""Build, verify and load the C gradient kernel (:mod:`jaxlogreg.kernels.native`): one bounded try.

:func:`build_and_load` compiles :data:`SOURCES` with the system's C compiler (``$CC``, else
``cc``, ``gcc`` or ``clang``; one compiler per source, at once, then linked) for this machine's
CPU, with the headers of XLA's FFI that jaxlib ships, into a folder, under a name that hashes
the source, the flags, the compiler's version, jaxlib's version and the CPU; the library's
sha256 is written beside it (``<name>.sha256``).
A library is loaded only after it is verified: opened without following a link or waiting on
a FIFO, a regular file, its content matching the digest; on Linux the open file itself is
loaded (``/proc/self/fd``), so a file swapped in after the check is never run. A library that
fails the check is built again, once. The whole build, ``cc --version`` included, has
:data:`DEADLINE_S`: compilers still running then are killed with their children, and no other
flags are tried. Any failure raises; the caller then uses XLA's gradient.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import jax
import jaxlib

# Compiled together into one library: the dense kernel's file, then one file per further kernel.
SOURCES = tuple(Path(__file__).with_name(name)
                for name in ("native_kernel.c", "native_cd.c", "native_hostx.c", "native_csr.c",
                             "native_gap.c"))
HEADERS = tuple(Path(__file__).with_name(name)  # included by the sources
                for name in ("native_common.h", "native_math.h"))
# No -ffast-math: it lets the compiler assume there is no NaN or inf, and its startup code
# switches the whole process to flushing denormals when the library is loaded.
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math",
         "-fassociative-math", "-fno-signed-zeros", "-freciprocal-math")
# glibc's vectorised exp and log1p ("-l" flags go after the source: compile_library).
LIBMVEC = ("-DJAXLOGREG_LIBMVEC", "-lmvec")
# For all builds together, ``cc --version`` included: a build takes about a second, 4 s on a
# machine loaded 3x over (docs/decisions.md), so a compiler still busy after this is stuck, and
# the first large fit should not wait for it.
DEADLINE_S = 10.0
MAX_LIBRARY_BYTES = 1 << 24  # the library is about 32 KiB; a larger file is not ours
DIGEST_SUFFIX = ".sha256"


class BuildError(RuntimeError):
    """The kernel could not be built or loaded; the message says why."""


class UnverifiedLibrary(BuildError):
    """A library file that is not a regular file or does not match its digest."""


def find_compiler() -> str | None:
    names = [os.environ.get("CC", ""), "cc", "gcc", "clang"]
    return next((path for name in names if name and (path := shutil.which(name))), None)


def variants() -> list[tuple[str, ...]]:
    """Compiler flags to try in turn: with libmvec on glibc x86-64 (vectorised exp and log1p),
    then without, then without ``-march=native`` (a compiler that does not know it)."""
    linux_x86 = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
    with_libmvec = linux_x86 and platform.libc_ver()[0] == "glibc"
    portable = tuple(flag for flag in FLAGS if flag != "-march=native")
    return ([FLAGS + LIBMVEC] if with_libmvec else []) + [FLAGS, portable]


def library_name(build_key: str, flags: tuple[str, ...]) -> str:
    key = f"{build_key}\0{' '.join(flags)}"
    return f"native_kernel-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def digest_path(library: Path) -> Path:
    return library.with_name(library.name + DIGEST_SUFFIX)


def _cpu_signature() -> str:
    """What ``-march=native`` compiles for: the CPU's feature flags where Linux lists them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return flags or platform.processor() or platform.machine()


def _run(command: list[str], deadline: float) -> str:
    """The command's standard output (:func:`_run_all` of one command)."""
    return _run_all([command], deadline)[0]


def _run_all(commands: list[list[str]], deadline: float) -> list[str]:
    """The commands' standard outputs. They run at once, each in its own process group, all
    killed whole if one is still running at ``deadline`` (:func:`time.monotonic`):
    :class:`BuildError` then; :class:`subprocess.CalledProcessError` if one fails."""
    timeout = (f"the C compiler {commands[0][0]} did not finish within {DEADLINE_S:g} s (the "
               f"build's deadline)")
    if time.monotonic() >= deadline:
        raise BuildError(timeout)
    processes = [subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, errors="replace",
                                  start_new_session=True) for command in commands]
    try:
        outputs = [process.communicate(timeout=max(deadline - time.monotonic(), 0.0))
                   for process in processes]
    except subprocess.TimeoutExpired:
        raise BuildError(f"{timeout}: stopped") from None
    finally:
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # the compiler and what it started
                except ProcessLookupError:
                    pass
            process.wait()
            process.stdout.close()
            process.stderr.close()
    for command, process, (out, err) in zip(commands, processes, outputs, strict=True):
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, command, out, err)
    return [out for out, _ in outputs]


def _build_key(compiler: str, deadline: float) -> str:
    """What decides the library besides its flags: source, compiler, jaxlib, CPU, platform."""
    version = _run([compiler, "--version"], deadline)
    sources = (source.read_text() for source in (*SOURCES, *HEADERS))
    parts = (*sources, version, jaxlib.__version__, _cpu_signature(), sys.platform)
    return "\0".join(parts)


def _open_regular(path: Path) -> int:
    """A read-only descriptor of ``path``: never through a link, never waiting on a FIFO or a
    device; :class:`UnverifiedLibrary` unless it is a regular file of a library's size."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise UnverifiedLibrary(f"cannot open {path}: {err}") from err
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_LIBRARY_BYTES:
        os.close(fd)
        raise UnverifiedLibrary(f"{path} is not a regular file of at most "
                                f"{MAX_LIBRARY_BYTES} bytes")
    return fd


def _sha256(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, 1 << 16):
        digest.update(chunk)
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    fd = _open_regular(path)
    try:
        return _sha256(fd)
    finally:
        os.close(fd)


def _recorded_digest(library: Path) -> str:
    fd = _open_regular(digest_path(library))
    try:
        return os.read(fd, 256).decode("ascii", errors="replace").strip()
    finally:
        os.close(fd)


def load_verified(library: Path) -> ctypes.CDLL:
    """Load ``library`` if it is a regular file matching its digest, else
    :class:`UnverifiedLibrary` (OSError if the verified file does not load). On Linux the open,
    verified file is loaded through ``/proc/self/fd``, and its descriptor stays open for the
    process's life, as the library does: glibc would take a later library loaded through the
    same ``/proc/self/fd/N`` name for this one."""
    fd = _open_regular(library)
    try:
        actual, recorded = _sha256(fd), _recorded_digest(library)
        if actual != recorded:
            raise UnverifiedLibrary(f"{library} does not match its digest "
                                    f"({digest_path(library).name}): a damaged file")
        via_fd = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")
        return ctypes.CDLL(f"/proc/self/fd/{fd}" if via_fd else str(library))
    except BaseException:
        os.close(fd)
        raise


def compile_library(compiler: str, flags: tuple[str, ...], target: Path,
                    deadline: float) -> None:
    """Compile :data:`SOURCES` at once, one compiler each, link them into ``target`` and write
    its digest beside it, under temporary names, then renamed (processes building at once never
    see half a file)."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    digest = digest_path(target)
    partial_digest = digest.with_name(f"{digest.name}.{os.getpid()}.tmp")
    objects = [target.with_name(f"{target.name}.{os.getpid()}.{source.stem}.o")
               for source in SOURCES]
    libraries = [flag for flag in flags if flag.startswith("-l")]  # linked after the objects
    options = [flag for flag in flags if not flag.startswith("-l")]
    compiles = [[compiler, *options, f"-I{jax.ffi.include_dir()}", "-c", str(source), "-o",
                 str(obj)] for source, obj in zip(SOURCES, objects, strict=True)]
    try:
        _run_all(compiles, deadline)
        _run([compiler, *options, *map(str, objects), "-o", str(partial), *libraries, "-lm"],
             deadline)
        partial_digest.write_text(_file_sha256(partial) + "\n")
        os.replace(partial_digest, digest)
        os.replace(partial, target)
    finally:
        for path in (partial, partial_digest, *objects):
            path.unlink(missing_ok=True)


def _load_or_build(compiler: str, flags: tuple[str, ...], target: Path,
                   deadline: float) -> ctypes.CDLL:
    """The verified library at ``target``; built (again, once) if it is missing or fails the
    check."""
    if os.path.lexists(target):
        try:
            return load_verified(target)
        except UnverifiedLibrary:
            pass  # damaged, or not a library: built again below
    compile_library(compiler, flags, target, deadline)
    return load_verified(target)


def build_and_load(folder: Path) -> ctypes.CDLL:
    """The kernel's library in ``folder``, built there unless a verified one is there already,
    and loaded: the first of :func:`variants` that compiles and loads (an old glibc may lack a
    vector function), all within :data:`DEADLINE_S`. Raises :class:`BuildError`, OSError or
    :class:`subprocess.SubprocessError` when it cannot."""
    deadline = time.monotonic() + DEADLINE_S
    compiler = find_compiler()
    if compiler is None:
        raise BuildError("no C compiler found ($CC, cc, gcc or clang)")
    errors, build_key = [], _build_key(compiler, deadline)
    for flags in variants():
        try:
            return _load_or_build(compiler, flags, folder / library_name(build_key, flags),
                                  deadline)
        except subprocess.CalledProcessError as err:  # these flags do not compile: the next
            errors.append(err.stderr or str(err))
        except OSError as err:  # it does not load: the next flags
            errors.append(str(err))
    names = ", ".join(source.name for source in SOURCES)
    raise BuildError(f"compiling {names} failed: {errors[-1].strip()[-2000:]}")
