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
  C by C from the strongest penalty down (its tol on the KKT violation, ``--tol``), the same
  scoring;
- scikit-learn: ``LogisticRegressionCV(Cs, cv, l1_ratios=(1.0,), solver="saga")`` (its tol on
  the change of the weights, ``--saga-tol``; ``--saga-max-iter`` epochs, its default 100), at
  sizes of at most ``--saga-max-rows`` rows.

Times are of one call after a tiny warm-up call of each library (numba's and XLA's compilations
of those shapes excluded: jaxlogreg's shapes change with the data's, so its time includes its
compilations for them). Targets: jaxlogreg at most 0.2x skglm's time and 0.05x scikit-learn's,
choosing the same C.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report
from benchmarks.sparse import csr_bytes, make_problem, parse_size

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_SIZES = ("5000x8192x20", "20000x32768x40")
QUICK_SIZES = ("2000x2000x10",)
SKGLM_TARGET, SAGA_TARGET = 0.2, 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", metavar="MxNxNNZ",
                        help=f"problem sizes (default {' '.join(DEFAULT_SIZES)})")
    parser.add_argument("--Cs", type=int, default=20, help="values of C on the path (default 20)")
    parser.add_argument("--folds", type=int, default=5, help="folds (default 5)")
    parser.add_argument("--ratio", type=float, default=100.0,
                        help="λ_max / the smallest λ on the path (default 100)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="jaxlogreg's relative duality gap and skglm's tol (default 1e-6)")
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


def _skglm_path(X: Any, y: np.ndarray, Cs: np.ndarray, folds: list, tol: float) -> float:
    """skglm fitted C by C with warm starts on every fold; the C of the best mean log-loss."""
    from skglm import SparseLogisticRegression

    losses = np.zeros((len(folds), len(Cs)))
    for f, (train, test) in enumerate(folds):
        Xf, yf, m_f = X[train], 2 * y[train] - 1, len(train)
        est = SparseLogisticRegression(alpha=1.0 / (Cs[0] * m_f), tol=tol, warm_start=True,
                                       max_iter=50, max_epochs=10_000)
        for c, C in enumerate(Cs):
            est.alpha = 1.0 / (C * m_f)
            est.fit(Xf, yf)
            z = X[test] @ est.coef_.ravel() + float(np.ravel(est.intercept_)[0])
            losses[f, c] = _log_loss(y[test], z)
    return float(Cs[int(np.argmin(losses.mean(axis=0)))])


def _saga_cv(X: Any, y: np.ndarray, Cs: np.ndarray, folds: list, tol: float,
             max_iter: int = 100) -> float:
    from sklearn.linear_model import LogisticRegressionCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga's ConvergenceWarning, deprecation notices
        est = LogisticRegressionCV(Cs=list(Cs), cv=folds, l1_ratios=(1.0,), solver="saga",
                                   scoring="neg_log_loss", tol=tol, max_iter=max_iter,
                                   use_legacy_attributes=True).fit(X, y)
    return float(np.ravel(est.C_)[0])


def _jaxlogreg_cv(X: Any, y: np.ndarray, Cs: np.ndarray, folds: list, tol: float,
                  n_jobs: int | None = None) -> float:
    from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

    est = LogisticRegressionCV(Cs=list(Cs), cv=folds, penalty="l1", scoring="neg_log_loss",
                               tol=tol, max_iter=1000, n_jobs=n_jobs).fit(X, y)
    return float(np.ravel(est.C_)[0])


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


def _timed(name: str, X: Any, y: np.ndarray, Cs: np.ndarray, folds: list,
           args: argparse.Namespace, warm: tuple) -> tuple[float, float]:
    run_path = RUNNERS[name]
    if name == "saga":
        run_path = functools.partial(_saga_cv, tol=args.saga_tol, max_iter=args.saga_max_iter)
    else:
        run_path = functools.partial(run_path, tol=args.tol)
    run_path(*warm)  # tiny warm-up: imports, numba's compilation
    start = time.perf_counter()
    C = run_path(X, y, Cs, folds)
    return time.perf_counter() - start, C


def _run_size(m: int, n: int, k: int, args: argparse.Namespace
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from sklearn.model_selection import StratifiedKFold

    X, y, _ = make_problem(m, n, k, args.seed)
    Cs = l1_grid(X, y, args.Cs, args.ratio)
    folds = list(StratifiedKFold(args.folds).split(np.zeros(m), y))
    Xs, ys, _ = make_problem(200, 50, 5, args.seed)
    warm = (Xs, ys, l1_grid(Xs, ys, 3, 10.0), list(StratifiedKFold(2).split(np.zeros(200), ys)))
    rows, times, chosen = [], {}, {}
    skip = [*args.skip, *(["saga"] if m > args.saga_max_rows else [])]
    for name in [lib for lib in RUNNERS if lib not in skip and _installed(lib)]:
        report.log(f"  {m:,} x {n:,} x {k}: {NAMES[name]}")
        times[name], chosen[name] = _timed(name, X, y, Cs, folds, args, warm)
    where = f"{m:,} x {n:,}, {k} per row, {args.Cs} C x {args.folds} folds"
    targets = []
    for name, threshold in (("skglm", SKGLM_TARGET), ("saga", SAGA_TARGET)):
        if name in times:
            same = np.isclose(chosen[name], chosen["jaxlogreg"])
            targets.append(report.target(
                f"L1 path, {where}{'' if same else ': a different C chosen'}",
                times["jaxlogreg"] / times[name] if same else None, threshold,
                f"time of jaxlogreg / {NAMES[name]}"))
    for name, seconds in times.items():
        rows.append({"m": m, "n": n, "nnz_per_row": k, "CSR_MB": csr_bytes(X) / 1e6,
                     "library": NAMES[name], "seconds": seconds, "C_": chosen[name],
                     "same C_": bool(np.isclose(chosen[name], chosen["jaxlogreg"])),
                     "time / jaxlogreg": seconds / times["jaxlogreg"]})
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
                   "saga_tol": args.saga_tol, "saga_max_iter": args.saga_max_iter,
                   "saga_max_rows": args.saga_max_rows, "dtype": "float32", "quick": args.quick},
        "rows": rows,
        "columns": ["m", "n", "nnz_per_row", "CSR_MB", "library", "seconds", "C_", "same C_",
                    "time / jaxlogreg"],
        "targets": targets,
        "notes": [*([] if _installed("skglm") else ["skglm is not installed: left out."]),
                  ("Each library's objective tolerance is its own (duality gap, KKT violation, "
                   "saga's weight change); the chosen C is the comparison's check.")],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["sparse_path", *sys.argv[1:]]))
