"""Likelihood metrics of a causal LM on given text: perplexity and multiple-choice accuracy.

Both tokenize as the tokenizer does by default (``tokenizer(text)``: a Llama tokenizer adds BOS, GPT-2's and
Qwen's add nothing), score with :func:`~edgedistill.lm.metrics_batching.token_logprobs` (right padding, so a
batch gives what each text alone gives) and accumulate in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from edgedistill.errors import InputError
from edgedistill.lm.metrics_batching import token_logprobs


def encode(tokenizer: Any, text: str, max_length: int | None = None) -> list[int]:
    """``text``'s token ids with the tokenizer's own special tokens (BOS where it adds one), cut at ``max_length``."""
    kwargs: dict[str, Any] = {"truncation": True, "max_length": max_length} if max_length else {}
    return [int(i) for i in tokenizer(text, **kwargs)["input_ids"]]


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: list[str], max_length: int = 256, batch_size: int = 8) -> float:
    """exp of the mean next-token NLL over every scored token of ``texts`` (token-weighted, not a mean of
    per-text perplexities).

    Each text is tokenized alone and cut at ``max_length`` tokens; its first token is context only, so a text of
    n tokens scores n − 1. Raises InputError when no text has two tokens.
    """
    scored = token_logprobs(model, [encode(tokenizer, t, max_length) for t in texts], batch_size)
    tokens = sum(len(s) for s in scored)
    if tokens == 0:
        raise InputError(f"perplexity: none of the {len(texts)} texts has two tokens or more; give longer texts")
    return math.exp(-sum(float(s.sum()) for s in scored) / tokens)


def context_and_continuation(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of ``context`` and of ``continuation`` after it, split as lm-evaluation-harness splits them.

    As ``TemplateLM._encode_pair`` and ``loglikelihood`` (EleutherAI/lm-evaluation-harness, ``lm_eval/api/
    model.py``): trailing whitespace of the context moves to the continuation, the whole text is tokenized once and
    the continuation is what follows the context's tokens, so a merge across the boundary is scored as the model
    would see it. A context of no tokens becomes the EOS (else BOS) token, as the harness's ``prefix_token_id``.
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole, ctx = encode(tokenizer, context + continuation), encode(tokenizer, context)
    cont = whole[len(ctx):]
    if not ctx:
        prefix = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
        if prefix is None:
            raise InputError("multiple_choice: an empty question needs a tokenizer with an EOS or BOS token")
        ctx = [int(prefix)]
    if not cont:
        raise InputError(f"multiple_choice: the continuation {continuation!r} has no tokens; give non-empty choices")
    return ctx, cont


def check_item(n: int, item: dict[str, Any]) -> None:
    choices, answer = item.get("choices"), item.get("answer")
    if "question" not in item or not isinstance(choices, list) or not choices or not all(choices):
        raise InputError(f"multiple_choice: item {n} needs 'question' and a non-empty list of non-empty 'choices'")
    if not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise InputError(f"multiple_choice: item {n} has answer {answer!r}; give the index of the right choice "
                         f"(0..{len(choices) - 1})")


@torch.no_grad()
def multiple_choice(model: Any, tokenizer: Any, items: list[dict[str, Any]], batch_size: int = 8
                    ) -> dict[str, float]:
    """Accuracy on ``items`` ``{question, choices: [...], answer: int}`` by log-likelihood, as lm-evaluation-harness.

    Each choice is scored by the summed log-probability of ``" " + choice`` after the question (continuation
    tokens only). ``acc``: the argmax of the log-likelihoods is the answer; ``acc_norm``: the argmax of
    log-likelihood / ``len(choice)`` in characters (the leading space not counted), as ``ConfigurableTask.
    process_results`` in EleutherAI/lm-evaluation-harness (``lm_eval/api/task.py``: ``completion_len =
    np.array([float(len(i)) for i in choices])``; ``pred_norm = np.argmax(lls / completion_len)``). Ties go to the
    first choice, as ``np.argmax``. Returns ``acc``, ``acc_norm`` and ``items`` (the count).
    """
    if not items:
        raise InputError("multiple_choice: no items given")
    pairs, owner = [], []
    for n, item in enumerate(items):
        check_item(n, item)
        for choice in item["choices"]:
            pairs.append(context_and_continuation(tokenizer, item["question"], " " + choice))
            owner.append(n)
    scored = token_logprobs(model, [ctx + cont for ctx, cont in pairs], batch_size)
    logliks = np.array([float(s[len(s) - len(cont):].sum()) for s, (_, cont) in zip(scored, pairs)])
    acc = acc_norm = 0
    for n, item in enumerate(items):
        lls = logliks[np.asarray(owner) == n]
        lengths = np.array([float(len(c)) for c in item["choices"]])
        acc += int(np.argmax(lls)) == item["answer"]
        acc_norm += int(np.argmax(lls / lengths)) == item["answer"]
    return {"acc": acc / len(items), "acc_norm": acc_norm / len(items), "items": float(len(items))}
