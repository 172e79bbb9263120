"""Tiny synthetic attention graphs (2 heads, hidden 16 unless asked) built with onnx.helper, one per pattern.

Each builder returns a model with inputs ``x`` (B, S, hidden) float and ``attention_mask`` (B, S) int64 and
output ``y`` (B, S, hidden) = attention(x) @ Wo.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgedistill.fuse import fuse_attention

LOWEST = float(np.finfo(np.float32).min)


class Builder:
    def __init__(self, hidden: int, heads: int, opset: int, seed: int = 0):
        self.hidden, self.heads, self.head_size, self.opset = hidden, heads, hidden // heads, opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def const(self, value, dtype=np.float32) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self.n += 1
        out = f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"n{self.n}_{op_type}", **attrs))
        return out

    def linear(self, x: str) -> str:
        w = self.const(self.rng.normal(0, 0.3, (self.hidden, self.hidden)))
        return self.op("Add", [self.op("MatMul", [x, w]), self.const(self.rng.normal(0, 0.1, self.hidden))])

    def heads_first(self, x: str, perm=(0, 2, 1, 3)) -> str:
        split = self.op("Reshape", [x, self.const([0, 0, self.heads, self.head_size], np.int64)])
        return self.op("Transpose", [split], perm=list(perm))

    def merge(self, context: str) -> str:
        merged = self.op("Transpose", [context], perm=[0, 2, 1, 3])
        out = self.op("Reshape", [merged, self.const([0, 0, -1], np.int64)])
        w = self.const(self.rng.normal(0, 0.3, (self.hidden, self.hidden)))
        self.nodes.append(helper.make_node("MatMul", [out, w], ["y"], name="out_proj"))
        return "y"

    def key_padding_bias(self, axes=(1, 2)) -> str:
        """Where(mask, 0, lowest) with the mask unsqueezed at ``axes`` — (1, 2) is keys, (1, 3) queries."""
        unsqueezed = self.op("Unsqueeze", ["attention_mask", self.const(list(axes), np.int64)])
        keep = self.op("Cast", [unsqueezed], to=TensorProto.BOOL)
        return self.op("Where", [keep, self.const(0.0), self.const(LOWEST)])

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "attention",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", self.hidden]),
             helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", self.hidden])],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 10
        onnx.checker.check_model(model)
        return model


def sdpa_decomposed(hidden=16, heads=2, mask="keys", extra_op=None, causal=False, opset=20,
                    cross=False) -> onnx.ModelProto:
    """The SDPA decomposition: sqrt(scale) on Q and K^T, additive Where mask, NaN guard after Softmax.

    ``mask``: "keys" (key padding), "queries" (a near miss: padding on the query axis), "bias" (a finite
    float bias), or None. ``extra_op``: an op inserted between Softmax and the MatMul with V (a near miss).
    ``cross``: keys and values project ``Relu(x)`` rather than ``x`` (cross-attention shaped).
    """
    b = Builder(hidden, heads, opset)
    kv_source = b.op("Relu", ["x"]) if cross else "x"
    q, k, v = b.linear("x"), b.linear(kv_source), b.linear(kv_source)
    root = math.sqrt(1.0 / math.sqrt(b.head_size))
    q4 = b.op("Mul", [b.heads_first(q), b.const(root)])
    k4 = b.op("Mul", [b.heads_first(k, (0, 2, 3, 1)), b.const(root)])
    scores = b.op("MatMul", [q4, k4])
    bias = None
    if mask == "keys":
        bias = b.key_padding_bias((1, 2))
    elif mask == "queries":
        bias = b.key_padding_bias((1, 3))
    elif mask == "bias":
        bias = b.const(b.rng.normal(0, 1, (1, heads, 1, 1)))
    if causal:  # one combined mask: key padding + strictly-upper triangle of lowest
        ones = b.op("ConstantOfShape", [b.op("Shape", [scores])], value=numpy_helper.from_array(np.ones(1, np.float32)))
        future = b.op("Mul", [b.op("Trilu", [ones, b.const(1, np.int64)], upper=1), b.const(LOWEST)])
        bias = future if bias is None else b.op("Add", [bias, future])
    if bias is not None:
        scores = b.op("Add", [scores, bias])
    probs = b.op("Softmax", [scores], axis=-1)
    probs = b.op("Where", [b.op("IsNaN", [probs]), b.const(0.0), probs])
    if extra_op:
        probs = b.op(extra_op, [probs, b.const(0.9)]) if extra_op == "Mul" else b.op(extra_op, [probs])
    b.merge(b.op("MatMul", [probs, b.heads_first(v)]))
    return b.model()


def eager_scaled_scores(hidden=16, heads=2, opset=17) -> onnx.ModelProto:
    """Hugging Face eager attention: MatMul → Div(sqrt(d)) → Add((1 - mask) * -1e4) → Softmax → MatMul."""
    b = Builder(hidden, heads, opset)
    q, k, v = (b.linear("x") for _ in range(3))
    scores = b.op("MatMul", [b.heads_first(q), b.heads_first(k, (0, 2, 3, 1))])
    scores = b.op("Div", [scores, b.const(math.sqrt(b.head_size))])
    mask = b.op("Cast", [b.op("Unsqueeze", ["attention_mask", b.const([1, 2], np.int64)])], to=TensorProto.FLOAT)
    bias = b.op("Mul", [b.op("Sub", [b.const(1.0), mask]), b.const(-10000.0)])
    probs = b.op("Softmax", [b.op("Add", [scores, bias])], axis=-1)
    b.merge(b.op("MatMul", [probs, b.heads_first(v)]))
    return b.model()


def onnx_attention_op(hidden=16, heads=2) -> onnx.ModelProto:
    """Opset-23 ``Attention`` on heads-first tensors with a boolean key-padding mask (B, 1, S, S).

    (ONNX Runtime 1.32's CPU kernel wants the query axis of the mask spelled out, not broadcast.)
    """
    b = Builder(hidden, heads, 23)
    q, k, v = (b.linear("x") for _ in range(3))
    keep = b.op("Cast", [b.op("Unsqueeze", ["attention_mask", b.const([1, 2], np.int64)])], to=TensorProto.BOOL)
    one = b.const([1], np.int64)
    target = b.op("Concat", [one, one, b.op("Shape", ["attention_mask"], start=1, end=2), one], axis=0)
    keep = b.op("Expand", [keep, target])
    context = b.op("Attention", [b.heads_first(q), b.heads_first(k), b.heads_first(v), keep], scale=0.3)
    b.merge(context)
    return b.model()


def batches(hidden=16, seed=0) -> list[tuple[str, dict[str, np.ndarray]]]:
    """An unmasked and two padding-heavy batches."""
    rng = np.random.default_rng(seed)
    out = []
    for label, batch, seq, padded in (("unmasked", 2, 7, False), ("padded", 4, 9, True), ("padded-long", 3, 33, True)):
        x = rng.normal(size=(batch, seq, hidden)).astype(np.float32)
        lengths = np.linspace(seq, 1, batch).round().astype(int) if padded else np.full(batch, seq)
        mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
        out.append((label, {"x": x, "attention_mask": mask}))
    return out


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], optimize: bool = True) -> np.ndarray:
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(["y"], feeds)[0]


def fused_copy(model: onnx.ModelProto, form: str = "ort") -> tuple[onnx.ModelProto, dict]:
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    counts = {c.fusion: c for c in fuse_attention(fused, form)}
    return fused, counts


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def assert_same_outputs(model: onnx.ModelProto, fused: onnx.ModelProto) -> None:
    for label, feeds in batches():
        want, got = run(model, feeds, optimize=False), run(fused, feeds)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=label)
