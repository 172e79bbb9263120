"""A run-time fast path for batches without padding: ONNX Runtime's CPU flash attention where no key is masked.

ONNX Runtime's CPU ``MultiHeadAttention`` has a flash-attention kernel (MLAS, tiled to the L2 cache, online
softmax), but takes it only when the node has no key-padding mask. A sentence encoder always has a mask input,
so it always takes the masked path, which writes every (S, S) score matrix to memory. Yet a batch often has
no padding at all: always at batch 1, and whenever the batch's sentences have one length (length bucketing).
:class:`UnpaddedFastPathFusion` lets the graph choose per batch::

    mask (B, S) int32, 0 = padding
      ├─ ReduceMin ─ Greater(0) ─────────────── no key is padding ─┐
      └─ Shape ─ B·S·S ─ GreaterOrEqual(min_scores) ── big enough ─┴─ And ── flash
                                                                           │
    x (B, S, D) ──────────────────────────────────────────────────────── If(flash)
        then: MatMul(x, W_qkv) ─ Split ─ MultiHeadAttention(q, k, v, b_qkv)     (ORT's flash kernel)
        else: com.microsoft.Attention(x, W_qkv, b_qkv, mask)                    (the node as it was)

from packed-QKV ``com.microsoft.Attention`` (what :mod:`.qkv_packing` writes); a ``MultiHeadAttention`` whose Q/K/V
stayed separate gets the same ``If`` with the unmasked twin of itself. The else branch is the original node, so
padded and small batches run exactly what they ran before. Both branches compute the same attention: a mask of
all ones masks nothing. The mask must be a (B, S) graph input (as int32 or through one ``Cast``), so "no zero"
means "no padding"; causal attention, 1-D mask lengths, attention bias and past key/value stay as they are.

``min_scores`` gates on B·S²: measured on all-MiniLM-L6-v2 (ORT 1.32, 2-core Xeon), the flash path is 0-5 %
slower below B·S² = 2^18 (1×128, 1×256, 2×256, 4×128: the score matrices still fit in cache), about 2 % faster at
2^18 (1×512, level at 4×256), and 8 % (8×256), 2.5 % (32×128) and 9-13 % (8×512) faster above it
(benchmarks/optimum/README.md). The pipeline's default gate is 2^18.

Quantizers start from the plain graph (:func:`remove_unpadded_fast_path`): static INT8 and FP16 conversion do
not look into subgraphs, and on the demo's dynamic INT8 student the ``If`` overhead (tens of microseconds per
node, 3.5 % of a 5 ms model at 1×128) outweighed the flash branch (no gain at 32×128). ONNX Runtime's dynamic
quantizer can quantize the branches (``EnableSubgraph``: the packed weight quantized once, shared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgedistill.fuse.base import Fusion, miss
from edgedistill.fuse.forms import MS_DOMAIN
from edgedistill.fuse.graph import Graph

CARRIED = ("num_heads", "scale", "mask_filter_value")


@dataclass(frozen=True)
class UnpaddedMatch:
    node: onnx.NodeProto
    mask: str
    packed: bool  # com.microsoft.Attention (x, W_qkv, b_qkv, mask), else MultiHeadAttention (q, k, v, bias, mask)


def key_padding_input(g: Graph, mask: str) -> str | None:
    """The (B, S) graph input ``mask`` is, or is one ``Cast`` of; None otherwise."""
    producer = g.producer(mask)
    if producer is not None and producer.op_type != "Cast":
        return None
    name = producer.input[0] if producer is not None else mask
    value = g.graph_inputs().get(name)
    if value is None or len(value.type.tensor_type.shape.dim) != 2:
        return None
    return name


def match_unpadded(g: Graph, node: onnx.NodeProto, mask_index: int) -> UnpaddedMatch | None:
    """A self-attention node whose only extra input is a (B, S) key-padding mask from a graph input.

    An attention bias is checked first: a node with one (DeBERTa's position terms, padding folded in) has no unmasked
    twin, since ONNX Runtime's CPU flash kernel takes no bias, and its padding is not in a key-padding mask.
    """
    if any(node.input[mask_index + 1:]):
        return miss("attention bias or past key/value inputs: ONNX Runtime's CPU flash kernel takes neither")
    if len(node.input) <= mask_index or not node.input[mask_index]:
        return miss("no key-padding mask: the node already takes the unmasked path")
    if extra := sorted(a.name for a in node.attribute if a.name not in CARRIED):
        return miss(f"attributes {extra} (causal, rotary, uneven QKV widths) have no unmasked twin")
    if key_padding_input(g, node.input[mask_index]) is None:
        return miss(f"mask '{node.input[mask_index]}' is not a (B, S) graph input: zeros there may not mean padding")
    return UnpaddedMatch(node, node.input[mask_index], packed=node.op_type == "Attention")


def match_packed(g: Graph, node: onnx.NodeProto) -> UnpaddedMatch | None:
    weight, bias = g.constant(node.input[1]), g.constant(node.input[2]) if len(node.input) > 2 else None
    if weight is None or bias is None or weight.ndim != 2 or weight.shape[1] % 3 or bias.shape != weight.shape[1:]:
        return miss("the packed QKV weight or bias is not a constant (D, 3W) / (3W,)")
    return match_unpadded(g, node, 3)


class UnpaddedFastPathFusion(Fusion[UnpaddedMatch]):
    """Packed-QKV ``com.microsoft.Attention`` → ``If`` (unpadded and big enough: flash path; else: the node)."""

    name = "unpadded_fast_path"
    anchor_op = "Attention"
    anchor_domain = MS_DOMAIN

    def __init__(self, graph: Graph, min_scores: int = 0):
        super().__init__(graph)
        self.min_scores = min_scores
        self.flags: dict[str, str] = {}

    def match(self, node: onnx.NodeProto) -> UnpaddedMatch | None:
        return match_packed(self.graph, node)

    def rewrite(self, match: UnpaddedMatch) -> None:
        g, node = self.graph, match.node
        stem = node.name or node.output[0]
        flash = flash_branch(g, node, stem, match.packed)
        masked = onnx.NodeProto()
        masked.CopyFrom(node)
        masked.output[0] = g.unique_name(f"{stem}/masked/context")
        choice = helper.make_node("If", [self.flag(match.mask, before=node)], [node.output[0]],
                                  name=f"{stem}{IF_SUFFIX}", then_branch=flash,
                                  else_branch=branch_graph([masked], f"{stem}/masked", float_type(g, node)))
        g.add_node(choice, before=node)
        g.remove_nodes([node])

    def flag(self, mask: str, before: onnx.NodeProto) -> str:
        """Bool scalar: ``mask`` (0 = padding) has no zero, and B·S² >= min_scores. Made once per mask."""
        if mask not in self.flags:
            g = self.graph
            name = {part: g.unique_name(f"{mask}/{part}") for part in
                    ("min", "no_padding", "shape", "batch", "seq", "tokens", "scores", "big", "flash")}
            zero = g.add_initializer(g.unique_name(f"{mask}/zero"), np.array(0, dtype=np.int32))
            first, second = (g.add_initializer(g.unique_name(f"{mask}/axis{i}"), np.array(i, dtype=np.int64))
                             for i in (0, 1))
            least = g.add_initializer(g.unique_name(f"{mask}/{GATE}"), np.array(self.min_scores, dtype=np.int64))
            nodes: list[tuple[str, list[str], str, dict[str, Any]]] = [
                ("ReduceMin", [mask], "min", {"keepdims": 0}), ("Greater", [name["min"], zero], "no_padding", {}),
                ("Shape", [mask], "shape", {}), ("Gather", [name["shape"], first], "batch", {}),
                ("Gather", [name["shape"], second], "seq", {}), ("Mul", [name["batch"], name["seq"]], "tokens", {}),
                ("Mul", [name["tokens"], name["seq"]], "scores", {}),
                ("GreaterOrEqual", [name["scores"], least], "big", {}),
                ("And", [name["no_padding"], name["big"]], "flash", {}),
            ]
            for op, inputs, out, attrs in nodes:
                g.add_node(helper.make_node(op, inputs, [name[out]], name=name[out], **attrs), before=before)
            self.flags[mask] = name["flash"]
        return self.flags[mask]


class UnpaddedMhaFastPathFusion(UnpaddedFastPathFusion):
    """The same ``If`` around ``MultiHeadAttention(q, k, v, bias, mask)`` (Q/K/V left unpacked)."""

    name = "unpadded_fast_path_mha"
    anchor_op = "MultiHeadAttention"

    def match(self, node: onnx.NodeProto) -> UnpaddedMatch | None:
        if not all(node.input[:3]):
            return miss("packed query/key/value")
        return match_unpadded(self.graph, node, 4)


IF_SUFFIX = "/unpadded_if"
GATE = "min_scores"  # initializer name stem of the B·S² threshold


def float_type(g: Graph, node: onnx.NodeProto) -> int:
    """The attention's float element type: its packed weight's, else a recorded value info's, else float32."""
    weight = g.constant(node.input[1]) if node.op_type == "Attention" else None
    if weight is not None:
        return helper.np_dtype_to_tensor_dtype(weight.dtype)
    infos = {v.name: v for v in [*g.graph.value_info, *g.graph.input, *g.graph.output]}
    known = [infos[n].type.tensor_type.elem_type for n in (node.output[0], node.input[0]) if n in infos]
    return next((t for t in known if t), TensorProto.FLOAT)


def branch_graph(nodes: list[onnx.NodeProto], stem: str, dtype: int) -> onnx.GraphProto:
    return helper.make_graph(nodes, stem.replace("/", "_"), [],
                             [helper.make_tensor_value_info(nodes[-1].output[0], dtype, None)])


def flash_branch(g: Graph, node: onnx.NodeProto, stem: str, packed: bool) -> onnx.GraphProto:
    """The unmasked twin of ``node``: (QKV GEMM and Split, then) ``MultiHeadAttention`` without a mask."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name != "mask_filter_value"}
    nodes = []
    if packed:
        x, weight, bias = node.input[:3]
        width = g.constant(weight).shape[1] // 3  # type: ignore[union-attr]
        sizes = g.add_initializer(g.unique_name(f"{stem}/qkv_sizes"), np.array([width] * 3, dtype=np.int64))
        qkv = g.unique_name(f"{stem}/flash/qkv")
        parts = [g.unique_name(f"{stem}/flash/{p}") for p in "qkv"]
        nodes += [helper.make_node("MatMul", [x, weight], [qkv], name=qkv),
                  helper.make_node("Split", [qkv, sizes], parts, name=f"{stem}/flash/split", axis=-1)]
        inputs = [*parts, bias]
    else:
        inputs = list(node.input[:3]) + [i for i in node.input[3:4] if i]
    out = g.unique_name(f"{stem}/flash/context")
    nodes.append(helper.make_node("MultiHeadAttention", inputs, [out], name=f"{stem}/flash/attention",
                                  domain=MS_DOMAIN, **attrs))
    return branch_graph(nodes, f"{stem}/flash", float_type(g, node))


def add_unpadded_fast_path(model: onnx.ModelProto, min_scores: int = 0) -> dict:
    """Apply both fusions to ``model`` in place; returns the counts of each, keyed by fusion."""
    graph = Graph(model)
    return {f.name: f(graph, min_scores).apply().as_dict() for f in (UnpaddedFastPathFusion, UnpaddedMhaFastPathFusion)}


def remove_unpadded_fast_path(model: onnx.ModelProto) -> int:
    """Undo :func:`add_unpadded_fast_path` in place: each ``If`` becomes its else branch again; returns how many.

    For tools that do not look inside subgraphs (static INT8, FP16 conversion).
    """
    graph = Graph(model)
    choices = [n for n in model.graph.node if n.op_type == "If" and n.name.endswith(IF_SUFFIX)]
    for choice in choices:
        other = next(a.g for a in choice.attribute if a.name == "else_branch")
        node = onnx.NodeProto()
        node.CopyFrom(other.node[0])
        node.output[0] = choice.output[0]
        graph.add_node(node, before=choice)
        graph.remove_nodes([choice])
    if choices:
        graph.prune()
    return len(choices)


def with_gate(model: onnx.ModelProto, min_scores: int) -> int:
    """Set every fast-path threshold of ``model`` to ``min_scores`` in place; returns how many there were.

    With 0, every unpadded batch takes the flash branch: how verification reaches that branch at small shapes.
    """
    gates = [init for init in model.graph.initializer if f"/{GATE}_" in init.name]
    for init in gates:
        init.CopyFrom(numpy_helper.from_array(np.array(min_scores, dtype=np.int64), init.name))
    return len(gates)
