"""Matchers for multi-head attention as the exporters write it.

Four exports are recognised (see the drawings on each matcher):

- ``sdpa_decomposed``: the dynamo (and TorchScript) exporter's decomposition of
  ``scaled_dot_product_attention`` below opset 23 — the scale split as ``sqrt(scale)`` on Q and on K, an additive
  mask from ``Where(keep, 0, -big)``, and an ``IsNaN``/``Where`` guard after ``Softmax``;
- ``eager_scaled_scores``: Hugging Face eager attention — ``MatMul → Mul|Div (scale) → Add (mask) → Softmax →
  MatMul``;
- ``onnx_attention_op``: the opset-23 ``Attention`` op on (B, N, S, H) tensors;
- ``deberta_disentangled_bias``: DeBERTa-v2/v3 disentangled attention — heads batched as (B*N, S, H) for ``bmm``,
  the content-to-position and position-to-content terms added to the scores; ``*_with_mask``: the pairwise
  boolean mask applied with ``Where(~mask, lowest, scores)``, as the export always writes it.

Each returns an :class:`AttentionMatch` with the (B, S, N*H) query/key/value tensors, the output tensor that the
fused node must produce, head count, head size, scale, the mask tensor (classified later by
:mod:`edgedistill.fuse.mask_probe`), any additive score bias (:class:`ScoreBias`, carried into the fused node as it
is) and the nodes the fused node replaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx

from edgedistill.fuse.base import miss
from edgedistill.fuse.graph import Graph

HEADS_FIRST = [0, 2, 1, 3]  # (B, S, N, H) -> (B, N, S, H)
KEYS_TRANSPOSED = [0, 2, 3, 1]  # (B, S, N, H) -> (B, N, H, S)


@dataclass(frozen=True)
class HeadSplit:
    """``source`` (B, S, N*H) reshaped to (B, S, N, H) and transposed by ``perm``."""

    source: str
    num_heads: int | None  # None when the reshape says -1
    head_size: int
    nodes: tuple[onnx.NodeProto, ...]


@dataclass(frozen=True)
class Scores:
    """``MatMul(q, k) * scale + mask``, feeding the softmax."""

    query: str  # (B, N, S, H) after any scale on Q
    key: str  # (B, N, H, S) after any scale on K
    scale: float
    mask: str | None  # additive mask tensor, broadcastable to (B, N, S_q, S_kv)
    nodes: tuple[onnx.NodeProto, ...]


@dataclass(frozen=True)
class AttentionMatch:
    """One attention block, ready to become a single fused node."""

    pattern: str
    query: str  # (B, S_q, N*H)
    key: str  # (B, S_kv, N*H)
    value: str  # (B, S_kv, N*H)
    output: str  # (B, S_q, N*H): the tensor the fused node must produce
    num_heads: int
    head_size: int
    scale: float
    mask: str | None  # tensor to classify: additive float or boolean keep-mask
    causal: bool  # declared causal (opset-23 ``is_causal``); masks found causal by probing add to this
    nodes: tuple[onnx.NodeProto, ...]
    anchor: onnx.NodeProto
    bias: ScoreBias | None = None  # an additive score bias (with the export's mask folded in), not probed


@dataclass(frozen=True)
class MaskFill:
    """The export's own masking of the scores: ``Where(condition, fill, scores)`` (or ``Where(condition, scores,
    fill)`` when ``fill_when_true`` is False), ``fill`` a scalar far below any score."""

    condition: str
    fill: str
    fill_value: float
    fill_when_true: bool


@dataclass(frozen=True)
class ScoreBias:
    """An additive bias on the scaled scores, (B*N, S_q, S_kv) as the batched-heads ``bmm`` adds it, and the mask.

    The fused node takes ``Where(mask, Reshape(tensor, (B, N, S_q, S_kv)))`` as its additive bias: kept scores get
    the bias, masked ones the fill. Since the fill is so far below the scores that ``scores + fill == fill`` in
    float32, that is the export's ``Where(mask, scores + bias)`` exactly, fully masked (padded) query rows included.
    """

    tensor: str  # (B*N, S_q, S_kv)
    terms: tuple[str, ...]  # the disentangled terms it sums: "c2p", "p2c"
    mask: MaskFill | None


def only_consumer(g: Graph, name: str, node: onnx.NodeProto) -> bool:
    """True if ``node`` is the only reader of ``name``'s values (``Shape`` reads none) and it is no graph output."""
    users = [u for u in g.consumers(name) if u.op_type != "Shape"]
    return len(users) == 1 and users[0] is node and not g.is_graph_output(name)


def single_use(g: Graph, name: str) -> bool:
    return data_user(g, name) is not None


def data_user(g: Graph, name: str) -> onnx.NodeProto | None:
    """The one node reading ``name``'s values (``Shape`` nodes aside), or None if there are more or none."""
    users = [u for u in g.consumers(name) if u.op_type != "Shape"]
    return users[0] if len(users) == 1 and not g.is_graph_output(name) else None


def produced_by(g: Graph, name: str, op_type: str) -> onnx.NodeProto | None:
    node = g.producer(name)
    if node is None or node.op_type != op_type:
        return miss(f"'{name}' comes from {node.op_type if node else 'a graph input'}, expected {op_type}")
    return node


def perm_of(node: onnx.NodeProto) -> list[int]:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [])


def attr(node: onnx.NodeProto, name: str, default: float | int | str | None = None) -> float | int | str | None:
    found = next((a for a in node.attribute if a.name == name), None)
    return onnx.helper.get_attribute_value(found) if found is not None else default


# ------------------------------------------------------------------ shapes


def target_tail(g: Graph, shape: str, count: int) -> list[int] | None:
    """The last ``count`` entries of a Reshape target (a constant, or a Concat ending in constants); -1 kept."""
    value = g.constant(shape)
    if value is not None:
        return [int(v) for v in value.reshape(-1)[-count:]] if value.size >= count else None
    concat = g.producer(shape)
    if concat is None or concat.op_type != "Concat":
        return None
    tail: list[int] = []
    for part in reversed(concat.input):
        piece = g.constant(part)
        if piece is None:
            break
        tail = [int(v) for v in piece.reshape(-1)] + tail
        if len(tail) >= count:
            return tail[-count:]
    return None


def target_rank(g: Graph, shape: str) -> int | None:
    """Length of a Reshape target: a constant's size, or the sum of a Concat's one-dimensional parts."""
    value = g.constant(shape)
    if value is not None:
        return int(value.size)
    concat = g.producer(shape)
    if concat is None or concat.op_type != "Concat":
        return None
    sizes = [static_dims(g, part) for part in concat.input]
    if any(s is None or len(s) != 1 or s[0] is None for s in sizes):
        return None
    return sum(int(s[0]) for s in sizes if s and s[0] is not None)


def static_dims(g: Graph, name: str) -> list[int | None] | None:
    """The shape of ``name`` from constants, value_info or the graph inputs (None per unknown dim)."""
    value = g.constant(name)
    if value is not None:
        return list(value.shape)
    infos = [*g.graph.value_info, *g.graph.input, *g.graph.output]
    info = next((v for v in infos if v.name == name and v.type.tensor_type.HasField("shape")), None)
    if info is None:
        node = g.producer(name)
        is_shape = node is not None and node.op_type == "Shape"
        start, end = (attr(node, "start", 0), attr(node, "end")) if node is not None and is_shape else (0, 0)
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end:
            return [end - start]  # Shape(x, start, end) of a tensor with at least `end` dims
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]


def hidden_size(g: Graph, name: str) -> int | None:
    """Last dim of a projection output: from value_info, or the weight/bias of ``MatMul (+ Add)``."""
    dims = static_dims(g, name)
    if dims and dims[-1]:
        return dims[-1]
    node = g.producer(name)
    for _ in range(2):
        if node is None:
            return None
        for operand in node.input:
            value = g.constant(operand)
            if value is not None and value.ndim >= 1 and value.size > 1:
                return int(value.shape[-1])
        node = g.producer(node.input[0]) if node.op_type == "Add" else None
    return None


# ------------------------------------------------------------------ pieces


def heads_transposed(g: Graph, name: str, perm: list[int],
                     known: int) -> tuple[onnx.NodeProto, onnx.NodeProto, list[int]] | None:
    """(Reshape, Transpose, the Reshape's target (heads, head_size)) when ``name`` = Transpose(perm) of a tensor
    reshaped so that its last axis splits into (heads, head_size), of which the one at index ``known`` is given::

        source (B, S, N*H) ──Reshape [.., .., N, H] (one may be -1)──▶ (B, S, N, H) ──Transpose perm──▶ name
    """
    transpose = produced_by(g, name, "Transpose")
    if transpose is None:
        return None
    if perm_of(transpose) != perm:
        return miss(f"Transpose '{name}' has perm {perm_of(transpose)}, expected {perm}")
    reshape = produced_by(g, transpose.input[0], "Reshape")
    if reshape is None:
        return None
    tail = target_tail(g, reshape.input[1], 2)
    if target_rank(g, reshape.input[1]) not in (4, None) or tail is None or tail[known] <= 0:
        return miss(f"Reshape '{reshape.output[0]}' does not split the last axis into (heads, head_size)")
    return reshape, transpose, tail


def match_head_split(g: Graph, name: str, perm: list[int]) -> HeadSplit | None:
    """``name`` = Transpose(perm) of a 3D tensor reshaped into heads::

        source (B, S, N*H) ──Reshape [.., .., N|-1, H]──▶ (B, S, N, H) ──Transpose perm──▶ name
    """
    found = heads_transposed(g, name, perm, known=1)
    if found is None:
        return None
    reshape, transpose, tail = found
    if not (only_consumer(g, reshape.output[0], transpose) and single_use(g, name)):
        return miss(f"head split of '{reshape.input[0]}' is also used outside the attention block")
    heads = tail[0] if tail[0] > 0 else None
    return HeadSplit(reshape.input[0], heads, tail[1], (reshape, transpose))


def match_swap_last_two(g: Graph, name: str) -> tuple[str, tuple[onnx.NodeProto, ...]] | None:
    """The dynamo exporter's ``k.transpose(-2, -1)`` through a 3D view::

        k (B, N, S, H) ──Reshape [-1, S, H]──▶ Transpose [0, 2, 1] ──Reshape [B, N, H, S]──▶ name

    Returns ``(k, nodes)``. The reshape targets are checked to end in (S, H) then (H, S) from ``Shape(k)``.
    """
    outer = produced_by(g, name, "Reshape")
    if outer is None:
        return None
    transpose = produced_by(g, outer.input[0], "Transpose")
    if transpose is None or perm_of(transpose) != [0, 2, 1]:
        return miss(f"'{outer.input[0]}' is not a Transpose [0, 2, 1]")
    inner = produced_by(g, transpose.input[0], "Reshape")
    if inner is None:
        return None
    source = inner.input[0]
    inner_tail, outer_tail = shape_slices(g, inner.input[1], source), shape_slices(g, outer.input[1], source)
    if inner_tail is None or outer_tail is None or inner_tail[-2:] != [-2, -1] or outer_tail[-2:] != [-1, -2]:
        return miss(f"reshapes around Transpose '{transpose.output[0]}' do not swap the last two axes")
    nodes = (inner, transpose, outer)
    if not all(only_consumer(g, a.output[0], b) for a, b in zip(nodes, nodes[1:])):
        return miss("key transpose intermediates are used outside the attention block")
    return source, nodes


def shape_slices(g: Graph, shape: str, source: str) -> list[int] | None:
    """For a Concat of ``Slice(Shape(source), i, i+1)`` parts, the axis ``i`` each part takes (other parts skipped)."""
    concat = g.producer(shape)
    if concat is None or concat.op_type != "Concat":
        return None
    axes = []
    for part in concat.input:
        node = g.producer(part)
        if node is None or node.op_type != "Slice":
            continue
        shape_node = g.producer(node.input[0])
        start, end = g.scalar(node.input[1]), g.scalar(node.input[2])
        if shape_node is None or shape_node.op_type != "Shape" or shape_node.input[0] != source or start is None:
            return None
        if end is not None and (end == start + 1 or (start == -1 and end > 2**62)):
            axes.append(int(start))
    return axes


def strip_scale(g: Graph, name: str) -> tuple[str, float, tuple[onnx.NodeProto, ...]]:
    """``name`` = Mul(x, c) or Div(x, c) with scalar ``c`` → ``(x, c or 1/c, nodes)``; else ``(name, 1, ())``."""
    node = g.producer(name)
    if node is None or node.op_type not in ("Mul", "Div"):
        return name, 1.0, ()
    for x, c in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
        value = g.scalar(c)
        if value is None or (node.op_type == "Div" and x != node.input[0]):
            continue
        if value != 0 and len(g.consumers(name)) == 1:
            return x, (value if node.op_type == "Mul" else 1.0 / value), (node,)
    return name, 1.0, ()


def match_softmax_guard(g: Graph, softmax: onnx.NodeProto) -> tuple[onnx.NodeProto, tuple[onnx.NodeProto, ...]] | None:
    """Softmax over keys, the optional NaN guard, and the MatMul with V that reads the probabilities::

        scores ─Softmax(axis -1)─▶ p ─┬──────────────────▶ Where(isnan, 0, p) ─▶ MatMul(·, v)
                                      └─IsNaN─▶ isnan ──┘    (guard optional)
    """
    if attr(softmax, "axis", -1) not in (-1, 3):
        return miss(f"Softmax '{softmax.output[0]}' is over axis {attr(softmax, 'axis')}, not the key axis")
    probs, nodes = softmax.output[0], [softmax]
    users = g.consumers(probs)
    guard = {u.op_type: u for u in users}
    if len(users) == 2 and set(guard) == {"IsNaN", "Where"}:
        isnan, where = guard["IsNaN"], guard["Where"]
        fill = g.scalar(where.input[1])
        wired = list(where.input) == [isnan.output[0], where.input[1], probs] and single_use(g, isnan.output[0])
        if not wired or fill != 0:
            return miss(f"'{where.output[0]}' is not the NaN guard Where(IsNaN(p), 0, p)")
        probs, nodes = where.output[0], [softmax, isnan, where]
    users = g.consumers(probs)
    if len(users) != 1 or users[0].op_type != "MatMul" or users[0].input[0] != probs or g.is_graph_output(probs):
        found = ", ".join(u.op_type for u in users) or "a graph output"
        return miss(f"attention probabilities '{probs}' go to {found}, expected only MatMul(probs, v)")
    return users[0], tuple(nodes)


def match_context(g: Graph, matmul: onnx.NodeProto) -> tuple[str, tuple[onnx.NodeProto, ...]] | None:
    """Heads merged back after ``probs @ v``::

        (B, N, S, H) ─Transpose [0, 2, 1, 3]─▶ (B, S, N, H) ─Reshape [.., .., -1|N*H]─▶ output (B, S, N*H)
    """
    context, nodes = matmul.output[0], []
    restore = data_user(g, context)
    if restore is not None and restore.op_type == "Reshape" and is_batch_restore(g, restore.input[1]):
        context, nodes = restore.output[0], [restore]  # TorchScript SDPA: (B, -1, S, H) view of (B, N, S, H)
    transpose = data_user(g, context)
    if transpose is None or transpose.op_type != "Transpose" or perm_of(transpose) != HEADS_FIRST:
        return miss(f"'{context}' is not merged back by Transpose [0, 2, 1, 3]")
    reshape = data_user(g, transpose.output[0])
    if reshape is None or reshape.op_type != "Reshape" or reshape.input[0] != transpose.output[0]:
        return miss(f"'{transpose.output[0]}' is not reshaped to (B, S, N*H)")
    if target_rank(g, reshape.input[1]) not in (3, None) or target_tail(g, reshape.input[1], 1) is None:
        return miss(f"Reshape '{reshape.output[0]}' does not merge the heads into one axis")
    return reshape.output[0], (*nodes, transpose, reshape)


def is_batch_restore(g: Graph, shape: str) -> bool:
    """A 4D target ``[d0, -1, d2, d3]`` with each ``d`` one dimension read off a Shape (TorchScript's SDPA)."""
    concat = g.producer(shape)
    if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
        return False
    minus_one = g.constant(concat.input[1])
    if minus_one is None or minus_one.reshape(-1).tolist() != [-1]:
        return False
    for part in (concat.input[0], *concat.input[2:]):
        unsqueeze = g.producer(part)
        gather = g.producer(unsqueeze.input[0]) if unsqueeze is not None and unsqueeze.op_type == "Unsqueeze" else None
        if gather is None or gather.op_type != "Gather" or g.scalar(gather.input[1]) is None:
            return False
        shape_node = g.producer(gather.input[0])
        if shape_node is None or shape_node.op_type != "Shape":
            return False
    return True


def match_scores(g: Graph, softmax: onnx.NodeProto) -> Scores | None:
    """Scaled scores plus an optional additive mask, in either order the exporters write the scale::

        q' ─┐                                             q' = q * sqrt(scale) (sdpa) or q
            MatMul ─▶ [Mul|Div scale] ─▶ [Add mask] ─▶ Softmax
        k' ─┘                                             k' = k^T * sqrt(scale) (sdpa) or k^T
    """
    scores, nodes, mask = softmax.input[0], [], None
    add = g.producer(scores)
    if add is not None and add.op_type == "Add":
        for operand in add.input:
            inner, _, _ = strip_scale(g, operand)
            node = g.producer(inner)
            if node is not None and node.op_type == "MatMul" and single_use(g, operand):
                mask = g.other_input(add, operand) if add.input[0] != add.input[1] else None
                scores, nodes = operand, [add]
                break
        else:
            return miss(f"neither input of Add '{add.output[0]}' is a scaled Q·K product")
    scores, scale, scale_nodes = strip_scale(g, scores)
    matmul = produced_by(g, scores, "MatMul")
    if matmul is None:
        return None
    if not single_use(g, scores):
        return miss(f"raw scores '{scores}' are also used outside the attention block")
    return Scores(matmul.input[0], matmul.input[1], scale, mask, (matmul, *scale_nodes, *nodes))


def match_key(g: Graph, name: str) -> HeadSplit | None:
    """K^T as (B, N, H, S): ``Transpose [0, 2, 3, 1]`` of the head split, or heads-first then a last-two swap."""
    direct = match_head_split(g, name, KEYS_TRANSPOSED)
    if direct is not None:
        return direct
    swap = match_swap_last_two(g, name)
    if swap is None:
        node = g.producer(name)
        if node is None or node.op_type != "Transpose" or perm_of(node) != [0, 1, 3, 2]:
            return miss(f"key '{name}' is neither Transpose [0, 2, 3, 1] of the heads nor a swap of the last two axes")
        swap = (node.input[0], (node,))
    split = match_head_split(g, swap[0], HEADS_FIRST)
    return None if split is None else HeadSplit(split.source, split.num_heads, split.head_size, split.nodes + swap[1])


def heads_of(g: Graph, splits: list[HeadSplit]) -> tuple[int, int] | None:
    """``(num_heads, head_size)`` agreed by the Q, K and V splits (heads from the hidden size where -1)."""
    sizes = {s.head_size for s in splits}
    heads = {s.num_heads for s in splits if s.num_heads} | {
        hidden // s.head_size for s in splits if (hidden := hidden_size(g, s.source)) and hidden % s.head_size == 0
    }
    if len(sizes) != 1 or len(heads) != 1:
        return miss(f"Q, K and V disagree on heads {sorted(heads)} or head size {sorted(sizes)}")
    return heads.pop(), sizes.pop()


@dataclass(frozen=True)
class ScoredBlock:
    """The part every Softmax-anchored matcher shares: scaled scores (+ mask) → Softmax (+ NaN guard) → ``probs @ v``
    → heads merged into ``output``, with the scales on Q and K stripped off (``query``/``key`` before them)."""

    pv: onnx.NodeProto
    guard_nodes: tuple[onnx.NodeProto, ...]
    scores: Scores
    output: str
    context_nodes: tuple[onnx.NodeProto, ...]
    query: str
    query_scale: float
    query_nodes: tuple[onnx.NodeProto, ...]
    key: str
    key_scale: float
    key_nodes: tuple[onnx.NodeProto, ...]


def match_scored_block(g: Graph, softmax: onnx.NodeProto) -> ScoredBlock | None:
    guard = match_softmax_guard(g, softmax)
    scores = match_scores(g, softmax) if guard else None
    context = match_context(g, guard[0]) if guard and scores else None
    if guard is None or scores is None or context is None:
        return None
    q, q_scale, q_nodes = strip_scale(g, scores.query)
    k, k_scale, k_nodes = strip_scale(g, scores.key)
    return ScoredBlock(guard[0], guard[1], scores, context[0], context[1], q, q_scale, q_nodes, k, k_scale, k_nodes)


def match_decomposed_attention(g: Graph, softmax: onnx.NodeProto) -> AttentionMatch | None:
    """Attention written out op by op (anchor: the Softmax)::

        q (B,S,NH) ─Reshape─Transpose[0,2,1,3]─[Mul √s]──┐
        k (B,S,NH) ─Reshape─Transpose(to K^T)──[Mul √s]──MatMul─[Mul|Div s]─[Add mask]─Softmax─[NaN guard]─┐
        v (B,S,NH) ─Reshape─Transpose[0,2,1,3]────────────────────────────────────────────────────────── MatMul
                                                                  output (B,S,NH) ◀─Reshape─Transpose[0,2,1,3]─┘

    ``sdpa_decomposed*``: the scale split over Q and K (``torch.onnx`` SDPA decomposition, dynamo or TorchScript);
    ``eager_scaled_scores*``: the scale on the scores (Hugging Face eager attention). ``*_with_mask``: an additive
    mask is added before the softmax (its meaning is checked by the mask probe before any rewrite).
    """
    block = match_scored_block(g, softmax)
    if block is None:
        return None
    pv, guard_nodes, scores = block.pv, block.guard_nodes, block.scores
    q_scale, q_nodes, k_scale, k_nodes = block.query_scale, block.query_nodes, block.key_scale, block.key_nodes
    q_split = match_head_split(g, block.query, HEADS_FIRST)
    k_split = match_key(g, block.key) if q_split else None
    v_split = match_head_split(g, pv.input[1], HEADS_FIRST) if k_split else None
    if q_split is None or k_split is None or v_split is None:
        return None
    heads = heads_of(g, [q_split, k_split, v_split])
    if heads is None:
        return None
    split_scale = q_scale != 1.0 or k_scale != 1.0
    pattern = ("sdpa_decomposed" if split_scale or len(guard_nodes) > 1 else "eager_scaled_scores")
    pattern += "_with_mask" if scores.mask else ""
    nodes = (*q_split.nodes, *k_split.nodes, *v_split.nodes, *q_nodes, *k_nodes, *scores.nodes, *guard_nodes, pv)
    return AttentionMatch(
        pattern, q_split.source, k_split.source, v_split.source, block.output, heads[0], heads[1],
        float(np.float64(q_scale) * k_scale * scores.scale), scores.mask, False, (*nodes, *block.context_nodes),
        softmax,
    )


def match_attention_op(g: Graph, node: onnx.NodeProto) -> AttentionMatch | None:
    """The opset-23 ``Attention`` op on heads-first tensors (as the dynamo exporter writes SDPA at opset 23)::

        q (B,S,NH) ─Reshape─Transpose[0,2,1,3]─┐
        k (B,S,NH) ─Reshape─Transpose[0,2,1,3]─┤
        v (B,S,NH) ─Reshape─Transpose[0,2,1,3]─Attention(scale, is_causal, [attn_mask])─Transpose─Reshape─▶ output
    """
    if len(node.input) > 4 or any(node.output[1:]):
        return miss(f"Attention '{node.output[0]}' uses a KV cache or extra outputs")
    if attr(node, "softcap", 0.0) or attr(node, "q_num_heads") is not None:
        return miss(f"Attention '{node.output[0]}' has softcap or 3D inputs; left as it is")
    splits = [match_head_split(g, name, HEADS_FIRST) for name in node.input[:3]]
    context = match_context_of_op(g, node)
    if any(s is None for s in splits) or context is None:
        return None
    q_split, k_split, v_split = (s for s in splits if s is not None)
    heads = heads_of(g, [q_split, k_split, v_split])
    if heads is None:
        return None
    scale = attr(node, "scale")
    scale = float(scale) if isinstance(scale, float) else 1.0 / math.sqrt(heads[1])
    mask = node.input[3] if len(node.input) > 3 and node.input[3] else None
    nodes = (*q_split.nodes, *k_split.nodes, *v_split.nodes, node, *context[1])
    pattern = "onnx_attention_op" + ("_with_mask" if mask else "")
    causal = bool(attr(node, "is_causal", 0))
    return AttentionMatch(
        pattern, q_split.source, k_split.source, v_split.source, context[0], heads[0], heads[1], scale, mask,
        causal, nodes, node,
    )


def match_context_of_op(g: Graph, node: onnx.NodeProto) -> tuple[str, tuple[onnx.NodeProto, ...]] | None:
    """:func:`match_context` for a node whose first output is the (B, N, S, H) context."""
    stand_in = onnx.helper.make_node("MatMul", [], [node.output[0]])
    return match_context(g, stand_in)


# ------------------------------------------------- DeBERTa-v2: heads batched for bmm, disentangled score bias

FILL_BELOW = -1e30  # a finite mask fill this low absorbs a float32 score: fill + score == fill for |score| < 3e22


@dataclass(frozen=True)
class BiasedScores:
    """``Where(mask, Reshape(MatMul(q3, k3^T / s) + bias, [-1, N, S, S]))`` feeding the softmax."""

    query: str  # (B*N, S_q, H)
    key: str  # (B*N, S_kv, H), before the transpose
    divisors: tuple[str, ...]  # scalars the product is divided by (on K^T or on the product)
    factors: tuple[str, ...]  # scalars it is multiplied by
    bias: str  # (B*N, S_q, S_kv)
    heads: int  # N of the [-1, N, S, S] unfold
    mask: MaskFill | None
    nodes: tuple[onnx.NodeProto, ...]


def target_head(g: Graph, shape: str, count: int) -> list[int] | None:
    """The first ``count`` entries of a Reshape target (a constant, or a Concat starting in constants)."""
    value = g.constant(shape)
    if value is not None:
        return [int(v) for v in value.reshape(-1)[:count]] if value.size >= count else None
    concat = g.producer(shape)
    if concat is None or concat.op_type != "Concat":
        return None
    head: list[int] = []
    for part in concat.input:
        piece = g.constant(part)
        if piece is None:
            return None
        head += [int(v) for v in piece.reshape(-1)]
        if len(head) >= count:
            return head[:count]
    return None


def match_batched_heads(g: Graph, name: str) -> HeadSplit | None:
    """``name`` (B*N, S, H): the heads split off, moved first and folded into the batch (``transpose_for_scores``)::

        source (B, S, N*H) ─Reshape [.., .., N, -1|H]─▶ (B, S, N, H) ─Transpose [0, 2, 1, 3]─Reshape [-1, S, H]─▶ name

    ``name`` may have other readers (DeBERTa's position terms read Q and K); its nodes then stay for them.
    """
    fold = produced_by(g, name, "Reshape")
    if fold is None:
        return None
    if target_rank(g, fold.input[1]) not in (3, None) or target_head(g, fold.input[1], 1) != [-1]:
        return miss(f"Reshape '{name}' does not fold the heads into the batch as [-1, S, H]")
    found = heads_transposed(g, fold.input[0], HEADS_FIRST, known=0)
    if found is None:
        return None
    split, transpose, tail = found
    width = hidden_size(g, split.input[0])
    head_size = tail[1] if tail[1] > 0 else (width // tail[0] if width and width % tail[0] == 0 else 0)
    folded = target_tail(g, fold.input[1], 1)
    if head_size <= 0 or (folded is not None and folded[0] not in (-1, head_size)):
        return miss(f"head size of '{split.input[0]}' is unknown or differs between its split and its fold")
    return HeadSplit(split.input[0], tail[0], head_size, (split, transpose, fold))


def match_batched_probs(g: Graph, softmax: onnx.NodeProto) -> tuple[onnx.NodeProto, tuple[onnx.NodeProto, ...]] | None:
    """Softmax over keys, folded back to (B*N, S_q, S_kv) for ``bmm`` with V::

        scores (B, N, S, S) ─Softmax(axis -1)─Reshape [-1, S, S]─▶ MatMul(·, v3)
    """
    if attr(softmax, "axis", -1) not in (-1, 3):
        return miss(f"Softmax '{softmax.output[0]}' is over axis {attr(softmax, 'axis')}, not the key axis")
    fold = data_user(g, softmax.output[0])
    if fold is None or fold.op_type != "Reshape" or target_head(g, fold.input[1], 1) != [-1]:
        return miss(f"attention probabilities '{softmax.output[0]}' are not folded to (B*N, S, S) by one Reshape")
    pv = data_user(g, fold.output[0])
    if pv is None or pv.op_type != "MatMul" or pv.input[0] != fold.output[0]:
        found = ", ".join(u.op_type for u in g.consumers(fold.output[0])) or "a graph output"
        return miss(f"folded probabilities '{fold.output[0]}' go to {found}, expected only MatMul(probs, v)")
    return pv, (softmax, fold)


def match_batched_context(g: Graph, pv: onnx.NodeProto) -> tuple[str, int, tuple[onnx.NodeProto, ...]] | None:
    """``probs @ v`` (B*N, S, H) unfolded to (B, N, S, H), then merged as in :func:`match_context`::

        (B*N, S, H) ─Reshape [-1, N, S, H]─Transpose [0, 2, 1, 3]─Reshape [.., .., -1|N*H]─▶ output (B, S, N*H)

    Returns ``(output, N, nodes)``.
    """
    unfold = data_user(g, pv.output[0])
    head = target_head(g, unfold.input[1], 2) if unfold is not None and unfold.op_type == "Reshape" else None
    if unfold is None or head is None or head[0] != -1 or head[1] <= 0:
        return miss(f"'{pv.output[0]}' is not unfolded from (B*N, S, H) by Reshape [-1, N, S, H]")
    merged = match_context(g, onnx.helper.make_node("MatMul", [], [unfold.output[0]]))
    return None if merged is None else (merged[0], head[1], (unfold, *merged[1]))


def match_mask_fill(g: Graph, where: onnx.NodeProto) -> tuple[MaskFill, str] | None:
    """``Where(cond, fill, scores)`` or ``Where(cond, scores, fill)`` with a scalar ``fill`` <= :data:`FILL_BELOW`
    (``masked_fill(~mask, finfo.min)``). Returns the mask and the scores tensor."""
    cond, first, second = where.input
    for fill, scores, when_true in ((first, second, True), (second, first, False)):
        value = g.scalar(fill)
        if value is None:
            continue
        if value > FILL_BELOW or not math.isfinite(value):
            return miss(f"mask fill {value:g} in '{where.output[0]}' is not low enough to absorb the scores "
                        f"(needs a finite value <= {FILL_BELOW:g}), so it cannot move into an additive bias exactly")
        return MaskFill(cond, fill, value, when_true), scores
    return miss(f"Where '{where.output[0]}' before the softmax does not fill with a scalar")


def match_biased_scores(g: Graph, softmax: onnx.NodeProto) -> BiasedScores | None:
    """Batched-heads scores plus an additive bias, unfolded to (B, N, S, S), then the optional masked fill::

        q3 ───────────────────────────────┐
        k3 ─Transpose [0,2,1]─[Div|Mul s]─MatMul─[Div|Mul s]─Add(·, bias)─Reshape [-1,N,S,S]─[Where mask]─▶ Softmax
    """
    scores, nodes, mask, reader = softmax.input[0], [], None, softmax
    where = g.producer(scores)
    if where is not None and where.op_type == "Where":
        fill = match_mask_fill(g, where)
        if fill is None:
            return None
        mask, scores = fill
        nodes.append(where)
        reader = where
    unfold = produced_by(g, scores, "Reshape")
    if unfold is None:
        return None
    head = target_head(g, unfold.input[1], 2)
    if head is None or head[0] != -1 or head[1] <= 0 or not only_consumer(g, scores, reader):
        return miss(f"Reshape '{scores}' does not unfold (B*N, S, S) scores to [-1, N, S, S] for the softmax alone")
    add = produced_by(g, unfold.input[0], "Add")
    if add is None:
        return None
    for operand in add.input:
        divisors, factors, product, scale_nodes = peel_scalars(g, operand)
        matmul = g.producer(product)
        if matmul is not None and matmul.op_type == "MatMul" and single_use(g, operand) and single_use(g, product):
            bias = g.other_input(add, operand)
            break
    else:
        return miss(f"neither input of Add '{add.output[0]}' is the batched Q·K product")
    if bias is None or bias == operand:
        return miss(f"Add '{add.output[0]}' adds the Q·K product to itself")
    key_divisors, key_factors, key_t, key_nodes = peel_scalars(g, matmul.input[1])
    transpose = produced_by(g, key_t, "Transpose")
    if transpose is None or perm_of(transpose) != [0, 2, 1] or not single_use(g, key_t):
        return miss(f"'{key_t}' is not K^T by Transpose [0, 2, 1] used by the scores alone")
    return BiasedScores(
        matmul.input[0], transpose.input[0], (*divisors, *key_divisors), (*factors, *key_factors), bias, head[1],
        mask, (transpose, *key_nodes, matmul, *scale_nodes, add, unfold, *nodes),
    )


def peel_scalars(g: Graph, name: str) -> tuple[tuple[str, ...], tuple[str, ...], str, tuple[onnx.NodeProto, ...]]:
    """Strip ``Div(x, d)`` / ``Mul(x, f)`` by one-element tensors (constant or not) off ``name``, used once each.

    Returns ``(divisors, factors, x, nodes)``; the divisors and factors are valued later (:func:`scalar_value`).
    """
    divisors: list[str] = []
    factors: list[str] = []
    nodes: list[onnx.NodeProto] = []
    node = g.producer(name)
    while node is not None and node.op_type in ("Div", "Mul") and single_use(g, name):
        x, d = node.input
        if node.op_type == "Mul" and is_scalar_like(g, x) and not is_scalar_like(g, d):
            x, d = d, x
        if not is_scalar_like(g, d):
            break
        (divisors if node.op_type == "Div" else factors).append(d)
        nodes.append(node)
        name, node = x, g.producer(x)
    return tuple(divisors), tuple(factors), name, tuple(nodes)


def is_scalar_like(g: Graph, name: str) -> bool:
    """A one-element constant, or a ``Sqrt`` (DeBERTa's ``sqrt(size * factor)`` is computed in the graph)."""
    value = g.constant(name)
    if value is not None:
        return value.size == 1
    node = g.producer(name)
    return node is not None and node.op_type == "Sqrt"


def scalar_value(g: Graph, name: str, head_tensors: set[str], head_size: int, depth: int = 8) -> float | None:
    """The value of a scalar computed from constants and the head size (``tensor.size(-1)`` of a head tensor)::

        head tensor (B*N, S, H) ─Shape─Slice [-1:]|Gather -1─[Squeeze|Reshape]─Cast─Mul factor─Sqrt─▶ name

    ``head_tensors`` are the block's (B*N, S, H) tensors, whose last dimension is ``head_size``.
    """
    value = g.constant(name)
    if value is not None:
        return float(value.reshape(-1)[0]) if value.size == 1 else miss(f"scale '{name}' has {value.size} values")
    node = g.producer(name)
    if node is None or depth == 0:
        return miss(f"scale '{name}' is not computed from constants and the head size")
    if node.op_type in ("Sqrt", "Cast", "Squeeze", "Unsqueeze", "Reshape", "Identity"):
        inner = scalar_value(g, node.input[0], head_tensors, head_size, depth - 1)
        return None if inner is None else (math.sqrt(inner) if node.op_type == "Sqrt" else inner)
    if node.op_type in ("Mul", "Div"):
        a, b = (scalar_value(g, i, head_tensors, head_size, depth - 1) for i in node.input)
        if a is None or b is None or (node.op_type == "Div" and b == 0):
            return None
        return a * b if node.op_type == "Mul" else a / b
    if node.op_type in ("Slice", "Gather") and last_dim_of_head(g, node, head_tensors):
        return float(head_size)
    return miss(f"scale '{name}' comes from {node.op_type}, not from constants and the head size")


def last_dim_of_head(g: Graph, node: onnx.NodeProto, head_tensors: set[str]) -> bool:
    """``Slice(Shape(t), [-1|2], [end])`` or ``Gather(Shape(t), -1|2)`` with ``t`` a (B*N, S, H) head tensor."""
    shape = g.producer(node.input[0])
    if shape is None or shape.op_type != "Shape" or shape.input[0] not in head_tensors or shape.attribute:
        return False
    start = g.scalar(node.input[1])
    if node.op_type == "Gather":
        return start in (-1, 2)
    end = g.scalar(node.input[2]) if len(node.input) > 2 else None
    return start in (-1, 2) and (end is None or end >= 3 or (start == 2 and end == 3))


def position_term(g: Graph, name: str, query: str, key: str) -> str | None:
    """One disentangled term of the bias, as DeBERTa's ``disentangled_attention_bias`` writes it::

        c2p: MatMul(q3, pos_k^T) ─GatherElements(axis -1, c2p_pos)──────────────────[Div|Mul s]─▶ name
        p2c: MatMul(k3, pos_q^T) ─GatherElements(axis -1, p2c_pos)─Transpose [0,2,1]─[Div|Mul s]─▶ name
    """
    _, _, inner, _ = peel_scalars(g, name)
    node = g.producer(inner)
    transposed = node is not None and node.op_type == "Transpose" and perm_of(node) == [0, 2, 1]
    if transposed and node is not None:
        node = g.producer(node.input[0])
    if node is None or node.op_type != "GatherElements" or attr(node, "axis", 0) not in (-1, 2):
        return miss(f"score bias term '{name}' is not a gathered relative-position product (GatherElements axis -1)")
    product = g.producer(node.input[0])
    reads = product.input[0] if product is not None and product.op_type == "MatMul" else None
    if reads == query and not transposed:
        return "c2p"
    if reads == key and transposed:
        return "p2c"
    return miss(f"score bias term '{name}' is neither content-to-position (Q · pos_K) nor position-to-content "
                "(K · pos_Q, transposed)")


def match_disentangled_bias(g: Graph, bias: str, query: str, key: str) -> tuple[str, ...] | None:
    """The terms of ``bias``: ``Add(c2p, p2c)`` or one of them (``pos_att_type``). Each term's GatherElements index
    is expanded to (B*N, S_q, S_kv), so the bias has exactly the shape of the scores."""
    add = g.producer(bias)
    parts = list(add.input) if add is not None and add.op_type == "Add" else [bias]
    terms = []
    for part in parts:
        term = position_term(g, part, query, key)
        if term is None:
            return None
        terms.append(term)
    if len(set(terms)) != len(terms):
        return miss(f"score bias '{bias}' repeats the {terms[0]} term")
    return tuple(terms)


def match_disentangled_attention(g: Graph, softmax: onnx.NodeProto) -> AttentionMatch | None:
    """DeBERTa-v2/v3 disentangled self-attention, heads batched as (B*N, S, H) for ``bmm`` (anchor: the Softmax)::

        q (B,S,NH) ─Reshape─Transpose[0,2,1,3]─Reshape[-1,S,H]─▶ q3 ──────────────────────┐   q3, k3 also feed
        k (B,S,NH) ─Reshape─Transpose[0,2,1,3]─Reshape[-1,S,H]─▶ k3 ─Transpose─Div √(H·f)─MatMul  the c2p / p2c terms
                                             bias (B*N,S,S) = c2p + p2c ─────────────────Add
        Softmax ◀─[Where(¬mask, lowest, ·)]◀─Reshape[-1,N,S,S]◀──────────────────────────┘
           └─Reshape[-1,S,S]─MatMul(·, v3)─Reshape[-1,N,S,H]─Transpose[0,2,1,3]─Reshape─▶ output (B,S,NH)
        v (B,S,NH) ─Reshape─Transpose[0,2,1,3]─Reshape[-1,S,H]─▶ v3 ──┘

    ``scale_factor = 1 + len(pos_att_type)``, so the scale is ``1 / sqrt(H * scale_factor)``, a constant (dynamo) or
    computed from ``Shape(q3)`` (TorchScript). The bias and the export's own mask are carried as they are
    (:class:`ScoreBias`): no mask probe is needed. ``deberta_disentangled_bias_with_mask``: with the masked fill.
    """
    probs = match_batched_probs(g, softmax)
    scores = match_biased_scores(g, softmax) if probs else None
    context = match_batched_context(g, probs[0]) if probs and scores else None
    if probs is None or scores is None or context is None:
        return None
    pv, prob_nodes = probs
    q_split = match_batched_heads(g, scores.query)
    k_split = match_batched_heads(g, scores.key) if q_split else None
    v_split = match_batched_heads(g, pv.input[1]) if k_split else None
    if q_split is None or k_split is None or v_split is None:
        return None
    heads = heads_of(g, [q_split, k_split, v_split])
    if heads is None:
        return None
    if {scores.heads, context[1]} != {heads[0]}:
        return miss(f"the scores and context unfold {scores.heads} and {context[1]} heads, the projections {heads[0]}")
    terms = match_disentangled_bias(g, scores.bias, scores.query, scores.key)
    if terms is None:
        return None
    scale = batched_scale(g, scores, {scores.query, scores.key, pv.input[1]}, heads[1])
    if scale is None:
        return None
    pattern = "deberta_disentangled_bias" + ("_with_mask" if scores.mask else "")
    nodes = (*q_split.nodes, *k_split.nodes, *v_split.nodes, *scores.nodes, *prob_nodes, pv, *context[2])
    return AttentionMatch(
        pattern, q_split.source, k_split.source, v_split.source, context[0], heads[0], heads[1], float(scale), None,
        False, nodes, softmax, ScoreBias(scores.bias, terms, scores.mask),
    )


def batched_scale(g: Graph, scores: BiasedScores, head_tensors: set[str], head_size: int) -> float | None:
    """The product of the factors over the product of the divisors on Q·K^T (1 when there are none)."""
    scale = 1.0
    for name, divides in [*((d, True) for d in scores.divisors), *((f, False) for f in scores.factors)]:
        value = scalar_value(g, name, head_tensors, head_size)
        if value is None or value == 0:
            return None if value is None else miss(f"scale '{name}' is 0")
        scale = scale / value if divides else scale * value
    return scale


def match_softmax_attention(g: Graph, softmax: onnx.NodeProto) -> AttentionMatch | None:
    """Attention anchored on a Softmax: heads batched for ``bmm`` (the probabilities folded to (B*N, S, S) by a
    Reshape, as DeBERTa-v2 writes it) go to :func:`match_disentangled_attention`, the rest to
    :func:`match_decomposed_attention`."""
    user = data_user(g, softmax.output[0])
    if user is not None and user.op_type == "Reshape":
        return match_disentangled_attention(g, softmax)
    return match_decomposed_attention(g, softmax)
