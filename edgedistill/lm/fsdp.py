"""Fully sharded training (``distill.fsdp``) of a causal-LM student under torchrun, with FSDP2
(``torch.distributed.fsdp.fully_shard``): each rank holds 1/N of every parameter, gradient and optimizer moment,
and gathers one decoder layer at a time for its forward and backward. The live teacher (forward_kl, gkd) is
sharded the same way, so a teacher too big for one device fits across N.

Each decoder layer (the model's ``_no_split_modules`` classes) is sharded first, then the root (embeddings, final
norm, LM head; tied embeddings stay one parameter in the root's group). Sharding a layer moves it to the rank's
device before cutting it, so a device never holds more than one whole layer beyond its shards. FSDP2 runs on
CPUs with gloo too (torch ≥ 2.6: gloo has reduce-scatter), which is how the tests check it.

Checkpoints hold the full (gathered) state — model weights and AdamW moments by parameter name — written by
rank 0; every rank reads the file on resume and keeps its own shard. Every rank must take part in gathering.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from edgedistill.config import DistillConfig
from edgedistill.distill.distributed import World, broadcast_module
from edgedistill.distill.losses import LossSet
from edgedistill.distill.trainer import Run
from edgedistill.errors import ConfigError


def full_options(cpu_offload: bool = True) -> Any:
    """Gather whole tensors; with ``cpu_offload`` only rank 0 receives them, in host memory."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=cpu_offload)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules FSDP shards one by one: those of the classes Hugging Face never splits across devices
    (``LlamaDecoderLayer`` …); none for a model that names none (then the whole model is one group)."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names and m is not model]


def is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def shard(model: torch.nn.Module, world: World, frozen: bool = False) -> None:
    """Shard ``model`` in place over the ranks: each decoder layer, then the root (a model already sharded stays
    as it is). Its parameters become DTensors on ``world.device()``. ``frozen`` (a teacher: forward only): the
    root is resharded after its forward too (FSDP keeps a trained root gathered for the backward that follows)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if is_sharded(model):
        return
    mesh = init_device_mesh(world.device().type, (world.size,))
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh, reshard_after_forward=True if frozen else None)


def gathered_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole state dict of a sharded model on rank 0 (in host memory); empty on the other ranks. Every rank
    must call it (it all-gathers)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    state = get_model_state_dict(model, options=full_options())
    return state  # type: ignore[return-value]  # torch types the values as any state-dict value


def load_gathered(target: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a gathered state dict into an unsharded ``target`` (tied weights: a key given once fills both)."""
    missing, unexpected = target.load_state_dict(state, strict=False)
    given = {id(p) for name, p in target.named_parameters(remove_duplicate=False) if name in state}
    tied = {name for name, p in target.named_parameters(remove_duplicate=False) if id(p) in given}
    if unexpected or set(missing) - tied:
        raise ConfigError(f"distill.fsdp: the gathered student does not fit its model (missing {sorted(missing)[:3]}, "
                          f"unexpected {sorted(unexpected)[:3]}); train without distill.fsdp")


class ShardedRun(Run):
    """A training run whose student is sharded with FSDP2 instead of wrapped in DDP; its checkpoint state is the
    full one (:func:`gathered_weights`, AdamW moments by parameter name), gathered on rank 0."""

    def __init__(self, student: torch.nn.Module, losses: LossSet, cfg: DistillConfig, world: World):
        broadcast_module(student, world)
        shard(student, world)
        # Run wraps the student in DDP for a distributed world; FSDP takes that place, so the Run is set up as for
        # one process (the optimizer over the student's shards) and then given its real world.
        super().__init__(student, losses, cfg, replace(world, size=1))  # type: ignore[arg-type]
        self.world = world

    def state(self) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        optimizer = get_optimizer_state_dict(self.student, self.optimizer, options=full_options())
        return {**bookkeeping_state(self), "model": gathered_weights(self.student), "optimizer": optimizer,
                "sharded": True}

    def restore(self, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        check_layout(state, sharded=True)
        set_model_state_dict(self.student, state["model"], options=full_options(cpu_offload=False))
        set_optimizer_state_dict(self.student, self.optimizer, state["optimizer"],
                                 options=full_options(cpu_offload=False))
        restore_bookkeeping(self, state)


def bookkeeping_state(run: Run) -> dict[str, Any]:
    """A Run's checkpoint state apart from the model and optimizer (which need gathering when sharded)."""
    return {"step": run.step, "loss_modules": run.losses.state_dict(), "scheduler": run.scheduler.state_dict(),
            "losses": run.history, "evals": run.evals, "best": run.best}


def restore_bookkeeping(run: Run, state: dict[str, Any]) -> None:
    """Everything of a checkpoint but the model and optimizer back into ``run`` (as :meth:`Run.restore`)."""
    run.losses.load_state_dict(state.get("loss_modules", {}))
    run.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    run.step, run.history = state["step"], list(state["losses"])
    run.evals, run.best = list(state.get("evals", [])), state.get("best")


def check_layout(state: dict[str, Any], sharded: bool) -> None:
    """Raise ConfigError when a checkpoint was written with the other ``distill.fsdp`` setting (its optimizer
    state is keyed differently)."""
    if bool(state.get("sharded", False)) != sharded:
        written, now = ("with", "without") if not sharded else ("without", "with")
        raise ConfigError(f"the checkpoint was written {written} distill.fsdp and this run is {now} it; set "
                          "distill.fsdp as before to resume, or delete checkpoint.pt to start over")
