"""The search space: architectures cut from the teacher, and the spaces that do not fit it."""

from __future__ import annotations

import pytest

from edgedistill.config import SearchSpace
from edgedistill.errors import ConfigError
from edgedistill.search.space import Architecture, TeacherShape, architectures, candidates

MINILM = TeacherShape(layers=6, hidden_size=384, heads=12, head_size=32, intermediate_size=1536)


def test_widths_keep_the_teachers_head_size_and_ffn_ratio() -> None:
    space = SearchSpace(layers=[1, 2, 3], hidden_size=[384, 256], precision=["fp32", "int8"])
    found = architectures(space, MINILM)
    assert len(found) == 6
    assert Architecture(2, 256, 8, 1024) in found and Architecture(3, 384, 12, 1536) in found
    assert len(candidates(space, MINILM)) == 12
    assert [c.name for c in candidates(space, MINILM)][:2] == ["L1-H384-A12-F1536-fp32", "L1-H384-A12-F1536-int8"]


def test_the_spec_names_only_what_differs_from_the_teacher() -> None:
    assert Architecture(2, 384, 12, 1536).from_teacher(MINILM).model_dump(exclude_defaults=True) == {
        "layers": "search", "num_layers": 2}
    narrow = Architecture((0, 5), 256, 8, 1024).from_teacher(MINILM).model_dump(exclude_defaults=True)
    assert narrow == {"layers": [0, 5], "heads": 8, "intermediate_size": 1024, "hidden_size": 256}
    assert Architecture(2, 384, 12, 1536).from_teacher(MINILM, layers=[0, 5]).layers == [0, 5]


SMOLLM2 = TeacherShape(layers=30, hidden_size=576, heads=9, head_size=64, intermediate_size=1536, kv_heads=3)


def test_a_decoder_keeps_its_heads_when_narrowed_and_cuts_them_in_kv_groups() -> None:
    space = SearchSpace(layers=[20], hidden_size=[576, 480, 384, 369], precision=["int4"])
    assert architectures(space, SMOLLM2) == [Architecture(20, 576, 9, 1536), Architecture(20, 480, 6, 1280),
                                             Architecture(20, 384, 6, 1024), Architecture(20, 369, 9, 984)]
    spec = Architecture(20, 384, 6, 1024).from_teacher(SMOLLM2, layers=list(range(20)))
    assert spec.kv_groups == 2 and spec.heads is None and spec.hidden_size == 384  # 6 query heads = 2 groups of 3
    with pytest.raises(ConfigError, match="4 heads would split a KV group; .* give a multiple of 3"):
        architectures(SearchSpace(layers=[20], heads=[6, 4]), SMOLLM2)


def test_a_decoder_hidden_size_no_head_count_divides_names_sizes_that_work() -> None:
    """transformers' Llama config requires hidden_size % num_attention_heads == 0, head_dim explicit or not."""
    with pytest.raises(ConfigError, match=r"hidden_size: 448 is divided by no count of query heads in "
                                          r"whole KV groups \(3 per KV head, at most 9\).* try 447 or 450"):
        architectures(SearchSpace(layers=[20], hidden_size=[448]), SMOLLM2)
    # the sizes offered suit every count listed: multiples of both 6 and 9
    with pytest.raises(ConfigError, match=r"hidden_size: 480 is not a multiple of 9 heads.* try 468 or 486"):
        architectures(SearchSpace(layers=[20], hidden_size=[480], heads=[6, 9]), SMOLLM2)


def test_the_decoder_shape_is_read_from_the_causal_lm(tmp_path) -> None:
    from support.tiny_lm import make_tiny_lm
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(make_tiny_lm(tmp_path / "lm", hidden=64))
    assert TeacherShape.of_decoder(model) == TeacherShape(4, 64, 4, 16, 64, kv_heads=2)


def test_explicit_heads_and_ffn_multiply_out() -> None:
    space = SearchSpace(layers=[[0, 5]], heads=[12, 6], intermediate_size=[1536, 768])
    assert len(architectures(space, MINILM)) == 4
    assert Architecture((0, 5), 384, 12, 1536).name == "L0+5-H384-A12-F1536"


@pytest.mark.parametrize(("space", "says"), [
    ({"layers": [2, 7]}, "7 layers asked for, but the teacher has 6"),
    ({"layers": [[0, 6]]}, "layer 6 does not exist; the teacher's layers are 0-5"),
    ({"layers": [2], "hidden_size": [512]}, "hidden_size: 512 is wider than the teacher's 384"),
    ({"layers": [2], "heads": [16]}, "heads: 16 is wider than the teacher's 12"),
])
def test_a_space_beyond_the_teacher_is_a_config_error(space: dict, says: str) -> None:
    with pytest.raises(ConfigError, match="student.search.space") as err:
        architectures(SearchSpace.model_validate(space), MINILM)
    assert says in str(err.value)


def test_explicit_layers_must_increase() -> None:
    with pytest.raises(ValueError, match="distinct and increasing"):
        SearchSpace.model_validate({"layers": [[5, 0]]})
