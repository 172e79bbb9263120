"""Data-free prompts (Magpie: Xu et al. 2024, "Magpie: Alignment Data Synthesis from Scratch by Prompting Aligned
LLMs with Nothing"): an aligned model given only its chat template's user-turn prefix writes a user query, as it
learnt to expect one. The queries it writes become the prompts it then answers, so a pipeline runs with no dataset.
"""

from __future__ import annotations

from typing import Any

from edgedistill.config.lm import PromptSource
from edgedistill.errors import InputError
from edgedistill.lm.prompts import check_chat_template
from edgedistill.lm.teacher_base import Prompt

SENTINEL = "\x00EDGEDISTILL-USER-TURN\x00"
MIN_WORDS = 3
MAX_ROUNDS = 8  # sampling rounds before giving up on reaching `count` distinct prompts


def user_turn_prefix(tokenizer: Any) -> str:
    """The chat template's text up to where a user's message starts (system turn included, if the template adds
    one), e.g. ``<|im_start|>system\\n…<|im_end|>\\n<|im_start|>user\\n``."""
    check_chat_template(tokenizer, "data.prompts magpie")
    text: str = tokenizer.apply_chat_template([{"role": "user", "content": SENTINEL}], tokenize=False)
    if SENTINEL not in text:
        raise InputError("data.prompts magpie: the chat template does not place the user's message in the text")
    return text[: text.index(SENTINEL)]


def keep_query(text: str, finished: bool) -> str | None:
    """A written query worth answering: finished (ended with the end-of-turn token), a few words at least."""
    query = text.strip()
    return query if finished and len(query.split()) >= MIN_WORDS else None


def magpie_prompts(teacher: Any, source: PromptSource, seed: int) -> list[Prompt]:
    """``source.count`` distinct user queries written by a white-box ``teacher`` (see the module doc).

    Raises:
        InputError: the teacher cannot write prompts (no chat template, not white-box) or wrote too few.
    """
    if not hasattr(teacher, "complete"):
        raise InputError("data.prompts magpie: the teacher must write its own prompts, which needs a white-box "
                         "teacher (a model folder or GGUF file); give a prompts file for this teacher")
    prefix = user_turn_prefix(teacher.tokenizer)
    queries: list[str] = []
    for round_ in range(MAX_ROUNDS):
        wanted = int((source.count - len(queries)) * 1.5) + 4
        written = teacher.complete([prefix] * wanted, source.max_prompt_tokens, source.temperature, source.top_p,
                                   seed=seed + round_)
        before = len(queries)
        for text, finished in written:
            query = keep_query(text, finished)
            if query is not None and query not in queries:
                queries.append(query)
        if len(queries) >= source.count or len(queries) == before:  # done, or the teacher writes nothing new
            break
    if len(queries) < source.count:
        raise InputError(f"data.prompts magpie: the teacher wrote {len(queries)} usable prompts of "
                         f"{source.count}; raise max_prompt_tokens or lower count")
    return [Prompt(messages=[{"role": "user", "content": q}]) for q in queries[: source.count]]
