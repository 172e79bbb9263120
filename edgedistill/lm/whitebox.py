"""A causal LM in this process as teacher (a Hugging Face folder or a GGUF file): it answers prompts with
transformers' ``generate``, and the logits it computes while generating give its top-k next-token distribution at
every response position for free. Real text is scored by one forward pass. It shares the student's tokenizer, so
its answers become :class:`SequenceTargets` directly (exact token-level targets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgedistill.artifacts import sha256_path
from edgedistill.lm.generate import stop_ids
from edgedistill.lm.load import load_causal_lm
from edgedistill.lm.prompts import prompt_text
from edgedistill.lm.records import Generation, SequenceTargets
from edgedistill.lm.teacher_base import GenerationSettings, LMTeacher, Prompt


def topk_rows(logits: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-k log-softmax of (N, V) logits: ids (N, k) int32 and log-probabilities (N, k) float32."""
    values, ids = torch.log_softmax(logits.float(), dim=-1).topk(k, dim=-1)
    return ids.to(torch.int32).numpy(), values.numpy()


class WhiteBoxLM(LMTeacher):
    name = "huggingface"
    white_box = True
    logprobs = True

    def __init__(self, model: Any, tokenizer: Any, path: Path | None = None):
        self.model, self.tokenizer, self.path = model, tokenizer, path
        self.stops = stop_ids(tokenizer, model)

    @classmethod
    def load(cls, path: Path, trust_remote_code: bool = False) -> WhiteBoxLM:
        model, tokenizer = load_causal_lm(path, "teacher.path", trust_remote_code)
        return cls(model, tokenizer, path)

    def identity(self) -> dict[str, Any]:
        weights = sha256_path(self.path) if self.path else "in-memory"
        return {"source": "huggingface", "task": "text-generation", "weights": weights}

    def encode_left(self, texts: list[str]) -> dict[str, torch.Tensor]:
        self.tokenizer.padding_side = "left"
        return dict(self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False))

    @torch.no_grad()
    def sample(self, texts: list[str], max_new_tokens: int, temperature: float, top_p: float,
               seed: int) -> tuple[list[list[int]], list[bool], list[torch.Tensor] | None]:
        """Continue each text: the new token ids of each row (through its stop token, if it stopped), whether it
        stopped, and the raw logits per step ((B, V) each; None when not kept)."""
        enc = self.encode_left(texts)
        torch.manual_seed(seed)
        sampled = temperature > 0
        out = self.model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=sampled, temperature=temperature if sampled else None,
            top_p=top_p if sampled else None, top_k=None, output_logits=True, return_dict_in_generate=True,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=sorted(self.stops))
        new = out.sequences[:, enc["input_ids"].shape[1]:].tolist()
        rows, finished = [], []
        for ids in new:
            end = next((i for i, t in enumerate(ids) if t in self.stops), None)
            rows.append(ids if end is None else ids[: end + 1])
            finished.append(end is not None)
        return rows, finished, list(out.logits)

    def complete(self, texts: list[str], max_new_tokens: int, temperature: float, top_p: float,
                 seed: int = 0, batch_size: int = 16) -> list[tuple[str, bool]]:
        """Raw continuations of ``texts`` (no chat template): ``(text, stopped)`` each, stop token left out."""
        done: list[tuple[str, bool]] = []
        for start in range(0, len(texts), batch_size):
            rows, finished, _ = self.sample(texts[start: start + batch_size], max_new_tokens, temperature, top_p,
                                            seed + start)
            done += [(self.tokenizer.decode(r, skip_special_tokens=True), f) for r, f in zip(rows, finished)]
        return done

    def answer_batch(self, prompts: list[Prompt], settings: GenerationSettings,
                     seed: int) -> list[tuple[Generation, SequenceTargets]]:
        texts = [prompt_text(self.tokenizer, p) for p in prompts]
        rows, finished, logits = self.sample(texts, settings.max_new_tokens, settings.temperature, settings.top_p,
                                             seed)
        assert logits is not None
        answers = []
        for b, (prompt, text, ids, stopped) in enumerate(zip(prompts, texts, rows, finished)):
            prompt_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            targets = SequenceTargets(np.asarray(prompt_ids + ids, dtype=np.int64), len(prompt_ids))
            if settings.top_logprobs and ids:
                targets.top_ids, targets.top_logprobs = topk_rows(torch.stack([s[b] for s in logits[: len(ids)]]),
                                                                  settings.top_logprobs)
                targets.aligned = np.ones(len(ids), dtype=bool)
            response = self.tokenizer.decode(ids, skip_special_tokens=True)
            usage = {"prompt_tokens": len(prompt_ids), "completion_tokens": len(ids)}
            answers.append((Generation(prompt.prompt, prompt.messages, response, None,
                                       "stop" if stopped else "length", usage), targets))
        return answers

    def answer(self, prompts: list[Prompt], settings: GenerationSettings,
               batch_size: int = 16) -> Iterator[tuple[int, Generation, SequenceTargets]]:
        """Answer every prompt, batched by prompt length (less padding); yields in the order answered."""
        lengths = [len(prompt_text(self.tokenizer, p)) for p in prompts]
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            chunk = [int(i) for i in order[start: start + batch_size]]
            answered = self.answer_batch([prompts[i] for i in chunk], settings, settings.seed + start)
            for i, (generation, targets) in zip(chunk, answered):
                yield i, generation, targets

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> Iterator[tuple[int, Generation]]:
        for i, generation, _ in self.answer(prompts, settings):
            yield i, generation

    @torch.no_grad()
    def score_texts(self, texts: list[str], max_length: int, k: int) -> list[SequenceTargets]:
        """Real text as targets: every token after the first is a 'response' token, with the teacher's top-k."""
        targets = []
        for text in texts:  # one row per text; a one-token text has no position to score
            ids = self.tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
            ids = ids or [self.tokenizer.eos_token_id]
            logits = self.model(input_ids=torch.tensor([ids])).logits[0, :-1]
            top_ids, top_lp = topk_rows(logits, k)
            targets.append(SequenceTargets(np.asarray(ids, dtype=np.int64), 1, top_ids, top_lp,
                                           np.ones(len(ids) - 1, dtype=bool)))
        return targets
