"""A text-generation run end to end on a tiny random causal LM: distill → export → fuse → quantize (weight-only INT4) →
evaluate every artifact → report (bench said to be skipped; other tests stop after distill with
export: null), the teacher's answers cached and reused, and the bad inputs of the Task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from support.cli import one_line_error
from support.tiny_lm import CORPUS, make_tiny_lm
from support.tiny_models import make_tiny_bert
from typer.testing import CliRunner

from edgedistill.cli import app
from edgedistill.config import load_config

WORDS = "dog cat man woman ball car house park guitar piano".split()


def write_config(root: Path, teacher_dir: Path, **overrides: object) -> Path:
    (root / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"tell me about the {w} please"}) + "\n"
                                                for w in WORDS))
    (root / "text.txt").write_text("\n".join(CORPUS * 2))
    cfg: dict = {
        "name": "tiny-lm",
        "teacher": {"source": "huggingface", "path": str(teacher_dir), "task": "text-generation",
                    "generation": {"max_new_tokens": 6, "top_logprobs": 5, "batch_size": 4}},
        "student": {"from_teacher": {"layers": "block-influence", "num_layers": 2}},
        "data": {"train": [{"source": "text-lines", "path": "text.txt"}], "holdout": 4,
                 "prompts": {"source": "jsonl", "path": "prompts.jsonl"}, "heldout_prompts": 2},
        "distill": {"losses": [{"name": "sparse_kl"}, {"name": "forward_kl", "weight": 0.5},
                               {"name": "seqkd", "weight": 0.1}], "steps": 3, "batch_size": 4, "lr": 1e-3},
        "export": None,
    }
    for key, value in overrides.items():
        section, _, field = key.partition(".")
        if field:
            cfg[section][field] = value
        else:
            cfg[section] = value
    path = root / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "teacher", hidden=64)  # head size 16, as GQA's kernels take


def test_run_distills_evaluates_and_reports(tmp_path: Path, teacher: Path) -> None:
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps({"question": f"where is the {w}?", "choices": [
        "in the park", "on the car", "a dog"], "answer": i % 3}) + "\n" for i, w in enumerate(WORDS)))
    cfg = write_config(tmp_path, teacher, export={})
    data = yaml.safe_load(cfg.read_text())
    data["data"]["mc"] = {"path": "mc.jsonl"}
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "skips bench" in result.output
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())
    assert metrics["task"] == "text-generation"
    assert metrics["order"] == ["teacher", "student-untrained", "student", "student-onnx", "student-fused",
                                "student-int4-rtn-b32"]
    rows = metrics["artifacts"]
    assert rows["student-onnx"]["backend"] == "onnxruntime"
    for name in ("student-onnx", "student-fused"):  # the fp32 exports are the student
        for key in ("top1_agreement", "kl", "perplexity", "exact_match"):
            assert rows[name][key] == pytest.approx(rows["student"][key], rel=1e-3, abs=1e-4)
    fusion = json.loads((out / "fuse" / "fusion.json").read_text())
    assert fusion["passes"][0]["patterns"] == {"rotary_gqa_with_past": 2} and fusion["verification"]["passed"]
    assert rows["student-int4-rtn-b32"]["file_mb"] < rows["student-onnx"]["file_mb"]
    assert (out / "quantize" / "int4-rtn-b32" / "genai_config.json").is_file()
    for name in ("student-untrained", "student", "student-onnx", "student-int4-rtn-b32"):
        row = metrics["artifacts"][name]
        assert {"perplexity", "top1_agreement", "kl", "exact_match", "rouge_l"} <= set(row)
        assert 0.0 <= row["top1_agreement"] <= 1.0 and row["kl"] >= 0.0 and row["perplexity"] > 1.0
    assert "perplexity" in metrics["artifacts"]["teacher"]
    for row in metrics["artifacts"].values():
        assert 0.0 <= row["mc_acc"] <= 1.0 and 0.0 <= row["mc_acc_norm"] <= 1.0
    manifest = json.loads((out / "manifest.json").read_text())["stages"]
    assert set(manifest) >= {"distill", "export", "fuse", "quantize", "evaluate", "report"}
    assert manifest["quantize"]["inputs"]["model"] == manifest["fuse"]["outputs"]["model.onnx"]  # INT4 of the fused
    student = json.loads((out / "distill" / "student" / "config.json").read_text())
    assert student["num_hidden_layers"] == 2
    assert (out / "report" / "report.md").is_file()
    # unchanged config: every stage is skipped, nothing is asked of the teacher again
    again = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out)])
    assert again.exit_code == 0 and "teacher answering" not in again.output
    weight_only_budget_from_the_run(out, tmp_path / "budget")


def weight_only_budget_from_the_run(run: Path, out: Path) -> None:
    """``quantize RUN --mode weight-only --budget-min``: scored on the teacher's answers to training prompts that
    distill kept (not the held-out ones); an ONNX file alone has none, one line."""
    kept = np.load(run / "distill" / "train_targets.npz", allow_pickle=False)
    held = np.load(run / "distill" / "heldout_targets.npz", allow_pickle=False)
    assert not set(map(str, kept.files)) - set(map(str, held.files))  # the same format as the held-out file
    args = ["quantize", str(run), "--out", str(out), "--mode", "weight-only", "--block-size", "32"]
    result = CliRunner().invoke(app, [*args, "--budget-min", "0.5"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "manifest.json").read_text())["stages"]["quantize"]["metrics"]["artifacts"][0]["meta"]
    assert meta["budget"]["metric"] == "top1_kept" and meta["budget"]["float_quality"]["top1_agreement"] > 0
    onnx_file = CliRunner().invoke(app, ["quantize", str(run / "export" / "model.onnx"), *args[2:],
                                         "--budget-min", "0.5", "--force"])
    one_line_error(onnx_file, "give the text-generation run directory")


def test_student_keeps_tied_embeddings_and_cached_targets_match_teacher(tmp_path: Path, teacher: Path) -> None:
    from edgedistill.lm.answers import teacher_answers
    from edgedistill.lm.teacher_base import Prompt
    from edgedistill.lm.whitebox import WhiteBoxLM

    config = load_config(write_config(tmp_path, teacher))
    lm = WhiteBoxLM.load(teacher)
    prompts = [Prompt(messages=[{"role": "user", "content": f"the {w}"}]) for w in WORDS[:5]]
    answers, cache = teacher_answers(config, lm, lm.tokenizer, prompts, tmp_path / "cache", refresh=False)
    assert cache.bytes_per_token() <= 400
    _, targets = answers[0]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.from_numpy(targets.input_ids)[None]).logits[0]
    rows = torch.log_softmax(logits[targets.response_start - 1: -1], dim=-1)
    top = rows.topk(5, dim=-1)
    assert np.array_equal(targets.top_ids, top.indices.numpy())  # teacher forcing reproduces what generate saw
    np.testing.assert_allclose(targets.top_logprobs, top.values.numpy(), atol=2e-3)  # float16 in the cache
    again, _ = teacher_answers(config, lm, lm.tokenizer, prompts, tmp_path / "cache", refresh=False)
    assert [g.response for g, _ in again] == [g.response for g, _ in answers]


def test_on_policy_gkd_steps_train(tmp_path: Path, teacher: Path) -> None:
    cfg = write_config(tmp_path, teacher, **{"distill.losses": [
        {"name": "gkd", "beta": 0.5, "on_policy": 1.0, "max_new_tokens": 4}], "distill.steps": 2})
    result = CliRunner().invoke(app, ["distill", str(cfg), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output


def test_encoder_teacher_for_text_generation_is_one_line(tmp_path: Path) -> None:
    bert = make_tiny_bert(tmp_path / "bert")
    cfg = write_config(tmp_path, bert)
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "run")])
    line = one_line_error(result, "not a causal language model", "bert")
    assert "text-generation" in line
    assert not (tmp_path / "run" / "distill").exists()  # nothing that looks like a result


def test_prompts_file_without_the_field(tmp_path: Path, teacher: Path) -> None:
    cfg = write_config(tmp_path, teacher)
    data = yaml.safe_load(cfg.read_text())
    data["data"]["prompts"]["column"] = "question"
    cfg.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "run")])
    line = one_line_error(result, "no column 'question'")
    assert "prompts.jsonl" in line
    assert not (tmp_path / "run" / "distill").exists()


def test_chat_prompts_need_a_chat_template(tmp_path: Path) -> None:
    plain = make_tiny_lm(tmp_path / "plain", chat_template=False)
    cfg = write_config(tmp_path, plain)
    result = CliRunner().invoke(app, ["distill", str(cfg), "--out", str(tmp_path / "run")])
    line = one_line_error(result, "no chat template", "chat: false")
    assert line.startswith("error:")
    assert not (tmp_path / "run" / "distill").exists()


def test_student_vocabulary_smaller_than_the_tokens(tmp_path: Path, teacher: Path) -> None:
    small = json.loads((teacher / "config.json").read_text()) | {"vocab_size": 50}
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "config.json").write_text(json.dumps(small))
    cfg = write_config(tmp_path, teacher, student={"hf_config": str(tmp_path / "small" / "config.json")})
    result = CliRunner().invoke(app, ["distill", str(cfg), "--out", str(tmp_path / "run")])
    line = one_line_error(result, "vocabulary has 50 rows")
    assert "400 tokens" in line
    assert not (tmp_path / "run" / "distill").exists()


def test_nan_loss_stops_keeps_the_last_checkpoint_and_names_the_step(tmp_path: Path, teacher: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import edgedistill.lm.losses as lm_losses

    calls = {"n": 0}
    real = lm_losses.sparse_kl

    def diverging(*args: object) -> torch.Tensor:  # the loss turns NaN at the third step
        calls["n"] += 1
        value = real(*args)  # type: ignore[arg-type]
        return value * float("nan") if calls["n"] >= 3 else value

    monkeypatch.setattr(lm_losses, "sparse_kl", diverging)
    cfg = write_config(tmp_path, teacher, **{"distill.losses": [{"name": "sparse_kl"}], "distill.steps": 6,
                                             "distill.checkpoint_every": 1})
    result = CliRunner().invoke(app, ["distill", str(cfg), "--out", str(tmp_path / "run")])
    line = one_line_error(result, "diverged", "at step 2", "lower distill.lr")
    assert "checkpoint is kept" in line
    assert (tmp_path / "run" / "distill.partial" / "checkpoint.pt").is_file()
    assert not (tmp_path / "run" / "distill" / "student").exists()  # nothing that looks like a result


def test_magpie_needs_a_teacher_that_finishes_its_prompts(tmp_path: Path, teacher: Path) -> None:
    from edgedistill.lm.magpie import user_turn_prefix
    from edgedistill.lm.whitebox import WhiteBoxLM

    lm = WhiteBoxLM.load(teacher)
    assert user_turn_prefix(lm.tokenizer) == "<|im_start|>user\n"
    cfg = write_config(tmp_path, teacher, **{"data.prompts": {"source": "magpie", "count": 4,
                                                              "max_prompt_tokens": 4}})
    result = CliRunner().invoke(app, ["distill", str(cfg), "--out", str(tmp_path / "run")])
    one_line_error(result, "usable prompts of 4")  # a random model never ends a user turn


def test_config_errors_of_the_task(tmp_path: Path, teacher: Path) -> None:
    from edgedistill.config import parse_config
    from edgedistill.errors import ConfigError

    base = yaml.safe_load(write_config(tmp_path, teacher).read_text())
    wrong_loss = base | {"distill": {"losses": [{"name": "embedding_mse"}]}}
    with pytest.raises(ConfigError, match="does not apply to task text-generation"):
        parse_config(wrong_loss, tmp_path)
    no_prompts = base | {"data": {k: v for k, v in base["data"].items() if k != "prompts"}}
    with pytest.raises(ConfigError, match="needs prompts"):
        parse_config(no_prompts, tmp_path)
    black_box = base | {"teacher": {"source": "recorded", "path": str(tmp_path / "prompts.jsonl"),
                                    "task": "text-generation", "tokenizer": str(teacher)},
                        "student": {"hf_config": str(teacher / "config.json")}}
    with pytest.raises(ConfigError, match="use sparse_kl"):
        parse_config(black_box, tmp_path)


@pytest.mark.parametrize("fmt", ["openai", "llamacpp"])
def test_http_teacher_run_end_to_end(tmp_path: Path, teacher: Path, fmt: str) -> None:
    """The API case: prompts answered over HTTP with top-k logprobs, aligned onto the student's tokens, the student
    taken from a local model of the family; usage in the manifest, the key nowhere."""
    from support.openai_lm_server import LMServerState, ServedModel, lm_server

    state = LMServerState(model=ServedModel(teacher), format=fmt)
    with lm_server(state) as url:
        cfg = write_config(tmp_path, teacher, teacher={
            "source": "http", "task": "text-generation", "generation": {"max_new_tokens": 6, "top_logprobs": 5},
            "http": {"url": url, "api": "chat", "model": "tiny", "top_logprobs": 5, "api_key_env": "TINY_KEY",
                     "price_input_per_million": 1.0, "price_output_per_million": 2.0}},
            student={"from_teacher": {"layers": [0, 3], "path": str(teacher)}},
            **{"distill.losses": [{"name": "sparse_kl"}, {"name": "seqkd", "weight": 0.1}]})
        result = CliRunner(env={"TINY_KEY": "sk-secret-123"}).invoke(app, ["run", str(cfg), "--out",
                                                                           str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert "sk-secret-123" not in manifest
    usage = json.loads(manifest)["stages"]["distill"]["metrics"]["teacher_usage"]
    assert usage["completion_tokens"] > 0 and usage["cost_usd"] > 0
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert "teacher" not in metrics["artifacts"]  # black-box: no teacher model to measure
    assert metrics["artifacts"]["student"]["top1_agreement"] >= 0.0


def test_recorded_text_only_generations_distil_by_seqkd_with_a_note(tmp_path: Path, teacher: Path) -> None:
    records = tmp_path / "gens.jsonl"
    records.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"the {w}"}],
                                           "response": f"a {w} is on the big red car"}) + "\n" for w in WORDS))
    cfg = write_config(tmp_path, teacher, teacher={"source": "recorded", "path": str(records),
                                                   "task": "text-generation"},
                       student={"from_teacher": {"layers": [1, 2], "path": str(teacher)}},
                       **{"distill.losses": [{"name": "seqkd"}], "distill.steps": 40, "distill.lr": 5e-3})
    data = yaml.safe_load(cfg.read_text())
    del data["data"]["prompts"]  # the recording brings its prompts
    cfg.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "text only (SeqKD)" in result.output
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert any("SeqKD" in n for n in metrics["notes"])
    student = metrics["artifacts"]["student"]
    assert student["top1_agreement"] > metrics["artifacts"]["student-untrained"]["top1_agreement"]


def test_vocabulary_padding_rows_are_said_and_handled(tmp_path: Path, teacher: Path) -> None:
    padded = json.loads((teacher / "config.json").read_text()) | {"vocab_size": 416, "num_hidden_layers": 2}
    (tmp_path / "padded").mkdir()
    (tmp_path / "padded" / "config.json").write_text(json.dumps(padded))
    cfg = write_config(tmp_path, teacher, student={"hf_config": str(tmp_path / "padded" / "config.json")})
    result = CliRunner().invoke(app, ["distill", str(cfg), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "rows differ (400 vs 416)" in result.output and "padding" in result.output


def test_hidden_states_distil_through_the_adapter(tmp_path: Path, teacher: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """hidden_mse on a decoder: student layer i against the teacher layer it came from (pairs), next to sparse KL."""
    import edgedistill.distill.losses.hidden as hidden

    seen: list[tuple[int, ...]] = []
    real = hidden.masked_mse

    def recorded(student: torch.Tensor, teacher_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(student.shape))
        return real(student, teacher_states, mask)

    monkeypatch.setattr(hidden, "masked_mse", recorded)
    cfg = write_config(tmp_path, teacher, student={"from_teacher": {"layers": [0, 3]}}, **{"distill.losses": [
        {"name": "sparse_kl"}, {"name": "hidden_mse", "weight": 0.5, "layers": [[0, 0], [1, 3]]}]})
    result = CliRunner().invoke(app, ["distill", str(cfg), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert len(seen) == 2 * 3 and all(shape[-1] == 64 for shape in seen)  # 2 pairs x 3 steps, hidden 64
