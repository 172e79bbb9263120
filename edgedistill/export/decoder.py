"""Export a causal LM as one ONNX decoder with a KV cache, for prefill and decode (names and shapes:
:mod:`edgedistill.lm.decoder_io`, as onnxruntime-genai expects them).

The model runs under ``torch.export`` (dynamo) inside :class:`DecoderWithPast`, which turns the flat past tensors into
a ``DynamicCache`` and the cache the model returns back into flat present tensors. Batch, new tokens, past length
and total length are named dynamic dimensions; the past may be empty (length 0, the prefill).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx_ir as ir
import torch

from edgedistill.config import ExportConfig
from edgedistill.errors import InputError
from edgedistill.export.exporter import opset_of, quiet_exporter, save_ir
from edgedistill.lm.decoder_io import DecoderShape
from edgedistill.lm.decoders import cache_kwarg

TRACE_BATCH, TRACE_NEW, TRACE_PAST = 2, 3, 4  # sizes 0 and 1 get specialised by the exporter


class DecoderWithPast(torch.nn.Module):
    """``model`` with flat KV-cache tensors in and out: (input_ids, attention_mask, position_ids, past...) →
    (logits, present...)."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model
        self.layers = int(model.config.num_hidden_layers)
        self.cache_kwarg = cache_kwarg(model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                past: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache

        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=True, **{self.cache_kwarg: cache})
        present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
        return (out.logits, *present)


def trace_inputs(shape: DecoderShape) -> dict[str, Any]:
    """Example inputs: a batch of 2 with 3 new tokens after a past of 4."""
    total = TRACE_PAST + TRACE_NEW
    return {"input_ids": torch.ones(TRACE_BATCH, TRACE_NEW, dtype=torch.int64),
            "attention_mask": torch.ones(TRACE_BATCH, total, dtype=torch.int64),
            "position_ids": torch.arange(TRACE_PAST, total).repeat(TRACE_BATCH, 1),
            "past": [torch.zeros(TRACE_BATCH, shape.kv_heads, TRACE_PAST, shape.head_size)
                     for _ in range(2 * shape.layers)]}


def dynamic_shapes(shape: DecoderShape, cfg: ExportConfig, context: int) -> dict[str, Any]:
    """Named dimensions: batch, sequence_length (new tokens), past_sequence_length, total_sequence_length."""
    dim = torch.export.Dim
    batch = dim("batch", min=1, max=max(cfg.dynamic.batch.max, TRACE_BATCH))
    new = dim("sequence_length", min=1, max=context)
    past = dim("past_sequence_length", min=0, max=context)
    total = dim("total_sequence_length", min=1, max=2 * context)
    return {"input_ids": {0: batch, 1: new}, "attention_mask": {0: batch, 1: total},
            "position_ids": {0: batch, 1: new}, "past": [{0: batch, 2: past} for _ in range(2 * shape.layers)]}


def export_decoder(model: Any, cfg: ExportConfig, out_file: Path, metadata: dict[str, str]) -> DecoderShape:
    """Export ``model`` (a causal LM in eval mode, on CPU) to ``out_file``; returns its cache shape.

    Raises:
        InputError: the model is not a decoder with a KV cache, or the exporter cannot trace it.
    """
    if not getattr(model.config, "is_decoder", True) or not hasattr(model, "generate"):
        raise InputError(f"{type(model).__name__} is not a causal LM with a KV cache")
    shape = DecoderShape.of(model.config)
    context = shape.context_length  # the longest prompt and answer: the model's position limit
    wrapper = DecoderWithPast(model).eval()
    try:
        with quiet_exporter(), torch.inference_mode(False):
            program = torch.onnx.export(
                wrapper, (), kwargs=trace_inputs(shape), dynamo=True, opset_version=opset_of(cfg),
                input_names=shape.input_names(), output_names=shape.output_names(),
                dynamic_shapes=dynamic_shapes(shape, cfg, context), optimize=True, verbose=False)
    except torch.onnx.OnnxExporterError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"decoder export failed: {reason}") from err
    assert program is not None
    graph: ir.Model = program.model
    graph.metadata_props.update(metadata | {"edgedistill.context_length": str(context)})
    save_ir(graph, out_file)
    return shape
