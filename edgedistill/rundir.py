"""Run stages in order inside a run directory, record the manifest, skip stages whose inputs did not change.

Layout of a run directory::

    DIR/manifest.json          per stage: config, input/output hashes, tool versions, wall time, metrics
    DIR/distill/student/       the distilled student (Hugging Face folder)   + untrained/, heldout.txt
    DIR/export/model.onnx      the verified ONNX export (+ tokenizer files, verification.json)
    DIR/quantize/<mode>/model.onnx
    DIR/evaluate/metrics.json  quality of every artifact, measured the same way
    DIR/bench/results.json     latency of every artifact, measured in one run
    DIR/report.md, report.json, report.png
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact, Manifest, sha256_json, sha256_path, stage_dir
from edgedistill.distill.distributed import SINGLE, World
from edgedistill.progress import console

StageFn = Callable[[Path], dict[str, Any]]


class RunDir:
    """A run directory with its manifest; ``stage`` runs one stage atomically, or skips it if unchanged."""

    def __init__(self, root: Path, force: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(self.root)
        self.force = force

    def path(self, stage: str, *parts: str) -> Path:
        return self.root.joinpath(stage, *parts)

    def stage(self, name: str, config: Any, inputs: dict[str, Path], outputs: list[str], fn: StageFn,
              world: World = SINGLE) -> dict[str, Any]:
        """Run ``fn(partial_dir)`` unless the manifest shows the same config, inputs and intact outputs.

        ``outputs`` are paths relative to the stage folder; they are hashed into the manifest.
        Returns the stage's metrics (recorded ones when skipped). Under torchrun (``world``) every rank calls
        this; the ranks other than 0 run ``fn`` on rank 0's partial folder without publishing anything, and
        return once rank 0 has published the stage.
        """
        input_hashes = {k: sha256_path(p) for k, p in inputs.items()}
        key = sha256_json({"config": config, "inputs": input_hashes})
        final = {rel: self.path(name, rel) for rel in outputs}
        if not self.force and self.manifest.is_current(name, key, final):
            console.print(f"[dim]{name}: inputs and config unchanged — skipped (use --force to redo)[/dim]")
            entry = self.manifest.stage(name) or {}
            return dict(entry.get("metrics", {}))
        if not world.main:
            metrics = fn(self.path(name).with_name(f"{name}.partial"))
            world.barrier()  # rank 0 has renamed the stage folder and recorded the manifest
            return metrics
        console.print(f"[bold]{name}[/bold] …")
        start = time.perf_counter()
        with stage_dir(self.path(name)) as partial:
            metrics = fn(partial)
        wall = time.perf_counter() - start
        self.manifest.record(name, key=key, config=config, inputs=input_hashes, outputs=final, wall_s=wall,
                             metrics=metrics)
        console.print(f"[green]{name}[/green] done in {wall:.1f} s")
        world.barrier()
        return metrics


def relocate(artifact: Artifact, partial: Path, final: Path) -> Artifact:
    """The same artifact at its place after the stage folder was renamed."""
    return replace(artifact, path=final / artifact.path.relative_to(partial))


def dump(model: Any) -> Any:
    """Config section as JSON data (pydantic models and lists of them)."""
    if isinstance(model, list):
        return [dump(m) for m in model]
    return model.model_dump(mode="json") if hasattr(model, "model_dump") else model
