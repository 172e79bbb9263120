"""Weight-only INT4/INT8 (MatMulNBits) of an exported decoder: what gets quantized (tied output projection
included, or kept float), how close the logits stay to the float export (INT8 closer than INT4), the algorithms
(RTN, HQQ, GPTQ on prompts), accuracy levels, and the block size that does not divide the weights."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.cli import one_line_error
from support.tiny_lm import make_tiny_lm
from typer.testing import CliRunner

from edgedistill import api
from edgedistill.artifacts import Artifact
from edgedistill.cli import app
from edgedistill.config import ExportConfig, WeightOnly
from edgedistill.export.decoder_verify import PROMPTS, prompt_ids
from edgedistill.lm.decoder_io import position_ids
from edgedistill.lm.decoders import OrtDecoder
from edgedistill.lm.generate import generate_ids, left_padded
from edgedistill.lm.runtime import tokenizer_beside
from edgedistill.lm.sampling import Sampling
from edgedistill.quantize.data import QuantizeData


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    lm = make_tiny_lm(tmp_path_factory.mktemp("lm") / "lm", hidden=64, intermediate=128)
    return api.export(lm, tmp_path_factory.mktemp("run"), ExportConfig())


def quantized(exported: Artifact, tmp: Path, step: WeightOnly, data: QuantizeData | None = None) -> Artifact:
    (artifact,) = api.quantize(exported, tmp, [step], data=data)
    return artifact


def ops(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def prefill_logits(path: Path) -> np.ndarray:
    decoder = OrtDecoder(path)
    ids, mask = left_padded(prompt_ids(tokenizer_beside(path), PROMPTS[:4]), 0)
    logits, _ = decoder.forward(ids, mask, position_ids(mask, ids.shape[1]), decoder.start(len(ids)))
    return logits[mask.astype(bool)]


def relative_error(ref: np.ndarray, got: np.ndarray) -> float:
    return float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


def test_int4_quantizes_every_matmul_and_the_tied_head(exported: Artifact, tmp_path: Path) -> None:
    artifact = quantized(exported, tmp_path, WeightOnly(block_size=32))
    found = ops(artifact.path)
    assert found["MatMulNBits"] == 4 * 7 + 1 and found["MatMul"] == 2 * 4  # attention's own QK and PV stay
    assert artifact.meta["quantized"] == {"MatMulNBits": 29} and artifact.name.endswith("int4-rtn-b32")
    assert (artifact.path.parent / "genai_config.json").is_file()
    assert artifact.path.stat().st_size < 0.7 * exported.path.stat().st_size  # the float embedding table stays


def test_int8_is_closer_to_float_than_int4(exported: Artifact, tmp_path: Path) -> None:
    ref = prefill_logits(exported.path)
    int4 = prefill_logits(quantized(exported, tmp_path / "4", WeightOnly(block_size=32)).path)
    int8 = prefill_logits(quantized(exported, tmp_path / "8", WeightOnly(bits=8, block_size=32)).path)
    e4, e8 = relative_error(ref, int4), relative_error(ref, int8)
    assert e8 < e4 / 4 and e4 < 0.25 and e8 < 0.02


def test_float_head_and_quantized_embedding(exported: Artifact, tmp_path: Path) -> None:
    head = quantized(exported, tmp_path / "h", WeightOnly(block_size=32, lm_head="float"))
    assert ops(head.path)["MatMulNBits"] == 28 and ops(head.path)["MatMul"] == 2 * 4 + 1  # the tied head
    embed = quantized(exported, tmp_path / "e", WeightOnly(block_size=32, embedding="quantize"))
    assert ops(embed.path)["GatherBlockQuantized"] == 1
    assert relative_error(prefill_logits(exported.path), prefill_logits(embed.path)) < 0.3


@pytest.mark.parametrize("algorithm", ["hqq", "gptq"])
def test_hqq_and_gptq_stay_close_and_generate(exported: Artifact, tmp_path: Path, algorithm: str) -> None:
    data = QuantizeData(calibration_texts=PROMPTS * 2) if algorithm == "gptq" else None
    artifact = quantized(exported, tmp_path, WeightOnly(algorithm=algorithm, block_size=32), data)
    assert ops(artifact.path)["MatMulNBits"] >= 28
    assert relative_error(prefill_logits(exported.path), prefill_logits(artifact.path)) < 0.35
    ids = prompt_ids(tokenizer_beside(artifact.path), PROMPTS[:2])
    assert all(len(a) == 6 for a in generate_ids(OrtDecoder(artifact.path), ids, 6, Sampling(), set(), 0))


def test_accuracy_level_is_set_on_every_node(exported: Artifact, tmp_path: Path) -> None:
    artifact = quantized(exported, tmp_path, WeightOnly(block_size=32, accuracy_level=4))
    levels = {onnx.helper.get_attribute_value(a) for n in onnx.load(str(artifact.path)).graph.node
              if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "accuracy_level"}
    assert levels == {4} and artifact.name.endswith("-acc4")


def test_block_size_that_does_not_divide_names_one_that_does(exported: Artifact, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["quantize", str(exported.path), "--out", str(tmp_path), "--mode", "weight-only",
                                      "--block-size", "128"])
    one_line_error(result, "block_size 128 does not divide the input size 64", "use block_size 64")
    assert not list(tmp_path.glob("quantize/*/model.onnx"))


def test_gptq_without_prompts_and_bad_options(exported: Artifact, tmp_path: Path) -> None:
    runner = CliRunner()
    gptq = runner.invoke(app, ["quantize", str(exported.path), "--out", str(tmp_path), "--mode", "weight-only",
                               "--algorithm", "gptq"])
    one_line_error(gptq, "calibrates on prompts")
    eight = runner.invoke(app, ["quantize", str(exported.path), "--out", str(tmp_path), "--mode", "weight-only",
                                "--bits", "8", "--algorithm", "hqq"])
    one_line_error(eight, "4 bits only")
    assert not list(tmp_path.glob("quantize*/*/model.onnx"))  # neither left a model behind
