"""Matchers for a decoder's self-attention with a KV cache, as our dynamo export of a Hugging Face causal LM writes
it (Llama, Qwen2, Mistral, SmolLM: rotary position embedding, grouped-query attention)::

    x ─MatMul Wq─▶ q (B,S,N*H) ─split heads─▶ [rotary] ─[Mul √s]──────────────────────────────────────┐
    x ─MatMul Wk─▶ k (B,S,KV*H) ─split heads─▶ [rotary] ─Concat(past_key, ·)─▶ present.i.key            │
                                                           └─[repeat_kv]─swap last two─[Mul √s]─ MatMul ┘
                                                    ─[Add bias]─Softmax─[NaN guard]─MatMul─merge heads─▶ output
    x ─MatMul Wv─▶ v (B,S,KV*H) ─split heads─▶ Concat(past_value, ·)─▶ present.i.value ─[repeat_kv]─────┘

``rotary``: ``q·cos + rotate_half(q)·sin``, with ``cos``/``sin`` = ``Cos``/``Sin`` of ``position_ids × inv_freq``
(both halves); ``repeat_kv``: Hugging Face's ``Unsqueeze → Expand → Reshape`` that repeats each key/value head for
its ``N / KV`` query heads (absent when ``KV = N``). The match keeps what a fused node needs: the three projection
outputs, the cache's graph input and output names, the rotary's frequencies, the scale and the additive bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from edgedistill.fuse.attention_match import (
    HEADS_FIRST,
    attr,
    heads_transposed,
    hidden_size,
    match_scored_block,
    match_swap_last_two,
    produced_by,
    strip_scale,
)
from edgedistill.fuse.base import miss
from edgedistill.fuse.graph import Graph


@dataclass(frozen=True)
class Rotary:
    """``out = x·cos + rotate_half(x)·sin`` on heads-first ``x`` (B, N, S, H), the halves not interleaved."""

    source: str
    cos: str
    sin: str
    nodes: tuple[onnx.NodeProto, ...]


@dataclass(frozen=True)
class Frequencies:
    """Where ``cos``/``sin`` come from: ``position_ids`` (a graph input) times ``inv_freq`` (H/2), then an optional
    scalar factor (rope scaling's attention factor)."""

    position_ids: str
    inv_freq: np.ndarray
    factor: float


@dataclass(frozen=True)
class CachedHeads:
    """One of key or value: the new tokens' projection (B, S, KV*H) split into heads, appended to the cache."""

    source: str  # (B, S, KV*H)
    past: str  # graph input (B, KV, P, H)
    present: str  # graph output (B, KV, P+S, H)
    kv_heads: int
    head_size: int
    rotary: Rotary | None
    nodes: tuple[onnx.NodeProto, ...]


@dataclass(frozen=True)
class DecoderAttentionMatch:
    """One cached self-attention block of a decoder, ready to become one fused node."""

    pattern: str
    query: str  # (B, S, N*H), before rotary
    key: CachedHeads
    value: CachedHeads
    output: str  # (B, S, N*H)
    num_heads: int
    head_size: int
    scale: float
    bias: str | None  # additive (B|1, 1, S, P+S): causal and padding mask as the export computes it
    frequencies: Frequencies | None  # None: no rotary embedding
    nodes: tuple[onnx.NodeProto, ...]
    anchor: onnx.NodeProto

    @property
    def kv_heads(self) -> int:
        return self.key.kv_heads


def mul_operands(g: Graph, name: str) -> tuple[onnx.NodeProto, str, str] | None:
    node = produced_by(g, name, "Mul")
    return None if node is None else (node, node.input[0], node.input[1])


def match_rotate_half(g: Graph, name: str) -> tuple[str, tuple[onnx.NodeProto, ...]] | None:
    """``name`` = Concat(-x[..., H/2:], x[..., :H/2]) on the last axis → ``(x, nodes)``."""
    concat = produced_by(g, name, "Concat")
    if concat is None or len(concat.input) != 2 or attr(concat, "axis") not in (-1, 3):
        return miss(f"'{name}' is not rotate_half's Concat of two halves on the last axis")
    neg = produced_by(g, concat.input[0], "Neg")
    upper = produced_by(g, neg.input[0], "Slice") if neg is not None else None
    lower = produced_by(g, concat.input[1], "Slice") if upper is not None else None
    if neg is None or upper is None or lower is None or upper.input[0] != lower.input[0]:
        return miss(f"'{name}' is not Concat(-x[..., H/2:], x[..., :H/2]) of one x")
    half = g.scalar(lower.input[2])
    if g.scalar(lower.input[1]) != 0 or half is None or g.scalar(upper.input[1]) != half:
        return miss(f"the slices of rotate_half at '{name}' do not split the last axis in two halves")
    return lower.input[0], (concat, neg, upper, lower)


def match_rotary(g: Graph, name: str) -> Rotary | None:
    """``name`` = Add(Mul(x, cos), Mul(rotate_half(x), sin)), either operand order."""
    add = produced_by(g, name, "Add")
    if add is None:
        return None
    for first, second in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        a, b = mul_operands(g, first), mul_operands(g, second)
        if a is None or b is None:
            continue
        for x, cos in ((a[1], a[2]), (a[2], a[1])):
            for rotated, sin in ((b[1], b[2]), (b[2], b[1])):
                half = g.producer(rotated)
                found = match_rotate_half(g, rotated) if half is not None and half.op_type == "Concat" else None
                if found is not None and found[0] == x:
                    return Rotary(x, cos, sin, (add, a[0], b[0], *found[1]))
    return miss(f"'{name}' is not x·cos + rotate_half(x)·sin")


def strip_unsqueeze(g: Graph, name: str) -> str:
    node = g.producer(name)
    return node.input[0] if node is not None and node.op_type == "Unsqueeze" else name


def match_frequencies(g: Graph, rotary: Rotary) -> Frequencies | None:
    """The rotary's ``cos`` traced to ``Cos(Concat(f, f))``, ``f = position_ids × inv_freq`` (and ``sin`` to the
    same ``f``), with an optional scalar factor after ``Cos``/``Sin``."""
    cos_name, factor = strip_unsqueeze(g, rotary.cos), 1.0
    node = g.producer(cos_name)
    if node is not None and node.op_type == "Mul":
        inner, factor, _ = strip_scale(g, cos_name)
        node = g.producer(inner)
    if node is None or node.op_type != "Cos":
        return miss(f"rotary cos '{rotary.cos}' does not come from a Cos")
    sin = g.producer(strip_scale(g, strip_unsqueeze(g, rotary.sin))[0])
    if sin is None or sin.op_type != "Sin" or sin.input[0] != node.input[0]:
        return miss(f"rotary sin '{rotary.sin}' is not Sin of the angles that cos takes")
    both = produced_by(g, node.input[0], "Concat")
    if both is None or len(both.input) != 2 or both.input[0] != both.input[1]:
        return miss(f"rotary angles '{node.input[0]}' are not Concat(f, f) (interleaved rotary is not matched)")
    angles = produced_by(g, both.input[0], "Mul")
    if angles is None:
        return None
    for positions, inv in ((angles.input[0], angles.input[1]), (angles.input[1], angles.input[0])):
        freq = g.constant(inv)
        source = position_source(g, positions)
        if freq is not None and source is not None:
            return Frequencies(source, freq.reshape(-1).astype(np.float64), factor)
    return miss(f"rotary angles '{both.input[0]}' are not position_ids × a constant inv_freq")


def position_source(g: Graph, name: str) -> str | None:
    """The graph input that ``name`` is, through Cast and Unsqueeze nodes."""
    node = g.producer(name)
    while node is not None and node.op_type in ("Cast", "Unsqueeze"):
        name = node.input[0]
        node = g.producer(name)
    return name if node is None and name in g.graph_inputs() else None


def match_repeat_kv(g: Graph, name: str) -> tuple[str, int, tuple[onnx.NodeProto, ...]]:
    """``name`` = Reshape(Expand(Unsqueeze(x, 2), [B, KV, n, T, H]), [B, KV*n, T, H]) → ``(x, n, nodes)``;
    ``(name, 1, ())`` when there is no repeat (as many key/value heads as query heads)."""
    reshape = g.producer(name)
    expand = g.producer(reshape.input[0]) if reshape is not None and reshape.op_type == "Reshape" else None
    unsqueeze = g.producer(expand.input[0]) if expand is not None and expand.op_type == "Expand" else None
    if reshape is None or expand is None or unsqueeze is None or unsqueeze.op_type != "Unsqueeze":
        return name, 1, ()
    axes = g.constant(unsqueeze.input[1])
    target = g.producer(expand.input[1])
    repeats = g.constant(target.input[2]) if target is not None and target.op_type == "Concat" else None
    if axes is None or axes.reshape(-1).tolist() != [2] or repeats is None or repeats.size != 1:
        return name, 1, ()
    return unsqueeze.input[0], int(repeats.reshape(-1)[0]), (reshape, expand, unsqueeze)


def split_heads(g: Graph, name: str) -> tuple[onnx.NodeProto, onnx.NodeProto, int, int] | None:
    """(Reshape, Transpose, heads, head_size) of heads-first ``name``; heads from the projection's width where the
    reshape says -1."""
    split = heads_transposed(g, name, HEADS_FIRST, known=1)
    if split is None:
        return None
    reshape, transpose, (heads, head_size) = split
    width = hidden_size(g, reshape.input[0]) if heads <= 0 else None
    heads = heads if heads > 0 else width // head_size if width and width % head_size == 0 else 0
    if heads <= 0:
        return miss(f"the head count of '{reshape.input[0]}' is neither in its head split nor in its projection")
    return reshape, transpose, heads, head_size


@dataclass(frozen=True)
class CacheAppend:
    """``present`` = Concat(``past``, ``new``) on the sequence axis, a graph output, read through ``repeat_kv``."""

    past: str
    present: str
    new: str
    nodes: tuple[onnx.NodeProto, ...]


def match_cache_append(g: Graph, name: str) -> CacheAppend | None:
    """A key/value as attention reads it: (repeated) ``present`` = Concat(past cache input, new heads)."""
    present, _, repeat_nodes = match_repeat_kv(g, name)
    concat = produced_by(g, present, "Concat")
    if concat is None:
        return None
    past = concat.input[0] if len(concat.input) == 2 else ""
    if attr(concat, "axis") not in (-2, 2) or past not in g.graph_inputs() or not g.is_graph_output(present):
        return miss(f"'{present}' is not Concat(past cache input, new heads) on the sequence axis, a graph output")
    return CacheAppend(past, present, concat.input[1], (*repeat_nodes, concat))


def match_cached_heads(g: Graph, name: str, rotary: bool) -> CachedHeads | None:
    """The new heads of a cache append traced back through the rotary (``rotary``) to their projection."""
    cache = match_cache_append(g, name)
    if cache is None:
        return None
    new, rot = cache.new, None
    if rotary:
        rot = match_rotary(g, new)
        if rot is None:
            return None
        new = rot.source
    split = split_heads(g, new)
    if split is None:
        return None
    reshape, transpose, heads, head_size = split
    nodes = (*cache.nodes, *(rot.nodes if rot else ()), reshape, transpose)
    return CachedHeads(reshape.input[0], cache.past, cache.present, heads, head_size, rot, nodes)


@dataclass(frozen=True)
class AttentionOpWithCache:
    """An opset-23 ``Attention`` node whose key and value are the (repeated) cache appends: the op can take the
    cache itself (``past_key``/``past_value`` in, ``present`` out) and group the heads without the repeat."""

    node: onnx.NodeProto
    key: CacheAppend
    value: CacheAppend

    @property
    def pattern(self) -> str:
        return "attention_op_with_past"


def match_attention_op_with_cache(g: Graph, node: onnx.NodeProto) -> AttentionOpWithCache | None:
    if len(node.input) > 4 or len(node.output) > 1:
        return miss(f"Attention '{node.output[0]}' already takes a cache or returns more than its output")
    if attr(node, "is_causal", 0):
        return miss(f"Attention '{node.output[0]}' is causal by attribute, which opset 23 aligns top-left: with a "
                    "cache it needs the bias the export computes")
    key = match_cache_append(g, node.input[1])
    value = match_cache_append(g, node.input[2]) if key else None
    if key is None or value is None:
        return None
    return AttentionOpWithCache(node, key, value)


def match_decoder_attention(g: Graph, softmax: onnx.NodeProto) -> DecoderAttentionMatch | None:
    """A decoder's cached self-attention block (anchor: its Softmax); see the module drawing."""
    block = match_scored_block(g, softmax)
    if block is None:
        return None
    pv, scores, q, k = block.pv, block.scores, block.query, block.key
    q_node = g.producer(q)
    q_rot = match_rotary(g, q) if q_node is not None and q_node.op_type == "Add" else None
    swap = match_swap_last_two(g, k)
    if swap is None:
        return None
    key = match_cached_heads(g, swap[0], rotary=q_rot is not None)
    value = match_cached_heads(g, pv.input[1], rotary=False) if key else None
    q_split = split_heads(g, q_rot.source if q_rot else q) if value else None
    if key is None or value is None or q_split is None:
        return None
    frequencies = match_frequencies(g, q_rot) if q_rot else None
    if q_rot is not None:
        if frequencies is None:
            return None
        if key.rotary is None or (key.rotary.cos, key.rotary.sin) != (q_rot.cos, q_rot.sin):
            return miss("query and key are rotated with different cos/sin")
    reshape, transpose, heads, head_size = q_split
    if heads % key.kv_heads or {key.head_size, value.head_size} != {head_size} or \
            value.kv_heads != key.kv_heads:
        return miss(f"query heads {heads}x{head_size} and key/value heads {key.kv_heads}x{key.head_size}, "
                    f"{value.kv_heads}x{value.head_size} do not group")
    pattern = ("rotary_" if q_rot else "") + ("gqa" if heads != key.kv_heads else "mha") + "_with_past"
    nodes = (reshape, transpose, *(q_rot.nodes if q_rot else ()), *block.query_nodes, *block.key_nodes, *swap[1],
             *key.nodes, *value.nodes, *scores.nodes, *block.guard_nodes, pv, *block.context_nodes)
    scale = float(np.float64(block.query_scale) * block.key_scale * scores.scale)
    return DecoderAttentionMatch(pattern, reshape.input[0], key, value, block.output, heads, head_size, scale,
                                 scores.mask, frequencies, nodes, softmax)
