"""Smoke test of benchmarks/inference.py: tiny sizes; no timing asserted, only that it runs,
writes its JSON and markdown, and that the three libraries' standard errors agree."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs a benchmark script

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import benchmarks as bench

pytest.importorskip("glum")


def test_inference_benchmark(tmp_path):
    argv = ["inference", "--quick", "--repeats", "1", "--out", str(tmp_path),
            "--sizes", "3000x5"]
    assert bench.main(argv) == 0
    result = json.loads((tmp_path / "inference.json").read_text())
    assert "# Benchmark: inference" in (tmp_path / "inference.md").read_text()
    rows = {(r["library"], r["cov_type"]): r for r in result["rows"]}
    assert set(rows) == {(lib, cov) for lib in ("jaxlogreg", "statsmodels", "glum")
                         for cov in ("nonrobust", "HC0")}
    # the same model, float32 X: jaxlogreg's SEs equal statsmodels' up to the fits' tolerance;
    # glum's differ by its small-sample factors (about k/m) and estimated dispersion
    assert rows["jaxlogreg", "nonrobust"]["max rel SE diff vs statsmodels"] < 1e-3
    assert rows["jaxlogreg", "HC0"]["max rel SE diff vs statsmodels"] < 1e-3
    assert rows["glum", "HC0"]["max rel SE diff vs statsmodels"] < 0.05
    for row in result["rows"]:
        assert row["inference_s"] > 0 and row["fit+inference_s"] > 0
    passes = result["tables"]["one pass over X"][0]
    assert 0 < passes["one pass s"] == min(passes["X v s"], passes["Xᵀ u s"])
    names = [t["target"] for t in result["targets"]]
    assert names == ["fit + nonrobust SEs vs glum, 3,000 x 5",
                     "fit + nonrobust SEs vs statsmodels, 3,000 x 5",
                     "inference step, nonrobust, 3,000 x 5", "inference step, HC0, 3,000 x 5"]
