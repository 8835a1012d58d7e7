#!/usr/bin/env bash
# GPU check: the test suite and the benchmarks on a CUDA machine, in one command.
#
#     bash benchmarks/gpu_check.sh          # from the repository root (or anywhere: it cd's there)
#
# Needs a Python whose JAX is a CUDA build (jax[cuda12] / jax-cuda13-plugin) with the test and
# benchmark dependencies (pytest, pytest-xdist, hypothesis, optax, scikit-learn, h5py,
# matplotlib; torch is optional); no network, nothing is installed. jaxlogreg is imported from
# this checkout.
# Everything goes to benchmarks/results/gpu/: nvidia-smi.txt, jax_devices.txt (with
# jaxlogreg.show_config()), pytest.log, <benchmark>.json/.md/.log for gpu_roofline, roofline and
# time_to_solution, and summary.txt. What has run on a GPU: benchmarks/results/gpu/README.md.
#
# Budget: at most 7 min 45 s in all, by construction: each step is cut off by `timeout` at its
# limit (plus 5 s to exit), and the limits add up to 435 s:
#   nvidia-smi 10 s, jax-devices 40 s, pytest 200 s, gpu_roofline 50 s, roofline 45 s,
#   time_to_solution 90 s.
# Measured on an H200 (2026-11-27, JAX 0.11.2): gpu_roofline 60 s for two sizes (now one),
# roofline 31 s; time_to_solution did not finish 1e6 x 100 in 80 s (now 1e5 x 100, 2 s of
# repeats per solver); the whole suite covered 28 % in 200 s (now a selection of about 200
# tests, 41 s on 2 CPU cores in one process). The limits of pytest and time_to_solution are
# estimates until a run on a GPU measures them: a step cut off leaves its log, which says how
# far it got (pytest -v names each test as it ends).
# Every step runs even if an earlier one failed; the exit status is nonzero if any failed.
# Environment: PYTHON (interpreter, default python3, else python), PYTEST_TIMEOUT (seconds; a
# larger one breaks the budget), GPU_CHECK_OUT (the results folder, default benchmarks/results/gpu).
set -o pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
OUT=${GPU_CHECK_OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
FAILED=()
START=$(date +%s)

# step NAME LIMIT_SECONDS LOGFILE COMMAND...: run with a time limit, log stdout+stderr, record failure
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local t0 rc
    t0=$(date +%s)
    echo "== $name (limit ${limit}s) -> $log"
    timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$log"
    rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "!! $name: TIMED OUT after ${limit}s" | tee -a "$log"
    fi
    if [ "$rc" -ne 0 ]; then
        FAILED+=("$name (exit $rc)")
    fi
    echo "== $name: exit $rc in $(($(date +%s) - t0))s" | tee -a "$OUT/summary.txt"
    return "$rc"
}

: >"$OUT/summary.txt"
echo "gpu_check started $(date -u '+%Y-%m-%d %H:%M:%S UTC') in $ROOT with $PY" | tee -a "$OUT/summary.txt"

# 1. the environment: the GPU as the driver and as JAX see it, and jaxlogreg's report (versions,
# the kernel a fit chooses); stop here if JAX has no GPU
step nvidia-smi 10 "$OUT/nvidia-smi.txt" nvidia-smi
if ! step jax-devices 40 "$OUT/jax_devices.txt" "$PY" -c '
import jax, jaxlib
print("jax", jax.__version__, "jaxlib", jaxlib.__version__)
print(jax.devices())
print("default backend:", jax.default_backend())
if jax.default_backend() != "gpu":
    raise SystemExit("JAX sees no GPU: install a CUDA build of JAX")
try:
    import jaxlogreg
    jaxlogreg.show_config(4_000_000, 100)
except Exception as err:  # the report is for reading: a failure here stops nothing
    print("jaxlogreg.show_config() failed:", repr(err))
'; then
    echo "gpu_check: JAX has no GPU here; nothing else was run. Results in $OUT/" >&2
    exit 1
fi

# 2. the tests on the GPU, default tier: the programs CI lowers for CUDA on CPU (here they also
# compile and run as tests), the kernel choice, the kernels' numerics (the Pallas kernel's
# compiled-mode tests and its contract run only here) and the solvers reaching the optimum.
# Not the whole suite: on an H200 it covered 28 % in 200 s (every new shape compiles for the
# GPU, and many tests start processes of their own); CI runs all of it on CPU. Not the C
# kernel's tests: CPUs only. -v names each test as it ends, so a log cut off by the time limit
# still says what passed and what failed; --durations lists what took the budget.
# No preallocation: four test processes share the GPU.
step pytest "${PYTEST_TIMEOUT:-200}" "$OUT/pytest.log" \
    env XLA_PYTHON_CLIENT_PREALLOCATE=false "$PY" -m pytest -v --tb=short -p no:cacheprovider \
    -n 4 -m "not slow" --durations=20 \
    tests/training/test_cuda_lowering.py tests/training/test_gpu_kernel_choice.py \
    tests/kernels/test_fused.py tests/kernels/test_contract.py tests/kernels/test_table.py \
    tests/training/test_solvers.py

# 3. the fused Pallas gradient vs the XLA gradient vs the bandwidth floor
step gpu_roofline 50 "$OUT/gpu_roofline.log" \
    "$PY" benchmarks/gpu_roofline.py --out "$OUT" --sizes 4000000x100 --classes 10

# 4. the library's roofline (jnp.sum ceiling) at the sizes of the GPU floor
step roofline 45 "$OUT/roofline.log" \
    "$PY" benchmarks/roofline.py --out "$OUT" --sizes 1000000x100 4000000x100 --no-slow \
    --chunks 8192 --repeats 5

# 5. time to the same solution as scikit-learn (the JAX solvers on the GPU). Each jaxlogreg
# solver's first call compiles its loop for the GPU (the size hardly changes that time), then
# 2 s of repeats; 1e5 x 100 keeps scikit-learn's fits to seconds.
step time_to_solution 90 "$OUT/time_to_solution.log" \
    "$PY" benchmarks/time_to_solution.py --out "$OUT" --sizes 100000x100 \
    --repeats 3 --time-budget 2 --no-cache-check \
    --solvers "jaxlogreg lbfgs" "jaxlogreg lbfgs, device data" "jaxlogreg gd" "sklearn lbfgs"

echo "gpu_check: $(($(date +%s) - START))s in all" | tee -a "$OUT/summary.txt"
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "gpu_check: FAILED: ${FAILED[*]}" | tee -a "$OUT/summary.txt" >&2
    echo "gpu_check: results (and logs of the failures) in $OUT/" >&2
    exit 1
fi
echo "gpu_check: all steps passed; results in $OUT/"
