"""The generation loop every decoder runs (:mod:`edgedistill.lm.decoders`): prefill the prompts, then one token per
step through the KV cache until every row has produced a stop token or ``max_new_tokens``.

Rows are left-padded, so every row's next token sits in the last column, as Hugging Face's ``generate`` does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgedistill.errors import InputError
from edgedistill.lm.decoder_io import position_ids
from edgedistill.lm.decoders import Decoder
from edgedistill.lm.sampling import Sampling, next_tokens


@dataclass
class Step:
    """One generated column: the token of every row, and the logits it was chosen from (B, V)."""

    tokens: np.ndarray
    logits: np.ndarray


def stop_ids(tokenizer: Any, model: Any = None) -> set[int]:
    """The tokens that end an answer: the tokenizer's end-of-sequence and the model's generation config's."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    ids |= set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return {int(i) for i in ids}


def left_padded(prompts: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, S) ids and mask of ``prompts`` padded on the left to the longest, as numpy arrays."""
    from edgedistill.lm.metrics_batching import pad

    ids, mask = pad(prompts, pad_id, left=True)
    return ids.numpy(), mask.numpy()


def check_length(prompts: list[list[int]], max_new_tokens: int, context: int) -> None:
    """Raise InputError when a prompt and its answer do not fit in the decoder's context."""
    if not prompts or min(len(p) for p in prompts) == 0:
        raise InputError("generate: give a non-empty prompt")
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > context:
        raise InputError(f"generate: the prompt has {longest} tokens and {max_new_tokens} new ones were asked for, "
                         f"more than the model's context of {context}; shorten the prompt or lower --max-new-tokens")


def steps(decoder: Decoder, prompts: list[list[int]], max_new_tokens: int, sampling: Sampling,
          stops: set[int], pad_id: int, forced: Callable[[int], np.ndarray] | None = None) -> Iterator[Step]:
    """Generate for ``prompts`` (token ids), yielding each new column; rows that stopped repeat ``pad_id``.

    ``forced``: the tokens to feed at each step instead of the chosen ones (teacher forcing, for verification).
    """
    check_length(prompts, max_new_tokens, decoder.shape.context_length)
    rng = np.random.default_rng(sampling.seed)
    ids, mask = left_padded(prompts, pad_id)
    logits, state = decoder.forward(ids, mask, position_ids(mask, ids.shape[1]), decoder.start(len(prompts)),
                                    last_only=True)
    done = np.zeros(len(prompts), dtype=bool)
    for step in range(max_new_tokens):
        last = logits[:, -1]
        tokens = next_tokens(last, sampling, rng) if forced is None else forced(step)
        tokens = np.where(done, pad_id, tokens)
        yield Step(tokens, last)
        done |= np.isin(tokens, list(stops))
        if done.all() or step == max_new_tokens - 1:
            return
        mask = np.concatenate([mask, (~done).astype(np.int64)[:, None]], axis=1)
        logits, state = decoder.forward(tokens[:, None].astype(np.int64), mask, position_ids(mask, 1), state,
                                        last_only=True)


def generate_ids(decoder: Decoder, prompts: list[list[int]], max_new_tokens: int, sampling: Sampling,
                 stops: set[int], pad_id: int) -> list[list[int]]:
    """Each row's new tokens, up to and including its stop token (one prompt at a time on a decoder that cannot take
    left padding)."""
    if len(prompts) > 1 and not decoder.left_padding:
        return [generate_ids(decoder, [p], max_new_tokens, sampling, stops, pad_id)[0] for p in prompts]
    out: list[list[int]] = [[] for _ in prompts]
    finished = [False] * len(prompts)
    for step in steps(decoder, prompts, max_new_tokens, sampling, stops, pad_id):
        for row, token in enumerate(step.tokens.tolist()):
            if not finished[row]:
                out[row].append(int(token))
                finished[row] = token in stops
    return out
