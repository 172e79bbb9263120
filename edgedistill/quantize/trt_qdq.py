"""INT8 for TensorRT: explicit quantization as TensorRT's ONNX parser wants it.

Symmetric int8 activations and weights (zero points 0), per-channel weight scales on the output
channel axis, one Q→DQ pair per input of MatMul/Gemm/Conv with a constant weight and nowhere else:
attention's activation×activation MatMuls and Softmax stay float for TensorRT's fused attention.
Weights stay float behind their own Q→DQ pair (Optimum's ``tensorrt`` preset), which every
TensorRT version parses. :func:`trt_problems` checks the graph structurally; building the engine
is the TensorRT stage's job on a machine with TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgedistill.artifacts import Artifact
from edgedistill.config import TrtInt8
from edgedistill.errors import VerificationError
from edgedistill.quantize.data import QuantizeData
from edgedistill.quantize.presets import TRT_OPS, resolve
from edgedistill.quantize.static_int8 import static_int8

QDQ = ("QuantizeLinear", "DequantizeLinear")


def consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def zero_point_problems(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> list[str]:
    """A Q/DQ's zero point must be an int8 initializer of zeros (symmetric)."""
    if len(node.input) < 3 or node.input[2] not in inits:
        return [f"{node.name}: no constant zero point"]
    zp = inits[node.input[2]]
    if zp.data_type != onnx.TensorProto.INT8:
        return [f"{node.name}: zero point is {onnx.TensorProto.DataType.Name(zp.data_type)}, not INT8"]
    return [] if not np.any(numpy_helper.to_array(zp)) else [f"{node.name}: non-zero zero point (asymmetric)"]


def weight_problems(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> list[str]:
    """A weight's Q must have per-channel scales along an axis of the weight."""
    scale = numpy_helper.to_array(inits[node.input[1]]) if node.input[1] in inits else None
    if scale is None or scale.ndim != 1 or scale.size < 2:
        return [f"{node.name}: weight scale is not per-channel"]
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    dims = list(inits[node.input[0]].dims)
    return [] if -len(dims) <= axis < len(dims) and dims[axis] == scale.size else [
        f"{node.name}: per-channel axis {axis} does not match weight shape {dims}"]


def trt_problems(model: onnx.ModelProto) -> list[str]:
    """Why TensorRT's parser would reject or mis-fuse this QDQ graph; empty when the structure is right."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    users = consumers(graph)
    problems = [f"{n.name}: op {n.domain}::{n.op_type} is not standard ONNX" for n in graph.node
                if n.domain not in ("", "ai.onnx")]
    for node in (n for n in graph.node if n.op_type in QDQ):
        problems += zero_point_problems(node, inits)
        next_ops = {u.op_type for u in users.get(node.output[0], [])}
        wanted = {"DequantizeLinear"} if node.op_type == "QuantizeLinear" else set(TRT_OPS)
        if not next_ops or next_ops - wanted:
            problems.append(f"{node.name}: {node.op_type} feeds {sorted(next_ops)}, expected {sorted(wanted)}")
        if node.op_type == "QuantizeLinear" and node.input[0] in inits:
            problems += weight_problems(node, inits)
    if not any(n.op_type == "QuantizeLinear" for n in graph.node):
        problems.append("no QuantizeLinear nodes: nothing is quantized")
    return problems


def reroute_float_consumers(model: onnx.ModelProto) -> int:
    """Feed ops other than MatMul/Gemm/Conv the float tensor instead of its Q→DQ copy; returns how many.

    ORT's QDQ quantizer gives a tensor's Q→DQ to all its consumers (the residual Add next to an FFN
    MatMul too); TensorRT should see Q/DQ only where it fuses them into an int8 kernel.
    """
    producer = {out: n for n in model.graph.node for out in n.output}
    moved = 0
    for node in model.graph.node:
        if node.op_type in TRT_OPS:
            continue
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[i] = q.input[0]
                moved += 1
    return moved


def finish(path: Path) -> None:
    """Reroute float consumers, then raise VerificationError if ``path`` is not a TensorRT-ready QDQ graph."""
    model = onnx.load(str(path), load_external_data=False)
    if reroute_float_consumers(model):
        onnx.save(model, str(path))
    problems = trt_problems(model)
    if problems:
        raise VerificationError(f"{len(problems)} TensorRT QDQ problems, first: {'; '.join(problems[:3])}")


def trt_int8(step: TrtInt8, model: Artifact, out: Path, data: QuantizeData | None = None) -> Artifact:
    """Explicit symmetric INT8 QDQ for TensorRT into ``out/model.onnx``, checked structurally.

    Raises:
        InputError: as :func:`edgedistill.quantize.static_int8.static_int8`.
        VerificationError: the graph is not what TensorRT's parser accepts.
    """
    return static_int8(step, model, out, data, settings=resolve(step), finish=finish)
