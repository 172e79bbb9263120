"""Shared vocabulary of the config: accepted names, the strict base model, path resolution, did-you-mean hints."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

Task = Literal["sentence-embedding", "sequence-classification", "image-classification", "text-generation"]
TASKS: tuple[Task, ...] = get_args(Task)
DEFAULT_TASK: Task = "sentence-embedding"  # a model whose task is not recorded anywhere
GENERATIVE_TASK: Task = "text-generation"  # a causal LM (a GGUF file, a folder of a *ForCausalLM)
LOSS_NAMES = (
    "embedding_mse", "embedding_cosine", "logits_kl",
    "hidden_mse", "attention_mse", "attention_kl", "minilm_relation", "fitnets",
    "forward_kl", "sparse_kl", "seqkd", "gkd",
)
# Losses of a causal LM's next-token distributions (the text-generation Task); the others are the encoders'.
LM_LOSSES = ("forward_kl", "sparse_kl", "seqkd", "gkd")
# Losses a text-generation run takes: its own, and hidden states through the architecture adapter.
GENERATIVE_LOSSES = (*LM_LOSSES, "hidden_mse")
# Of those, the ones that need the teacher's full logits (a white-box teacher in this process).
FULL_LOGIT_LOSSES = ("forward_kl", "gkd")
# Losses that read intermediate tensors (hooks), so they need a white-box teacher.
WHITE_BOX_LOSSES = ("hidden_mse", "attention_mse", "attention_kl", "minilm_relation", "fitnets")
# Options each loss accepts beyond `name` and `weight`; any other option set is a mistake worth saying.
LOSS_OPTIONS: dict[str, tuple[str, ...]] = {
    "embedding_mse": (), "embedding_cosine": (),
    "logits_kl": ("temperature", "hard_label_weight"),
    "hidden_mse": ("layers", "projection"),
    "attention_mse": ("layers",), "attention_kl": ("layers",),
    "minilm_relation": ("layers", "relations", "relation_heads"),
    "fitnets": ("student_module", "teacher_module"),
    "forward_kl": ("temperature",), "sparse_kl": (), "seqkd": (),
    "gkd": ("temperature", "beta", "on_policy", "max_new_tokens"),
}
TABLE_SOURCES = ("jsonl", "csv", "tsv", "hf-dataset")
TEACHER_SOURCES = ("huggingface", "onnx", "recorded", "http")
QUANTIZE_MODES = ("dynamic-int8", "static-int8", "trt-int8", "fp16", "qad-int8", "weight-only")
BACKENDS = ("torch", "onnxruntime", "tensorrt")

PositiveInt = Annotated[int, Field(gt=0)]


def known(name: str, choices: tuple[str, ...], what: str) -> str:
    """``name`` if it is one of ``choices``, else ValueError with a did-you-mean hint."""
    if name not in choices:
        raise ValueError(f"unknown {what} '{name}'; {suggest(name, choices)}")
    return name


class StrictModel(BaseModel):
    """Base: frozen, and unknown keys are errors (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: str | Path | None, info: ValidationInfo, must_exist: bool = True) -> Path | None:
    """Resolve ``value`` against the config's folder (from the validation context) and check it exists."""
    if value is None:
        return None
    text = str(value)
    if text.startswith("pkg:"):
        from edgedistill.models.locate import resolve_pkg_path

        return resolve_pkg_path(text)
    path = Path(text).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if must_exist and not path.exists():
        raise ValueError(f"file not found: {path}")
    return path


def suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    """`unknown 'x'; did you mean 'y'?` — the hint part, or a list of the valid names."""
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(choices)
