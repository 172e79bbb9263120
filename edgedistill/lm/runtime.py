"""Opening any text-generation artifact as a :class:`~edgedistill.lm.decoders.Decoder` with its tokenizer, and
streaming an answer as text: what ``edgedistill generate`` runs.

An artifact is an exported decoder (``model.onnx`` or its folder, tokenizer files beside it), a model folder or a
GGUF file (run in torch), or a run directory (its latest quantized, exported or distilled model, in that order).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgedistill.errors import InputError
from edgedistill.lm.decoders import Decoder, OrtDecoder, TorchDecoder
from edgedistill.lm.generate import steps, stop_ids
from edgedistill.lm.sampling import Sampling
from edgedistill.models.onnx_file import ONNX_NAME


def open_decoder(path: Path, threads: int | None = None) -> tuple[Decoder, Any]:
    """``(decoder, tokenizer)`` for the artifact at ``path`` (see the module doc).

    Raises:
        InputError: no such artifact, not a decoder (an encoder, a graph without a KV cache), no tokenizer.
    """
    from edgedistill.resolve import is_run_dir, pick

    path = Path(path)
    if path.is_dir() and (path / ONNX_NAME).is_file() and not is_run_dir(path):
        path = path / ONNX_NAME  # an export folder
    artifact = pick(path, ("quantize", "export", "distill"))
    if artifact.kind == "onnx":
        decoder: Decoder = OrtDecoder(artifact.path, threads)
        return decoder, tokenizer_beside(artifact.path)
    from edgedistill.lm.load import load_causal_lm

    if threads:
        import torch

        torch.set_num_threads(threads)
    model, tokenizer = load_causal_lm(artifact.path, "generate")
    return TorchDecoder(model), tokenizer


def tokenizer_beside(onnx_path: Path) -> Any:
    """The tokenizer saved in the ONNX file's folder by the export."""
    from edgedistill.config.base import GENERATIVE_TASK
    from edgedistill.tasks import get_task

    folder = onnx_path.parent
    if not (folder / "tokenizer_config.json").is_file():
        raise InputError(f"{folder}: no tokenizer files beside {onnx_path.name}; export the model with edgedistill")
    tokenizer = get_task(GENERATIVE_TASK).load_preprocessor(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode_prompt(tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """The prompt's token ids; ``chat`` wraps it as a user turn through the tokenizer's chat template.

    Raises:
        InputError: ``chat`` with a tokenizer that has no chat template.
    """
    if not chat:
        return list(tokenizer(prompt)["input_ids"])
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("generate --chat: the tokenizer has no chat template; drop --chat to complete plain text")
    return list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                              tokenize=True, return_dict=False))


def stream_text(decoder: Decoder, tokenizer: Any, prompt_ids: list[int], max_new_tokens: int,
                sampling: Sampling) -> Iterator[str]:
    """The answer as it is generated, in pieces of text (stop tokens not shown)."""
    stops = stop_ids(tokenizer)
    tokens: list[int] = []
    shown = ""
    for step in steps(decoder, [prompt_ids], max_new_tokens, sampling, stops, tokenizer.pad_token_id or 0):
        token = int(step.tokens[0])
        if token in stops:
            break
        tokens.append(token)
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        if not text.endswith("\ufffd"):  # a multi-byte character still incomplete
            yield text[len(shown):]
            shown = text
    rest = tokenizer.decode(tokens, skip_special_tokens=True)[len(shown):]
    if rest:
        yield rest
