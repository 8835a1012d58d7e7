"""The persistent compilation cache is opt-in: importing jaxlogreg changes no JAX setting,
``enable_compilation_cache`` turns it on (in the user's cache folder or a given one), the
command turns it on for its own process unless ``JAXLOGREG_NO_CACHE`` says no. Each case that
turns it on runs in a fresh process (a JAX setting of the process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxlogreg.runtime import cache, env

FIT = (
    "import sys, numpy as np, jax\n"
    "def settings():\n"
    "    return (jax.config.jax_compilation_cache_dir,\n"
    "            jax.config.jax_persistent_cache_min_compile_time_secs)\n"
    "before = settings()\n"
    "import jaxlogreg as jl\n"
    "assert settings() == before, (before, settings())  # the import changed nothing\n"
    "if sys.argv[1] != 'off':\n"
    "    jl.enable_compilation_cache(None if sys.argv[1] == 'default' else sys.argv[1])\n"
    "X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)\n"
    "jl.fit(X, y, max_iter=5)\n"
    "print(jax.config.jax_compilation_cache_dir)\n"
)


def _run(how: str, environ: dict[str, str]) -> str:
    base = {k: v for k, v in os.environ.items()
            if k not in ("JAX_COMPILATION_CACHE_DIR", cache.NO_CACHE, "XDG_CACHE_HOME")}
    proc = subprocess.run([sys.executable, "-c", FIT, how], env={**base, **environ},
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.mark.slow  # fresh processes
def test_off_unless_enabled_then_in_the_user_cache_folder_and_reused(tmp_path):
    assert _run("off", {"XDG_CACHE_HOME": str(tmp_path)}) == "None"
    assert not any(tmp_path.iterdir())  # nothing written
    folder = tmp_path / "jaxlogreg"
    assert _run("default", {"XDG_CACHE_HOME": str(tmp_path)}) == str(folder)
    first = _entries(folder)
    assert any(name.startswith("jit__run") for name in first), first  # the training loop
    _run("default", {"XDG_CACHE_HOME": str(tmp_path)})
    assert _entries(folder) == first  # a second process finds every program in the cache


@pytest.mark.slow  # fresh processes
def test_an_explicit_folder_and_jax_s_own_setting(tmp_path):
    mine = tmp_path / "mine"
    assert _run(str(mine), {"XDG_CACHE_HOME": str(tmp_path)}) == str(mine)
    assert _entries(mine) and not (tmp_path / "jaxlogreg").exists()
    theirs = tmp_path / "theirs"  # JAX_COMPILATION_CACHE_DIR is taken when no folder is given
    environ = {"XDG_CACHE_HOME": str(tmp_path), "JAX_COMPILATION_CACHE_DIR": str(theirs)}
    assert _run("default", environ) == str(theirs)


def test_a_file_is_not_a_cache_folder(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="folder must be a directory .* got the file"):
        cache.enable_compilation_cache(tmp_path / "f")


def test_default_folder(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/x")
    assert cache.default_folder() == Path("/x/jaxlogreg")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/h")
    assert cache.default_folder() == Path("/h/.cache/jaxlogreg")


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("false", False),
    ("no", False), ("Off", False), ("", None), (None, None)])
def test_switches_read_only_what_they_say(value, expected, monkeypatch):
    if value is None:
        monkeypatch.delenv("JAXLOGREG_TEST_SWITCH", raising=False)
    else:
        monkeypatch.setenv("JAXLOGREG_TEST_SWITCH", value)
    for default in (True, False):
        assert env.flag("JAXLOGREG_TEST_SWITCH", default) is (default if expected is None
                                                              else expected)


@pytest.mark.parametrize("value", ["nope", "2", "disable", "y e s"])
def test_a_switch_that_is_neither_on_nor_off_is_an_error(value, monkeypatch):
    monkeypatch.setenv("JAXLOGREG_NO_CACHE", value)
    with pytest.raises(ValueError, match=f"JAXLOGREG_NO_CACHE must be one of .* got {value!r}"):
        cache.enabled_by_command()


@pytest.mark.parametrize("value, enabled", [("no", True), ("0", True), ("", True),
                                            ("1", False), ("yes", False)])
def test_the_command_s_opt_out_reads_no_as_no(value, enabled, monkeypatch, tmp_path):
    monkeypatch.setenv("JAXLOGREG_NO_CACHE", value)
    monkeypatch.setattr(cache, "enable_compilation_cache", lambda folder=None: tmp_path)
    assert cache.enabled_by_command() == (tmp_path if enabled else None)
