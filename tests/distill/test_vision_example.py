"""The vision example (ViT teacher → CNN student on the bundled 8x8 digits), reduced to a few epochs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "vision_digits.py"


def test_digits_student_learns_from_teacher_logits():
    spec = importlib.util.spec_from_file_location("vision_digits", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(teacher_epochs=6, student_steps=100, seed=0)
    assert result["student_params"] < result["teacher_params"] / 3
    assert result["student_accuracy"] >= 0.85
