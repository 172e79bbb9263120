"""FLOPs and bytes moved per ONNX node, from concrete shapes.

FLOPs count a multiply-add as two. Matrix ops (MatMul, Gemm, Conv, attention) are exact for their main term;
element-wise ops use a small per-element factor; ops not listed cost no FLOPs (their bytes still count).
Bytes are every input read once plus every output written once, at the element size of the build precision
for floating-point tensors (integer tensors keep their own size); shape-only ops move nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import onnx

from edgedistill.estimate.shapes import TensorShape

Shapes = dict[str, TensorShape]

# FLOPs per output element for element-wise and normalisation ops (rough, small next to matrix ops).
ELEMENTWISE_FLOPS = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Relu": 1, "LeakyRelu": 2, "Clip": 2, "Max": 1, "Min": 1, "Neg": 1,
    "Sqrt": 1, "Pow": 1, "Abs": 1, "Where": 1, "Sigmoid": 4, "Tanh": 4, "Erf": 4, "Exp": 4, "Log": 4,
    "HardSigmoid": 3, "HardSwish": 4, "Gelu": 8, "FastGelu": 8, "Softmax": 5, "LogSoftmax": 5,
    "LayerNormalization": 8, "SkipLayerNormalization": 9, "RMSNormalization": 5, "BatchNormalization": 2,
    "InstanceNormalization": 8, "GroupNormalization": 8, "Cast": 0, "QuantizeLinear": 2, "DequantizeLinear": 2,
}
# Ops TensorRT resolves at build time or as views: no kernel, no memory traffic.
SHAPE_OPS = {
    "Shape", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Constant", "ConstantOfShape", "Size",
    "Range", "Dropout",
}
MATRIX_KINDS = {"MatMul", "Gemm", "Conv", "ConvTranspose", "Attention", "MultiHeadAttention",
                "FusedMultiHeadAttention", "MatMulInteger", "QLinearMatMul", "QLinearConv"}
FLOAT_BYTES = {"fp32": 4.0, "tf32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "fp8": 1.0, "fp4": 0.5}


@dataclass(frozen=True)
class NodeCost:
    name: str
    op_type: str
    flops: float
    bytes: float
    known: bool  # False when some input or output shape was unknown (costs undercounted)

    @property
    def is_matrix(self) -> bool:
        return self.op_type in MATRIX_KINDS


def tensor_bytes(t: TensorShape, precision: str) -> float:
    return t.numel * (FLOAT_BYTES[precision] if t.is_float else t.itemsize)


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def matmul_flops(node: onnx.NodeProto, s: Shapes) -> float:
    a, out = s[node.input[0]].shape, s[node.output[0]].shape
    return 2.0 * numel(out) * a[-1]


def gemm_flops(node: onnx.NodeProto, s: Shapes) -> float:
    a, out = s[node.input[0]].shape, s[node.output[0]].shape
    k = a[0] if attr(node, "transA", 0) else a[1]
    bias = numel(out) if len(node.input) > 2 and node.input[2] else 0
    return 2.0 * numel(out) * k + bias


def conv_flops(node: onnx.NodeProto, s: Shapes) -> float:
    w, out = s[node.input[1]].shape, s[node.output[0]].shape
    per_output = numel(w[1:])  # (C_in / groups) x kernel
    bias = numel(out) if len(node.input) > 2 and node.input[2] else 0
    return 2.0 * numel(out) * per_output + bias


def conv_transpose_flops(node: onnx.NodeProto, s: Shapes) -> float:
    x, w = s[node.input[0]].shape, s[node.input[1]].shape
    return 2.0 * numel(x) * numel(w[1:])  # each input element scatters into (C_out / groups) x kernel outputs


def attention_flops(node: onnx.NodeProto, s: Shapes) -> float:
    """QKᵀ and PV: 4·B·S_q·S_kv·(H·D), plus the softmax over (B, H, S_q, S_kv)."""
    q, k = s[node.input[0]].shape, s[node.input[1]].shape
    if len(q) == 4:  # (B, H, S, D)
        b, h, sq, d = q
        skv = k[2]
    else:  # (B, S, H·D)
        b, sq, hd = q
        skv = k[1]
        h = attr(node, "num_heads", 0) or attr(node, "q_num_heads", 0) or 1
        d = hd // h
    return 4.0 * b * h * sq * skv * d + 5.0 * b * h * sq * skv


def packed_attention_flops(node: onnx.NodeProto, s: Shapes) -> float:
    """com.microsoft.Attention, QKV packed: the (B, S, H_in) @ (H_in, 3·H) projection, then attention over it."""
    b, sq, hidden_in = s[node.input[0]].shape
    width = s[node.input[1]].shape[1]  # Q, K and V side by side
    heads = attr(node, "num_heads", 1)
    hd = width // 3
    return 2.0 * b * sq * hidden_in * width + 4.0 * b * sq * sq * hd + 5.0 * b * heads * sq * sq


def elementwise_flops(node: onnx.NodeProto, s: Shapes) -> float:
    return float(ELEMENTWISE_FLOPS.get(node.op_type, 0) * numel(s[node.output[0]].shape))


def reduce_flops(node: onnx.NodeProto, s: Shapes) -> float:
    return float(numel(s[node.input[0]].shape))


FLOPS: dict[str, Callable[[onnx.NodeProto, Shapes], float]] = {
    "MatMul": matmul_flops, "MatMulInteger": matmul_flops, "Gemm": gemm_flops, "Conv": conv_flops,
    "ConvTranspose": conv_transpose_flops, "Attention": attention_flops, "MultiHeadAttention": attention_flops,
    "FusedMultiHeadAttention": attention_flops, "ReduceMean": reduce_flops, "ReduceSum": reduce_flops,
    "ReduceMax": reduce_flops, "GlobalAveragePool": reduce_flops, "AveragePool": reduce_flops,
    "MaxPool": reduce_flops,
}


def attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def node_bytes(node: onnx.NodeProto, s: Shapes, precision: str) -> float:
    """Inputs read once and outputs written once; a Gather reads only the rows it returns."""
    if node.op_type in SHAPE_OPS:
        return 0.0
    outputs = [s[n] for n in node.output if n in s]
    written = sum(tensor_bytes(t, precision) for t in outputs)
    inputs = [n for n in node.input if n and n in s]
    if node.op_type == "Gather" and inputs:
        inputs = inputs[1:]  # the table: only the gathered rows, which equal the output
        written *= 2
    return written + sum(tensor_bytes(s[n], precision) for n in inputs)


def node_cost(node: onnx.NodeProto, s: Shapes, precision: str) -> NodeCost:
    """FLOPs and bytes of ``node``; ``known`` is False if a shape it needs is missing."""
    names = [n for n in [*node.input, *node.output] if n]
    known = all(n in s for n in names)
    flops = 0.0
    if known:
        packed = node.op_type == "Attention" and node.domain == "com.microsoft"  # not opset 23's Attention(Q, K, V)
        fn = packed_attention_flops if packed else FLOPS.get(node.op_type, elementwise_flops)
        flops = fn(node, s)
    return NodeCost(node.name or node.output[0], node.op_type, flops, node_bytes(node, s, precision), known)
