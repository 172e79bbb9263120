"""Torch and ONNX Runtime sessions agree on padded batches; backends and shapes are checked."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.artifacts import Artifact
from edgedistill.engines import Session, model_file_mb, open_session
from edgedistill.errors import InputError
from edgedistill.models.task_model import load_task_model

NAMES = ["input_ids", "attention_mask", "token_type_ids"]


class NoTokenTypes(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask)


def export(model_dir: Path, out: Path, token_types: bool = True, dynamic: bool = True) -> Path:
    """Export the tiny model to ``out/model.onnx`` (legacy exporter) with its tokenizer next to it."""
    model, tokenizer = load_task_model(model_dir, "sentence-embedding")
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    ids = torch.full((2, 8), 7, dtype=torch.long)
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    names = NAMES if token_types else NAMES[:2]
    module = model if token_types else NoTokenTypes(model)
    axes = {n: {0: "batch", 1: "seq"} for n in names} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings from transformers' mask code
        torch.onnx.export(module, args[: len(names)], str(out / "model.onnx"), input_names=names,
                          output_names=["sentence_embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return out / "model.onnx"


@pytest.fixture(scope="module")
def onnx_model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(tiny_bert, tmp_path_factory.mktemp("onnx"))


def padded_batch(tiny_bert: Path, texts: list[str]) -> dict[str, np.ndarray]:
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(tiny_bert)(texts, padding=True, return_tensors="np")
    return {k: v.astype(np.int64) for k, v in enc.items()}


def test_torch_and_ort_agree_on_padded_batch(tiny_bert: Path, onnx_model: Path, tiny_texts: list[str]) -> None:
    feeds = padded_batch(tiny_bert, tiny_texts[:8])
    assert (feeds["attention_mask"] == 0).any()  # really padded
    torch_s = open_session(Artifact("t", "hf", tiny_bert), threads=1)
    ort_s = open_session(Artifact("o", "onnx", onnx_model), threads=1)
    assert isinstance(torch_s, Session) and isinstance(ort_s, Session)
    assert (torch_s.backend, ort_s.backend) == ("torch", "onnxruntime")
    a = torch_s.run(feeds)["sentence_embedding"]
    b = ort_s.run(feeds)["sentence_embedding"]
    assert a.shape == b.shape == (8, 32)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_ort_ignores_token_type_ids_the_model_lacks(tiny_bert: Path, tmp_path: Path, tiny_texts: list[str]) -> None:
    path = export(tiny_bert, tmp_path, token_types=False)
    session = open_session(Artifact("o", "onnx", path))
    assert session.input_names == ["input_ids", "attention_mask"]
    out = session.run(padded_batch(tiny_bert, tiny_texts[:3]))
    assert out["sentence_embedding"].shape == (3, 32)


def test_ort_fixed_dims_rejected(tiny_bert: Path, tmp_path: Path) -> None:
    path = export(tiny_bert, tmp_path, dynamic=False)
    session = open_session(Artifact("o", "onnx", path))
    ids = np.full((2, 16), 7, dtype=np.int64)
    with pytest.raises(InputError, match="axis 1.*fixed to 8"):
        session.run({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})


def test_backend_mismatch_and_unknown(tiny_bert: Path, onnx_model: Path) -> None:
    with pytest.raises(InputError, match="use backend 'torch'"):
        open_session(Artifact("t", "hf", tiny_bert), backend="onnxruntime")
    with pytest.raises(InputError, match="use backend 'onnxruntime'"):
        open_session(Artifact("o", "onnx", onnx_model), backend="torch")
    with pytest.raises(InputError, match="did you mean 'torch'"):
        open_session(Artifact("t", "hf", tiny_bert), backend="torhc")


def test_not_a_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_text("not a model")
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        open_session(Artifact("o", "onnx", bad))


def test_model_file_mb(tiny_bert: Path, onnx_model: Path) -> None:
    hf_mb = model_file_mb(Artifact("t", "hf", tiny_bert))
    assert hf_mb == pytest.approx((tiny_bert / "model.safetensors").stat().st_size / 2**20)
    assert model_file_mb(Artifact("o", "onnx", onnx_model)) == pytest.approx(onnx_model.stat().st_size / 2**20)
