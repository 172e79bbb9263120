"""ONNX ops TensorRT's ONNX parser cannot import, caught before a build with a message saying what covers them."""

from __future__ import annotations

from edgedistill.errors import InputError
from edgedistill.plugins import fused_attention_spec
from edgedistill.targets.defaults import NATIVE_ATTENTION_SINCE, parse_version
from edgedistill.trt.facts import ModelFacts

# ONNX Runtime's integer and dynamic-quantization ops: onnx-tensorrt has no importer for them
# (docs/operators.md); TensorRT builds int8 from QuantizeLinear/DequantizeLinear pairs instead.
ORT_ONLY = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv"}


def unsupported_op_message(domain: str, op: str, node: str, tensorrt: str) -> str | None:
    """Why ``op`` will not import into TensorRT ``tensorrt`` and what would cover it; None if it should."""
    version = parse_version(tensorrt)[:2]
    plugin = fused_attention_spec()
    if op == plugin["name"] and domain in (plugin["namespace"], "ai.onnx", "trt.plugins"):
        return None
    if domain == "ai.onnx" and op == "Attention" and version < NATIVE_ATTENTION_SINCE:
        return (f"node '{node}' is ONNX Attention, which TensorRT imports from 10.14 on (planning for {tensorrt}); "
                f"fuse attention into the '{plugin['name']}' plugin instead (the target's default below 10.14) "
                "or build with a newer TensorRT")
    if domain == "com.microsoft":
        return (f"node '{node}' is the ONNX Runtime contrib op {domain}.{op}, which TensorRT cannot import and no "
                "plugin of ours covers; build from the graph before ONNX Runtime fusions or quantization")
    if op in ORT_ONLY:
        return (f"node '{node}' is {op} (ONNX Runtime dynamic/integer quantization), which TensorRT cannot import "
                "in any version; build from the float model, or quantize with Q/DQ (explicit quantization) for int8")
    return None


def check_ops(facts: ModelFacts, tensorrt: str) -> None:
    """Raise InputError naming the first op TensorRT ``tensorrt`` cannot import (and what would cover it)."""
    for (domain, op), node in facts.ops.items():
        message = unsupported_op_message(domain, op, node, tensorrt)
        if message:
            raise InputError(message)
