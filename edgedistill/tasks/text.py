"""What every text Task shares: tokenizer inputs, (batch, sequence) axes, and verification on real sentences
filled out to the lengths that matter."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgedistill.config import DynamicAxes, Range
from edgedistill.errors import InputError
from edgedistill.tasks.base import Feeds, Task, clamp
from edgedistill.tasks.inputs import TEXT_INPUTS, InputSpec

if TYPE_CHECKING:
    from edgedistill.models.task_model import TaskModel

VERIFY_MAX_SEQ = 256  # longer sequences are exported but not run at verification (speed)
PADDED_BATCH = 4
SAMPLE_TEXTS = (
    "A man is playing a guitar on the street.",
    "The quick brown fox jumps over the lazy dog.",
    "Returns a list of the values in the module, sorted by name.",
    "Hi",
    "Two young children are playing in the park with a red ball while their parents watch from a bench.",
    "Error: the file could not be opened.",
)


def verification_lengths(sequence: Range) -> list[int]:
    """Shortest, middle and longest sequence to verify (the longest capped at VERIFY_MAX_SEQ)."""
    top = max(sequence.min, min(sequence.max, VERIFY_MAX_SEQ))
    return sorted({sequence.min, (sequence.min + top) // 2, top})


def make_row(tokenizer: Any, text: str, length: int, filler: np.ndarray) -> list[int]:
    """Token ids of exactly ``length``: the tokenised text, cut or filled with ``filler`` ids before its last token."""
    ids: list[int] = tokenizer(text, truncation=True, max_length=max(length, 2))["input_ids"]
    if length <= 1:
        return ids[:length]
    if len(ids) >= length:
        return ids[: length - 1] + ids[-1:]
    return ids[:-1] + filler[: length - len(ids)].tolist() + ids[-1:]


def make_batch(tokenizer: Any, names: list[str], lengths: list[int], rng: np.random.Generator) -> Feeds:
    """A right-padded batch with one row per entry of ``lengths`` (width = the longest)."""
    special = set(tokenizer.all_special_ids)
    allowed = np.array([i for i in range(len(tokenizer)) if i not in special])
    width = max(lengths)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = np.full((len(lengths), width), pad, dtype=np.int64)  # (B, S)
    mask = np.zeros_like(ids)
    for i, length in enumerate(lengths):
        row = make_row(tokenizer, SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)], length, rng.choice(allowed, size=width))
        ids[i, :length], mask[i, :length] = row, 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {name: feeds[name] for name in names}


class TextTask(Task):
    """A Task over token inputs."""

    modality = "text"

    def load_preprocessor(self, folder: Path) -> Any:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"no usable tokenizer in {folder}: {str(err).splitlines()[0]}") from None

    def input_names(self, backbone: Any) -> list[str]:
        """The token inputs the backbone's ``forward`` takes (DistilBERT has no ``token_type_ids``)."""
        import inspect

        params = inspect.signature(backbone.forward).parameters
        return [name for name in TEXT_INPUTS if name in params]

    def input_spec(self, model: TaskModel, preprocessor: Any) -> InputSpec:
        return InputSpec(tuple(model.input_names), vocab_size=len(preprocessor))

    def export_axes(self, dynamic: DynamicAxes) -> dict[int, tuple[str, Range]]:
        return {0: ("batch", dynamic.batch), 1: ("sequence", dynamic.sequence)}

    def export_metadata(self, spec: InputSpec, dynamic: DynamicAxes) -> dict[str, str]:
        return {"edgedistill.max_length": str(dynamic.sequence.max),
                "edgedistill.batch_range": f"{dynamic.batch.min},{dynamic.batch.max}",
                "edgedistill.sequence_range": f"{dynamic.sequence.min},{dynamic.sequence.max}"}

    def verification_feeds(self, model: TaskModel, preprocessor: Any, dynamic: DynamicAxes) -> list[tuple[str, Feeds]]:
        """Full single rows, and padding-heavy batches of very different lengths, at the shortest, a middle and
        the longest exported sequence."""
        rng = np.random.default_rng(0)
        single, padded = clamp(1, dynamic.batch), clamp(PADDED_BATCH, dynamic.batch)
        batches = []
        for seq in verification_lengths(dynamic.sequence):
            batches.append([seq] * single)
            if padded > 1 and seq > dynamic.sequence.min:
                # rows from the shortest allowed length up to `seq`: most of the batch is padding
                batches.append(np.linspace(dynamic.sequence.min, seq, padded).round().astype(int).tolist()[::-1])
        return [(f"{len(b)}x{max(b)}", make_batch(preprocessor, model.input_names, b, rng)) for b in batches]

    def encode(self, preprocessor: Any, samples: list[Any], max_length: int) -> Feeds:
        enc = preprocessor(list(samples), padding="longest", truncation=True, max_length=max_length,
                           return_tensors="np")
        return {name: np.asarray(value, dtype=np.int64) for name, value in enc.items()}

    def order(self, preprocessor: Any, samples: list[str], max_length: int) -> np.ndarray:
        lengths = [len(ids) for ids in preprocessor(list(samples), truncation=True, max_length=max_length)["input_ids"]]
        return np.argsort(-np.asarray(lengths), kind="stable")
