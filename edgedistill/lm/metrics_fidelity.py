"""Fidelity of a student LM to its teacher: next-token agreement and KL under teacher forcing, and agreement of
greedy generations with the teacher's answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from edgedistill.errors import InputError
from edgedistill.lm.losses import common_vocab, per_token_forward_kl, per_token_sparse_kl
from edgedistill.lm.metrics_batching import batches, causal_logits, model_device, pad, pad_id
from edgedistill.lm.records import SequenceTargets


def response_rows(seq: SequenceTargets, live_teacher: bool, n: int) -> np.ndarray:
    """Which of ``seq``'s response tokens are scored: all with a live teacher, else those with an aligned top-k."""
    r = seq.response_length
    if not 1 <= seq.response_start <= len(seq.input_ids):
        raise InputError(f"teacher_forcing: sequence {n} has response_start {seq.response_start}; it must lie in "
                         f"1..{len(seq.input_ids)} (a prompt of at least one token)")
    if live_teacher:
        return np.ones(r, dtype=bool)
    if seq.top_ids is None:
        raise InputError(f"teacher_forcing: sequence {n} has no teacher top-k and no live teacher was given; "
                         "pass teacher=, or targets from a teacher that returns logprobs")
    top = np.asarray(seq.top_ids)
    aligned_shape = None if seq.aligned is None else np.asarray(seq.aligned).shape
    if top.ndim != 2 or top.shape[0] != r or aligned_shape not in (None, (r,)):
        raise InputError(f"teacher_forcing: sequence {n} has top_ids {top.shape} / aligned {aligned_shape} for {r} "
                         "response tokens; give one row per response token")
    keep = top[:, 0] >= 0  # a row of padding only carries no distribution
    return keep & (np.ones(r, dtype=bool) if seq.aligned is None else np.asarray(seq.aligned, dtype=bool))


def scored_logits(logits: torch.Tensor, batch: Sequence[SequenceTargets], keeps: list[np.ndarray]) -> torch.Tensor:
    """The rows (N, V) of ``logits`` (B, T, V) that predict the kept response tokens, in batch order."""
    rows = []
    for b, (seq, keep) in enumerate(zip(batch, keeps)):
        predicting = logits[b, seq.response_start - 1: len(seq.input_ids) - 1]  # (R, V)
        rows.append(predicting[torch.as_tensor(keep, device=logits.device)])
    return torch.cat(rows)


def scored_top(batch: Sequence[SequenceTargets], keeps: list[np.ndarray], device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The cached top-k ids and log-probabilities (N, k) of the kept response tokens."""
    ids = np.concatenate([np.asarray(s.top_ids, dtype=np.int64)[k] for s, k in zip(batch, keeps)])
    lps = np.concatenate([np.asarray(s.top_logprobs, dtype=np.float32)[k] for s, k in zip(batch, keeps)])
    return torch.from_numpy(ids).to(device), torch.from_numpy(lps).to(device)


@torch.no_grad()
def teacher_forcing(student: Any, sequences: list[SequenceTargets], teacher: Any = None, batch_size: int = 8
                    ) -> dict[str, float]:
    """Student vs teacher on the response tokens of ``sequences``, each position conditioned on the true prefix.

    ``top1_agreement``: share of positions where the student's argmax is the teacher's (the live ``teacher``'s
    argmax, else ``top_ids[:, 0]`` of the cached top-k); ``kl``: mean KL(teacher ‖ student), over the full
    vocabulary with a live teacher (:func:`~edgedistill.lm.losses.per_token_forward_kl`, T = 1), else over the
    top-k plus a tail bucket (:func:`~edgedistill.lm.losses.per_token_sparse_kl`); ``tokens``: positions scored
    (without a live teacher, those whose top-k is present and aligned). A live teacher shares the student's
    tokenizer; vocabularies that differ by padding rows are cut to the smaller one.
    """
    agree, kl_sum, tokens = 0, 0.0, 0
    for start, batch in zip(range(0, len(sequences), max(1, batch_size)), batches(sequences, batch_size)):
        keeps = [response_rows(s, teacher is not None, start + j) for j, s in enumerate(batch)]
        if not any(k.any() for k in keeps):
            continue
        ids = [np.asarray(s.input_ids, dtype=np.int64).tolist() for s in batch]
        student_rows = scored_logits(causal_logits(student, ids)[0], batch, keeps).float()  # (N, V)
        if teacher is not None:
            teacher_rows = scored_logits(causal_logits(teacher, ids)[0], batch, keeps).to(student_rows.device)
            s, t = common_vocab(student_rows, teacher_rows)
            agree += int((s.argmax(-1) == t.argmax(-1)).sum())
            kl_sum += float(per_token_forward_kl(s, t).double().sum())
        else:
            top_ids, top_lp = scored_top(batch, keeps, student_rows.device)
            agree += int((student_rows.argmax(-1) == top_ids[:, 0]).sum())
            kl_sum += float(per_token_sparse_kl(student_rows, top_ids, top_lp).double().sum())
        tokens += int(student_rows.shape[0])
    if tokens == 0:
        raise InputError(f"teacher_forcing: none of the {len(sequences)} sequences has a response position to "
                         "score (empty responses, or no aligned teacher top-k)")
    return {"top1_agreement": agree / tokens, "kl": kl_sum / tokens, "tokens": float(tokens)}


@torch.no_grad()
def greedy_generate(model: Any, tokenizer: Any, prompt_texts: list[str], max_new_tokens: int, batch_size: int = 8,
                    add_special_tokens: bool = True) -> list[str]:
    """Greedy continuations of ``prompt_texts`` (batched, left padding), decoded without special tokens.

    ``add_special_tokens=False`` for prompts that already hold them (chat-template text with its BOS).
    """
    pad_value, device, texts = pad_id(tokenizer), model_device(model), []
    for batch in batches(prompt_texts, batch_size):
        encoded = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in batch]
        if not all(encoded):
            raise InputError("greedy_generate: a prompt has no tokens; give non-empty prompts")
        ids, mask = pad(encoded, pad_value, left=True)
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=pad_value)
        texts.extend(tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True))
    return texts


def rouge_l(prediction: str, reference: str, scorer: Any) -> float:
    """ROUGE-L F-measure by ``rouge-score``; 1.0 for texts identical after stripping, which rouge-score scores 0
    when neither has a word it tokenizes (it keeps only [a-z0-9] runs)."""
    if prediction.strip() == reference.strip():
        return 1.0
    return float(scorer.score(reference, prediction)["rougeL"].fmeasure)


def greedy_agreement(student: Any, tokenizer: Any, prompt_texts: list[str], teacher_responses: list[str],
                     max_new_tokens: int, batch_size: int = 8, add_special_tokens: bool = True) -> dict[str, float]:
    """The student's greedy answers to ``prompt_texts`` against ``teacher_responses``.

    ``exact_match``: share of answers equal to the teacher's after stripping whitespace; ``rouge_l``: mean ROUGE-L
    F-measure (``rouge_score.rouge_scorer.RougeScorer(["rougeL"])``, the teacher's answer as reference);
    ``examples``: the count. Give ``max_new_tokens`` the teacher's budget, or longer answers are cut.
    """
    from rouge_score import rouge_scorer

    if len(prompt_texts) != len(teacher_responses) or not prompt_texts:
        raise InputError(f"greedy_agreement: {len(prompt_texts)} prompts and {len(teacher_responses)} teacher "
                         "responses; give one response per prompt, at least one")
    answers = greedy_generate(student, tokenizer, prompt_texts, max_new_tokens, batch_size, add_special_tokens)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    exact = sum(a.strip() == r.strip() for a, r in zip(answers, teacher_responses))
    rouge = sum(rouge_l(a, r, scorer) for a, r in zip(answers, teacher_responses))
    n = len(prompt_texts)
    return {"exact_match": exact / n, "rouge_l": rouge / n, "examples": float(n)}
