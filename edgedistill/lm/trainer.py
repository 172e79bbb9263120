"""The training loop of a causal-LM student: the configured losses on batches of teacher answers and real text,
and, with ``gkd``, a fraction λ of batches answered by the student itself and scored by the teacher (on-policy).

The optimizer, schedule, checkpoints (resumed after a kill), the seeded batch order, divergence checks and DDP are
the encoder trainer's (:mod:`edgedistill.distill.trainer`); what differs is the batch and the logits it scores.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgedistill.config import DistillConfig, LossSpec
from edgedistill.distill.capture import ModelInfo, model_info
from edgedistill.distill.distributed import World, average_gradients, current_world, global_sum
from edgedistill.distill.losses import LossSet
from edgedistill.distill.trainer import (
    CHECKPOINT,
    Run,
    autocast,
    batch_indices,
    check_finite,
    load_checkpoint,
    save_checkpoint,
    set_dropout,
)
from edgedistill.lm.batches import Batch, collate
from edgedistill.lm.records import SequenceTargets
from edgedistill.progress import console


def gkd_spec(cfg: DistillConfig) -> LossSpec | None:
    return next((s for s in cfg.losses if s.name == "gkd"), None)


def on_policy_step(cfg: DistillConfig, step: int) -> bool:
    """Whether ``step`` trains on the student's own answers (seeded, so a resumed run makes the same choice)."""
    spec = gkd_spec(cfg)
    return spec is not None and float(np.random.default_rng([cfg.seed, step, 7]).random()) < spec.on_policy


@torch.no_grad()
def student_answers(student: Any, seqs: list[SequenceTargets], pad_id: int, stops: list[int],
                    max_new_tokens: int) -> list[SequenceTargets]:
    """The student's own sampled answers (T = 1) to the prompts of ``seqs``, as sequences without teacher
    targets (the live teacher scores them in the loss)."""
    answers = []
    was_training = student.training
    student.eval()
    for seq in seqs:
        prompt = torch.from_numpy(seq.input_ids[: seq.response_start]).unsqueeze(0)
        out = student.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                               temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                               pad_token_id=pad_id, eos_token_id=stops)
        new = out[0, seq.response_start:].tolist()
        end = next((i for i, t in enumerate(new) if t in stops), None)
        new = new if end is None else new[: end + 1]
        answers.append(SequenceTargets(np.concatenate([seq.input_ids[: seq.response_start], new or [pad_id]]),
                                       seq.response_start))
    student.train(was_training)
    return answers


def batch_loss(run: Run, teacher: Any, batch: Batch) -> torch.Tensor:
    device = run.world.device()
    batch = {name: value.to(device) for name, value in batch.items()}
    feeds = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with autocast(run.cfg, device):
        teacher_out = {}
        if teacher is not None:
            with torch.no_grad():
                teacher_out["output"] = teacher(**feeds, use_cache=False).logits
        logits = run.model(**feeds, use_cache=False).logits
        return run.losses({"output": logits}, teacher_out, batch)


class LMData:
    """The training sequences and how a batch of them is made (teacher answers, or the student's own)."""

    def __init__(self, seqs: list[SequenceTargets], pad_id: int, stops: list[int], k: int):
        self.seqs, self.pad_id, self.stops, self.k = seqs, pad_id, stops, k

    def batch(self, rows: np.ndarray, own_answers: Callable[[list[SequenceTargets]], list[SequenceTargets]] | None
              ) -> Batch:
        chosen = [self.seqs[int(i)] for i in rows]
        if own_answers is not None:
            return collate(own_answers(chosen), self.pad_id, self.k, own=True)
        return collate(chosen, self.pad_id, self.k)


def optimizer_step(run: Run, data: LMData, teacher: Any) -> float:
    """One step on the global batch (each rank its slice, micro-batches of ``grad_accum``); returns its loss."""
    cfg, world = run.cfg, run.world
    idx = batch_indices(len(data.seqs), cfg.batch_size, run.step, cfg.seed)
    local = world.shard(idx)
    spec = gkd_spec(cfg)
    own = None
    if spec is not None and on_policy_step(cfg, run.step):
        def own(seqs: list[SequenceTargets]) -> list[SequenceTargets]:
            return student_answers(run.student, seqs, data.pad_id, data.stops, spec.max_new_tokens)
    run.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    parts = np.array_split(local, min(cfg.grad_accum, len(local)))
    for j, part in enumerate(parts):
        no_sync = getattr(run.model, "no_sync", None)
        with nullcontext() if j == len(parts) - 1 or no_sync is None else no_sync():
            loss = batch_loss(run, teacher, data.batch(part, own)) * (len(part) / len(idx))
            check_finite(run, loss)
            (loss * world.size).backward()
        total += loss.item()
    average_gradients(list(run.losses.parameters()), world)
    torch.nn.utils.clip_grad_norm_([p for g in run.optimizer.param_groups for p in g["params"]], cfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    return global_sum(total, world)


def train_lm(student: Any, data: LMData, cfg: DistillConfig, work_dir: Path, teacher: Any = None,
             on_step: Callable[[int, float], None] | None = None, world: World | None = None) -> list[float]:
    """Train ``student`` (a causal LM) in place on ``data``; return the loss per step. ``teacher`` (its model)
    runs live when a loss needs full logits (forward_kl, gkd).

    Raises:
        DivergedError: the loss is NaN/inf (the last good checkpoint stays in ``work_dir``, naming the step).
    """
    torch.manual_seed(cfg.seed)
    world = world or current_world()
    device = world.device()
    student.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    teacher_info = model_info(teacher, "teacher") if teacher is not None else ModelInfo("teacher", False)
    run = Run(student, LossSet(cfg.losses, model_info(student, "student"), teacher_info).to(device), cfg, world)
    state = load_checkpoint(work_dir / CHECKPOINT)
    if state is not None:
        run.restore(state)
        if world.main:
            console.print(f"resuming from step {run.step} of {cfg.steps} ({work_dir / CHECKPOINT})")
    if cfg.dropout is not None:
        set_dropout(student, cfg.dropout)
    student.train()
    while run.step < cfg.steps:
        run.history.append(optimizer_step(run, data, teacher))
        run.step += 1
        if on_step is not None:
            on_step(run.step, run.history[-1])
        if run.step % cfg.checkpoint_every == 0 and run.step < cfg.steps and world.main:
            save_checkpoint(work_dir / CHECKPOINT, run.state())
    student.to("cpu").eval()
    return run.history
