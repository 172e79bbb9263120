"""The training loop of a causal-LM student: the configured losses on batches of teacher answers and real text,
and, with ``gkd``, a fraction λ of batches answered by the student itself and scored by the teacher (on-policy).

The optimizer, schedule, checkpoints (resumed after a kill), the seeded batch order, divergence checks and DDP are
the encoder trainer's (:mod:`edgedistill.distill.trainer`); what differs is the batch and the logits it scores.

A step's loss is each loss's mean over the response tokens of the whole global batch: every micro-batch's (and,
under torchrun, every rank's) mean is weighted by its share of those tokens, counted over all ranks first. So one
process, N DDP ranks, N FSDP ranks (``distill.fsdp``, :mod:`edgedistill.lm.fsdp`) and any ``grad_accum`` take the
same optimisation path. On-policy answers are sampled with a seed per (step, row), so they do not depend on which
rank draws them either.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgedistill.config import DistillConfig, LossSpec
from edgedistill.distill.capture import ModelInfo, capture, model_info
from edgedistill.distill.distributed import World, current_world, global_sum, global_sums
from edgedistill.distill.losses import LossSet
from edgedistill.distill.pause import checkpoint_due, last_step
from edgedistill.distill.trainer import (
    CHECKPOINT,
    Run,
    apply_step,
    autocast,
    batch_indices,
    check_finite,
    load_checkpoint,
    save_checkpoint,
    set_dropout,
)
from edgedistill.errors import ConfigError
from edgedistill.lm.batches import Batch, collate
from edgedistill.lm.records import SequenceTargets
from edgedistill.progress import console

MASKS = ("mask", "sparse_mask", "target_mask", "attention_mask")


def gkd_spec(cfg: DistillConfig) -> LossSpec | None:
    return next((s for s in cfg.losses if s.name == "gkd"), None)


def on_policy_step(cfg: DistillConfig, step: int) -> bool:
    """Whether ``step`` trains on the student's own answers (seeded, so a resumed run makes the same choice)."""
    spec = gkd_spec(cfg)
    return spec is not None and float(np.random.default_rng([cfg.seed, step, 7]).random()) < spec.on_policy


@contextmanager
def seeded(seed: list[int], device: torch.device) -> Iterator[None]:
    """torch's generators seeded from ``seed`` inside the block, and as they were after it."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(np.random.default_rng(seed).integers(2**62)))
        yield


class LMData:
    """The training sequences and how a batch of them is made (teacher answers, or the student's own)."""

    def __init__(self, seqs: list[SequenceTargets], pad_id: int, stops: list[int], k: int):
        self.seqs, self.pad_id, self.stops, self.k = seqs, pad_id, stops, k


@torch.no_grad()
def student_answers(student: Any, data: LMData, rows: np.ndarray, max_new_tokens: int, seed: list[int],
                    device: torch.device, calls: int = 0) -> list[SequenceTargets]:
    """The student's own sampled answers (T = 1) to the prompts of ``data.seqs[rows]``, as sequences without
    teacher targets (the live teacher scores them in the loss). Row ``i`` samples with seed ``seed + [i]``.

    ``calls`` > ``len(rows)``: a sharded student (FSDP) must run the same forwards on every rank, so the first
    prompt is answered again (and dropped) until ``calls`` answers were made, each to ``max_new_tokens`` tokens.
    """
    answers = []
    was_training = student.training
    student.eval()
    order = [int(i) for i in rows] + [int(rows[0])] * max(calls - len(rows), 0)
    for n, i in enumerate(order):
        seq = data.seqs[i]
        prompt = torch.from_numpy(seq.input_ids[: seq.response_start]).unsqueeze(0).to(device)
        with seeded([*seed, i], device):
            out = student.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                   temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                                   pad_token_id=data.pad_id, eos_token_id=data.stops, synced_gpus=calls > 0)
        if n >= len(rows):
            continue
        new = out[0, seq.response_start:].tolist()
        end = next((j for j, t in enumerate(new) if t in data.stops), None)
        new = new if end is None else new[: end + 1]
        answers.append(SequenceTargets(np.concatenate([seq.input_ids[: seq.response_start], new or [data.pad_id]]),
                                       seq.response_start))
    student.train(was_training)
    return answers


def step_batches(run: Run, data: LMData, idx: np.ndarray, sharded: bool) -> list[Batch]:
    """This rank's micro-batches of the global batch ``idx``: the same number on every rank (sharded models run
    collectives in each forward), of teacher answers or, on an on-policy step, of the student's own."""
    cfg, world = run.cfg, run.world
    local = world.shard(idx)
    parts = np.array_split(np.arange(len(local)), min(cfg.grad_accum, len(idx) // world.size))
    spec = gkd_spec(cfg)
    if spec is None or not on_policy_step(cfg, run.step):
        return [collate([data.seqs[int(local[j])] for j in part], data.pad_id, data.k) for part in parts]
    calls = -(-len(idx) // world.size) if sharded else 0
    own = student_answers(run.student, data, local, spec.max_new_tokens, [cfg.seed, run.step, 5],
                          world.device(), calls)
    return [collate([own[int(j)] for j in part], data.pad_id, data.k, own=True) for part in parts]


def micro_batch_loss(run: Run, teacher: Any, batch: Batch, tokens: dict[str, float]) -> torch.Tensor:
    """The weighted losses of one micro-batch, each its token mean times the micro-batch's share of the global
    batch's tokens (``tokens``: the global count per mask), so the shares add up to the global mean."""
    device = run.world.device()
    batch = {name: value.to(device) for name, value in batch.items()}
    feeds = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    hooked = [k for k in run.losses.student_keys() if k != "output"], \
        [k for k in run.losses.teacher_keys() if k != "output"]  # hidden states, through the family's adapter
    with autocast(run.cfg, device):
        teacher_out: dict[str, torch.Tensor] = {}
        if teacher is not None:
            with torch.no_grad(), capture(teacher, hooked[1], "teacher") as teacher_out:
                teacher_out["output"] = teacher(**feeds, use_cache=False).logits
        with capture(run.student, hooked[0], "student") as student_out:
            student_out["output"] = run.model(**feeds, use_cache=False).logits
        total = torch.zeros((), device=device)
        for part in run.losses.parts:
            spec: LossSpec = part.spec  # type: ignore[assignment]
            mask = getattr(part, "mask_key", "mask")  # each LM loss names the positions it averages over
            share = batch[mask].bool().sum().double() / max(tokens[mask], 1.0)
            total = total + spec.weight * part(student_out, teacher_out, batch).float() * share.float()
        return total


def token_counts(batches: list[Batch], world: World) -> dict[str, float]:
    """Positions of each mask over every micro-batch of every rank (one all-reduce)."""
    local = [float(sum(b[m].bool().sum().item() for b in batches)) for m in MASKS]
    return dict(zip(MASKS, global_sums(local, world)))


def optimizer_step(run: Run, data: LMData, teacher: Any, sharded: bool = False) -> float:
    """One step on the global batch (each rank its slice, micro-batches of ``grad_accum``); returns its loss."""
    cfg, world = run.cfg, run.world
    idx = batch_indices(len(data.seqs), cfg.batch_size, run.step, cfg.seed)
    batches = step_batches(run, data, idx, sharded)
    tokens = token_counts(batches, world)
    run.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for j, batch in enumerate(batches):
        no_sync = getattr(run.model, "no_sync", None)
        with nullcontext() if j == len(batches) - 1 or no_sync is None else no_sync():
            loss = micro_batch_loss(run, teacher, batch, tokens)
            check_finite(run, loss)
            (loss * world.size).backward()  # DDP and FSDP average gradients over the ranks
        total += loss.item()
    apply_step(run)
    return global_sum(total, world)


def check_ranks(cfg: DistillConfig, n: int, world: World) -> None:
    if min(cfg.batch_size, n) < world.size:
        raise ConfigError(f"distill.batch_size {cfg.batch_size} with {n} training sequences gives fewer rows per "
                          f"step than the {world.size} ranks; each rank needs at least one")


def start_run(student: Any, teacher: Any, cfg: DistillConfig, world: World, sharded: bool) -> Run:
    """The Run: DDP (or nothing) around ``student`` moved to the device, or FSDP shards of it; the teacher on the
    device, or sharded in place too."""
    device = world.device()
    teacher_info = model_info(teacher, "teacher") if teacher is not None else ModelInfo("teacher", False)
    losses = LossSet(cfg.losses, model_info(student, "student"), teacher_info).to(device)
    if not sharded:
        if teacher is not None:
            teacher.to(device).eval()
        return Run(student.to(device), losses, cfg, world)
    from edgedistill.lm.fsdp import ShardedRun, shard

    if teacher is not None:
        shard(teacher.eval(), world, frozen=True)
    return ShardedRun(student, losses, cfg, world)


def resume(run: Run, work_dir: Path, sharded: bool) -> None:
    from edgedistill.lm.fsdp import check_layout

    state = load_checkpoint(work_dir / CHECKPOINT)
    if state is None:
        return
    check_layout(state, sharded)
    run.restore(state)
    if run.world.main:
        console.print(f"resuming from step {run.step} of {run.cfg.steps} ({work_dir / CHECKPOINT})")


def checkpoint(run: Run, work_dir: Path, sharded: bool) -> None:
    """Rank 0 writes the checkpoint; sharded, every rank first helps gather it."""
    if run.world.main or sharded:
        state = run.state()
        if run.world.main:
            save_checkpoint(work_dir / CHECKPOINT, state)


def train_lm(student: Any, data: LMData, cfg: DistillConfig, work_dir: Path, teacher: Any = None,
             on_step: Callable[[int, float], None] | None = None, world: World | None = None,
             stop_after: int | None = None) -> list[float]:
    """Train ``student`` (a causal LM) in place on ``data``; return the loss per step. ``teacher`` (its model)
    runs live when a loss needs full logits (forward_kl, gkd). ``stop_after``: stop at that step of the schedule
    and checkpoint there (:mod:`edgedistill.distill.pause`).

    With ``cfg.fsdp`` under torchrun a copy of the student trains sharded, and at the end its gathered weights are
    loaded into ``student`` on rank 0 only (the other ranks' ``student`` stays untrained: they publish nothing);
    the live teacher is sharded in place and stays so. Without torchrun ``cfg.fsdp`` changes nothing.

    Raises:
        ConfigError: fewer rows per step than ranks, or a checkpoint written with the other ``distill.fsdp``.
        DivergedError: the loss is NaN/inf (the last good checkpoint stays in ``work_dir``, naming the step).
    """
    torch.manual_seed(cfg.seed)
    world = world or current_world()
    check_ranks(cfg, len(data.seqs), world)
    sharded = cfg.fsdp and world.distributed
    model = copy.deepcopy(student) if sharded else student
    run = start_run(model, teacher, cfg, world, sharded)
    resume(run, work_dir, sharded)
    if cfg.dropout is not None:
        set_dropout(model, cfg.dropout)
    model.train()
    until = last_step(cfg, stop_after)
    while run.step < until:
        run.history.append(optimizer_step(run, data, teacher, sharded))
        run.step += 1
        if on_step is not None:
            on_step(run.step, run.history[-1])
        if checkpoint_due(run.step, cfg, until):
            checkpoint(run, work_dir, sharded)
    if sharded:
        from edgedistill.lm.fsdp import gathered_weights, load_gathered

        weights = gathered_weights(model)
        if world.main:
            load_gathered(student, weights)
    student.to("cpu").eval()
    return run.history
