"""Data-parallel distillation under ``torchrun``: one process per rank, gradients averaged by DDP.

``torchrun --nproc_per_node N $(which edgedistill) distill CONFIG --out RUN`` starts N copies; each reads its
rank from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``)
and joins one process group — gloo on CPU, NCCL on GPUs. Every rank computes the same global batch indices for
a step and trains on its own slice of them (``rows[rank::world]``), so N ranks with batch B follow the same
optimisation path as one process with batch B. The teacher-label store is filled by chunk ``c`` on rank
``c % N``; only rank 0 writes checkpoints, evaluations and the stage folder.

A single process (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``) gets a :class:`World` of size 1 and never touches
``torch.distributed``. torch is imported only where a process group is used, so the run directory code that
takes a :class:`World` stays light for commands that never train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgedistill.errors import ConfigError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel ranks."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This rank's slice of a global batch (rank r takes rows r, r+N, …)."""
        return rows[self.rank :: self.size]

    def owns(self, chunk: int) -> bool:
        return chunk % self.size == self.rank

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def device(self) -> torch.device:
        """The device this rank trains on: its GPU under NCCL, else the CPU."""
        import torch
        import torch.distributed as dist

        if self.distributed and dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


SINGLE = World()


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from None


def current_world() -> World:
    """The world this process runs in, joining the process group on first use under torchrun.

    Raises:
        ConfigError: the torchrun environment is incomplete (e.g. ``WORLD_SIZE`` without ``MASTER_ADDR``).
    """
    size = env_int("WORLD_SIZE", 1)
    if size <= 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    world = World(env_int("RANK", 0), size, env_int("LOCAL_RANK", 0))
    if not dist.is_initialized():
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT", "RANK") if k not in os.environ]
        if missing:
            raise ConfigError(f"WORLD_SIZE={size} but {', '.join(missing)} not set; start with "
                              "`torchrun --nproc_per_node N $(which edgedistill) distill …`")
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend)
    return world


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    """All-reduce and average the gradients of parameters DDP does not own (the losses' projections)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world.size


def global_sum(value: float, world: World) -> float:
    """Sum of ``value`` over the ranks (the loss of the whole global batch)."""
    if not world.distributed:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=world.device())
    dist.all_reduce(t)
    return float(t.item())
