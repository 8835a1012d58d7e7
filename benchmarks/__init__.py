"""Benchmarks of jaxlogreg: a folder of scripts next to the package, not part of it.

Run from a checkout (the repository root), with jaxlogreg installed or importable from there::

    python benchmarks/roofline.py --quick          # one benchmark
    python benchmarks/run_all.py --quick           # every benchmark
    python -m benchmarks roofline --quick          # the same, through this package
    python -m benchmarks all --skip scaling

Each benchmark is a module with the same small protocol::

    DESCRIPTION: str
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> dict: ...   # JSON-serialisable, with "rows" for the table

:func:`main` adds the common options (``--out``, ``--quick``, ``--repeats``), runs one benchmark
(or ``all``), and writes ``<name>.json`` and ``<name>.md`` through :mod:`benchmarks.report`.
Modules are imported lazily, and a registered module that is missing is skipped, not an error.

Benchmarks run without jaxlogreg's persistent compilation cache (``JAXLOGREG_NO_CACHE=1`` is
set here, before jaxlogreg is imported, unless the caller set it), so that a "first call" is a
first compilation; ``time_to_solution`` times the cache itself in fresh processes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("JAXLOGREG_NO_CACHE", "1")

REGISTRY: dict[str, str] = {
    "vectorization": "benchmarks.vectorization",
    "roofline": "benchmarks.roofline",
    "time_to_solution": "benchmarks.time_to_solution",
    "scaling": "benchmarks.scaling",
    "devices": "benchmarks.devices",
    "gpu_roofline": "benchmarks.gpu_roofline",
    "cv": "benchmarks.cv",
    "sparse": "benchmarks.sparse",
    "sparse_path": "benchmarks.sparse_path",
    "inference": "benchmarks.inference",
    "softmax": "benchmarks.softmax",
}
DEFAULT_OUT = "benchmarks/results"


def load(name: str) -> types.ModuleType | None:
    """Import the benchmark module ``name``; None when it is registered but not installed."""
    if name not in REGISTRY:
        raise ValueError(f"benchmark must be one of {sorted(REGISTRY)}, got {name!r}")
    module_name = REGISTRY[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            return None
        raise


def available() -> list[str]:
    """Names of the registered benchmarks that can be imported, in registry order."""
    return [name for name in REGISTRY if load(name) is not None]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"directory for <name>.json and <name>.md (default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and few repeats: a smoke test, seconds"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls per measurement after warm-up (default: 5, or 2 with --quick)",
    )


def build_parser(names: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of :func:`main`: one sub-command per available benchmark, plus ``all``."""
    names = available() if names is None else list(names)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run jaxlogreg benchmarks; results go to <out>/<name>.json and .md.",
    )
    sub = parser.add_subparsers(
        dest="benchmark", required=True, metavar="{" + ",".join([*names, "all"]) + "}"
    )
    for name in names:
        module = load(name)
        p = sub.add_parser(
            name,
            help=module.DESCRIPTION.split("\n")[0],
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_common_arguments(p)
        module.add_arguments(p)
    p = sub.add_parser("all", help="every available benchmark with its default settings")
    add_common_arguments(p)
    p.add_argument("--skip", nargs="*", default=[], choices=names, help="benchmarks to leave out")
    return parser


def _finish_args(args: argparse.Namespace) -> argparse.Namespace:
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be an integer >= 1, got {args.repeats}")
    return args


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run benchmark ``name`` with parsed ``args``, write its JSON/MD, print the markdown table."""
    from benchmarks import report

    module = load(name)
    if module is None:
        raise ValueError(f"benchmark {name!r} is registered but its module is not installed")
    report.log(f"[bench] {name}: running (quick={args.quick}, repeats={args.repeats})")
    machine, cpu_start = report.machine_info(), report.cpu_snapshot()
    result = module.run(args)
    machine["load_average_at_end"] = report.machine_info()["load_average_at_start"]
    machine.update(report.cpu_share(cpu_start, report.cpu_snapshot()))
    result = {"description": module.DESCRIPTION, "machine": machine, **result}
    json_path, md_path = report.write_result(name, result, args.out)
    print(report.markdown_table(result.get("rows", []), result.get("columns")))
    if result.get("targets"):
        print(report.targets_markdown(result["targets"]))
    report.log(f"[bench] {name}: wrote {json_path} and {md_path}")
    return result


def _module_args(name: str, common: argparse.Namespace) -> argparse.Namespace:
    """A benchmark's default arguments with the common options of ``all`` applied."""
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    load(name).add_arguments(parser)
    args = parser.parse_args([])
    for key in ("out", "quick", "repeats"):
        setattr(args, key, getattr(common, key))
    return args


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks <name>|all [options]``; returns the process exit status.

    ``python benchmarks/<name>.py [options]`` is ``main([name, *options])`` and
    ``python benchmarks/run_all.py [options]`` is ``main(["all", *options])``.
    """
    names = available()
    args = _finish_args(build_parser(names).parse_args(argv))
    if args.benchmark != "all":
        run_one(args.benchmark, args)
        return 0
    failed = []
    for name in names:
        if name in args.skip:
            continue
        try:
            run_one(name, _module_args(name, args))
        except Exception as err:  # noqa: BLE001 -- keep going: one broken benchmark must not hide the others
            from benchmarks import report

            report.log(f"[bench] {name}: FAILED: {type(err).__name__}: {err}")
            failed.append(name)
    if failed:
        print(f"failed benchmarks: {failed}", file=sys.stderr)
        return 1
    return 0


__all__ = ["REGISTRY", "available", "build_parser", "load", "main", "run_one"]
