"""Smoke test of benchmarks/sparse_path.py: tiny sizes, no timing asserted; it runs, writes its
JSON and markdown, and its λ grid starts where every weight is zero."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # runs a benchmark script

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import benchmarks as bench
from benchmarks import sparse, sparse_path


def test_l1_grid_starts_at_lambda_max():
    X, y, _ = sparse.make_problem(300, 200, 6, seed=0)
    Cs = sparse_path.l1_grid(X, y, 5, 100.0)
    lams = 1.0 / (Cs * X.shape[0])
    assert np.all(np.diff(lams) < 0) and lams[0] / lams[-1] == pytest.approx(100.0)
    from sklearn.linear_model import LogisticRegression

    def fit(C):
        return LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", tol=1e-10,
                                  intercept_scaling=1e4).fit(X, y).coef_

    assert np.count_nonzero(fit(Cs[0] * 0.99)) == 0  # at λ_max and above: all zero
    assert np.count_nonzero(fit(Cs[0] * 1.5)) > 0  # below it: not


def test_sparse_path_benchmark(tmp_path):
    argv = ["sparse_path", "--quick", "--out", str(tmp_path), "--sizes", "600x400x8",
            "--Cs", "5", "--folds", "3", "--skip", "saga"]
    assert bench.main(argv) == 0
    result = json.loads((tmp_path / "sparse_path.json").read_text())
    assert "# Benchmark: sparse_path" in (tmp_path / "sparse_path.md").read_text()
    ours = result["rows"][0]
    assert ours["library"].startswith("jaxlogreg") and ours["seconds"] > 0
    grid = sparse_path.l1_grid(*sparse.make_problem(600, 400, 8, seed=0)[:2], 5, 100.0)
    assert np.isclose(grid, ours["C_"]).any()
    for row in result["rows"][1:]:  # skglm where installed: the same choice
        assert row["same C_"], row
