#!/usr/bin/env bash
# TensorRT check for a machine with an NVIDIA GPU and TensorRT (not runnable on CPU-only CI):
#   1. the tensorrt-marked tests,   2. build the demo student for the local GPU (edgedistill build),
#   3. compare the engine with ONNX Runtime on the same texts (STS-B dev, shipped with edgedistill),
#   4. package a bundle and run its bench.sh (trtexec timing with the builder's flags; tegrastats power on Jetson),
#   5. write the comparison and the bundle's results.json as one results document,
#      benchmarks/trt/results/<date>-trt-check-<target>-<precision>-<device>.json (or $RESULTS_FILE).
#
#   benchmarks/trt/check.sh [MODEL.onnx]     default: runs/minilm-cpu/export/model.onnx (made by `make demo`)
# Env: TARGET (default: the target whose compute capability matches this GPU), PRECISION (default fp16),
#      OUT (scratch: engine, bundle; default runs/trt-check), PLUGIN_LIB (if the graph uses the fused-attention
#      plugin), RESULTS_FILE (default: the results document's name above).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
MODEL="${1:-runs/minilm-cpu/export/model.onnx}"
OUT="${OUT:-runs/trt-check}"
PRECISION="${PRECISION:-fp16}"

command -v nvidia-smi >/dev/null || [ -e /etc/nv_tegra_release ] || { echo "no NVIDIA GPU here" >&2; exit 2; }
$PY -c "import tensorrt" 2>/dev/null || { echo "TensorRT Python package missing: pip install -e '.[tensorrt]'" >&2; exit 2; }
[ -f "$MODEL" ] || make demo

TARGET="${TARGET:-$($PY - <<'PY'
import torch
from edgedistill.targets import list_targets
cc = "%d.%d" % torch.cuda.get_device_capability()
names = [t.name for t in list_targets() if t.compute_capability == cc]
print(names[0] if names else "")
PY
)}"
[ -n "$TARGET" ] || { echo "no target in edgedistill/targets/devices/ matches this GPU; set TARGET or add a YAML" >&2
                     exit 2; }
echo "== target $TARGET, precision $PRECISION, model $MODEL"

echo "== 1. tensorrt tests"
$PY -m pytest -q -m tensorrt tests/trt

echo "== 2. estimate (a lower bound, printed for comparison with the measurement below)"
$PY - "$MODEL" "$TARGET" "$PRECISION" <<'PY'
import sys
from edgedistill.estimate import estimate, format_estimate
print(format_estimate(estimate(sys.argv[1], sys.argv[2], sys.argv[3], dims={"batch": 1, "sequence": 128}), top=5))
PY

echo "== 3. build with the TensorRT Python API"
$PY - "$MODEL" "$TARGET" "$PRECISION" "$OUT" "${PLUGIN_LIB:-}" <<'PY'
import sys
from pathlib import Path
from edgedistill.trt import BuildOptions
from edgedistill.trt.builder import build
model, target, precision, out, plugin = sys.argv[1:6]
opts = BuildOptions(precision=precision, timing_cache=Path(out) / "timing.cache", plugin_library=plugin or None)
built = build(Path(model), target, Path(out), opts)
print(f"engine {built.engine}\nsidecar {built.sidecar}")
PY

echo "== 4. TensorRT vs ONNX Runtime"
STS_DEV="$($PY -c 'from edgedistill.data.stsb import bundled_split; print(bundled_split("dev"))')"
compared=0
$PY benchmarks/trt/compare_ort.py "$MODEL" "$OUT/model.engine" --texts "$STS_DEV" | tee "$OUT/compare.json" \
  || compared=$?

echo "== 5. device bundle + bench.sh (trtexec, same flags as the builder)"
$PY - "$MODEL" "$TARGET" "$PRECISION" "$OUT/bundle" <<'PY'
import sys
from pathlib import Path
from edgedistill.bundle import package
from edgedistill.trt import BuildOptions
b = package(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[4]), BuildOptions(precision=sys.argv[3]))
print(f"bundle {b.folder} ({b.tarball})")
PY
PLUGIN_LIB="${PLUGIN_LIB:-}" "$OUT/bundle/bench.sh"
cat "$OUT/bundle/results.json"

echo "== 6. results document"
$PY - "$MODEL" "$TARGET" "$PRECISION" "$OUT" "${RESULTS_FILE:-}" <<'PY'
import json
import sys
from pathlib import Path
from edgedistill.bench.document import write_results
model, target, precision, out, results_file = sys.argv[1:6]
sys.argv = ["check.sh", model]  # the document's `command`
compare = Path(out, "compare.json").read_text().strip().splitlines()
payload = {"model": model, "target": target, "precision": precision,
           "compare": json.loads(compare[-1]) if compare else None,
           "bundle": json.loads(Path(out, "bundle", "results.json").read_text())}
path = write_results(Path("benchmarks/trt"), "trt-check", f"trt-check-{target}-{precision}", payload,
                     out=Path(results_file) if results_file else None)
print(f"results: {path}")
PY
exit "$compared"
