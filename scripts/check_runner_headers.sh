#!/usr/bin/env bash
# Compile-check the C++ runner (edgedistill/runner/main.cpp) against public TensorRT headers, without TensorRT.
# The headers come from a git clone or mirror of NVIDIA/TensorRT, extracted into a temporary folder (never into
# the repo).
#   TRT_MIRROR=PATH scripts/check_runner_headers.sh [BRANCH ...]
#   BRANCH default: release/10.3 (JetPack 6) and release/8.5 (JetPack 5)
# Env: TRT_MIRROR (required: a git repository of https://github.com/NVIDIA/TensorRT with those branches, e.g.
#      `git clone --bare https://github.com/NVIDIA/TensorRT.git trt.git`), CUDA_INCLUDE (default: the first
#      /usr/local/cuda*/include found).
set -euo pipefail
[ -n "${TRT_MIRROR:-}" ] || {
  echo "TRT_MIRROR is not set: point it at a git clone of https://github.com/NVIDIA/TensorRT, e.g." >&2
  echo "  git clone --bare https://github.com/NVIDIA/TensorRT.git trt.git && TRT_MIRROR=trt.git $0" >&2
  exit 2
}
MIRROR="$(cd "$TRT_MIRROR" 2>/dev/null && pwd)" && git -C "$MIRROR" rev-parse --git-dir >/dev/null 2>&1 || {
  echo "TRT_MIRROR=$TRT_MIRROR is not a git repository (a clone of https://github.com/NVIDIA/TensorRT)" >&2
  exit 2
}
cd "$(dirname "$0")/.."
CUDA_INCLUDE="${CUDA_INCLUDE:-$(ls -d /usr/local/cuda/include /usr/local/cuda-*/include 2>/dev/null | head -n 1)}"
[ -f "$CUDA_INCLUDE/cuda_runtime_api.h" ] || { echo "no CUDA headers; set CUDA_INCLUDE" >&2; exit 2; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
RUNNER=edgedistill/runner/main.cpp
status=0
for branch in "${@:-release/10.3 release/8.5}"; do
  for b in $branch; do
    mkdir -p "$TMP/$b"
    git -C "$MIRROR" archive "$b" include | tar -x -C "$TMP/$b"
    if g++ -std=c++17 -fsyntax-only -Wall -Wextra -isystem "$TMP/$b/include" -isystem "$CUDA_INCLUDE" "$RUNNER"; then
      echo "ok: $RUNNER against TensorRT $b headers"
    else
      echo "FAILED: $RUNNER against TensorRT $b headers"; status=1
    fi
  done
done
exit $status
