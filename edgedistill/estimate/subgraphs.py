"""Subgraphs for the estimate: an ``If`` is counted as one of its branches, inlined into the graph in its place, so
its nodes are costed like any other; a ``Loop`` or ``Scan`` (unknown trip count) cannot be counted and is said.

The branch inlined is the one with more nodes, else the ``else`` branch: for the ``ort`` form's unpadded fast path
(``If(no key is padding) then flash attention else the masked node``) both hold one attention node of the same
FLOPs, so either gives the same estimate.
"""

from __future__ import annotations

import onnx

UNCOUNTABLE = ("Loop", "Scan")


def branch_of(node: onnx.NodeProto) -> onnx.GraphProto:
    branches = {a.name: a.g for a in node.attribute if a.name in ("then_branch", "else_branch")}
    then, other = branches["then_branch"], branches["else_branch"]
    return then if len(then.node) > len(other.node) else other


def inlined(node: onnx.NodeProto, branch: onnx.GraphProto) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The branch's nodes writing the If's outputs (by position), and its initializers."""
    rename = {out.name: outer for out, outer in zip(branch.output, node.output)}
    nodes = []
    for inner in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        copy.input[:] = [rename.get(name, name) for name in copy.input]
        copy.output[:] = [rename.get(name, name) for name in copy.output]
        nodes.append(copy)
    identity = [onnx.helper.make_node("Identity", [inner], [outer])  # a branch output that is an outer value
                for inner, outer in rename.items() if not any(inner in n.output for n in branch.node)]
    return nodes + identity, list(branch.initializer)


def flatten(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` with every top-level ``If`` replaced by a branch; and a note for each node that cannot
    be counted (a loop)."""
    flat = onnx.ModelProto()
    flat.CopyFrom(model)
    nodes: list[onnx.NodeProto] = []
    notes = []
    for node in flat.graph.node:
        if node.op_type == "If":
            body, weights = inlined(node, branch_of(node))
            nodes += body
            flat.graph.initializer.extend(weights)
        else:
            if node.op_type in UNCOUNTABLE:
                notes.append(f"{node.op_type} node '{node.name}' is counted once (its trip count is unknown)")
            nodes.append(node)
    del flat.graph.node[:]
    flat.graph.node.extend(nodes)
    return flat, notes
