"""Shared fixtures: the course's catvnoncat data, problem factories, the x64 guard, hypothesis.

float64 is enabled only locally, with ``with jax.enable_x64(True):`` inside a test. An autouse
fixture fails any test after which ``jax_enable_x64`` is still on, so a leak cannot silently turn
later float32 tests into float64 ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

if os.environ.get("PYTEST_XDIST_WORKER"):  # several test processes may share one GPU: no process
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # takes 75 % of its memory

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import jaxlogreg as jl

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CATVNONCAT_DIR = REPO_ROOT.parent / "shared" / "data" / "catvnoncat"
CATVNONCAT_FILES = ("train_catvnoncat.h5", "test_catvnoncat.h5")
# EXPECTED.md next to the data: "the first five values of the first image's flat vector (before
# /255) are 17 31 56 22 33" -- checks the flattening order x.reshape(m, -1).
CATVNONCAT_FIRST_PIXELS = (17, 31, 56, 22, 33)


# --- hypothesis: few examples, no deadline (the first call of each shape compiles) --------------

_HYPOTHESIS_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("jaxlogreg", max_examples=30, **_HYPOTHESIS_COMMON)
settings.register_profile(
    "jaxlogreg-ci",
    max_examples=30,
    derandomize=True,
    database=None,
    print_blob=True,
    **_HYPOTHESIS_COMMON,
)
settings.register_profile("jaxlogreg-thorough", max_examples=500, **_HYPOTHESIS_COMMON)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "jaxlogreg-ci" if _env_flag("CI") else "jaxlogreg")
)


# --- x64 guard -------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _x64_off_for_the_session():
    """The suite must start with x64 off (JAX_ENABLE_X64 set in the environment fails here)."""
    if jax.config.jax_enable_x64:
        pytest.fail(
            "jax_enable_x64 is on at the start of the test session (JAX_ENABLE_X64 set?); "
            "the tests enable float64 locally with `with jax.enable_x64(True):`",
            pytrace=False,
        )
    yield


@pytest.fixture(autouse=True)
def _no_x64_leak(request):
    """Fail the test after which x64 is still enabled, then switch it off for the next test."""
    yield
    if jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", False)
        pytest.fail(
            f"{request.node.nodeid} left jax_enable_x64 on; enable float64 locally with "
            "`with jax.enable_x64(True):` instead of jax.config.update",
            pytrace=False,
        )


# --- random problems and a NumPy reference ---------------------------------------------------


class Problem(NamedTuple):
    """A random problem as NumPy arrays: X (m, n), y (m,), optional weights, w and b."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    w: np.ndarray
    b: np.ndarray

    def params(self) -> jl.Params:
        """``Params`` as JAX arrays; call inside ``jax.enable_x64(True)`` for float64."""
        return jl.Params(w=jnp.asarray(self.w), b=jnp.asarray(self.b))


def make_problem(
    m: int,
    n: int,
    n_classes: int = 2,
    dtype: Any = np.float64,
    *,
    weighted: bool = False,
    seed: int = 0,
    logit_scale: float = 1.0,
) -> Problem:
    """Random data and parameters; |z| is of order ``logit_scale``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    y = rng.integers(0, n_classes, size=m)
    sample_weight = rng.uniform(0.1, 3.0, size=m).astype(dtype) if weighted else None
    w_shape = (n,) if n_classes == 2 else (n, n_classes)
    b_shape = () if n_classes == 2 else (n_classes,)
    w = (logit_scale / np.sqrt(n) * rng.normal(size=w_shape)).astype(dtype)
    b = np.asarray(0.3 * logit_scale * rng.normal(size=b_shape), dtype=dtype)
    return Problem(X, y, sample_weight, w, b)


def numpy_objective(X, y, w, b, sample_weight=None, l2=0.0) -> float:
    """Float64 NumPy reference of J: weighted mean of logaddexp-form losses + l2/2 ||w||²."""
    X, w, b = (np.asarray(a, np.float64) for a in (X, w, b))
    z = X @ w + b
    if z.ndim == 1:
        losses = np.logaddexp(0.0, np.where(np.asarray(y) == 1, -z, z))
    else:
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        losses = lse - z[np.arange(len(y)), np.asarray(y)]
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    return float(np.sum(s * losses) / np.sum(s) + 0.5 * l2 * np.sum(w * w))


@pytest.fixture(scope="session")
def problem_factory():
    """``make_problem`` as a fixture (session-scoped so hypothesis tests may use it)."""
    return make_problem


# --- the course's data ------------------------------------------------------------------------


class CatVNonCat(NamedTuple):
    """catvnoncat flattened with ``x.reshape(m, -1)``: raw uint8 rows and float64 rows / 255."""

    train_raw: np.ndarray  # (209, 12288) uint8
    test_raw: np.ndarray  # (50, 12288) uint8
    X_train: np.ndarray  # (209, 12288) float64 in [0, 1]
    y_train: np.ndarray  # (209,) int64 in {0, 1}
    X_test: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="session")
def catvnoncat_dir() -> Path:
    """The catvnoncat folder: $JAXLOGREG_CATVNONCAT_DIR, else <repo>/../shared/data/catvnoncat.

    Skips when the files are missing, except under CI (CI=true), where the data must be present.
    """
    env = os.environ.get("JAXLOGREG_CATVNONCAT_DIR")
    path = Path(env) if env else DEFAULT_CATVNONCAT_DIR
    missing = [name for name in CATVNONCAT_FILES if not (path / name).is_file()]
    if missing:
        reason = (
            f"catvnoncat data not found: {', '.join(missing)} missing in {path} "
            "(set JAXLOGREG_CATVNONCAT_DIR to the folder holding the course's .h5 files)"
        )
        if _env_flag("CI"):
            pytest.fail(f"{reason}; CI must provide the data", pytrace=False)
        pytest.skip(reason)
    return path


def _load_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path / f"{split}_catvnoncat.h5", "r") as f:
        x = np.asarray(f[f"{split}_set_x"])
        y = np.asarray(f[f"{split}_set_y"])
    return x.reshape(x.shape[0], -1), y.reshape(-1).astype(np.int64)


@pytest.fixture(scope="session")
def catvnoncat(catvnoncat_dir: Path) -> CatVNonCat:
    """The course's data, loaded once per session."""
    train_raw, y_train = _load_split(catvnoncat_dir, "train")
    test_raw, y_test = _load_split(catvnoncat_dir, "test")
    first = tuple(int(v) for v in train_raw[0, :5])
    if first != CATVNONCAT_FIRST_PIXELS:
        pytest.fail(
            f"catvnoncat flattening check failed: first five values of the first image are "
            f"{first}, expected {CATVNONCAT_FIRST_PIXELS}",
            pytrace=False,
        )
    return CatVNonCat(
        train_raw=train_raw,
        test_raw=test_raw,
        X_train=train_raw / 255.0,
        y_train=y_train,
        X_test=test_raw / 255.0,
        y_test=y_test,
    )


@pytest.fixture(scope="session")
def reference_objective():
    """``numpy_objective``: J in float64 NumPy, independent of jaxlogreg."""
    return numpy_objective


@pytest.fixture
def quick_flags(monkeypatch) -> list[bool]:
    """The ``quick`` flag of every program built through ``jaxlogreg.runtime.compiler.with_options``
    (whether it compiled with ``QUICK_OPTIONS``), in order."""
    from jaxlogreg.runtime import compiler

    flags: list[bool] = []
    with_options = compiler.with_options

    def spy(build, quick=False):
        flags.append(quick)
        return with_options(build, quick)

    monkeypatch.setattr(compiler, "with_options", spy)
    return flags
