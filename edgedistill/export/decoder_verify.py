"""Proving an exported decoder against torch, the two ways a user would notice a difference:

- logits: the prefill of a left-padded batch (every real position; one row at a time for a graph that takes no
  position ids), then 8 decode steps through the cache, both fed the same tokens (torch's greedy choice), compared
  as :mod:`edgedistill.verification` compares any output;
- greedy generation: 32 new tokens from each of 8 prompts, token for token against torch's ``generate``. A
  difference names the prompt, the first diverging position and torch's logit margin there (top-1 minus the
  token the export chose: a margin near 0 is a near-tie that float rounding decides).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgedistill import verification
from edgedistill.config import ExportConfig, FuseConfig
from edgedistill.lm.decoder_io import position_ids
from edgedistill.lm.decoders import Decoder, TorchDecoder
from edgedistill.lm.generate import generate_ids, left_padded, steps, stop_ids
from edgedistill.lm.sampling import Sampling

DECODE_STEPS = 8
GREEDY_TOKENS = 32
PROMPTS = [
    "What is the capital of France?", "Write a haiku about the sea.", "Explain what a hash table is.",
    "Give me three tips for a job interview.", "How do plants make food?", "Translate 'good morning' into Spanish.",
    "What is 12 times 7?", "Write a Python function that reverses a string.",
]


def prompt_ids(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    """Token ids of ``prompts``, through the chat template when the tokenizer has one."""
    if getattr(tokenizer, "chat_template", None):
        return [list(tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                                   tokenize=True, return_dict=False)) for p in prompts]
    return [list(tokenizer(p)["input_ids"]) for p in prompts]


def compare_logits(ref: Decoder, got: Decoder, prompts: list[list[int]], pad_id: int, atol: float,
                   min_cosine: float) -> list[dict[str, Any]]:
    """Rows of the prefill (real positions) and of every decode step of a left-padded batch."""
    ids, mask = left_padded(prompts, pad_id)
    positions = position_ids(mask, ids.shape[1])
    want, _ = ref.forward(ids, mask, positions, ref.start(len(prompts)))
    have, _ = got.forward(ids, mask, positions, got.start(len(prompts)))
    real = mask.astype(bool)
    rows = [row("prefill", f"{ids.shape[0]}x{ids.shape[1]}", want[real], have[real], atol, min_cosine)]
    forced = [s.tokens for s in steps(ref, prompts, DECODE_STEPS, Sampling(), set(), pad_id)]
    pairs = zip(steps(ref, prompts, DECODE_STEPS, Sampling(), set(), pad_id, forced=forced.__getitem__),
                steps(got, prompts, DECODE_STEPS, Sampling(), set(), pad_id, forced=forced.__getitem__), strict=True)
    for i, (a, b) in enumerate(pairs):
        rows.append(row("decode", f"{ids.shape[0]}x1 step {i}", a.logits, b.logits, atol, min_cosine))
    return rows


def row(kind: str, shape: str, ref: np.ndarray, got: np.ndarray, atol: float, min_cosine: float) -> dict[str, Any]:
    """A verification row of logits; the tolerance scales with the logits' largest magnitude."""
    return verification.result_row(f"logits ({kind})", shape, ref, got, atol * max(1.0, float(np.abs(ref).max())),
                                   min_cosine)


def torch_greedy(model: Any, prompt: list[int], new_tokens: int, stops: set[int]) -> tuple[list[int], np.ndarray]:
    """torch's ``generate`` (greedy): the new tokens and the logits each was chosen from (T, V)."""
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=new_tokens, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, eos_token_id=sorted(stops) or None,
                             pad_token_id=model.config.pad_token_id or 0)
    tokens = out.sequences[0, len(prompt):].tolist()
    return tokens, torch.stack(out.logits)[:, 0].float().numpy()


def decoder_greedy(decoder: Decoder, prompt: list[int], new_tokens: int, stops: set[int],
                   pad_id: int) -> tuple[list[int], np.ndarray]:
    """Greedy answer of another decoder (an unfused graph, for a fused one): new tokens and their logits (T, V)."""
    made = list(steps(decoder, [prompt], new_tokens, Sampling(), stops, pad_id))
    return [int(s.tokens[0]) for s in made], np.stack([s.logits[0] for s in made])


def compare_greedy(reference: Any, got: Decoder, prompts: list[list[int]], stops: set[int],
                   pad_id: int) -> dict[str, Any]:
    """Greedy answers of ``got`` against ``reference`` token for token: torch's ``generate`` on a torch model, or
    the same loop on a reference :class:`Decoder`."""
    identical, divergences = 0, []
    for n, prompt in enumerate(prompts):
        want, logits = (decoder_greedy(reference, prompt, GREEDY_TOKENS, stops, pad_id)
                        if isinstance(reference, Decoder) else torch_greedy(reference, prompt, GREEDY_TOKENS, stops))
        have = generate_ids(got, [prompt], GREEDY_TOKENS, Sampling(), stops, pad_id)[0]
        first = next((i for i, (a, b) in enumerate(zip(want, have, strict=False)) if a != b),
                     None if len(want) == len(have) else min(len(want), len(have)))
        if first is None:
            identical += 1
            continue
        margin = float(logits[first].max() - logits[first][have[first]]) if first < len(have) else None
        divergences.append({"prompt": n, "position": first, "torch_token": want[first] if first < len(want) else None,
                            "export_token": have[first] if first < len(have) else None, "logit_margin": margin})
    return {"prompts": len(prompts), "new_tokens": GREEDY_TOKENS, "identical": identical,
            "divergences": divergences, "passed": not divergences}


def verify_decoder(model: Any, tokenizer: Any, got: Decoder, cfg: ExportConfig | FuseConfig,
                   prompts: list[str] | None = None) -> dict[str, Any]:
    """The verification report of ``got`` against ``model``: the torch model (an export), or the unfused
    :class:`Decoder` (a fusion); see the module doc."""
    ids = prompt_ids(tokenizer, prompts or PROMPTS)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    is_decoder = isinstance(model, Decoder)
    stops = stop_ids(tokenizer, None if is_decoder else model)
    ref = model if is_decoder else TorchDecoder(model)
    batches = [ids[:2]] if got.left_padding and ref.left_padding else [[prompt] for prompt in ids[:2]]
    rows = [r for batch in batches for r in compare_logits(ref, got, batch, pad_id, cfg.atol, cfg.min_cosine)]
    report = verification.report(rows, cfg.atol, cfg.min_cosine, "unfused ONNX decoder" if is_decoder else "torch")
    greedy = compare_greedy(model, got, ids, stops, pad_id)
    return {**report, "greedy": greedy, "passed": report["passed"] and greedy["passed"]}


def describe_greedy(greedy: dict[str, Any]) -> str:
    """One line on the first greedy divergence, for the error."""
    d = greedy["divergences"][0]
    margin = f"{d['logit_margin']:.4g}" if d["logit_margin"] is not None else "n/a"
    return (f"greedy answers differ from torch's generate in {len(greedy['divergences'])} of {greedy['prompts']} "
            f"prompts; first: prompt {d['prompt']} at new token {d['position']} (torch {d['torch_token']}, export "
            f"{d['export_token']}, torch's logit margin {margin})")
