"""Token rates of a language model in llama-bench's convention, one way for every runtime:

- ``pp`` (prompt processing): a prefill of N tokens into an empty cache, tokens/s;
- ``tg`` (text generation): N single-token steps from an empty cache, tokens/s, with every step's latency kept
  (decode p50/p99);
- time to first token: the prefill of a prompt and the choice of its first token.

A :class:`TokenRunner` wraps one runtime: our decoders (torch, ONNX Runtime: :mod:`edgedistill.lm.decoders`),
llama.cpp through ``llama-cpp-python``, and onnxruntime-genai. Each step of each runtime computes the logits of the
last position only where the runtime allows it, as llama-bench does.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.lm.decoder_io import position_ids
from edgedistill.lm.decoders import Decoder


class TokenRunner(ABC):
    """One runtime holding one model (see the module doc)."""

    @abstractmethod
    def prefill(self, tokens: list[int]) -> np.ndarray:
        """Prefill ``tokens`` into an empty cache; the last position's logits (V,)."""

    @abstractmethod
    def decode(self, tokens: list[int]) -> list[float]:
        """Feed ``tokens`` one at a time from an empty cache; each step's seconds."""

    def first_token(self, tokens: list[int]) -> float:
        """Seconds to the first token of an answer to ``tokens``."""
        start = time.perf_counter()
        int(np.argmax(self.prefill(tokens)))
        return time.perf_counter() - start


class DecoderRunner(TokenRunner):
    """Any :class:`~edgedistill.lm.decoders.Decoder`: the exported ONNX decoder (IO-bound) or the torch model."""

    def __init__(self, decoder: Decoder):
        self.decoder = decoder

    def prefill(self, tokens: list[int]) -> np.ndarray:
        ids = np.array([tokens], dtype=np.int64)
        mask = np.ones_like(ids)
        logits, _ = self.decoder.forward(ids, mask, position_ids(mask, len(tokens)), self.decoder.start(1),
                                         last_only=True)
        return logits[0, -1]

    def decode(self, tokens: list[int]) -> list[float]:
        state, times = self.decoder.start(1), []
        for n, token in enumerate(tokens, start=1):
            start = time.perf_counter()
            mask = np.ones((1, n), dtype=np.int64)
            logits, state = self.decoder.forward(np.array([[token]], dtype=np.int64), mask, position_ids(mask, 1),
                                                 state, last_only=True)
            int(np.argmax(logits[0, -1]))
            times.append(time.perf_counter() - start)
        return times


class LlamaCppRunner(TokenRunner):
    """llama.cpp through ``llama-cpp-python`` on a GGUF file."""

    def __init__(self, path: Path, threads: int, context: int):
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(path), n_threads=threads, n_threads_batch=threads, n_ctx=context,
                         n_batch=context, n_ubatch=min(context, 512), logits_all=False, verbose=False)

    def prefill(self, tokens: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(tokens)
        return np.asarray(self.llm.scores[len(tokens) - 1])

    def decode(self, tokens: list[int]) -> list[float]:
        self.llm.reset()
        times = []
        for token in tokens:
            start = time.perf_counter()
            self.llm.eval([token])
            int(np.argmax(self.llm.scores[self.llm.n_tokens - 1]))
            times.append(time.perf_counter() - start)
        return times


class GenaiRunner(TokenRunner):
    """onnxruntime-genai on a model folder (its own builder's, or ours), ``threads`` intra-op threads."""

    def __init__(self, folder: Path, threads: int):
        import json

        import onnxruntime_genai as og

        self.og = og
        config = og.Config(str(folder))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads,
                                                                              "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)

    def generator(self, length: int) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=length + 1, do_sample=False)
        return self.og.Generator(self.model, params)

    def prefill(self, tokens: list[int]) -> np.ndarray:
        generator = self.generator(len(tokens))
        generator.append_tokens(np.array([tokens], dtype=np.int32))
        return np.asarray(generator.get_logits())[0, -1]

    def decode(self, tokens: list[int]) -> list[float]:
        generator = self.generator(len(tokens))
        start = time.perf_counter()
        generator.append_tokens(np.array([tokens[:1]], dtype=np.int32))
        times = [time.perf_counter() - start]
        for _ in tokens[1:]:  # the runtime feeds back its own choice; the rate is what is measured
            start = time.perf_counter()
            generator.generate_next_token()
            times.append(time.perf_counter() - start)
        return times


def rates(tokens: int, seconds: list[float]) -> dict[str, Any]:
    """tokens/s of each repetition: mean and sample sd, as llama-bench prints them."""
    values = np.array([tokens / s for s in seconds])
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "runs": [float(v) for v in values]}


def latency(steps: list[float]) -> dict[str, float]:
    """Decode latency per token: p50 and p99 in ms over every step of every repetition."""
    ms = np.array(steps) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
