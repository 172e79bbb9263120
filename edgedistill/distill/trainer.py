"""The distillation loop: student outputs regress onto stored teacher outputs.

AdamW with linear warm-up and linear decay, gradient clipping, seeded batch order. The batch for step
``s`` depends only on the seed and ``s``, so a run resumed from a checkpoint sees exactly the batches an
uninterrupted run would. Checkpoints (model, optimizer, scheduler, RNG, step) are written atomically
every ``checkpoint_every`` steps.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgedistill.artifacts import atomic_write_bytes
from edgedistill.config import DistillConfig
from edgedistill.distill.losses import combined_loss
from edgedistill.errors import EdgeDistillError
from edgedistill.models.task_model import TaskModel

CHECKPOINT = "checkpoint.pt"


class DivergedError(EdgeDistillError):
    """The loss became NaN or infinite."""


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices of the batch for ``step``: epochs are seeded permutations, so the order is reproducible."""
    per_epoch = max(n // batch_size, 1)
    epoch, pos = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[pos * batch_size : (pos + 1) * batch_size]


def linear_schedule(total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def save_checkpoint(path: Path, step: int, model: TaskModel, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, losses: list[float]) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "losses": losses,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, weights_only=True)
    return state


def train(student: TaskModel, tokenizer: Any, texts: list[str], teacher_outputs: np.ndarray, cfg: DistillConfig,
          work_dir: Path, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``student`` in place; return the loss per step. Resumes from ``work_dir/checkpoint.pt``.

    Raises:
        DivergedError: the loss is NaN/inf (the last good checkpoint stays in ``work_dir``).
    """
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(cfg.steps, math.ceil(cfg.warmup_ratio * cfg.steps))
    )
    losses: list[float] = []
    start = 0
    state = load_checkpoint(work_dir / CHECKPOINT)
    if state is not None:
        student.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start, losses = state["step"], list(state["losses"])
    targets = torch.from_numpy(teacher_outputs)
    student.train()
    for step in range(start, cfg.steps):
        idx = batch_indices(len(texts), cfg.batch_size, step, cfg.seed)
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=cfg.max_length, return_tensors="pt")
        loss = combined_loss(cfg.losses, student(**enc), targets[idx])
        if not torch.isfinite(loss):
            raise DivergedError(
                f"distillation diverged: loss is {loss.item()} at step {step}; the last good checkpoint is in "
                f"{work_dir} — lower distill.lr and re-run to resume"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, losses[-1])
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            save_checkpoint(work_dir / CHECKPOINT, step + 1, student, optimizer, scheduler, losses)
    student.eval()
    return losses
