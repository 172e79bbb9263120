"""Opening, inspecting and publishing ONNX model files.

A model file may keep its weights in external data files next to it (models over 2 GB); the helpers
here treat the model file and those files as one unit when moving or removing it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from edgedistill.errors import InputError

ONNX_NAME = "model.onnx"  # the model file every stage that makes an ONNX model writes into its folder
QUANTIZED_OPS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
    "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "MatMulNBits", "QAttention", "QGemm",
}
QUANTIZED_PREFIXES = ("QLinear", "QOrdered")
MB = 2**20  # sizes are reported in MB of 2^20 bytes (MiB), as `du -h` shows them
EXTERNAL_DATA_BYTES = 2**31 - 2**26  # protobuf's 2 GiB limit, with room for the graph: larger weights go beside it

TensorInfo = tuple[str, str, list[int | str]]


def check_onnx_file(path: Path) -> onnx.ModelProto:
    """Load ``path`` as an ONNX model and run the ONNX checker on it.

    Weights held in external data files are not loaded (the graph is enough to inspect the model).

    Returns:
        The model proto.
    Raises:
        InputError: the file is missing, is not an ONNX model, or fails the checker.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ONNX model not found: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError) as err:
        raise InputError(f"{path} is not an ONNX model ({first_line(err)}); pass a .onnx file from `export`") from None
    try:
        onnx.checker.check_model(str(path))  # by path, so models with external data are checked too
    except (onnx.checker.ValidationError, OSError, ValueError) as err:
        if not runtime_op_only(err):
            raise InputError(f"{path} is not a valid ONNX model: {first_line(err)}") from None
    return proto


def runtime_op_only(err: BaseException) -> bool:
    """Whether the checker only objects to an op ONNX itself does not define: ONNX Runtime's own ops written in
    the default domain (``SimplifiedLayerNormalization``, as onnxruntime-genai's builder emits) are valid there."""
    return "No Op registered for" in str(err)


def onnx_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (checked to be a model first)."""
    return {p.key: p.value for p in check_onnx_file(path).metadata_props}


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def onnx_io(path: Path) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Graph inputs and outputs of the model at ``path`` as ``(name, dtype, shape)``.

    ``dtype`` is numpy-style (``int64``, ``float32``); symbolic dimensions are their names (``batch``),
    unknown ones ``?``.

    Raises:
        InputError: as :func:`check_onnx_file`.
    """
    graph = check_onnx_file(path).graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value_info(v) for v in graph.input if v.name not in initializers]
    return inputs, [value_info(v) for v in graph.output]


def value_info(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor = value.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
    shape: list[int | str] = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim
    ]
    return value.name, dtype, shape


def is_quantized(model: onnx.ModelProto) -> bool:
    """True if the graph (including subgraph-free functions) holds quantization or integer ops."""
    ops = {n.op_type for n in model.graph.node} | {n.op_type for f in model.functions for n in f.node}
    return bool(ops & QUANTIZED_OPS) or any(op.startswith(QUANTIZED_PREFIXES) for op in ops)


def graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Initializers and tensor attributes of ``graph`` and its subgraphs (If/Loop bodies)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from graph_tensors(attr.g)
            for sub in attr.graphs:
                yield from graph_tensors(sub)


def external_data_files(path: Path) -> list[Path]:
    """The external data files the model at ``path`` refers to, subgraphs included (empty when inline)."""
    proto = onnx.load(str(path), load_external_data=False)
    names = {entry.value for tensor in graph_tensors(proto.graph)
             if tensor.data_location == onnx.TensorProto.EXTERNAL
             for entry in tensor.external_data if entry.key == "location"}
    return [path.parent / name for name in sorted(names)]


def onnx_size_mb(path: Path) -> float:
    """Size of the model file plus its external data, in MB of 2^20 bytes (the unit of every size edgedistill
    reports)."""
    return round(model_bytes(path) / MB, 3)


def model_bytes(path: Path) -> int:
    """Bytes of the model file plus its external data."""
    return sum(f.stat().st_size for f in (path, *external_data_files(path)))


def needs_external_data(nbytes: int) -> bool:
    """Whether a model of ``nbytes`` must keep its weights in a file beside the graph."""
    return nbytes > EXTERNAL_DATA_BYTES


def save_onnx(proto: onnx.ModelProto, path: Path, external: bool = False) -> None:
    """Save ``proto`` (weights in memory) at ``path``; into ``<name>.data`` beside it when asked (the source had
    external data) or when it is too large for one file."""
    large = external or needs_external_data(proto.ByteSize())
    onnx.save(proto, str(path), save_as_external_data=large, location=f"{path.name}.data" if large else None)


def publish_onnx(staged: Path, dest: Path) -> None:
    """Move a finished model (and its external data) from a staging folder to ``dest``.

    The data files move first and the model file last, each with an atomic rename, so ``dest`` only
    appears once everything it needs is in place. ``staged`` must have the same name as ``dest``
    because external data is referred to by file name.
    """
    if staged.name != dest.name:
        raise ValueError(f"staged file {staged.name} must be named like its destination {dest.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for data in external_data_files(staged):
        os.replace(data, dest.parent / data.name)
    os.replace(staged, dest)


def remove_onnx(path: Path) -> None:
    """Delete a model file and its external data, if present."""
    if not path.is_file():
        return
    with contextlib.suppress(Exception):
        for data in external_data_files(path):
            data.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
