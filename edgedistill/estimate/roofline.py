"""Roofline estimate of a model's latency on a target: a lower bound from peak throughput and bandwidth.

Two numbers, both estimates and never measurements:

* ``lower_bound_ms`` = max(all FLOPs / peak, bytes that must move / bandwidth), where the bytes that must move
  are the weights, graph inputs and outputs, each once. No engine can beat it on this target at this precision
  (peaks are dense, at the highest clock, with every FLOP counted at the tensor-core rate).
* ``unfused_ms`` = the sum over nodes of max(node FLOPs / peak, node bytes / bandwidth): what the graph would
  take if every node ran as its own perfectly efficient kernel. Fusion can beat it; launch overheads and
  real efficiency make engines slower than it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx

from edgedistill.errors import ConfigError
from edgedistill.estimate.costs import NodeCost, Shapes, node_cost, tensor_bytes
from edgedistill.estimate.shapes import check_dim_names, infer_shapes
from edgedistill.estimate.subgraphs import flatten
from edgedistill.models.onnx_file import check_onnx_file
from edgedistill.targets import Target, load_target

LABEL = "ESTIMATE (roofline lower bound from peak specs, not a measurement)"


@dataclass(frozen=True)
class NodeTime:
    cost: NodeCost
    ms: float
    bound: str  # "compute" or "memory"


@dataclass(frozen=True)
class Estimate:
    target: str
    precision: str
    peak_tflops: float
    bandwidth_gbs: float
    flops: float
    min_bytes: float
    compute_ms: float
    memory_ms: float
    lower_bound_ms: float
    unfused_ms: float
    unknown_nodes: int
    nodes: list[NodeTime] = field(repr=False)
    notes: list[str] = field(default_factory=list)
    label: str = LABEL

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "nodes"}
        data["top_nodes"] = [{"name": n.cost.name, "op_type": n.cost.op_type, "gflops": n.cost.flops / 1e9,
                              "mbytes": n.cost.bytes / 1e6, "ms": n.ms, "bound": n.bound}
                             for n in top_nodes(self, top)]
        return data


def check_precision(target: Target, precision: str) -> float:
    """The target's peak TFLOPS for ``precision``; ConfigError if the target lacks it."""
    peak = target.peak.of(precision) if precision in target.precisions else None
    if peak is None:
        raise ConfigError(f"target '{target.name}' has no {precision} (it has {', '.join(target.precisions)}); "
                          f"pick one of those with --precision")
    return peak


def required_bytes(graph: onnx.GraphProto, shapes: Shapes, precision: str) -> float:
    """Weights, graph inputs and outputs, each read or written once (a table only Gathered from: its rows)."""
    gathered: dict[str, float] = {}
    other_use: set[str] = set()
    for node in graph.node:
        for i, name in enumerate(node.input):
            if node.op_type == "Gather" and i == 0 and node.output[0] in shapes:
                gathered[name] = gathered.get(name, 0.0) + tensor_bytes(shapes[node.output[0]], precision)
            else:
                other_use.add(name)
    total = 0.0
    initializers = {i.name for i in graph.initializer}
    io = [v.name for v in graph.input if v.name not in initializers] + [v.name for v in graph.output]
    for name in [*initializers, *io]:
        if name not in shapes:
            continue
        full = tensor_bytes(shapes[name], precision)
        total += full if name in other_use or name not in gathered else min(full, gathered[name])
    return total


def node_time(cost: NodeCost, peak_flops: float, bandwidth: float) -> NodeTime:
    compute, memory = cost.flops / peak_flops, cost.bytes / bandwidth
    return NodeTime(cost, 1e3 * max(compute, memory), "compute" if compute >= memory else "memory")


def estimate_graph(model: onnx.ModelProto, target: Target, precision: str, dims: dict[str, int] | None = None,
                   shapes: dict[str, list[int]] | None = None) -> Estimate:
    """Roofline estimate of ``model`` on ``target`` (see the module docstring for what the numbers mean).

    Raises:
        ConfigError: the target lacks ``precision``.
        InputError: an input dimension has no size, or shape inference fails.
    """
    peak = check_precision(target, precision) * 1e12
    bandwidth = target.memory_bandwidth_gbs * 1e9
    model, notes = flatten(model)  # an If counts as one branch, inlined
    known = infer_shapes(model, dims, shapes)
    costs = [node_cost(node, known, precision) for node in model.graph.node]
    flops = sum(c.flops for c in costs)
    min_bytes = required_bytes(model.graph, known, precision)
    compute_ms, memory_ms = 1e3 * flops / peak, 1e3 * min_bytes / bandwidth
    times = [node_time(c, peak, bandwidth) for c in costs]
    return Estimate(
        target=target.name, precision=precision, peak_tflops=peak / 1e12, bandwidth_gbs=target.memory_bandwidth_gbs,
        flops=flops, min_bytes=min_bytes, compute_ms=compute_ms, memory_ms=memory_ms,
        lower_bound_ms=max(compute_ms, memory_ms), unfused_ms=sum(t.ms for t in times),
        unknown_nodes=sum(not c.known for c in costs), nodes=times, notes=notes,
    )


def estimate(model: str | Path, target: str, precision: str | None = None, dims: dict[str, int] | None = None,
             shapes: dict[str, list[int]] | None = None) -> Estimate:
    """Roofline estimate for the ONNX file ``model`` on the target called ``target``.

    ``precision`` defaults to the target's; ``dims`` sizes symbolic input dimensions (default ``batch=1`` and,
    for ``sequence``, the exported maximum length when the file records it).

    Raises:
        ConfigError: unknown target, or a precision the target lacks.
        InputError: the file is not a valid ONNX model, an input dimension has no size, or ``dims`` names a
            dimension the model does not have.
    """
    spec = load_target(target)
    proto = check_onnx_file(Path(model))
    check_dim_names(proto, dims or {})
    return estimate_graph(proto, spec, precision or spec.default_precision, default_dims(proto, dims), shapes)


def default_dims(proto: onnx.ModelProto, dims: dict[str, int] | None) -> dict[str, int]:
    meta = {p.key: p.value for p in proto.metadata_props}
    found = {"batch": 1}
    if "edgedistill.max_length" in meta:
        found["sequence"] = int(meta["edgedistill.max_length"])
    return {**found, **(dims or {})}


def top_nodes(est: Estimate, top: int = 10) -> list[NodeTime]:
    return sorted(est.nodes, key=lambda n: n.ms, reverse=True)[:top]


def format_estimate(est: Estimate, top: int = 10) -> str:
    """A plain-text report: the label, the two latency figures, and the ``top`` slowest nodes."""
    lines = [
        est.label,
        f"target {est.target}, {est.precision}: peak {est.peak_tflops:g} TFLOPS, {est.bandwidth_gbs:g} GB/s",
        f"total {est.flops / 1e9:.3f} GFLOP, at least {est.min_bytes / 1e6:.1f} MB moved",
        f"lower bound   {est.lower_bound_ms:.4f} ms  (compute {est.compute_ms:.4f} ms, memory {est.memory_ms:.4f} ms)",
        f"unfused sum   {est.unfused_ms:.4f} ms  (each node alone at peak; fusion can beat it, real kernels won't)",
    ]
    if est.unknown_nodes:
        lines.append(f"note: {est.unknown_nodes} nodes had unknown shapes and count as zero")
    lines += [f"note: {note}" for note in est.notes]
    lines.append(f"{'node':40} {'op':22} {'GFLOP':>10} {'MB':>9} {'ms':>9}  bound")
    for n in top_nodes(est, top):
        c = n.cost
        lines.append(f"{c.name[:40]:40} {c.op_type[:22]:22} {c.flops / 1e9:10.4f} {c.bytes / 1e6:9.3f} "
                     f"{n.ms:9.4f}  {n.bound}")
    return "\n".join(lines)
