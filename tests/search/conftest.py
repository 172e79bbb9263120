"""Fixtures of the search tests: a teacher whose every layer matters, and a searched tiny config."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.search_configs import write_search_config
from support.tiny_models import make_tiny_bert


@pytest.fixture(scope="session")
def deep_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 layers, hidden 32, weights drawn wide (std 0.2) so that every layer changes the output: dropping one costs
    fidelity (untrained, a 2-layer cut keeps ~0.25 cosine), and distillation wins it back."""
    return make_tiny_bert(tmp_path_factory.mktemp("deep") / "bert", layers=3, initializer_range=0.2)


@pytest.fixture
def search_config(tmp_path: Path, deep_teacher: Path, tiny_texts: list[str]) -> Path:
    return write_search_config(tmp_path, deep_teacher, tiny_texts)
