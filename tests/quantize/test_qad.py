"""Quantization-aware distillation: fake quantization against numpy and ORT's formulas, training, QDQ export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from onnxruntime.quantization.quant_utils import compute_scale_zp
from support.quantize import embed, min_cosine, op_counts

from edgedistill.artifacts import Artifact
from edgedistill.config import StaticInt8, quantize_step
from edgedistill.distill.losses import combined_loss
from edgedistill.errors import InputError
from edgedistill.models.task_model import load_task_model
from edgedistill.quantize import fake_quant as fq
from edgedistill.quantize import qad, stage
from edgedistill.quantize.data import QadData, QuantizeData, default_qad_losses
from edgedistill.quantize.presets import StaticSettings, resolve

U8 = fq.QuantSpec()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: one thread is ~50x faster than two on a busy 2-core machine (no contention)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
S8 = fq.QuantSpec.from_settings(symmetric_activations=True, reduce_range=True, per_channel=True)


def numpy_qdq(x: np.ndarray, scale: np.ndarray | float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """ONNX QuantizeLinear then DequantizeLinear: saturate(rint(x / scale) + zp), then (q - zp) * scale."""
    q = np.clip(np.rint(x / scale) + zero_point, qmin, qmax)
    return ((q - zero_point) * scale).astype(np.float32)


def test_fake_quant_equals_numpy_qdq() -> None:
    x = np.random.default_rng(0).normal(0, 3, (4, 8, 16)).astype(np.float32)
    x[0, 0, :4] = [0.05, 0.15, -0.05, 100.0]  # exact ties (half to even) and a clipped value
    got = fq.fake_quant(torch.from_numpy(x), torch.tensor(0.1), torch.tensor(37.0), 0, 255).numpy()
    np.testing.assert_array_equal(got, numpy_qdq(x, np.float32(0.1), 37, 0, 255))
    torch_ref = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), 0.1, 37, 0, 255).numpy()
    np.testing.assert_allclose(got, torch_ref, atol=1e-6)


@pytest.mark.parametrize("spec", [U8, S8, fq.QuantSpec(per_channel=False)])
def test_weight_fake_quant_equals_numpy(spec: fq.QuantSpec) -> None:
    w = np.random.default_rng(1).normal(0, 0.05, (6, 10)).astype(np.float32)  # (out, in)
    absmax = np.abs(w).max(axis=1, keepdims=True) if spec.per_channel else np.abs(w).max()
    ref = numpy_qdq(w, (absmax / spec.weight_qmax).astype(np.float32), 0, -spec.weight_qmax, spec.weight_qmax)
    np.testing.assert_array_equal(fq.fake_quant_weight(torch.from_numpy(w), spec).numpy(), ref)


def test_gradients_straight_through_and_lsq() -> None:
    x = torch.tensor([-1.0, 0.26, 1.0, 30.0], requires_grad=True)
    scale = torch.tensor(0.1, requires_grad=True)
    fq.fake_quant(x, scale, 0.0, -127, 127).sum().backward()
    assert x.grad is not None and scale.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1, 1, 0])  # clipped above 12.7
    # LSQ: round(x/s) - x/s inside the grid, the clipped level outside
    assert scale.grad.item() == pytest.approx(0 + (3 - 2.6) + 0 + 127, abs=1e-4)


@pytest.mark.parametrize("spec", [U8, S8])
@pytest.mark.parametrize("rmin,rmax", [(-3.2, 7.9), (0.1, 4.0), (-0.17, 11.3), (-5.0, -1.0)])
def test_qparams_are_ort_s(spec: fq.QuantSpec, rmin: float, rmax: float) -> None:
    qmin, qmax = np.array(spec.act_qmin), np.array(spec.act_qmax)
    dtype = np.int8 if spec.symmetric_activations else np.uint8
    zp, scale = compute_scale_zp(np.float32(rmin), np.float32(rmax), qmin.astype(dtype), qmax.astype(dtype),
                                 spec.symmetric_activations)
    ours = fq.activation_qparams(float(np.float32(rmin)), float(np.float32(rmax)), spec)
    assert ours == (float(scale), int(zp))
    # the range handed back to ORT gives exactly the learned scale and zero point again
    lo, hi = (np.float32(v) for v in fq.qparams_range(*ours, spec))
    zp2, scale2 = compute_scale_zp(lo, hi, qmin.astype(dtype), qmax.astype(dtype), spec.symmetric_activations)
    assert int(zp2) == ours[1] and float(scale2) == pytest.approx(ours[0], rel=1e-6)


@pytest.fixture(scope="module")
def teacher_outputs(tiny_texts: list[str], tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Embeddings of the texts by another tiny BERT (other seed, same vocabulary): a teacher to distil from."""
    from support.tiny_models import make_tiny_bert

    model, tokenizer = load_task_model(make_tiny_bert(tmp_path_factory.mktemp("teacher"), seed=1),
                                       "sentence-embedding")
    with torch.inference_mode():
        return model(**dict(tokenizer(tiny_texts, padding=True, return_tensors="pt"))).numpy()


def fake_quantized(tiny_bert: Path, texts: list[str], settings: StaticSettings) -> tuple[object, object, int]:
    model, tokenizer = load_task_model(tiny_bert, "sentence-embedding")
    count = qad.fake_quantize(model, tokenizer, texts, settings, [], QuantizeData(texts))
    return model, tokenizer, count


def test_query_key_value_share_one_quantizer(tiny_bert: Path, tiny_texts: list[str]) -> None:
    model, _, count = fake_quantized(tiny_bert, tiny_texts[:32], resolve(StaticInt8()))
    layer = model.layers[0]  # type: ignore[attr-defined]
    attn = layer.attention.self
    assert attn.query.input_quantizer is attn.key.input_quantizer is attn.value.input_quantizer
    assert attn.query.input_quantizer is not layer.intermediate.dense.input_quantizer
    assert count == 2 * 4 + 1  # per layer: qkv, attention output, FFN in, FFN out; + the pooler
    q = layer.intermediate.dense.input_quantizer
    lo, hi = q.observed.tolist()
    assert q.qparams() == fq.activation_qparams(lo, hi, q.spec)


def test_qad_steps_reduce_the_loss(tiny_bert: Path, tiny_texts: list[str], teacher_outputs: np.ndarray,
                                   tmp_path: Path) -> None:
    from edgedistill.config import DistillConfig
    from edgedistill.distill.trainer import train

    target = teacher_outputs
    model, tokenizer, _ = fake_quantized(tiny_bert, tiny_texts[:32], resolve(StaticInt8(reduce_range=True)))
    enc = dict(tokenizer(tiny_texts, padding=True, return_tensors="pt"))
    losses = default_qad_losses()

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(combined_loss(losses, model(**enc), torch.from_numpy(target)))

    before = loss()
    cfg = DistillConfig(losses=losses, steps=15, lr=3e-3, batch_size=len(tiny_texts), warmup_ratio=0.0)
    train(model, tokenizer, tiny_texts, target, cfg, tmp_path)
    after = loss()
    assert before > 0 and after < 0.7 * before
    assert any(abs(q.qparams()[0] / q.observed.abs().max().item() * 255 - 1) > 1e-4
               for q in fq.input_quantizers(model)), "activation scales were learned"


@pytest.fixture(scope="module")
def qad_run(tiny_bert: Path, tiny_texts: list[str], teacher_outputs: np.ndarray, float_model: Artifact,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Artifact, object, object]:
    """One qad-int8 stage run (avx2 preset, 4 steps), with the trained fake-quantized student it exported."""
    data = QuantizeData(tiny_texts[:32], tiny_texts[32:],
                        qad=QadData(student=tiny_bert, texts=tiny_texts, teacher_outputs=teacher_outputs))
    step = quantize_step(mode="qad-int8", preset="avx2", qad_steps=4, qad_batch_size=16, qad_lr=1e-3)
    trained: list[tuple[object, object]] = []
    compare, threads = qad.compare_with_torch, torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        torch.set_num_threads(1)
        mp.setattr(qad, "compare_with_torch", lambda model, tok, *a: trained.append((model, tok)) or compare(
            model, tok, *a))
        try:
            made = stage.run(step, float_model, tmp_path_factory.mktemp("qad") / "qad", data)
        finally:
            torch.set_num_threads(threads)
    return made, *trained[0]


def test_qad_stage_writes_a_checked_artifact(qad_run: tuple, tiny_texts: list[str], teacher_outputs: np.ndarray,
                                             float_model: Artifact) -> None:
    made = qad_run[0]
    assert made.path.name == "model.onnx" and (made.path.parent / "tokenizer.json").is_file()
    assert made.meta["quantize_linear"] == 8 and made.meta["reduce_range"] is True
    assert made.meta["ort_vs_torch"]["min_cosine"] > 0.999 and made.meta["scale_drift"]["max"] > 0
    assert not list(made.path.parent.glob(".qad-*")), "training checkpoints are removed once published"

    def teacher_cosine(path: Path) -> float:  # mean cosine to the teacher on the texts it trained on
        return float((embed(path, tiny_texts) * teacher_outputs).sum(1).mean())

    assert teacher_cosine(made.path) > teacher_cosine(float_model.path) + 0.01


def test_qdq_nodes_carry_the_learned_scales(qad_run: tuple) -> None:
    made, model, _ = qad_run
    proto = onnx.load(str(made.path))
    counts = op_counts(made.path)
    assert counts["QuantizeLinear"] == 2 * 4 and counts["DequantizeLinear"] == 2 * 4 + 2 * 6
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    for node in (n for n in proto.graph.node if n.op_type == "MatMul" and n.input[1] in producer):
        w_dq = producer[node.input[1]]
        if w_dq.op_type != "DequantizeLinear":
            continue  # attention's activation x activation MatMul
        w, scale = inits[w_dq.input[0]], inits[w_dq.input[1]]
        assert w.dtype == np.int8 and scale.size == w.shape[1] and np.abs(w).max() <= 64  # per channel, 7-bit
        assert producer[node.input[0]].op_type == "DequantizeLinear"
    scales = sorted(float(inits[n.input[1]]) for n in proto.graph.node if n.op_type == "QuantizeLinear")
    learned = [q.qparams()[0] for q in fq.input_quantizers(model)]
    assert len(learned) == len(scales) + 1  # the pooler's Linear is not in the graph
    assert all(any(abs(s / x - 1) < 1e-6 for x in learned) for s in scales)
    assert not [n for n in proto.graph.node if n.op_type == "Add" and
                any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in n.input)]


def test_ort_runs_the_qdq_export_like_the_fake_quant_model(qad_run: tuple, tiny_texts: list[str]) -> None:
    made, model, tokenizer = qad_run
    model.eval()
    enc = dict(tokenizer(tiny_texts[32:48], padding=True, return_tensors="pt"))
    session = ort.InferenceSession(str(made.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {i.name: enc[i.name].numpy() for i in session.get_inputs()})[0]
    with torch.inference_mode():
        ref = model(**enc).numpy()
    assert min_cosine(got, ref) > 0.9995 and np.abs(got - ref).max() < 2e-3


def test_qad_needs_its_data(float_model: Artifact, quant_data: QuantizeData, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="float student and the teacher"):
        stage.run(quantize_step(mode="qad-int8"), float_model, tmp_path, quant_data)
    with pytest.raises(InputError, match="10 teacher outputs for 64 texts"):
        qad.qad_inputs(quantize_step(mode="qad-int8"), QuantizeData([], qad=QadData(Path("x"), ["a"] * 64,
                                                                                    np.zeros((10, 4)))))
    with pytest.raises(ValueError, match="qad-int8.calibration\n  Input should be 'minmax'"):
        quantize_step(mode="qad-int8", calibration="entropy")  # QAD learns the ranges from MinMax


def test_export_settings_come_from_the_source(float_model: Artifact) -> None:
    cfg = qad.export_config(float_model.path)
    assert cfg.exporter == "dynamo" and cfg.dynamic.sequence.max == 256 and cfg.opset == 20
