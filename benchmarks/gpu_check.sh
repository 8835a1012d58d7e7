#!/usr/bin/env bash
# GPU check: the test suite and the benchmarks on a CUDA machine, in one command.
#
#     bash benchmarks/gpu_check.sh          # from the repository root (or anywhere: it cd's there)
#
# Needs a Python whose JAX is a CUDA build (jax[cuda12] / jax-cuda13-plugin) with the test and
# benchmark dependencies (pytest, hypothesis, optax, scikit-learn, h5py, matplotlib; torch is
# optional); no network, nothing is installed. jaxlogreg is imported from this checkout.
# Everything goes to benchmarks/results/gpu/: nvidia-smi.txt, jax_devices.txt, pytest.log,
# <benchmark>.json/.md/.log for gpu_roofline, roofline and time_to_solution, and summary.txt.
#
# Budget (H100, under 8 minutes in all; each step is cut off by `timeout` at its limit):
#   environment 60 s, pytest 210 s, gpu_roofline 60 s, roofline 60 s, time_to_solution 80 s.
# Measured on an H200 (2026-11-27): gpu_roofline 60 s, roofline 31 s; time_to_solution did not
# finish its 1e6 x 100 rows in 80 s (compilation for the GPU), so it is limited to 1e5 x 100.
# Every step runs even if an earlier one failed; the exit status is nonzero if any failed.
# Environment: PYTHON (interpreter, default python3, else python), PYTEST_TIMEOUT (seconds),
# GPU_CHECK_OUT (the results folder, default benchmarks/results/gpu).
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
    timeout --kill-after=15 "$limit" "$@" 2>&1 | tee "$log"
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

# 1. the environment: the GPU as the driver and as JAX see it; stop here if JAX has no GPU
step nvidia-smi 15 "$OUT/nvidia-smi.txt" nvidia-smi
if ! step jax-devices 45 "$OUT/jax_devices.txt" "$PY" -c '
import jax, jaxlib
print("jax", jax.__version__, "jaxlib", jaxlib.__version__)
print(jax.devices())
print("default backend:", jax.default_backend())
raise SystemExit(0 if jax.default_backend() == "gpu" else "JAX sees no GPU: install a CUDA build of JAX")
'; then
    echo "gpu_check: JAX has no GPU here; nothing else was run. Results in $OUT/" >&2
    exit 1
fi

# 2. the tests of the numerics on the GPU (the fused kernel's compiled-mode tests run only here).
# Not the whole suite: on an H200 it covered 28 % in 200 s (every new shape compiles for the GPU,
# and many tests start processes of their own); CI runs all of it on CPU. -v names each test as
# it ends, so a log cut off by the time limit still says what passed and what failed.
# No preallocation: tests start subprocesses that would each claim 75% of the GPU's memory.
step pytest "${PYTEST_TIMEOUT:-210}" "$OUT/pytest.log" \
    env XLA_PYTHON_CLIENT_PREALLOCATE=false "$PY" -m pytest -v --tb=short -p no:cacheprovider \
    tests/test_fused.py tests/test_gradients.py tests/test_loss.py tests/test_gradcheck.py \
    tests/test_stopping.py tests/test_train.py tests/test_conformance.py

# 3. the fused Pallas gradient vs the XLA gradient vs the bandwidth floor
step gpu_roofline 60 "$OUT/gpu_roofline.log" \
    "$PY" benchmarks/gpu_roofline.py --out "$OUT" --sizes 1000000x100 4000000x100 --classes 10

# 4. the library's roofline (jnp.sum ceiling) at the sizes of the GPU floor
step roofline 60 "$OUT/roofline.log" \
    "$PY" benchmarks/roofline.py --out "$OUT" --sizes 1000000x100 4000000x100 --no-slow \
    --chunks 8192 --repeats 5

# 5. time to the same solution as scikit-learn (the JAX solvers on the GPU)
step time_to_solution 80 "$OUT/time_to_solution.log" \
    "$PY" benchmarks/time_to_solution.py --out "$OUT" --sizes 100000x100 \
    --repeats 3 --time-budget 5 --no-cache-check \
    --solvers "jaxlogreg lbfgs" "jaxlogreg lbfgs, device data" "jaxlogreg gd" "sklearn lbfgs"

echo "gpu_check: $(($(date +%s) - START))s in all" | tee -a "$OUT/summary.txt"
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "gpu_check: FAILED: ${FAILED[*]}" | tee -a "$OUT/summary.txt" >&2
    echo "gpu_check: results (and logs of the failures) in $OUT/" >&2
    exit 1
fi
echo "gpu_check: all steps passed; results in $OUT/"
