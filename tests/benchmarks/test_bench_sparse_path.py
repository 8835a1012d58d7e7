"""Smoke test of benchmarks/sparse_path.py: tiny sizes, no timing asserted; it runs, writes its
JSON and markdown, its λ grid starts where every weight is zero, and it re-scores every model
on its own fold."""

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


def test_path_objectives_score_each_model_on_its_folds_training_rows():
    X, y, _ = sparse.make_problem(300, 200, 6, seed=0)
    folds = [(np.arange(0, 200), np.arange(200, 300)), (np.arange(100, 300), np.arange(100))]
    Cs = np.array([0.5, 2.0])
    coefs = np.zeros((2, 2, X.shape[1] + 1))
    coefs[1, 0, -1] = 0.7  # an intercept only: no penalty
    coefs[1, 1, 3] = -2.0  # one weight: its penalty |w| / (C m_f)
    J = sparse_path.path_objectives(X, y, Cs, folds, coefs)
    np.testing.assert_allclose(J[0], np.log(2.0), rtol=1e-12)
    y1 = y[folds[1][0]]
    z = X[folds[1][0]].toarray()[:, 3].astype(np.float64) * -2.0
    expected = [np.mean(np.logaddexp(0.0, 0.7) - 0.7 * y1),
                np.mean(np.logaddexp(0.0, z) - y1 * z) + 2.0 / (2.0 * 200)]
    np.testing.assert_allclose(J[1], expected, rtol=1e-12)


def test_a_run_without_jaxlogregs_c_library_stops(monkeypatch):
    from jaxlogreg.kernels import native

    monkeypatch.setattr(native, "build_error", lambda: "the build's deadline passed")
    with pytest.raises(RuntimeError, match="C library is not available: the build's deadline"):
        sparse.check_native()


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
    assert 0.0 <= ours["worst_excess"] <= sparse_path.EQUAL  # near the untimed reference's J
    for row in result["rows"][1:]:  # skglm where installed: the same choice
        assert row["same C_"], row
