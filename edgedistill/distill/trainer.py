"""The distillation loop: the student's outputs (and hooked intermediates) regress onto the teacher's.

AdamW with warm-up and linear or cosine decay, gradient clipping, gradient accumulation, bf16 autocast where
the device supports it, seeded batch order, periodic evaluation with best-weights keeping. The batch for step
``s`` depends only on the seed and ``s``, so a run resumed from a checkpoint sees exactly the batches an
uninterrupted run would. Checkpoints (model, loss parameters, optimizer, scheduler, RNG, step, best score)
are written atomically every ``checkpoint_every`` steps; a run killed at any moment resumes from the last.
Under ``torchrun`` the student is wrapped in DistributedDataParallel and each rank trains on its slice of the
global batch (see :mod:`edgedistill.distill.distributed`); rank 0 alone writes checkpoints and evaluates.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgedistill.artifacts import atomic_write_bytes, atomic_write_json
from edgedistill.config import DistillConfig
from edgedistill.distill.capture import ModelInfo, capture, model_info
from edgedistill.distill.distributed import World, average_gradients, current_world, global_sum
from edgedistill.distill.losses import LossSet
from edgedistill.distill.pause import checkpoint_due, last_step
from edgedistill.distill.schedules import linear_schedule, lr_factor
from edgedistill.errors import ConfigError, EdgeDistillError
from edgedistill.models.task_model import TaskModel, model_inputs
from edgedistill.progress import console

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
EVALS = "evals.json"
Targets = np.ndarray | Callable[[np.ndarray], np.ndarray]
Encode = Callable[[np.ndarray], dict[str, torch.Tensor]]  # row indices -> model inputs (+ optional "labels")

__all__ = ["CHECKPOINT", "DivergedError", "batch_indices", "linear_schedule", "text_encoder", "train",
           "train_batches"]


class DivergedError(EdgeDistillError):
    """The loss became NaN or infinite."""


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices of the batch for ``step``: epochs are seeded permutations, so the order is reproducible."""
    per_epoch = max(n // batch_size, 1)
    epoch, pos = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[pos * batch_size : (pos + 1) * batch_size]


def autocast(cfg: DistillConfig, device: torch.device) -> torch.autocast:
    """bf16 autocast when asked for and supported (CPU, or a GPU with bf16); otherwise a disabled context."""
    supported = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16" and supported)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({**state, "torch_rng": torch.get_rng_state()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, weights_only=True)
    return state


class Run:
    """Everything one training run updates, so it can be checkpointed and restored as one."""

    def __init__(self, student: TaskModel, losses: LossSet, cfg: DistillConfig, world: World):
        self.student, self.losses, self.cfg, self.world = student, losses, cfg, world
        self.model: torch.nn.Module = student  # what the forward pass calls: the student, or DDP around it
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(student, find_unused_parameters=True)
        params = [*student.parameters(), *losses.parameters()]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        warmup = math.ceil(cfg.warmup_ratio * cfg.steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(cfg.schedule, cfg.steps, warmup))
        self.step, self.history, self.evals = 0, [], []  # type: ignore[var-annotated]
        self.best: float | None = None

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "model": self.student.state_dict(), "loss_modules": self.losses.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "losses": self.history, "evals": self.evals, "best": self.best}

    def restore(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["model"])
        self.losses.load_state_dict(state.get("loss_modules", {}))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.history = state["step"], list(state["losses"])
        self.evals, self.best = list(state.get("evals", [])), state.get("best")


def build_losses(student: TaskModel, teacher: torch.nn.Module | None, cfg: DistillConfig) -> LossSet:
    teacher_info = model_info(teacher, "teacher") if teacher is not None else ModelInfo("teacher", False)
    losses = LossSet(cfg.losses, model_info(student, "student"), teacher_info)
    if losses.white_box and teacher is None:
        raise ConfigError("distill.losses: a loss needs the teacher's intermediate tensors; give a white-box teacher")
    return losses


def text_encoder(tokenizer: Any, texts: list[str], max_length: int, model: TaskModel | None = None) -> Encode:
    """Make the samples at the given rows (texts, or image paths) into ``model``'s inputs with its Task (padded to
    the longest, truncated at ``max_length``); without ``model``, texts through ``tokenizer``."""

    def encode(rows: np.ndarray) -> dict[str, torch.Tensor]:
        batch = [texts[i] for i in rows]
        if model is not None:
            return model_inputs(model, tokenizer, batch, max_length)
        return dict(tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"))

    return encode


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every ``nn.Dropout`` of ``model`` to ``p`` (Hugging Face attention reads its dropout module's ``p`` too)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def batch_loss(run: Run, teacher: torch.nn.Module | None, enc: dict[str, torch.Tensor],
               target: torch.Tensor) -> torch.Tensor:
    """Loss of one micro-batch: student forward with hooks, live teacher forward when intermediates are needed.

    ``enc`` holds the model inputs and, for losses that use them, ``labels`` (not passed to the models).
    """
    losses = run.losses
    device = next(run.student.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    inputs = {k: v for k, v in enc.items() if k != "labels"}
    with autocast(run.cfg, device):
        t: dict[str, torch.Tensor] = {}
        if teacher is not None and losses.white_box:
            with torch.no_grad(), capture(teacher, losses.teacher_keys(), "teacher") as t:
                teacher(**inputs)
        with capture(run.student, losses.student_keys(), "student") as s:
            s["output"] = run.model(**inputs)
        t["output"] = target.to(device)
        return losses(s, t, enc)


def check_finite(run: Run, loss: torch.Tensor) -> None:
    """Raise DivergedError on every rank when the loss is NaN/inf on any."""
    bad = global_sum(0.0 if torch.isfinite(loss) else 1.0, run.world)
    if bad:
        raise DivergedError(f"distillation diverged: loss is {loss.item()} at step {run.step}; the last good "
                            "checkpoint is kept — lower distill.lr and re-run to resume")


def optimizer_step(run: Run, encode: Encode, n: int, targets: Targets, teacher: torch.nn.Module | None) -> float:
    """One step on the global batch; returns its loss (the mean over the whole batch, on every rank).

    Each rank takes its slice of the batch; a micro-batch's mean loss is weighted by its share of the global
    batch (times the rank count, as DDP averages gradients over ranks), so the gradient is the global mean's.
    """
    cfg, world = run.cfg, run.world
    idx = batch_indices(n, cfg.batch_size, run.step, cfg.seed)
    local = world.shard(idx)
    run.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    parts = np.array_split(local, min(cfg.grad_accum, len(local)))
    for j, part in enumerate(parts):
        last = j == len(parts) - 1
        no_sync = getattr(run.model, "no_sync", None)
        with nullcontext() if last or no_sync is None else no_sync():
            enc = encode(part)
            rows = targets[part] if isinstance(targets, np.ndarray) else targets(part)
            loss = batch_loss(run, teacher, enc, torch.as_tensor(np.asarray(rows))) * (len(part) / len(idx))
            check_finite(run, loss)
            (loss * world.size).backward()
        total += loss.item()
    apply_step(run)
    return global_sum(total, world)


def apply_step(run: Run) -> None:
    """After the backward passes of a step: the loss modules' gradients averaged over ranks, the global gradient
    norm clipped, then the optimizer and schedule stepped."""
    average_gradients(list(run.losses.parameters()), run.world)
    torch.nn.utils.clip_grad_norm_([p for g in run.optimizer.param_groups for p in g["params"]], run.cfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()


def maybe_evaluate(run: Run, evaluate: Callable[[TaskModel], float] | None, work_dir: Path) -> None:
    """Every ``eval_every`` steps: score the student (higher is better) and keep the best weights."""
    if evaluate is None or run.cfg.eval_every is None or run.step % run.cfg.eval_every or not run.world.main:
        return
    run.student.eval()
    with torch.no_grad():
        score = float(evaluate(run.student))
    run.student.train()
    run.evals.append({"step": run.step, "score": score})
    atomic_write_json(work_dir / EVALS, run.evals)
    if run.best is None or score > run.best:
        run.best = score
        buf = io.BytesIO()
        torch.save(run.student.state_dict(), buf)
        atomic_write_bytes(work_dir / BEST, buf.getvalue())


def train(student: TaskModel, tokenizer: Any, texts: list[str], teacher_outputs: Targets, cfg: DistillConfig,
          work_dir: Path, on_step: Callable[[int, float], None] | None = None,
          teacher: torch.nn.Module | None = None, evaluate: Callable[[TaskModel], float] | None = None,
          world: World | None = None, stop_after: int | None = None) -> list[float]:
    """Train ``student`` on ``texts`` (see :func:`train_batches`); return the loss per step."""
    return train_batches(student, text_encoder(tokenizer, texts, cfg.max_length, student), len(texts), teacher_outputs,
                         cfg, work_dir, on_step, teacher, evaluate, world, stop_after)


def train_batches(student: Any, encode: Encode, n: int, teacher_outputs: Targets, cfg: DistillConfig,
                  work_dir: Path, on_step: Callable[[int, float], None] | None = None,
                  teacher: torch.nn.Module | None = None, evaluate: Callable[[Any], float] | None = None,
                  world: World | None = None, stop_after: int | None = None) -> list[float]:
    """Train ``student`` in place on ``n`` rows given by ``encode``; return the loss per step.

    ``stop_after``: stop at that step of the schedule and checkpoint there (:mod:`edgedistill.distill.pause`);
    the best-weights choice is then left to the run that reaches the end.

    Resumes from ``work_dir/checkpoint.pt``. Any module works as student (texts, images: whatever ``encode``
    feeds it). Under torchrun (``world``, default: from the environment) every rank calls this with the same
    arguments; rank 0 writes the checkpoints.

    ``teacher_outputs`` are the teacher's final outputs, an (N, D) array or a function of row indices (a
    label store); ``teacher`` (white-box) runs live only when a loss needs intermediate tensors.

    Raises:
        ConfigError: a loss cannot be set up with these models (checked before the first step).
        DivergedError: the loss is NaN/inf (the last good checkpoint stays in ``work_dir``).
    """
    torch.manual_seed(cfg.seed)
    world = world or current_world()
    if cfg.batch_size < world.size:
        raise ConfigError(f"distill.batch_size {cfg.batch_size} is smaller than the {world.size} ranks; "
                          "each rank needs at least one row")
    student.to(world.device())
    if teacher is not None:
        teacher.to(world.device())
    run = Run(student, build_losses(student, teacher, cfg).to(world.device()), cfg, world)
    state = load_checkpoint(work_dir / CHECKPOINT)
    if state is not None:
        run.restore(state)
        if world.main:
            console.print(f"resuming from step {run.step} of {cfg.steps} ({work_dir / CHECKPOINT})")
    if cfg.dropout is not None:
        set_dropout(student, cfg.dropout)
    student.train()
    until = last_step(cfg, stop_after)
    while run.step < until:
        run.history.append(optimizer_step(run, encode, n, teacher_outputs, teacher))
        run.step += 1
        if on_step is not None:
            on_step(run.step, run.history[-1])
        maybe_evaluate(run, evaluate, work_dir)
        if checkpoint_due(run.step, cfg, until) and world.main:
            save_checkpoint(work_dir / CHECKPOINT, run.state())
    if cfg.keep_best and run.best is not None and until == cfg.steps:
        student.load_state_dict(torch.load(work_dir / BEST, weights_only=True))
    student.to("cpu").eval()
    return run.history
