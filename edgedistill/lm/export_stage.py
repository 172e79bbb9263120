"""The export stage of a text-generation model: a causal LM (model folder or GGUF file) in, a folder out that
onnxruntime-genai loads as it is — ``model.onnx`` (one decoder with a KV cache, :mod:`edgedistill.export.decoder`),
``genai_config.json`` and the tokenizer files — proved against torch first (:mod:`edgedistill.export.decoder_verify`).
``model.onnx`` appears last, and only once verification passed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgedistill import verification
from edgedistill.artifacts import Artifact, atomic_write_json, sha256_path, staging_dir
from edgedistill.config import ExportConfig
from edgedistill.errors import InputError, VerificationError
from edgedistill.export.decoder import export_decoder
from edgedistill.export.decoder_verify import describe_greedy, verify_decoder
from edgedistill.export.genai_config import write_genai_config
from edgedistill.export.stage import VERIFICATION_NAME
from edgedistill.lm.decoder_io import DecoderShape
from edgedistill.lm.decoders import OrtDecoder
from edgedistill.models.onnx_file import ONNX_NAME, onnx_size_mb, publish_onnx, remove_onnx
from edgedistill.models.tokenizer_files import copy_preprocessor_files

TASK = "text-generation"


def decoder_metadata(shape: DecoderShape, cfg: ExportConfig, source: Path) -> dict[str, str]:
    """What the graph records of itself: the task, the cache's shape, and the range of every dynamic dimension
    (what a TensorRT build plan makes its optimization profile from: prefill and decode fit in one range)."""
    context = shape.context_length
    ranges = {"batch": (1, cfg.dynamic.batch.max), "batch_size": (1, cfg.dynamic.batch.max),
              "sequence_length": (1, context), "past_sequence_length": (0, context - 1),
              "total_sequence_length": (1, context)}
    return {"edgedistill.task": TASK, "edgedistill.heads": str(shape.heads), "edgedistill.hidden": str(shape.hidden),
            "edgedistill.source_sha256": sha256_path(source),
            **{f"edgedistill.{name}_range": f"{low},{high}" for name, (low, high) in ranges.items()}}


def run(cfg: ExportConfig, model: Artifact, out: Path, bisect: bool = False) -> Artifact:
    """Export the causal LM at ``model.path`` into ``out`` (see the module doc).

    Raises:
        InputError: not a causal LM, or the exporter cannot trace it.
        VerificationError: logits or greedy answers differ from torch (``out/verification.json`` says where).
    """
    from edgedistill.lm.load import load_causal_lm

    if model.kind not in ("hf", "gguf"):
        raise InputError(f"export takes a model folder or GGUF file; '{model.name}' is a {model.kind} artifact")
    if cfg.exporter == "torchscript":
        raise InputError("export.exporter torchscript does not export decoders with a KV cache; use dynamo or "
                         "genai-builder")
    lm, tokenizer = load_causal_lm(model.path, "export")
    shape = DecoderShape.of(lm.config)
    with staging_dir(out, "export") as staging:
        start = time.perf_counter()
        graph = write_graph(lm, tokenizer, cfg, model.path, staging, decoder_metadata(shape, cfg, model.path))
        export_s = time.perf_counter() - start
        report = verify_decoder(lm, tokenizer, OrtDecoder(graph), cfg)
        atomic_write_json(out / VERIFICATION_NAME, report)
        if not report["passed"]:
            remove_onnx(out / ONNX_NAME)
            fail(report)
        if cfg.exporter == "genai-builder":  # its genai_config.json and tokenizer files come with it
            copy_preprocessor_files(graph.parent, out)
        else:
            save_tokenizer(tokenizer, staging, out)
            write_genai_config(out, shape, lm, ONNX_NAME)
        publish_onnx(graph, out / ONNX_NAME)
    meta = {"verification": verification.summary(report), "greedy": summary_of(report["greedy"]),
            "exporter": cfg.exporter,
            "export_s": round(export_s, 2), "size_mb": onnx_size_mb(out / ONNX_NAME),
            "context_length": shape.context_length}
    return Artifact(name=f"{model.name}-onnx", kind="onnx", path=out / ONNX_NAME, task=TASK, meta=meta)


def write_graph(lm: Any, tokenizer: Any, cfg: ExportConfig, source: Path, staging: Path,
                metadata: dict[str, str]) -> Path:
    """The decoder graph in ``staging``: our dynamo export, or onnxruntime-genai's builder's fused one."""
    if cfg.exporter == "genai-builder":
        from edgedistill.export.genai_builder import build_fused

        return build_fused(lm, tokenizer, source, staging, metadata)
    export_decoder(lm, cfg, staging / ONNX_NAME, metadata)
    return staging / ONNX_NAME


def fail(report: dict[str, Any]) -> None:
    verification.check(report, "the decoder export")
    raise VerificationError(describe_greedy(report["greedy"]))


def summary_of(greedy: dict[str, Any]) -> dict[str, Any]:
    return {k: greedy[k] for k in ("prompts", "new_tokens", "identical", "passed")}


def save_tokenizer(tokenizer: Any, staging: Path, out: Path) -> None:
    """The tokenizer files beside the graph (a GGUF file holds its tokenizer inside, so it is saved out first)."""
    folder = staging / "tokenizer"
    tokenizer.save_pretrained(folder)
    copy_preprocessor_files(folder, out)
