"""ORT CPU latency of the demo student (3 MiniLM layers), unfused export vs attention-fused forms.

Every variant runs in one process, interleaved round by round (A, B, C, A, B, C, ...) so that drift of the
machine hits all of them alike; medians of per-run times, ratios against the unfused export at the same opset.

    .venv/bin/python benchmarks/fusion/fusion_bench.py [--rounds 5] [--per-round 3] [--label fusion] [--out FILE]

The medians are written as a results document, benchmarks/fusion/results/<date>-<label>-<device>.json.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options

from options import add_out, add_teacher, area_of, save_results  # noqa: E402

from edgedistill.bench.inputs import make_feeds  # noqa: E402
from edgedistill.bench.interleave import interleaved_ms  # noqa: E402
from edgedistill.config import ExportConfig, FuseConfig, Shape  # noqa: E402
from edgedistill.distill.depth import select_layers  # noqa: E402
from edgedistill.engines.ort_session import OrtSession  # noqa: E402
from edgedistill.export.exporter import export_onnx  # noqa: E402
from edgedistill.fuse.stage import fuse_file  # noqa: E402
from edgedistill.models.task_model import load_task_model  # noqa: E402
from edgedistill.tasks.inputs import text_spec  # noqa: E402

AREA = area_of(__file__)
LAYERS = [0, 3, 5]  # edgedistill/examples/minilm-cpu.yaml
SHAPES = [(1, 128), (1, 512), (8, 512), (32, 128)]
VARIANTS = [  # (name, opset of the unfused export it fuses, what `edgedistill fuse` is told)
    ("ort", 20, FuseConfig()),  # the pipeline's default: packed QKV + unpadded fast path
    ("ort-packed", 20, FuseConfig(unpadded_fast_path=False)),
    ("ort-mha", 20, FuseConfig(pack_qkv=False, unpadded_fast_path=False)),
    ("ort-mha+ort-extended", 20, FuseConfig(pack_qkv=False, unpadded_fast_path=False, ort_fusions=True)),
    ("onnx-attention", 23, FuseConfig(form="onnx")),
]


VOCAB = 30522  # BERT uncased vocabulary: token ids are drawn below it

def build_variants(teacher_dir: Path, work: Path) -> dict[str, Path]:
    """Export the student at opset 20 and 23 and fuse each form; returns name -> file."""
    teacher, tokenizer = load_task_model(teacher_dir, "sentence-embedding")
    student = select_layers(teacher, LAYERS)
    files = {}
    for opset in (20, 23):
        path = work / f"unfused{opset}" / "model.onnx"
        export_onnx(student, tokenizer, ExportConfig(opset=opset), path)
        files[f"unfused-op{opset}"] = path
    for name, opset, cfg in VARIANTS:
        files[name] = work / name / "model.onnx"
        files[name].parent.mkdir()
        counts = fuse_file(cfg, files[f"unfused-op{opset}"], files[name])
        assert sum(c["fused"] for c in counts["attention"]) == len(LAYERS), counts
    return files


def session(path: Path, threads: int):
    """A raw ORT session with the bench stage's settings (all graph optimisations, sequential, pinned threads)."""
    return OrtSession(path, threads).session


def feeds(batch: int, seq: int) -> dict[str, np.ndarray]:
    return make_feeds(Shape(batch=batch, seq=seq), text_spec(VOCAB), seed=seq)


def bench_shape(sessions: dict, batch: int, seq: int, rounds: int, per_round: int) -> dict[str, list[float]]:
    """Milliseconds per call, A/B-interleaved in rounds (each turn opens with an untimed call)."""
    inputs = feeds(batch, seq)
    calls = {name: functools.partial(sess.run, None, inputs) for name, sess in sessions.items()}
    return interleaved_ms(calls, rounds, per_round)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    add_teacher(parser)
    add_out(parser, AREA, "fusion")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        files = build_variants(args.teacher, Path(tmp))
        # The first session opened in a process runs 2-4 % slower than later ones (benchmarks/optimum/README.md):
        # open the fused variants first and the unfused baselines last, so the handicap never flatters fusion.
        sessions = {name: session(files[name], args.threads) for name in reversed(list(files))}
        results = []
        for batch, seq in SHAPES:
            times = bench_shape(sessions, batch, seq, args.rounds, args.per_round)
            medians = {name: statistics.median(t) for name, t in times.items()}
            spread = {name: [round(q, 2) for q in np.percentile(t, [25, 75])] for name, t in times.items()}
            runs = args.rounds * args.per_round
            results.append({"shape": f"{batch}x{seq}", "median_ms": medians, "iqr_ms": spread, "runs": runs})
            print_row(f"{batch}x{seq}", medians)
    import onnxruntime

    settings = {"threads": args.threads, "onnxruntime": onnxruntime.__version__, "cpu_count": os.cpu_count(),
                "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    save_results(args, "fusion", {**settings, "results": results}, threads=args.threads)
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")


def print_row(shape: str, medians: dict[str, float]) -> None:
    base = {20: medians["unfused-op20"], 23: medians["unfused-op23"]}
    cells = []
    for name, ms in medians.items():
        ref = base[23] if name in ("onnx-attention", "unfused-op23") else base[20]
        cells.append(f"{name} {ms:8.2f} ms ({ref / ms:4.2f}x)")
    print(f"{shape:>7} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
