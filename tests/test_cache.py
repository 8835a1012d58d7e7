"""JAX's persistent compilation cache: on by default, in the user's cache folder, with an
opt-out and respect for an explicit JAX_COMPILATION_CACHE_DIR. Each case is a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxlogreg import cache

FIT = (
    "import numpy as np, jax, jaxlogreg as jl\n"
    "X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)\n"
    "jl.fit(X, y, max_iter=5)\n"
    "print(jax.config.jax_compilation_cache_dir)\n"
)


def _run(env: dict[str, str]) -> str:
    base = {k: v for k, v in os.environ.items()
            if k not in ("JAX_COMPILATION_CACHE_DIR", cache.OPT_OUT, "XDG_CACHE_HOME")}
    proc = subprocess.run([sys.executable, "-c", FIT], env={**base, **env}, capture_output=True,
                          text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_on_by_default_in_the_user_cache_folder_and_reused(tmp_path):
    folder = tmp_path / "jaxlogreg"
    assert _run({"XDG_CACHE_HOME": str(tmp_path)}) == str(folder)
    first = _entries(folder)
    assert any(name.startswith("jit__run") for name in first), first  # the training loop
    saved = folder / "jaxlogreg-exported"  # and the loop saved before lowering (jaxlogreg.saved)
    assert [p.name[:4] for p in saved.iterdir()] == ["run-"]
    _run({"XDG_CACHE_HOME": str(tmp_path)})
    assert _entries(folder) == first  # a second process finds every program in the cache


def test_opt_out_and_an_explicit_folder(tmp_path):
    assert _run({"XDG_CACHE_HOME": str(tmp_path), cache.OPT_OUT: "1"}) == "None"
    assert not (tmp_path / "jaxlogreg").exists()
    mine = tmp_path / "mine"
    assert _run({"XDG_CACHE_HOME": str(tmp_path), "JAX_COMPILATION_CACHE_DIR": str(mine)}) == str(mine)
    assert _entries(mine) and not (tmp_path / "jaxlogreg").exists()


@pytest.mark.parametrize(
    "environ, expected",
    [({"XDG_CACHE_HOME": "/x"}, Path("/x/jaxlogreg")), ({"HOME": "/h"}, None)],
)
def test_default_folder(environ, expected, monkeypatch):
    if expected is None:
        monkeypatch.setenv("HOME", "/h")
        expected = Path("/h/.cache/jaxlogreg")
    assert cache.default_folder(environ) == expected
