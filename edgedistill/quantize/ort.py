"""ONNX Runtime dynamic INT8 quantization of an exported ONNX model.

Weights of MatMul/Gemm become INT8 once, at quantization; activations are quantized at run time
(``DynamicQuantizeLinear`` + ``MatMulInteger``), so no calibration data is needed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import onnx

from edgedistill.artifacts import Artifact
from edgedistill.config import QuantizeStep
from edgedistill.errors import InputError
from edgedistill.models.onnx_file import check_onnx_file, is_quantized, onnx_size_mb, publish_onnx
from edgedistill.models.tokenizer_files import copy_tokenizer_files

ONNX_NAME = "model.onnx"
INTEGER_OPS = {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
EXTERNAL_DATA_MB = 1900.0  # above this the result is written with external data (protobuf's 2 GB limit)


def quantize_dynamic_int8(src: Path, dest: Path, step: QuantizeStep, large: bool) -> None:
    """Pre-process ``src`` (ORT graph optimisation + ONNX shape inference) and quantize it into ``dest``.

    Symbolic shape inference is skipped: it fails on dynamo exports ("Incomplete symbolic shape
    inference"), and the onnxscript optimizer has already folded the constants it would help with.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = dest.parent / "prepared" / "model.onnx"
    prepared.parent.mkdir()
    quant_pre_process(
        str(src), str(prepared), skip_symbolic_shape=True, save_as_external_data=large,
        all_tensors_to_one_file=True,
    )
    quantize_dynamic(
        prepared, dest, weight_type=QuantType.QInt8, per_channel=step.per_channel,
        reduce_range=step.reduce_range, use_external_data_format=large,
    )


def check_integer_ops(path: Path, source: Path) -> None:
    """Raise InputError if quantization left the model without integer ops (nothing was quantized)."""
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    if not ops & INTEGER_OPS:
        raise InputError(f"{source}: dynamic INT8 found no MatMul/Gemm with constant weights to quantize")


def tag(path: Path, step: QuantizeStep) -> None:
    """Record the quantization mode in the model's metadata (graph only; external data is untouched)."""
    proto = onnx.load(str(path), load_external_data=False)
    onnx.helper.set_model_props(
        proto, {**{p.key: p.value for p in proto.metadata_props}, "edgedistill.quantization": step.mode}
    )
    onnx.save(proto, str(path))


def run(step: QuantizeStep, model: Artifact, out: Path) -> Artifact:
    """Quantize the float ONNX model ``model`` into ``out/model.onnx`` and copy its tokenizer files.

    Returns:
        The quantized artifact; ``meta`` holds the mode and size in MB.
    Raises:
        InputError: the input is not a valid ONNX file, is already quantized, or had nothing to quantize.
    """
    if model.kind != "onnx":
        raise InputError(f"quantize takes an ONNX model; '{model.name}' is a {model.kind} artifact — export it first")
    if step.mode != "dynamic-int8":
        raise InputError(f"quantize.ort does not do mode '{step.mode}'; use dynamic-int8")
    proto = check_onnx_file(model.path)
    if is_quantized(proto):
        raise InputError(f"{model.path} is already quantized; quantize the float model")
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".quantize.", dir=out))
    try:
        staged = staging / ONNX_NAME
        quantize_dynamic_int8(model.path, staged, step, large=onnx_size_mb(model.path) > EXTERNAL_DATA_MB)
        check_integer_ops(staged, model.path)
        tag(staged, step)
        publish_onnx(staged, out / ONNX_NAME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    copy_tokenizer_files(model.path.parent, out)
    meta = {"mode": step.mode, "per_channel": step.per_channel, "reduce_range": step.reduce_range,
            "size_mb": onnx_size_mb(out / ONNX_NAME)}
    return Artifact(name=f"{model.name}-{step.mode}", kind="onnx", path=out / ONNX_NAME, task=model.task, meta=meta)
