"""Decoder students by depth (block influence, held-out KL, uniform) and prompts from files, on the tiny LM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support.tiny_lm import make_tiny_lm

from edgedistill.config.lm import PromptSource
from edgedistill.errors import ConfigError, InputError
from edgedistill.lm.layer_drop import block_influence, calibration_batch, choose_decoder_layers, keep_layers
from edgedistill.lm.load import load_causal_lm
from edgedistill.lm.prompts import load_prompts, prompt_text
from edgedistill.lm.students import uniform_layers

TEXTS = ["the man is playing a guitar on the street", "a dog runs in the park with a red ball",
         "python function returns value list"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return load_causal_lm(make_tiny_lm(tmp_path_factory.mktemp("lm") / "m"))


def test_block_influence_is_one_minus_cosine_of_each_layers_input_and_output(lm: tuple) -> None:
    model, tokenizer = lm
    batch = calibration_batch(tokenizer, TEXTS, 32)
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states  # embeddings, then after each layer
    mask = batch["attention_mask"].bool()
    expected = [float(1 - torch.cosine_similarity(states[i], states[i + 1], dim=-1)[mask].mean()) for i in range(3)]
    assert block_influence(model, batch)[:3] == pytest.approx(expected, abs=1e-6)  # the last state is normed


def test_layer_choices_keep_the_count_and_drop_the_least_influential(lm: tuple) -> None:
    model, tokenizer = lm
    layers, scores = choose_decoder_layers(model, tokenizer, "block-influence", 2, TEXTS, 32)
    influence = scores["block_influence"]
    assert layers == sorted(sorted(range(4), key=lambda i: -influence[i])[:2])
    kept, found = choose_decoder_layers(model, tokenizer, "kl", 3, TEXTS, 32)
    assert len(kept) == 3 and len(found["kl_dropped"]) == 1
    # the greedy removal's KL is the smallest of the single-layer removals, each measured on a copy
    trials = []
    for drop in range(4):
        student = keep_layers(model, [i for i in range(4) if i != drop])
        batch = calibration_batch(tokenizer, TEXTS, 32)
        with torch.no_grad():
            ref = torch.log_softmax(model(**batch).logits, -1)
            got = torch.log_softmax(student(**batch).logits, -1)
        trials.append(float((ref.exp() * (ref - got)).sum(-1)[batch["attention_mask"].bool()].mean()))
    assert found["kl_dropped"] == [min(range(4), key=lambda i: trials[i])]
    assert found["kl_after_each"][0] == pytest.approx(min(trials), rel=1e-4)
    assert len(model.model.layers) == 4  # the teacher is untouched
    assert uniform_layers(30, 20)[-1] == 29 and len(uniform_layers(30, 20)) == 20


def test_layer_choice_errors(lm: tuple) -> None:
    model, tokenizer = lm
    with pytest.raises(ConfigError, match="between 1 and 3"):
        choose_decoder_layers(model, tokenizer, "block-influence", 4, TEXTS, 32)
    with pytest.raises(ConfigError, match="layer 7 does not exist"):
        keep_layers(model, [0, 7])


def test_prompts_from_jsonl_messages_and_csv(tmp_path: Path, lm: tuple) -> None:
    _, tokenizer = lm
    (tmp_path / "p.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi dog"}]}) + "\n"
                                      + json.dumps({"messages": [{"role": "user", "content": "hi dog"}]}) + "\n")
    (tmp_path / "p.csv").write_text("q\nwhat is a cat\n\nwhere is the park\n")
    chat = load_prompts(PromptSource(source="jsonl", path=tmp_path / "p.jsonl", column="messages"))
    assert len(chat) == 1  # duplicates dropped
    assert prompt_text(tokenizer, chat[0]) == "<|im_start|>user\nhi dog<|im_end|>\n<|im_start|>assistant\n"
    raw = load_prompts(PromptSource(source="csv", path=tmp_path / "p.csv", column="q", chat=False))
    assert [p.prompt for p in raw] == ["what is a cat", "where is the park"]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(InputError, match="bad.jsonl:1: each message needs a role"):
        load_prompts(PromptSource(source="jsonl", path=tmp_path / "bad.jsonl", column="messages"))
