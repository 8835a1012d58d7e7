"""Scaling with the number of examples m and of features n, on log-log plots.

For each size: the time of one GD training step of the library (hand-written gradient on Xt
(n, m), optax update; steady state, median) next to one PyTorch GD step on X (m, n), and the
time to solution (steady state) of jaxlogreg ``fit(solver="lbfgs")`` and scikit-learn's
lbfgs on the same standardised data and penalty (as in ``time_to_solution``). The plots
``scaling_m.png`` and ``scaling_n.png`` are written next to the JSON; a dotted line of slope 1
shows linear scaling (one pass over X costs O(m n)).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_MS = (10_000, 30_000, 100_000, 300_000, 1_000_000)
DEFAULT_NS = (10, 30, 100, 300, 1000)
QUICK_MS = (500, 1000, 2000, 4000)
QUICK_NS = (5, 10, 20, 40)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ms",
        nargs="+",
        type=int,
        default=None,
        help=f"values of m at fixed n (default {DEFAULT_MS})",
    )
    parser.add_argument(
        "--ns",
        nargs="+",
        type=int,
        default=None,
        help=f"values of n at fixed m (default {DEFAULT_NS})",
    )
    parser.add_argument("--fixed-n", type=int, default=None, help="n for the m sweep (100)")
    parser.add_argument("--fixed-m", type=int, default=None, help="m for the n sweep (100,000)")
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--correlation", type=float, default=0.2)
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--seed", type=int, default=0)


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        report.block(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _torch_step_seconds(X: np.ndarray, y: np.ndarray, repeats: int) -> float | None:
    """Median time of one PyTorch GD step on X (m, n); None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    Xtorch, ytorch = torch.from_numpy(X), torch.from_numpy(y)
    w_t, b_t = torch.zeros(X.shape[1]), torch.zeros(())
    m = X.shape[0]

    def torch_step():
        dz = (torch.sigmoid(torch.mv(Xtorch, w_t) + b_t) - ytorch) / m
        return w_t - 0.1 * torch.mv(Xtorch.T, dz), b_t - 0.1 * dz.sum()

    torch_step()
    return _median_seconds(torch_step, repeats)


def _measure(m: int, n: int, sweep: str, args: argparse.Namespace) -> dict[str, Any]:
    import jax.numpy as jnp
    from sklearn.linear_model import LogisticRegression

    from benchmarks.roofline import library_nm, make_step
    from benchmarks.time_to_solution import c_of, make_problem, objective64
    from jaxlogreg import fit
    from jaxlogreg.core.model import Params

    X, y = make_problem(m, n, args.seed, args.correlation)
    Xt = jnp.asarray(np.ascontiguousarray(X.T))
    yd = jnp.asarray(y)
    params = Params(jnp.zeros(n, jnp.float32), jnp.zeros((), jnp.float32))
    step = make_step(library_nm)
    step_t = report.time_interleaved({"s": (step, (params, Xt, yd))}, repeats=args.repeats)["s"]

    torch_t = _torch_step_seconds(X, y, args.repeats)

    def jax_fit():
        return fit(
            X, y, solver="lbfgs", C=c_of(args.l2, m), tol=args.tol, tol_criterion="grad",
            max_iter=500,
        )

    def sk_fit():
        return LogisticRegression(C=1 / (args.l2 * m), tol=args.tol, max_iter=1000).fit(X, y)

    r = jax_fit()  # compile
    tts_repeats = max(1, min(args.repeats, 3))
    jax_tts = _median_seconds(jax_fit, tts_repeats)
    clf = sk_fit()
    sk_tts = _median_seconds(sk_fit, tts_repeats)
    J_jax = objective64(X, y, r.params.w, r.params.b, args.l2)
    J_sk = objective64(X, y, clf.coef_[0], clf.intercept_[0], args.l2)
    best = min(J_jax, J_sk)
    return {
        "sweep": sweep,
        "m": m,
        "n": n,
        "MB(X)": X.nbytes / 1e6,
        "step_ms": step_t.median * 1e3,
        "torch_step_ms": None if torch_t is None else torch_t * 1e3,
        "step GB/s": X.nbytes / step_t.median / 1e9,
        "jaxlogreg_lbfgs_s": jax_tts,
        "sklearn_lbfgs_s": sk_tts,
        "jax / sklearn": jax_tts / sk_tts,
        "jax_iter": r.n_iter,
        "sklearn_iter": int(clf.n_iter_[0]),
        "jax_rel_gap": (J_jax - best) / best,
        "sklearn_rel_gap": (J_sk - best) / best,
    }


def _slope(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if len(xs) > 1 else float("nan")


def _plot(rows: list[dict], sweep: str, path: Path, fixed: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["sweep"] == sweep]
    x = np.array([r[sweep] for r in rows], float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (
        (
            "time per GD step",
            "seconds",
            (
                ("step_ms", 1e-3, "jaxlogreg step (n,m)", "o-"),
                ("torch_step_ms", 1e-3, "PyTorch step (m,n)", "s--"),
            ),
        ),
        (
            "time to solution (lbfgs, steady state)",
            "seconds",
            (
                ("jaxlogreg_lbfgs_s", 1.0, "jaxlogreg fit lbfgs", "o-"),
                ("sklearn_lbfgs_s", 1.0, "scikit-learn lbfgs", "s--"),
            ),
        ),
    )
    for ax, (title, ylabel, series) in zip(axes, panels):
        for key, scale, label, style in series:
            if any(r[key] is None for r in rows):  # PyTorch not installed
                continue
            yv = np.array([r[key] for r in rows]) * scale
            ax.plot(x, yv, style, label=f"{label} (slope {_slope(x, yv):.2f})")
        y0 = np.array([r[series[0][0]] for r in rows]) * series[0][1]
        ax.plot(x, y0[-1] * x / x[-1], ":", color="gray", label="slope 1 (linear)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{sweep} ({fixed})")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    ms = args.ms or (QUICK_MS if args.quick else DEFAULT_MS)
    ns = args.ns or (QUICK_NS if args.quick else DEFAULT_NS)
    fixed_n = args.fixed_n or (10 if args.quick else 100)
    fixed_m = args.fixed_m or (1000 if args.quick else 100_000)
    rows = []
    for m in ms:
        report.log(f"  m sweep: {m:,} x {fixed_n}")
        rows.append(_measure(m, fixed_n, "m", args))
    for n in ns:
        report.log(f"  n sweep: {fixed_m:,} x {n}")
        rows.append(_measure(fixed_m, n, "n", args))
    plots = []
    if not args.no_plots:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for sweep, fixed in (("m", f"n = {fixed_n}"), ("n", f"m = {fixed_m:,}")):
            path = out / f"scaling_{sweep}.png"
            _plot(rows, sweep, path, fixed)
            plots.append(str(path))
    slopes = {}
    for sweep in ("m", "n"):
        sub = [r for r in rows if r["sweep"] == sweep]
        x = [r[sweep] for r in sub]
        for key in ("step_ms", "torch_step_ms", "jaxlogreg_lbfgs_s", "sklearn_lbfgs_s"):
            if all(r[key] is not None for r in sub):
                slopes[f"{key} vs {sweep}"] = _slope(x, [r[key] for r in sub])
    return {
        "config": {
            "ms": list(ms),
            "fixed_n": fixed_n,
            "ns": list(ns),
            "fixed_m": fixed_m,
            "l2": args.l2,
            "tol": args.tol,
            "correlation": args.correlation,
            "repeats": args.repeats,
            "dtype": "float32",
            "quick": args.quick,
        },
        "rows": rows,
        "columns": [
            "sweep",
            "m",
            "n",
            "MB(X)",
            "step_ms",
            "torch_step_ms",
            "step GB/s",
            "jaxlogreg_lbfgs_s",
            "sklearn_lbfgs_s",
            "jax / sklearn",
            "jax_iter",
            "sklearn_iter",
            "jax_rel_gap",
            "sklearn_rel_gap",
        ],
        "slopes": slopes,
        "tables": {
            "log-log slopes (1 = linear)": [{"series": k, "slope": v} for k, v in slopes.items()]
        },
        "plots": plots,
        "notes": [
            (
                "Steady-state times (compiled on a first call). Time to solution is the median "
                "of up to 3 fits through the public fit(X, y) on NumPy input."
            ),
            "rel_gap: relative difference of the float64 objective to the better of the two.",
        ],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["scaling", *sys.argv[1:]]))
