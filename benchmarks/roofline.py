"""Roofline of one gradient and one training step against the memory-bandwidth floor.

A full-batch gradient must read X (m x n) at least once, so ``floor = bytes(X) / ceiling``,
where the ceiling is the bandwidth of a jitted reduction (``jnp.sum``) over an array of the same
size, measured in the same run and interleaved with the candidates. Each candidate is reported
as achieved GB/s (bytes(X) / time) and ``x_floor = time / floor``.

Candidates (float32 unless said otherwise; every one returns J and (dw, db)):

- ``hand (m,n) X.T@dz`` / ``hand (m,n) dz@X``: the public layout, two forms of the same product;
- ``hand (n,m) library``: :func:`jaxlogreg.core.gradients.value_and_backward_t`, the layout training
  uses (X transposed once before the loop);
- ``jax.grad (m,n)`` / ``jax.grad (n,m)``: autodiff of the objective;
- ``chunked (n,m) C=...``: a single pass over X, ``lax.scan`` over sample chunks of Xt doing
  forward, ``dz`` and ``dw += Xt_c dz_c`` while the chunk is in cache (:func:`chunked_value_and_grad_t`);
- ``hand (n,m) bf16 X``: the library's ``x_dtype="bfloat16"`` storage (half the bytes);
- ``native (m,n) C kernel``: :func:`jaxlogreg.kernels.native.native_rows_value_and_grad`, the
  single-read C kernel on X as the user gives it (rows), which fits use (CPU only, when a C
  compiler is there to build it);
- ``softmax K=... native (m,n)`` / ``softmax K=... library (n,m)``: the softmax gradient
  (``--classes``), the C kernel on rows against XLA's (errors against XLA's);
- ``step ...``: one full GD training step (gradient + ``optax`` update + apply), as
  :mod:`jaxlogreg.training.loop` runs it.

Targets: the gradient training uses and its GD step at the largest size within 1.5x the floor
on CPU (1.3x on GPU): the C kernel where :func:`jaxlogreg.kernels.native.supports` that size,
else the library's XLA gradient (``hand (n,m) library``). Pallas kernels are not tried here
(GPU only; ``benchmarks/gpu_roofline.py``).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report

DESCRIPTION = (__doc__ or "").strip()
DEFAULT_SIZES = ("10000x100", "100000x100", "1000000x100", "3000000x100")
QUICK_SIZES = ("1000x10", "5000x20")
DEFAULT_CHUNKS = (2048, 8192)
TARGET_CPU, TARGET_GPU, TARGET_SOFTMAX = 1.5, 1.3, 1.5
LIBRARY, NATIVE_ROWS = "hand (n,m) library", "native (m,n) C kernel"
DEFAULT_CLASSES = (10,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", default=None, metavar="MxN",
                        help=f"problem sizes m x n (default {' '.join(DEFAULT_SIZES)})")
    parser.add_argument("--chunks", nargs="*", type=int, default=None,
                        help=f"sample-chunk sizes of the single-pass scan (default {DEFAULT_CHUNKS})")
    parser.add_argument("--classes", nargs="*", type=int, default=None,
                        help=f"softmax K to time, the C kernel against XLA (default "
                        f"{DEFAULT_CLASSES}; none given: binary only)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16-storage rows")
    parser.add_argument("--no-slow", action="store_true",
                        help="skip the slow (m,n) X.T@dz rows at sizes above 10^6 elements")
    parser.add_argument("--seed", type=int, default=0)


def parse_size(text: str) -> tuple[int, int]:
    """``"1000000x100"`` -> ``(1000000, 100)``."""
    try:
        m, n = (int(float(v)) for v in text.lower().split("x"))
    except ValueError as err:
        raise ValueError(f"size must look like MxN (e.g. 1000000x100), got {text!r}") from err
    if m < 1 or n < 1:
        raise ValueError(f"size must have m, n >= 1, got {text!r}")
    return m, n


# ----------------------------------------------------------------------------------------------
# The candidates. All take (params, X_or_Xt, y) and return (J, Params(dw, db)).


def _scale(m: int, dtype: Any) -> Any:
    import jax.numpy as jnp

    return jnp.asarray(1.0 / m, dtype)


def hand_mn(params, X, y, transposed: bool = True):
    """Public layout X (m, n), ``dw = X.T @ dz`` (or ``dz @ X``, the same product written the
    other way)."""
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.loss import binary_cross_entropy
    from jaxlogreg.core.model import Params

    z = X @ params.w + params.b
    s = _scale(X.shape[0], z.dtype)
    dz = s * (jax.nn.sigmoid(z) - y)
    dw = X.T @ dz if transposed else dz @ X
    return jnp.sum(s * binary_cross_entropy(z, y)), Params(dw, jnp.sum(dz))


def library_nm(params, Xt, y):
    """The library's hand-written gradient on Xt (n, m)."""
    from jaxlogreg.core.gradients import value_and_backward_t

    return value_and_backward_t(params, Xt, y)


def autodiff_nm(params, Xt, y):
    import jax

    from jaxlogreg.core.loss import objective_t

    return jax.value_and_grad(lambda p: objective_t(p, Xt, y))(params)


def autodiff_mn(params, X, y):
    return autodiff_nm(params, X.T, y)


def chunked_value_and_grad_t(params, Xt, y, chunk_size: int = 2048):
    """J and (dw, db) in ONE pass over Xt (n, m): ``lax.scan`` over sample chunks.

    For chunk c: ``z_c = w Xt_c + b``, ``dz_c = (σ(z_c) - y_c) / m``, ``dw += Xt_c dz_c``; the
    chunk is read from memory once and reused from cache for the backward product. Samples
    beyond the last whole chunk are done directly. Binary, unweighted, no penalty (benchmark
    variant: compare with :func:`jaxlogreg.core.gradients.value_and_backward_t`).
    """
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.loss import binary_cross_entropy
    from jaxlogreg.core.model import Params

    _n, m = Xt.shape
    w, b = params
    s = _scale(m, w.dtype)
    C = min(chunk_size, m)
    k = m // C

    def part(xc, yc):
        z = w @ xc + b
        dz = s * (jax.nn.sigmoid(z) - yc)
        return jnp.sum(s * binary_cross_entropy(z, yc)), xc @ dz, jnp.sum(dz)

    def body(carry, i):
        xc = jax.lax.dynamic_slice_in_dim(Xt, i * C, C, axis=1)
        yc = jax.lax.dynamic_slice_in_dim(y, i * C, C)
        return jax.tree.map(jnp.add, carry, part(xc, yc)), None

    zero = jnp.zeros((), w.dtype)
    (J, dw, db), _ = jax.lax.scan(body, (zero, jnp.zeros_like(w), zero), jnp.arange(k))
    if k * C < m:
        J_r, dw_r, db_r = part(Xt[:, k * C :], y[k * C :])
        J, dw, db = J + J_r, dw + dw_r, db + db_r
    return J, Params(dw, db)


def native_mn(params, X, y):
    """The single-read C kernel on X (m, n) in rows (binary or softmax, as ``params``)."""
    from jaxlogreg import kernels
    from jaxlogreg.core.loss import example_scale

    s = example_scale(None, X.shape[0], X.dtype)
    return kernels.get("native_rows").value_and_grad(params, X, y, s, 0.0)


def library_softmax_nm(params, Xt, y):
    """XLA's gradient (the library's reference) on Xt (n, m), any model."""
    from jaxlogreg.core.gradients import value_and_grad_t
    from jaxlogreg.core.loss import example_scale

    return value_and_grad_t(params, Xt, y, example_scale(None, Xt.shape[1], Xt.dtype), 0.0)


def training_variant(m: int, n: int) -> str:
    """The variant whose gradient the training loop uses for binary float32 X of this size
    (the kernel table's choice on this backend)."""
    import jax

    from jaxlogreg import kernels

    shape = kernels.Shape(n, m, 2, "float32", "float32", jax.default_backend())
    return NATIVE_ROWS if kernels.choose(shape).name == "native_rows" else LIBRARY


def make_step(grad_fn: Callable, learning_rate: float = 0.1) -> Callable:
    """One GD training step as the training loop runs it: gradient, optimizer update, apply."""
    import jax
    import optax

    from jaxlogreg.training.solvers import gradient_descent

    optimizer = gradient_descent(learning_rate)

    def step(params, X, y):
        value, grads = grad_fn(params, X, y)
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        return value, optax.apply_updates(params, updates)

    return jax.jit(step)


# ----------------------------------------------------------------------------------------------


def _data(m: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n), dtype=np.float32)
    w = rng.standard_normal(n).astype(np.float32) / np.sqrt(n)
    y = (rng.random(m, dtype=np.float32) < 1 / (1 + np.exp(-(X @ w)))).astype(np.float32)
    return X, y


def _softmax_candidates(K: int, X, Xt, seed: int, grads: dict, candidates: dict,
                        errors: dict) -> None:
    """The softmax gradient with K classes, the C kernel on X against XLA's on Xt, added to
    ``grads``, ``candidates`` and ``errors`` (max |dW - XLA's dW|)."""
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.model import Params

    m, n = X.shape
    params = Params(jnp.full((n, K), 0.01, jnp.float32), jnp.zeros((K,), jnp.float32))
    y = jnp.asarray(np.random.default_rng(seed).integers(0, K, m), jnp.int32)
    reference = jax.jit(library_softmax_nm)(params, Xt, y)[1].w
    for name, fn, data, layout in (
        (f"softmax K={K} library (n,m)", library_softmax_nm, Xt, "(n,m)"),
        (f"softmax K={K} native (m,n)", native_mn, X, "(m,n)"),
    ):
        jitted = jax.jit(fn)
        grads[name] = (fn, data, layout)
        candidates[f"gradient: {name}"] = (jitted, (params, data, y))
        errors[name] = float(jnp.max(jnp.abs(jitted(params, data, y)[1].w - reference)))


def _measure_size(m: int, n: int, args: argparse.Namespace, chunks, classes,
                  gpu: bool) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from jaxlogreg.core.model import Params
    from jaxlogreg.kernels import native

    X_np, y_np = _data(m, n, args.seed)
    X = jnp.asarray(X_np)
    Xt = jnp.asarray(np.ascontiguousarray(X_np.T))
    del X_np
    y = jnp.asarray(y_np)
    params = Params(jnp.full((n,), 0.01, jnp.float32), jnp.zeros((), jnp.float32))
    nbytes = X.size * X.dtype.itemsize
    slow_ok = not (args.no_slow and m * n > 10**6)

    grads: dict[str, tuple[Callable, Any, str]] = {}  # name -> (fn, X, layout)
    if slow_ok:
        grads["hand (m,n) X.T@dz"] = (hand_mn, X, "(m,n)")
    grads["hand (m,n) dz@X"] = (functools.partial(hand_mn, transposed=False), X, "(m,n)")
    grads[LIBRARY] = (library_nm, Xt, "(n,m)")
    if not gpu and native.available():
        grads[NATIVE_ROWS] = (native_mn, X, "(m,n)")
    grads["jax.grad (m,n)"] = (autodiff_mn, X, "(m,n)")
    grads["jax.grad (n,m)"] = (autodiff_nm, Xt, "(n,m)")
    for C in chunks:
        if C < m:
            chunked = functools.partial(chunked_value_and_grad_t, chunk_size=C)
            grads[f"chunked (n,m) C={C}"] = (chunked, Xt, "(n,m)")
    Xt_bf16 = None
    if not args.no_bf16:
        Xt_bf16 = Xt.astype(jnp.bfloat16)
        grads["hand (n,m) bf16 X"] = (library_nm, Xt_bf16, "(n,m) bf16")

    ceiling_fn = jax.jit(jnp.sum)
    candidates: dict[str, tuple[Callable, tuple]] = {"ceiling: jnp.sum": (ceiling_fn, (Xt,))}
    reference = jax.jit(library_nm)(params, Xt, y)[1].w
    errors = {}
    for name, (fn, data, _) in grads.items():
        jitted = jax.jit(fn)
        candidates[f"gradient: {name}"] = (jitted, (params, data, y))
        errors[name] = float(jnp.max(jnp.abs(jitted(params, data, y)[1].w - reference)))
    if not gpu and native.available():
        for K in classes:
            _softmax_candidates(K, X, Xt, args.seed, grads, candidates, errors)
    step_names = ["hand (m,n) dz@X", LIBRARY, "jax.grad (m,n)", "jax.grad (n,m)"]
    step_names += [NATIVE_ROWS] if NATIVE_ROWS in grads else []
    step_names += [k for k in grads if k.startswith("chunked")][:1]
    if slow_ok:
        step_names.insert(0, "hand (m,n) X.T@dz")
    for name in step_names:
        fn, data, _ = grads[name]
        candidates[f"step: {name}"] = (make_step(fn), (params, data, y))

    report.log(f"  {m:,} x {n}: {len(candidates)} candidates x {args.repeats} rounds")
    timings = report.time_interleaved(candidates, repeats=args.repeats, warmup=2)
    ceiling = timings["ceiling: jnp.sum"]
    ceiling_gbps = nbytes / ceiling.median / 1e9
    rows = []
    for key, t in timings.items():
        op, name = key.split(": ", 1)
        if op == "ceiling":
            layout, bytes_read = "(n,m)", nbytes
        else:
            layout = grads[name][2]
            bytes_read = nbytes // 2 if "bf16" in name else nbytes
        floor = bytes_read / (ceiling_gbps * 1e9)
        rows.append(
            {
                "m": m,
                "n": n,
                "MB(X)": bytes_read / 1e6,
                "op": op,
                "variant": name,
                "layout": layout,
                "median_ms": t.median * 1e3,
                "min_ms": t.min * 1e3,
                "GB/s": bytes_read / t.median / 1e9,
                "x_floor": t.median / floor,
                "x_floor_f32": t.median / (nbytes / (ceiling_gbps * 1e9)),
                # best case of both: min time over bytes(X) / (bytes(Xt) / min ceiling time)
                "x_floor_min": t.min / (bytes_read / nbytes * ceiling.min),
                "max|dw - library|": errors.get(name) if op == "gradient" else None,
            }
        )
    del X, Xt, Xt_bf16
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))]
    chunks = args.chunks if args.chunks is not None else ((256,) if args.quick else DEFAULT_CHUNKS)
    classes = args.classes if args.classes is not None else ((3,) if args.quick else
                                                             DEFAULT_CLASSES)
    gpu = any(d.platform == "gpu" for d in jax.devices())
    threshold = TARGET_GPU if gpu else TARGET_CPU
    rows = []
    for m, n in sizes:
        rows += _measure_size(m, n, args, chunks, classes, gpu)

    largest = max(sizes, key=lambda s: s[0] * s[1])

    def ratio(op: str, variant: str) -> float | None:
        for r in rows:
            if (r["m"], r["n"]) == largest and r["op"] == op and r["variant"] == variant:
                return r["x_floor"]
        return None

    at = f"{largest[0]:,} x {largest[1]}"
    grad_rows = [r for r in rows if (r["m"], r["n"]) == largest and r["op"] == "gradient"]
    best = min(grad_rows, key=lambda r: r["x_floor_f32"])
    used = LIBRARY if gpu else training_variant(*largest)
    targets = [
        report.target(
            f"training's gradient ({used}), {at}", ratio("gradient", used), threshold,
            "time / floor",
        ),
        report.target(
            f"training's GD step ({used}), {at}", ratio("step", used), threshold, "time / floor"
        ),
        report.target(
            f"best gradient variant ({best['variant']}), {at}",
            best["x_floor_f32"],
            threshold,
            "time / float32 floor",
        ),
    ]
    targets += [report.target(f"gradient ({r['variant']}), {at}", r["x_floor"], TARGET_SOFTMAX,
                              "time / floor")
                for r in grad_rows if r["variant"].startswith("softmax") and "native" in r["variant"]]
    ceiling_rows = [r for r in rows if r["op"] == "ceiling"]
    return {
        "config": {
            "sizes": [f"{m}x{n}" for m, n in sizes],
            "chunks": list(chunks),
            "classes": list(classes),
            "repeats": args.repeats,
            "dtype": "float32",
            "quick": args.quick,
            "platform": jax.devices()[0].platform,
        },
        "rows": rows,
        "columns": ["m", "n", "op", "variant", "median_ms", "min_ms", "GB/s", "x_floor",
                    "x_floor_min", "max|dw - library|"],
        "ceiling_gbps": {f"{r['m']}x{r['n']}": r["GB/s"] for r in ceiling_rows},
        "targets": targets,
        "notes": [
            (
                "x_floor = median time / (bytes(X) / ceiling), the ceiling being the median "
                "bandwidth of jnp.sum over Xt measured in the same interleaved rounds; for the "
                "bf16 row bytes(X) is the bf16 size (the JSON also has x_floor_f32, against the "
                "float32 floor)."
            ),
            (
                "A gradient written as two products (forward w Xt, backward Xt dz) reads X twice, "
                "so its best possible x_floor is about 2; only a single-pass kernel can approach "
                "1: the C kernel (jaxlogreg.kernels.native, on X in rows) on CPUs, the "
                "chunked lax.scan variant written in XLA. Softmax rows: max|dw - library| is "
                "against XLA's softmax gradient."
            ),
            "Pallas (GPU) kernels are measured by benchmarks/gpu_roofline.py, not here.",
        ],
    }


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["roofline", *sys.argv[1:]]))
