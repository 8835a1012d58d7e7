"""GPU roofline of the fused Pallas gradient against the XLA gradient and the bandwidth floor.

A full-batch gradient must read X (m x n) at least once, so ``floor = bytes(X) / bandwidth``,
with the device's read bandwidth measured in the same run, interleaved with the candidates:
``jnp.sum`` over Xt (a read-only reduction, the ceiling used by ``roofline.py``). The
device-to-device copy bandwidth (``-Xt``, counting bytes read and written) is reported beside
it. Each candidate is timed as the mean of a burst of back-to-back calls (async dispatch keeps
the GPU busy; one ``block_until_ready`` per burst), median over interleaved rounds.

Candidates, for binary and softmax (K classes), X float32 and bfloat16 storage:

- ``xla``: :func:`jaxlogreg.core.gradients.value_and_grad_t` under ``jax.jit`` (two
  matrix-vector products: X is read twice);
- ``fused``: :func:`jaxlogreg.kernels.fused.fused_value_and_grad_t`, the Pallas (Triton) kernel
  that reads X once.

``x_floor = time / floor`` (bf16 rows against the bf16 bytes). Without a GPU this says
"no GPU" and runs the fused kernel in interpret mode at a tiny size against the XLA gradient
(a smoke test, no timings worth reading).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_SIZES = ("1000000x100", "4000000x100")
QUICK_SIZES = ("100000x100",)
TARGET_GPU = 1.3  # as roofline.py: the gradient within 1.3x the floor on GPU
BURST_SECONDS = 0.05  # each timed sample: back-to-back calls for about this long


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="MxN",
        help=f"problem sizes m x n (default {' '.join(DEFAULT_SIZES)})",
    )
    parser.add_argument("--classes", type=int, default=10, help="K of the softmax rows (10)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16-storage rows")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also time the fused kernel at other tiles, warps and grid caps (tuning)",
    )
    parser.add_argument("--seed", type=int, default=0)


def _problem(m: int, n: int, K: int, seed: int):
    """Device-generated float32 data (no host copy): Xt (n, m), params, labels, s = 1/m."""
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.model import Params

    kx, kw, ky = jax.random.split(jax.random.key(seed), 3)
    Xt = jax.random.normal(kx, (n, m), jnp.float32)
    if K == 2:
        params = Params(jax.random.normal(kw, (n,)) / jnp.sqrt(n), jnp.asarray(0.1))
        y = jax.random.bernoulli(ky, 0.5, (m,)).astype(jnp.float32)
    else:
        params = Params(jax.random.normal(kw, (n, K)) / jnp.sqrt(n), jnp.zeros(K))
        y = jax.random.randint(ky, (m,), 0, K, jnp.int32)
    return report.block((Xt, params, y, jnp.asarray(1.0 / m, jnp.float32)))


def _max_rel(a: Any, b: Any) -> float:
    from jaxlogreg.core.gradcheck import max_relative_error

    return max_relative_error(a, b)


def _burst_timing(candidates: dict, repeats: int) -> dict[str, report.Timing]:
    """Per-call seconds of each ``{name: (fn, args)}``: bursts of calls, interleaved rounds."""
    bursts = {}
    for name, (fn, args) in candidates.items():
        report.block(fn(*args))  # compile + warm up
        t, _ = report.call_seconds(fn, *args)
        bursts[name] = max(1, min(200, int(BURST_SECONDS / max(t, 1e-6))))
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(max(3, repeats)):
        for name, (fn, args) in candidates.items():
            k = bursts[name]
            start = time.perf_counter()
            out = None
            for _ in range(k):
                out = fn(*args)
            report.block(out)
            times[name].append((time.perf_counter() - start) / k)
    return {name: report.Timing(tuple(t)) for name, t in times.items()}


def _reference64(params, X, y, s):
    """J and ∇ in float64 from the same stored values (X float32 or bf16): the accuracy yardstick."""
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.gradients import value_and_grad_t

    def f64(a):
        return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a

    with jax.enable_x64(True):
        out = jax.jit(value_and_grad_t)(
            jax.tree.map(f64, params), f64(X), f64(y), f64(s), jnp.float64(1e-4)
        )
        return jax.tree.map(np.asarray, out)


def _sweep_variants(n: int, K: int) -> list[dict[str, int]]:
    """Fused-kernel settings to try besides the default: tiles, the other warp count, grid caps."""
    from jaxlogreg.kernels.fused import MIN_TILE, tile_config

    cfg = tile_config(n, K)
    tiles = (2 * cfg.tile, cfg.tile // 2, cfg.tile // 4, cfg.tile // 8)
    variants = [{"tile": t} for t in tiles if t >= MIN_TILE]
    variants.append({"num_warps": 4 if cfg.num_warps == 8 else 8})
    variants += [{"max_programs": 264}, {"max_programs": 2048}]
    return variants


def _measure(m: int, n: int, K: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.gradients import value_and_grad_t
    from jaxlogreg.kernels.fused import fused_value_and_grad_t, supports

    Xt, params, y, s = _problem(m, n, K, args.seed)
    problem = "binary" if K == 2 else f"softmax K={K}"
    storages = {"float32": Xt}
    if not args.no_bf16:
        storages["bfloat16"] = report.block(Xt.astype(jnp.bfloat16))
    xla = jax.jit(value_and_grad_t)
    candidates: dict[str, tuple] = {
        "ceiling|float32": (jax.jit(jnp.sum), (Xt,)),
        "copy|float32": (jax.jit(jnp.negative), (Xt,)),
    }
    errors: dict[str, float] = {}
    failed: list[dict[str, Any]] = []
    for storage, X in storages.items():
        ref = _reference64(params, X, y, s)
        arguments = (params, X, y, s, 1e-4)
        variants = {"xla": (xla, {})}
        if supports(n, K, X.dtype, "gpu"):
            variants["fused"] = (jax.jit(fused_value_and_grad_t), {})
            if getattr(args, "sweep", False):
                for kw in _sweep_variants(n, K):
                    name = "fused " + " ".join(f"{k}={v}" for k, v in kw.items())
                    fn = jax.jit(functools.partial(fused_value_and_grad_t, **kw))
                    variants[name] = (fn, kw)
        for name, (fn, _) in variants.items():
            try:
                out = fn(*arguments)
            except Exception as err:  # a sweep setting may not compile (shared memory): say so
                if name in ("xla", "fused"):
                    raise
                failed.append({"variant": name, "X": storage, "error": str(err)[:200]})
                report.log(f"    {name}, X {storage}: failed: {str(err)[:200]}")
                continue
            errors[f"{name}|{storage}"] = max(_max_rel(out[1], ref[1]), _max_rel(out[0], ref[0]))
            candidates[f"{name}|{storage}"] = (fn, arguments)
    report.log(f"  {m:,} x {n}, {problem}: {len(candidates)} candidates x {args.repeats} rounds")
    timings = _burst_timing(candidates, args.repeats)
    nbytes = Xt.size * 4
    read_bw = nbytes / timings["ceiling|float32"].median
    copy_bw = 2 * nbytes / timings["copy|float32"].median
    rows = []
    for key, t in timings.items():
        variant, storage = key.split("|")
        bytes_x = nbytes // 2 if storage == "bfloat16" else nbytes
        gradient = variant not in ("ceiling", "copy")
        rows.append(
            {
                "m": m,
                "n": n,
                "problem": problem,
                "variant": variant,
                "X": storage,
                "median_ms": t.median * 1e3,
                "min_ms": t.min * 1e3,
                "GB/s": (2 * nbytes if variant == "copy" else bytes_x) / t.median / 1e9,
                "copy GB/s": copy_bw / 1e9 if variant == "copy" else None,
                "x_floor": t.median / (bytes_x / read_bw) if gradient else None,
                "err vs f64": errors.get(key),
            }
        )
    for r in rows:
        if r["variant"].startswith("fused"):
            xla_row = next(x for x in rows if x["variant"] == "xla" and x["X"] == r["X"])
            r["speedup vs xla"] = xla_row["median_ms"] / r["median_ms"]
    for f in failed:
        rows.append({"m": m, "n": n, "problem": problem, **f})
    del Xt, storages
    return rows


def _smoke_without_gpu(args: argparse.Namespace) -> dict[str, Any]:
    """No GPU: the fused kernel in interpret mode at a tiny size, against the XLA gradient."""
    import jax

    from jaxlogreg.core.gradients import value_and_grad_t
    from jaxlogreg.kernels.fused import fused_value_and_grad_t

    platform = jax.default_backend()
    msg = (
        f"no GPU: JAX's default backend is {platform!r}; the compiled (Triton) kernel cannot "
        "run here, so the fused kernel ran in Pallas interpret mode at a tiny size as a smoke "
        "test (no timings); run on a CUDA machine: bash benchmarks/gpu_check.sh"
    )
    report.log(f"[gpu_roofline] {msg}")
    rows = []
    reference = jax.jit(value_and_grad_t)
    for K in (2, 3):
        Xt, params, y, s = _problem(300, 7, K, args.seed)
        start = time.perf_counter()
        J, g = report.block(fused_value_and_grad_t(params, Xt, y, s, 1e-4, interpret=True))
        seconds = time.perf_counter() - start
        J_ref, g_ref = reference(params, Xt, y, s, 1e-4)
        rows.append(
            {
                "m": 300,
                "n": 7,
                "problem": "binary" if K == 2 else f"softmax K={K}",
                "variant": "fused (interpret)",
                "X": "float32",
                "first_call_s": seconds,
                "err vs xla": max(_max_rel(g, g_ref), _max_rel(J, J_ref)),
            }
        )
    return {
        "config": {"platform": platform, "sizes": ["300x7"], "quick": args.quick},
        "rows": rows,
        "notes": [msg],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    from benchmarks.roofline import parse_size

    if jax.default_backend() != "gpu":
        return _smoke_without_gpu(args)
    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))]
    if args.classes < 3:
        raise ValueError(f"--classes must be >= 3 (the softmax rows), got {args.classes}")
    rows = []
    for m, n in sizes:
        for K in (2, args.classes):
            rows += _measure(m, n, K, args)
    largest = max(sizes, key=lambda s: s[0] * s[1])
    at = f"{largest[0]:,} x {largest[1]}"
    targets = []
    for r in rows:
        if (r["m"], r["n"]) == largest and r["variant"] == "fused":
            targets.append(
                report.target(
                    f"fused gradient, {r['problem']}, X {r['X']}, {at}",
                    r["x_floor"],
                    TARGET_GPU,
                    "time / floor",
                )
            )
    fused_rows = [r for r in rows if r["variant"].startswith("fused")]
    return {
        "config": {
            "sizes": [f"{m}x{n}" for m, n in sizes],
            "classes": args.classes,
            "repeats": args.repeats,
            "quick": args.quick,
            "platform": "gpu",
            "device": str(jax.devices()[0].device_kind),
        },
        "rows": rows,
        "columns": [
            "m",
            "n",
            "problem",
            "variant",
            "X",
            "median_ms",
            "min_ms",
            "GB/s",
            "copy GB/s",
            "x_floor",
            "speedup vs xla",
            "err vs f64",
        ],
        "targets": targets,
        "notes": [
            (
                "x_floor = median time / (bytes(X) / read bandwidth); the read bandwidth is "
                "that of jnp.sum over the float32 Xt, measured in the same interleaved rounds; "
                "copy GB/s counts bytes read and written by -Xt."
            ),
            (
                "Each sample is the mean of a burst of back-to-back calls (one block at the "
                "end), so per-call dispatch overhead is hidden as it is in a jitted training "
                "loop; median over rounds."
            ),
            (
                "err vs f64: max-norm relative error of J and the gradient against float64 "
                "computed from the same stored X (bf16 rows: the bf16 values). XLA's float32 "
                "products on NVIDIA GPUs default to one-pass TF32, hence its ~1e-4; the fused "
                "binary kernel has no matrix product, the softmax one uses 3xTF32 (median of "
                f"fused rows: {statistics.median([r['err vs f64'] for r in fused_rows]) if fused_rows else None})."
            ),
        ],
    }


if __name__ == "__main__":
    from benchmarks import REGISTRY, main

    REGISTRY.setdefault("gpu_roofline", "benchmarks.gpu_roofline")
    raise SystemExit(main(["gpu_roofline", *sys.argv[1:]]))
