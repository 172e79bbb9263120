"""What a student search needs from one kind of model, behind one interface: the teacher and its held-out data,
the candidates cut from it and shipped untrained, their metrics, and their latency on the target.

:class:`~edgedistill.search.encoder.EncoderSearch` serves the encoder Tasks (sentence-embedding, classification:
latency of the graph at the bench shapes); :class:`~edgedistill.search.decoder.DecoderSearch` serves
text-generation (agreement with the teacher, latency per generated token). The search itself
(:mod:`edgedistill.search.stage`) is the same for both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from edgedistill.artifacts import Artifact
from edgedistill.config import PipelineConfig, SearchConfig
from edgedistill.search.configs import precision_steps, untrained_config
from edgedistill.search.space import Architecture, TeacherShape


@dataclass
class Scored:
    """An architecture after its untrained look: the student spec with layers pinned, and its artifacts."""

    architecture: Architecture
    spec: dict[str, Any]  # student.from_teacher, layers explicit
    fidelity: float  # the Task's headline fidelity to the teacher on held-out samples, untrained
    artifacts: dict[str, Artifact]  # precision -> shipped artifact (named after the candidate)


def ship(source: Artifact, run_dir: Path, cfg: PipelineConfig, precisions: Sequence[str]) -> dict[str, Artifact]:
    """Export, fuse and quantize ``source`` into every precision, with the pipeline's stages in ``run_dir``."""
    from edgedistill import api

    steps = precision_steps(cfg, precisions)
    _, deployed, quantized = api.ship(cfg, source, run_dir, [s for _, s in steps])
    made = {"fp32": deployed} | {precision: a for (precision, _), a in zip(steps, quantized, strict=True)}
    return {p: made[p] for p in precisions}


class TaskSearch(ABC):
    """One kind of model's side of a search (see the module doc). ``prepare`` runs first."""

    latency_iterations: ClassVar[int]  # timed runs per candidate when the config gives none

    def __init__(self, cfg: PipelineConfig, out: Path, cache_dir: Path):
        self.cfg, self.out, self.cache_dir = cfg, out, cache_dir

    @property
    def spec(self) -> SearchConfig:
        assert self.cfg.student.search is not None
        return self.cfg.student.search

    @property
    def iterations(self) -> int:
        return self.spec.latency_iterations or self.latency_iterations

    @abstractmethod
    def prepare(self) -> TeacherShape:
        """Load the teacher, check the space fits it (before any labelling), have it label what every candidate's
        distillation reads (once, into the cache) and keep the held-out data; returns the teacher's shape."""

    @abstractmethod
    def default_metric(self) -> str:
        """The metric the floor applies to when the config names none."""

    @abstractmethod
    def metrics(self, artifact: Artifact, metric: str) -> dict[str, float]:
        """The metrics of ``artifact`` (a torch folder or a shipped graph), ``metric`` among them where it is
        measured for this data."""

    @abstractmethod
    def teacher_metrics(self, metric: str) -> dict[str, float]:
        """The teacher's metrics, the reference every candidate's quality is a share of."""

    @abstractmethod
    def choose_layers(self, count: int, metric: str) -> tuple[list[int], dict[str, Any]]:
        """The teacher layers a depth of ``count`` keeps, and the scores of the subsets it chose between."""

    @abstractmethod
    def score(self, architecture: Architecture, shape: TeacherShape, layers: list[int] | None,
              folder: Path) -> Scored:
        """Derive, pin, save and ship one architecture untrained in ``folder`` (skipped stage by stage when done)."""

    @abstractmethod
    def time(self, scored: dict[str, Scored]) -> dict[str, dict[str, float]]:
        """Latency of every shipped candidate: ``{candidate: {shape label: ms}}``, all timed interleaved in one
        run (or estimated for a remote target)."""

    @abstractmethod
    def latency_kind(self) -> str:
        """How latency was found, as the records and the plot label it (measured here, or an estimate)."""

    def ship(self, source: Artifact, run_dir: Path, cfg: PipelineConfig,
             precisions: Sequence[str]) -> dict[str, Artifact]:
        return ship(source, run_dir, cfg, precisions)

    def ship_untrained(self, source: Artifact, run_dir: Path, precisions: Sequence[str]) -> dict[str, Artifact]:
        """:meth:`ship` for an untrained candidate, verified at ``search.untrained_atol``."""
        return self.ship(source, run_dir, untrained_config(self.cfg), precisions)


def task_search(cfg: PipelineConfig, out: Path, cache_dir: Path) -> TaskSearch:
    """The search side of the config's Task."""
    from edgedistill.tasks import get_task

    if get_task(cfg.teacher.task).generative:
        from edgedistill.search.decoder import DecoderSearch

        return DecoderSearch(cfg, out, cache_dir)
    from edgedistill.search.encoder import EncoderSearch

    return EncoderSearch(cfg, out, cache_dir)
