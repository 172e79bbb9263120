"""Students from teacher layers, and the training loop's determinism, resume and divergence handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgedistill.config import DistillConfig
from edgedistill.distill.depth import select_layers
from edgedistill.distill.teacher_cache import run_model
from edgedistill.distill.trainer import CHECKPOINT, DivergedError, batch_indices, train
from edgedistill.errors import ConfigError
from edgedistill.models.task_model import load_task_model


@pytest.fixture()
def teacher(tiny_bert):
    return load_task_model(tiny_bert, "sentence-embedding")


def test_select_layers_keeps_the_named_layers(teacher):
    model, tok = teacher
    student = select_layers(model, [1])
    assert len(student.layers) == 1 and student.backbone.config.num_hidden_layers == 1
    torch.testing.assert_close(student.layers[0].output.dense.weight, model.layers[1].output.dense.weight)
    assert len(model.layers) == 2  # the teacher is untouched
    enc = tok(["a man plays the guitar"], return_tensors="pt")
    assert student(**enc).shape == model(**enc).shape


def test_select_layers_rejects_missing_layer(teacher):
    with pytest.raises(ConfigError, match="layer 5 does not exist; the teacher has 2 layers"):
        select_layers(teacher[0], [0, 5])


def test_batch_order_is_a_seeded_permutation():
    epoch = np.concatenate([batch_indices(10, 5, s, seed=3) for s in range(2)])
    assert sorted(epoch.tolist()) == list(range(10))
    assert (batch_indices(10, 5, 1, seed=3) == batch_indices(10, 5, 1, seed=3)).all()


def fit(teacher, texts, tmp, steps, **kw):
    model, tok = teacher
    targets = run_model(model, tok, texts, 16, 32)
    student = select_layers(model, [0])
    cfg = DistillConfig(steps=steps, batch_size=8, lr=1e-3, checkpoint_every=3, seed=0, **kw)
    losses = train(student, tok, texts, targets, cfg, tmp)
    return student, losses


def test_training_reduces_loss_and_is_deterministic(teacher, tiny_texts, tmp_path):
    a, losses = fit(teacher, tiny_texts, tmp_path / "a", 12)
    b, _ = fit(teacher, tiny_texts, tmp_path / "b", 12)
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def test_resume_from_checkpoint_equals_uninterrupted_run(teacher, tiny_texts, tmp_path, monkeypatch):
    full, _ = fit(teacher, tiny_texts, tmp_path / "full", 8)

    calls = {"n": 0}
    real_step = torch.optim.AdamW.step

    def crash_after_five(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        fit(teacher, tiny_texts, tmp_path / "resumed", 8)
    assert torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=True)["step"] == 3
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    resumed, losses = fit(teacher, tiny_texts, tmp_path / "resumed", 8)
    assert len(losses) == 8
    for pa, pb in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(pa, pb)


def test_nan_loss_stops_and_names_the_step(teacher, tiny_texts, tmp_path):
    model, tok = teacher
    targets = np.full((len(tiny_texts), 32), np.nan, dtype=np.float32)
    with pytest.raises(DivergedError, match=r"at step 0; the last good checkpoint"):
        train(select_layers(model, [0]), tok, tiny_texts, targets, DistillConfig(steps=4, batch_size=8), tmp_path)
