"""Pausing a distillation part-way through its schedule, to look at the student and go on later.

``stop_after=k`` trains the config's own schedule (warm-up and decay over all ``distill.steps``) up to step ``k``,
checkpoints there and raises :class:`Paused` with a snapshot of the student. The stage's partial folder keeps the
checkpoint under the same config key, so the next call with the same config resumes at step ``k``: a distillation
paused at 40 and 160 and then run to the end follows exactly the trajectory of one that never paused. The student
search's proxy rungs are such pauses (:mod:`edgedistill.search.stage`), so the finalist's rungs are not thrown away.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from edgedistill.artifacts import Artifact
from edgedistill.config import DistillConfig

SNAPSHOT = "paused-student"  # inside the stage's partial folder; removed when the stage completes


class Paused(Exception):  # noqa: N818 - a signal, not an error: the stage is left to resume
    """The distillation stopped at ``step`` of ``steps``; ``student`` is its snapshot there (a Hugging Face
    folder in the stage's partial folder, valid until the stage runs again)."""

    def __init__(self, step: int, steps: int, student: Artifact):
        super().__init__(f"distillation paused at step {step} of {steps}")
        self.step, self.steps, self.student = step, steps, student


def last_step(cfg: DistillConfig, stop_after: int | None) -> int:
    """The step a training call stops at: ``stop_after`` when it comes before the schedule's end."""
    return cfg.steps if stop_after is None else min(stop_after, cfg.steps)


def checkpoint_due(step: int, cfg: DistillConfig, until: int) -> bool:
    """Whether a trainer checkpoints after ``step`` when it trains up to ``until``: every ``checkpoint_every``
    steps and at a pause, never at the schedule's end (the stage's outputs take over there)."""
    return (step % cfg.checkpoint_every == 0 or step == until) and step < cfg.steps


def pause_if_stopped(cfg: DistillConfig, stop_after: int | None, out: Path, task: str,
                     save: Callable[[Path], None] | None) -> None:
    """After training: if it stopped before the schedule's end, ``save`` the student into ``out/SNAPSHOT`` (rank 0;
    the other ranks pass None) and raise :class:`Paused`; otherwise remove any earlier snapshot (the stage is about
    to complete).

    Raises:
        Paused: training stopped at ``stop_after`` < ``cfg.steps``.
    """
    folder = out / SNAPSHOT
    if save is not None:
        shutil.rmtree(folder, ignore_errors=True)
    step = last_step(cfg, stop_after)
    if step < cfg.steps:
        if save is not None:
            save(folder)
        raise Paused(step, cfg.steps, Artifact("student", "hf", folder, task, {"step": step}))
