"""One decoder interface for every artifact that generates: a torch model or an exported ONNX decoder.

``forward(input_ids, attention_mask, position_ids, state)`` returns the logits (B, S, V) of the new tokens and the
state to pass next time (the KV cache). The generation loop, the export's verification, the evaluation and the
token-rate benchmark all drive this one interface, so what they measure is the same loop.

ONNX Runtime runs with IO binding: every ``present`` output stays an ``OrtValue`` that the next step binds as its
``past`` input, so the cache never round-trips through numpy; only the last position's logits are copied out.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.errors import InputError
from edgedistill.lm.decoder_io import GENAI_CONFIG, LOGITS, DecoderShape


class Decoder(ABC):
    """A causal LM with a KV cache (see the module doc)."""

    shape: DecoderShape
    left_padding = True  # rows of a batch may be left-padded (the graph takes position_ids)

    @abstractmethod
    def start(self, batch: int) -> Any:
        """The state before a prefill: an empty KV cache for ``batch`` rows."""

    @abstractmethod
    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray,
                state: Any, last_only: bool = False) -> tuple[np.ndarray, Any]:
        """Logits (B, S, V) of the new tokens (``last_only``: (B, 1, V), the last position's) and the new state."""

def cache_kwarg(model: Any) -> str:
    """The name ``forward`` takes the KV cache by: ``cache`` in recent transformers, ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class TorchDecoder(Decoder):
    """A Hugging Face causal LM with a ``DynamicCache``."""

    def __init__(self, model: Any):
        self.model = model.eval()
        self.shape = DecoderShape.of(model.config)
        self.cache_kwarg = cache_kwarg(model)

    def start(self, batch: int) -> Any:
        from transformers import DynamicCache

        return DynamicCache()

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray,
                state: Any, last_only: bool = False) -> tuple[np.ndarray, Any]:
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask),
                             position_ids=torch.from_numpy(position_ids), use_cache=True,
                             logits_to_keep=1 if last_only else 0, **{self.cache_kwarg: state})
        return out.logits.float().numpy(), out.past_key_values

class OrtDecoder(Decoder):
    """An exported decoder (:mod:`edgedistill.export.decoder`) on ONNX Runtime's CPU provider, IO-bound."""

    def __init__(self, path: Path, threads: int | None = None, session: Any = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = session or ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.shape = shape_of_session(self.session, path)
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.past_names = self.shape.past_names()
        inputs = {i.name: i for i in self.session.get_inputs()}
        # A graph with rotary fused (onnxruntime-genai's builder) computes positions from the mask's lengths, which
        # assumes no left padding.
        self.left_padding = "position_ids" in inputs
        self.past_type = np.float16 if "float16" in inputs[self.past_names[0]].type else np.float32

    def start(self, batch: int) -> Any:
        import onnxruntime as ort

        return [ort.OrtValue.ortvalue_from_numpy(a) for a in self.shape.empty_past(batch, self.past_type)]

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray,
                state: Any, last_only: bool = False) -> tuple[np.ndarray, Any]:
        check_cache(self.shape, state, input_ids, attention_mask)
        binding = self.session.io_binding()
        feeds = [("input_ids", input_ids), ("attention_mask", attention_mask)]
        for name, value in feeds + ([("position_ids", position_ids)] if self.left_padding else []):
            binding.bind_cpu_input(name, np.ascontiguousarray(value, dtype=np.int64))
        for name, value in zip(self.past_names, state, strict=True):
            binding.bind_ortvalue_input(name, value)
        for name in self.outputs:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        logits = values[self.outputs.index(LOGITS)].numpy()
        present = [values[self.outputs.index(name)] for name in self.shape.present_names()]
        return (logits[:, -1:] if last_only else logits).astype(np.float32, copy=False), present

def check_cache(shape: DecoderShape, state: list[Any], input_ids: np.ndarray, attention_mask: np.ndarray) -> None:
    """Raise InputError when the KV cache or the mask does not fit the graph: the other model's cache, or a batch or
    length the step does not have."""
    dims = tuple(state[0].shape())
    want = (input_ids.shape[0], shape.kv_heads, dims[2], shape.head_size)
    if len(state) != 2 * shape.layers or dims != want:
        raise InputError(f"the KV cache given has {len(state)} tensors of shape {dims}; this decoder takes "
                         f"{2 * shape.layers} of (batch {want[0]}, {shape.kv_heads} KV heads, past, {shape.head_size})")
    if attention_mask.shape != (input_ids.shape[0], dims[2] + input_ids.shape[1]):
        raise InputError(f"attention_mask is {attention_mask.shape}; with a past of {dims[2]} and "
                         f"{input_ids.shape[1]} new tokens it must be ({input_ids.shape[0]}, "
                         f"{dims[2] + input_ids.shape[1]})")


def shape_of_session(session: Any, path: Path) -> DecoderShape:
    """The cache shape of an exported decoder: from ``genai_config.json`` beside it when there is one (graphs of
    other exporters leave dimensions symbolic), else from its inputs and metadata.

    Raises:
        InputError: the graph has no KV-cache inputs (an encoder, or a decoder exported without its cache).
    """
    inputs = {i.name: i for i in session.get_inputs()}
    keys = sorted(n for n in inputs if n.startswith("past_key_values.") and n.endswith(".key"))
    if "input_ids" not in inputs or not keys:
        raise InputError(f"{path}: not a decoder with a KV cache (inputs: {', '.join(list(inputs)[:4])}); "
                         "generate takes a text-generation artifact exported by edgedistill")
    vocab = session.get_outputs()[0].shape[-1]
    config = Path(path).parent / GENAI_CONFIG
    if config.is_file():
        model = json.loads(config.read_text(encoding="utf-8"))["model"]
        d = model["decoder"]
        return DecoderShape(layers=len(keys), heads=int(d["num_attention_heads"]),
                            kv_heads=int(d["num_key_value_heads"]), head_size=int(d["head_size"]),
                            hidden=int(d["hidden_size"]), vocab=int(model.get("vocab_size") or vocab),
                            context_length=int(model["context_length"]))
    _, kv_heads, _, head_size = inputs[keys[0]].shape
    meta = session.get_modelmeta().custom_metadata_map
    return DecoderShape(layers=len(keys), heads=int(meta.get("edgedistill.heads", kv_heads)), kv_heads=int(kv_heads),
                        head_size=int(head_size), hidden=int(meta.get("edgedistill.hidden", 0)), vocab=int(vocab),
                        context_length=int(meta.get("edgedistill.context_length", 2048)))
