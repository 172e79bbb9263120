"""Fused-attention kernel vs SDPA's flash backend: TFLOP/s for batch 8, 12 heads, head size 64, FP16.

Usage: python benchmarks/gpu/attention_bench.py --out results.json [--seqs 128 512 2048] [--causal]
Each figure is the median of `--repeats` timings of `--iters` back-to-back calls after `--warmup` calls, timed with
CUDA events, both kernels measured in the same process on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path


def time_ms(fn, warmup: int, iters: int, repeats: int) -> float:
    """Median milliseconds per call."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / iters)
    return statistics.median(samples)


def attention_flops(batch: int, heads: int, seq: int, head_size: int, causal: bool) -> float:
    """Forward FLOPs: Q K^T and P V, 2 * S^2 * D multiply-adds each per head (halved when causal)."""
    flops = 4.0 * batch * heads * seq * seq * head_size
    return flops / 2 if causal else flops


def bench_one(seq: int, args: argparse.Namespace) -> dict:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from edgedistill.plugins.attention import cuda_attention, cuda_kernel_name

    b, h, d = args.batch, args.heads, args.head_size
    q, k, v = (torch.randn(b, seq, h * d, device="cuda", dtype=torch.float16) for _ in range(3))
    qh, kh, vh = (t.view(b, seq, h, d).transpose(1, 2).contiguous() for t in (q, k, v))

    def ours():
        return cuda_attention(q, k, v, h, causal=args.causal)

    def flash():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, is_causal=args.causal)

    err = (ours().float() - flash().transpose(1, 2).reshape(b, seq, h * d).float()).abs().max().item()
    kernel = cuda_kernel_name(q, k, v, h)
    ours_ms = time_ms(ours, args.warmup, args.iters, args.repeats)
    flash_ms = time_ms(flash, args.warmup, args.iters, args.repeats)
    os.environ["EDFA_KERNEL"] = "simt"  # the FP32 kernel on the same inputs, for the record
    try:
        simt_ms = time_ms(ours, args.warmup, args.iters, args.repeats)
    finally:
        del os.environ["EDFA_KERNEL"]
    flops = attention_flops(b, h, seq, d, args.causal)
    return {
        "seq": seq, "kernel": kernel, "ours_ms": ours_ms, "sdpa_flash_ms": flash_ms, "simt_ms": simt_ms,
        "ours_tflops": flops / ours_ms / 1e9, "sdpa_flash_tflops": flops / flash_ms / 1e9,
        "simt_tflops": flops / simt_ms / 1e9, "ratio_vs_flash": flash_ms / ours_ms, "max_abs_err_vs_flash": err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seqs", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-size", type=int, default=64)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    rows = [bench_one(seq, args) for seq in args.seqs]
    result = {
        "benchmark": "fused_attention_vs_sdpa_flash", "dtype": "float16", "batch": args.batch, "heads": args.heads,
        "head_size": args.head_size, "causal": args.causal, "device": torch.cuda.get_device_name(),
        "capability": ".".join(map(str, torch.cuda.get_device_capability())), "torch": torch.__version__,
        "cuda": torch.version.cuda, "host": platform.node(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for r in rows:
        print(f"seq {r['seq']:5d}: ours ({r['kernel']}) {r['ours_tflops']:7.2f} TFLOP/s  "
              f"(simt {r['simt_tflops']:6.2f})  flash {r['sdpa_flash_tflops']:7.2f} TFLOP/s  "
              f"ratio {r['ratio_vs_flash']:.2f}  max|err| {r['max_abs_err_vs_flash']:.1e}")


if __name__ == "__main__":
    main()
