"""The inputs and outputs of an exported decoder with a KV cache, named as onnxruntime-genai names them.

One graph does prefill and decode: ``input_ids`` (B, S), ``attention_mask`` (B, P + S), ``position_ids`` (B, S) and
``past_key_values.{i}.key/value`` (B, kv_heads, P, head_size) in; ``logits`` (B, S, V) and ``present.{i}.key/value``
(B, kv_heads, P + S, head_size) out. Prefill passes a past of length P = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PAST_KEY = "past_key_values.%d.key"
PAST_VALUE = "past_key_values.%d.value"
PRESENT_KEY = "present.%d.key"
PRESENT_VALUE = "present.%d.value"
INPUTS = ("input_ids", "attention_mask", "position_ids")
LOGITS = "logits"
GENAI_CONFIG = "genai_config.json"  # onnxruntime-genai's config, beside the graph


@dataclass(frozen=True)
class DecoderShape:
    """What the KV cache of a decoder looks like, read from its Hugging Face config."""

    layers: int
    heads: int
    kv_heads: int
    head_size: int
    hidden: int
    vocab: int
    context_length: int

    @classmethod
    def of(cls, config: Any) -> DecoderShape:
        heads = int(config.num_attention_heads)
        head_size = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
        return cls(layers=int(config.num_hidden_layers), heads=heads,
                   kv_heads=int(getattr(config, "num_key_value_heads", None) or heads), head_size=head_size,
                   hidden=int(config.hidden_size), vocab=int(config.vocab_size),
                   context_length=int(getattr(config, "max_position_embeddings", 2048)))

    def past_names(self) -> list[str]:
        return [name % i for i in range(self.layers) for name in (PAST_KEY, PAST_VALUE)]

    def present_names(self) -> list[str]:
        return [name % i for i in range(self.layers) for name in (PRESENT_KEY, PRESENT_VALUE)]

    def input_names(self) -> list[str]:
        return [*INPUTS, *self.past_names()]

    def output_names(self) -> list[str]:
        return [LOGITS, *self.present_names()]

    def empty_past(self, batch: int, dtype: Any = np.float32) -> list[np.ndarray]:
        """The past of a prefill: every key and value with sequence length 0."""
        return [np.zeros((batch, self.kv_heads, 0, self.head_size), dtype) for _ in range(2 * self.layers)]


def position_ids(attention_mask: np.ndarray, new_tokens: int) -> np.ndarray:
    """(B, new_tokens) positions of the last ``new_tokens`` tokens: the count of real tokens before each one, so a
    left-padded row starts at 0 as Hugging Face's ``generate`` does."""
    positions = np.cumsum(attention_mask, axis=1) - 1
    return np.maximum(positions, 0)[:, -new_tokens:].astype(np.int64)
