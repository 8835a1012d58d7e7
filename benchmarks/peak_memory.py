"""Peak memory of a fit: resident memory above what its process held just before the fit.

Each library is measured in a fresh process, so that peaks of different libraries never mix.
Linux's high-water mark of resident memory (``VmHWM`` in ``/proc/self/status``) is reset to
the current resident size by writing ``5`` to ``/proc/self/clear_refs``; the peak extra memory
of a call is ``VmHWM`` after it minus ``VmRSS`` before it. A process makes the data, then:

1. a tiny fit (:data:`TINY_ROWS` rows): its peak above the start, and what stays resident after
   it, are the runtime's own share (JAX's client, thread pools, the first compiled programs;
   NumPy/SciPy's for scikit-learn);
2. the fit at full size: its peak includes compiling for that shape;
3. the same fit again, the one reported as the fit's extra memory (``steady_extra_MB``): what a
   fit needs beyond what the process already holds, next to its time.

Used by :mod:`benchmarks.time_to_solution` (its table "Peak memory of a fit") and, with
``options["classes"]`` K > 2, by :mod:`benchmarks.softmax`; :func:`peak_of` by
:mod:`benchmarks.sparse` for each of its fits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TINY_ROWS = 1_000
MB = 1 << 20
LIBRARIES = {  # name: the solver of time_to_solution it times, and whether X is 64-byte aligned
    "jaxlogreg lbfgs": ("jaxlogreg lbfgs", False),
    "jaxlogreg lbfgs, 64-byte aligned X": ("jaxlogreg lbfgs", True),
    "sklearn lbfgs": ("sklearn lbfgs", False),
    "torch lbfgs": ("torch lbfgs", False),
}
CHILD_CODE = """
import json, sys
from benchmarks.peak_memory import child
print(json.dumps(child(*sys.argv[1:3], json.loads(sys.argv[3]))))
"""


def supported() -> bool:
    """Whether this system lets a process reset its peak resident memory (Linux >= 4.0)."""
    try:
        _reset_peak()
    except OSError:
        return False
    return True


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def peak_of(call) -> tuple[float, float, float]:
    """``(peak extra MB, resident growth MB, seconds)`` of ``call()``."""
    _reset_peak()
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    return ((_status_kb("VmHWM") - before) * 1024 / MB,
            (_status_kb("VmRSS") - before) * 1024 / MB, seconds)


def _problem_and_solver(solver: str, n: int, options: dict[str, Any]):
    """``(problem(rows, seed) -> (X, y), make(X, y) -> call)``: the binary data and fits of
    :mod:`benchmarks.time_to_solution`, or, for ``options["classes"]`` K > 2, the softmax ones
    of :mod:`benchmarks.softmax`."""
    l2, tol, classes = options["l2"], options["tol"], options.get("classes", 2)
    if classes > 2:
        from benchmarks import softmax

        return (lambda rows, seed: softmax.make_problem(rows, n, classes, seed),
                lambda X, y: softmax.solver(solver, X, y, classes, l2, tol))
    from benchmarks import time_to_solution as tts

    make = {
        "jaxlogreg lbfgs": lambda X, y: tts._jaxlogreg(X, y, "lbfgs", l2, tol, 500, None),
        "sklearn lbfgs": lambda X, y: tts._sklearn(X, y, "lbfgs", l2, tol),
        "torch lbfgs": lambda X, y: tts._torch_lbfgs(X, y, l2, tol),
    }[solver]
    return lambda rows, seed: tts.make_problem(rows, n, seed, options["correlation"]), make


def child(library: str, size: str, options: dict[str, Any]) -> dict[str, Any]:
    """The measurements of one process (see the module docstring), as a row."""
    import numpy as np

    solver, aligned = LIBRARIES[library]
    m, n = (int(k) for k in size.split("x"))
    problem, make = _problem_and_solver(solver, n, options)
    X, y = problem(m, options["seed"])
    if aligned:  # a copy whose data start on a 64-byte boundary (NumPy's are 16-byte aligned)
        raw = np.empty(X.nbytes + 64, np.uint8)
        start = -raw.ctypes.data % 64
        X_aligned = raw[start : start + X.nbytes].view(X.dtype).reshape(X.shape)
        X_aligned[...] = X
        X = X_aligned
    tiny_X, tiny_y = problem(TINY_ROWS, options["seed"] + 1)
    runtime_peak, runtime_resident, _ = peak_of(lambda: make(tiny_X, tiny_y)())
    call = make(X, y)
    first_extra, _, first_s = peak_of(call)
    steady_extra, _, steady_s = peak_of(call)
    x_mb = X.nbytes / MB
    return {"m": m, "n": n, "classes": options.get("classes", 2), "solver": library, "X_MB": x_mb,
            "X 64-byte aligned": X.ctypes.data % 64 == 0,
            "runtime_peak_MB": runtime_peak, "runtime_resident_MB": runtime_resident,
            "first_extra_MB": first_extra, "steady_extra_MB": steady_extra,
            "steady_extra / X": steady_extra / x_mb, "steady_s": steady_s, "first_s": first_s}


def measure(library: str, m: int, n: int, options: dict[str, Any]) -> dict[str, Any]:
    """:func:`child` in a fresh process (the checkout importable, no compilation cache)."""
    checkout = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([checkout, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["JAXLOGREG_NO_CACHE"] = "1"
    out = subprocess.run([sys.executable, "-c", CHILD_CODE, library, f"{m}x{n}",
                          json.dumps(options)], capture_output=True, text=True, env=env,
                         check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])
