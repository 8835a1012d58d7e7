"""Lecture 2.11's demonstration: explicit Python for loops against vectorized code.

Two tasks, each as a Python for loop, vectorized NumPy and jitted JAX:

- the dot product of two vectors of 1,000,000 elements (the lecture's ``np.random.rand(1000000)``);
- one full logistic-regression gradient (J, dw, db) over m examples with n features, the loop
  being :func:`jaxlogreg.core.reference.loop_gradients` (lecture 2.10) and the NumPy version
  :func:`jaxlogreg.core.reference.vectorized_gradients` (lectures 2.13/2.14). The loop is O(m n)
  Python operations, so m = 10,000 and n = 100 keep it to a second or two.

The lecture works in float64, so the loop and NumPy use float64 and JAX is timed in float64
(inside ``jax.enable_x64``) as well as in its default float32. The speed-up is loop time over
the vectorized time; the lecture reports about 300x for the dot product.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report

DESCRIPTION = (__doc__ or "").strip()
LECTURE_RATIO = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dot-size", type=int, default=None, help="vector length (1,000,000)")
    parser.add_argument("--m", type=int, default=None, help="examples for the gradient (10,000)")
    parser.add_argument("--n", type=int, default=None, help="features for the gradient (100)")
    parser.add_argument("--seed", type=int, default=0)


def _sizes(args: argparse.Namespace) -> tuple[int, int, int]:
    quick = (20_000, 200, 10)
    full = (1_000_000, 10_000, 100)
    defaults = quick if args.quick else full
    return tuple(
        v if v is not None else d for v, d in zip((args.dot_size, args.m, args.n), defaults)
    )


def loop_dot(a: np.ndarray, b: np.ndarray) -> float:
    """The lecture's ``for i in range(n): c += a[i] * b[i]``."""
    c = 0.0
    for i in range(len(a)):
        c += a[i] * b[i]
    return c


def _jax_candidates(a64, b64, X64, y64, dtype_name: str) -> tuple[dict[str, Any], Any, Any]:
    """Jitted JAX dot and gradient in ``dtype_name``, with arguments on the device."""
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.gradients import value_and_backward_t
    from jaxlogreg.core.model import Params

    dtype = jnp.dtype(dtype_name)
    a, b = jnp.asarray(a64, dtype), jnp.asarray(b64, dtype)
    Xt = jnp.asarray(X64.T, dtype)  # the internal layout (n, m), transposed once
    y = jnp.asarray(y64, dtype)
    params = Params(w=jnp.zeros(X64.shape[1], dtype), b=jnp.zeros((), dtype))
    dot = jax.jit(jnp.dot)
    grad = jax.jit(lambda p, Xt, y: value_and_backward_t(p, Xt, y))
    return {"dot": (dot, (a, b)), "grad": (grad, (params, Xt, y))}, dot(a, b), grad(params, Xt, y)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    from jaxlogreg.core.reference import loop_gradients, vectorized_gradients

    size, m, n = _sizes(args)
    rng = np.random.default_rng(args.seed)
    a, b = rng.random(size), rng.random(size)
    X = rng.standard_normal((m, n))
    y = (rng.random(m) < 0.5).astype(np.float64)
    w, b0 = np.zeros(n), 0.0
    loop_repeats = 1 if args.quick else min(3, args.repeats)

    report.log(f"  dot product of {size:,} elements: Python loop x{loop_repeats}")
    _, t_loop_dot = report.time_fn(loop_dot, a, b, repeats=loop_repeats, warmup=0)
    report.log(f"  gradient m={m:,} n={n}: Python loops x{loop_repeats}")
    _, t_loop_grad = report.time_fn(loop_gradients, X, y, w, b0, repeats=loop_repeats, warmup=0)
    _J_loop, dw_loop, _db_loop = loop_gradients(X, y, w, b0)

    candidates = {
        "dot/numpy float64": (np.dot, (a, b)),
        "grad/numpy float64": (vectorized_gradients, (X, y, w, b0)),
    }
    errors = {
        "dot/numpy float64": abs(np.dot(a, b) - loop_dot(a, b)),
        "grad/numpy float64": float(np.max(np.abs(vectorized_gradients(X, y, w, b0)[1] - dw_loop))),
    }
    # Each runtime is timed on its own (NumPy's BLAS threads and XLA's thread pool interfere
    # when their calls alternate); within a runtime the candidates are interleaved.
    fast_repeats = max(args.repeats, 20)
    timings = report.time_interleaved(candidates, repeats=fast_repeats)
    for dtype in ("float64", "float32"):
        with jax.enable_x64(dtype == "float64"):
            fns, dot, (_, g) = _jax_candidates(a, b, X, y, dtype)
            errors[f"dot/jax jit {dtype}"] = abs(float(dot) - np.dot(a, b))
            errors[f"grad/jax jit {dtype}"] = float(np.max(np.abs(np.asarray(g.w) - dw_loop)))
            timings.update(
                report.time_interleaved(
                    {f"{k}/jax jit {dtype}": v for k, v in fns.items()}, repeats=fast_repeats
                )
            )

    tasks = {
        "dot": (f"dot product, {size:,} elements", t_loop_dot),
        "grad": (f"gradient (J, dw, db), m={m:,} n={n}", t_loop_grad),
    }
    rows = []
    for task, (label, t_loop) in tasks.items():
        rows.append(
            {
                "task": label,
                "implementation": "Python for loop (float64)",
                "median_s": t_loop.median,
                "min_s": t_loop.min,
                "loop / this": 1.0,
                "max abs diff vs loop": 0.0,
            }
        )
        for name in ("numpy float64", "jax jit float64", "jax jit float32"):
            key = f"{task}/{name}"
            t = timings[key]
            rows.append(
                {
                    "task": label,
                    "implementation": name,
                    "median_s": t.median,
                    "min_s": t.min,
                    "loop / this": t_loop.median / t.median,
                    "max abs diff vs loop": errors[key],
                }
            )
    ratio_numpy = t_loop_dot.median / timings["dot/numpy float64"].median
    return {
        "config": {
            "dot_size": size,
            "m": m,
            "n": n,
            "repeats": args.repeats,
            "loop_repeats": loop_repeats,
            "vectorized_repeats": fast_repeats,
            "quick": args.quick,
        },
        "rows": rows,
        "summary": {
            "dot_loop_over_numpy": ratio_numpy,
            "dot_loop_over_jax_f32": t_loop_dot.median / timings["dot/jax jit float32"].median,
            "grad_loop_over_numpy": t_loop_grad.median / timings["grad/numpy float64"].median,
            "grad_loop_over_jax_f32": t_loop_grad.median / timings["grad/jax jit float32"].median,
            "lecture_ratio": LECTURE_RATIO,
        },
        "notes": [
            (
                f"The lecture reports about {LECTURE_RATIO}x for the dot product; measured here: "
                f"{ratio_numpy:.0f}x (loop / NumPy)."
            ),
            (
                "Times are medians; JAX times are steady state (compiled on a warm-up call) and "
                "include block_until_ready. The JAX gradient takes X already in the internal "
                "layout (n, m), transposed once outside the timing, as training does."
            ),
            (
                "max abs diff: |dot - loop dot| for the dot product, max |dw - dw_loop| for the "
                "gradient (float32 rows differ by float32 rounding)."
            ),
        ],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["vectorization", *sys.argv[1:]]))
