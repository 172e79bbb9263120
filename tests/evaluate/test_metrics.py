"""Quality metrics against numpy references, and the evaluation of whole artifacts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.artifacts import Artifact
from edgedistill.config import EvaluateConfig
from edgedistill.data.stsb import StsPairs
from edgedistill.engines import load_preprocessor, open_session
from edgedistill.errors import InputError
from edgedistill.evaluate import encode, evaluate_artifact, fidelity_cosine, sts_spearman, teacher_reference
from edgedistill.models.task_model import load_task_model
from edgedistill.tasks import get_task


def ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(len(x))
    r[np.argsort(x)] = np.arange(len(x))
    return r


def test_sts_spearman_matches_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    e1, e2 = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    scores = rng.uniform(0, 5, size=50)
    cos = (e1 * e2).sum(1) / (np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1))
    expected = np.corrcoef(ranks(cos), ranks(scores))[0, 1] * 100
    assert sts_spearman(e1, e2, scores) == pytest.approx(expected, abs=1e-9)


def test_sts_spearman_perfect_order() -> None:
    e1 = np.tile([1.0, 0.0], (4, 1))
    angles = np.array([0.1, 0.5, 0.9, 1.3])
    e2 = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # cosine falls as the angle grows
    assert sts_spearman(e1, e2, np.array([5.0, 3.0, 2.0, 0.0])) == pytest.approx(100.0)


def test_fidelity_identical_and_orthogonal() -> None:
    a = np.random.default_rng(1).normal(size=(10, 6))
    assert fidelity_cosine(a, a) == pytest.approx(1.0)
    assert fidelity_cosine(a, 3 * a) == pytest.approx(1.0)
    assert fidelity_cosine(np.eye(4)[:2], np.eye(4)[2:]) == pytest.approx(0.0)
    with pytest.raises(InputError, match="shapes differ"):
        fidelity_cosine(a, a[:, :3])


def test_encode_restores_order(tiny_bert: Path, tiny_texts: list[str]) -> None:
    artifact = Artifact("t", "hf", tiny_bert)
    session, tokenizer = open_session(artifact), load_preprocessor(artifact)
    texts = tiny_texts[:20]
    got = encode(session, get_task("sentence-embedding"), tokenizer, texts, batch_size=6)
    direct = []
    for text in texts:  # one text per call: no padding, no sorting
        enc = tokenizer([text], return_tensors="np")
        direct.append(session.run({k: v.astype(np.int64) for k, v in enc.items()})["sentence_embedding"][0])
    np.testing.assert_allclose(got, np.stack(direct), atol=1e-5)
    assert got.shape == (20, 32) and got.dtype == np.float32


def export_onnx(model_dir: Path, out: Path) -> Path:
    model, tokenizer = load_task_model(model_dir, "sentence-embedding")
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    ids = torch.full((2, 8), 7, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out / "model.onnx"),
                          input_names=names, output_names=["sentence_embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names})
    return out / "model.onnx"


def test_evaluate_artifacts(tiny_bert: Path, tiny_texts: list[str], tmp_path: Path) -> None:
    cfg = EvaluateConfig(batch_size=16, max_length=32)
    teacher = Artifact("teacher", "hf", tiny_bert)
    heldout = tiny_texts[:24]
    reference = teacher_reference(teacher, heldout, cfg)
    scores = np.linspace(0, 5, 20)
    sts = {"eval": (StsPairs(tiny_texts[24:44], tiny_texts[44:64], scores), None)}
    hf = evaluate_artifact(teacher, teacher_outputs=reference, heldout=heldout, sets=sts, cfg=cfg)
    assert hf["backend"] == "torch" and hf["kind"] == "hf"
    assert hf["fidelity_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert hf["params"] > 10_000
    assert hf["file_mb"] > 0
    assert -100 <= hf["sts_eval_spearman"] <= 100
    onnx = evaluate_artifact(Artifact("onnx", "onnx", export_onnx(tiny_bert, tmp_path)),
                             teacher_outputs=reference, heldout=heldout, sets=sts, cfg=cfg)
    assert onnx["backend"] == "onnxruntime" and onnx["params"] is None
    assert onnx["fidelity_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert onnx["sts_eval_spearman"] == pytest.approx(hf["sts_eval_spearman"], abs=1e-3)
    no_teacher = evaluate_artifact(teacher, teacher_outputs=None, heldout=heldout, sets={}, cfg=cfg)
    assert no_teacher["fidelity_cosine"] is None
