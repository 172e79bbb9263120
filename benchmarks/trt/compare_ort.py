"""Compare a TensorRT engine with ONNX Runtime on the same tokenized texts (polygraphy-style).

    python benchmarks/trt/compare_ort.py MODEL.onnx ENGINE [--texts FILE] [--batch 8] [--max-length 128]

Prints max abs difference and the smallest row cosine per batch and exits 1 below --min-cosine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def texts(path: Path | None, count: int) -> list[str]:
    if path is None:
        return [f"sentence number {i} about a dog playing in the park" for i in range(count)]
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r[5] if len(r) > 6 else r[0] for r in rows][:count]  # STS-B: sentence1 is column 6


def main() -> int:
    from transformers import AutoTokenizer

    from edgedistill.engines.ort_session import OrtSession
    from edgedistill.trt.session import TrtSession

    parser = argparse.ArgumentParser()
    parser.add_argument("onnx", type=Path)
    parser.add_argument("engine", type=Path)
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--min-cosine", type=float, default=0.999)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.onnx.parent)
    ort, trt = OrtSession(args.onnx), TrtSession(args.engine)
    sample = texts(args.texts, args.count)
    worst = {"max_abs": 0.0, "min_cosine": 1.0}
    for start in range(0, len(sample), args.batch):
        enc = tokenizer(sample[start:start + args.batch], padding=True, truncation=True,
                        max_length=args.max_length, return_tensors="np")
        feeds = {k: v.astype(np.int64) for k, v in enc.items()}
        want, got = ort.run(feeds), trt.run(feeds)
        for name, ref in want.items():
            out = got[name].astype(np.float64)
            cos = (ref * out).sum(-1) / np.maximum(np.linalg.norm(ref, axis=-1) * np.linalg.norm(out, axis=-1), 1e-12)
            worst["max_abs"] = max(worst["max_abs"], float(np.abs(ref - out).max()))
            worst["min_cosine"] = min(worst["min_cosine"], float(cos.min()))
    print(json.dumps({"compare": "tensorrt vs onnxruntime", **worst}))
    return 0 if worst["min_cosine"] >= args.min_cosine else 1


if __name__ == "__main__":
    raise SystemExit(main())
