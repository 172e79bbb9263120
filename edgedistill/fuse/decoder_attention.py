"""Decoder attention fusions: each cached self-attention block (:mod:`edgedistill.fuse.decoder_match`) becomes one
node that appends the new keys/values to the cache and attends over grouped heads, in each form:

- ``ort`` (:class:`DecoderAttentionFusion`, the export below opset 23): ``com.microsoft.GroupQueryAttention`` with
  ``do_rotary`` (its cos/sin caches computed here from the graph's ``inv_freq``, up to the context length the export
  recorded as ``edgedistill.context_length``), the export's additive causal + padding bias as ``attention_bias``,
  ``seqlens_k`` = total length − 1 for every row and ``total_sequence_length`` from ``attention_mask``; it writes
  ``present.i.key/value`` itself. Without ``position_ids`` the node rotates each token at its slot in the cache;
  since rotary attention depends only on the distance between query and key, and the slots of a left-padded row's
  tokens are its positions shifted by its padding, the logits are the unfused graph's, left-padded rows included
  (the proof in the fuse stage checks it). The cache it writes is its own: a left-padded row's keys are rotated by
  slot, not by position, so it is not interchangeable with the unfused graph's cache;
- ``onnx`` (:class:`DecoderAttentionOpFusion`, the export at opset 23, which writes ``RotaryEmbedding``,
  ``RMSNormalization`` and ``Attention`` itself): the ``Attention`` node takes the cache (``past_key`` /
  ``past_value`` in, ``present`` out) and the key/value heads ungrouped, so the cache append and Hugging Face's
  ``repeat_kv`` go — ONNX Runtime >= 1.22, TensorRT >= 10.14.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgedistill.config.export import ATTENTION_OPSET
from edgedistill.errors import InputError
from edgedistill.fuse.base import Fusion
from edgedistill.fuse.decoder_match import (
    AttentionOpWithCache,
    DecoderAttentionMatch,
    Frequencies,
    match_attention_op_with_cache,
    match_decoder_attention,
)
from edgedistill.fuse.forms import MS_DOMAIN
from edgedistill.fuse.graph import Graph

CONTEXT_KEY = "edgedistill.context_length"
GQA_HEAD_MULTIPLE = 16  # ONNX Runtime's GroupQueryAttention kernels (1.32) reject other head sizes


def context_length(model: onnx.ModelProto) -> int | None:
    value = next((p.value for p in model.metadata_props if p.key == CONTEXT_KEY), None)
    return int(value) if value and value.isdigit() else None


def rotary_caches(freq: Frequencies, positions: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, H/2) cos and sin, in float32 arithmetic as the graph computes them."""
    angles = np.arange(positions, dtype=np.float32)[:, None] * freq.inv_freq.astype(np.float32)[None, :]
    factor = np.float32(freq.factor)
    return (np.cos(angles) * factor).astype(np.float32), (np.sin(angles) * factor).astype(np.float32)


class DecoderInputs:
    """Tensors every fused block shares, made once: rotary caches per frequency set, and GQA's lengths."""

    def __init__(self, graph: Graph, context: int):
        self.graph, self.context = graph, context
        self.caches: dict[bytes, tuple[str, str]] = {}
        self.lengths: tuple[str, str] | None = None

    def rotary(self, freq: Frequencies) -> tuple[str, str]:
        key = freq.inv_freq.tobytes() + np.float64(freq.factor).tobytes()
        if key not in self.caches:
            cos, sin = rotary_caches(freq, self.context)
            g = self.graph
            self.caches[key] = (g.add_initializer(g.unique_name("rotary_cos_cache"), cos),
                                g.add_initializer(g.unique_name("rotary_sin_cache"), sin))
        return self.caches[key]

    def gqa_lengths(self, attention_mask: str) -> tuple[str, str]:
        """``(seqlens_k, total_sequence_length)``: (B,) int32 of T − 1 and the scalar int32 T, T = the mask's width
        (every row's keys are its whole cache: padding is in the additive bias)."""
        if self.lengths is None:
            g = self.graph
            names = {part: g.unique_name(f"gqa_{part}") for part in
                     ("width", "total64", "total", "last", "batch", "seqlens_k")}
            one = g.add_initializer(g.unique_name("gqa_one"), np.array(1, dtype=np.int32))
            nodes = [
                helper.make_node("Shape", [attention_mask], [names["width"]], start=1, end=2),
                helper.make_node("Squeeze", [names["width"]], [names["total64"]]),
                helper.make_node("Cast", [names["total64"]], [names["total"]], to=TensorProto.INT32),
                helper.make_node("Sub", [names["total"], one], [names["last"]]),
                helper.make_node("Shape", [attention_mask], [names["batch"]], start=0, end=1),
                helper.make_node("Expand", [names["last"], names["batch"]], [names["seqlens_k"]]),
            ]
            for offset, node in enumerate(nodes):
                node.name = node.output[0]
                g.graph.node.insert(offset, node)  # reads only a graph input: first is topological
            g._dirty = True
            self.lengths = (names["seqlens_k"], names["total"])
        return self.lengths


def gqa_node(g: Graph, m: DecoderAttentionMatch, shared: DecoderInputs, attention_mask: str) -> list[onnx.NodeProto]:
    """``com.microsoft.GroupQueryAttention`` (query, key, value, past_key, past_value, seqlens_k,
    total_sequence_length, cos_cache, sin_cache, position_ids, attention_bias) → output, present_key, present_value."""
    seqlens, total = shared.gqa_lengths(attention_mask)
    rotary = ["", "", ""]
    if m.frequencies is not None:  # positions from the cache: see the module doc
        rotary = [*shared.rotary(m.frequencies), ""]
    inputs = [m.query, m.key.source, m.value.source, m.key.past, m.value.past, seqlens, total, *rotary, m.bias or ""]
    while not inputs[-1]:
        inputs.pop()
    g.require_opset(MS_DOMAIN, 1)
    node = helper.make_node(
        "GroupQueryAttention", inputs, [m.output, m.key.present, m.value.present],
        name=f"ort_gqa/{m.anchor.name or m.anchor.output[0]}", domain=MS_DOMAIN, num_heads=m.num_heads,
        kv_num_heads=m.kv_heads, scale=m.scale, do_rotary=int(m.frequencies is not None), rotary_interleaved=0)
    return [node]


class DecoderAttentionFusion(Fusion[DecoderAttentionMatch]):
    """Cached self-attention of a decoder into ``GroupQueryAttention`` (anchor: the block's Softmax)."""

    name = "decoder_attention"
    anchor_op = "Softmax"

    def __init__(self, graph: Graph, attention_mask: str = "attention_mask"):
        super().__init__(graph)
        self.attention_mask = attention_mask
        self.context = context_length(graph.model)
        self.shared = DecoderInputs(graph, self.context or 0)

    def match(self, node: onnx.NodeProto) -> DecoderAttentionMatch | None:
        return match_decoder_attention(self.graph, node)

    def pattern_of(self, match: DecoderAttentionMatch) -> str:
        return match.pattern

    def screen(self, match: DecoderAttentionMatch) -> str | None:
        if match.head_size % GQA_HEAD_MULTIPLE:
            return (f"head size {match.head_size}: com.microsoft.GroupQueryAttention takes multiples of "
                    f"{GQA_HEAD_MULTIPLE}")
        if match.frequencies is not None and not self.context:
            return f"the graph records no {CONTEXT_KEY}, so the rotary caches have no length"
        if self.attention_mask not in self.graph.graph_inputs():
            return f"the graph has no '{self.attention_mask}' input to take the sequence lengths from"
        return None

    def rewrite(self, match: DecoderAttentionMatch) -> None:
        g = self.graph
        old = [n for t in (match.output, match.key.present, match.value.present) if (n := g.producer(t)) is not None]
        assert len(old) == 3
        first = min(old, key=lambda n: next(i for i, x in enumerate(g.graph.node) if x is n))
        for node in gqa_node(g, match, self.shared, self.attention_mask):
            g.add_node(node, before=first)
        g.remove_nodes(old)  # what else only they used is dead now; Fusion.apply prunes it


class DecoderAttentionOpFusion(Fusion[AttentionOpWithCache]):
    """An opset-23 ``Attention`` over the cache append and ``repeat_kv`` into ``Attention`` with the cache."""

    name = "decoder_attention_op"
    anchor_op = "Attention"

    def __init__(self, graph: Graph):
        super().__init__(graph)
        if graph.opset() < ATTENTION_OPSET:
            raise InputError(f"the 'onnx' attention form needs opset {ATTENTION_OPSET}; this decoder is opset "
                             f"{graph.opset()} (re-export with export.opset: {ATTENTION_OPSET}, or use the 'ort' form)")

    def match(self, node: onnx.NodeProto) -> AttentionOpWithCache | None:
        return match_attention_op_with_cache(self.graph, node)

    def pattern_of(self, match: AttentionOpWithCache) -> str:
        return match.pattern

    def rewrite(self, match: AttentionOpWithCache) -> None:
        g, node = self.graph, match.node
        inputs = [node.input[0], match.key.new, match.value.new, node.input[3] if len(node.input) > 3 else "",
                  match.key.past, match.value.past]
        fused = helper.make_node("Attention", inputs, [node.output[0], match.key.present, match.value.present],
                                 name=f"onnx_attention/{node.name or node.output[0]}")
        fused.attribute.extend(node.attribute)
        old = [n for t in (match.key.present, match.value.present) if (n := g.producer(t)) is not None]
        first = min([node, *old], key=lambda n: next(i for i, x in enumerate(g.graph.node) if x is n))
        g.add_node(fused, before=first)
        g.remove_nodes([node, *old])
