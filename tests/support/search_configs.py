"""A searched tiny pipeline: the shared tiny config with student.search in place of its fixed student."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.configs import tiny_config


def search_section(**overrides: Any) -> dict[str, Any]:
    """A search over 1-3 layers x hidden 32/16 x fp32/int8 of the 3-layer hidden-32 teacher."""
    section: dict[str, Any] = {"min_quality": 0.5, "space": {"layers": [1, 2, 3],
                                                                                       "hidden_size": [32, 16],
                                                             "precision": ["fp32", "int8"]},
                               "budget_minutes": 30, "proxy_steps": 2, "eta": 2, "heldout": 8}
    return section | overrides


def write_search_config(tmp_path: Path, tiny_bert: Path, tiny_texts: list[str], **overrides: Any) -> Path:
    path = tiny_config(tmp_path, tiny_bert, tiny_texts)
    cfg = yaml.safe_load(path.read_text())
    cfg["student"] = {"search": search_section(**overrides)}
    del cfg["data"]["eval"]  # its made-up scores mean nothing: students are chosen by fidelity to the teacher
    cfg["distill"].update(steps=24, lr=3.0e-3)
    cfg["bench"].update(rounds=2, iterations=4)
    path.write_text(yaml.safe_dump(cfg))
    return path
