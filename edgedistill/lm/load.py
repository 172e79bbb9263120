"""Load a causal language model and its tokenizer: a Hugging Face folder, a ``pkg:`` folder, or a GGUF file
(llama.cpp's format; transformers de-quantizes its weights to float and reads the tokenizer and chat template from
the same file, which needs the ``gguf`` package)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgedistill.errors import InputError, MissingDependencyError

GGUF_SUFFIX = ".gguf"


def is_gguf(path: Path) -> bool:
    return path.suffix.lower() == GGUF_SUFFIX


def check_causal_lm(path: Path, where: str) -> None:
    """InputError when a model folder holds something other than a causal LM (an encoder given text-generation)."""
    from edgedistill.models.architectures import BY_MODEL_TYPE

    config = path / "config.json"
    if not config.is_file():
        raise InputError(f"{where}: {path} is not a Hugging Face model folder (no config.json) nor a .gguf file")
    model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    family = BY_MODEL_TYPE.get(model_type)
    if family is not None and family.kind != "decoder":
        raise InputError(f"{where}: {path} holds a {model_type} model, an {family.kind}, not a causal language model; "
                         "task text-generation needs a decoder (llama, mistral, qwen2, qwen3, gpt2); for this model "
                         "use task sentence-embedding or sequence-classification")


def load_causal_lm(path: Path, where: str = "teacher.path", trust_remote_code: bool = False,
                   dtype: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode, float32 unless ``dtype`` says otherwise.

    Raises:
        InputError: missing path, not a causal LM, unreadable weights or tokenizer.
        MissingDependencyError: a GGUF file without the ``gguf`` package.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if not path.exists():
        raise InputError(f"{where}: not found: {path}")
    if is_gguf(path):
        folder, extra = path.parent, {"gguf_file": path.name}
        require_gguf(where)
    else:
        check_causal_lm(path, where)
        folder, extra = path, {}
    try:
        with quiet_progress():  # the GGUF de-quantization draws its own progress bar
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32,
                                                         trust_remote_code=trust_remote_code, **extra)
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code, **extra)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise InputError(f"{where}: cannot load a causal language model from {path}: "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if is_gguf(path):
        as_float_model(model)
    if tokenizer.pad_token_id is None:  # batched generation and padding need one; EOS is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


def as_float_model(model: Any) -> None:
    """A model read from GGUF holds de-quantized float weights, yet transformers marks it quantized (and refuses to
    save it); drop the mark so it (and every student cut from it) saves as the float model it is."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Progress bars drawn by libraries (tqdm writes to ``sys.stderr``) kept off the terminal for the duration."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def require_gguf(where: str) -> None:
    import importlib.util

    for package in ("gguf", "accelerate"):
        if importlib.util.find_spec(package) is None:
            raise MissingDependencyError(f"{where}: reading a GGUF file needs the '{package}' package: "
                                         "pip install 'edgedistill[llm]'")
