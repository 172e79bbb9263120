"""Export and verification of image models (``pixel_values`` in, e.g. Hugging Face ViT) to ONNX.

Text models go through :func:`edgedistill.export.onnx.export_onnx` (tokenizer inputs, batch and sequence axes);
an image model takes one (B, C, H, W) float input whose batch axis is dynamic and whose image size is fixed
(position embeddings are sized for it). The exporters, clean-up, metadata and comparison are the text path's.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import torch
from torch import nn

from edgedistill.config import ExportConfig
from edgedistill.errors import InputError
from edgedistill.export.onnx import (
    check_report,
    clamp,
    compare,
    dim,
    opset_of,
    quiet_exporter,
    save_ir,
    summarise,
)
from edgedistill.models.onnx_file import publish_onnx

IMAGE_INPUT = "pixel_values"
VERIFY_BATCHES = (1, 4)


class ImageModel(nn.Module):
    """A Hugging Face vision model as ``forward(pixel_values) -> tensor``: logits when it has a head, else the
    last hidden state (B, tokens, hidden)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model: Any = model  # a transformers PreTrainedModel
        self.output_name = "logits" if hasattr(model, "classifier") else "last_hidden_state"

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values)
        result: torch.Tensor = getattr(out, self.output_name)
        return result


def image_shape(model: ImageModel) -> tuple[int, int, int]:
    """(channels, height, width) from the model's config (``image_size`` int or pair, ``num_channels``)."""
    config = model.model.config
    size = config.image_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return int(config.num_channels), int(height), int(width)


def export_image_onnx(model: ImageModel, cfg: ExportConfig, out_file: Path) -> None:
    """Export ``model`` to ``out_file`` with a dynamic batch (``cfg.dynamic.batch``) and a fixed image size.

    Raises:
        InputError: the dynamo exporter cannot trace the model.
    """
    channels, height, width = image_shape(model)
    batch = clamp(2, cfg.dynamic.batch)
    args = (torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(0)),)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_file.name}.", dir=out_file.parent))
    try:
        export = export_image_dynamo if cfg.exporter == "dynamo" else export_image_torchscript
        graph = export(model, args, cfg, staging)
        graph.metadata_props.update({
            "edgedistill.inputs": IMAGE_INPUT, "edgedistill.outputs": model.output_name,
            "edgedistill.image_shape": f"{channels},{height},{width}", "edgedistill.exporter": cfg.exporter,
            "edgedistill.batch_range": f"{cfg.dynamic.batch.min},{cfg.dynamic.batch.max}",
        })
        save_ir(graph, staging / out_file.name)
        publish_onnx(staging / out_file.name, out_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_image_dynamo(
    model: ImageModel, args: tuple[torch.Tensor, ...], cfg: ExportConfig, staging: Path
) -> ir.Model:
    try:
        with quiet_exporter():
            program = torch.onnx.export(
                model, args, dynamo=True, opset_version=opset_of(cfg), input_names=[IMAGE_INPUT],
                output_names=[model.output_name], dynamic_shapes=({0: dim("batch", cfg.dynamic.batch)},),
                optimize=True, verbose=False,
            )
    except torch.onnx.OnnxExporterError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"dynamo export failed: {reason}; try `export.exporter: torchscript`") from err
    assert program is not None
    return program.model


def export_image_torchscript(
    model: ImageModel, args: tuple[torch.Tensor, ...], cfg: ExportConfig, staging: Path
) -> ir.Model:
    import onnxscript.optimizer

    dynamic = cfg.dynamic.batch.min != cfg.dynamic.batch.max
    axes = {IMAGE_INPUT: {0: "batch"}, model.output_name: {0: "batch"}} if dynamic else {}
    raw = staging / "raw" / "traced.onnx"
    raw.parent.mkdir()
    with quiet_exporter():
        torch.onnx.export(
            model, args, str(raw), dynamo=False, opset_version=opset_of(cfg), input_names=[IMAGE_INPUT],
            output_names=[model.output_name], dynamic_axes=axes,
        )
    graph = ir.load(raw)
    onnxscript.optimizer.optimize(graph)
    return graph


def image_batches(model: ImageModel, cfg: ExportConfig) -> list[tuple[str, dict[str, np.ndarray]]]:
    """``(label, feeds)``: random images at batch 1 and 4 (clamped to the exported range)."""
    channels, height, width = image_shape(model)
    rng = np.random.default_rng(0)
    sizes = sorted({clamp(b, cfg.dynamic.batch) for b in VERIFY_BATCHES})
    return [(f"{b}x{channels}x{height}x{width}",
             {IMAGE_INPUT: rng.standard_normal((b, channels, height, width)).astype(np.float32)}) for b in sizes]


def measure_image_onnx(model: ImageModel, onnx_path: Path, cfg: ExportConfig) -> dict[str, Any]:
    """ONNX Runtime (CPU) against torch on :func:`image_batches`; the report of ``measure_onnx``'s form."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    results = []
    for label, feeds in image_batches(model, cfg):
        got = session.run(None, feeds)[0]
        with torch.inference_mode():
            ref = model(torch.from_numpy(feeds[IMAGE_INPUT])).float().numpy()
        results.append({"output": model.output_name, "shape": label, **compare(ref, got)})
    return summarise(results, cfg)


def verify_image_onnx(model: ImageModel, onnx_path: Path, cfg: ExportConfig) -> dict[str, Any]:
    """:func:`measure_image_onnx`, failing beyond ``cfg.atol`` / ``cfg.min_cosine``.

    Raises:
        VerificationError: names the output and batch that differ most.
    """
    report = measure_image_onnx(model, onnx_path, cfg)
    check_report(report)
    return report
