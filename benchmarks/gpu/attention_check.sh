#!/usr/bin/env bash
# GPU check of the fused-attention kernel, in a few minutes on a CUDA machine:
#   1. builds the kernel library with CMake for this GPU's architecture (build/gpu-check),
#   2. runs the host-reference and the `gpu` tests (CUDA kernel vs torch SDPA, over shapes, masks, head sizes, dtypes),
#   3. benchmarks TFLOP/s against SDPA's flash backend (batch 8, 12 heads, head 64, FP16, seq 128 / 512 / 2048),
# and writes everything to benchmarks/gpu/results/<timestamp>-<gpu>/ (junit XML, test log, bench JSON).
# Usage: benchmarks/gpu/attention_check.sh [python]   (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

ARCH="$("$PY" -c 'import torch; m, n = torch.cuda.get_device_capability(); print(f"{m}{n}")')"
GPU="$("$PY" -c 'import torch; print(torch.cuda.get_device_name().replace(" ", "_"))')"
OUT="benchmarks/gpu/results/$(date +%Y%m%d-%H%M%S)-${GPU}"
BUILD=build/gpu-check
mkdir -p "$OUT"
echo "== build (sm_${ARCH}) -> ${BUILD}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${ARCH}" -DEDGEDISTILL_CUDA=ON \
  | tee "$OUT/cmake.log"
cmake --build "$BUILD" -j --target edgedistill_attention | tee -a "$OUT/cmake.log"
export EDGEDISTILL_PLUGIN_DIR="$PWD/$BUILD/lib"

echo "== tests (host reference + gpu)"
status=0
"$PY" -m pytest tests/plugins -q -m "not slow" -p no:cacheprovider --junitxml "$OUT/tests.xml" 2>&1 \
  | tee "$OUT/tests.log" || status=$?

echo "== benchmark vs SDPA flash"
"$PY" benchmarks/gpu/attention_bench.py --out "$OUT/bench.json" | tee "$OUT/bench.log"
"$PY" benchmarks/gpu/attention_bench.py --causal --out "$OUT/bench_causal.json" | tee -a "$OUT/bench.log"
echo "results in $OUT"
exit "$status"
