"""Matchers for multi-head attention as the exporters write it.

Three exports are recognised (see the drawings on each matcher):

- ``sdpa_decomposed``: the dynamo (and TorchScript) exporter's decomposition of
  ``scaled_dot_product_attention`` below opset 23 — the scale split as ``sqrt(scale)`` on Q and on K, an additive
  mask from ``Where(keep, 0, -big)``, and an ``IsNaN``/``Where`` guard after ``Softmax``;
- ``eager_scaled_scores``: Hugging Face eager attention — ``MatMul → Mul|Div (scale) → Add (mask) → Softmax →
  MatMul``;
- ``onnx_attention_op``: the opset-23 ``Attention`` op on (B, N, S, H) tensors.

Each returns an :class:`AttentionMatch` with the (B, S, N*H) query/key/value tensors, the output tensor that the
fused node must produce, head count, head size, scale, the mask tensor (classified later by
:mod:`edgedistill.fuse.mask_probe`) and the nodes the fused node replaces.
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


def match_head_split(g: Graph, name: str, perm: list[int]) -> HeadSplit | None:
    """``name`` = Transpose(perm) of a 3D tensor reshaped into heads::

        source (B, S, N*H) ──Reshape [.., .., N|-1, H]──▶ (B, S, N, H) ──Transpose perm──▶ name
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
    if target_rank(g, reshape.input[1]) not in (4, None) or tail is None or tail[1] <= 0:
        return miss(f"Reshape '{reshape.output[0]}' does not split the last axis into (heads, head_size)")
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
    guard = match_softmax_guard(g, softmax)
    scores = match_scores(g, softmax) if guard else None
    context = match_context(g, guard[0]) if guard and scores else None
    if guard is None or scores is None or context is None:
        return None
    pv, guard_nodes = guard
    q, q_scale, q_nodes = strip_scale(g, scores.query)
    k, k_scale, k_nodes = strip_scale(g, scores.key)
    q_split = match_head_split(g, q, HEADS_FIRST)
    k_split = match_key(g, k) if q_split else None
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
        pattern, q_split.source, k_split.source, v_split.source, context[0], heads[0], heads[1],
        float(np.float64(q_scale) * k_scale * scores.scale), scores.mask, False, (*nodes, *context[1]), softmax,
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
