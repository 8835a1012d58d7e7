"""Smoke test of benchmarks/softmax.py: tiny sizes; no timing asserted, only that it runs, writes
its JSON and markdown, that every solver reaches the same softmax objective, and that the
float64 objective it scores them with is the library's."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # runs a benchmark script

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import benchmarks as bench
from benchmarks import softmax
from jaxlogreg.core.loss import objective
from jaxlogreg.core.model import Params

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def test_softmax_benchmark(tmp_path):
    argv = ["softmax", "--quick", "--repeats", "1", "--out", str(tmp_path), "--sizes", "600x5",
            "--classes", "4"]
    assert bench.main(argv) == 0
    result = json.loads((tmp_path / "softmax.json").read_text())
    assert "# Benchmark: softmax" in (tmp_path / "softmax.md").read_text()
    rows = {r["solver"]: r for r in result["rows"]}
    libraries = {"jaxlogreg lbfgs", "sklearn lbfgs"} | ({"torch lbfgs"} if HAVE_TORCH else set())
    one_thread = {"sklearn lbfgs, 1 BLAS thread"} | ({"torch lbfgs, 1 thread"} if HAVE_TORCH
                                                      else set())
    assert set(rows) == libraries | one_thread
    for row in rows.values():  # lbfgs on all sides stops at max|∇J| <= 1e-6: the same optimum
        assert row["J above best"] < 1e-6 and row["reached"]
        assert row["first_s"] > 0 and row["steady_s"] > 0 and row["K"] == 4
    assert rows["jaxlogreg lbfgs"]["settings"] == "kernel xla"  # 600 x 5 is below the C kernel's
    memory = result["tables"][softmax.MEMORY_TABLE]
    assert {r["solver"] for r in memory} == libraries and all(r["classes"] == 4 for r in memory)
    fastest_sklearn = min(rows["sklearn lbfgs"]["steady_s"],
                          rows["sklearn lbfgs, 1 BLAS thread"]["steady_s"])
    assert result["targets"][0]["measured"] == pytest.approx(
        rows["jaxlogreg lbfgs"]["steady_s"] / fastest_sklearn)
    assert [t["target"] for t in result["targets"]] == [
        "softmax steady time vs scikit-learn lbfgs, 600 x 5, K=4",
        "same objective, 600 x 5, K=4",
        "peak extra memory, 600 x 5, K=4, aligned X"]


def test_objective64_is_the_library_objective():
    X, y = softmax.make_problem(300, 6, 5, seed=1)
    assert X.dtype == np.float32 and set(np.unique(y)) <= set(range(5))
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((6, 5)), rng.standard_normal(5)
    with jax.enable_x64(True):
        expected = float(objective(Params(W, b), X.astype(np.float64), y, l2=0.3))
    np.testing.assert_allclose(softmax.objective64(X, y, W, b, 0.3), expected, rtol=1e-12)


def test_softmax_benchmark_refuses_two_classes(tmp_path):
    with pytest.raises(ValueError, match="--classes must be an integer >= 3"):
        bench.main(["softmax", "--quick", "--out", str(tmp_path), "--classes", "2"])
