"""``genai_config.json``: what onnxruntime-genai (Python, C and C++ APIs alike) reads to load an exported decoder,
in the layout its own model builder writes. The past and present buffers are not shared (the graph concatenates the
cache), so ``past_present_share_buffer`` is false."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.artifacts import atomic_write_json
from edgedistill.lm.decoder_io import (
    GENAI_CONFIG,
    INPUTS,
    LOGITS,
    PAST_KEY,
    PAST_VALUE,
    PRESENT_KEY,
    PRESENT_VALUE,
    DecoderShape,
)


def token_ids(value: Any) -> int | list[int] | None:
    if isinstance(value, list):
        return [int(v) for v in value]
    return None if value is None else int(value)


def genai_config(shape: DecoderShape, model_config: Any, generation: Any, filename: str) -> dict[str, Any]:
    """The config for ``filename``, an exported decoder of ``shape``; token ids from the generation config first."""
    def pick(name: str) -> Any:
        value = getattr(generation, name, None) if generation is not None else None
        return token_ids(value if value is not None else getattr(model_config, name, None))

    eos = pick("eos_token_id")
    pad = pick("pad_token_id")
    return {
        "model": {
            "bos_token_id": pick("bos_token_id"), "context_length": shape.context_length,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": filename, "head_size": shape.head_size, "hidden_size": shape.hidden,
                "inputs": {**{name: name for name in INPUTS}, "past_key_names": PAST_KEY,
                           "past_value_names": PAST_VALUE},
                "outputs": {"logits": LOGITS, "present_key_names": PRESENT_KEY, "present_value_names": PRESENT_VALUE},
                "num_attention_heads": shape.heads, "num_hidden_layers": shape.layers,
                "num_key_value_heads": shape.kv_heads,
            },
            "eos_token_id": eos, "pad_token_id": pad if pad is not None else (eos[0] if isinstance(eos, list) else eos),
            "type": str(model_config.model_type), "vocab_size": shape.vocab,
        },
        "search": {
            "diversity_penalty": 0.0, "do_sample": False, "early_stopping": True, "length_penalty": 1.0,
            "max_length": shape.context_length, "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
            "num_return_sequences": 1, "past_present_share_buffer": False, "repetition_penalty": 1.0,
            "temperature": 1.0, "top_k": 1, "top_p": 1.0,
        },
    }


def write_genai_config(folder: Path, shape: DecoderShape, model: Any, filename: str) -> Path:
    path = folder / GENAI_CONFIG
    atomic_write_json(path, genai_config(shape, model.config, getattr(model, "generation_config", None), filename))
    return path
