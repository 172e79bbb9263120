"""A decoder candidate's latency per generated token: tgN (llama-bench's text generation, N single-token steps
from an empty cache) measured here on ONNX Runtime, every candidate interleaved repetition by repetition; or, for a
remote target, the decode roofline (labelled as an estimate, never a measurement).

The roofline of one decode step: it reads every weight once (an embedding table only gathered from aside) and the
KV cache so far, and computes two FLOPs per weight; at the target's memory bandwidth and peak that takes
``max(bytes / bandwidth, flops / peak)``. It is taken at the mean context of a tgN run, N/2 tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WARMUP = 8  # untimed steps per session before the first repetition
TURN_WARMUP = 2  # untimed steps opening each candidate's turn (the switch leaves caches cold)
MEASURED = "measured (ONNX Runtime, this machine, tg{n} interleaved, median ms per token)"
ESTIMATED = "estimate (decode roofline: weights and KV cache read per token at the target's bandwidth)"


def label(tokens: int) -> str:
    return f"tg{tokens}"


def measured(decoders: dict[str, Path], tokens: list[int], repetitions: int,
             threads: int | None) -> dict[str, dict[str, float]]:
    """Median ms per token of each exported decoder over ``repetitions`` runs generating ``tokens`` one at a time
    from an empty cache, the decoders taking turns within each repetition (so drift is shared)."""
    from edgedistill.bench.token_rate import DecoderRunner
    from edgedistill.lm.decoders import OrtDecoder

    runners = {name: DecoderRunner(OrtDecoder(path, threads)) for name, path in decoders.items()}
    for runner in runners.values():
        runner.decode(tokens[:WARMUP])
    per_token: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repetitions):
        for name, runner in runners.items():
            runner.decode(tokens[:TURN_WARMUP])
            steps = runner.decode(tokens)
            per_token[name].append(1e3 * sum(steps) / len(steps))
    return {name: {label(len(tokens)): float(np.median(ms))} for name, ms in per_token.items()}


def cache_bytes(path: Path, context: int) -> int:
    """Bytes of the KV cache a decode step reads at ``context`` past tokens (from the graph's past inputs, shaped
    batch × KV heads × past × head size)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    total = 0
    for value in graph.input:
        if value.name.startswith("past_key_values."):
            dims = value.type.tensor_type.shape.dim
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).itemsize
            total += dims[1].dim_value * dims[3].dim_value * context * itemsize
    return total


def estimated(items: list[tuple[str, Path, Path, str]], target: str, tokens: int) -> dict[str, dict[str, float]]:
    """Roofline ms per token on ``target`` for ``items`` (candidate, shipped decoder, its float decoder, precision):
    bytes from the shipped graph (4-bit weights read as 4 bits), FLOPs from the float one, at the target's fp32 peak
    for a float candidate and its fp16 peak for a weight-only one (dequantized to fp16 to multiply)."""
    from edgedistill.bench.decode_bound import onnx_bytes_per_token
    from edgedistill.estimate.roofline import check_precision
    from edgedistill.targets.loader import load_target

    spec = load_target(target)
    found = {}
    for name, shipped, float_graph, precision in items:
        compute = "fp32" if precision == "fp32" or "fp16" not in spec.precisions else "fp16"
        flops = 2 * onnx_bytes_per_token(float_graph) / 4
        read = onnx_bytes_per_token(shipped) + cache_bytes(shipped, tokens // 2)
        seconds = max(read / (spec.memory_bandwidth_gbs * 1e9), flops / (check_precision(spec, compute) * 1e12))
        found[name] = {label(tokens): 1e3 * seconds}
    return found
