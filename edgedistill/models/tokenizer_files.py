"""Copying a model's preprocessing files (tokenizer, image processor) next to an exported model, so its folder is
self-contained."""

from __future__ import annotations

from pathlib import Path

from edgedistill.artifacts import atomic_write_bytes

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json",)
RUNTIME_FILES = ("genai_config.json",)  # onnxruntime-genai's config of an exported decoder
PREPROCESSOR_FILES = TOKENIZER_FILES + IMAGE_PROCESSOR_FILES + RUNTIME_FILES


def copy_preprocessor_files(src: Path, dest: Path) -> list[str]:
    """Copy the tokenizer and image-processor files found in folder ``src`` into folder ``dest`` (each write atomic).

    ``config.json`` is deliberately not copied: the ONNX folder is not a Hugging Face model folder, and
    ``AutoTokenizer.from_pretrained(dest)`` finds the class in ``tokenizer_config.json`` (``AutoImageProcessor`` in
    ``preprocessor_config.json``).

    Returns:
        The names of the files copied (empty if ``src`` holds none).
    """
    copied = []
    for name in PREPROCESSOR_FILES:
        if (src / name).is_file() and (src / name).resolve() != (dest / name).resolve():
            atomic_write_bytes(dest / name, (src / name).read_bytes())
            copied.append(name)
    return copied
