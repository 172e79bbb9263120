"""Train a 1-layer student of the tiny BERT in a subprocess (for the SIGKILL resume test).

Usage: train_worker.py MODEL_DIR WORK_DIR OUT_FILE STEPS [STEP_DELAY_S]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from edgedistill.config import DistillConfig, LossSpec
from edgedistill.distill.depth import select_layers
from edgedistill.distill.teacher_cache import run_model
from edgedistill.distill.trainer import train
from edgedistill.models.task_model import load_task_model


def run(model_dir: Path, work: Path, out: Path, steps: int, delay: float = 0.0) -> None:
    torch.set_num_threads(1)
    teacher, tok = load_task_model(model_dir, "sentence-embedding")
    texts = [f"the man {w} plays the guitar in the park number {i}" for i, w in enumerate(["a", "b", "c"] * 20)]
    targets = run_model(teacher, tok, texts, 16, 32)
    cfg = DistillConfig(steps=steps, batch_size=8, lr=1e-3, checkpoint_every=1, seed=0, schedule="cosine",
                        losses=[LossSpec(name="embedding_mse"), LossSpec(name="hidden_mse", layers=[(0, 1)])])
    student = select_layers(teacher, [0])
    train(student, tok, texts, targets, cfg, work, on_step=lambda s, loss: time.sleep(delay), teacher=teacher)
    torch.save(student.state_dict(), out)


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]),
        float(sys.argv[5]) if len(sys.argv) > 5 else 0.0)
