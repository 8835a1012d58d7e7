"""The tables of ``benchmarks/README.md``, rendered from ``benchmarks/results/*.json``.

The numbers live in the results files only; the README holds them between markers::

    <!-- table: NAME -->
    ...generated, do not edit...
    <!-- /table -->

``python benchmarks/tables.py`` rewrites every marked region from the results;
``--check`` changes nothing and exits with status 1 when the README differs from what the
results render (``tests/test_readme.py`` runs the same check). Cells use
:func:`benchmarks.report.fmt`, the format of the per-benchmark ``<name>.md`` reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import report

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
RESULTS = HERE / "results"
_REGION = re.compile(r"(<!-- table: ([\w-]+) -->\n)(.*?)(<!-- /table -->)", re.DOTALL)
_OPEN = re.compile(r"<!-- table: ([\w-]+) -->")
OPS = ("gradient", "step")  # the roofline's rows apart from the floor's own (op "ceiling")


def load(results: Path, source: str) -> dict[str, Any]:
    """The result ``<results>/<source>`` (a JSON file written by :func:`report.write_result`)."""
    path = results / source
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} is missing (rerun its benchmark)")
    return json.loads(path.read_text(encoding="utf-8"))


def _matches(row: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """``where`` maps a field to a value, or to a tuple of accepted values."""
    return all(row.get(k) in (v if isinstance(v, tuple) else (v,)) for k, v in where.items())


def _rows(results: Path, source: str, key: str | None, where: Mapping[str, Any]) -> list[dict]:
    result = load(results, source)
    rows = result["rows"] if key is None else (result.get("tables") or {}).get(key)
    if rows is None:
        raise ValueError(f"{results / source} has no table {key!r}")
    chosen = [row for row in rows if _matches(row, where)]
    if not chosen:
        raise ValueError(f"{results / source}: no row has {dict(where)}")
    return chosen


def _check_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if not any(c in row for row in rows)]
    if missing:
        raise ValueError(f"{what}: no row has the column(s) {missing}")


@dataclasses.dataclass(frozen=True)
class Table:
    """Some columns of the rows of one results file (``key``: one of its extra tables)."""

    source: str
    columns: tuple[str, ...]
    key: str | None = None
    where: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(self, results: Path) -> str:
        rows = _rows(results, self.source, self.key, self.where)
        _check_columns(rows, self.columns, str(results / self.source))
        return report.markdown_table(rows, self.columns)


@dataclasses.dataclass(frozen=True)
class Pivot:
    """One row per value of ``index``, one column per (value of ``across``, ``values`` field)."""

    source: str
    index: str
    across: str
    values: tuple[str, ...]
    where: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(self, results: Path) -> str:
        rows = _rows(results, self.source, None, self.where)
        _check_columns(rows, (self.index, self.across, *self.values), str(results / self.source))
        groups: dict[Any, dict[str, Any]] = {}
        columns = [self.index]
        for row in rows:
            line = groups.setdefault(row[self.index], {self.index: row[self.index]})
            for value in self.values:
                column = f"{row[self.across]}: {value}"
                line[column] = row.get(value)
                columns += [column] if column not in columns else []
        return report.markdown_table(list(groups.values()), columns)


def sources(results: Path) -> list[str]:
    """Every results file, as a path relative to ``results`` (``gpu/roofline.json``)."""
    return sorted(p.relative_to(results).as_posix() for p in results.rglob("*.json"))


def machines(results: Path) -> str:
    """Where and when each results file was measured, with a link to its full report."""
    rows = []
    for source in sources(results):
        machine = load(results, source)["machine"]
        report_md = Path(source).with_suffix(".md").as_posix()
        rows.append({
            "results": f"[{report_md}](results/{report_md})",
            "CPU": machine["cpu"],
            "cores": machine["usable_cores"],
            "GiB": machine["memory_gib"],
            "accelerators": ", ".join(machine["accelerators"]) or "none",
            "jax": machine["versions"].get("jax"),
            "measured": machine["date_utc"],
        })
    return report.markdown_table(rows)


def targets(results: Path) -> str:
    """Every target of every results file: what, measured, the bar, met or not."""
    rows = []
    for source in sources(results):
        for t in load(results, source).get("targets") or []:
            rows.append({
                "results": source.removesuffix(".json"),
                "target": f"{t['target']} ({t['what']})",
                "measured": t["measured"],
                "bar": f"<= {report.fmt(t['threshold'])}",
                "met": t["met"],
            })
    return report.markdown_table(rows)


SECTIONS: dict[str, Callable[[Path], str]] = {
    "machines": machines,
    "targets": targets,
    "vectorization": Table(
        "vectorization.json", ("task", "implementation", "median_s", "loop / this")),
    "roofline-1e6": Pivot(
        "roofline.json", "variant", "op", ("median_ms", "x_floor"), {"m": 1_000_000, "op": OPS}),
    "roofline-3e6": Pivot(
        "roofline.json", "variant", "op", ("median_ms", "x_floor"), {"m": 3_000_000, "op": OPS}),
    "time-to-solution": Table(
        "time_to_solution.json",
        ("m", "n", "solver", "first_s", "steady_s", "n_iter", "steady / sklearn lbfgs",
         "rel_gap")),
    "data-preparation": Table(
        "time_to_solution.json", ("m", "n", "step", "median_s", "min_s"),
        key="fit(X, y) data preparation (NumPy X to Xt on the device)"),
    "loop-builds": Table(
        "time_to_solution.json",
        ("m", "n", "dtype", "build", "quick", "compile_s", "steady_s", "compile / jaxlogreg's",
         "steady / jaxlogreg's"),
        key="The L-BFGS loop: line search and compiler options (same data, round-robin)"),
    "first-fit": Table(
        "time_to_solution.json",
        ("process", "round", "m", "n", "first_fit_s", "second_fit_s", "sklearn_first_fit_s"),
        key="First LogisticRegression().fit of a fresh process"),
    "softmax": Table(
        "softmax.json",
        ("m", "n", "K", "solver", "first_s", "steady_s", "n_iter", "steady / sklearn lbfgs",
         "steady / fastest sklearn", "J above best", "settings")),
    "softmax-memory": Table(
        "softmax.json",
        ("m", "n", "classes", "solver", "X_MB", "runtime_peak_MB", "first_extra_MB",
         "steady_extra_MB", "steady_extra / X"),
        key="Peak memory of a fit (MB above the process's resident memory before it)"),
    "cv": Table(
        "cv.json",
        ("m", "n", "models", "estimator", "first_s", "steady_s", "same_C_",
         "max |coef_ - sklearn|", "steady / sklearn", "first / sklearn")),
    "sparse": Table(
        "sparse.json",
        ("penalty", "lambda", "solver", "status", "n_iter", "first_s", "steady_s", "rel_gap",
         "nonzero_w", "support_diff", "true_w_found", "peak / CSR", "steady / ref")),
    "sparse-1e6": Table(
        "sparse-1e6/sparse.json",
        ("penalty", "lambda", "solver", "status", "n_iter", "first_s", "steady_s", "rel_gap",
         "nonzero_w", "support_diff", "peak / CSR", "steady / ref")),
    "sparse-path": Table(
        "sparse_path.json",
        ("m", "n", "nnz_per_row", "library", "tol", "seconds", "C_", "same C_", "worst_excess",
         "time / jaxlogreg")),
    "scaling": Table(
        "scaling.json",
        ("sweep", "m", "n", "MB(X)", "step_ms", "jaxlogreg_lbfgs_s", "sklearn_lbfgs_s",
         "jax / sklearn")),
    "scaling-slopes": Table(
        "scaling.json", ("series", "slope"), key="log-log slopes (1 = linear)"),
    "devices": Pivot("devices.json", "devices", "mode", ("step_ms",)),
    "gpu-fused": Table(
        "gpu/gpu_roofline.json",
        ("m", "problem", "X", "variant", "median_ms", "x_floor", "speedup vs xla", "err vs f64"),
        where={"variant": ("xla", "fused")}),
    "gpu-roofline": Pivot(
        "gpu/roofline.json", "variant", "op", ("median_ms", "x_floor"), {"m": 4_000_000, "op": OPS}),
}


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked region replaced by its table rendered from ``results``."""
    opened = _OPEN.findall(text)
    regions = [m.group(2) for m in _REGION.finditer(text)]
    if opened != regions:
        raise ValueError(f"every '<!-- table: NAME -->' needs its own '<!-- /table -->' "
                         f"before the next one; opened {opened}, closed {regions}")
    unknown = sorted(set(opened) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown table name(s) {unknown}; known: {sorted(SECTIONS)}")
    return _REGION.sub(lambda m: m.group(1) + SECTIONS[m.group(2)](results) + m.group(4), text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=README, help=f"default {README}")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"default {RESULTS}")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if the README's tables are out of date")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    rendered = render(text, args.results)
    if args.check:
        if rendered != text:
            print(f"{args.readme}: tables differ from {args.results}; run "
                  f"python benchmarks/tables.py", file=sys.stderr)
            return 1
        return 0
    if rendered != text:
        args.readme.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
