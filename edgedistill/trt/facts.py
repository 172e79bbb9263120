"""What the engine builder needs to know about an ONNX file, read once without TensorRT."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from edgedistill.models.onnx_file import check_onnx_file, value_info
from edgedistill.plugins import fused_attention_spec

FP8_TYPES = {onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E5M2}


@dataclass(frozen=True)
class GraphInput:
    name: str
    dtype: str
    shape: tuple[int | str, ...]  # fixed sizes, or the symbolic name ('batch', 'sequence', '?')

    @property
    def is_dynamic(self) -> bool:
        return any(not isinstance(d, int) for d in self.shape)


@dataclass(frozen=True)
class ModelFacts:
    """Inputs, outputs, metadata and ops of an ONNX model."""

    inputs: tuple[GraphInput, ...]
    outputs: tuple[GraphInput, ...]
    metadata: dict[str, str]
    ops: dict[tuple[str, str], str]  # (domain, op_type) -> first node's name
    quantized: frozenset[str]  # "int8" and/or "fp8" when the graph holds Q/DQ pairs of that type

    @property
    def uses_plugin(self) -> bool:
        spec = fused_attention_spec()
        return any(op == spec["name"] for _, op in self.ops)


def read_facts(path: Path) -> ModelFacts:
    """Facts about the ONNX file at ``path``.

    Raises:
        InputError: the file is missing or not a valid ONNX model.
    """
    proto = check_onnx_file(path)
    return facts_from_proto(proto)


def facts_from_proto(proto: onnx.ModelProto) -> ModelFacts:
    graph = proto.graph
    initializers = {i.name: i for i in graph.initializer}
    inputs = tuple(as_input(v) for v in graph.input if v.name not in initializers)
    ops: dict[tuple[str, str], str] = {}
    for node in graph.node:
        ops.setdefault((node.domain or "ai.onnx", node.op_type), node.name or node.output[0])
    return ModelFacts(
        inputs=inputs, outputs=tuple(as_input(v) for v in graph.output),
        metadata={p.key: p.value for p in proto.metadata_props}, ops=ops,
        quantized=quantized_types(graph, initializers),
    )


def as_input(value: onnx.ValueInfoProto) -> GraphInput:
    name, dtype, shape = value_info(value)
    return GraphInput(name, dtype, tuple(shape))


def quantized_types(graph: onnx.GraphProto, initializers: dict[str, onnx.TensorProto]) -> frozenset[str]:
    """``int8`` / ``fp8`` for QuantizeLinear nodes, by their zero point's type (absent: uint8, counted int8)."""
    found = set()
    for node in graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        zero = initializers.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        found.add("fp8" if zero is not None and zero.data_type in FP8_TYPES else "int8")
    return frozenset(found)
