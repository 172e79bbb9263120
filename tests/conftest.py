"""Shared fixtures: a tiny BERT (2 layers, hidden 32) with a real WordPiece tokenizer, built in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = (
    "a the man woman dog cat is are was plays playing runs running eats eating on in at with and of to "
    "ball guitar piano park street house car red blue green big small young old happy sad food water "
    "python function returns value list string file module class object error data model"
).split()


def make_tiny_bert(out: Path, layers: int = 2, hidden: int = 32, heads: int = 2, seed: int = 0,
                   **config: float) -> Path:
    """Save a randomly initialised BERT model folder with tokenizer and mean-pooling config.

    ``config``: other BertConfig fields (e.g. ``hidden_dropout_prob=0.0``).
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]]
    vocab += list("abcdefghijklmnopqrstuvwxyz.,!?")
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(out / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=hidden * 2, max_position_embeddings=512, **config,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (out / "modules.json").write_text(
        '[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},'
        '{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},'
        '{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]'
    )
    return out


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BERT sentence-embedding model folder (shared, do not modify)."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def tiny_texts() -> list[str]:
    import random

    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS[:40]) for _ in range(rng.randint(3, 20))) for _ in range(64)]
