"""L1 regularization paths with cross-validation on sparse data: jaxlogreg, skglm, scikit-learn.

The data are :func:`benchmarks.sparse.make_problem`'s hashed float32 CSR matrix. Every library
fits the same 5 folds (``StratifiedKFold``) × 20 values of the L1 strength, from ``λ_max`` (all
weights zero) down to ``λ_max / 100``, log-spaced; C = 1 / (λ m) with m the rows of the data
(scikit-learn's ``C Σ_i L_i + ||w||₁``), scores each fold's held-out rows by log-loss and
chooses the C of the best mean score:

- jaxlogreg: ``LogisticRegressionCV(Cs, cv, penalty="l1", scoring="neg_log_loss", tol=--tol)``
  (:mod:`jaxlogreg.training.path_l1`: each fold's path from the strongest penalty down, warm
  started, the working-set solver to the relative duality gap ``tol``), one fold at a time (the
  targets' time) and with ``n_jobs=-1`` (folds in threads, one per core: a row of its own);
- skglm: per fold, ``SparseLogisticRegression(alpha=1 / (C m_f), warm_start=True)`` refitted
  C by C from the strongest penalty down, once per tol on its KKT violation in ``--skglm-tol``,
  the same scoring;
- scikit-learn: ``LogisticRegressionCV(Cs, cv, l1_ratios=(1.0,), solver="saga")`` (its tol on
  the change of the weights, ``--saga-tol``; ``--saga-max-iter`` epochs, its default 100), at
  sizes of at most ``--saga-max-rows`` rows.

Every model of every run is re-scored in float64 on its fold's training rows, ``J = mean_i L_i
+ λ ||w||₁``; ``worst_excess`` is a run's largest ``(J - J_best) / J_best`` over the folds and
Cs, J_best the lowest J of any run at that fold and C (an untimed jaxlogreg run at tol
``REFERENCE_TOL`` among them). A run is at equal objective when ``worst_excess <= EQUAL``
(1e-6, the single fits' standard, :mod:`benchmarks.sparse`).

Times are the median of ``--repeats`` calls (default 5, 2 with ``--quick``; saga's one call:
minutes), the runs called round-robin so that load from elsewhere hits them alike, after a tiny
warm-up call of each library (numba's and XLA's compilations of those shapes excluded:
jaxlogreg's shapes change with the data's, its first timed call includes its compilations for
them, which the median leaves out as the warm-up does numba's). Targets: jaxlogreg at most 0.2x
the time of skglm's fastest run at equal objective (its most accurate when none is, said in the
target's name) and 0.05x scikit-learn's, choosing the same C.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report
from benchmarks.sparse import check_native, csr_bytes, make_problem, parse_size

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_SIZES = ("5000x8192x20", "20000x32768x40")
QUICK_SIZES = ("2000x2000x10",)
SKGLM_TARGET, SAGA_TARGET = 0.2, 0.05
EQUAL = 1e-6  # a run's largest relative excess of J over the best, at equal objective
REFERENCE_TOL = 1e-10  # the untimed jaxlogreg run among the best Js


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", metavar="MxNxNNZ",
                        help=f"problem sizes (default {' '.join(DEFAULT_SIZES)})")
    parser.add_argument("--Cs", type=int, default=20, help="values of C on the path (default 20)")
    parser.add_argument("--folds", type=int, default=5, help="folds (default 5)")
    parser.add_argument("--ratio", type=float, default=100.0,
                        help="λ_max / the smallest λ on the path (default 100)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="jaxlogreg's relative duality gap (default 1e-6)")
    parser.add_argument("--skglm-tol", type=float, nargs="+", default=[1e-6, 1e-7, 1e-8],
                        help="skglm's tols on its KKT violation, one run each (default 1e-6 "
                             "1e-7 1e-8: at 1e-6 its path stopped up to 1.5e-4 above the best "
                             "J at 5,000 x 8,192)")
    parser.add_argument("--saga-tol", type=float, default=1e-4,
                        help="scikit-learn saga's tol (default 1e-4)")
    parser.add_argument("--saga-max-iter", type=int, default=100,
                        help="scikit-learn saga's max_iter (default 100, its own default)")
    parser.add_argument("--saga-max-rows", type=int, default=5000,
                        help="saga runs only at sizes of at most this many rows (default 5000: "
                             "its CV of the larger default size ran beyond 15 minutes)")
    parser.add_argument("--skip", nargs="+", default=[],
                        choices=("jaxlogreg-threads", "skglm", "saga"),
                        help="libraries to leave out")
    parser.add_argument("--seed", type=int, default=0)


def l1_grid(X: Any, y: np.ndarray, n_values: int, ratio: float) -> np.ndarray:
    """The Cs of ``n_values`` L1 strengths from ``λ_max = max_j |X_jᵀ (y - ȳ)| / m`` (the
    weakest penalty with all weights zero, intercept free) down to ``λ_max / ratio``, in
    decreasing strength: ``C = 1 / (λ m)``."""
    m = X.shape[0]
    lam_max = float(np.max(np.abs(X.T @ (y - y.mean())))) / m
    lams = lam_max * np.logspace(0, -np.log10(ratio), n_values)
    return 1.0 / (lams * m)


def _log_loss(y: np.ndarray, z: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


PathFit = tuple[float, np.ndarray]  # the chosen C, and (w, b) of every model (folds, Cs, n + 1)


def _skglm_path(X: Any, y: np.ndarray, Cs: np.ndarray, folds: list, tol: float) -> PathFit:
    """skglm fitted C by C with warm starts on every fold; the C of the best mean log-loss."""
    from skglm import SparseLogisticRegression

    losses = np.zeros((len(folds), len(Cs)))
    coefs = np.zeros((len(folds), len(Cs), X.shape[1] + 1))
    for f, (train, test) in enumerate(folds):
        Xf, yf, m_f = X[train], 2 * y[train] - 1, len(train)
        est = SparseLogisticRegression(alpha=1.0 / (Cs[0] * m_f), tol=tol, warm_start=True,
                                       max_iter=50, max_epochs=10_000)
        for c, C in enumerate(Cs):
            est.alpha = 1.0 / (C * m_f)
            est.fit(Xf, yf)
            coefs[f, c, :-1], coefs[f, c, -1] = est.coef_.ravel(), np.ravel(est.intercept_)[0]
            z = X[test] @ coefs[f, c, :-1] + coefs[f, c, -1]
            losses[f, c] = _log_loss(y[test], z)
    return float(Cs[int(np.argmin(losses.mean(axis=0)))]), coefs


def _saga_cv(X: Any, y: np.ndarray, Cs: np.ndarray, folds: list, tol: float,
             max_iter: int = 100) -> PathFit:
    from sklearn.linear_model import LogisticRegressionCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga's ConvergenceWarning, deprecation notices
        est = LogisticRegressionCV(Cs=list(Cs), cv=folds, l1_ratios=(1.0,), solver="saga",
                                   scoring="neg_log_loss", tol=tol, max_iter=max_iter,
                                   use_legacy_attributes=True).fit(X, y)
    paths = next(iter(est.coefs_paths_.values()))  # (folds, Cs[, l1_ratios], n + 1)
    return float(np.ravel(est.C_)[0]), np.reshape(paths, (len(folds), len(Cs), -1))


def _jaxlogreg_cv(X: Any, y: np.ndarray, Cs: np.ndarray, folds: list, tol: float,
                  n_jobs: int | None = None) -> PathFit:
    from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

    est = LogisticRegressionCV(Cs=list(Cs), cv=folds, penalty="l1", scoring="neg_log_loss",
                               tol=tol, max_iter=1000, n_jobs=n_jobs).fit(X, y)
    return float(np.ravel(est.C_)[0]), next(iter(est.coefs_paths_.values()))


def path_objectives(X: Any, y: np.ndarray, Cs: np.ndarray, folds: list,
                    coefs: np.ndarray) -> np.ndarray:
    """J (folds, Cs) in float64 of each model on its fold's training rows: ``mean_i L_i +
    λ ||w||₁``, ``λ = 1 / (C m_f)`` (scikit-learn's ``C Σ L_i + ||w||₁`` over C m_f)."""
    J = np.empty((len(folds), len(Cs)))
    for f, (train, _) in enumerate(folds):
        w, b = np.asarray(coefs[f, :, :-1], np.float64), np.asarray(coefs[f, :, -1], np.float64)
        Z = X[train].astype(np.float64) @ w.T + b  # (m_f, Cs)
        loss = np.mean(np.logaddexp(0.0, Z) - y[train, None] * Z, axis=0)
        J[f] = loss + np.abs(w).sum(axis=1) / (Cs * len(train))
    return J


RUNNERS = {"jaxlogreg": _jaxlogreg_cv,
           "jaxlogreg-threads": functools.partial(_jaxlogreg_cv, n_jobs=-1),
           "skglm": _skglm_path, "saga": _saga_cv}
NAMES = {"jaxlogreg": "jaxlogreg LogisticRegressionCV(penalty='l1')",
         "jaxlogreg-threads": "jaxlogreg LogisticRegressionCV(penalty='l1', n_jobs=-1)",
         "skglm": "skglm SparseLogisticRegression, C by C, warm started",
         "saga": "scikit-learn LogisticRegressionCV (saga)"}


def _installed(name: str) -> bool:
    """skglm is an optional benchmark dependency: left out (with a note) when absent."""
    return name != "skglm" or importlib.util.find_spec("skglm") is not None


def _runs(args: argparse.Namespace, m: int) -> list[tuple[str, float]]:
    """(library, tol) of every timed run at a size of m rows."""
    skip = [*args.skip, *(["saga"] if m > args.saga_max_rows else [])]
    tols = {"skglm": args.skglm_tol, "saga": [args.saga_tol]}
    return [(name, tol) for name in RUNNERS if name not in skip and _installed(name)
            for tol in tols.get(name, [args.tol])]


def _warmed(name: str, tol: float, args: argparse.Namespace, warm: tuple) -> Callable:
    """The run's path function, called once on the tiny ``warm`` problem (imports, numba's
    compilation); for jaxlogreg, RuntimeError when its C library is not available."""
    run_path = functools.partial(RUNNERS[name], tol=tol)
    if name == "saga":
        run_path = functools.partial(run_path, max_iter=args.saga_max_iter)
    run_path(*warm)
    if name.startswith("jaxlogreg"):
        check_native()
    return run_path


def _timed(run_path: Callable, X: Any, y: np.ndarray, Cs: np.ndarray, folds: list
           ) -> tuple[float, PathFit]:
    start = time.perf_counter()
    result = run_path(X, y, Cs, folds)
    return time.perf_counter() - start, result


def _skglm_target(rows: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """jaxlogreg's time over skglm's fastest run at equal objective choosing the same C (its
    most accurate run when none is)."""
    ours, runs = rows[0], [r for r in rows if r["library"] == NAMES["skglm"]]
    equal = [r for r in runs if r["worst_excess"] <= EQUAL and r["same C_"]]
    ref = min(equal, key=lambda r: r["seconds"]) if equal else min(
        runs, key=lambda r: r["worst_excess"])
    how = (f"skglm's fastest at equal objective, tol={ref['tol']:g}" if equal else
           f"no skglm run at equal objective: its most accurate, tol={ref['tol']:g}")
    fair = ours["worst_excess"] <= EQUAL and ref["same C_"]
    return report.target(f"L1 path, {where} ({how})",
                         ours["seconds"] / ref["seconds"] if fair else None, SKGLM_TARGET,
                         f"time of jaxlogreg / {NAMES['skglm']}")


def _run_size(m: int, n: int, k: int, args: argparse.Namespace
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from sklearn.model_selection import StratifiedKFold

    X, y, _ = make_problem(m, n, k, args.seed)
    Cs = l1_grid(X, y, args.Cs, args.ratio)
    folds = list(StratifiedKFold(args.folds).split(np.zeros(m), y))
    Xs, ys, _ = make_problem(200, 50, 5, args.seed)
    warm = (Xs, ys, l1_grid(Xs, ys, 3, 10.0), list(StratifiedKFold(2).split(np.zeros(200), ys)))
    runners = {run: _warmed(*run, args, warm) for run in _runs(args, m)}
    times: dict[tuple[str, float], list[float]] = {run: [] for run in runners}
    fits: dict[tuple[str, float], PathFit] = {}
    for repeat in range(args.repeats):  # round-robin
        for (name, tol), run_path in runners.items():
            if name == "saga" and repeat:  # minutes a call: once
                continue
            report.log(f"  {m:,} x {n:,} x {k}: {NAMES[name]}, tol={tol:g}, call {repeat + 1}")
            seconds, fits[name, tol] = _timed(run_path, X, y, Cs, folds)
            times[name, tol].append(seconds)
    results = [(name, tol, float(np.median(times[name, tol])), fits[name, tol][0],
                path_objectives(X, y, Cs, folds, fits[name, tol][1])) for name, tol in runners]
    report.log(f"  {m:,} x {n:,} x {k}: the reference, jaxlogreg at tol={REFERENCE_TOL:g}")
    _, reference = _jaxlogreg_cv(X, y, Cs, folds, REFERENCE_TOL)
    best = np.minimum.reduce([path_objectives(X, y, Cs, folds, reference),
                              *(r[-1] for r in results)])
    ours = results[0]
    rows = [{"m": m, "n": n, "nnz_per_row": k, "CSR_MB": csr_bytes(X) / 1e6,
             "library": NAMES[name], "tol": tol, "seconds": seconds, "C_": C,
             "same C_": bool(np.isclose(C, ours[3])),
             "worst_excess": float(np.max((J - best) / best)),
             "time / jaxlogreg": seconds / ours[2]} for name, tol, seconds, C, J in results]
    where = f"{m:,} x {n:,}, {k} per row, {args.Cs} C x {args.folds} folds"
    targets = [_skglm_target(rows, where)] if any(
        r["library"] == NAMES["skglm"] for r in rows) else []
    for row in rows:
        if row["library"] == NAMES["saga"]:
            same = row["same C_"]
            targets.append(report.target(
                f"L1 path, {where}{'' if same else ': a different C chosen'}",
                ours[2] / row["seconds"] if same else None, SAGA_TARGET,
                f"time of jaxlogreg / {NAMES['saga']}"))
    return rows, targets


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))]
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for m, n, k in sizes:
        size_rows, size_targets = _run_size(m, n, k, args)
        rows += size_rows
        targets += size_targets
    return {
        "config": {"sizes": [f"{m}x{n}x{k}" for m, n, k in sizes], "Cs": args.Cs,
                   "folds": args.folds, "ratio": args.ratio, "tol": args.tol,
                   "skglm_tol": args.skglm_tol, "reference_tol": REFERENCE_TOL,
                   "saga_tol": args.saga_tol, "saga_max_iter": args.saga_max_iter,
                   "saga_max_rows": args.saga_max_rows, "dtype": "float32", "quick": args.quick},
        "rows": rows,
        "columns": ["m", "n", "nnz_per_row", "CSR_MB", "library", "tol", "seconds", "C_",
                    "same C_", "worst_excess", "time / jaxlogreg"],
        "targets": targets,
        "notes": [*([] if _installed("skglm") else ["skglm is not installed: left out."]),
                  ("Each library's tol is its own (duality gap, KKT violation, saga's weight "
                   "change); worst_excess says how far above the best J each run stopped, and "
                   f"the skglm target takes its fastest run within {EQUAL:g} of it.")],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["sparse_path", *sys.argv[1:]]))
