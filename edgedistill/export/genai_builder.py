"""The fused decoder of onnxruntime-genai's model builder (``onnxruntime_genai.models.builder``), as an exporter:
GroupQueryAttention with rotary embedding fused, SkipSimplifiedLayerNormalization, packed QKV, a KV cache whose past
and present share one buffer. We do not rewrite our own export into this form (decoder fusion passes are not
written); the builder is the maintained tool that emits it, and its graph is verified against torch like ours.

The builder reads a model folder; a GGUF teacher is saved as its float folder first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx

from edgedistill.errors import InputError, MissingDependencyError
from edgedistill.lm.decoder_io import DecoderShape
from edgedistill.models.onnx_file import ONNX_NAME

GQA_HEAD_MULTIPLE = 16  # GroupQueryAttention's CPU kernel


def require_builder() -> None:
    import importlib.util

    if importlib.util.find_spec("onnxruntime_genai") is None:
        raise MissingDependencyError("export.exporter genai-builder needs onnxruntime-genai: "
                                     "pip install onnxruntime-genai")


def model_folder(model: Any, tokenizer: Any, source: Path, staging: Path) -> Path:
    """A model folder the builder can read: ``source`` itself, or the float model saved from a GGUF file."""
    if source.is_dir():
        return source
    folder = staging / "float-model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_fused(model: Any, tokenizer: Any, source: Path, staging: Path, metadata: dict[str, str]) -> Path:
    """Run the builder (fp32, CPU) into ``staging/builder``; returns its ``model.onnx`` (tagged with ``metadata``).

    Raises:
        MissingDependencyError: onnxruntime-genai is not installed.
        InputError: the builder does not support the model (its last error line is shown).
    """
    require_builder()
    head_size = DecoderShape.of(model.config).head_size
    if head_size % GQA_HEAD_MULTIPLE:
        raise InputError(f"export.exporter genai-builder: onnxruntime's GroupQueryAttention needs a head size that "
                         f"is a multiple of {GQA_HEAD_MULTIPLE}, this model's is {head_size}; use exporter: dynamo")
    out = staging / "builder"
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i",
               str(model_folder(model, tokenizer, source, staging)), "-o", str(out), "-p", "fp32", "-e", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True)
    graph = out / ONNX_NAME
    if done.returncode != 0 or not graph.is_file():
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise InputError(f"onnxruntime-genai's builder failed: {lines[-1] if lines else 'no output'}; "
                         "use export.exporter: dynamo")
    proto = onnx.load(str(graph), load_external_data=False)
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **metadata})
    onnx.save(proto, str(graph))
    return graph
