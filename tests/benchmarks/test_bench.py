"""Smoke tests of the benchmarks: each runs at tiny sizes and writes JSON + markdown.

No timing is asserted (the machine is shared); only that every benchmark runs, writes
``<name>.json`` / ``<name>.md`` with the expected keys, and that its numerical side is right.

The benchmarks are the top-level ``benchmarks/`` folder of the checkout, not part of the
installed package: the repository root is put on ``sys.path`` to import them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each runs a benchmark script

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import benchmarks as bench
from benchmarks import report, roofline, time_to_solution
from jaxlogreg.core.gradients import value_and_backward_t
from jaxlogreg.core.model import Params

pytest.importorskip("matplotlib")
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _run(name: str, tmp_path, *extra: str) -> dict:
    assert bench.main([name, "--quick", "--repeats", "1", "--out", str(tmp_path), *extra]) == 0
    result = json.loads((tmp_path / f"{name}.json").read_text())
    md = (tmp_path / f"{name}.md").read_text()
    assert result["benchmark"] == name
    assert result["rows"], f"{name} wrote no rows"
    for key in ("description", "machine", "config", "rows"):
        assert key in result, f"{name}.json lacks {key!r}"
    for key in ("cpu", "cores", "memory_gib", "versions", "python"):
        assert key in result["machine"]
    assert result["machine"]["versions"]["jax"] == jax.__version__
    assert f"# Benchmark: {name}" in md and "Machine:" in md and "| " in md
    return result


def test_registry_and_missing_module(monkeypatch):
    assert {"vectorization", "roofline", "time_to_solution", "scaling"} <= set(bench.available())
    assert "devices" in bench.REGISTRY  # owned by the multi-device work, imported lazily
    monkeypatch.setitem(bench.REGISTRY, "devices", "benchmarks._no_such_module")
    assert bench.load("devices") is None
    assert "devices" not in bench.available()
    with pytest.raises(ValueError, match="benchmark must be one of"):
        bench.load("nope")
    for name in ("vectorization", "roofline", "time_to_solution", "scaling"):
        module = bench.load(name)
        assert isinstance(module.DESCRIPTION, str) and callable(module.add_arguments)
        assert callable(module.run)


def test_parser_rejects_unknown_benchmark(capsys):
    with pytest.raises(SystemExit):
        bench.main(["no-such-benchmark"])
    assert "invalid choice" in capsys.readouterr().err


def test_vectorization(tmp_path):
    result = _run("vectorization", tmp_path, "--dot-size", "2000", "--m", "40", "--n", "4")
    impls = {r["implementation"] for r in result["rows"]}
    assert impls == {
        "Python for loop (float64)",
        "numpy float64",
        "jax jit float64",
        "jax jit float32",
    }
    assert {"dot_loop_over_numpy", "grad_loop_over_jax_f32"} <= set(result["summary"])
    for r in result["rows"]:
        assert r["max abs diff vs loop"] < (1e-3 if "float32" in r["implementation"] else 1e-9)


def test_roofline(tmp_path):
    result = _run("roofline", tmp_path, "--sizes", "300x5", "--chunks", "64")
    ops = {(r["op"], r["variant"]) for r in result["rows"]}
    assert ("ceiling", "jnp.sum") in ops
    assert ("gradient", "hand (n,m) library") in ops and ("step", "hand (n,m) library") in ops
    assert ("gradient", "chunked (n,m) C=64") in ops
    from jaxlogreg.kernels import native

    if native.available():
        assert ("gradient", "native (m,n) C kernel") in ops
        assert ("step", "native (m,n) C kernel") in ops
    for r in result["rows"]:
        assert {"median_ms", "GB/s", "x_floor"} <= set(r)
        if r["op"] == "gradient" and "bf16" not in r["variant"]:
            assert r["max|dw - library|"] < 1e-5
    # 300 x 5 is below the C kernel's size: training uses XLA's gradient there
    assert [t["target"].rsplit(", ", 1)[0] for t in result["targets"]][:2] == [
        "training's gradient (hand (n,m) library)",
        "training's GD step (hand (n,m) library)",
    ]
    assert all(set(t) >= {"measured", "threshold", "met"} for t in result["targets"])


def test_time_to_solution(tmp_path):
    torch_solvers = ["torch gd", "torch lbfgs"] if HAVE_TORCH else []
    chosen = ["jaxlogreg lbfgs", "sklearn lbfgs", *torch_solvers]
    result = _run(
        "time_to_solution",
        tmp_path,
        *("--sizes", "300x5", "--max-iter", "50", "--no-cache-check", "--solvers", *chosen),
    )
    solvers = {r["solver"] for r in result["rows"]}
    assert solvers == set(chosen)
    for r in result["rows"]:
        assert {"first_s", "steady_s", "n_iter", "loss", "rel_gap", "reached"} <= set(r)
    by = {r["solver"]: r for r in result["rows"]}
    assert by["jaxlogreg lbfgs"]["rel_gap"] < 1e-6  # lbfgs reaches the common optimum
    assert by["sklearn lbfgs"]["rel_gap"] < 1e-6
    if HAVE_TORCH:
        assert by["torch lbfgs"]["rel_gap"] < 1e-5
    names = [t["target"] for t in result["targets"]]
    assert any("steady state" in n for n in names) and any("loss gap" in n for n in names)
    assert any("vs PyTorch" in n for n in names) == HAVE_TORCH


def test_time_to_solution_compares_line_searches_and_compiler_options(monkeypatch):
    args = argparse.Namespace(seed=0, correlation=0.2, l2=1e-4, tol=1e-6, repeats=1)
    builds = list(time_to_solution.LOOP_BUILDS)
    assert time_to_solution._compile_in_fresh_process(300, 5, args, "float32", builds[0]) > 0
    fake = {build: 2.0 + k for k, build in enumerate(builds)}  # compile seconds, fresh processes
    monkeypatch.setattr(time_to_solution, "_compile_in_fresh_process",
                        lambda m, n, args, dtype, build: fake[build])
    rows = time_to_solution._loop_builds_check(300, 5, args, "float64", rounds=2)
    assert [r["build"] for r in rows] == builds
    assert [r["compile / jaxlogreg's"] for r in rows] == [1.0, 1.5, 2.0, 2.5]
    assert [r["quick"] for r in rows] == [True, True, False, False]  # 300 rows: small work
    for row in rows:
        assert row["steady_s"] > 0 and row["n_iter"] == rows[0]["n_iter"] > 0


@pytest.mark.skipif(HAVE_TORCH, reason="checks the run without PyTorch")
def test_time_to_solution_without_torch_names_the_missing_package(tmp_path):
    with pytest.raises(ValueError, match=r"need PyTorch, which is not installed"):
        bench.main(["time_to_solution", "--quick", "--out", str(tmp_path), "--solvers", "torch gd"])


def test_scaling(tmp_path):
    # (200, 4) is in both sweeps: two shapes to compile
    result = _run(
        "scaling", tmp_path, "--ms", "200", "400", "--ns", "4", "--fixed-n", "4", "--fixed-m", "200"
    )
    assert [r["sweep"] for r in result["rows"]] == ["m", "m", "n"]
    for r in result["rows"]:
        assert {"step_ms", "jaxlogreg_lbfgs_s", "sklearn_lbfgs_s"} <= set(r)
    for sweep in ("m", "n"):
        png = tmp_path / f"scaling_{sweep}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_all_runs_the_selected_benchmarks(tmp_path):
    skip = [n for n in bench.available() if n != "vectorization"]
    assert (
        bench.main(["all", "--quick", "--repeats", "1", "--out", str(tmp_path), "--skip", *skip])
        == 0
    )
    assert (tmp_path / "vectorization.json").exists()
    assert not (tmp_path / "roofline.json").exists()


def test_scripts_run_from_a_checkout(tmp_path):
    """``python benchmarks/<name>.py`` and ``python benchmarks/run_all.py`` find both the
    ``benchmarks`` modules and ``jaxlogreg`` from any working directory."""
    script = REPO_ROOT / "benchmarks" / "vectorization.py"
    args = ["--quick", "--repeats", "1", "--dot-size", "2000", "--m", "40", "--n", "4"]
    out = subprocess.run(
        [sys.executable, str(script), *args, "--out", str(tmp_path / "results")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / "results" / "vectorization.json").read_text())["rows"]
    for command, cwd, expected in (
        ([str(REPO_ROOT / "benchmarks" / "run_all.py"), "--help"], tmp_path, "--skip"),
        (["-m", "benchmarks", "--help"], REPO_ROOT, "time_to_solution"),
    ):
        out = subprocess.run(
            [sys.executable, *command], cwd=cwd, capture_output=True, text=True, timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert expected in out.stdout


@pytest.mark.parametrize("m, chunk", [(300, 64), (50, 64)])
def test_chunked_gradient_equals_library(m, chunk):
    rng = np.random.default_rng(0)
    Xt = jnp.asarray(rng.standard_normal((7, m)), jnp.float32)
    y = jnp.asarray(rng.random(m) < 0.5, jnp.float32)
    params = Params(jnp.asarray(rng.standard_normal(7), jnp.float32), jnp.asarray(0.3, jnp.float32))
    J, g = jax.jit(roofline.chunked_value_and_grad_t, static_argnums=3)(params, Xt, y, chunk)
    J_ref, g_ref = value_and_backward_t(params, Xt, y)
    np.testing.assert_allclose(J, J_ref, rtol=1e-6)
    np.testing.assert_allclose(g.w, g_ref.w, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g.b, g_ref.b, rtol=1e-5, atol=1e-7)


def test_report_helpers(tmp_path):
    t = report.Timing((3.0, 1.0, 2.0))
    assert (t.median, t.min) == (2.0, 1.0)
    first, steady = report.time_fn(lambda x: x + 1, jnp.ones(3), repeats=2)
    assert first >= 0 and len(steady.times) == 2
    assert report.target("x", 1.2, 1.5, "ratio")["met"]
    assert not report.target("x", float("nan"), 1.5, "ratio")["met"]
    table = report.markdown_table([{"a": 1.23456, "b": None}, {"a": 1e-7, "c": "x|y"}])
    assert "| a | b | c |" in table and "1.235" in table and "x\\|y" in table
    json_path, md_path = report.write_result("demo", {"rows": [{"a": np.float32(1)}]}, tmp_path)
    assert json.loads(json_path.read_text())["rows"] == [{"a": 1.0}]
    assert md_path.read_text().startswith("# Benchmark: demo")


def test_cv(tmp_path):
    result = _run("cv", tmp_path, "--sizes", "400x4", "--Cs", "3", "--folds", "3")
    ours, theirs = result["rows"]
    assert ours["estimator"].startswith("jaxlogreg") and theirs["estimator"].startswith("scikit")
    assert ours["same_C_"] and ours["max |coef_ - sklearn|"] < 1e-3
    assert {t["target"].split(",")[0] for t in result["targets"]} == {
        "steady state", "first call", "refit coef_"}


def test_sparse(tmp_path):
    from benchmarks import sparse

    X, y, w = sparse.make_problem(300, 512, 8, seed=0)
    assert X.format == "csr" and X.dtype == np.float32 and X.has_canonical_format
    assert 0 < X.nnz <= 300 * 8 and set(np.unique(y)) == {0, 1} and np.count_nonzero(w) == 300
    with pytest.raises(ValueError, match="MxNxNNZ"):
        sparse.parse_size("300x512")
    result = _run("sparse", tmp_path, "--sizes", "600x256x8", "--max-iter", "300")
    rows = result["rows"]
    assert [(r["penalty"], r["solver"]) for r in rows[:4]] == [
        ("l2", "jaxlogreg newton-cg"), ("l2", "jaxlogreg lbfgs"), ("l2", "scikit-learn lbfgs"),
        ("l2", "scikit-learn newton-cg")]
    pairs = {(r["penalty"], r["solver"]) for r in rows}
    assert {("l1", "jaxlogreg working_set"), ("l1", "scikit-learn liblinear")} <= pairs
    for r in rows:
        assert {"first_s", "steady_s", "objective", "rel_gap", "nonzero_w", "peak / CSR",
                "lambda", "support_diff", "steady / ref"} <= set(r)
        assert r["peak_extra_MiB"] >= 0 and r["rel_gap"] >= 0
    assert rows[0]["rel_gap"] < 1e-5 and rows[1]["rel_gap"] < 1e-5  # the same optimum
    working_set = [r for r in rows if r["solver"] == "jaxlogreg working_set"]
    assert len(working_set) == 2  # one per --quick λ₁
    for r in working_set:  # a certified optimum: the lowest J of its comparison, same zeros
        assert r["status"] == "converged" and r["rel_gap"] < 1e-6 and r["support_diff"] == 0
    names = {t["target"].split(",")[0] for t in result["targets"]}
    assert {"L2 steady time", "L2 objective", "L2 peak memory"} <= names
    l1_names = names - {"L2 steady time", "L2 objective", "L2 peak memory"}
    assert len(l1_names) == 6 and all(name.startswith("L1 λ=") for name in l1_names)
    assert {name.rsplit(") ", 1)[1] for name in l1_names} == {
        "steady time", "objective", "peak memory"}


def test_sparse_l1_reference_is_skglm_at_the_solution():
    """The L1 speed reference is the fastest skglm fit at the best J with the support of
    skglm's tightest fit; a looser fit with another support had not reached the solution."""
    from benchmarks import sparse

    def row(library, tol, seconds, J, w):
        return {"solver": library, "tol": tol, "steady_s": seconds, "objective": J,
                "w": np.asarray(w, float)}

    fits = [("jaxlogreg", "working_set"), ("skglm", "a"), ("skglm", "b"), ("sklearn", "c")]
    ours = row("jaxlogreg", 1e-7, 1.0, 0.5, [1, 0, 2])
    tight = row("skglm", 1e-10, 9.0, 0.5 + 1e-12, [1, 0, 2])
    liblinear = row("sklearn", 1e-8, 0.5, 0.5, [1, 0, 2])
    loose_other_support = row("skglm", 1e-8, 3.0, 0.5 + 1e-10, [1, 1e-3, 2])
    group = [ours, loose_other_support, tight, liblinear]
    assert sparse._reference(group, fits, "l1", 0.5) is tight
    loose_same_support = row("skglm", 1e-8, 3.0, 0.5 + 1e-10, [1, 0, 2.001])
    group = [ours, loose_same_support, tight, liblinear]
    assert sparse._reference(group, fits, "l1", 0.5) is loose_same_support
    loose_above = row("skglm", 1e-8, 3.0, 0.5 * (1 + 1e-5), [1, 0, 2])
    group = [ours, loose_above, tight, liblinear]
    assert sparse._reference(group, fits, "l1", 0.5) is tight
    assert sparse._reference([ours, liblinear], [fits[0], fits[3]], "l1", 0.5) is liblinear
