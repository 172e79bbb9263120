"""Train a 2-layer student of the tiny LM with :func:`edgedistill.lm.trainer.train_lm`: sparse_kl on the teacher's
answers and scored text, forward_kl and on-policy gkd against the live teacher, with grad accumulation.

Run under torchrun it is the interrupted-and-resumed FSDP run of tests/lm/test_lm_distributed.py::

    torchrun --nproc_per_node 2 lm_training.py TEACHER WORK OUT

The first attempt stops after step 2 (its checkpoint of step 1 stays), a second resumes from it; rank 0 saves the
student's weights to ``OUT/student.pt`` and what it saw to ``OUT/seen.json``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from edgedistill.config import DistillConfig, LossSpec
from edgedistill.lm.trainer import LMData, train_lm

STEPS = 4
PROMPTS = [f"tell me about the {w}" for w in "dog cat man woman ball car house park".split()]


def distill_config(fsdp: bool) -> DistillConfig:
    """Global batch 6 (3 rows a rank in 2 micro-batches), a checkpoint every step; seed 1 makes steps 0 and 2
    on-policy, one before the checkpoint the run resumes from and one after (the test checks)."""
    losses = [LossSpec(name="sparse_kl"), LossSpec(name="forward_kl", weight=0.5),
              LossSpec(name="gkd", weight=0.5, on_policy=0.5, max_new_tokens=4)]
    return DistillConfig(losses=losses, steps=STEPS, batch_size=6, grad_accum=2, lr=1e-3, checkpoint_every=1,
                         seed=1, fsdp=fsdp)


def teacher_and_data(teacher_dir: Path) -> tuple[Any, LMData]:
    """The tiny teacher and its training sequences: answers to :data:`PROMPTS` and scored corpus lines."""
    from edgedistill.lm.teacher_base import GenerationSettings, Prompt
    from edgedistill.lm.whitebox import WhiteBoxLM
    from support.tiny_lm import CORPUS

    lm = WhiteBoxLM.load(teacher_dir)
    prompts = [Prompt(messages=[{"role": "user", "content": p}]) for p in PROMPTS]
    answers = sorted(lm.answer(prompts, GenerationSettings(max_new_tokens=6, top_logprobs=5)), key=lambda a: a[0])
    seqs = [t for _, _, t in answers if t.response_length] + lm.score_texts(CORPUS[:6], 24, 5)
    return lm, LMData(seqs, lm.tokenizer.pad_token_id, [lm.tokenizer.eos_token_id], 5)


def student_of(teacher: Any) -> Any:
    from edgedistill.lm.layer_drop import keep_layers

    return keep_layers(teacher, [0, 3])


class Stop(Exception):
    """The first attempt's planned end (a kill, without killing the process group)."""


def interrupted_then_resumed(teacher_dir: Path, work: Path, out: Path) -> None:
    from torch.distributed.tensor import DTensor

    from edgedistill.distill.distributed import current_world

    torch.set_num_threads(1)
    world = current_world()
    lm, data = teacher_and_data(teacher_dir)
    first, second = student_of(lm.model), student_of(lm.model)
    cfg = distill_config(fsdp=True)

    def stop_at_two(step: int, loss: float) -> None:
        if step == 2:
            raise Stop

    with contextlib.suppress(Stop):
        train_lm(first, data, cfg, work, lm.model, stop_at_two, world)
    seen: dict[str, Any] = {}
    embed = lm.model.get_input_embeddings().weight
    if isinstance(embed, DTensor):  # the live teacher was sharded in place
        seen["teacher_shard_rows"] = embed.to_local().shape[0]
    if world.main:
        state = torch.load(work / "checkpoint.pt", weights_only=True)
        plain = second.state_dict()
        seen.update(checkpoint_step=state["step"], sharded=state["sharded"],
                    full_weights=all(tuple(state["model"][k].shape) == tuple(v.shape)
                                     for k, v in plain.items() if k in state["model"]),
                    missing=sorted(set(plain) - set(state["model"])),
                    optimizer_by_name=sorted(state["optimizer"]["state"]) == sorted(
                        n for n, p in second.named_parameters() if n in state["optimizer"]["state"]),
                    optimizer_params=len(state["optimizer"]["state"]))
    losses = train_lm(second, data, cfg, work, lm.model, None, world)
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
        torch.save(second.state_dict(), out / "student.pt")
        (out / "seen.json").write_text(json.dumps({**seen, "losses": losses}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `support.tiny_lm`
    interrupted_then_resumed(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
