"""Standard errors: jaxlogreg.inference against statsmodels and glum, on the same unpenalised fit.

For each size, float32 standardised X with labels from a logistic model: the time of the
inference step alone (the fitted parameters given) and of fit + inference, for
nonrobust and HC0 standard errors. jaxlogreg: ``jaxlogreg.fit(X, y, C=inf)`` +
``jaxlogreg.inference(params, X, y, cov_type=...)``; statsmodels: ``Logit(y, [1, X]).fit(
cov_type=...)`` and ``.bse`` (its inference step: ``model.hessian`` inverted, with
``score_obs`` for HC0); glum: ``GeneralizedLinearRegressor(family="binomial", alpha=0)`` +
``covariance_matrix(X, y, robust=...)``. One pass over X is the faster of ``X v`` and ``Xᵀ u`` in jitted JAX on
the same X, measured in the same run. First calls (compilation) are reported apart; steady times are
medians of interleaved calls. Targets at 1,000,000 x 100: fit + nonrobust SEs at most 0.2x
glum's and 0.1x statsmodels'; the inference step at most 3 passes over X.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_SIZES = ("100000x100",)
QUICK_SIZES = ("2000x10",)
TARGET_SIZE = (1_000_000, 100)
GLUM_TARGET, STATSMODELS_TARGET, PASSES_TARGET = 0.2, 0.1, 3.0
COV_TYPES = ("nonrobust", "HC0")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", metavar="MxN",
                        help=f"problem sizes (default {' '.join(DEFAULT_SIZES)}; the targets "
                             "are at 1000000x100)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="jaxlogreg's and glum's gradient tolerance (default 1e-6)")
    parser.add_argument("--seed", type=int, default=0)


def make_problem(m: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised float32 features and labels drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n), dtype=np.float32)
    z = X @ (rng.standard_normal(n).astype(np.float32) / np.sqrt(n) * 2.0)
    y = (rng.random(m) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
    return X, y


def _candidates(X: np.ndarray, y: np.ndarray, tol: float) -> dict[str, dict[str, Any]]:
    """Per library: ``fit()`` -> fitted model, ``se(model, cov_type)`` -> standard errors."""
    import statsmodels.api as sm
    from glum import GeneralizedLinearRegressor

    import jaxlogreg

    X64 = X.astype(np.float64)  # glum's covariance_matrix refuses float32 X (tabmat sandwich)
    Xc = sm.add_constant(X64, prepend=False)  # intercept last, as jaxlogreg

    def statsmodels_se(model: Any, cov_type: str) -> np.ndarray:
        logit, params = model
        cov = np.linalg.inv(-logit.hessian(params))
        if cov_type == "HC0":
            scores = logit.score_obs(params)
            cov = cov @ (scores.T @ scores) @ cov
        return np.sqrt(np.diag(cov))

    def statsmodels_fit() -> Any:
        logit = sm.Logit(y, Xc)
        return logit, logit.fit(disp=0, method="newton", tol=1e-8).params

    def glum_fit() -> Any:
        return GeneralizedLinearRegressor(family="binomial", alpha=0, fit_intercept=True,
                                          gradient_tol=tol).fit(X64, y)

    def glum_se(model: Any, cov_type: str) -> np.ndarray:
        cov = model.covariance_matrix(X64, y, robust=cov_type != "nonrobust")
        se = np.sqrt(np.diag(cov))
        return np.r_[se[1:], se[:1]]  # glum puts the intercept first

    def jaxlogreg_fit() -> Any:
        return jaxlogreg.fit(X, y, C=np.inf, tol=tol, max_iter=1000).params

    def jaxlogreg_se(params: Any, cov_type: str) -> np.ndarray:
        return jaxlogreg.inference(params, X, y, cov_type=cov_type).std_err

    return {
        "jaxlogreg": {"fit": jaxlogreg_fit, "se": jaxlogreg_se},
        "statsmodels": {"fit": statsmodels_fit, "se": statsmodels_se},
        "glum": {"fit": glum_fit, "se": glum_se},
    }


def _pass_seconds(X: np.ndarray, repeats: int) -> dict[str, float]:
    """Median seconds of one read of X on the device: jitted ``X v`` and ``Xᵀ u`` (XLA's
    transposed product on a row-major X is much slower on CPUs); "one pass" is the faster.
    Also ``Xᵀ D X`` in float32, the Hessian's product: m k² flops, compute-bound for k = 100."""
    import jax
    import jax.numpy as jnp

    Xj = jax.device_put(X)
    products = {"X v": (jax.jit(lambda A, v: A @ v), jnp.ones(X.shape[1], X.dtype)),
                "Xᵀ u": (jax.jit(lambda A, u: A.T @ u), jnp.ones(X.shape[0], X.dtype)),
                "Xᵀ D X": (jax.jit(lambda A, d: (A * d[:, None]).T @ A),
                           jnp.ones(X.shape[0], X.dtype))}
    times = {name: report.time_fn(fn, Xj, vector, repeats=repeats)[1].median
             for name, (fn, vector) in products.items()}
    one_pass = min(times["X v"], times["Xᵀ u"])
    return {**{f"{name} s": t for name, t in times.items()}, "one pass s": one_pass,
            "Xᵀ D X / pass": times["Xᵀ D X"] / one_pass}


def _run_size(m: int, n: int, args: argparse.Namespace) -> tuple[list[dict], dict]:
    X, y = make_problem(m, n, args.seed)
    candidates = _candidates(X, y, args.tol)
    passes = _pass_seconds(X, args.repeats)
    rows, timed = [], {}
    for name, c in candidates.items():
        report.log(f"  {m:,} x {n}: {name} first fit and inference")
        fit_first, model = report.call_seconds(c["fit"])
        c["model"] = model
        for cov_type in COV_TYPES:
            first, se = report.call_seconds(c["se"], model, cov_type)
            c[cov_type] = se
            rows.append({"m": m, "n": n, "library": name, "cov_type": cov_type,
                         "fit_first_s": fit_first, "inference_first_s": first})
            timed[f"{name} {cov_type} inference"] = (c["se"], (model, cov_type))
            timed[f"{name} {cov_type} fit+inference"] = (
                lambda c=c, cov_type=cov_type: c["se"](c["fit"](), cov_type), ())
    report.log(f"  {m:,} x {n}: steady state, interleaved")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        timings = report.time_interleaved(timed, repeats=args.repeats, warmup=0)
    for row in rows:
        key = f"{row['library']} {row['cov_type']}"
        reference = candidates["statsmodels"][row["cov_type"]]
        se = candidates[row["library"]][row["cov_type"]]
        row.update({
            "inference_s": timings[f"{key} inference"].median,
            "fit+inference_s": timings[f"{key} fit+inference"].median,
            "inference / pass": timings[f"{key} inference"].median / passes["one pass s"],
            "max rel SE diff vs statsmodels": float(np.max(np.abs(se / reference - 1))),
        })
    for row in rows:
        theirs = {r["library"]: r["fit+inference_s"] for r in rows
                  if r["cov_type"] == row["cov_type"]}
        row["fit+inf / glum"] = row["fit+inference_s"] / theirs["glum"]
        row["fit+inf / statsmodels"] = row["fit+inference_s"] / theirs["statsmodels"]
    return rows, passes


def _targets(rows: list[dict], m: int, n: int) -> list[dict]:
    ours = {r["cov_type"]: r for r in rows if r["library"] == "jaxlogreg"}
    where = f"{m:,} x {n}"
    found = [
        report.target(f"fit + nonrobust SEs vs glum, {where}", ours["nonrobust"]["fit+inf / glum"],
                      GLUM_TARGET, "time / glum's"),
        report.target(f"fit + nonrobust SEs vs statsmodels, {where}",
                      ours["nonrobust"]["fit+inf / statsmodels"], STATSMODELS_TARGET,
                      "time / statsmodels'"),
    ]
    found += [report.target(f"inference step, {cov_type}, {where}",
                            ours[cov_type]["inference / pass"], PASSES_TARGET,
                            "time / one pass over X") for cov_type in COV_TYPES]
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    from benchmarks.roofline import parse_size

    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))]
    rows, passes, targets = [], [], []
    start = time.perf_counter()
    for m, n in sizes:
        size_rows, size_passes = _run_size(m, n, args)
        rows += size_rows
        passes.append({"m": m, "n": n, **size_passes})
        if (m, n) == TARGET_SIZE or args.sizes:
            targets += _targets(size_rows, m, n)
    return {
        "config": {"sizes": [f"{m}x{n}" for m, n in sizes], "tol": args.tol,
                   "repeats": args.repeats, "dtype": "float32", "penalty": "none",
                   "platform": jax.devices()[0].platform, "quick": args.quick,
                   "total_s": round(time.perf_counter() - start, 1)},
        "rows": rows,
        "columns": ["m", "n", "library", "cov_type", "fit_first_s", "inference_first_s",
                    "inference_s", "fit+inference_s", "inference / pass", "fit+inf / glum",
                    "fit+inf / statsmodels", "max rel SE diff vs statsmodels"],
        "tables": {"one pass over X": passes},
        "targets": targets,
        "notes": [
            ("statsmodels and glum get a float64 copy of X, made once outside the timings "
             "(glum 3.4's covariance_matrix raises a TypeError for float32 X: tabmat's sandwich "
             "gets float64 weights); jaxlogreg reads the float32 X and its inference computes "
             "in float64."),
            ("glum's covariances differ from statsmodels' by small-sample factors (its robust "
             "one is HC1, n/(n - k) times HC0) and, for the non-robust one, its estimated "
             "dispersion; the SE column shows by how much."),
        ],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["inference", *sys.argv[1:]]))
