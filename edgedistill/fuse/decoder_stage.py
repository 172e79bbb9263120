"""The ``fuse`` stage of a text-generation model: an exported decoder with a KV cache in, the fused decoder out.

The passes (each reports what it fused, what it left and why, in ``out/fusion.json``):

- ``decoder_attention`` (``ort``) / ``decoder_attention_op`` (``onnx``, an opset-23 export),
  :mod:`edgedistill.fuse.decoder_attention`: every cached self-attention block into one ``GroupQueryAttention``,
  or into opset-23 ``Attention`` with past inputs;
- ``rms_norm`` and ``skip_rms_norm`` (``ort`` form, :mod:`edgedistill.fuse.rms_norm`): RMSNorms into
  ``SimplifiedLayerNormalization``, and those after a residual add into ``SkipSimplifiedLayerNormalization``.

The fused graph keeps the export's inputs and outputs, so ``genai_config.json`` and the tokenizer files are copied
over unchanged. It is proved against the unfused graph as the export is proved against torch: logits of a left-padded
prefill and 8 decode steps, and greedy answers of 8 prompts token for token. ``out/model.onnx`` appears only once that
passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from edgedistill import verification
from edgedistill.artifacts import Artifact, atomic_write_json, staging_dir
from edgedistill.config import FuseConfig
from edgedistill.errors import InputError, VerificationError
from edgedistill.export.decoder_verify import describe_greedy, verify_decoder
from edgedistill.fuse.base import FusionCounts
from edgedistill.fuse.decoder_attention import DecoderAttentionFusion, DecoderAttentionOpFusion
from edgedistill.fuse.graph import Graph
from edgedistill.fuse.rms_norm import RMSNormFusion, SkipRMSNormFusion
from edgedistill.fuse.stage import REPORT_NAME, check_all_fused, summarise_counts, with_external_data
from edgedistill.lm.decoders import OrtDecoder
from edgedistill.lm.runtime import tokenizer_beside
from edgedistill.models.onnx_file import ONNX_NAME, check_onnx_file, onnx_size_mb, publish_onnx, save_onnx
from edgedistill.models.tokenizer_files import copy_preprocessor_files


def fuse_decoder(model: onnx.ModelProto, form: str) -> list[FusionCounts]:
    """Apply the decoder passes of ``form`` to ``model`` in place; one :class:`FusionCounts` per pass."""
    graph = Graph(model)
    if form == "onnx":
        return [DecoderAttentionOpFusion(graph).apply()]
    return [DecoderAttentionFusion(graph).apply(), RMSNormFusion(graph).apply(), SkipRMSNormFusion(graph).apply()]


def fuse_file(cfg: FuseConfig, src: Path, dst: Path) -> dict[str, Any]:
    """Fuse the decoder at ``src`` into ``dst`` (no verification); returns the counts of every pass.

    Raises:
        InputError: no valid ONNX file, a form this Task has no passes for, or ``require_all`` with a block left.
    """
    if cfg.form == "trt-plugin":
        raise InputError("fuse form trt-plugin has no decoder passes yet; use ort or onnx for text-generation")
    model = check_onnx_file(src)
    external = with_external_data(model, src)
    counts = [c.as_dict() for c in fuse_decoder(model, cfg.form)]
    check_all_fused(cfg, counts)
    save_onnx(model, dst, external)
    return {"form": cfg.form, "passes": counts}


def run(cfg: FuseConfig, model: Artifact, out: Path) -> Artifact:
    """Fuse an exported decoder into ``out/model.onnx``, proved against the unfused one (see the module doc).

    Raises:
        InputError: not an ONNX artifact, or see :func:`fuse_file`.
        VerificationError: logits or greedy answers differ from the unfused graph (``out/fusion.json`` says where);
            ``out/model.onnx`` is then not written.
    """
    if model.kind != "onnx":
        raise InputError(f"fuse takes an ONNX model; '{model.name}' is a {model.kind} artifact (run export first)")
    tokenizer = tokenizer_beside(model.path)
    with staging_dir(out, "fuse") as staging:
        report = fuse_file(cfg, model.path, staging / ONNX_NAME)
        report["verification"] = verify_decoder(OrtDecoder(model.path), tokenizer, OrtDecoder(staging / ONNX_NAME),
                                                cfg)
        atomic_write_json(out / REPORT_NAME, report)
        if not report["verification"]["passed"]:
            verification.check(report["verification"], "the fused decoder")
            raise VerificationError(describe_greedy(report["verification"]["greedy"]))
        copy_preprocessor_files(model.path.parent, out)
        publish_onnx(staging / ONNX_NAME, out / ONNX_NAME)
    attention = summarise_counts(report["passes"][:1])
    meta = {"form": cfg.form, "attention": attention, "verification": verification.summary(report["verification"]),
            "fused": {c["fusion"]: c["fused"] for c in report["passes"]}, "size_mb": onnx_size_mb(out / ONNX_NAME)}
    return Artifact(name=f"{model.base_name}-fused", kind="onnx", path=out / ONNX_NAME, task=model.task, meta=meta)
