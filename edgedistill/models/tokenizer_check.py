"""Refuse a tokenizer that cannot read the training texts (e.g. a model folder whose vocabulary files are missing,
which transformers turns into a tokenizer of special tokens only, so every word becomes ``[UNK]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.errors import ConfigError
from edgedistill.models.tokenizer_files import TOKENIZER_FILES

SAMPLE_TEXTS = 256
MAX_UNKNOWN = 0.5  # share of unknown tokens above which a tokenizer is degenerate (real ones: well under 1%)
MIN_VOCAB = 100


def unknown_share(tokenizer: Any, texts: list[str]) -> float | None:
    """Share of the tokens of ``texts`` that are the unknown token (None: the tokenizer has none, e.g. byte BPE)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return None
    ids = [i for row in tokenizer(texts, add_special_tokens=False)["input_ids"] for i in row]
    return sum(i == unk for i in ids) / len(ids) if ids else 0.0


def check_vocabulary(tokenizer: Any, texts: list[str], folder: Path | str | None) -> None:
    """Raise when a sample of ``texts`` becomes mostly unknown tokens (or, for a tokenizer without an unknown token,
    when its vocabulary is tiny).

    Raises:
        ConfigError: naming the folder, what the sample became and the vocabulary files it lacks.
    """
    share = unknown_share(tokenizer, texts[:SAMPLE_TEXTS])
    size = len(tokenizer)
    if (share <= MAX_UNKNOWN) if share is not None else size >= MIN_VOCAB:
        return
    where = Path(folder) if folder is not None else None
    present = [n for n in TOKENIZER_FILES if where is not None and (where / n).is_file()]
    found = f"it holds {', '.join(present)}" if present else "it holds no tokenizer files"
    unknown = f"{share:.0%} of the tokens of the training texts are unknown, " if share is not None else ""
    raise ConfigError(f"the tokenizer of {where or 'the teacher'} is degenerate: {unknown}its vocabulary has {size} "
                      f"entries ({found}; a vocabulary is tokenizer.json, vocab.txt, vocab.json + merges.txt or a "
                      "sentencepiece model); copy the model's tokenizer files into the folder")
