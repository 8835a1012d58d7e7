"""Data-parallel training speed against the number of devices (1, 2, 4, 8 simulated CPU devices).

Each device count runs in its own Python process, started with ``jax_num_cpu_devices`` set
before JAX's backend exists (the count cannot change afterwards). In each, X (m, n) is sharded by
rows over a one-axis ``("data",)`` mesh (:mod:`jaxlogreg.scale.sharding`) and we time, after a
warm-up call that compiles:

- ``gradient (jit)``: one J and ∇J evaluation, the compiler inserting the all-reduce;
- ``gradient (shard_map)``: the same with ``shard_map`` and one explicit ``psum``;
- ``gd``: full-batch gradient descent steps inside the jitted training loop;
- ``adam minibatch``: minibatch steps (gather the batch's rows, split it over the devices).

Simulated CPU devices share the machine's cores, so on a small machine the rows show the cost of
partitioning and collectives, not a speed-up; run the same benchmark on a multi-GPU host
(without ``--simulate``) for real scaling.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

DESCRIPTION = (__doc__ or "").strip()
_MARK = "JAXLOGREG_DEVICES_RESULT "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, nargs="+", default=None,
                        help="device counts to run (default 1 2 4 8)")
    parser.add_argument("--m", type=int, default=None, help="examples (200,000; quick 20,000)")
    parser.add_argument("--n", type=int, default=None, help="features (100; quick 32)")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatch size (4096)")
    parser.add_argument("--steps", type=int, default=None, help="gd steps per timing (50)")
    parser.add_argument("--no-simulate", dest="simulate", action="store_false",
                        help="use the real devices instead of simulated CPU devices")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-plots", action="store_true", help="skip devices.png")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))

    def pick(value: int | None, full: int, small: int) -> int:
        return value if value is not None else (small if quick else full)

    return {
        "devices": list(args.devices or [1, 2, 4, 8]),
        "m": pick(args.m, 200_000, 20_000),
        "n": pick(args.n, 100, 32),
        "batch_size": pick(args.batch_size, 4096, 1024),
        "steps": pick(args.steps, 50, 10),
        "repeats": int(getattr(args, "repeats", None) or (2 if quick else 5)),
        "simulate": getattr(args, "simulate", True),
        "seed": args.seed,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run one subprocess per device count; rows of steps/second per mode and device count."""
    settings = _settings(args)
    rows: list[dict[str, Any]] = []
    for count in settings["devices"]:
        rows.extend(_run_worker({**settings, "n_devices": count}))
    base = {r["mode"]: r["steps_per_s"] for r in rows if r["devices"] == min(settings["devices"])}
    for r in rows:
        r["speed-up"] = r["steps_per_s"] / base[r["mode"]] if base.get(r["mode"]) else None
    plots = [] if getattr(args, "no_plots", False) else [_plot(rows, Path(args.out) / "devices.png")]
    return {
        "config": settings,
        "plots": plots,
        "columns": ["devices", "mode", "steps_per_s", "step_ms", "compile_s", "speed-up",
                    "max_abs_diff"],
        "rows": rows,
        "notes": [
            (
                "steps_per_s: gradient evaluations (gradient rows), optimizer steps (gd) or "
                "minibatch steps (adam) per second, steady state after a compiling warm-up call; "
                "compile_s is that first call."
            ),
            (
                "speed-up: against the smallest device count. max_abs_diff: largest |difference| "
                "of the parameters (or gradient) from the single-device result."
            ),
            (
                "Simulated CPU devices share the same cores: these numbers measure the overhead of "
                "sharding and collectives, not real multi-device scaling."
            ),
        ],
    }


def _plot(rows: list[dict[str, Any]], path: Path) -> str:
    """Log-log plot of the time per step against the device count, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sub = [r for r in rows if r["mode"] == mode]
        ax.plot([r["devices"] for r in sub], [r["step_ms"] for r in sub], "o-", label=mode)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("devices")
    ax.set_ylabel("ms per step (median)")
    ax.set_title("time per step against the device count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def _run_worker(settings: dict[str, Any]) -> list[dict[str, Any]]:
    env = dict(os.environ)
    checkout = str(Path(__file__).resolve().parents[1])  # has benchmarks/ (and jaxlogreg/)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (checkout, env.get("PYTHONPATH")) if p)
    if settings["simulate"]:
        env["JAX_PLATFORMS"] = "cpu"
    code = "import sys; from benchmarks import devices; devices._worker_main(sys.argv[1])"
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(settings)],
        capture_output=True, text=True, env=env, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"devices benchmark worker for {settings['n_devices']} devices failed "
            f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(_MARK):])


def _worker_main(settings_json: str) -> None:
    settings = json.loads(settings_json)
    import jax

    if settings["simulate"]:
        jax.config.update("jax_num_cpu_devices", settings["n_devices"])
    rows = _measure(settings)
    print(_MARK + json.dumps(rows), flush=True)


def _timed(fn, *args, repeats: int) -> tuple[float, float, Any]:
    """(first-call seconds, median steady-state seconds, result)."""
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    times.sort()
    return first, times[len(times) // 2], out


def _measure(settings: dict[str, Any]) -> list[dict[str, Any]]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxlogreg import fit
    from jaxlogreg.core.gradients import value_and_backward_t
    from jaxlogreg.core.model import init_params
    from jaxlogreg.scale import sharding
    from jaxlogreg.training import mesh as mesh_layout
    from jaxlogreg.training.data import prepare_data
    from jaxlogreg.training.loop import LoopSpec, init_state, run_segment
    from jaxlogreg.training.pipeline import hyper_of
    from jaxlogreg.training.settings import TrainConfig

    k, m, n, repeats = settings["n_devices"], settings["m"], settings["n"], settings["repeats"]
    mesh = mesh_layout.make_mesh(k)
    rng = np.random.default_rng(settings["seed"])
    X = rng.standard_normal((m, n), dtype=np.float32)
    y = (X[:, 0] + rng.standard_normal(m, dtype=np.float32) > 0).astype(np.float32)
    rows: list[dict[str, Any]] = []

    def row(mode: str, first: float, step_s: float, steps: int, diff: float) -> None:
        rows.append({
            "devices": k, "mode": mode, "steps_per_s": steps / step_s,
            "step_ms": 1e3 * step_s / steps, "compile_s": max(first - step_s, 0.0),
            "max_abs_diff": diff, "m": m, "n": n, "platform": jax.devices()[0].platform,
            "jax": jax.__version__,
        })

    # The single-device reference, on the first device only. No penalty: C = inf.
    config = TrainConfig(C=math.inf, solver="gd", learning_rate=0.5, max_iter=settings["steps"],
                         tol=0.0)
    data1 = prepare_data(X, y, 2, "float32")
    params1 = init_params(n)
    _, ref_g = jax.jit(value_and_backward_t)(params1, *data1)

    data, layout = sharding.shard_data(data1, mesh)
    params = layout.replicate(params1)
    grad_jit = jax.jit(lambda p, d: value_and_backward_t(p, *d))
    grad_map = jax.jit(lambda p, d: sharding.value_and_grad_shard_map(p, d, 0.0, mesh))
    for mode, fn in (("gradient (jit)", grad_jit), ("gradient (shard_map)", grad_map)):
        first, step_s, (_, g) = _timed(fn, params, data, repeats=repeats)
        row(mode, first, step_s, 1, float(np.max(np.abs(np.asarray(g.w) - np.asarray(ref_g.w)))))

    def loop_runner(cfg: TrainConfig):
        hyper = hyper_of(cfg, cfg.l2(m), "float32")
        batch_size = None if cfg.batch_size is None else min(cfg.batch_size, m)
        spec = LoopSpec.of(cfg, batch_size, layout)
        stop = jnp.asarray(cfg.max_iter, jnp.int32)
        # a fresh state per call: run_segment takes over (donates) the one it is given
        return lambda: run_segment(init_state(params, hyper, spec, settings["seed"]), data,
                                   hyper, stop, spec=spec)[0]

    first, step_s, state = _timed(loop_runner(config), repeats=repeats)
    ref = fit(X, y, config)
    row("gd", first, step_s, settings["steps"],
        float(np.max(np.abs(np.asarray(state.params.w) - ref.params.w))))

    batch_size = settings["batch_size"]
    adam = TrainConfig(C=math.inf, solver="adam", learning_rate=1e-3, batch_size=batch_size,
                       max_iter=1, tol=0.0, random_state=settings["seed"])
    first, step_s, state = _timed(loop_runner(adam), repeats=repeats)
    ref = fit(X, y, adam)
    row("adam minibatch", first, step_s, -(-m // batch_size),
        float(np.max(np.abs(np.asarray(state.params.w) - ref.params.w))))
    for r in rows:
        r["batch_size"] = batch_size if r["mode"] == "adam minibatch" else None
    return rows


if __name__ == "__main__":
    from benchmarks import main

    raise SystemExit(main(["devices", *sys.argv[1:]]))
