"""Build Optimum's ONNX artifacts of a teacher (run by `optimum_teacher.build`, in an environment with Optimum).

    python build_teacher.py TEACHER_DIR OUT_DIR

Writes OUT_DIR/<name>/model.onnx (+ tokenizer files) for: `O2`, `O3` (ORTOptimizer levels) and the dynamic
INT8 quantizations Optimum offers for x86 CPUs — `int8-avx2` and `int8-avx512-vnni` (per-channel off, as in
Optimum's examples) — and prints the names it made, one per line. (Quantizing the O2 graph too fails in ONNX
Runtime 1.32's quantizer: shape inference loses the types behind the com.microsoft ops.)
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main(teacher: Path, out: Path) -> None:
    from optimum.onnxruntime import ORTModelForFeatureExtraction, ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(teacher)
    base = ORTModelForFeatureExtraction.from_pretrained(teacher, export=True)
    made: dict[str, Path] = {}
    for level in ("O2", "O3"):
        folder = out / f"tmp-{level}"
        ORTOptimizer.from_pretrained(base).optimize(getattr(AutoOptimizationConfig, level)(), save_dir=folder)
        made[level] = next(folder.glob("*optimized*.onnx"))
    for name, source, config in (
        ("int8-avx2", base, AutoQuantizationConfig.avx2(is_static=False, per_channel=False)),
        ("int8-avx512-vnni", base, AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)),
    ):
        folder = out / f"tmp-{name}"
        ORTQuantizer.from_pretrained(source).quantize(config, save_dir=folder)
        made[name] = next(folder.glob("*quantized*.onnx"))
    for name, path in made.items():
        final = out / name
        final.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, final / "model.onnx")
        tokenizer.save_pretrained(final)
        print(name, flush=True)
    for tmp in out.glob("tmp-*"):
        shutil.rmtree(tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path, help="teacher model folder (Hugging Face layout)")
    parser.add_argument("out", type=Path, help="folder for the artifacts, one subfolder each")
    args = parser.parse_args()
    main(args.teacher, args.out)
