"""Quantization-aware distillation vs post-training quantization on a finished run's student.

Builds from the run's FP32 ONNX export and float student folder: dynamic INT8, static INT8 (the preset
given, MinMax), and qad-int8 (same preset, the student fake-quantized and distilled from the teacher for
``--steps`` steps, then written as QDQ with the learned ranges). With ``--control`` also the float student
distilled the same steps *without* fake quantization, then static-INT8'd: it separates what QAD gains from
quantization-awareness from what it gains by training longer. All variants are scored the same way — mean
and worst cosine to the FP32 student on the held-out texts, mean cosine to the teacher, STS-B test Spearman —
and timed interleaved in one process (ORT CPU, medians at 1x128 and 32x128).

Training texts: STS-B train sentences not among the held-out texts; calibration: the first 256 of them
(the static and QAD variants share it); teacher outputs are computed once and cached in ``--work``, where the
variants are built too (default runs/qad-bench). The table goes to a results document,
benchmarks/quantize/results/<date>-<label>-<device>.json.

    .venv/bin/python benchmarks/quantize/qad_bench.py [--run runs/minilm-cpu] [--steps 300] [--label qad-bench] \
        [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options

from options import add_out, add_run, add_sts, add_teacher, add_work, area_of, recorded, save_results  # noqa: E402

from edgedistill.artifacts import Artifact  # noqa: E402
from edgedistill.config import StaticInt8, quantize_step  # noqa: E402
from edgedistill.data.stsb import read_sts  # noqa: E402
from edgedistill.evaluate.metrics import row_cosine  # noqa: E402
from edgedistill.models.task_model import TaskModel, load_task_model, save_task_model  # noqa: E402
from edgedistill.quantize import stage  # noqa: E402
from edgedistill.quantize.data import QadData, QuantizeData, default_qad_losses  # noqa: E402
from edgedistill.quantize.latency import median_latency_ms  # noqa: E402
from edgedistill.quantize.quality import Reference  # noqa: E402
from edgedistill.quantize.static_int8 import static_int8  # noqa: E402

AREA = area_of(__file__)


@torch.inference_mode()
def embed(model: TaskModel, tokenizer: object, texts: list[str], batch: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(texts), batch):
        enc = tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=128,  # type: ignore[operator]
                        return_tensors="pt")
        out.append(model(**enc).float().numpy())
    return np.concatenate(out)


def teacher_outputs(texts: list[str], cache: Path, teacher_dir: Path) -> np.ndarray:
    if cache.is_file():
        cached = np.load(cache)
        if len(cached) == len(texts):
            return cached
    teacher, tokenizer = load_task_model(teacher_dir, "sentence-embedding")
    start = time.perf_counter()
    outputs = embed(teacher, tokenizer, texts)
    print(f"teacher labelled {len(texts)} texts in {time.perf_counter() - start:.0f} s", flush=True)
    np.save(cache, outputs)
    return outputs


def load_data(run: Path, sts_dir: Path, out: Path, count: int, teacher_dir: Path) -> tuple[QuantizeData, list[str]]:
    heldout = [t for t in (run / "distill" / "heldout.txt").read_text().splitlines() if t.strip()]
    train = read_sts(sts_dir / "sts-train.csv")
    texts = [t for t in dict.fromkeys(train.sentences1 + train.sentences2) if t not in set(heldout)][:count]
    targets = teacher_outputs(texts, out / "teacher-train.npy", teacher_dir)
    qad = QadData(student=run / "distill" / "student", texts=texts, teacher_outputs=targets,
                  losses=default_qad_losses())
    return QuantizeData(texts[:256], heldout[:64], read_sts(sts_dir / "sts-test.csv"), qad=qad), heldout


def control_student(data: QuantizeData, steps: int, lr: float, batch: int, out: Path) -> Path:
    """The float student distilled ``steps`` more steps with the same losses and texts, no fake quantization."""
    from edgedistill.config import DistillConfig
    from edgedistill.distill.trainer import train

    assert data.qad is not None
    folder = out / "control-student"
    if not (folder / "config.json").is_file():
        model, tokenizer = load_task_model(data.qad.student, "sentence-embedding")
        cfg = DistillConfig(losses=data.qad.losses, steps=steps, lr=lr, batch_size=batch, keep_better=False)
        train(model, tokenizer, data.qad.texts, data.qad.teacher_outputs, cfg, out / "control-work")
        save_task_model(model, tokenizer, folder)
    return folder


def float_residuals(path: Path) -> None:
    import onnx

    from edgedistill.quantize.trt_qdq import reroute_float_consumers

    graph = onnx.load(str(path))
    reroute_float_consumers(graph)
    onnx.save(graph, str(path))


def build(args: argparse.Namespace, model: Artifact, data: QuantizeData) -> dict[str, Artifact]:
    from edgedistill.config import ExportConfig
    from edgedistill.export.exporter import export_onnx
    from edgedistill.models.tokenizer_files import copy_preprocessor_files

    static = StaticInt8.for_preset(args.preset)
    steps = {"dynamic-int8": quantize_step(mode="dynamic-int8"), f"static {args.preset} minmax": static,
             f"qad-int8 {args.preset} ({args.steps} steps)": quantize_step(
                 mode="qad-int8", preset=args.preset, qad_steps=args.steps, qad_lr=args.lr,
                 qad_batch_size=args.batch)}
    built = {"fp32": model}
    for i, (name, step) in enumerate(steps.items()):
        start = time.perf_counter()
        built[name] = stage.run(step, model, args.work / f"v{i}", data)
        if name.startswith("static"):  # the QAD graph's form without training: residual Adds read float tensors
            built[f"{name}, float residuals"] = static_int8(static, model, args.work / "static-float-residuals", data,
                                                           finish=float_residuals)
        built[name].meta["build_s"] = round(time.perf_counter() - start, 1)
        print(f"built {name} in {built[name].meta['build_s']} s", json.dumps(
            {k: v for k, v in built[name].meta.items() if k in ("loss_first", "loss_last_10", "scale_drift",
                                                                 "ort_vs_torch")}), flush=True)
    if args.control:
        folder = control_student(data, args.steps, args.lr, args.batch, args.work)
        student, tokenizer = load_task_model(folder, "sentence-embedding")
        export_onnx(student, tokenizer, ExportConfig(), args.work / "control-onnx" / "model.onnx")
        copy_preprocessor_files(folder, args.work / "control-onnx")
        control = Artifact("control", "onnx", args.work / "control-onnx" / "model.onnx")
        built[f"control: float +{args.steps} steps, FP32"] = control
        built[f"control: float +{args.steps} steps, static {args.preset}"] = stage.run(
            static, control, args.work / "control-static", data)
    return built


def quality(built: dict[str, Artifact], model: Artifact, data: QuantizeData, heldout: list[str],
            teacher_heldout: np.ndarray) -> dict[str, dict]:
    reference = Reference(model, QuantizeData(data.calibration_texts, heldout, data.sts), need_sts=True)
    rows = {}
    for name, art in built.items():
        emb, sts = reference.outputs(art.path)
        cos = row_cosine(emb, reference.embeddings)
        rows[name] = {"fidelity": float(cos.mean()), "worst": float(cos.min()), "sts_test": sts,
                      "teacher": float(row_cosine(emb, teacher_heldout).mean()),
                      "size_mb": round(art.path.stat().st_size / 1e6, 1)}
    return rows


def table(rows: dict[str, dict]) -> str:
    base = rows["fp32"]
    lines = ["| variant | size MB | fidelity to FP32 (mean) | worst | cosine to teacher | STS-B test | p50 ms 1x128 "
             "| vs FP32 | p50 ms 32x128 | vs FP32 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['size_mb']} | {r['fidelity']:.4f} | {r['worst']:.4f} | {r['teacher']:.4f} | "
            f"{r['sts_test']:.2f} | {r['p50_1x128']:.2f} | {base['p50_1x128'] / r['p50_1x128']:.2f}x | "
            f"{r['p50_32x128']:.1f} | {base['p50_32x128'] / r['p50_32x128']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run(parser)
    add_sts(parser)
    add_teacher(parser)
    add_work(parser, "qad-bench")
    add_out(parser, AREA, "qad-bench")
    parser.add_argument("--preset", default="avx2")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--train-texts", type=int, default=10000)
    parser.add_argument("--control", action="store_true", help="also the float student trained the same steps")
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads when timing")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    model = Artifact("student", "onnx", args.run / "export" / "model.onnx")
    data, heldout = load_data(args.run, args.sts, args.work, args.train_texts, args.teacher)
    built = build(args, model, data)
    teacher_heldout = teacher_outputs(heldout, args.work / "teacher-heldout.npy", args.teacher)
    rows = quality(built, model, data, heldout, teacher_heldout)
    paths = [a.path for a in built.values()]
    b1 = median_latency_ms(paths, 1, 128, rounds=20, per_round=5, threads=args.threads)
    b32 = median_latency_ms(paths, 32, 128, rounds=6, per_round=2, warmup=1, threads=args.threads)
    for name, x, y in zip(built, b1, b32, strict=True):
        rows[name].update({"p50_1x128": x, "p50_32x128": y, "build_s": built[name].meta.get("build_s")})
    qad_meta = next(a.meta for n, a in built.items() if n.startswith("qad"))
    print(table(rows))
    save_results(args, "qad-bench", {"args": recorded(args), "rows": rows, "qad": qad_meta}, threads=args.threads)


if __name__ == "__main__":
    main()
