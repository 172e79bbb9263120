"""A teacher whose answers were recorded earlier: a JSONL file, in either of two forms.

Plain: one object per line with ``prompt`` (text) or ``messages`` (chat), the ``response`` text, and optionally
``logprobs`` (a list as :meth:`Generation.as_json` writes it, OpenAI chat's ``{"content": [...]}``, or legacy
completions' ``{"tokens", "token_logprobs", "top_logprobs"}``), ``finish_reason`` and ``usage``.

OpenAI Batch API output: ``{"custom_id", "response": {"status_code", "body": <chat.completion or text_completion>},
"error"}``. The prompt is the line's own ``messages`` / ``prompt`` when it has one, else the request of the same
``custom_id`` in the batch *input* JSONL given alongside (``{"custom_id", "body": {"messages" | "prompt"}}``).
Requests that failed in the batch (an ``error``, or a status other than 200) are left out, with a note.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgedistill.errors import InputError
from edgedistill.lm.logprob_formats import parse_logprobs, parse_reply
from edgedistill.lm.records import Generation
from edgedistill.lm.teacher_base import GenerationSettings, LMTeacher, Prompt


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line. Raises InputError (path:line) on a line that is not a JSON
    object."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputError(f"recorded LM: cannot read {path} ({err.strerror})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{n}: not valid JSON ({err.msg}); each line must be one JSON object") from None
        if not isinstance(doc, dict):
            raise InputError(f"{path}:{n}: a JSON {type(doc).__name__}, expected an object")
        yield n, doc


def prompt_of(doc: dict[str, Any], where: str, prompt_field: str = "prompt",
              messages_field: str = "messages") -> Prompt | None:
    """The line's prompt (``messages`` first), or None when it has neither field."""
    messages = doc.get(messages_field)
    if messages is not None:
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise InputError(f"{where}: '{messages_field}' must be a list of {{role, content}} objects")
        return Prompt(messages=messages)
    if doc.get(prompt_field) is not None:
        return Prompt(prompt=str(doc[prompt_field]))
    return None


def prompt_key(prompt: Prompt) -> str:
    """Equal for equal prompts (a chat's messages compared as JSON)."""
    return json.dumps(prompt.as_json(), sort_keys=True, ensure_ascii=False)


def read_batch_input(path: Path) -> dict[str, Prompt]:
    """``custom_id`` → prompt, from an OpenAI Batch API input JSONL."""
    prompts = {}
    for n, doc in jsonl_objects(path):
        where = f"{path}:{n}"
        if "custom_id" not in doc:
            raise InputError(f"{where}: no 'custom_id' field; a batch input line needs 'custom_id' and 'body'")
        prompt = prompt_of(doc.get("body") or {}, where)
        if prompt is None:
            raise InputError(f"{where}: no 'body.messages' or 'body.prompt' field")
        prompts[str(doc["custom_id"])] = prompt
    return prompts


def generation(prompt: Prompt, text: str, logprobs: Any, where: str, finish_reason: Any = None,
               usage: Any = None) -> Generation:
    try:
        tokens, _, _ = parse_logprobs(logprobs)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{where}: 'logprobs' is in no known format ({type(err).__name__}: {err})") from None
    return Generation(prompt=prompt.prompt, messages=prompt.messages, response=text, tokens=tokens,
                      finish_reason=finish_reason, usage={k: int(v) for k, v in (usage or {}).items()
                                                          if k in ("prompt_tokens", "completion_tokens")})


def plain_generation(doc: dict[str, Any], where: str, fields: tuple[str, str, str]) -> Generation:
    """A plain-form line; ``fields``: the prompt, messages and response field names."""
    prompt_field, messages_field, response_field = fields
    if not isinstance(doc.get(response_field), str):
        raise InputError(f"{where}: no '{response_field}' field (text); each line needs '{response_field}' and "
                         f"'{prompt_field}' or '{messages_field}'")
    prompt = prompt_of(doc, where, prompt_field, messages_field)
    if prompt is None:
        raise InputError(f"{where}: no '{prompt_field}' or '{messages_field}' field")
    return generation(prompt, doc[response_field], doc.get("logprobs"), where, doc.get("finish_reason"),
                      doc.get("usage"))


def batch_generation(doc: dict[str, Any], where: str, inputs: dict[str, Prompt] | None,
                     input_path: Path | None) -> Generation | None:
    """A Batch API output line; None when that request failed in the batch."""
    response = doc.get("response") or {}
    if doc.get("error") or response.get("status_code") != 200:
        return None
    custom_id = str(doc["custom_id"])
    prompt = prompt_of(doc, where) or (inputs or {}).get(custom_id)
    if prompt is None:
        if inputs is None:
            raise InputError(f"{where}: a Batch API output line carries no prompt; give the batch input JSONL "
                             "alongside to match its requests by custom_id")
        raise InputError(f"{where}: custom_id '{custom_id}' is not in the batch input {input_path}")
    try:
        parsed = parse_reply(response.get("body"))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{where}: response.body is not a completion ({err})") from None
    return Generation(prompt=prompt.prompt, messages=prompt.messages, response=parsed.text, tokens=parsed.tokens,
                      finish_reason=parsed.finish_reason, usage=parsed.usage)


def is_batch_line(doc: dict[str, Any]) -> bool:
    """A Batch API output line has a ``custom_id`` and a ``response`` object (null when the request failed)."""
    return "custom_id" in doc and not isinstance(doc.get("response"), str)


class RecordedLM(LMTeacher):
    """Answers read from ``path`` (plain or Batch API output form, see the module docstring); ``batch_input``: the
    Batch API input JSONL the prompts come from. ``generate`` returns the recorded answer of each prompt asked."""

    name = "recorded"

    def __init__(self, path: Path, batch_input: Path | None = None, prompt_field: str = "prompt",
                 messages_field: str = "messages", response_field: str = "response"):
        self.path, self.batch_input = Path(path), batch_input
        self.fields = (prompt_field, messages_field, response_field)
        inputs = read_batch_input(batch_input) if batch_input else None
        self.records: list[Generation] = []
        self.failed: list[str] = []
        for n, doc in jsonl_objects(self.path):
            where = f"{self.path}:{n}"
            if not is_batch_line(doc):
                self.records.append(plain_generation(doc, where, self.fields))
            elif (gen := batch_generation(doc, where, inputs, batch_input)) is not None:
                self.records.append(gen)
            else:
                self.failed.append(str(doc["custom_id"]))
        self.logprobs = bool(self.records) and all(g.tokens for g in self.records)

    def prompts(self) -> list[Prompt]:
        """The recorded prompts, in file order."""
        return [Prompt(prompt=g.prompt, messages=g.messages) for g in self.records]

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> Iterator[tuple[int, Generation]]:
        """``(index, Generation)`` for each prompt asked, in file order (``settings`` cannot change a recording).
        A prompt recorded several times gets its answers in turn.

        Raises:
            InputError: a prompt has no recorded answer (naming it and the file).
        """
        recorded: dict[str, deque[int]] = {}
        for pos, g in enumerate(self.records):
            recorded.setdefault(prompt_key(Prompt(g.prompt, g.messages)), deque()).append(pos)
        found = []
        for i, p in enumerate(prompts):
            positions = recorded.get(prompt_key(p))
            if not positions:
                shown = (p.prompt or "" if p.messages is None else json.dumps(p.messages, ensure_ascii=False))[:60]
                raise InputError(f"recorded LM: prompt {i} ({shown!r}) has no recorded answer in {self.path}; "
                                 "record it, or leave it out of the prompts")
            found.append((positions.popleft(), i))
        for pos, i in sorted(found):
            yield i, self.records[pos]

    def identity(self) -> dict[str, Any]:
        files = {"sha256": self.path} | ({"batch_input_sha256": self.batch_input} if self.batch_input else {})
        return {"source": "recorded"} | {k: hashlib.sha256(Path(p).read_bytes()).hexdigest() for k, p in files.items()}

    def notes(self) -> list[str]:
        out = []
        if self.failed:
            shown = ", ".join(self.failed[:3]) + (", ..." if len(self.failed) > 3 else "")
            out.append(f"{len(self.failed)} batch requests failed and were left out (custom_id {shown})")
        missing = sum(g.tokens is None for g in self.records)
        if missing == len(self.records):
            out.append("recorded answers carry no logprobs: distilling from text only (SeqKD)")
        elif missing:
            out.append(f"{missing} of {len(self.records)} recorded answers carry no logprobs: those distil from "
                       "text only (SeqKD)")
        return out

    def usage(self) -> dict[str, Any]:
        return {"recorded_answers": len(self.records),
                "prompt_tokens": sum(g.usage.get("prompt_tokens", 0) for g in self.records),
                "completion_tokens": sum(g.usage.get("completion_tokens", 0) for g in self.records)}

