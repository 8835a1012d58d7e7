"""Shared benchmark machinery: machine description, timing, and writing ``<name>.json`` + ``<name>.md``.

Timing rules (../../shared/docs/perf-notes.md, "Misleading benchmarks" in the style guide):

- every call is followed by ``block_until_ready`` (JAX dispatches asynchronously);
- the first call is a warm-up and is timed separately: for a jitted function it includes tracing
  and compilation; :func:`compile_seconds` measures compilation alone with
  ``jax.jit(f).lower(*args).compile()``;
- steady state is the **median** of ``repeats`` calls (the minimum is recorded too);
- candidates that are compared with each other are timed **interleaved** (round-robin,
  :func:`time_interleaved`), so that load from other processes on a shared machine hits all of
  them alike and their ratios stay meaningful even when absolute times drift.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_VERSION_PACKAGES = ("jax", "jaxlib", "optax", "numpy", "scikit-learn", "torch", "matplotlib")


# ----------------------------------------------------------------------------------------------
# Machine description


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _accelerators() -> list[str]:
    try:
        import jax

        return [f"{d.platform}:{d.device_kind}" for d in jax.devices() if d.platform != "cpu"]
    except RuntimeError:
        return []


def cpu_snapshot() -> dict[str, float] | None:
    """Machine-wide CPU seconds (busy, total, steal) from /proc/stat and this process's own.

    Two snapshots give :func:`cpu_share`: how much of the machine other processes used while a
    benchmark ran, the best single indicator of how noisy its numbers are. None off Linux.
    """
    import resource

    try:
        with open("/proc/stat", encoding="utf-8") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields + [0] * (8 - len(fields))
    own = sum(
        r.ru_utime + r.ru_stime
        for r in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    return {
        "busy": (user + nice + system + irq + softirq) / tick,
        "total": sum(fields) / tick,
        "steal": steal / tick,
        "own": own,
    }


def cpu_share(start: dict[str, float] | None, end: dict[str, float] | None) -> dict[str, Any]:
    """Percent of the machine's CPU time used by other processes / stolen by the hypervisor."""
    if not start or not end:
        return {"others_cpu_percent": None, "steal_percent": None}
    total = end["total"] - start["total"]
    if total <= 0:
        return {"others_cpu_percent": None, "steal_percent": None}
    others = (end["busy"] - start["busy"]) - (end["own"] - start["own"])
    return {
        "others_cpu_percent": round(max(0.0, 100.0 * others / total), 1),
        "steal_percent": round(100.0 * (end["steal"] - start["steal"]) / total, 1),
    }


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, accelerators, library versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "accelerators": _accelerators(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in _VERSION_PACKAGES},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_at_start": load,
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_summary(info: Mapping[str, Any]) -> str:
    """One line: "Intel Xeon ..., 2 cores, 23.5 GiB, no GPU; jax 0.10.2, ..."."""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    accel = ", ".join(info["accelerators"]) or "no GPU"
    return (
        f"{info['cpu']}, {info['usable_cores']} cores, {info['memory_gib']} GiB RAM, {accel}; "
        f"Python {info['python']}, {versions}"
    )


# ----------------------------------------------------------------------------------------------
# Timing


def block(x: Any) -> Any:
    """Wait for ``x`` to be computed: JAX arrays (any pytree) block; NumPy/torch are synchronous."""
    try:
        import jax

        return jax.block_until_ready(x)
    except ImportError:  # pragma: no cover - jax is a dependency
        return x


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "min_s": self.min, "n": len(self.times)}


def call_seconds(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Seconds of one blocking call of ``fn(*args)``, and its result."""
    start = time.perf_counter()
    out = block(fn(*args))
    return time.perf_counter() - start, out


def time_fn(
    fn: Callable[..., Any], *args: Any, repeats: int = 5, warmup: int = 1
) -> tuple[float, Timing]:
    """First-call seconds (including compilation for a jitted ``fn``) and steady-state timing.

    The first call counts as the first of ``warmup`` warm-up calls; then ``repeats`` timed calls.
    """
    first, _ = call_seconds(fn, *args)
    for _ in range(warmup - 1):
        call_seconds(fn, *args)
    return first, Timing(tuple(call_seconds(fn, *args)[0] for _ in range(max(1, repeats))))


def time_interleaved(
    candidates: Mapping[str, tuple[Callable[..., Any], Sequence[Any]]],
    repeats: int = 5,
    warmup: int = 1,
) -> dict[str, Timing]:
    """Time ``{name: (fn, args)}`` interleaved: one call of each per round, ``repeats`` rounds.

    Every candidate is called ``warmup`` times first (compilation). Interleaving makes the
    candidates share whatever load the machine has, so ratios between them are fair. Each round
    calls them in a new order (seeded, so runs repeat): a call can run slower right after a
    heavy one (measured: 4-5 ms on a 17 ms kernel right after ``jnp.sum`` over 400 MB, on a
    2-core EPYC), and a fixed order would charge that to the same candidate every round.
    """
    for fn, args in candidates.values():
        for _ in range(warmup):
            call_seconds(fn, *args)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    order = random.Random(0)
    for _ in range(max(1, repeats)):
        for name in order.sample(names, len(names)):
            fn, args = candidates[name]
            times[name].append(call_seconds(fn, *args)[0])
    return {name: Timing(tuple(t)) for name, t in times.items()}


def compile_seconds(fn: Callable[..., Any], *args: Any, **static: Any) -> float:
    """Seconds to trace, lower and compile ``jax.jit(fn)`` for ``args`` (no execution)."""
    import jax

    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    start = time.perf_counter()
    jitted.lower(*args, **static).compile()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# Results


def target(name: str, measured: float | None, threshold: float, what: str) -> dict[str, Any]:
    """A target ``measured <= threshold``, e.g. ``target("gradient", 1.8, 1.5, "time / floor")``."""
    ok = measured is not None and math.isfinite(measured) and measured <= threshold
    return {
        "target": name,
        "what": what,
        "measured": measured,
        "threshold": threshold,
        "met": bool(ok),
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return str(x)


def fmt(x: Any) -> str:
    """Compact cell text: 4 significant digits for floats, ``-`` for missing."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float | np.floating):
        x = float(x)
        if not math.isfinite(x):
            return str(x)
        if x == 0:
            return "0"
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.3g}"
        return f"{x:.4g}"
    return str(x).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of ``rows``; columns in order of first appearance by default."""
    if not rows:
        return "_(no rows)_\n"
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(fmt(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def targets_markdown(targets: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| target | measured | threshold | met |", "|---|---|---|---|"]
    for t in targets:
        met = "**met**" if t["met"] else "**not met**"
        lines.append(
            f"| {t['target']} ({t['what']}) | {fmt(t['measured'])} | <= {fmt(t['threshold'])} "
            f"| {met} |"
        )
    return "\n".join(lines) + "\n"


def to_markdown(result: Mapping[str, Any]) -> str:
    """The markdown report of one benchmark result (see :func:`write_result`)."""
    parts = [f"# Benchmark: {result['benchmark']}\n", f"{result.get('description', '')}\n"]
    machine = result.get("machine")
    if machine:
        parts.append(f"Machine: {machine_summary(machine)}.  ")
        parts.append(
            f"Measured {machine['date_utc']}; load average (1, 5, 15 min) at start "
            f"{machine['load_average_at_start']}, at end {machine.get('load_average_at_end')}; "
            f"share of the machine's CPU time used by other processes during the run "
            f"{machine.get('others_cpu_percent')}% (hypervisor steal "
            f"{machine.get('steal_percent')}%); "
            f"XLA_FLAGS={machine['xla_flags']!r}.\n"
        )
    config = result.get("config")
    if config:
        parts.append("Settings: " + ", ".join(f"`{k}={v}`" for k, v in config.items()) + "\n")
    if result.get("targets"):
        parts.append("## Targets\n")
        parts.append(targets_markdown(result["targets"]))
    parts.append("## Results\n")
    parts.append(markdown_table(result.get("rows", []), result.get("columns")))
    for title, key in (("Extra tables", "tables"),):
        for name, rows in (result.get(key) or {}).items():
            parts.append(f"### {name}\n")
            parts.append(markdown_table(rows))
    for plot in result.get("plots", []):
        parts.append(f"![{Path(plot).stem}]({Path(plot).name})\n")
    if result.get("notes"):
        parts.append("## Notes\n")
        parts.extend(f"- {note}" for note in result["notes"])
        parts.append("")
    return "\n".join(parts) + "\n"


def write_result(name: str, result: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, **result}
    payload.setdefault("machine", machine_info())
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(payload), encoding="utf-8")
    return json_path, md_path


def log(message: str) -> None:
    """Progress on stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)
