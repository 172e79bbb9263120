"""Data-parallel distillation: `torchrun --nproc_per_node 2` (gloo, CPU) follows the single-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file
from support.tiny_models import make_tiny_bert

from edgedistill.distill.distributed import World, current_world

pytest.importorskip("torch.distributed")


def config(tmp_path: Path, texts: list[str]) -> Path:
    """Two ranks × 4 rows = a global batch of 8, accumulated in two micro-batches per rank; no dropout (its masks
    are drawn per rank). Per-row losses only: token-averaged ones weight a slice by its token count."""
    teacher = make_tiny_bert(tmp_path / "teacher", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (tmp_path / "corpus.txt").write_text("\n".join(texts) + "\n")
    cfg = {
        "name": "ddp",
        "teacher": {"path": str(teacher)},
        "student": {"from_teacher": {"layers": [1]}},
        "data": {"train": [{"source": "text-lines", "path": "corpus.txt"}], "holdout": 8},
        "distill": {"steps": 6, "batch_size": 8, "grad_accum": 2, "lr": 1e-3, "checkpoint_every": 3,
                    "keep_better": False,
                    "losses": [{"name": "embedding_mse"}, {"name": "embedding_cosine", "weight": 0.5}]},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def distill(args: list[str], out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    done = subprocess.run([*args, "-m", "edgedistill", "distill", str(out.parent / "ddp.yaml"), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def test_two_gloo_ranks_match_one_process(tmp_path, tiny_texts):
    config(tmp_path, tiny_texts * 2)
    distill([sys.executable], tmp_path / "single")
    distill([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"], tmp_path / "ddp")
    one = load_file(tmp_path / "single" / "distill" / "student" / "model.safetensors")
    two = load_file(tmp_path / "ddp" / "distill" / "student" / "model.safetensors")
    untrained = load_file(tmp_path / "single" / "distill" / "untrained" / "model.safetensors")
    assert one.keys() == two.keys()
    moved = max(float(np.abs(one[k] - untrained[k]).max()) for k in one)
    worst = max(float(np.abs(one[k] - two[k]).max()) for k in one)
    assert moved > 1e-3  # training changed the weights …
    assert worst < 1e-5, f"DDP differs from one process by {worst}"  # … and two ranks took the same path
    assert not list((tmp_path / "ddp").glob("*.partial"))
    metrics = [json.loads((tmp_path / run / "manifest.json").read_text())["stages"]["distill"]["metrics"]
               for run in ("single", "ddp")]
    assert [m["world_size"] for m in metrics] == [1, 2]
    for key in ("loss_first", "loss_last"):  # the loss of the whole global batch, summed over the ranks' slices
        # 1 - cosine near 1e-3 cancels ~3 digits of float32: also allow 1e-7 absolute (the loss is ~1e-3)
        assert metrics[1][key] == pytest.approx(metrics[0][key], rel=1e-5, abs=1e-7)


def test_world_shards_batches_and_chunks():
    world = World(rank=1, size=2)
    assert world.shard(np.arange(7)).tolist() == [1, 3, 5]
    assert [c for c in range(5) if world.owns(c)] == [1, 3]
    assert World().main and not World().distributed


def test_incomplete_torchrun_environment_is_a_clear_error(monkeypatch):
    from edgedistill.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="torchrun"):
        current_world()
