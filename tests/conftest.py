"""Shared fixtures: a tiny BERT (2 layers, hidden 32) with a real WordPiece tokenizer, built in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tiny_models import WORDS, make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BERT sentence-embedding model folder (shared, do not modify)."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def tiny_texts() -> list[str]:
    import random

    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS[:40]) for _ in range(rng.randint(3, 20))) for _ in range(64)]
