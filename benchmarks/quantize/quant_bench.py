"""Side-by-side quantization benchmark on a finished run's student: FP32 vs FP16 vs dynamic vs static vs budgeted.

Every variant is built here from the run's FP32 ONNX export, then all are timed in one process,
interleaved (ORT CPU, 1x128 and 32x128, medians), and scored: mean fidelity cosine to the FP32
model on the held-out texts (and its worst text), STS-B test Spearman. The variants are built in ``--work``
(default runs/quant-bench); the table goes to a results document,
benchmarks/quantize/results/<date>-<label>-<device>.json.

    .venv/bin/python benchmarks/quantize/quant_bench.py [--run runs/minilm-cpu] [--label quant-bench] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options

from options import add_out, add_run, add_sts, add_work, area_of, save_results  # noqa: E402

from edgedistill.artifacts import Artifact  # noqa: E402
from edgedistill.config import quantize_step  # noqa: E402
from edgedistill.data.stsb import read_sts  # noqa: E402
from edgedistill.evaluate.metrics import row_cosine  # noqa: E402
from edgedistill.quantize import stage  # noqa: E402
from edgedistill.quantize.data import QuantizeData  # noqa: E402
from edgedistill.quantize.latency import median_latency_ms  # noqa: E402
from edgedistill.quantize.quality import Reference  # noqa: E402

AREA = area_of(__file__)
BUDGET = {"metric": "fidelity_cosine", "min": 0.995}
VARIANTS = {
    "dynamic-int8": quantize_step(mode="dynamic-int8"),
    "fp16": quantize_step(mode="fp16"),
    "static avx2 minmax": quantize_step(mode="static-int8", preset="avx2"),
    "static vnni minmax": quantize_step(mode="static-int8", preset="avx512-vnni"),
    "static vnni percentile": quantize_step(mode="static-int8", preset="avx512-vnni", calibration="percentile"),
    "static vnni entropy": quantize_step(mode="static-int8", preset="avx512-vnni", calibration="entropy"),
    "static arm64 (s8s8) minmax": quantize_step(mode="static-int8", preset="arm64"),
    "static vnni percentile + budget": quantize_step(mode="static-int8", preset="avx512-vnni",
                                                    calibration="percentile", budget=BUDGET),
    "trt-int8 (QDQ for TensorRT, run on ORT CPU)": quantize_step(mode="trt-int8"),
}


def load_data(run: Path, sts_dir: Path, eval_count: int) -> tuple[QuantizeData, list[str]]:
    """Calibration from STS train sentences, evaluation on the run's held-out texts (disjoint sources)."""
    train = read_sts(sts_dir / "sts-train.csv")
    calibration = list(dict.fromkeys(train.sentences1 + train.sentences2))[:256]
    heldout = [t for t in (run / "distill" / "heldout.txt").read_text().splitlines() if t.strip()]
    data = QuantizeData(calibration, heldout[:eval_count], read_sts(sts_dir / "sts-test.csv"), cache_dir=None)
    return data, heldout


def build(model: Artifact, data: QuantizeData, out: Path) -> dict[str, Artifact]:
    built = {"fp32": model}
    for i, (name, step) in enumerate(VARIANTS.items()):
        start = time.perf_counter()
        built[name] = stage.run(step, model, out / f"v{i}", data)
        built[name].meta["build_s"] = round(time.perf_counter() - start, 1)
        print(f"built {name} in {built[name].meta['build_s']} s", flush=True)
    return built


def quality(built: dict[str, Artifact], model: Artifact, data: QuantizeData, heldout: list[str]) -> dict[str, dict]:
    """Fidelity (mean and worst) on all held-out texts and STS-B test Spearman of every variant."""
    full = QuantizeData(data.calibration_texts, heldout, data.sts)
    reference = Reference(model, full, need_sts=True)
    rows = {}
    for name, art in built.items():
        emb, sts = reference.outputs(art.path)
        cos = row_cosine(emb, reference.embeddings)
        rows[name] = {"fidelity": float(cos.mean()), "worst": float(cos.min()), "sts_test": sts,
                      "size_mb": round(art.path.stat().st_size / 1e6, 1)}
    return rows


def latency(built: dict[str, Artifact], threads: int | None) -> dict[str, dict]:
    paths = [a.path for a in built.values()]
    b1 = median_latency_ms(paths, 1, 128, rounds=20, per_round=5, threads=threads)
    b32 = median_latency_ms(paths, 32, 128, rounds=6, per_round=2, warmup=1, threads=threads)
    return {name: {"p50_1x128": x, "p50_32x128": y} for name, x, y in zip(built, b1, b32, strict=True)}


def table(rows: dict[str, dict]) -> str:
    base = rows["fp32"]
    lines = ["| variant | size MB | fidelity mean | worst | STS-B test | p50 ms 1x128 | vs FP32 "
             "| p50 ms 32x128 | vs FP32 |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['size_mb']} | {r['fidelity']:.4f} | {r['worst']:.4f} | {r['sts_test']:.2f} | "
            f"{r['p50_1x128']:.2f} | {base['p50_1x128'] / r['p50_1x128']:.2f}x | {r['p50_32x128']:.1f} | "
            f"{base['p50_32x128'] / r['p50_32x128']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run(parser)
    add_sts(parser)
    add_work(parser, "quant-bench")
    add_out(parser, AREA, "quant-bench")
    parser.add_argument("--eval-count", type=int, default=300, help="held-out texts the budget search scores on")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    model = Artifact("student", "onnx", args.run / "export" / "model.onnx")
    data, heldout = load_data(args.run, args.sts, args.eval_count)
    built = build(model, data, args.work)
    rows = quality(built, model, data, heldout)
    for name, times in latency(built, args.threads).items():
        rows[name].update(times)
    budget = built["static vnni percentile + budget"].meta["budget"]
    print(table(rows))
    print("budget:", json.dumps(budget, default=float))
    save_results(args, "quant-bench", {"rows": rows, "budget": budget,
                                       "build_s": {n: a.meta.get("build_s") for n, a in built.items()}},
                 threads=args.threads)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
