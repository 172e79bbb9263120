#!/usr/bin/env bash
# GPU check of the fused-attention kernel, in a few minutes on a CUDA machine:
#   1. builds the kernel library with CMake for this GPU's architecture (build/gpu-check),
#   2. runs the host-reference and the `gpu` tests (CUDA kernel vs torch SDPA, over shapes, masks, head sizes, dtypes),
#   3. benchmarks TFLOP/s against SDPA's flash backend (batch 8, 12 heads, head 64, FP16, seq 128 / 512 / 2048),
# and writes everything to benchmarks/gpu/results/<date>-<label>-<gpu>/ (label: $EDFA_LABEL, default attention-check;
# a time is added when that folder exists already), or to $EDFA_RESULTS_DIR if set (junit XML, test log, bench
# results documents). The benchmark times CUDA-graph replays; where capture fails it falls back to eager calls.
# Usage: [EDFA_LABEL=what-changed] benchmarks/gpu/attention_check.sh [python]   (python: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

ARCH="$("$PY" -c 'import torch; m, n = torch.cuda.get_device_capability(); print(f"{m}{n}")')"
GPU="$("$PY" -c 'import torch; print(torch.cuda.get_device_name().replace(" ", "_"))')"
RUN_NAME="$(date +%Y%m%d)-${EDFA_LABEL:-attention-check}"
[ ! -e "benchmarks/gpu/results/${RUN_NAME}-${GPU}" ] || RUN_NAME="${RUN_NAME}-$(date +%H%M%S)"
RESULTS="${EDFA_RESULTS_DIR:-benchmarks/gpu/results/${RUN_NAME}-${GPU}}"
BUILD=build/gpu-check
mkdir -p "$RESULTS"
echo "== build (sm_${ARCH}) -> ${BUILD}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${ARCH}" -DEDGEDISTILL_CUDA=ON \
  -DCMAKE_CUDA_FLAGS="-Xptxas=-v" \
  | tee "$RESULTS/cmake.log"
cmake --build "$BUILD" -j --target edgedistill_attention | tee -a "$RESULTS/cmake.log"
export EDGEDISTILL_PLUGIN_DIR="$PWD/$BUILD/lib"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" # the benchmark imports edgedistill from this checkout

echo "== tests (host reference + gpu)"
status=0
"$PY" -m pytest tests/plugins -q -m "not slow" -p no:cacheprovider --junitxml "$RESULTS/tests.xml" 2>&1 \
  | tee "$RESULTS/tests.log" || status=$?

echo "== benchmark vs SDPA flash"
bench() { # graph replays; eager calls if capture fails
  "$PY" benchmarks/gpu/attention_bench.py "$@" || "$PY" benchmarks/gpu/attention_bench.py --timing eager "$@"
}
bench --out "$RESULTS/bench.json" 2>&1 | tee "$RESULTS/bench.log"
bench --causal --out "$RESULTS/bench_causal.json" 2>&1 | tee -a "$RESULTS/bench.log"
echo "== for the record: head size 128, and BF16" | tee -a "$RESULTS/bench.log"
bench --head-size 128 --variants default wmma --out "$RESULTS/bench_d128.json" 2>&1 | tee -a "$RESULTS/bench.log"
bench --dtype bfloat16 --variants default wmma --out "$RESULTS/bench_bf16.json" 2>&1 | tee -a "$RESULTS/bench.log"
echo "results in $RESULTS"
exit "$status"
