"""Time to the same solution: jaxlogreg against scikit-learn and PyTorch on the same data.

Every solver minimises the same objective on the same float32 data,
``J = mean_i L_i + λ/2 ||w||²`` (jaxlogreg and scikit-learn with ``C = 1 / (λ m)``), starting
from zero.
Each final (w, b) is re-scored with one float64 evaluation of J, and ``rel_gap`` is
``(J - J_best) / J_best`` against the best J found by any solver; the bar is ``rel_gap <= 1e-6``.

Solvers: jaxlogreg ``fit`` with lbfgs, gd and adam; scikit-learn ``LogisticRegression`` with
lbfgs and newton-cholesky; PyTorch with a hand-written GD loop and ``torch.optim.LBFGS``
(strong-Wolfe line search). The data are standardised (zero mean, unit variance per feature;
``--correlation`` mixes in a shared factor), GD uses ``learning_rate = 1 / L`` with
``L = max(λ_max(XᵀX/m), 1) / 4 + λ`` (the gradient's Lipschitz constant), adam ``--adam-lr``.

For each solver: ``first_s``, the first call in this process (for jaxlogreg after
``jax.clear_caches()``, so it includes tracing and compilation), and ``steady_s``, the median
of later calls. jaxlogreg is timed through the public ``fit(X, y)`` on NumPy input, like the
others; the extra row "jaxlogreg lbfgs, device data" times only the on-device loop on data
already validated, laid out and on the device. The gradient a fit uses is in the settings
column: the single-read C kernel (:mod:`jaxlogreg.kernels.native`) for X of at least 2^22
elements, XLA's two products below that. The benchmark's own process runs without the
persistent compilation cache (``JAXLOGREG_NO_CACHE=1``, so first calls compile); fresh
processes time a first ``LogisticRegression().fit`` on 10,000 x 50 without the cache, with an
empty one and with the one that run filled (three rounds of the three; the targets take the
median), next to scikit-learn's first fit. The table
"line search and compiler options" builds the L-BFGS loop (``max_iter=100``, the estimator's
default) as jaxlogreg does, with optax's zoom line search instead of jaxlogreg's
(:mod:`jaxlogreg.training.linesearch`), without the quick compile that jaxlogreg uses for small
work (:data:`jaxlogreg.runtime.compiler.QUICK_OPTIONS`; column "quick") and with XLA's default options
instead of jaxlogreg's (:mod:`jaxlogreg.runtime.compiler`): compile time in fresh processes (three
each, in turn), steady time of the four on the same data, round-robin. The table "Peak memory of
a fit" gives, for jaxlogreg, scikit-learn and PyTorch L-BFGS, the resident memory a fit adds
above what its process held just before it, each library in a fresh process, the runtime's own
share (a first tiny fit) apart (:mod:`benchmarks.peak_memory`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import peak_memory, report
from benchmarks.roofline import parse_size

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_SIZES = ("100000x100", "1000000x100")
QUICK_SIZES = ("2000x10",)
GAP = 1e-6
STEADY_TARGET, TORCH_TARGET = 0.3, 1.0  # steady fit / sklearn lbfgs, / torch LBFGS
FIRST_FIT_SIZE = (10_000, 50)  # the estimator's first fit in a fresh process
FIRST_FIT_EMPTY, FIRST_FIT_WARM = 1.0, 0.3  # seconds, empty and warm compilation cache
MEMORY_TARGET = 0.25  # a steady fit's peak extra resident memory / the size of X
ALL_SOLVERS = (
    "jaxlogreg lbfgs",
    "jaxlogreg lbfgs, device data",
    "jaxlogreg gd",
    "jaxlogreg adam",
    "sklearn lbfgs",
    "sklearn newton-cholesky",
    "torch gd",
    "torch lbfgs",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="MxN",
        help=f"problem sizes (default {' '.join(DEFAULT_SIZES)})",
    )
    parser.add_argument("--l2", type=float, default=1e-4, help="λ (default 1e-4)")
    parser.add_argument(
        "--tol",
        type=float,
        default=1e-6,
        help="gradient tolerance given to every solver (default 1e-6)",
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="iteration cap for gd/adam (default 1000, 200 with --quick)",
    )
    parser.add_argument("--adam-lr", type=float, default=0.01)
    parser.add_argument(
        "--correlation",
        type=float,
        default=0.2,
        help="weight of a factor shared by all features, 0..1 (default 0.2)",
    )
    parser.add_argument(
        "--solvers",
        nargs="+",
        default=None,
        choices=ALL_SOLVERS,
        metavar="SOLVER",
        help=f"subset of: {', '.join(ALL_SOLVERS)}",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=60.0,
        help="seconds of steady-state repeats per solver, at least one call",
    )
    parser.add_argument(
        "--no-cache-check",
        action="store_true",
        help="skip the first-call checks: fresh processes timing a first "
        "LogisticRegression().fit (three rounds of: no cache, empty, warm), and the L-BFGS "
        "loop built three ways",
    )
    parser.add_argument(
        "--no-memory-check",
        action="store_true",
        help="skip the peak memory of a fit (a fresh process per library and size)",
    )
    parser.add_argument("--seed", type=int, default=0)


def make_problem(m: int, n: int, seed: int = 0, correlation: float = 0.2):
    """Standardised float32 features (a shared factor of weight ``correlation``) and 0/1 labels
    drawn from a logistic model with an intercept."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n), dtype=np.float32)
    if correlation > 0:
        factor = rng.standard_normal((m, 1), dtype=np.float32)
        X *= np.float32(np.sqrt(1 - correlation))
        X += np.float32(np.sqrt(correlation)) * factor
        del factor
    X -= X.mean(axis=0, dtype=np.float64).astype(np.float32)
    X /= X.std(axis=0, dtype=np.float64).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32) * np.float32(2 / np.sqrt(n))
    z = X @ w + np.float32(0.5)
    y = (rng.random(m, dtype=np.float32) < 1 / (1 + np.exp(-z))).astype(np.float32)
    return X, y


def objective64(X: np.ndarray, y: np.ndarray, w: Any, b: Any, l2: float) -> float:
    """J(w, b) in float64, in row blocks (X stays float32 in memory)."""
    w = np.asarray(w, np.float64).reshape(-1)
    b = float(np.asarray(b, np.float64).reshape(()))
    total = 0.0
    for lo in range(0, X.shape[0], 100_000):
        z = X[lo : lo + 100_000].astype(np.float64) @ w + b
        yy = y[lo : lo + 100_000].astype(np.float64)
        total += float(np.sum(np.logaddexp(0.0, z) - yy * z))
    return total / X.shape[0] + 0.5 * l2 * float(w @ w)


def lipschitz(X: np.ndarray, l2: float, iters: int = 30) -> float:
    """``L = max(λ_max(XᵀX/m), 1) / 4 + λ`` by power iteration (the 1 is the intercept's)."""
    import jax
    import jax.numpy as jnp

    Xd = jnp.asarray(X)

    @jax.jit
    def power(v):
        u = Xd.T @ (Xd @ v) / Xd.shape[0]
        return u / jnp.linalg.norm(u), jnp.linalg.norm(u)

    v, lam = jnp.ones(X.shape[1]) / np.sqrt(X.shape[1]), 0.0
    for _ in range(iters):
        v, lam = power(v)
    return max(float(lam), 1.0) / 4 + l2


# ----------------------------------------------------------------------------------------------
# Solvers: each returns a callable () -> (w, b, n_iter) on fixed data.


def c_of(l2: float, m: int) -> float:
    """``C = 1 / (λ m)``: the inverse penalty of jaxlogreg and scikit-learn that gives λ on m
    unweighted examples; ``inf`` (no penalty) for λ = 0."""
    return math.inf if l2 == 0 else 1.0 / (l2 * m)


def _jaxlogreg(X, y, solver: str, l2: float, tol: float, max_iter: int, lr: float | None):
    from jaxlogreg import TrainConfig, fit

    config = TrainConfig(
        solver=solver,
        C=c_of(l2, X.shape[0]),
        tol=tol,
        max_iter=max_iter,
        learning_rate=lr,
        tol_criterion="grad",
    )

    def call():
        r = fit(X, y, config=config)
        return np.asarray(r.params.w), float(r.params.b), r.n_iter

    return call


def _prepared_lbfgs(X, y, l2: float, tol: float, max_iter: int, dtype: str = "float32",
                    solver_params: dict | None = None):
    """The L-BFGS fit of X, y up to its loop, as ``fit`` prepares it
    (:func:`jaxlogreg.training.data.device_data`, small problems padded to power-of-two
    shapes): ``(config, data, hyper, spec, params)``, params the zero starting point. Call it
    under ``jax.enable_x64`` for float64."""
    from jaxlogreg.training import pipeline
    from jaxlogreg.training.data import device_data
    from jaxlogreg.training.problem import validate
    from jaxlogreg.training.settings import TrainConfig
    from jaxlogreg.training.spec import LoopSpec

    config = TrainConfig(solver="lbfgs", C=c_of(l2, X.shape[0]), tol=tol, max_iter=max_iter,
                         tol_criterion="grad", dtype=dtype, solver_params=solver_params)
    data = device_data(validate(X, y, n_classes=2, dtype=dtype))
    report.block(data.data)
    hyper = pipeline.hyper_of(config, config.l2(data.weight_sum), data.dtype)
    spec = LoopSpec.of(config, None, data.layout, pipeline.kernel_for(data), data.rows)
    params = data.place(pipeline.starting_params(None, data.n_features, 2, data.dtype, True))
    return config, data, hyper, spec, params


def _jaxlogreg_loop_only(X, y, l2: float, tol: float, max_iter: int):
    """Only the jitted loop, on data already validated, laid out and on the device
    (:func:`_prepared_lbfgs`); each call starts the loop from zero."""
    from jaxlogreg.training.loop import init_state

    config, data, hyper, spec, params = _prepared_lbfgs(X, y, l2, tol, max_iter)

    def call():
        state, _ = data.advance(init_state(params, hyper, spec, 0), hyper, spec, config.max_iter)
        state = report.block(state)
        w, b = data.unpad(state.params)
        return np.asarray(w), float(b), int(state.iteration)

    return call


def _sklearn(X, y, solver: str, l2: float, tol: float):
    from sklearn.linear_model import LogisticRegression

    m = X.shape[0]

    def call():
        clf = LogisticRegression(C=1.0 / (l2 * m), solver=solver, tol=tol, max_iter=1000)
        clf.fit(X, y)
        return clf.coef_[0], float(clf.intercept_[0]), int(np.max(clf.n_iter_))

    return call


def _torch_gd(X, y, l2: float, tol: float, max_iter: int, lr: float):
    import torch

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    m = X.shape[0]

    def call():
        w = torch.zeros(X.shape[1], dtype=torch.float32)
        b = torch.zeros((), dtype=torch.float32)
        it = 0
        for it in range(1, max_iter + 1):
            dz = (torch.sigmoid(torch.mv(Xt, w) + b) - yt) / m  # dz = (a - y) / m
            dw = torch.mv(Xt.T, dz) + l2 * w
            db = dz.sum()
            if max(float(dw.abs().max()), abs(float(db))) <= tol:
                it -= 1
                break
            w -= lr * dw
            b -= lr * db
        return w.numpy().copy(), float(b), it

    return call


def _torch_lbfgs(X, y, l2: float, tol: float):
    import torch

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def call():
        w = torch.zeros(X.shape[1], dtype=torch.float32, requires_grad=True)
        b = torch.zeros((), dtype=torch.float32, requires_grad=True)
        opt = torch.optim.LBFGS(
            [w, b],
            lr=1,
            max_iter=1000,
            max_eval=2000,
            tolerance_grad=tol,
            tolerance_change=1e-12,
            history_size=10,
            line_search_fn="strong_wolfe",
        )

        def closure():
            opt.zero_grad()
            z = torch.mv(Xt, w) + b
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yt)
            loss = loss + 0.5 * l2 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        n_iter = opt.state[opt._params[0]].get("n_iter", 0)
        return w.detach().numpy().copy(), float(b.detach()), int(n_iter)

    return call


def fit_breakdown(X, y, repeats: int) -> list[dict[str, Any]]:
    """Where ``fit(X, y)`` spends its time outside the loop: NumPy X (m, n) -> Xt (n, m) on device.

    ``prepare_data`` is what ``fit`` runs: on a CPU, for XLA's gradient, NumPy casts,
    transposes and checks X, a thread per core, into an aligned buffer the device uses in place
    (:mod:`jaxlogreg.training.host_layout`); for a kernel that reads rows it keeps X (m, n),
    copied once into an aligned buffer (NumPy's X is 16-byte aligned) and checked, or only
    checked when X is aligned already (row "prepare, rows"). The other rows are the
    alternatives it was chosen against: one compiled program doing the same on the NumPy array
    (what accelerators run),
    ``device_put`` alone (the copy that program starts with) and one ``jnp.sum`` over X on the
    device (one read of X: the floor).
    """
    import jax
    import jax.numpy as jnp

    from jaxlogreg.training.data import _prepare, prepare_data

    m, n = X.shape
    X_device = jax.device_put(X)
    t = report.time_interleaved(
        {
            "prepare": (lambda: prepare_data(X, y, 2, "float32").Xt, ()),
            "prepare, rows": (lambda: prepare_data(X, y, 2, "float32", rows=True).Xt, ()),
            "compiled": (lambda: _prepare(X, y, None, dtype=np.dtype(np.float32),
                                          transposed=False, shape=(n, m))[0].Xt, ()),
            "device_put": (lambda: jax.device_put(X), ()),
            "sum": (lambda: jnp.sum(X_device), ()),
        },
        repeats=repeats,
    )
    steps = {
        "prepare": "prepare_data for XLA's gradient (NumPy: cast, transpose, NaN/inf check)",
        "prepare, rows": "prepare_data for the C kernel on rows (NumPy: aligned copy, check)",
        "compiled": "the same in one compiled program on the NumPy array (device_put + XLA)",
        "device_put": "jax.device_put(X) alone (the copy the compiled route starts with)",
        "sum": "jnp.sum(X) on the device (one read of X, the floor)",
    }
    return [
        {"m": m, "n": n, "step": step, "median_s": t[key].median, "min_s": t[key].min}
        for key, step in steps.items()
    ]


# ----------------------------------------------------------------------------------------------


def _time_solver(name: str, call, budget: float, repeats: int, clear_jax: bool):
    import jax

    if clear_jax:
        jax.clear_caches()
    start = time.perf_counter()
    w, b, n_iter = call()
    first = time.perf_counter() - start
    n_rep = max(1, min(repeats, int(budget // max(first, 1e-9))))
    times = []
    for _ in range(n_rep):
        start = time.perf_counter()
        w, b, n_iter = call()
        times.append(time.perf_counter() - start)
    return first, report.Timing(tuple(times)), w, b, n_iter


def _gradient_used(m: int, n: int) -> str:
    """Which gradient jaxlogreg's fits use at this size (float32, binary, one device): the
    kernel table's choice."""
    import jax

    from jaxlogreg import kernels

    kernel = kernels.choose(kernels.Shape(n, m, 2, "float32", "float32", jax.default_backend()))
    names = {"native_rows": "C kernel on X's rows", "fused": "Pallas kernel"}
    return names.get(kernel.name, "XLA")


def _run_size(m: int, n: int, args: argparse.Namespace, solvers, max_iter: int, tables):
    X, y = make_problem(m, n, args.seed, args.correlation)
    if "jaxlogreg lbfgs" in solvers:
        report.log(f"  {m:,} x {n}: fit breakdown (data preparation)")
        tables.setdefault("fit(X, y) data preparation (NumPy X to Xt on the device)", []).extend(
            fit_breakdown(X, y, args.repeats)
        )
    L = lipschitz(X, args.l2)
    lr_gd = 1.0 / L
    calls = {
        "jaxlogreg lbfgs": lambda: _jaxlogreg(X, y, "lbfgs", args.l2, args.tol, 500, None),
        "jaxlogreg lbfgs, device data": lambda: _jaxlogreg_loop_only(X, y, args.l2, args.tol, 500),
        "jaxlogreg gd": lambda: _jaxlogreg(X, y, "gd", args.l2, args.tol, max_iter, lr_gd),
        "jaxlogreg adam": lambda: _jaxlogreg(
            X, y, "adam", args.l2, args.tol, max_iter, args.adam_lr
        ),
        "sklearn lbfgs": lambda: _sklearn(X, y, "lbfgs", args.l2, args.tol),
        "sklearn newton-cholesky": lambda: _sklearn(X, y, "newton-cholesky", args.l2, args.tol),
        "torch gd": lambda: _torch_gd(X, y, args.l2, args.tol, max_iter, lr_gd),
        "torch lbfgs": lambda: _torch_lbfgs(X, y, args.l2, args.tol),
    }
    gradient = _gradient_used(m, n)
    settings = {
        "jaxlogreg lbfgs": f"tol={args.tol} on max|grad|, max_iter=500, gradient: {gradient}",
        "jaxlogreg lbfgs, device data": "same fit; loop only (prepare_data done beforehand)",
        "jaxlogreg gd": f"lr=1/L={lr_gd:.4g}, max_iter={max_iter}, gradient: {gradient}",
        "jaxlogreg adam": f"lr={args.adam_lr}, max_iter={max_iter}, gradient: {gradient}",
        "sklearn lbfgs": f"C=1/(λm)={1 / (args.l2 * m):.4g}, tol={args.tol}",
        "sklearn newton-cholesky": f"C=1/(λm)={1 / (args.l2 * m):.4g}, tol={args.tol}",
        "torch gd": f"lr=1/L={lr_gd:.4g}, max_iter={max_iter}, 1 host sync per iteration",
        "torch lbfgs": f"strong_wolfe, history 10, tolerance_grad={args.tol}",
    }
    rows = []
    for name, make in calls.items():
        if name not in solvers:
            continue
        report.log(f"  {m:,} x {n}: {name}")
        first, steady, w, b, n_iter = _time_solver(
            name, make(), args.time_budget, args.repeats, clear_jax=name.startswith("jaxlogreg")
        )
        rows.append(
            {
                "m": m,
                "n": n,
                "solver": name,
                "first_s": first,
                "steady_s": steady.median,
                "steady_min_s": steady.min,
                "n_steady": len(steady.times),
                "n_iter": n_iter,
                "loss": objective64(X, y, w, b, args.l2),
                "settings": settings[name],
            }
        )
    best = min(r["loss"] for r in rows)
    for r in rows:
        r["rel_gap"] = (r["loss"] - best) / abs(best)
        r["reached"] = bool(r["rel_gap"] <= GAP)
    sk = next((r for r in rows if r["solver"] == "sklearn lbfgs"), None)
    for r in rows:
        r["steady / sklearn lbfgs"] = r["steady_s"] / sk["steady_s"] if sk else None
        r["first / sklearn lbfgs"] = r["first_s"] / sk["steady_s"] if sk else None
    return rows


CHILD_CODE = """
import json, sys, time
import numpy as np
m, n, cache_folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
from jaxlogreg import LogisticRegression, enable_compilation_cache
if cache_folder:
    enable_compilation_cache(cache_folder)
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
rng = np.random.default_rng(0)
X = rng.standard_normal((m, n))
y = (X @ rng.standard_normal(n) / np.sqrt(n) + rng.standard_normal(m) > 0).astype(int)
t0 = time.perf_counter(); LogisticRegression().fit(X, y); first = time.perf_counter() - t0
t0 = time.perf_counter(); LogisticRegression().fit(X, y); second = time.perf_counter() - t0
t0 = time.perf_counter(); SkLogisticRegression().fit(X, y); sk = time.perf_counter() - t0
print(json.dumps({"first_s": first, "second_s": second, "sklearn_s": sk}))
"""


def _child(m: int, n: int, cache_folder: str) -> dict[str, Any]:
    """A first fit in a new process, with the compilation cache in ``cache_folder`` (off: "")."""
    checkout = str(Path(__file__).resolve().parents[1])  # has benchmarks/ (and jaxlogreg/)
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([checkout, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-c", CHILD_CODE, str(m), str(n), cache_folder],
                         capture_output=True, text=True, env=env, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cache_check(m: int, n: int, rounds: int = 3) -> list[dict]:
    """``LogisticRegression().fit`` (float64, L-BFGS) first and second call in fresh processes,
    ``rounds`` times in turn: without the compilation cache, with an empty one, with the one it
    filled; and scikit-learn's first fit in the same process."""
    runs = (("no cache", False), ("empty cache (fills it)", True), ("warm cache", True))
    rows = []
    for round_ in range(1, rounds + 1):
        with tempfile.TemporaryDirectory(prefix="jaxlogreg-cache-") as tmp:
            for label, cached in runs:
                report.log(f"  first fit of a fresh process, {m:,} x {n}: {label}, round {round_}")
                r = _child(m, n, tmp if cached else "")
                rows.append({"process": label, "round": round_, "m": m, "n": n,
                             "first_fit_s": r["first_s"], "second_fit_s": r["second_s"],
                             "sklearn_first_fit_s": r["sklearn_s"]})
    return rows


LOOP_MAX_ITER = 100  # LogisticRegression's default: decides the quick compile with m
LOOP_BUILDS = {  # name: (solver_params, XLA options: None for those fit picks, or "full"/"none")
    "jaxlogreg (Wolfe line search, its XLA options)": ({}, None),
    "optax zoom line search, jaxlogreg's XLA options": ({"linesearch": "zoom"}, None),
    "Wolfe line search, its XLA options without the quick compile": ({}, "full"),
    "Wolfe line search, XLA's default options": ({}, "none"),
}


def _build_loop(m: int, n: int, args: argparse.Namespace, dtype: str, build: str):
    """The L-BFGS loop (``_run``) built as ``LOOP_BUILDS[build]`` says, compiled for the
    problem's prepared data: ``(call, compile_s, quick)``; ``call()`` runs it from a fresh
    state; ``quick``: whether it was compiled with :data:`jaxlogreg.runtime.compiler.QUICK_OPTIONS`."""
    import jax

    from jaxlogreg.runtime.compiler import XLA_OPTIONS
    from jaxlogreg.training import loop

    solver_params, options = LOOP_BUILDS[build]
    X, y = make_problem(m, n, args.seed, args.correlation)
    with jax.enable_x64(dtype == "float64"):
        config, data, hyper, spec, params = _prepared_lbfgs(X, y, args.l2, args.tol,
                                                            LOOP_MAX_ITER, dtype, solver_params)
        stop = np.int32(config.max_iter)
        state = loop.init_state(params, hyper, spec, 0)
        if options is None:  # as fit compiles it
            program = loop.run_segment
            quick = program.quick(state, data.data, hyper, stop, spec=spec)
        else:
            program = jax.jit(loop._run, static_argnames="spec",
                              compiler_options=XLA_OPTIONS if options == "full" else {})
            quick = False
        start = time.perf_counter()
        compiled = program.lower(state, data.data, hyper, stop, spec=spec).compile()
        compile_s = time.perf_counter() - start

    def call():
        with jax.enable_x64(dtype == "float64"):
            return compiled(loop.init_state(params, hyper, spec, 0), data.data, hyper, stop)

    return call, compile_s, quick


BUILD_CHILD_CODE = """
import argparse, json, sys
from benchmarks.time_to_solution import _build_loop
m, n, dtype, build, options = sys.argv[1:]
_, compile_s, _ = _build_loop(int(m), int(n), argparse.Namespace(**json.loads(options)), dtype,
                              build)
print(json.dumps({"compile_s": compile_s}))
"""


def _compile_in_fresh_process(m: int, n: int, args: argparse.Namespace, dtype: str,
                              build: str) -> float:
    """Seconds to trace, lower and compile the loop in a new process (nothing compiled before)."""
    checkout = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([checkout, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    options = json.dumps({"seed": args.seed, "correlation": args.correlation, "l2": args.l2,
                          "tol": args.tol})
    out = subprocess.run([sys.executable, "-c", BUILD_CHILD_CODE, str(m), str(n), dtype, build,
                          options], capture_output=True, text=True, env=env, check=True,
                         timeout=600)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["compile_s"])


def _loop_builds_check(m: int, n: int, args: argparse.Namespace, dtype: str,
                       rounds: int = 3) -> list[dict]:
    """The L-BFGS loop as jaxlogreg builds it (its strong-Wolfe line search, its XLA options
    :data:`jaxlogreg.runtime.compiler.XLA_OPTIONS`, with :data:`~jaxlogreg.runtime.compiler.QUICK_OPTIONS` for
    small work), with optax's zoom line search instead, without the quick compile, and with
    XLA's default options instead: compile time (median of ``rounds`` fresh processes per
    build, builds taken in turn: a process that has compiled one build compiles the next faster),
    iterations, and steady time on the same data in this process, called round-robin."""
    compile_s = {build: [] for build in LOOP_BUILDS}
    for _ in range(rounds):
        for build in LOOP_BUILDS:
            compile_s[build].append(_compile_in_fresh_process(m, n, args, dtype, build))
    built = {build: _build_loop(m, n, args, dtype, build) for build in LOOP_BUILDS}
    candidates = {build: (call, ()) for build, (call, _, _) in built.items()}
    timings = report.time_interleaved(candidates, repeats=args.repeats)
    rows = []
    for build, (call, _) in candidates.items():
        rows.append({"m": m, "n": n, "dtype": dtype, "build": build, "quick": built[build][2],
                     "compile_s": float(np.median(compile_s[build])),
                     "n_iter": int(report.block(call())[0].iteration),
                     "steady_s": timings[build].median})
    ours = rows[0]
    for row in rows:
        row["compile / jaxlogreg's"] = row["compile_s"] / ours["compile_s"]
        row["steady / jaxlogreg's"] = row["steady_s"] / ours["steady_s"]
    return rows


def _memory_check(sizes, args: argparse.Namespace, solvers) -> tuple[list[dict], list[str]]:
    """Peak extra memory of a fit for each library among ``solvers`` and each size, a fresh
    process each (:mod:`benchmarks.peak_memory`); and notes on what was left out."""
    if not peak_memory.supported():
        return [], ["peak memory not measured: it needs Linux's /proc/self/clear_refs"]
    notes = [] if "torch lbfgs" in solvers else [
        "peak memory: no PyTorch row (PyTorch is not installed, or torch lbfgs not chosen)"]
    options = {"seed": args.seed, "correlation": args.correlation, "l2": args.l2,
               "tol": args.tol}
    rows = []
    for m, n in sizes:
        for library, (solver, _) in peak_memory.LIBRARIES.items():
            if solver in solvers:
                report.log(f"  {m:,} x {n}: peak memory of {library} (fresh process)")
                rows.append(peak_memory.measure(library, m, n, options))
    return rows, notes


def available_solvers() -> tuple[str, ...]:
    """:data:`ALL_SOLVERS`, less the PyTorch ones when PyTorch is not installed."""
    if importlib.util.find_spec("torch") is not None:
        return ALL_SOLVERS
    return tuple(name for name in ALL_SOLVERS if not name.startswith("torch"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    if not 0 <= args.correlation < 1:
        raise ValueError(f"--correlation must be in [0, 1), got {args.correlation}")
    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))]
    solvers = set(args.solvers or available_solvers())
    missing_torch = {name for name in solvers if name.startswith("torch")} - set(available_solvers())
    if missing_torch:
        raise ValueError(
            f"--solvers {sorted(missing_torch)} need PyTorch, which is not installed "
            "(pip install 'jaxlogreg[bench]')"
        )
    max_iter = args.max_iter or (200 if args.quick else 1000)
    rows, tables = [], {}
    for m, n in sizes:
        rows += _run_size(m, n, args, solvers, max_iter, tables)

    targets = []
    largest = max(sizes, key=lambda s: s[0] * s[1])
    for m, n in sizes:
        by = {r["solver"]: r for r in rows if (r["m"], r["n"]) == (m, n)}
        if "jaxlogreg lbfgs" in by and "sklearn lbfgs" in by:
            j, s = by["jaxlogreg lbfgs"], by["sklearn lbfgs"]
            where = f"{m:,} x {n}"
            targets.append(
                report.target(
                    f"jaxlogreg lbfgs steady state, {where}",
                    j["steady_s"] / s["steady_s"],
                    STEADY_TARGET,
                    "time / sklearn lbfgs time",
                )
            )
            if "torch lbfgs" in by:
                targets.append(
                    report.target(
                        f"jaxlogreg lbfgs steady state vs PyTorch, {where}",
                        j["steady_s"] / by["torch lbfgs"]["steady_s"],
                        TORCH_TARGET,
                        "time / torch LBFGS time",
                    )
                )
            if "jaxlogreg lbfgs, device data" in by:
                d = by["jaxlogreg lbfgs, device data"]
                targets.append(
                    report.target(
                        f"jaxlogreg lbfgs loop only, {where}",
                        d["steady_s"] / s["steady_s"],
                        STEADY_TARGET,
                        "time / sklearn lbfgs time (not the API)",
                    )
                )
            targets.append(
                report.target(
                    f"jaxlogreg lbfgs loss gap, {where}", j["rel_gap"], GAP, "relative loss gap"
                )
            )

    memory_notes = []
    if not args.no_memory_check:
        memory, memory_notes = _memory_check(sizes, args, solvers)
        tables["Peak memory of a fit (MB above the process's resident memory before it)"] = memory
        for r in memory:
            if r["solver"].startswith("jaxlogreg"):
                targets.append(report.target(
                    f"{r['solver']} peak extra memory, {r['m']:,} x {r['n']}",
                    r["steady_extra / X"], MEMORY_TARGET,
                    "a second fit's peak resident memory above the process's before it / X"))

    if not args.no_cache_check:
        options = []
        for (m, n), dtype in [(FIRST_FIT_SIZE, "float64"), (FIRST_FIT_SIZE, "float32"),
                              *((size, "float32") for size in sizes)]:
            report.log(f"  {m:,} x {n} {dtype}: the L-BFGS loop, {len(LOOP_BUILDS)} builds")
            options += _loop_builds_check(m, n, args, dtype)
        tables["The L-BFGS loop: line search and compiler options (same data, round-robin)"] = options
        first = _cache_check(*FIRST_FIT_SIZE)
        tables["First LogisticRegression().fit of a fresh process"] = first
        for process, bound in (("empty cache (fills it)", FIRST_FIT_EMPTY),
                               ("warm cache", FIRST_FIT_WARM)):
            times = [r["first_fit_s"] for r in first if r["process"] == process]
            targets.append(report.target(f"first fit, {process}", float(np.median(times)),
                                         bound, f"seconds, median of {len(times)} processes"))
    return {
        "config": {
            "sizes": [f"{m}x{n}" for m, n in sizes],
            "l2": args.l2,
            "tol": args.tol,
            "gd_adam_max_iter": max_iter,
            "adam_lr": args.adam_lr,
            "correlation": args.correlation,
            "repeats": args.repeats,
            "time_budget_s": args.time_budget,
            "dtype": "float32",
            "quick": args.quick,
            "largest": f"{largest[0]}x{largest[1]}",
            "platform": jax.devices()[0].platform,
        },
        "rows": rows,
        "columns": [
            "m",
            "n",
            "solver",
            "first_s",
            "steady_s",
            "n_iter",
            "loss",
            "rel_gap",
            "reached",
            "steady / sklearn lbfgs",
            "first / sklearn lbfgs",
            "settings",
        ],
        "targets": targets,
        "tables": tables,
        "notes": [
            (
                "rel_gap is against the lowest float64-evaluated J of all solvers at that size; "
                f"'reached' means rel_gap <= {GAP:g}."
            ),
            (
                "first_s of a jaxlogreg solver is measured after jax.clear_caches(): it includes "
                "tracing and compiling everything fit runs (eager checks included). Ratios in the "
                "targets are against sklearn lbfgs's steady (median) time."
            ),
            (
                "jaxlogreg fit(X, y) includes validating X (finite check) and laying it out for "
                "its kernel: one aligned copy of X (m, n) for the C kernel on rows (none for a "
                "64-byte aligned X of the dtype), a transposed copy (n, m) for XLA's gradient; "
                "the 'device data' row leaves that out."
            ),
            (
                "GD and adam stop at max|grad| <= tol or after the iteration cap; they may not "
                "reach the 1e-6 gap, which the table reports as is."
            ),
            (
                "Peak memory: VmHWM after a fit minus VmRSS before it (reset through "
                "/proc/self/clear_refs), a fresh process per library and size; runtime_* is a "
                f"first fit of {peak_memory.TINY_ROWS:,} rows (the runtime's own share: JAX's "
                "client and first compiled programs), first_extra the first fit at full size "
                "(compiling for it), steady_extra a second one."
            ),
            *memory_notes,
        ],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["time_to_solution", *sys.argv[1:]]))
