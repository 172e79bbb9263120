"""Decoder fusion passes on tiny random Llama decoders built in the test: cached attention into GroupQueryAttention
(rotary fused, left padding kept exact by the bias), RMSNorms into (Skip)SimplifiedLayerNormalization, what each
pass left and why, the stage's proof against the unfused graph, and its bad inputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from support.cli import one_line_error
from support.tiny_lm import genai_greedy, make_tiny_lm
from typer.testing import CliRunner

from edgedistill import api
from edgedistill.cli import app
from edgedistill.config import ExportConfig, FuseConfig
from edgedistill.errors import VerificationError
from edgedistill.fuse import decoder_attention
from edgedistill.fuse.decoder_stage import fuse_decoder
from edgedistill.lm.decoder_io import position_ids
from edgedistill.lm.decoders import OrtDecoder, TorchDecoder
from edgedistill.lm.generate import generate_ids
from edgedistill.lm.load import load_causal_lm
from edgedistill.lm.runtime import encode_prompt
from edgedistill.lm.sampling import Sampling

PROMPTS = ["tell me about the dog", "What is the capital of France?", "hi"]


def exported_run(root: Path, **shape: int) -> tuple[Path, Path]:
    lm = make_tiny_lm(root / "teacher", weight_scale=6.0, **shape)
    return lm, api.export(lm, root / "run", ExportConfig()).path


@pytest.fixture(scope="module")
def gqa(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Head size 16 (what GroupQueryAttention takes), 4 query heads over 2 key/value heads."""
    return exported_run(tmp_path_factory.mktemp("gqa"), hidden=64)


@pytest.fixture(scope="module")
def fused(gqa: tuple[Path, Path]) -> Path:
    return api.fuse(gqa[1].parent.parent, gqa[1].parent.parent).path


def ops(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)


def test_every_block_and_norm_fused(gqa: tuple[Path, Path], fused: Path) -> None:
    report = json.loads((fused.parent / "fusion.json").read_text())
    passes = {p["fusion"]: p for p in report["passes"]}
    assert passes["decoder_attention"]["patterns"] == {"rotary_gqa_with_past": 4}
    assert passes["rms_norm"]["fused"] == 9  # 2 per layer + the final norm
    assert passes["skip_rms_norm"]["fused"] == 8  # every norm after a residual add: all but the first
    found = ops(fused)
    assert found["GroupQueryAttention"] == 4 and found["SkipSimplifiedLayerNormalization"] == 8
    assert found["SimplifiedLayerNormalization"] == 1
    assert not {"Softmax", "Cos", "Sin", "Neg", "Pow", "Reciprocal"} & set(found)
    assert sum(found.values()) < sum(ops(gqa[1]).values()) / 3


def test_fused_node_attributes(fused: Path) -> None:
    model = onnx.load(str(fused))
    node = next(n for n in model.graph.node if n.op_type == "GroupQueryAttention")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert (attrs["num_heads"], attrs["kv_num_heads"], attrs["do_rotary"]) == (4, 2, 1)
    assert attrs["scale"] == pytest.approx(16 ** -0.5)
    assert list(node.output[1:]) == ["present.0.key", "present.0.value"]
    cos = next(i for i in model.graph.initializer if i.name == node.input[7])
    assert list(cos.dims) == [256, 8]  # the export's context length x head_size / 2


def test_stage_proves_logits_and_greedy_against_unfused(fused: Path) -> None:
    report = json.loads((fused.parent / "fusion.json").read_text())["verification"]
    assert report["passed"] and report["reference"] == "unfused ONNX decoder"
    assert report["greedy"]["identical"] == 8 and report["worst"]["max_abs"] < 1e-4
    assert {p.name for p in fused.parent.iterdir()} >= {"genai_config.json", "tokenizer.json", "model.onnx"}


def test_left_padded_batch_agrees_with_torch(gqa: tuple[Path, Path], fused: Path) -> None:
    model, tokenizer = load_causal_lm(gqa[0])
    ids = [encode_prompt(tokenizer, p, chat=True) for p in PROMPTS]
    want = generate_ids(TorchDecoder(model), ids, 12, Sampling(), set(), 0)
    assert generate_ids(OrtDecoder(fused), ids, 12, Sampling(), set(), 0) == want


def test_decode_logits_match_through_the_fused_cache(gqa: tuple[Path, Path], fused: Path) -> None:
    ref, got = OrtDecoder(gqa[1]), OrtDecoder(fused)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 300, (2, 6))
    mask = np.ones((2, 6), dtype=np.int64)
    mask[1, :2] = 0
    a, past_a = ref.forward(ids, mask, position_ids(mask, 6), ref.start(2))
    b, past_b = got.forward(ids, mask, position_ids(mask, 6), got.start(2))
    np.testing.assert_allclose(a[mask.astype(bool)], b[mask.astype(bool)], atol=1e-4)
    for _ in range(4):
        token = rng.integers(5, 300, (2, 1))
        mask = np.concatenate([mask, np.ones((2, 1), dtype=np.int64)], axis=1)
        a, past_a = ref.forward(token, mask, position_ids(mask, 1), past_a)
        b, past_b = got.forward(token, mask, position_ids(mask, 1), past_b)
        np.testing.assert_allclose(a, b, atol=1e-4)
        assert past_b[0].numpy().shape == (2, 2, mask.shape[1], 16)


def test_onnxruntime_genai_runs_the_fused_decoder(gqa: tuple[Path, Path], fused: Path) -> None:
    og = pytest.importorskip("onnxruntime_genai")
    model, tokenizer = load_causal_lm(gqa[0])
    prompt = encode_prompt(tokenizer, PROMPTS[1], chat=True)
    tokens = genai_greedy(og, fused.parent, prompt, 12)
    want = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)[0, len(prompt):].tolist()
    assert tokens == want


def test_head_size_groupqueryattention_refuses_is_left_with_the_reason(tmp_path: Path) -> None:
    _, exported = exported_run(tmp_path, hidden=32)  # head size 8
    model = onnx.load(str(exported))
    attention, norms, skips = fuse_decoder(model, "ort")
    assert attention.found == 4 and attention.fused == 0
    assert "head size 8" in attention.skipped[0].reason and "multiples of 16" in attention.skipped[0].reason
    assert attention.skipped[0].pattern == "rotary_gqa_with_past"
    assert norms.fused == 9 and skips.fused == 8


def test_multi_head_attention_decoder_is_matched_too(tmp_path: Path) -> None:
    _, exported = exported_run(tmp_path, hidden=64, kv_heads=4)
    model = onnx.load(str(exported))
    assert fuse_decoder(model, "ort")[0].patterns == {"rotary_mha_with_past": 4}


def test_a_wrong_fusion_is_caught_and_nothing_published(gqa: tuple[Path, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    right = decoder_attention.rotary_caches

    def shifted(freq: decoder_attention.Frequencies, positions: int) -> tuple[np.ndarray, np.ndarray]:
        cos, sin = right(freq, positions)
        return cos, -sin  # rotates the other way

    monkeypatch.setattr(decoder_attention, "rotary_caches", shifted)
    run = tmp_path / "run"
    with pytest.raises(VerificationError):
        api.fuse(gqa[1], run, FuseConfig(), task="text-generation")
    assert not (run / "fuse" / "model.onnx").exists()


def test_onnx_form_gives_the_opset_23_attention_the_cache(gqa: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "run23"
    exported = api.export(gqa[0], run, ExportConfig(opset=23)).path
    before = ops(exported)
    fused = api.fuse(run, run, FuseConfig(form="onnx"))
    assert fused.meta["attention"]["patterns"] == {"attention_op_with_past": 4}
    assert fused.meta["verification"]["passed"]
    after = ops(fused.path)
    assert after["Attention"] == 4 and after["Expand"] < before["Expand"] - 4  # the repeat_kv expansions went
    node = next(n for n in onnx.load(str(fused.path)).graph.node if n.op_type == "Attention")
    assert list(node.input[4:]) == ["past_key_values.0.key", "past_key_values.0.value"]
    assert list(node.output[1:]) == ["present.0.key", "present.0.value"]


def test_forms_without_decoder_passes_are_one_line(gqa: tuple[Path, Path], tmp_path: Path) -> None:
    for form, needle in (("trt-plugin", "no decoder passes"), ("onnx", "opset 23")):
        result = CliRunner().invoke(app, ["fuse", str(gqa[1]), "--out", str(tmp_path / form), "--form", form,
                                          "--task", "text-generation"])
        one_line_error(result, needle)
        assert not list((tmp_path / form).glob("fuse*/model.onnx"))
