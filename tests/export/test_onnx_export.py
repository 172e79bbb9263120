"""Export of the tiny BERT to ONNX: numbers against torch, dynamic axes, metadata, and failure handling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgedistill import verification
from edgedistill.artifacts import Artifact, sha256_path
from edgedistill.config import ExportConfig
from edgedistill.errors import InputError, VerificationError
from edgedistill.export import stage as export
from edgedistill.export import verify
from edgedistill.models.onnx_file import onnx_io
from edgedistill.models.task_model import load_task_model


@pytest.fixture(scope="module")
def exported(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    out = tmp_path_factory.mktemp("export") / "onnx"
    return export.run(ExportConfig(), Artifact("tiny", "hf", tiny_bert), out)


@pytest.fixture(scope="module")
def torch_model(tiny_bert: Path):
    return load_task_model(tiny_bert, "sentence-embedding")


def run_both(torch_model, path: Path, enc: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    model, _ = torch_model
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, enc)[0]
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in enc.items()}).numpy()
    return ref, got


@pytest.mark.parametrize("batch,width", [(2, 7), (5, 33), (8, 64)])
def test_ort_matches_torch_on_padded_batches(exported, torch_model, tiny_texts, batch, width):
    _, tokenizer = torch_model
    words = " ".join(tiny_texts).split()
    texts = [" ".join(words[: 1 + i * width // batch]) for i in range(batch)]  # 1 word up to past the width
    enc = dict(tokenizer(texts, padding="max_length", truncation=True, max_length=width, return_tensors="np"))
    assert enc["attention_mask"].sum(1).min() < width  # really padded
    ref, got = run_both(torch_model, exported.path, enc)
    assert got.shape == (batch, 32)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch,seq", [(3, 17), (1, 5), (1, 1)])
def test_axes_are_dynamic(exported, torch_model, batch, seq):
    ids = np.random.default_rng(seq).integers(5, 100, size=(batch, seq))
    enc = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    ref, got = run_both(torch_model, exported.path, enc)
    assert got.shape == (batch, 32)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_io_names_and_symbolic_dims(exported):
    inputs, outputs = onnx_io(exported.path)
    assert [(name, dtype) for name, dtype, _ in inputs] == [
        ("input_ids", "int64"), ("attention_mask", "int64"), ("token_type_ids", "int64")
    ]
    assert all(shape == ["batch", "sequence"] for _, _, shape in inputs)
    assert outputs == [("sentence_embedding", "float32", ["batch", 32])]


def test_metadata(exported, tiny_bert):
    meta = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    assert meta["edgedistill.source_sha256"] == sha256_path(tiny_bert)
    assert meta["edgedistill.task"] == "sentence-embedding"
    assert meta["edgedistill.inputs"] == "input_ids,attention_mask,token_type_ids"
    assert meta["edgedistill.outputs"] == "sentence_embedding"
    assert meta["edgedistill.max_length"] == "256"
    assert meta["edgedistill.version"]


def test_folder_is_self_contained(exported, torch_model):
    from transformers import AutoTokenizer

    out = exported.path.parent
    assert sorted(p.name for p in out.iterdir()) == [
        "model.onnx", "tokenizer.json", "tokenizer_config.json", "verification.json", "vocab.txt"
    ]
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer("a man plays guitar")["input_ids"] == torch_model[1]("a man plays guitar")["input_ids"]
    report = json.loads((out / "verification.json").read_text())
    assert report["passed"] and {"1x1", "1x128", "4x128", "1x256", "4x256"} == set(report["shapes"])
    assert exported.meta["verification"]["worst"]["max_abs"] < 1e-5
    assert exported.kind == "onnx" and exported.name == "tiny-onnx"


def test_disagreement_raises_and_leaves_no_model(tiny_bert, tmp_path, monkeypatch):
    real = verify.torch_outputs

    def perturbed(model, feeds):
        return {k: v + 3e-2 for k, v in real(model, feeds).items()}

    monkeypatch.setattr(verify, "torch_outputs", perturbed)
    (tmp_path / "model.onnx").write_text("stale model from an earlier run")
    cfg = ExportConfig(dynamic={"batch": [1, 4], "sequence": [1, 64]})
    with pytest.raises(VerificationError, match=r"output 'sentence_embedding' at shape \d+x\d+: max abs diff 3\.0e-02"):
        export.run(cfg, Artifact("tiny", "hf", tiny_bert), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["verification.json"]
    assert json.loads((tmp_path / "verification.json").read_text())["passed"] is False


def test_check_report_names_low_cosine():
    row = {"output": "logits", "shape": "4x64", "max_abs": 1e-6, "max_rel": 1e-6, "min_cosine": 0.9, "passed": False}
    report = verification.report([row], ExportConfig().atol, ExportConfig().min_cosine, "torch")
    with pytest.raises(VerificationError, match=r"export differs from torch: output 'logits' at shape 4x64: min row "
                                                r"cosine 0\.900000 < 0\.9999"):
        verification.check(report, "the export")


def test_torchscript_exporter_also_verifies(tiny_bert, tmp_path):
    cfg = ExportConfig(exporter="torchscript", dynamic={"batch": [1, 8], "sequence": [2, 64]})
    art = export.run(cfg, Artifact("tiny", "hf", tiny_bert), tmp_path)
    assert art.meta["verification"]["passed"]
    assert set(art.meta["verification"]["shapes"]) == {"1x2", "1x33", "4x33", "1x64", "4x64"}


def test_sequence_beyond_position_embeddings_is_rejected(tiny_bert, tmp_path):
    cfg = ExportConfig(dynamic={"sequence": [1, 1024]})
    with pytest.raises(InputError, match="max_position_embeddings 512"):
        export.run(cfg, Artifact("tiny", "hf", tiny_bert), tmp_path)
    assert not (tmp_path / "model.onnx").exists()


def test_onnx_artifact_is_rejected(tmp_path):
    with pytest.raises(InputError, match="Hugging Face model folder"):
        export.run(ExportConfig(), Artifact("m", "onnx", tmp_path / "model.onnx"), tmp_path)
