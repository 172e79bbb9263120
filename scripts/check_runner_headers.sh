#!/usr/bin/env bash
# Compile-check the C++ runner (edgedistill/runner/main.cpp) against public TensorRT headers, without TensorRT.
# The headers come from a git mirror of NVIDIA/TensorRT into a temporary folder (never into the repo).
#   scripts/check_runner_headers.sh [BRANCH ...]      default: release/10.3 (JetPack 6) and release/8.5 (JetPack 5)
# Env: TRT_MIRROR (default /work/.mirror/NVIDIA+TensorRT/repo), CUDA_INCLUDE (default: first cuda*/include found).
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR="${TRT_MIRROR:-/work/.mirror/NVIDIA+TensorRT/repo}"
CUDA_INCLUDE="${CUDA_INCLUDE:-$(ls -d /usr/local/cuda/include /usr/local/cuda-*/include 2>/dev/null | head -n 1)}"
[ -f "$CUDA_INCLUDE/cuda_runtime_api.h" ] || { echo "no CUDA headers; set CUDA_INCLUDE" >&2; exit 2; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
status=0
for branch in "${@:-release/10.3 release/8.5}"; do
  for b in $branch; do
    mkdir -p "$TMP/$b"
    git -C "$MIRROR" archive "$b" include | tar -x -C "$TMP/$b"
    if g++ -std=c++17 -fsyntax-only -Wall -Wextra -isystem "$TMP/$b/include" -isystem "$CUDA_INCLUDE" edgedistill/runner/main.cpp; then
      echo "ok: edgedistill/runner/main.cpp against TensorRT $b headers"
    else
      echo "FAILED: edgedistill/runner/main.cpp against TensorRT $b headers"; status=1
    fi
  done
done
exit $status
