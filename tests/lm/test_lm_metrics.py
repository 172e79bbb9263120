"""The text-generation metrics with tiny random LMs: batched against one-sequence-at-a-time loops and by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer
from support.tiny_lm import make_tiny_lm
from torch.distributions import Categorical, kl_divergence

from edgedistill.errors import InputError
from edgedistill.lm.losses import topk_logprobs
from edgedistill.lm.metrics import greedy_agreement, greedy_generate, multiple_choice, perplexity, teacher_forcing
from edgedistill.lm.metrics_likelihood import context_and_continuation
from edgedistill.lm.records import SequenceTargets

TEXTS = ["What is the capital of France? Paris.", "Hello, world!", "def f(x):\n    return x + 1\n",
         "one two three four five six seven eight nine ten", "a"]
PAIRS = [("Q: capital of France?\nA:", " Paris is the capital."), ("Hello", ", world! 123"),
         ("def f(x):", "\n    return x + 1"), ("one two three", " four five six seven"), ("x", " y")]


@pytest.fixture(scope="module")
def lms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("lm")
    student_dir, teacher_dir = make_tiny_lm(root / "student", seed=0), make_tiny_lm(root / "teacher", seed=1)
    load = AutoModelForCausalLM.from_pretrained
    return {"student": load(student_dir).eval(), "teacher": load(teacher_dir).eval(),
            "padded": load(make_tiny_lm(root / "padded", seed=1, vocab_size=448)).eval(),
            "tokenizer": AutoTokenizer.from_pretrained(student_dir)}


def targets(tokenizer: Any, teacher: Any = None, k: int = 0) -> list[SequenceTargets]:
    """PAIRS as sequences in the tiny tokenizer; with ``teacher``, its top-``k`` at every response token."""
    out = []
    for prompt, response in PAIRS:
        p, r = tokenizer(prompt)["input_ids"], tokenizer(response)["input_ids"]
        seq = SequenceTargets(input_ids=np.array(p + r), response_start=len(p))
        if teacher is not None:
            with torch.no_grad():
                logits = teacher(torch.tensor([p + r])).logits[0, len(p) - 1: -1]
            ids, lps = topk_logprobs(logits, k)
            seq.top_ids, seq.top_logprobs = ids.numpy(), lps.numpy()
        out.append(seq)
    return out


def response_logits(model: Any, seq: SequenceTargets) -> torch.Tensor:
    """One sequence alone, no padding: the logits (R, V) predicting its response tokens."""
    with torch.no_grad():
        logits = model(torch.tensor(seq.input_ids)[None]).logits[0]
    return logits[seq.response_start - 1: len(seq.input_ids) - 1].double()


def test_perplexity_matches_one_text_at_a_time(lms: dict[str, Any]) -> None:
    model, tok = lms["student"], lms["tokenizer"]
    nll, tokens = 0.0, 0
    for text in TEXTS:
        ids = torch.tensor(tok(text)["input_ids"])[None]
        if ids.shape[1] > 1:  # HF's own labels loss: mean NLL of tokens 1..n-1
            with torch.no_grad():
                loss = model(ids, labels=ids).loss.item()
            nll, tokens = nll + loss * (ids.shape[1] - 1), tokens + ids.shape[1] - 1
    got = perplexity(model, tok, TEXTS, batch_size=3)
    assert got == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    assert perplexity(model, tok, TEXTS, batch_size=1) == pytest.approx(got, rel=1e-5)


def test_perplexity_cuts_at_max_length_and_refuses_no_tokens(lms: dict[str, Any]) -> None:
    model, tok = lms["student"], lms["tokenizer"]
    text = TEXTS[3]
    ids = torch.tensor(tok(text)["input_ids"][:4])[None]
    with torch.no_grad():
        expected = math.exp(model(ids, labels=ids).loss.item())
    assert perplexity(model, tok, [text], max_length=4) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InputError, match="two tokens"):
        perplexity(model, tok, ["a", ""])


def reference_forcing(student: Any, seqs: list[SequenceTargets], teacher: Any) -> tuple[float, float, int]:
    """Top-1 agreement and full-vocabulary KL one sequence at a time, by torch.distributions (float64)."""
    agree, kl, n = 0, 0.0, 0
    for seq in seqs:
        s, t = response_logits(student, seq), response_logits(teacher, seq)
        v = min(s.shape[-1], t.shape[-1])
        s, t = s[:, :v], t[:, :v]
        agree += int((s.argmax(-1) == t.argmax(-1)).sum())
        kl += float(kl_divergence(Categorical(logits=t), Categorical(logits=s)).sum())
        n += s.shape[0]
    return agree / n, kl / n, n


def test_teacher_forcing_with_a_live_teacher_matches_the_loop(lms: dict[str, Any]) -> None:
    student, teacher, tok = lms["student"], lms["teacher"], lms["tokenizer"]
    seqs = targets(tok)
    agreement, kl, n = reference_forcing(student, seqs, teacher)
    got = teacher_forcing(student, seqs, teacher=teacher, batch_size=2)
    assert got["tokens"] == n == sum(s.response_length for s in seqs)
    assert got["top1_agreement"] == pytest.approx(agreement)
    assert got["kl"] == pytest.approx(kl, rel=1e-4)
    # a teacher with 48 padding rows in its embedding: cut to the shared 400, same numbers
    padded = teacher_forcing(student, seqs, teacher=lms["padded"], batch_size=3)
    assert padded["kl"] == pytest.approx(reference_forcing(student, seqs, lms["padded"])[1], rel=1e-4)


def test_teacher_forcing_of_a_model_with_itself(lms: dict[str, Any]) -> None:
    student, tok = lms["student"], lms["tokenizer"]
    live = teacher_forcing(student, targets(tok), teacher=student, batch_size=4)
    assert live["top1_agreement"] == 1.0 and live["kl"] == pytest.approx(0.0, abs=1e-6)
    cached = teacher_forcing(student, targets(tok, teacher=student, k=20), batch_size=4)
    assert cached["top1_agreement"] == 1.0 and cached["kl"] == pytest.approx(0.0, abs=1e-5)


def test_teacher_forcing_from_the_cached_top_k(lms: dict[str, Any]) -> None:
    student, teacher, tok = lms["student"], lms["teacher"], lms["tokenizer"]
    full = teacher_forcing(student, targets(tok, teacher=teacher, k=400), batch_size=2)
    live = teacher_forcing(student, targets(tok), teacher=teacher, batch_size=2)
    assert full["top1_agreement"] == live["top1_agreement"]  # top_ids[:, 0] is the teacher's argmax
    assert full["kl"] == pytest.approx(live["kl"], rel=1e-4)  # k = V: the sparse KL is the full one
    seqs = targets(tok, teacher=teacher, k=5)
    seqs[0].aligned = np.arange(seqs[0].response_length) % 2 == 0  # odd positions did not align
    assert seqs[2].top_ids is not None and seqs[2].top_logprobs is not None
    seqs[2].top_ids[1], seqs[2].top_logprobs[1] = -1, -np.inf  # a position the teacher listed nothing for
    got = teacher_forcing(student, seqs, batch_size=2)
    skipped = seqs[0].response_length // 2 + 1
    assert got["tokens"] == sum(s.response_length for s in seqs) - skipped
    agree, kl = 0, 0.0  # the loop: explicit top-5 + tail sums per kept position
    for seq in seqs:
        logits, keep = response_logits(student, seq), np.ones(seq.response_length, bool)
        keep &= seq.aligned if seq.aligned is not None else True
        assert seq.top_ids is not None and seq.top_logprobs is not None
        keep &= seq.top_ids[:, 0] >= 0
        q = torch.softmax(logits, -1).numpy()
        for i in np.flatnonzero(keep):
            agree += int(q[i].argmax() == seq.top_ids[i, 0])
            p = np.exp(seq.top_logprobs[i].astype(np.float64))
            qk = q[i, seq.top_ids[i]]
            kl += float(np.sum(p * np.log(p / qk))) + (1 - p.sum()) * math.log((1 - p.sum()) / (1 - qk.sum()))
    assert got["top1_agreement"] == pytest.approx(agree / got["tokens"])
    assert got["kl"] == pytest.approx(kl / got["tokens"], rel=1e-4)


def test_teacher_forcing_needs_a_teacher_distribution(lms: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="no live teacher"):
        teacher_forcing(lms["student"], targets(lms["tokenizer"]))


PROMPTS = ["What is the capital", "Hello", "def f(x):\n    return", "one two three four five six"]


def test_greedy_agreement_of_a_model_with_itself_under_left_padding(lms: dict[str, Any]) -> None:
    model, tok = lms["student"], lms["tokenizer"]
    alone = greedy_generate(model, tok, PROMPTS, max_new_tokens=8, batch_size=1)  # no padding at all
    assert len(alone) == 4 and any(a.strip() for a in alone)
    got = greedy_agreement(model, tok, PROMPTS, alone, max_new_tokens=8, batch_size=4)
    assert got == {"exact_match": 1.0, "rouge_l": 1.0, "examples": 4.0}


def test_greedy_agreement_scores_with_rouge_score(lms: dict[str, Any]) -> None:
    student, teacher, tok = lms["student"], lms["teacher"], lms["tokenizer"]
    references = ["the capital of France is Paris", "world", "x + 1", "seven eight"]
    answers = greedy_generate(student, tok, PROMPTS, max_new_tokens=8, batch_size=1)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = np.mean([1.0 if a.strip() == r.strip() else scorer.score(r, a)["rougeL"].fmeasure
                        for a, r in zip(answers, references)])
    got = greedy_agreement(student, tok, PROMPTS, references, max_new_tokens=8, batch_size=3)
    assert got["rouge_l"] == pytest.approx(expected)
    assert got["exact_match"] == np.mean([a.strip() == r.strip() for a, r in zip(answers, references)])
    other = greedy_generate(teacher, tok, PROMPTS, max_new_tokens=8, batch_size=2)
    cross = greedy_agreement(student, tok, PROMPTS, other, max_new_tokens=8)
    assert cross["exact_match"] == np.mean([a.strip() == b.strip() for a, b in zip(answers, other)])
    with pytest.raises(InputError, match="one response per prompt"):
        greedy_agreement(student, tok, PROMPTS, references[:2], max_new_tokens=8)


class BigramLM(torch.nn.Module):
    """logits[t] = table[input_ids[t]]: log-likelihoods a test can sum by hand."""

    def __init__(self, vocab: int, seed: int = 0):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(seed)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[input_ids])


ITEMS: list[dict[str, Any]] = [
    {"question": "What is the capital of France?", "choices": ["Paris", "a", "one two three four"], "answer": 0},
    {"question": "Hello,", "choices": ["world!", "x", "seven eight nine"], "answer": 2},
    {"question": "def f(x):", "choices": ["return x + 1", "pass"], "answer": 1},
    {"question": "one two ", "choices": ["three", "four five", "six"], "answer": 0},  # trailing space moves
]


def test_multiple_choice_by_hand_with_a_bigram_model(lms: dict[str, Any]) -> None:
    tok = lms["tokenizer"]
    model = BigramLM(len(tok))
    log_p = torch.log_softmax(model.table.detach().double(), -1).numpy()
    acc = acc_norm = 0
    for item in ITEMS:
        q = item["question"].rstrip()
        lls = []
        for choice in item["choices"]:
            spaces = item["question"][len(q):]
            whole, ctx = tok(q + spaces + " " + choice)["input_ids"], tok(q)["input_ids"]
            assert context_and_continuation(tok, item["question"], " " + choice) == (ctx, whole[len(ctx):])
            lls.append(sum(log_p[whole[t - 1], whole[t]] for t in range(len(ctx), len(whole))))
        acc += int(np.argmax(lls)) == item["answer"]
        acc_norm += int(np.argmax(np.array(lls) / [len(c) for c in item["choices"]])) == item["answer"]
    got = multiple_choice(model, tok, ITEMS, batch_size=3)
    assert got == {"acc": acc / 4, "acc_norm": acc_norm / 4, "items": 4.0}


def test_multiple_choice_batched_matches_unbatched_on_a_real_lm(lms: dict[str, Any]) -> None:
    model, tok = lms["student"], lms["tokenizer"]
    assert multiple_choice(model, tok, ITEMS, batch_size=4) == multiple_choice(model, tok, ITEMS, batch_size=1)
    with pytest.raises(InputError, match="answer"):
        multiple_choice(model, tok, [{"question": "q", "choices": ["a", "b"], "answer": 2}])


def test_an_empty_question_uses_the_eos_token_as_context(lms: dict[str, Any]) -> None:
    tok = lms["tokenizer"]
    ctx, cont = context_and_continuation(tok, "", " Paris")
    assert ctx == [tok.eos_token_id] and cont == tok(" Paris")["input_ids"]

