"""Data-parallel distillation under ``torchrun``: one process per rank, gradients averaged by DDP.

``torchrun --nproc_per_node N $(which edgedistill) distill CONFIG --out RUN`` starts N copies; each reads its
rank from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``)
and joins one process group — gloo on CPU, NCCL on GPUs. Every rank computes the same global batch indices for
a step and trains on its own slice of them (``rows[rank::world]``), so N ranks with batch B follow the same
optimisation path as one process with batch B. The teacher-label store is filled by chunk ``c`` on rank
``c % N`` (a remote text-generation teacher: all on rank 0, one client keeping its rate limit); only rank 0 writes
checkpoints, evaluations and the stage folder. A text-generation student can be sharded instead of replicated
(``distill.fsdp``: :mod:`edgedistill.lm.fsdp`).

A single process (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``) gets a :class:`World` of size 1 and never touches
``torch.distributed``. torch is imported only where a process group is used, so the run directory code that
takes a :class:`World` stays light for commands that never train.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from edgedistill.errors import ConfigError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


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


def global_sums(values: list[float], world: World) -> list[float]:
    """Element-wise sums of ``values`` over the ranks, in one all-reduce (e.g. a global batch's token counts)."""
    if not world.distributed:
        return list(values)
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=world.device())
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


def main_first(world: World, make: Callable[[bool], T], refresh: bool = False) -> T:
    """``make(refresh)`` on rank 0, then ``make(False)`` on the other ranks once rank 0 is done: for a cache rank 0
    fills (or clears, ``refresh``) and the others only read."""
    if not world.distributed:
        return make(refresh)
    if world.main:
        made = make(refresh)
        world.barrier()
        return made
    world.barrier()
    return make(False)


def wait_until(world: World, ready: Callable[[], bool], poll_s: float = 2.0) -> None:
    """Return on every rank once ``ready()`` holds (e.g. every chunk of a cache is stored): a rank that is not
    ready polls, as a teacher may answer for longer than a collective waits (10–30 min), then all meet at one
    barrier. A rank that fails ends the others through torchrun."""
    if world.distributed:
        while not ready():
            time.sleep(poll_s)
    world.barrier()


def chunks_to_fill(world: World, missing: list[int], shared: bool) -> list[int]:
    """The missing chunks this rank fills: its share (chunk ``c`` on rank ``c % N``) when ``shared`` (a teacher in
    every process), else all of them on rank 0 (a remote teacher: one client keeps its rate limit and concurrency)."""
    if shared:
        return [c for c in missing if world.owns(c)]
    return missing if world.main else []


def broadcast_module(module: torch.nn.Module, world: World) -> None:
    """Overwrite every rank's parameters and buffers with rank 0's (before sharding a model each rank built, so a
    near-tie broken differently on one rank cannot leave the ranks training different weights). Tensors travel one
    at a time through this rank's device (NCCL sends from GPU memory only)."""
    if not world.distributed:
        return
    import torch
    import torch.distributed as dist

    device = world.device()
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            sent = tensor.data.to(device)
            dist.broadcast(sent, src=0)
            tensor.data.copy_(sent)
