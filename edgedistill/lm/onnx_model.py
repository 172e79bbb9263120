"""An exported decoder seen through the few calls the LM metrics make of a Hugging Face causal LM —
``model(input_ids=…, attention_mask=…).logits``, ``model.generate(…)`` (greedy) and ``model.parameters()`` — so
every artifact of a text-generation run (torch, ONNX fp32, INT8, INT4) is measured by the same metric code
(:mod:`edgedistill.lm.metrics`). Generation runs the one loop of :mod:`edgedistill.lm.generate`."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from edgedistill.lm.decoder_io import position_ids
from edgedistill.lm.decoders import Decoder
from edgedistill.lm.generate import generate_ids
from edgedistill.lm.sampling import Sampling


class DecoderAsCausalLM:
    """``decoder`` with the calling convention of a transformers causal LM (greedy generation only)."""

    def __init__(self, decoder: Decoder, stops: set[int]):
        self.decoder, self.stops = decoder, stops

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return iter(())  # runs on the CPU

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> SimpleNamespace:
        ids, mask = input_ids.numpy().astype(np.int64), attention_mask.numpy().astype(np.int64)
        logits, _ = self.decoder.forward(ids, mask, position_ids(mask, ids.shape[1]), self.decoder.start(len(ids)))
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                 pad_token_id: int, do_sample: bool = False, **_: Any) -> torch.Tensor:
        """Greedy answers of left-padded ``input_ids``, (B, S + new) as ``generate`` returns them."""
        assert not do_sample, "only greedy generation is measured"
        mask = attention_mask.numpy().astype(bool)
        prompts = [row[m].tolist() for row, m in zip(input_ids.numpy(), mask, strict=True)]
        answers = generate_ids(self.decoder, prompts, max_new_tokens, Sampling(), self.stops, pad_token_id)
        width = max(len(a) for a in answers)
        new = torch.full((len(prompts), width), pad_token_id, dtype=torch.int64)
        for row, answer in enumerate(answers):
            new[row, : len(answer)] = torch.tensor(answer)
        return torch.cat([input_ids, new], dim=1)
