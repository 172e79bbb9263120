"""RMSNorm fusions of the ``ort`` form, for decoders (Llama-family norms as our dynamo export writes them below
opset 23; at opset 23 the exporter already writes ``RMSNormalization``)::

    x ─Pow 2─ReduceMean(-1)─Add eps─Sqrt─Reciprocal─┐
    └──────────────────────────────────────────────Mul─Mul weight─▶ y

- :class:`RMSNormFusion`: into ``SimplifiedLayerNormalization(x, weight)`` (ONNX Runtime's RMSNorm, default domain);
- :class:`SkipRMSNormFusion`: a norm whose input is the residual ``Add(a, b)`` into
  ``com.microsoft.SkipSimplifiedLayerNormalization(a, b, weight)``, whose fourth output is the sum that the rest of
  the graph (the next residual) reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper

from edgedistill.fuse.attention_match import attr, produced_by
from edgedistill.fuse.base import Fusion, miss
from edgedistill.fuse.forms import MS_DOMAIN
from edgedistill.fuse.graph import Graph

NORM_OP = "SimplifiedLayerNormalization"
SKIP_NORM_OP = "SkipSimplifiedLayerNormalization"


@dataclass(frozen=True)
class RMSNormMatch:
    x: str
    weight: str
    epsilon: float
    output: str
    nodes: tuple[onnx.NodeProto, ...]


def last_axis(g: Graph, reduce: onnx.NodeProto) -> bool:
    axes = g.constant(reduce.input[1]) if len(reduce.input) > 1 else None
    listed = axes.reshape(-1).tolist() if axes is not None else attr(reduce, "axes")
    return listed == [-1] and attr(reduce, "keepdims", 1) == 1


def match_rms_norm(g: Graph, reduce: onnx.NodeProto) -> RMSNormMatch | None:
    """The drawing above, anchored on its ReduceMean."""
    pow_node = produced_by(g, reduce.input[0], "Pow")
    if pow_node is None or g.scalar(pow_node.input[1]) != 2.0 or not last_axis(g, reduce):
        return miss(f"ReduceMean '{reduce.output[0]}' is not the mean of squares over the last axis")
    x = pow_node.input[0]
    chain, name = [], reduce.output[0]
    for op in ("Add", "Sqrt", "Reciprocal"):
        users = g.consumers(name)
        if len(users) != 1 or users[0].op_type != op:
            return miss(f"'{name}' does not go on to {op} (RMSNorm's mean + eps, sqrt, reciprocal)")
        chain.append(users[0])
        name = users[0].output[0]
    epsilon = g.scalar(g.other_input(chain[0], reduce.output[0]) or "")
    scaled = g.consumers(name)
    if epsilon is None or len(scaled) != 1 or scaled[0].op_type != "Mul" or g.other_input(scaled[0], name) != x:
        return miss(f"'{name}' is not multiplied back onto the norm's input '{x}'")
    weighted = g.consumers(scaled[0].output[0])
    weight = g.other_input(weighted[0], scaled[0].output[0]) if len(weighted) == 1 else None
    value = g.constant(weight) if weight else None
    if weighted[0].op_type != "Mul" or weight is None or value is None or value.ndim != 1:
        return miss(f"'{scaled[0].output[0]}' is not multiplied by a constant weight vector")
    return RMSNormMatch(x, weight, float(epsilon), weighted[0].output[0],
                        (pow_node, reduce, *chain, scaled[0], weighted[0]))


class RMSNormFusion(Fusion[RMSNormMatch]):
    name = "rms_norm"
    anchor_op = "ReduceMean"

    def match(self, node: onnx.NodeProto) -> RMSNormMatch | None:
        return match_rms_norm(self.graph, node)

    def rewrite(self, match: RMSNormMatch) -> None:
        old = self.graph.producer(match.output)
        assert old is not None
        fused = helper.make_node(NORM_OP, [match.x, match.weight], [match.output], name=f"rms_norm/{match.output}",
                                 axis=-1, epsilon=match.epsilon)
        self.graph.add_node(fused, before=old)
        self.graph.remove_nodes([old])


@dataclass(frozen=True)
class SkipMatch:
    residual: onnx.NodeProto  # Add(a, b)
    norm: onnx.NodeProto


class SkipRMSNormFusion(Fusion[SkipMatch]):
    name = "skip_rms_norm"
    anchor_op = NORM_OP

    def match(self, node: onnx.NodeProto) -> SkipMatch | None:
        add = produced_by(self.graph, node.input[0], "Add")
        if add is None:
            return None
        if any(self.graph.constant(i) is not None for i in add.input) or add.input[0] == add.input[1]:
            return miss(f"'{add.output[0]}' adds a constant, not two hidden states")
        return SkipMatch(add, node)

    def rewrite(self, match: SkipMatch) -> None:
        g, add, norm = self.graph, match.residual, match.norm
        total = add.output[0]
        others = [u for u in g.consumers(total) if u is not norm] or g.is_graph_output(total)
        epsilon = attr(norm, "epsilon", 1e-5)
        outputs = [norm.output[0], "", "", total if others else ""]
        while not outputs[-1]:
            outputs.pop()
        fused = helper.make_node(SKIP_NORM_OP, [add.input[0], add.input[1], norm.input[1]], outputs,
                                 name=f"skip_rms_norm/{norm.output[0]}", domain=MS_DOMAIN, epsilon=epsilon)
        g.require_opset(MS_DOMAIN, 1)
        g.add_node(fused, before=add)
        g.remove_nodes([add, norm])
