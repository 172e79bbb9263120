"""A causal LM exported as one ONNX decoder with a KV cache: logits and greedy answers against torch, the
onnxruntime-genai layout (loaded by onnxruntime-genai where it installs), generation through the one loop (greedy,
sampling, stop tokens, streaming), and the bad inputs of ``generate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from support.cli import one_line_error
from support.tiny_lm import genai_greedy, make_tiny_lm
from support.tiny_models import make_tiny_bert
from typer.testing import CliRunner

from edgedistill import api
from edgedistill.cli import app
from edgedistill.config import ExportConfig, WeightOnly
from edgedistill.export.decoder_verify import compare_greedy, prompt_ids
from edgedistill.lm.decoder_io import DecoderShape, position_ids
from edgedistill.lm.decoders import Decoder, OrtDecoder, TorchDecoder
from edgedistill.lm.generate import generate_ids, stop_ids
from edgedistill.lm.load import load_causal_lm
from edgedistill.lm.runtime import encode_prompt, open_decoder, stream_text
from edgedistill.lm.sampling import Sampling

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "teacher", weight_scale=6.0)


@pytest.fixture(scope="module")
def exported(lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    artifact = api.export(lm, run, ExportConfig())
    assert artifact.task == "text-generation" and artifact.meta["greedy"]["identical"] == 8
    return artifact.path


def test_decoder_io_named_as_onnxruntime_genai(exported: Path) -> None:
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    assert list(inputs)[:3] == ["input_ids", "attention_mask", "position_ids"]
    assert inputs["past_key_values.3.value"] == ["batch", 2, "past_sequence_length", 8]  # (B, kv_heads, P, D)
    assert outputs["logits"][-1] == 400 and "present.3.key" in outputs and len(outputs) == 1 + 2 * 4
    config = json.loads((exported.parent / "genai_config.json").read_text())
    decoder = config["model"]["decoder"]
    assert decoder["num_key_value_heads"] == 2 and decoder["num_attention_heads"] == 4 and decoder["head_size"] == 8
    assert decoder["inputs"]["past_key_names"] == "past_key_values.%d.key"
    assert config["search"]["past_present_share_buffer"] is False
    files = {p.name for p in exported.parent.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= files


def test_verification_report_covers_prefill_and_decode(exported: Path) -> None:
    report = json.loads((exported.parent / "verification.json").read_text())
    kinds = [r["output"] for r in report["results"]]
    assert kinds.count("logits (prefill)") == 1 and kinds.count("logits (decode)") == 8
    assert report["passed"] and report["worst"]["max_abs"] < 1e-4
    assert report["greedy"] == {"prompts": 8, "new_tokens": 32, "identical": 8, "divergences": [], "passed": True}


def test_ort_decoder_matches_torch_through_the_cache(lm: Path, exported: Path) -> None:
    model, tokenizer = load_causal_lm(lm)
    ids = prompt_ids(tokenizer, ["tell me about the dog", PROMPT, "hi"])
    want = generate_ids(TorchDecoder(model), ids, 12, Sampling(), set(), 0)
    got = generate_ids(OrtDecoder(exported), ids, 12, Sampling(), set(), 0)
    assert got == want  # a left-padded batch of 3
    for prompt, answer in zip(ids, want, strict=True):
        ref = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=None)
        assert ref[0, len(prompt):].tolist() == answer


class Perturbed(Decoder):
    """A decoder whose decode logits favour token 7 from the 5th new token on (a broken export)."""

    def __init__(self, inner: Decoder):
        self.inner, self.shape, self.calls = inner, inner.shape, 0

    def start(self, batch: int) -> Any:
        self.calls = 0
        return self.inner.start(batch)

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray, state: Any,
                last_only: bool = False) -> tuple[np.ndarray, Any]:
        logits, state = self.inner.forward(input_ids, attention_mask, position_ids, state, last_only)
        self.calls += 1
        if self.calls > 4:
            logits = logits.copy()
            logits[..., 7] += 1e3
        return logits, state


def test_greedy_divergence_names_position_and_margin(lm: Path) -> None:
    model, tokenizer = load_causal_lm(lm)
    ids = prompt_ids(tokenizer, [PROMPT])
    result = compare_greedy(model, Perturbed(TorchDecoder(model)), ids, set(), 0)
    assert not result["passed"] and result["identical"] == 0
    (divergence,) = result["divergences"]
    assert divergence["position"] == 4 and divergence["export_token"] == 7
    assert divergence["logit_margin"] > 0


def test_position_ids_skip_left_padding() -> None:
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids(mask, 5).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    assert position_ids(mask, 1).tolist() == [[2], [4]]


def test_sampling_seeded_and_top_k_one_is_greedy(exported: Path) -> None:
    decoder, tokenizer = open_decoder(exported)
    ids = [encode_prompt(tokenizer, PROMPT, chat=True)]
    greedy = generate_ids(decoder, ids, 10, Sampling(), set(), 0)
    assert generate_ids(decoder, ids, 10, Sampling(temperature=0.7, top_k=1, seed=3), set(), 0) == greedy
    sampled = [generate_ids(decoder, ids, 10, Sampling(temperature=1.5, top_p=0.95, seed=s), set(), 0)
               for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]


def test_stop_token_ends_the_answer(lm: Path, exported: Path) -> None:
    decoder, tokenizer = open_decoder(exported)
    ids = [encode_prompt(tokenizer, PROMPT, chat=True)]
    free = generate_ids(decoder, ids, 12, Sampling(), set(), 0)[0]
    stop = free[5]
    stopped = generate_ids(decoder, ids, 12, Sampling(), {stop}, 0)[0]
    assert stopped == free[: free.index(stop) + 1]
    assert tokenizer.eos_token_id in stop_ids(tokenizer)


def test_stream_text_is_the_decoded_answer(lm: Path, exported: Path) -> None:
    decoder, tokenizer = open_decoder(exported)
    ids = encode_prompt(tokenizer, PROMPT, chat=True)
    pieces = list(stream_text(decoder, tokenizer, ids, 16, Sampling()))
    answer = [t for t in generate_ids(decoder, [ids], 16, Sampling(), stop_ids(tokenizer), 0)[0]
              if t not in stop_ids(tokenizer)]
    assert answer and "".join(pieces) == tokenizer.decode(answer, skip_special_tokens=True)


def test_generate_cli_streams_from_onnx_and_torch(lm: Path, exported: Path) -> None:
    runner = CliRunner()
    onnx = runner.invoke(app, ["generate", str(exported.parent), "--prompt", PROMPT, "--chat", "--max-new-tokens", "8"])
    torch_run = runner.invoke(app, ["generate", str(lm), "--prompt", PROMPT, "--chat", "--max-new-tokens", "8"])
    assert onnx.exit_code == 0 and torch_run.exit_code == 0, onnx.output + torch_run.output
    assert onnx.stdout == torch_run.stdout and onnx.stdout.strip()


def test_generate_bad_inputs(lm: Path, exported: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bert = make_tiny_bert(tmp_path / "bert")
    encoder = api.export(bert, tmp_path / "run", ExportConfig(), task="sentence-embedding")
    plain = make_tiny_lm(tmp_path / "plain", chat_template=False)
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    cases = [([str(exported), "--prompt", "dog " * 300], ("context of 256", "--max-new-tokens")),
             ([str(encoder.path), "--prompt", "hi"], ("not a decoder",)),
             ([str(bert), "--prompt", "hi"], ("causal",)),
             ([str(tmp_path / "bad.gguf"), "--prompt", "hi"], ("not a GGUF file",)),
             ([str(plain), "--prompt", "hi", "--chat"], ("no chat template",))]
    for args, needles in cases:
        result = runner.invoke(app, ["generate", *args])
        line = one_line_error(result, *needles)
        assert result.stdout.strip() in ("", line), result.stdout  # nothing was generated before the error


def test_export_of_an_encoder_as_text_generation_fails_in_one_line(tmp_path: Path) -> None:
    bert = make_tiny_bert(tmp_path / "bert")
    result = CliRunner().invoke(app, ["export", str(bert), "--out", str(tmp_path / "run"), "--task", "text-generation"])
    one_line_error(result, "causal")
    assert not (tmp_path / "run" / "export" / "model.onnx").exists()


def test_onnxruntime_genai_loads_the_export_and_agrees(lm: Path, exported: Path) -> None:
    og = pytest.importorskip("onnxruntime_genai")
    model, tokenizer = load_causal_lm(lm)
    prompt = encode_prompt(tokenizer, PROMPT, chat=True)
    tokens = genai_greedy(og, exported.parent, prompt, 16)
    want = model.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False)[0, len(prompt):].tolist()
    assert tokens == want


def test_decoder_shape_reads_gqa_config(lm: Path) -> None:
    model, _ = load_causal_lm(lm)
    shape = DecoderShape.of(model.config)
    assert (shape.layers, shape.heads, shape.kv_heads, shape.head_size) == (4, 4, 2, 8)
    assert [a.shape for a in shape.empty_past(3)][0] == (3, 2, 0, 8)


def test_torchscript_exporter_is_refused_for_decoders(lm: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(lm), "--out", str(tmp_path / "run"), "--exporter", "torchscript"])
    one_line_error(result, "torchscript does not export decoders", "genai-builder")
    assert not list((tmp_path / "run").glob("export*/model.onnx"))


def test_a_gguf_that_is_no_model_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "bad.gguf"), "--out", str(tmp_path / "run")])
    one_line_error(result, "bad.gguf", "not a GGUF file")
    assert not list((tmp_path / "run").glob("export*/model.onnx"))


def test_genai_builder_export_is_fused_and_verified(lm: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime_genai")
    narrow = CliRunner().invoke(app, ["export", str(lm), "--out", str(tmp_path / "narrow"), "--exporter",
                                      "genai-builder"])
    one_line_error(narrow, "multiple of 16", "this model's is 8")
    lm = make_tiny_lm(tmp_path / "lm16", weight_scale=6.0, hidden=64, intermediate=128)  # head size 16
    artifact = api.export(lm, tmp_path / "run", ExportConfig(exporter="genai-builder"))
    assert artifact.meta["exporter"] == "genai-builder" and artifact.meta["greedy"]["identical"] == 8
    proto = onnx.load(str(artifact.path), load_external_data=False)
    found = {n.op_type for n in proto.graph.node}
    assert {"GroupQueryAttention", "SkipSimplifiedLayerNormalization"} <= found
    assert {p.key: p.value for p in proto.metadata_props}["edgedistill.task"] == "text-generation"
    model, tokenizer = load_causal_lm(lm)
    ids = prompt_ids(tokenizer, [PROMPT, "tell me about the dog"])
    decoder = OrtDecoder(artifact.path)
    assert not decoder.left_padding  # its rotary positions come from the mask's lengths: one row at a time
    assert generate_ids(decoder, ids, 10, Sampling(), set(), 0) == generate_ids(TorchDecoder(model), ids, 10,
                                                                                 Sampling(), set(), 0)
    (int4,) = api.quantize(artifact, tmp_path / "run", [WeightOnly(block_size=16, accuracy_level=4,
                                                                   embedding="quantize")])
    assert {n.op_type for n in onnx.load(str(int4.path)).graph.node} >= {"MatMulNBits", "GroupQueryAttention",
                                                                          "GatherBlockQuantized"}
    assert len(generate_ids(OrtDecoder(int4.path), ids[:1], 6, Sampling(), set(), 0)[0]) == 6


def test_package_carries_what_onnxruntime_genai_loads(exported: Path, tmp_path: Path) -> None:
    og = pytest.importorskip("onnxruntime_genai")
    bundle = api.package(exported, "jetson-orin-nano-8gb", tmp_path)
    model_dir = bundle.path / "model"
    assert {"model.onnx", "genai_config.json", "tokenizer.json", "tokenizer_config.json"} <= \
        {p.name for p in model_dir.iterdir()}
    og.Model(str(model_dir))  # loads as it is


def test_a_cache_the_decoder_was_not_built_for_is_one_line(exported: Path) -> None:
    import onnxruntime as ort_

    from edgedistill.errors import InputError

    decoder = OrtDecoder(exported)
    ids, mask = np.array([[5, 6]]), np.ones((1, 2), dtype=np.int64)
    wrong = [ort_.OrtValue.ortvalue_from_numpy(np.zeros((1, 3, 0, 8), np.float32)) for _ in range(8)]
    with pytest.raises(InputError, match="2 KV heads"):
        decoder.forward(ids, mask, position_ids(mask, 2), wrong)
    with pytest.raises(InputError, match="must be \\(1, 2\\)"):
        decoder.forward(ids, np.ones((1, 5), dtype=np.int64), position_ids(mask, 2), decoder.start(1))
    short = decoder.start(1)[:4]
    with pytest.raises(InputError, match="4 tensors"):
        decoder.forward(ids, mask, position_ids(mask, 2), short)
