"""Model selection: jaxlogreg's LogisticRegressionCV against scikit-learn's, in one run.

Both fit every (fold, C) model of a 5-fold cross-validation over 10 values of C (scikit-learn's
default grid, ``np.logspace(-4, 4, 10)``), score the held-out rows (accuracy), choose ``C_`` and
refit on all rows. scikit-learn fits the 50 models one after another (lbfgs); jaxlogreg fits
them together in one compiled program (:func:`jaxlogreg.fit_path`: one pass over X per
iteration evaluates all 50 models, as matrix products). Same folds (``StratifiedKFold(5)``),
same tolerance on the gradient, float32 data (standardised features of a logistic model).

``first_s`` is jaxlogreg's first call in this process (tracing and compiling included, the
persistent compilation cache off); ``steady_s`` the median of later calls; scikit-learn has no
compilation, so its first and steady calls are alike. Targets: jaxlogreg's steady time at most
0.1x scikit-learn's and its first call at most 0.25x, with the same ``C_`` and the refit
``coef_`` within 1e-3.
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
DEFAULT_SIZES = ("50000x50", "100000x100")
QUICK_SIZES = ("2000x10",)
STEADY_TARGET, FIRST_TARGET, COEF_TOLERANCE = 0.1, 0.25, 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", metavar="MxN",
                        help=f"problem sizes (default {' '.join(DEFAULT_SIZES)})")
    parser.add_argument("--Cs", type=int, default=10, help="values of C (default 10)")
    parser.add_argument("--folds", type=int, default=5, help="folds (default 5)")
    parser.add_argument("--tol", type=float, default=1e-6, help="gradient tolerance (1e-6)")
    parser.add_argument("--seed", type=int, default=0)


def make_problem(m: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised float32 features and labels drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)).astype(np.float32)
    z = X @ (rng.standard_normal(n) / np.sqrt(n) * 2.0)
    y = (rng.random(m) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    return X, y


def _timed(fit, repeats: int) -> tuple[float, float, Any]:
    """First-call and median later-call seconds of ``fit()``, and its last result."""
    start = time.perf_counter()
    model = fit()
    first = time.perf_counter() - start
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - start)
    return first, float(np.median(times)), model


def _sklearn_defaults(estimator: type) -> dict[str, Any]:
    """Today's behaviour of scikit-learn's LogisticRegressionCV spelled out, where its
    defaults are about to change (1.10/1.11 warn): accuracy, L2 only, the legacy attributes."""
    import inspect

    wanted = {"scoring": "accuracy", "l1_ratios": (0.0,), "use_legacy_attributes": True}
    accepted = inspect.signature(estimator).parameters
    return {k: value for k, value in wanted.items() if k in accepted}


def _run_size(m: int, n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegressionCV as SkLogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

    X, y = make_problem(m, n, args.seed)
    settings = {"Cs": args.Cs, "cv": StratifiedKFold(args.folds), "tol": args.tol,
                "max_iter": 1000}
    report.log(f"  {m:,} x {n}: jaxlogreg LogisticRegressionCV")
    j_first, j_steady, ours = _timed(lambda: LogisticRegressionCV(**settings).fit(X, y),
                                     args.repeats)
    report.log(f"  {m:,} x {n}: scikit-learn LogisticRegressionCV")
    sk_settings = {**settings, **_sklearn_defaults(SkLogisticRegressionCV)}
    s_first, s_steady, theirs = _timed(lambda: SkLogisticRegressionCV(**sk_settings).fit(X, y),
                                       max(1, args.repeats // 2))
    coef_diff = float(np.max(np.abs(ours.coef_ - theirs.coef_)))
    same_C = bool(np.allclose(ours.C_, theirs.C_))
    common = {"m": m, "n": n, "models": args.Cs * args.folds}
    return [
        {**common, "estimator": "jaxlogreg LogisticRegressionCV", "first_s": j_first,
         "steady_s": j_steady, "C_": float(ours.C_[0]), "same_C_": same_C,
         "max |coef_ - sklearn|": coef_diff, "steady / sklearn": j_steady / s_steady,
         "first / sklearn": j_first / s_steady},
        {**common, "estimator": "scikit-learn LogisticRegressionCV (lbfgs)", "first_s": s_first,
         "steady_s": s_steady, "C_": float(theirs.C_[0]), "same_C_": same_C,
         "max |coef_ - sklearn|": 0.0, "steady / sklearn": 1.0, "first / sklearn": 1.0},
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    from benchmarks.roofline import parse_size

    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))]
    rows: list[dict[str, Any]] = []
    targets = []
    for m, n in sizes:
        ours, theirs = _run_size(m, n, args)
        rows += [ours, theirs]
        where = f"{m:,} x {n}"
        targets += [
            report.target(f"steady state, {where}", ours["steady / sklearn"], STEADY_TARGET,
                          "time / scikit-learn's"),
            report.target(f"first call, {where}", ours["first / sklearn"], FIRST_TARGET,
                          "first-call time / scikit-learn's"),
            report.target(f"refit coef_, {where}", ours["max |coef_ - sklearn|"], COEF_TOLERANCE,
                          f"max |coef_ - scikit-learn's| (same C_: {ours['same_C_']})"),
        ]
    return {
        "config": {"sizes": [f"{m}x{n}" for m, n in sizes], "Cs": args.Cs, "folds": args.folds,
                   "tol": args.tol, "repeats": args.repeats, "dtype": "float32",
                   "platform": jax.devices()[0].platform, "quick": args.quick},
        "rows": rows,
        "columns": ["m", "n", "models", "estimator", "first_s", "steady_s", "C_", "same_C_",
                    "max |coef_ - sklearn|", "steady / sklearn", "first / sklearn"],
        "targets": targets,
        "notes": [
            (
                "scikit-learn refits from the average of the folds' coefficients at C_; "
                "jaxlogreg refits from zero: both converge to the same optimum within tol."
            ),
        ],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["cv", *sys.argv[1:]]))
