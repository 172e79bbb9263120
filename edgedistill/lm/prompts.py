"""Prompts from a file (JSONL / CSV / a Hugging Face dataset): each row's ``column`` holds a prompt text or chat
``messages``; and the text a model reads for a prompt (its chat template applied)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgedistill.config.lm import PromptSource
from edgedistill.data.tables import check_columns, load_dataset_any, table_rows
from edgedistill.errors import InputError
from edgedistill.lm.teacher_base import Prompt

ROLES = ("system", "user", "assistant")


def as_messages(value: Any, where: str) -> list[dict[str, str]]:
    """A chat ``messages`` value checked: a non-empty list of ``{role, content}`` with known roles."""
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: messages must be a non-empty list of {{role, content}}")
    for turn in value:
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise InputError(f"{where}: each message needs a role ({', '.join(ROLES)}) and a text content; got {turn}")
    return [{"role": t["role"], "content": t["content"]} for t in value]


def as_prompt(value: Any, chat: bool, where: str) -> Prompt | None:
    """A row's value as a :class:`Prompt` (None for an empty text): a list is chat messages, a text is one user
    turn when ``chat``, else a raw prompt."""
    if isinstance(value, list):
        if not chat:
            raise InputError(f"{where}: chat messages given with prompts.chat false; set chat: true")
        return Prompt(messages=as_messages(value, where))
    text = str(value).strip()
    if not text:
        return None
    return Prompt(messages=[{"role": "user", "content": text}]) if chat else Prompt(prompt=text)


def source_rows(source: PromptSource) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` of a prompt file, ``where`` naming the file and row for messages."""
    assert source.path is not None
    if source.source == "hf-dataset":
        data = load_dataset_any(source.path, source.split)
        check_columns(list(data.column_names), [source.column], str(source.path))
        for number, row in enumerate(data, 1):
            yield f"{source.path} row {number}", dict(row)
        return
    for number, row in enumerate(table_rows(source.path, source.source), 1):
        yield f"{source.path}:{number}", row


def load_prompts(source: PromptSource) -> list[Prompt]:
    """The prompts of a file, in row order (duplicates dropped), at most ``count``.

    Raises:
        InputError: a row without the named column, malformed messages, or no prompts at all.
    """
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for where, row in source_rows(source):
        if source.column not in row:
            raise InputError(f"{where}: no field '{source.column}' (fields: {', '.join(row) or 'none'}); set "
                             "data.prompts.column")
        prompt = as_prompt(row[source.column], source.chat, where)
        key = repr(prompt)
        if prompt is not None and key not in seen:
            seen.add(key)
            prompts.append(prompt)
        if len(prompts) >= source.count:
            break
    if not prompts:
        raise InputError(f"{source.path}: no prompts in column '{source.column}'")
    return prompts


def check_chat_template(tokenizer: Any, where: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"{where}: the tokenizer has no chat template, so chat prompts cannot be formatted; give a "
                         "tokenizer with one, or raw prompts with data.prompts.chat: false")


def prompt_text(tokenizer: Any, prompt: Prompt) -> str:
    """What the model reads before answering: the chat template with the generation prompt, or the raw text."""
    if prompt.messages is None:
        assert prompt.prompt is not None
        return prompt.prompt
    check_chat_template(tokenizer, "data.prompts")
    text: str = tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    return text
