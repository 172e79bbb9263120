"""The student frontier: STS-B quality against ONNX Runtime CPU latency for a grid of distilled students.

Grid: 1–3 layers of all-MiniLM-L6-v2 (3: layers 0,3,5; 2: 0,5; 1: chosen by `search`) × hidden 384 / 256 / 192
(width reduction: 12 / 8 / 6 heads of 32, FFN 1536 / 1024 / 768, a Dense projection back to 384). Each student is
distilled with the plain recipe of sts_targets.py (embedding MSE + cosine, batch 64, 1000 steps), exported,
attention-fused (ort form) and quantized (dynamic INT8), and scored on STS-B test. Then, in one process, every
INT8 student and Optimum's INT8 artifacts of the teacher (where Optimum can run) are timed interleaved at
batch 1 × 128 (ORT CPU, all cores, sequential). Prints the table, names the fastest student keeping ≥ 97% of the
teacher's STS-B test score, its speed-up over Optimum's best INT8 teacher, and draws the Pareto plot.

Run: .venv/bin/python benchmarks/distill/frontier.py [--work runs/frontier] [--reuse runs/sts-targets] \
         [--grid 3x384 2x384 1x384@600 3x256@600 …] [--label frontier] [--out FILE]   (LAYERSxHIDDEN[@STEPS])
``--reuse`` copies matching 384-wide run folders of sts_targets.py so they are not distilled again (the
stages skip when config and inputs are unchanged, so a second run only re-times). Students, Optimum's artifacts
and the plot (frontier.png) go to the work folder; the table to a results document,
benchmarks/distill/results/<date>-<label>-<device>.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "optimum"))

from optimum_teacher import build, optimum_env  # noqa: E402
from options import REPO, add_out, add_work, area_of, save_results, shown  # noqa: E402
from sts_targets import EXAMPLE, config_from, scores, seed_labels, student_config  # noqa: E402

from edgedistill import api  # noqa: E402
from edgedistill.bench.inputs import make_feeds  # noqa: E402
from edgedistill.bench.interleave import interleaved_ms  # noqa: E402
from edgedistill.config import ExportConfig, FuseConfig, PipelineConfig, Shape, load_config, quantize_step  # noqa: E402
from edgedistill.data.stsb import StsPairs, read_sts  # noqa: E402
from edgedistill.engines.ort_session import OrtSession  # noqa: E402
from edgedistill.evaluate.metrics import sts_spearman  # noqa: E402
from edgedistill.tasks.inputs import text_spec  # noqa: E402

AREA = area_of(__file__)
LAYERS: dict[int, list[int] | str] = {3: [0, 3, 5], 2: [0, 5], 1: "search"}
WIDTHS = {384: (12, 1536), 256: (8, 1024), 192: (6, 768)}
SHAPE = Shape(batch=1, seq=128)
KEEP = 0.97
VOCAB = 30522


def grid_config(base: PipelineConfig, layers: int, hidden: int, steps: int, args: argparse.Namespace) -> PipelineConfig:
    chosen = LAYERS[layers]
    cfg = student_config(base, chosen if isinstance(chosen, list) else [0], steps, args.batch, args.cosine,
                         dropout=args.dropout)
    spec: dict[str, Any] = {"layers": chosen} if isinstance(chosen, list) else {"layers": chosen, "num_layers": layers}
    if hidden != 384:
        heads, ffn = WIDTHS[hidden]
        spec.update(hidden_size=hidden, heads=heads, intermediate_size=ffn)
    raw = cfg.model_dump(mode="json", exclude_unset=True)
    raw.update(name=f"L{layers}-H{hidden}", student={"from_teacher": spec})
    return config_from(raw)


def build_student(cfg: PipelineConfig, out: Path, sts: dict[str, StsPairs]) -> dict[str, Any]:
    """Distil, export, fuse, quantize (each skipped when already done); STS of the INT8 artifact."""
    student = api.distill(cfg, out)
    onnx_model = api.export(student, out, ExportConfig(opset=20, dynamic={"batch": [1, 64], "sequence": [1, 256]}),
                            fuse_form="ort")
    fused = api.fuse(onnx_model, out, FuseConfig(form="ort"))
    int8 = api.quantize(fused, out, [quantize_step(mode="dynamic-int8")])[0]
    manifest = json.loads((out / "manifest.json").read_text())["stages"]["distill"]["metrics"]
    return {"name": cfg.name, "path": shown(int8.path), "layers": manifest.get("student_layers"),
            "steps": cfg.distill.steps,
            "size_mb": round(int8.path.stat().st_size / 2**20, 2), **scores(int8, sts, cfg)}


def optimum_sts(path: Path, tokenizer: Any, pairs: StsPairs) -> float:
    """STS-B Spearman of an Optimum feature-extraction graph (last_hidden_state, mean-pooled here)."""
    session = OrtSession(path, os.cpu_count() or 1).session
    names = {i.name for i in session.get_inputs()}

    def embed(texts: list[str]) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), 64):
            enc = tokenizer(texts[start : start + 64], padding=True, truncation=True, max_length=128,
                            return_tensors="np")
            hidden = session.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            rows.append((hidden * mask).sum(1) / mask.sum(1))
        return np.concatenate(rows)

    return round(sts_spearman(embed(pairs.sentences1), embed(pairs.sentences2), pairs.scores), 2)


def time_all(files: dict[str, Path], rounds: int, per_round: int, shape: Shape = SHAPE) -> dict[str, dict[str, float]]:
    """Median and IQR of ms per call at ``shape`` (1×128), all models interleaved in this one process."""
    feeds = make_feeds(shape, text_spec(VOCAB), seed=128)
    calls = {}
    for name, path in files.items():
        session = OrtSession(path, os.cpu_count() or 1).session
        wanted = {i.name for i in session.get_inputs()}
        calls[name] = functools.partial(session.run, None, {k: v for k, v in feeds.items() if k in wanted})
    times = interleaved_ms(calls, rounds, per_round)
    return {n: {"p50_ms": statistics.median(t), "p25_ms": float(np.percentile(t, 25)),
                "p75_ms": float(np.percentile(t, 75))} for n, t in times.items()}


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on both latency and quality, fastest first."""
    front, best = [], -np.inf
    for row in sorted(rows, key=lambda r: r["p50_ms"]):
        if row["test"] > best:
            front.append(row)
            best = row["test"]
    return front


def plot(rows: list[dict[str, Any]], anchors: dict[str, dict[str, Any]], floor: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([r["p50_ms"] for r in rows], [r["test"] for r in rows], color="tab:blue", label="INT8 students")
    ax.scatter([], [], marker="s", color="tab:red", label="Optimum INT8 teacher")
    for r in rows:
        ax.annotate(r["name"], (r["p50_ms"], r["test"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = pareto(rows)
    ax.plot([r["p50_ms"] for r in front], [r["test"] for r in front], color="tab:blue", alpha=0.5)
    for name, a in anchors.items():
        ax.scatter([a["p50_ms"]], [a.get("test", floor / KEEP)], marker="s", color="tab:red")
        ax.annotate(name.removeprefix("optimum-"), (a["p50_ms"], a.get("test", floor / KEEP)), fontsize=8,
                    textcoords="offset points", xytext=(-30, -14), color="tab:red")
    ax.axhline(floor, color="gray", linestyle="--", linewidth=1, label=f"97% of the teacher ({floor:.1f})")
    ax.set_xscale("log")
    ax.set_xlabel(f"ONNX Runtime CPU latency, p50 ms at {SHAPE.batch}×{SHAPE.seq} (log)")
    ax.set_ylabel("STS-B test Spearman ×100")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_work(parser, "frontier")
    add_out(parser, AREA, "frontier")
    parser.add_argument("--grid", nargs="+", default=[f"{n}x{h}" for n in (3, 2, 1) for h in (384, 256, 192)],
                        help="LAYERSxHIDDEN, optionally @STEPS (default --steps), e.g. 3x256@600")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cosine", type=float, default=1.0)
    parser.add_argument("--dropout", type=float, default=None, help="student dropout in training (default: the demo's)")
    parser.add_argument("--reuse", type=Path, default=None, help="sts_targets.py output with 384-wide students")
    parser.add_argument("--labels-from", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=20)
    args = parser.parse_args()
    base = load_config(EXAMPLE)
    assert base.data.test is not None
    sts = {"test": read_sts(base.data.test.path)}
    teacher_score = scores(api.artifact_from_path(Path(str(base.teacher.path)), base.teacher.task), sts, base)["test"]
    floor = KEEP * teacher_score
    rows = []
    for spec in args.grid:
        shape, _, steps = spec.partition("@")
        layers, hidden = (int(x) for x in shape.split("x"))
        cfg = grid_config(base, layers, hidden, int(steps or args.steps), args)
        out = args.work / str(cfg.name)
        reused = args.reuse / f"layers-{'-'.join(map(str, LAYERS[layers]))}" if args.reuse and hidden == 384 \
            and isinstance(LAYERS[layers], list) else None
        if reused is not None and reused.is_dir() and not out.exists():
            shutil.copytree(reused, out)
        out.mkdir(parents=True, exist_ok=True)
        seed_labels(out, args.labels_from)
        rows.append(build_student(cfg, out, sts))
        print(rows[-1], flush=True)
    files = {r["name"]: REPO / r["path"] for r in rows}
    anchors: dict[str, dict[str, Any]] = {}
    env = optimum_env()
    if env is not None:
        from transformers import AutoTokenizer

        made = build(Path(str(base.teacher.path)), args.work / "optimum", env)
        tokenizer = AutoTokenizer.from_pretrained(str(base.teacher.path))
        for name in ("int8-avx2", "int8-avx512-vnni"):
            files[f"optimum-{name}"] = made[name]
            anchors[f"optimum-{name}"] = {"test": optimum_sts(made[name], tokenizer, sts["test"])}
    load_before = os.getloadavg()[0]
    timed = time_all(files, args.rounds, args.per_round)
    for r in rows:
        r.update(timed[r["name"]])
    for name in anchors:
        anchors[name].update(timed[name])
    best_anchor = min(anchors.items(), key=lambda kv: kv[1]["p50_ms"]) if anchors else None
    keeping = [r for r in rows if r["test"] >= floor]
    fastest = min(keeping, key=lambda r: r["p50_ms"]) if keeping else None
    print(f"teacher STS-B test {teacher_score:.2f}; 97% floor {floor:.2f}; load avg before timing {load_before:.1f}")
    print(f"{'student':10s} {'layers':10s} {'steps':>5s} {'STS test':>8s} {'p50 ms':>8s} {'IQR ms':>13s} {'MB':>6s}")
    for r in sorted(rows, key=lambda r: r["p50_ms"]):
        print(f"{r['name']:10s} {str(r['layers']):10s} {r['steps']:5d} {r['test']:8.2f} {r['p50_ms']:8.2f} "
              f"{r['p25_ms']:6.2f}–{r['p75_ms']:<6.2f} {r['size_mb']:6.1f}")
    for name, a in anchors.items():
        print(f"{name:22s} STS test {a['test']:.2f}  p50 {a['p50_ms']:.2f} ms")
    summary: dict[str, Any] = {"teacher_test": teacher_score, "floor": floor, "fastest_keeping": None}
    if fastest:
        summary["fastest_keeping"] = fastest["name"]
        line = (f"fastest student keeping ≥97%: {fastest['name']} (STS {fastest['test']:.2f}, "
                f"{fastest['p50_ms']:.2f} ms)")
        if best_anchor:
            ratio = best_anchor[1]["p50_ms"] / fastest["p50_ms"]
            summary["speedup_vs_optimum_best_int8"] = ratio
            line += f", {ratio:.2f}x faster than {best_anchor[0]} ({best_anchor[1]['p50_ms']:.2f} ms); target >= 2.5x"
        print(line)
    plot(rows, anchors, floor, args.work / "frontier.png")
    dropout = base.distill.dropout if args.dropout is None else args.dropout
    save_results(args, "frontier", {
        "summary": summary, "students": rows, "anchors": anchors, "shape": f"{SHAPE.batch}x{SHAPE.seq}",
        "threads": os.cpu_count(), "loadavg_before_timing": load_before,
        "recipe": {"steps": args.steps, "batch": args.batch, "cosine": args.cosine, "dropout": dropout}},
        threads=os.cpu_count())


if __name__ == "__main__":
    main()
