"""Text-generation distillation under torchrun (2 gloo ranks on CPU): DDP and FSDP2 (``distill.fsdp``) follow the
single-process run — each loss is the token mean of the whole global batch, however the batch is split — the
teacher answers each prompt once, and an FSDP run resumes from its gathered checkpoint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file
from support.lm_training import STEPS, distill_config, student_of, teacher_and_data
from support.tiny_lm import make_tiny_lm
from typer.testing import CliRunner

from edgedistill.cli import app
from edgedistill.distill.distributed import World, chunks_to_fill, main_first
from edgedistill.errors import ConfigError

pytest.importorskip("torch.distributed")
SUPPORT = Path(__file__).parents[1] / "support"
PROMPTS = 10


def clean_env() -> dict[str, str]:
    """This environment without torchrun's variables, one thread a process (the ranks share two cores)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return env | {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def launch(args: list[str], ranks: int = 1) -> str:
    """Run ``python -m …args`` in one process, or under torchrun with ``ranks`` processes; return its output."""
    prefix = [sys.executable] + (["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
                                 if ranks > 1 else [])
    done = subprocess.run([*prefix, *args], env=clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-LM distill config (10 prompts in chunks of 4; sparse_kl, forward_kl with the live teacher, seqkd;
    global batch 6 in 2 micro-batches a rank) and its single-process run in ``single/``."""
    root = tmp_path_factory.mktemp("lm-ddp")
    teacher = make_tiny_lm(root / "teacher")
    words = "dog cat man woman ball car house park guitar piano".split()
    (root / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"tell me about the {w}"}) + "\n"
                                                for w in words[:PROMPTS]))
    (root / "text.txt").write_text("\n".join(f"the {a} and the {b} play in the park" for a in words for b in words[:3]))
    cfg = {
        "name": "tiny-lm-ddp",
        "teacher": {"source": "huggingface", "path": str(teacher), "task": "text-generation",
                    "generation": {"max_new_tokens": 6, "top_logprobs": 5, "batch_size": 4}},
        "student": {"from_teacher": {"layers": [0, 3]}},
        "data": {"train": [{"source": "text-lines", "path": "text.txt"}], "holdout": 4,
                 "prompts": {"source": "jsonl", "path": "prompts.jsonl"}, "heldout_prompts": 2},
        "distill": {"losses": [{"name": "sparse_kl"}, {"name": "forward_kl", "weight": 0.5},
                               {"name": "seqkd", "weight": 0.1}],
                    "steps": 3, "batch_size": 6, "grad_accum": 2, "lr": 1e-3, "keep_better": False},
    }
    (root / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["distill", str(root / "ddp.yaml"), "--out", str(root / "single")])
    assert result.exit_code == 0, result.output
    return root


def weights(run: Path, folder: str = "student") -> dict[str, np.ndarray]:
    return load_file(run / "distill" / folder / "model.safetensors")


def test_two_ddp_ranks_match_one_process(runs: Path) -> None:
    mode = "ddp"
    output = launch(["-m", "edgedistill", "distill", str(runs / "ddp.yaml"), "--out", str(runs / mode)], ranks=2)
    one, two, untrained = weights(runs / "single"), weights(runs / mode), weights(runs / "single", "untrained")
    assert one.keys() == two.keys()
    moved = max(float(np.abs(one[k] - untrained[k]).max()) for k in one)
    worst = max(float(np.abs(one[k] - two[k]).max()) for k in one)
    assert moved > 1e-3  # training changed the weights …
    assert worst < 1e-5, f"{mode} differs from one process by {worst}"  # … and two ranks took the same path
    metrics = [json.loads((runs / r / "manifest.json").read_text())["stages"]["distill"]["metrics"]
               for r in ("single", mode)]
    assert [m["world_size"] for m in metrics] == [1, 2]
    for key in ("loss_first", "loss_last"):  # the loss of the whole global batch, summed over the ranks' slices
        assert metrics[1][key] == pytest.approx(metrics[0][key], rel=1e-5)
    assert metrics[1]["teacher_non_embedding_params"] == metrics[0]["teacher_non_embedding_params"]
    # each prompt answered once: the ranks shared the chunks (4 + 4 + 2 prompts), and every one is stored
    answered = [int(n) for n in re.findall(r"teacher answering: (\d+)/\1 \(100%\)", output)]
    assert sorted(answered) == [4, 6], output[-2000:]
    assert metrics[1]["cache"]["examples"] == PROMPTS and metrics[1]["cache"]["missing_chunks"] == 0
    assert not list((runs / mode).glob("*.partial"))


def test_fsdp_resumes_from_its_gathered_checkpoint(runs: Path, tmp_path: Path) -> None:
    """2 FSDP ranks, stopped after step 2 and resumed from the checkpoint of step 1, with on-policy gkd steps on
    both sides of it, end where one uninterrupted process ends."""
    cfg = distill_config(fsdp=True)
    from edgedistill.lm.trainer import on_policy_step

    assert [on_policy_step(cfg, s) for s in range(STEPS)] == [True, False, True, False]
    output = launch([str(SUPPORT / "lm_training.py"), str(runs / "teacher"), str(tmp_path / "work"),
                     str(tmp_path / "out")], ranks=2)
    assert "resuming from step 1 of 4" in output
    seen = json.loads((tmp_path / "out" / "seen.json").read_text())
    assert seen["teacher_shard_rows"] == 200  # 400 embedding rows, half on each rank
    assert seen["checkpoint_step"] == 1 and seen["sharded"] and seen["full_weights"]
    assert seen["missing"] in ([], ["lm_head.weight"])  # tied to the embeddings

    torch.manual_seed(0)
    lm, data = teacher_and_data(runs / "teacher")
    reference = student_of(lm.model)
    # AdamW moments by parameter name, one entry per parameter (the tied head is the embedding)
    assert seen["optimizer_by_name"] and seen["optimizer_params"] == len(list(reference.parameters()))
    from edgedistill.lm.trainer import train_lm

    losses = train_lm(reference, data, cfg, tmp_path / "ref", lm.model, world=World())  # fsdp: no effect alone
    resumed = torch.load(tmp_path / "out" / "student.pt", weights_only=True)
    worst = max(float((reference.state_dict()[k] - v).abs().max()) for k, v in resumed.items())
    assert worst < 1e-5, f"resumed FSDP run differs from one process by {worst}"
    assert seen["losses"] == pytest.approx(losses, rel=1e-5, abs=1e-7)  # gkd's JSD is ~1e-4 here


def test_loss_is_the_token_mean_of_the_global_batch_whatever_the_split(runs: Path, tmp_path: Path) -> None:
    """grad_accum 3 on one process: its step-0 loss is the token mean over the whole batch, as computed by the
    loss functions on the whole batch at once (micro-batches of other token counts weigh by their tokens)."""
    from edgedistill.distill.trainer import batch_indices
    from edgedistill.lm import losses as lm_losses
    from edgedistill.lm.batches import collate
    from edgedistill.lm.trainer import train_lm

    lm, data = teacher_and_data(runs / "teacher")
    cfg = distill_config(fsdp=False).model_copy(update={"steps": 1, "grad_accum": 3, "losses": [
        distill_config(False).losses[0], distill_config(False).losses[1]]})
    rows = batch_indices(len(data.seqs), cfg.batch_size, 0, cfg.seed)
    batch = collate([data.seqs[int(i)] for i in rows], data.pad_id, data.k)
    assert len({int(batch["mask"][j].sum()) for j in range(len(rows))}) > 1  # rows of different lengths
    student = student_of(lm.model)
    with torch.no_grad():
        feeds = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        logits, teacher = student(**feeds).logits, lm.model(**feeds).logits
        expected = (lm_losses.sparse_kl(logits, batch["top_ids"], batch["top_logprobs"], batch["sparse_mask"])
                    + 0.5 * lm_losses.forward_kl(logits, teacher, batch["mask"]))
    [loss] = train_lm(student, data, cfg, tmp_path, lm.model, world=World())
    assert loss == pytest.approx(float(expected), rel=1e-5)


def test_chunks_are_shared_or_left_to_rank_zero() -> None:
    one_of_two, zero_of_two = World(rank=1, size=2), World(rank=0, size=2)
    assert chunks_to_fill(one_of_two, [0, 1, 2, 3, 5], shared=True) == [1, 3, 5]
    assert chunks_to_fill(one_of_two, [0, 1, 2], shared=False) == []  # a remote teacher: one client, on rank 0
    assert chunks_to_fill(zero_of_two, [0, 1, 2], shared=False) == [0, 1, 2]
    assert main_first(World(), lambda refresh: refresh, refresh=True) is True


def test_too_few_rows_for_the_ranks_and_a_checkpoint_of_the_other_layout() -> None:
    from edgedistill.lm.fsdp import check_layout
    from edgedistill.lm.trainer import check_ranks

    with pytest.raises(ConfigError, match="fewer rows per step than the 4 ranks"):
        check_ranks(distill_config(False), 3, World(rank=0, size=4))
    with pytest.raises(ConfigError, match="written with distill.fsdp and this run is without it"):
        check_layout({"sharded": True}, sharded=False)
    check_layout({}, sharded=False)
