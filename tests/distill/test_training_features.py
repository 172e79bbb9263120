"""Schedules, gradient accumulation, bf16, evaluation with best-weights keeping, white-box losses, SIGKILL resume."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.config import DistillConfig, LossSpec
from edgedistill.distill.depth import select_layers
from edgedistill.distill.schedules import lr_factor
from edgedistill.distill.teacher_cache import run_model
from edgedistill.distill.trainer import BEST, CHECKPOINT, set_dropout, train
from edgedistill.errors import ConfigError
from edgedistill.models.task_model import load_task_model

WORKER = Path(__file__).with_name("train_worker.py")


@pytest.fixture(scope="module")
def bert(tiny_bert):
    return load_task_model(tiny_bert, "sentence-embedding")


def test_cosine_and_linear_schedules_by_hand():
    cos, lin = lr_factor("cosine", total=12, warmup=2), lr_factor("linear", total=12, warmup=2)
    assert [cos(0), cos(1)] == [0.5, 1.0] and cos(2) == 1.0
    assert cos(7) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))  # halfway through the decay
    assert lin(7) == pytest.approx(0.5) and lin(12) == 0.0 and cos(12) == pytest.approx(0.0)


def fit(bert, texts, work, **kw):
    model, tok = bert
    targets = run_model(model, tok, texts, 16, 32)
    student = select_layers(model, [0])
    # dropout 0: accumulation equals the full batch only without dropout noise
    cfg = DistillConfig(**{"steps": 4, "batch_size": 8, "lr": 1e-3, "seed": 0, "dropout": 0.0, **kw})
    losses = train(student, tok, texts, targets, cfg, work, teacher=kw.pop("teacher", None))
    return student, losses


def test_gradient_accumulation_matches_the_full_batch(bert, tmp_path):
    # equal-length texts: padding differs between micro-batches and the full batch otherwise
    same_len = [f"{w} dog runs" for w in ("a", "the", "big", "red") * 4]
    a, la = fit(bert, same_len, tmp_path / "a")
    b, lb = fit(bert, same_len, tmp_path / "b", grad_accum=4)
    assert la == pytest.approx(lb, rel=1e-4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5)


def test_dropout_option_makes_the_training_forward_deterministic(bert, tiny_texts):
    model, tok = bert
    student = select_layers(model, [0, 1])
    enc = tok(tiny_texts[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        want = student.eval()(**enc)
        noisy = student.train()(**enc)
        set_dropout(student, 0.0)
        quiet = student.train()(**enc)
    assert not torch.allclose(noisy, want)  # BERT's own dropout (0.1) is on in train mode
    torch.testing.assert_close(quiet, want)


def test_bf16_autocast_trains(bert, tiny_texts, tmp_path):
    _, losses = fit(bert, tiny_texts, tmp_path, precision="bf16", steps=6)
    assert all(np.isfinite(losses))


def test_periodic_eval_keeps_the_best_weights(bert, tiny_texts, tmp_path):
    model, tok = bert
    targets = run_model(model, tok, tiny_texts, 16, 32)
    student = select_layers(model, [0])
    scores = iter([0.5, 0.9, 0.7])
    seen = {}

    def evaluate(m):
        score = next(scores)
        seen[score] = {k: v.clone() for k, v in m.state_dict().items()}
        return score

    cfg = DistillConfig(steps=6, batch_size=8, lr=1e-2, eval_every=2, checkpoint_every=100)
    train(student, tok, tiny_texts, targets, cfg, tmp_path, evaluate=evaluate)
    assert (tmp_path / BEST).is_file()
    for k, v in student.state_dict().items():
        assert torch.equal(v, seen[0.9][k])  # step 4's weights, not the last


def test_white_box_losses_train_with_a_live_teacher(bert, tiny_texts, tmp_path):
    model, tok = bert
    targets = run_model(model, tok, tiny_texts, 16, 32)
    specs = [LossSpec(name="hidden_mse", layers=[(0, 1)]), LossSpec(name="attention_kl", layers=[(0, 1)]),
             LossSpec(name="minilm_relation", relation_heads=4)]
    cfg = DistillConfig(steps=12, batch_size=8, lr=3e-3, losses=specs)
    losses = train(select_layers(model, [0]), tok, tiny_texts, targets, cfg, tmp_path, teacher=model)
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    with pytest.raises(ConfigError, match="'hidden_mse' needs intermediate tensors, but the teacher .* is black-box"):
        train(select_layers(model, [0]), tok, tiny_texts, targets, cfg, tmp_path / "x")
    with pytest.raises(ConfigError, match="student layer 3 does not exist"):
        cfg = DistillConfig(steps=1, losses=[LossSpec(name="hidden_mse", layers=[(3, 1)])])
        train(select_layers(model, [0]), tok, tiny_texts, targets, cfg, tmp_path / "y", teacher=model)


def worker(tiny_bert, work, out, steps, delay=0.0):
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    return subprocess.Popen([sys.executable, str(WORKER), str(tiny_bert), str(work), str(out), str(steps),
                             str(delay)], env=env)


def test_sigkill_mid_run_then_resume_is_bitwise_equal(tiny_bert, tmp_path):
    import train_worker

    steps = 10
    killed = worker(tiny_bert, tmp_path / "killed", tmp_path / "killed.pt", steps, delay=0.2)
    checkpoint, deadline = tmp_path / "killed" / CHECKPOINT, time.monotonic() + 90
    while time.monotonic() < deadline:
        if checkpoint.is_file() and torch.load(checkpoint, weights_only=True)["step"] >= 3:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL and not (tmp_path / "killed.pt").exists()
    # resume and the uninterrupted reference run in this process (same thread count, same kernels)
    train_worker.run(tiny_bert, tmp_path / "killed", tmp_path / "killed.pt", steps)
    train_worker.run(tiny_bert, tmp_path / "full", tmp_path / "full.pt", steps)
    a, b = torch.load(tmp_path / "full.pt", weights_only=True), torch.load(tmp_path / "killed.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
