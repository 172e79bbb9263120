"""Fused-attention kernel vs SDPA's flash backend: TFLOP/s for batch 8, 12 heads, head size 64, FP16 (by default).

Usage: python benchmarks/gpu/attention_bench.py [--seqs 128 512 2048] [--causal] [--head-size 64]
       [--dtype float16|bfloat16] [--variants default mma-16-rows mma-32-rows wmma simt] [--label NAME] [--out FILE]
Each figure is the median of `--repeats` timings of `--iters` back-to-back calls after `--warmup` calls, timed with
CUDA events, every kernel measured in the same process on the same inputs. The `--iters` calls are captured in one
CUDA graph and replayed (`--timing graph`, the default), so Python and ctypes launch overhead (tens of microseconds,
more than the whole kernel at sequence 128) is out of both sides' figures; `--timing eager` times plain calls.
The figures are written as a results document: benchmarks/gpu/results/<date>-<label>-<device>.json (label by
default attention-<dtype>-d<head size>[-causal]), or --out FILE (attention_check.sh writes into its folder).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options

from options import add_out, area_of, save_results  # noqa: E402

AREA = area_of(__file__)


def time_ms(fn, warmup: int, iters: int, repeats: int, timing: str = "graph") -> float:
    """Median milliseconds per call: `iters` calls captured in a CUDA graph and replayed, or plain eager calls.

    Raises:
        RuntimeError: the calls could not be captured (then time them with timing="eager").
    """
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    run: Callable[[], object] = lambda: [fn() for _ in range(iters)]  # noqa: E731
    if timing == "graph":
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="relaxed"):
            run()
        run = graph.replay
        run()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / iters)
    return statistics.median(samples)


def attention_flops(batch: int, heads: int, seq: int, head_size: int, causal: bool) -> float:
    """Forward FLOPs: Q K^T and P V, 2 * S^2 * D multiply-adds each per head (halved when causal)."""
    flops = 4.0 * batch * heads * seq * seq * head_size
    return flops / 2 if causal else flops


# Our kernels timed side by side: name -> environment. "default" is what the launcher picks (mma on sm_80+).
VARIANTS = {
    "default": {},
    "mma-16-rows": {"EDFA_MMA_WARP_ROWS": "16"},
    "mma-32-rows": {"EDFA_MMA_WARP_ROWS": "32"},
    "wmma": {"EDFA_KERNEL": "wmma"},
    "simt": {"EDFA_KERNEL": "simt"},
}


def with_env(settings: dict, fn):
    """Runs fn() with the environment variables in settings set (and restores them)."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        return fn()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def bench_one(seq: int, args: argparse.Namespace) -> dict:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from edgedistill.plugins.attention import cuda_attention, cuda_kernel_name

    b, h, d = args.batch, args.heads, args.head_size
    dtype = getattr(torch, args.dtype)
    q, k, v = (torch.randn(b, seq, h * d, device="cuda", dtype=dtype) for _ in range(3))
    qh, kh, vh = (t.view(b, seq, h, d).transpose(1, 2).contiguous() for t in (q, k, v))
    out = torch.empty_like(q)

    def ours():
        return cuda_attention(q, k, v, h, causal=args.causal, out=out)

    def flash():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, is_causal=args.causal)

    reference = flash().transpose(1, 2).reshape(b, seq, h * d).float()
    flops = attention_flops(b, h, seq, d, args.causal)
    kernels = {}
    for name in args.variants:
        settings = VARIANTS[name]
        err = with_env(settings, lambda: (ours().float() - reference).abs().max().item())
        ms = with_env(settings, lambda: time_ms(ours, args.warmup, args.iters, args.repeats, args.timing))
        kernels[name] = {"kernel": with_env(settings, lambda: cuda_kernel_name(q, k, v, h)), "ms": ms,
                         "tflops": flops / ms / 1e9, "max_abs_err_vs_flash": err}
    flash_ms = time_ms(flash, args.warmup, args.iters, args.repeats, args.timing)
    ours_ms = kernels["default"]["ms"]
    return {
        "seq": seq, "kernel": kernels["default"]["kernel"], "ours_ms": ours_ms, "sdpa_flash_ms": flash_ms,
        "ours_tflops": flops / ours_ms / 1e9, "sdpa_flash_tflops": flops / flash_ms / 1e9,
        "ratio_vs_flash": flash_ms / ours_ms, "max_abs_err_vs_flash": kernels["default"]["max_abs_err_vs_flash"],
        "kernels": kernels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_out(parser, AREA, None)
    parser.add_argument("--seqs", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-size", type=int, default=64)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--dtype", choices=["float16", "bfloat16"], default="float16")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timing", choices=["graph", "eager"], default="graph")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="our kernels to time ('default' always runs)")
    args = parser.parse_args()
    args.variants = ["default", *(name for name in args.variants if name != "default")]

    import torch

    rows = [bench_one(seq, args) for seq in args.seqs]
    result = {
        "benchmark": "fused_attention_vs_sdpa_flash", "dtype": args.dtype, "batch": args.batch, "heads": args.heads,
        "head_size": args.head_size, "causal": args.causal, "timing": args.timing,
        "device": torch.cuda.get_device_name(),
        "capability": ".".join(map(str, torch.cuda.get_device_capability())), "torch": torch.__version__,
        "cuda": torch.version.cuda, "host": platform.node(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": rows,
    }
    label = f"attention-{args.dtype}-d{args.head_size}" + ("-causal" if args.causal else "")
    save_results(args, "attention-bench", result, label=args.label or label)
    for r in rows:
        others = "  ".join(f"{name} {k['tflops']:.1f}" for name, k in r["kernels"].items() if name != "default")
        print(f"seq {r['seq']:5d}: ours ({r['kernel']}) {r['ours_tflops']:7.2f} TFLOP/s  flash "
              f"{r['sdpa_flash_tflops']:7.2f}  ratio {r['ratio_vs_flash']:.2f}  max|err| "
              f"{r['max_abs_err_vs_flash']:.1e}  [{others}]")


if __name__ == "__main__":
    main()
