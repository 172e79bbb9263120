"""What a text-generation run adds to the config: how the teacher answers, where prompts come from (files, or the
teacher itself: Magpie), and the multiple-choice data a user brings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgedistill.config.base import PositiveInt, StrictModel, resolve_path


class GenerationConfig(StrictModel):
    """How the teacher answers each prompt (and how students are asked to answer at evaluation)."""

    max_new_tokens: PositiveInt = Field(96, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0, description="0: greedy; above 0: sampled.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling (temperature > 0 only).")
    top_logprobs: int = Field(20, ge=0, le=20, description="Teacher log-probabilities kept per token (the sparse "
                              "cache's k; 20 is OpenAI's maximum); 0: text only.")
    batch_size: PositiveInt = Field(16, description="White-box teacher: prompts answered together.")


class PromptSource(StrictModel):
    """Prompts the teacher answers.

    ``magpie``: none are needed: an aligned teacher writes its own user turns when given only its chat template's
    user-turn prefix (Xu et al. 2024, "Magpie"), ``count`` of them; ``jsonl`` / ``csv`` / ``hf-dataset``: the
    ``column`` of a file, holding a prompt (text) or chat ``messages`` (a list of ``{role, content}``; JSONL and
    datasets only). The tokenizer's chat template applies to both, unless ``chat: false``.
    """

    source: Literal["magpie", "jsonl", "csv", "hf-dataset"] = Field(description="Where prompts come from.")
    path: Path | None = Field(None, description="jsonl/csv/hf-dataset: the file or dataset folder.")
    column: str = Field("prompt", description="Column holding the prompt text or the chat `messages`.")
    split: str | None = Field(None, description="hf-dataset: the split (default train).")
    count: PositiveInt = Field(256, description="magpie: prompts to have the teacher write; files: at most this many "
                               "(none: all).")
    chat: bool = Field(True, description="Apply the tokenizer's chat template (false: prompts are raw text).")
    max_prompt_tokens: PositiveInt = Field(48, description="magpie: longest self-written prompt, in tokens.")
    temperature: float = Field(1.0, gt=0, description="magpie: sampling temperature of the prompts.")
    top_p: float = Field(0.99, gt=0, le=1, description="magpie: nucleus sampling of the prompts.")

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)

    @model_validator(mode="after")
    def _needs_path(self) -> PromptSource:
        if self.source == "magpie" and self.path is not None:
            raise ValueError("prompts source 'magpie' takes no 'path' (the teacher writes its own prompts)")
        if self.source != "magpie" and self.path is None:
            raise ValueError(f"prompts source '{self.source}' needs a 'path'")
        if self.source != "magpie" and self.path is not None and self.path.is_file() and self.source != "hf-dataset":
            from edgedistill.data.tables import check_columns, table_columns
            from edgedistill.errors import InputError

            try:
                check_columns(table_columns(self.path, self.source), [self.column], str(self.path))
            except InputError as err:
                raise ValueError(str(err)) from None
        return self


class MultipleChoice(StrictModel):
    """A JSONL of ``{question, choices: [...], answer: <index>}`` scored by log-likelihood (acc, acc_norm)."""

    path: Path = Field(description="The JSONL file.")
    question: str = Field("question", description="Field holding the question.")
    choices: str = Field("choices", description="Field holding the list of choices.")
    answer: str = Field("answer", description="Field holding the index of the right choice.")

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)
