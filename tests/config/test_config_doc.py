"""README's config reference is generated from the config models and must match them."""

from __future__ import annotations

from pathlib import Path

from edgedistill.config_doc import config_reference


def test_readme_config_reference_is_current():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert config_reference() in readme, "run: python -m edgedistill.config_doc --write README.md"


def test_reference_lists_every_nested_key():
    text = config_reference()
    for key in ("`distill.losses[].name`", "`export.dynamic.sequence.max`", "`bench.shapes[].seq`"):
        assert key in text
