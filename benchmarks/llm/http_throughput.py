"""Labelling throughput of the generative HTTP teacher: concurrency 8 vs 1 against a local OpenAI-compatible server
that adds 20 ms to every request (a tiny random LM answers, with top-20 logprobs, through the real client: probe,
retries, parsing of ``logprobs.content[]``, usage accounting).

Run: .venv/bin/python benchmarks/llm/http_throughput.py  (target: ≥ 6× with concurrency 8)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # tests/support: the LM server, tiny LM
from options import add_out, recorded, save_results  # noqa: E402
from support.openai_lm_server import LMServerState, ServedModel, lm_server  # noqa: E402
from support.tiny_lm import make_tiny_lm  # noqa: E402

from edgedistill.config.http_lm import HttpLMConfig  # noqa: E402
from edgedistill.lm.http_lm import HttpLM  # noqa: E402
from edgedistill.lm.teacher_base import GenerationSettings, Prompt  # noqa: E402

PROMPTS = [Prompt(messages=[{"role": "user", "content": f"tell me about the dog number {i}"}]) for i in range(96)]
SETTINGS = GenerationSettings(max_new_tokens=8, top_logprobs=20)


def throughput(url: str, concurrency: int) -> float:
    teacher = HttpLM(HttpLMConfig(url=url, model="tiny", concurrency=concurrency))
    start = time.perf_counter()
    answered = sum(1 for _ in teacher.generate(PROMPTS, SETTINGS))
    assert answered == len(PROMPTS)
    return answered / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added server latency per request")
    add_out(parser, Path(__file__).parent, "http-throughput")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = LMServerState(model=ServedModel(make_tiny_lm(Path(tmp) / "lm")), latency_s=args.latency_ms / 1000)
        with lm_server(state) as url:
            throughput(url, 1)  # warm-up: the probe, the model's first forward
            one, eight = throughput(url, 1), throughput(url, 8)
    print(f"{len(PROMPTS)} chat requests, 8 new tokens each with top-20 logprobs, server latency {args.latency_ms} ms")
    print(f"concurrency 1: {one:7.1f} answers/s")
    print(f"concurrency 8: {eight:7.1f} answers/s")
    print(f"speed-up: {eight / one:.2f}x (target >= 6x)")
    save_results(args, "llm-http-throughput", {"options": recorded(args), "answers_per_s": {"1": one, "8": eight},
                                                "speedup": eight / one})


if __name__ == "__main__":
    main()
