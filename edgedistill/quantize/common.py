"""Steps every quantization mode shares: checking the input, pre-processing, staging and publishing.

A mode writes its result into a staging folder inside ``out``; :func:`publish` tags it, moves it to
``out/model.onnx`` (atomic renames) and copies the tokenizer files, so ``out`` never holds half a model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import onnx

from edgedistill.artifacts import Artifact, staging_dir
from edgedistill.config import Step
from edgedistill.errors import InputError
from edgedistill.fuse.graph import sort_topologically
from edgedistill.fuse.unpadded_fast_path import remove_unpadded_fast_path
from edgedistill.models.onnx_file import ONNX_NAME, check_onnx_file, is_quantized, onnx_size_mb, publish_onnx
from edgedistill.models.tokenizer_files import copy_preprocessor_files

EXTERNAL_DATA_MB = 1900.0  # above this the result is written with external data (protobuf's 2 GB limit)


def check_float_model(model: Artifact) -> onnx.ModelProto:
    """The model's graph, after checking it is a valid float ONNX file.

    Raises:
        InputError: not an ONNX artifact, not a valid model, or already quantized.
    """
    if model.kind != "onnx":
        raise InputError(f"quantize takes an ONNX model; '{model.name}' is a {model.kind} artifact — export it first")
    proto = check_onnx_file(model.path)
    if is_quantized(proto):
        raise InputError(f"{model.path} is already quantized; quantize the float model")
    return proto


def is_large(path: Path) -> bool:
    return onnx_size_mb(path) > EXTERNAL_DATA_MB


def staging(out: Path) -> contextlib.AbstractContextManager[Path]:
    """A staging folder inside ``out`` for a quantizer's work (see :func:`edgedistill.artifacts.staging_dir`)."""
    return staging_dir(out, "quantize")


def without_fast_path(src: Path, folder: Path) -> Path:
    """``src``, or a copy of it in ``folder`` without the ``ort`` form's unpadded fast path (its ``If`` nodes back to
    the plain attention): what every quantizer here starts from (static calibration and QDQ do not look inside
    subgraphs; for dynamic INT8 the If overhead outweighed the flash branch, see quantize/ort.py)."""
    if not any(n.op_type == "If" for n in onnx.load(str(src), load_external_data=False).graph.node):
        return src
    proto = onnx.load(str(src))
    if not remove_unpadded_fast_path(proto):
        return src
    dest = folder / "plain" / ONNX_NAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    large = is_large(src)
    onnx.save(proto, str(dest), save_as_external_data=large, location=f"{ONNX_NAME}.data" if large else None)
    return dest


def prepare(src: Path, dest: Path) -> Path:
    """ORT's quantization pre-processing (graph optimisation + ONNX shape inference) of ``src`` into ``dest``.

    Symbolic shape inference is skipped: it fails on dynamo exports ("Incomplete symbolic shape
    inference"), and the onnxscript optimizer has already folded the constants it would help with.
    Node names survive, so exclusions computed on ``src`` apply to ``dest``.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dest.parent.mkdir(parents=True, exist_ok=True)
    large = is_large(src)
    quant_pre_process(str(src), str(dest), skip_symbolic_shape=True, save_as_external_data=large,
                      all_tensors_to_one_file=True)
    return dest


def tag(path: Path, label: str) -> None:
    """Record the quantization in the model's metadata (graph only; external data is untouched).

    Also restores topological order where the quantizer, which sorts by explicit inputs only, put an ``If`` ahead
    of a tensor its branches read (the unpadded fast path of the ``ort`` form).
    """
    proto = onnx.load(str(path), load_external_data=False)
    sort_topologically(proto.graph)
    onnx.helper.set_model_props(
        proto, {**{p.key: p.value for p in proto.metadata_props}, "edgedistill.quantization": label}
    )
    onnx.save(proto, str(path))


def publish(staged: Path, out: Path, model: Artifact, step: Step, meta: dict[str, Any]) -> Artifact:
    """Tag ``staged``, move it to ``out/model.onnx``, copy the tokenizer; the artifact with ``meta`` + size."""
    tag(staged, step.mode)
    if staged.name != ONNX_NAME:
        staged = staged.rename(staged.with_name(ONNX_NAME))
    publish_onnx(staged, out / ONNX_NAME)
    copy_preprocessor_files(model.path.parent, out)
    meta = {"mode": step.mode, **meta, "size_mb": onnx_size_mb(out / ONNX_NAME)}
    return Artifact(f"{model.base_name}-{step.label}", "onnx", out / ONNX_NAME, model.task, meta)
