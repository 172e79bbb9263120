"""Node groups: the units the sensitivity analysis measures and the budget keeps in float.

Only nodes with a constant weight are quantized (MatMul/Gemm/Conv whose second input is an
initializer); MatMuls of two activations — attention scores and attention × values — stay in float,
where the fused attention path runs them. Each weight node is named by the module it came from
(``encoder.layer.0.attention.self.query``, read from the dynamo exporter's ``name_scopes`` metadata, else the
node's own name, as onnxruntime-genai's builder writes ``/model/layers.0/mlp/down_proj/MatMul``), and grouped per
node (``matmul``), per transformer layer (``layer``), or per projection across layers (``kind``:
``layers.*/mlp/down_proj``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

import onnx

from edgedistill.errors import InputError

LAYER = re.compile(r"layers?[._](\d+)")


@dataclass(frozen=True)
class NodeGroup:
    """A label (``layer.0``, ``encoder.layer.0.output.dense``) and the node names it covers."""

    label: str
    nodes: tuple[str, ...]


def weight_nodes(model: onnx.ModelProto, op_types: Iterable[str]) -> list[onnx.NodeProto]:
    """Nodes of ``op_types`` with an initializer among their first two inputs, in graph order."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    wanted = set(op_types)
    return [n for n in model.graph.node if n.op_type in wanted and any(i in constants for i in n.input[:2])]


def module_name(node: onnx.NodeProto) -> str:
    """The torch module a node came from (``backbone.`` dropped), or the node's name without that metadata."""
    scopes = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.name_scopes")
    if not scopes:
        return node.name
    names = [s for s in ast.literal_eval(scopes) if s]
    return names[-2].removeprefix("backbone.") if len(names) >= 2 else node.name


def group_label(name: str, group_by: str) -> str:
    """``name``'s group: ``layer.3`` (layer), the name with its layer index starred (kind), or the name (matmul);
    a node outside any layer (the output projection) is its own group."""
    match = LAYER.search(name)
    if match is None or group_by == "matmul":
        return name
    if group_by == "layer":
        return f"layer.{match.group(1)}"
    return LAYER.sub(lambda m: m.group(0)[: -len(m.group(1))] + "*", name).removesuffix("/MatMul")


def node_groups(model: onnx.ModelProto, op_types: Iterable[str], group_by: str) -> list[NodeGroup]:
    """The weight nodes grouped per node or per layer, in graph order.

    Raises:
        InputError: the model has no weight node of these op types.
    """
    nodes = weight_nodes(model, op_types)
    if not nodes:
        raise InputError(f"no {'/'.join(op_types)} with constant weights to quantize in this model")
    groups: dict[str, list[str]] = {}
    for node in nodes:
        label = module_name(node)
        label = group_label(label, group_by)
        groups.setdefault(label, []).append(node.name)
    return [NodeGroup(label, tuple(names)) for label, names in groups.items()]


def excluded_nodes(groups: list[NodeGroup], exclude: Iterable[str]) -> set[str]:
    """Node names for ``exclude`` entries, each a group label or a node name.

    Raises:
        InputError: an entry names neither (with the known group labels).
    """
    by_label = {g.label: g.nodes for g in groups}
    known_nodes = {n for g in groups for n in g.nodes}
    out: set[str] = set()
    for entry in exclude:
        if entry not in by_label and entry not in known_nodes:
            raise InputError(f"quantize.exclude: '{entry}' is not a quantizable node or group; "
                             f"groups are: {', '.join(list(by_label)[:12])}")
        out |= set(by_label.get(entry, (entry,)))
    return out
