"""The token-rate measurement (llama-bench's pp / tg convention) through our decoders, and the bytes a decode step
reads (the memory-bandwidth bound): counted from the graph, the tied table once, a table only gathered from not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.tiny_lm import make_tiny_lm

from edgedistill import api
from edgedistill.bench.decode_bound import onnx_bytes_per_token, read_bandwidth, torch_bytes_per_token
from edgedistill.bench.token_rate import DecoderRunner, latency, rates
from edgedistill.config import ExportConfig, WeightOnly
from edgedistill.lm.decoder_io import position_ids
from edgedistill.lm.decoders import OrtDecoder, TorchDecoder
from edgedistill.lm.load import load_causal_lm


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "lm", weight_scale=6.0)


def test_runner_prefill_and_decode_match_the_decoder(lm: Path) -> None:
    model, _ = load_causal_lm(lm)
    decoder = TorchDecoder(model)
    runner = DecoderRunner(decoder)
    tokens = [5, 17, 42, 99, 7]
    ids = np.array([tokens])
    mask = np.ones_like(ids)
    full, _ = decoder.forward(ids, mask, position_ids(mask, 5), decoder.start(1))
    np.testing.assert_allclose(runner.prefill(tokens), full[0, -1], rtol=1e-5, atol=1e-5)
    steps = runner.decode(tokens)
    assert len(steps) == 5 and all(s > 0 for s in steps)
    assert runner.first_token(tokens) > 0


def test_rates_and_latency_as_llama_bench_prints_them() -> None:
    got = rates(128, [1.0, 2.0, 4.0])
    assert got["runs"] == [128.0, 64.0, 32.0]
    assert got["mean"] == pytest.approx(224 / 3) and got["sd"] == pytest.approx(np.std([128, 64, 32], ddof=1))
    assert latency([0.001] * 99 + [0.1]) == pytest.approx({"p50_ms": 1.0, "p99_ms": 1.99}, rel=1e-3)


def test_bytes_per_token_counts_what_a_step_reads(lm: Path, tmp_path: Path) -> None:
    model, _ = load_causal_lm(lm)
    params = sum(p.numel() * 4 for p in model.parameters())
    assert torch_bytes_per_token(model) == params  # tied: the table is the output projection too
    exported = api.export(lm, tmp_path, ExportConfig())
    fp32 = onnx_bytes_per_token(exported.path)
    assert abs(fp32 - params) < 0.02 * params  # the graph's float weights (norms and a few constants aside)
    (int4,) = api.quantize(exported, tmp_path, [WeightOnly(block_size=16)])
    table = model.get_input_embeddings().weight.numel() * 4
    assert onnx_bytes_per_token(int4.path) < 0.3 * (fp32 - table)  # the float table is only gathered from now
    OrtDecoder(int4.path)


def test_read_bandwidth_is_a_plausible_rate() -> None:
    assert 1e8 < read_bandwidth(1, gib=0.0625, repeats=2) < 1e13
