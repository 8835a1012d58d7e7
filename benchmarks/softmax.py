"""Softmax regression (K classes): time to the same solution, jaxlogreg against scikit-learn and
PyTorch on the same data, and the peak memory of a fit.

Every solver minimises the same objective on the same float32 data from
:func:`jaxlogreg.data.make_classification` (X 64-byte aligned, y class indices 0..K-1),
``J(W, b) = mean_i (logsumexp(z_i) - z_i[y_i]) + λ/2 ||W||²`` with ``z_i = x_i W + b``,
W (n, K), the intercept b (K,) unpenalised, starting from zero, each stopping at
``max|∇J| <= tol``: jaxlogreg ``fit`` with lbfgs, scikit-learn ``LogisticRegression``
(lbfgs, multinomial for K > 2) with ``C = 1 / (λ m)``, and ``torch.optim.LBFGS`` (strong-Wolfe
line search; skipped when PyTorch is not installed); scikit-learn and PyTorch also with one
BLAS / one PyTorch thread, and the steady-time target takes the faster scikit-learn. Each
final (W, b) is re-scored with one float64 evaluation of J in NumPy; ``J above best`` is
``(J - J_best) / J_best`` against the best J of any solver. ``first_s`` is the first call in
this process (jaxlogreg after ``jax.clear_caches()``: tracing and compiling included);
``steady_s`` the median of ``--repeats`` later calls, the solvers called round-robin. The table
"Peak memory of a fit" measures each library in a fresh process, the runtime's own share apart
(:mod:`benchmarks.peak_memory`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import peak_memory, report
from benchmarks.roofline import parse_size
from benchmarks.time_to_solution import GAP, MEMORY_TARGET, STEADY_TARGET, c_of

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_SIZES, QUICK_SIZES = ("100000x100",), ("2000x10",)
DEFAULT_CLASSES = 10
MAX_ITER = 1000
ALL_SOLVERS = ("jaxlogreg lbfgs", "sklearn lbfgs", "sklearn lbfgs, 1 BLAS thread", "torch lbfgs",
               "torch lbfgs, 1 thread")
ONE_THREAD = {  # a solver on one thread: the solver it limits
    "sklearn lbfgs, 1 BLAS thread": "sklearn lbfgs",
    "torch lbfgs, 1 thread": "torch lbfgs",
}
MEMORY_TABLE = "Peak memory of a fit (MB above the process's resident memory before it)"
NOTES = (
    (f"J above best: (J - J_best) / J_best, J_best the lowest float64 J of all solvers at "
     f"that size; 'reached' means it is <= {GAP:g}."),
    ("Steady times: the solvers called round-robin, one call each per round; ratios are "
     "against sklearn lbfgs's median in the same run."),
    ("'1 BLAS thread' / '1 thread': the same fit with scikit-learn's BLAS (threadpoolctl) or "
     "PyTorch on one thread; on a shared 2-core machine the default threads can contend "
     "(scikit-learn's OpenMP loss and OpenBLAS). The steady-time target divides by the faster "
     "scikit-learn row."),
    ("The kernel is jaxlogreg.kernels.choose's for the fit's shape: native_rows is the "
     "single-read C kernel on X's rows, xla XLA's two products."),
    ("Peak memory: VmHWM after a fit minus VmRSS before it, a fresh process per library "
     f"and size; runtime_* is a first fit of {peak_memory.TINY_ROWS:,} rows (the "
     "runtime's own share), first_extra the first fit at full size, steady_extra a "
     "second one (the target)."),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", default=None, metavar="MxN",
                        help=f"problem sizes (default {' '.join(DEFAULT_SIZES)})")
    parser.add_argument("--classes", type=int, default=DEFAULT_CLASSES,
                        help=f"K, at least 3 (default {DEFAULT_CLASSES})")
    parser.add_argument("--l2", type=float, default=1e-4, help="λ (default 1e-4)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="gradient tolerance (max|∇J|) given to every solver (default 1e-6)")
    parser.add_argument("--solvers", nargs="+", default=None, choices=ALL_SOLVERS,
                        metavar="SOLVER", help=f"subset of: {', '.join(ALL_SOLVERS)}")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="skip the peak memory of a fit (a fresh process per library)")
    parser.add_argument("--seed", type=int, default=0)


def make_problem(m: int, n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (m, n) float32, 64-byte aligned, and y (m,) int32 in [0, K) from a softmax model."""
    from jaxlogreg.data import make_classification

    data = make_classification(n_samples=m, n_features=n, n_classes=classes, seed=seed)
    return data.X, data.y


def objective64(X: np.ndarray, y: np.ndarray, W: Any, b: Any, l2: float) -> float:
    """J(W, b) in float64 NumPy, in row blocks (X stays float32 in memory)."""
    W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
    total = 0.0
    for lo in range(0, X.shape[0], 100_000):
        z = X[lo : lo + 100_000].astype(np.float64) @ W + b
        top = z.max(axis=1)
        lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        total += float(np.sum(lse - z[np.arange(z.shape[0]), y[lo : lo + 100_000]]))
    return total / X.shape[0] + 0.5 * l2 * float(np.sum(W * W))


# ----------------------------------------------------------------------------------------------
# Solvers: solver(...) returns a callable () -> (W, b, n_iter) on fixed data.


def _jaxlogreg(X, y, classes: int, l2: float, tol: float):
    from jaxlogreg import TrainConfig, fit

    config = TrainConfig(solver="lbfgs", C=c_of(l2, X.shape[0]), tol=tol, max_iter=MAX_ITER,
                         tol_criterion="grad")

    def call():
        r = fit(X, y, config=config, n_classes=classes)
        return np.asarray(r.params.w), np.asarray(r.params.b), r.n_iter

    return call


def _sklearn(X, y, l2: float, tol: float):
    from sklearn.linear_model import LogisticRegression

    def call():  # lbfgs fits the multinomial model for K > 2 (scikit-learn >= 1.5's default)
        clf = LogisticRegression(C=c_of(l2, X.shape[0]), solver="lbfgs", tol=tol,
                                 max_iter=MAX_ITER)
        clf.fit(X, y)
        return clf.coef_.T, clf.intercept_, int(np.max(clf.n_iter_))

    return call


def _torch_lbfgs(X, y, classes: int, l2: float, tol: float):
    import torch

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def call():
        W = torch.zeros((X.shape[1], classes), dtype=torch.float32, requires_grad=True)
        b = torch.zeros(classes, dtype=torch.float32, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], lr=1, max_iter=MAX_ITER, max_eval=2 * MAX_ITER,
                                tolerance_grad=tol, tolerance_change=1e-12, history_size=10,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(Xt @ W + b, yt) + 0.5 * l2 * (W * W).sum()
            loss.backward()
            return loss

        opt.step(closure)
        n_iter = opt.state[opt._params[0]].get("n_iter", 0)
        return W.detach().numpy().copy(), b.detach().numpy().copy(), int(n_iter)

    return call


def _one_thread(name: str, call):
    """``call`` with scikit-learn's BLAS (threadpoolctl), or PyTorch, limited to one thread."""
    if name.startswith("sklearn"):
        from threadpoolctl import threadpool_limits

        def limited():
            with threadpool_limits(1, user_api="blas"):
                return call()

        return limited
    import torch

    def limited():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return call()
        finally:
            torch.set_num_threads(threads)

    return limited


def solver(name: str, X: np.ndarray, y: np.ndarray, classes: int, l2: float, tol: float):
    """The fit ``name`` (one of :data:`ALL_SOLVERS`) of X, y as ``() -> (W, b, n_iter)``."""
    if name in ONE_THREAD:
        return _one_thread(name, solver(ONE_THREAD[name], X, y, classes, l2, tol))
    if name == "jaxlogreg lbfgs":
        return _jaxlogreg(X, y, classes, l2, tol)
    if name == "sklearn lbfgs":
        return _sklearn(X, y, l2, tol)
    if name == "torch lbfgs":
        return _torch_lbfgs(X, y, classes, l2, tol)
    raise ValueError(f"solver must be one of {list(ALL_SOLVERS)}, got {name!r}")


def kernel_used(m: int, n: int, classes: int) -> str:
    """The gradient kernel jaxlogreg's fit uses at this size (float32, one device)."""
    import jax

    from jaxlogreg import kernels

    shape = kernels.Shape(n, m, classes, "float32", "float32", jax.default_backend())
    return kernels.choose(shape).name


# ----------------------------------------------------------------------------------------------


def _time_size(m: int, n: int, args: argparse.Namespace, solvers: list[str]) -> list[dict]:
    """First call of each solver, then their steady times round-robin; one row each."""
    import jax

    X, y = make_problem(m, n, args.classes, args.seed)
    calls = {name: solver(name, X, y, args.classes, args.l2, args.tol) for name in solvers}
    first = {}
    for name, call in calls.items():
        report.log(f"  {m:,} x {n}, K={args.classes}: {name}, first call")
        if name.startswith("jaxlogreg"):
            jax.clear_caches()
        first[name] = report.call_seconds(call)
    report.log(f"  {m:,} x {n}, K={args.classes}: steady state, {args.repeats} rounds")
    steady = report.time_interleaved({name: (call, ()) for name, call in calls.items()},
                                     repeats=args.repeats, warmup=0)
    settings = {
        "jaxlogreg lbfgs": f"kernel {kernel_used(m, n, args.classes)}",
        "sklearn lbfgs": f"C=1/(λm)={c_of(args.l2, m):.4g}",
        "torch lbfgs": "strong_wolfe, history 10",
        "sklearn lbfgs, 1 BLAS thread": "the same, threadpoolctl: BLAS on 1 thread",
        "torch lbfgs, 1 thread": "the same, torch.set_num_threads(1)",
    }
    rows = []
    for name in solvers:
        first_s, (W, b, n_iter) = first[name]
        rows.append({"m": m, "n": n, "K": args.classes, "solver": name, "first_s": first_s,
                     "steady_s": steady[name].median, "steady_min_s": steady[name].min,
                     "n_iter": n_iter, "J": objective64(X, y, W, b, args.l2),
                     "settings": settings[name]})
    best = min(r["J"] for r in rows)
    sk = next((r for r in rows if r["solver"] == "sklearn lbfgs"), None)
    fastest_sk = min((r["steady_s"] for r in rows if r["solver"].startswith("sklearn")),
                     default=None)
    for r in rows:
        r["J above best"] = (r["J"] - best) / abs(best)
        r["reached"] = r["J above best"] <= GAP
        r["steady / sklearn lbfgs"] = r["steady_s"] / sk["steady_s"] if sk else None
        r["steady / fastest sklearn"] = r["steady_s"] / fastest_sk if fastest_sk else None
    return rows


def _memory(sizes, args: argparse.Namespace, solvers: list[str]) -> tuple[list[dict], list[str]]:
    """Peak extra memory of a fit per library and size, each in a fresh process."""
    if not peak_memory.supported():
        return [], ["peak memory not measured: it needs Linux's /proc/self/clear_refs"]
    options = {"seed": args.seed, "l2": args.l2, "tol": args.tol, "classes": args.classes}
    rows = []
    for m, n in sizes:
        for name in (s for s in solvers if s in peak_memory.LIBRARIES):
            report.log(f"  {m:,} x {n}: peak memory of {name} (fresh process)")
            rows.append(peak_memory.measure(name, m, n, options))
    return rows, []


def _targets(rows: list[dict], memory: list[dict]) -> list[dict]:
    targets = []
    for j in (r for r in rows if r["solver"] == "jaxlogreg lbfgs"):
        where = f"{j['m']:,} x {j['n']}, K={j['K']}"
        if j["steady / fastest sklearn"] is not None:
            targets.append(report.target(f"softmax steady time vs scikit-learn lbfgs, {where}",
                                         j["steady / fastest sklearn"], STEADY_TARGET,
                                         "time / the faster scikit-learn lbfgs time"))
        targets.append(report.target(f"same objective, {where}", j["J above best"], GAP,
                                     "J above best, relative"))
    for r in memory:
        if r["solver"] == "jaxlogreg lbfgs":
            aligned = "aligned X" if r["X 64-byte aligned"] else "X not 64-byte aligned"
            targets.append(report.target(
                f"peak extra memory, {r['m']:,} x {r['n']}, K={r['classes']}, {aligned}",
                r["steady_extra / X"], MEMORY_TARGET,
                "a second fit's peak resident memory above the process's before it / X"))
    return targets


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    if args.classes < 3:
        raise ValueError(f"--classes must be an integer >= 3 (softmax), got {args.classes}")
    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))]
    have_torch = importlib.util.find_spec("torch") is not None
    solvers = [s for s in ALL_SOLVERS if s in (args.solvers or ALL_SOLVERS)]
    notes = []
    if not have_torch and any(s.startswith("torch") for s in solvers):
        solvers = [s for s in solvers if not s.startswith("torch")]
        notes.append("PyTorch is not installed: no torch lbfgs rows "
                     "(pip install 'jaxlogreg[bench]')")
    rows = [row for m, n in sizes for row in _time_size(m, n, args, solvers)]
    memory, memory_notes = ([], []) if args.no_memory_check else _memory(sizes, args, solvers)
    return {
        "config": {"sizes": [f"{m}x{n}" for m, n in sizes], "classes": args.classes,
                   "l2": args.l2, "tol": args.tol, "max_iter": MAX_ITER, "repeats": args.repeats,
                   "dtype": "float32", "quick": args.quick, "seed": args.seed,
                   "platform": jax.devices()[0].platform},
        "rows": rows,
        "columns": ["m", "n", "K", "solver", "first_s", "steady_s", "n_iter", "J",
                    "J above best", "reached", "steady / sklearn lbfgs", "steady / fastest sklearn",
                    "settings"],
        "targets": _targets(rows, memory),
        "tables": {MEMORY_TABLE: memory} if memory else {},
        "notes": [*NOTES, *notes, *memory_notes],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["softmax", *sys.argv[1:]]))
