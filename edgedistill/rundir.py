"""The run directory: stages run in it atomically, under a lock, recorded in its manifest, skipped when unchanged.

Layout of a run directory::

    DIR/manifest.json          per stage: config, input/output hashes, tool versions, wall time, metrics
    DIR/.lock                  held by the process working in DIR (its PID and command inside)
    DIR/cache/                 teacher outputs (label store) and calibration data, keyed by what produced them
    DIR/distill/student/       the distilled student (Hugging Face folder)   + untrained/, heldout.txt
    DIR/export/model.onnx      the verified ONNX export (+ tokenizer files, verification.json)
    DIR/fuse/model.onnx        attention fused for the deployment backend (+ fusion.json)
    DIR/quantize/<mode>/model.onnx
    DIR/evaluate/metrics.json  quality of every artifact, measured the same way
    DIR/bench/results.json     latency of every artifact, measured in one run
    DIR/report/report.md       the ledger (+ report.json, report.png, report.html)
    DIR/build/, DIR/package/   a TensorRT engine + sidecar; a device bundle (+ .tar.gz)
    DIR/estimate/              a roofline estimate (an estimate, never a measurement)

A stage writes into ``DIR/<stage>.partial/`` (a long stage checkpoints there) and is renamed into place when it
finishes. The partial folder carries the key of the config and inputs it was started under: work resumes from it
only under the same key, and ``force`` always discards it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgedistill.artifacts import (
    Artifact,
    Manifest,
    atomic_write_json,
    read_json,
    read_manifest,
    sha256_json,
    sha256_path,
    stage_dir,
)
from edgedistill.distill.distributed import SINGLE, World
from edgedistill.errors import InputError
from edgedistill.progress import console
from edgedistill.run_lock import run_lock

StageFn = Callable[[Path], dict[str, Any]]
MakeFn = Callable[[Path], list[Artifact]]
PARTIAL_KEY = ".stage-key.json"


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (``distill.lr``, ``student.from_teacher.layers``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [path for k in sorted(set(old) | set(new))
                for path in changed_keys(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))]
    return [] if old == new else [prefix or "(value)"]


def open_run_dir(root: Path) -> Path:
    """``root`` as a run directory, created if needed.

    Raises:
        InputError: it exists and is not a folder, or cannot be created.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {root} is a file, not a run directory; choose a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the run directory {root}: {err.strerror}; choose another --out") from None
    return root


class RunDir:
    """A run directory with its manifest; ``stage`` runs one stage atomically, or skips it if unchanged."""

    def __init__(self, root: Path, force: bool = False):
        self.root = open_run_dir(root)
        self.manifest = Manifest(self.root)
        self.force = force

    def path(self, stage: str, *parts: str) -> Path:
        return self.root.joinpath(stage, *parts)

    def partial(self, stage: str) -> Path:
        return self.path(stage).with_name(f"{stage}.partial")

    def stage(self, name: str, config: Any, inputs: dict[str, Path], outputs: list[str], fn: StageFn,
              world: World = SINGLE) -> dict[str, Any]:
        """Run ``fn(partial_dir)`` unless the manifest shows the same config, inputs and intact outputs.

        ``outputs`` are paths relative to the stage folder; they are hashed into the manifest.
        Returns the stage's metrics (recorded ones when skipped). Under torchrun (``world``) every rank calls
        this; rank 0 holds the run directory's lock and prepares the partial folder, the other ranks run ``fn`` on
        it without publishing anything and return once rank 0 has published the stage.

        Raises:
            InputError: another process holds the run directory.
        """
        input_hashes = {k: sha256_path(p) for k, p in inputs.items()}
        key = sha256_json({"config": config, "inputs": input_hashes})
        final = {rel: self.path(name, rel) for rel in outputs}
        if not world.main:
            manifest = Manifest(self.root)
            if not self.force and manifest.is_current(name, key, final):  # rank 0 decides the same: both skip
                return dict((manifest.stage(name) or {}).get("metrics", {}))
            world.barrier()  # rank 0 has prepared the partial folder
            metrics = fn(self.partial(name))
            world.barrier()  # rank 0 has renamed the stage folder and recorded the manifest
            return metrics
        with run_lock(self.root):
            self.manifest = Manifest(self.root)  # as the previous holder of the lock left it
            if not self.force and self.manifest.is_current(name, key, final):
                console.print(f"[dim]{name}: inputs and config unchanged — skipped (use --force to redo)[/dim]")
                entry = self.manifest.stage(name) or {}
                return dict(entry.get("metrics", {}))
            console.print(f"[bold]{name}[/bold] …")
            start = time.perf_counter()
            try:
                self.prepare_partial(name, key, {"config": config, "inputs": input_hashes})
                world.barrier()
                with stage_dir(self.path(name)) as partial:
                    metrics = fn(partial)
                    (partial / PARTIAL_KEY).unlink(missing_ok=True)
            except BaseException:
                drop_if_nothing_done(self.partial(name))
                raise
            wall = time.perf_counter() - start
            self.manifest.record(name, key=key, config=config, inputs=input_hashes, outputs=final, wall_s=wall,
                                 metrics=metrics)
        console.print(f"[green]{name}[/green] done in {wall:.1f} s")
        world.barrier()
        return metrics

    def made(self, name: str, config: Any, inputs: dict[str, Path], outputs: list[str], make: MakeFn,
             summary: tuple[str, ...] | None = (), world: World = SINGLE) -> list[Artifact]:
        """Run a stage whose work makes artifacts: ``make(partial)`` returns them inside the partial folder; the
        manifest row lists them at their final place, with the ``summary`` keys of the first one's ``meta`` as the
        row's metrics (for None, its whole ``meta`` moves there). Returns the stage's artifacts (the recorded ones
        when skipped).
        """
        def work(partial: Path) -> dict[str, Any]:
            artifacts = make(partial)
            if summary is None:
                metrics, artifacts[0] = dict(artifacts[0].meta), replace(artifacts[0], meta={})
            else:
                metrics = {k: artifacts[0].meta.get(k) for k in summary}
            entries = [artifact_entry(relocate(a, partial, self.path(name)), self.root) for a in artifacts]
            return metrics | {"artifacts": entries}

        self.stage(name, config, inputs, outputs, work, world)
        return stage_artifacts(self.root).get(name, [])

    def adopt(self, source: Path, stages: tuple[str, ...]) -> None:
        """Take ``stages`` as another run directory ``source`` made them (folders and manifest rows, which hold
        paths relative to their run directory), unless this one already holds them under the same key. A stage
        whose config or inputs then differ from what the caller asks for is redone as usual."""
        other = Manifest(source)
        for name in stages:
            entry = other.stage(name)
            if entry is None or (self.manifest.stage(name) or {}).get("key") == entry["key"]:
                continue
            shutil.rmtree(self.path(name), ignore_errors=True)
            shutil.copytree(source / name, self.path(name), symlinks=True)
            self.manifest.data["stages"][name] = entry
            atomic_write_json(self.manifest.path, self.manifest.data)

    def prepare_partial(self, name: str, key: str, made_under: dict[str, Any]) -> None:
        """Keep ``<stage>.partial`` only if it was started under ``key`` (then the stage resumes from it); say why
        it is discarded otherwise. ``force`` always discards it."""
        partial = self.partial(name)
        marker = partial / PARTIAL_KEY
        if partial.is_dir() and any(partial.iterdir()):
            previous = read_json(marker) if marker.is_file() else None
            if self.force:
                console.print(f"{name}: --force: discarding the partial work in {partial}")
            elif previous is None or previous.get("key") != key:
                before = (previous or {}).get("made_under") or {}
                changed = [*changed_keys(before.get("config"), made_under["config"]),
                           *(f"input {k}" for k in changed_keys(before.get("inputs"), made_under["inputs"]))]
                why = f"({', '.join(changed[:4])} changed)" if changed else "(no record of its config)"
                console.print(f"{name}: the partial work in {partial} was made under another config {why}; "
                              "starting afresh")
            else:
                return
            shutil.rmtree(partial)
        partial.mkdir(parents=True, exist_ok=True)
        atomic_write_json(marker, {"key": key, "made_under": made_under})


def artifact_entry(artifact: Artifact, root: Path) -> dict[str, Any]:
    """An artifact as its stage's manifest row lists it (path relative to the run directory)."""
    return {"name": artifact.name, "kind": artifact.kind, "task": artifact.task,
            "path": str(artifact.path.relative_to(root)), "meta": artifact.meta}


def stage_artifacts(run_dir: Path) -> dict[str, list[Artifact]]:
    """The artifacts a run directory holds, by the stage that made them, read from its manifest."""
    found: dict[str, list[Artifact]] = {}
    for stage, entry in read_manifest(run_dir)["stages"].items():
        for item in entry.get("metrics", {}).get("artifacts", []):
            found.setdefault(stage, []).append(Artifact(item["name"], item["kind"], run_dir / item["path"],
                                                        item["task"], item.get("meta", {})))
    return found


def run_artifacts(run_dir: Path) -> dict[str, Artifact]:
    """The artifacts a run directory holds, by name."""
    return {a.name: a for made in stage_artifacts(run_dir).values() for a in made}


def drop_if_nothing_done(partial: Path) -> None:
    """Remove a failed stage's partial folder when it holds nothing but its key (nothing to resume from)."""
    if partial.is_dir() and {p.name for p in partial.iterdir()} <= {PARTIAL_KEY}:
        shutil.rmtree(partial, ignore_errors=True)


def relocate(artifact: Artifact, partial: Path, final: Path) -> Artifact:
    """The same artifact at its place after the stage folder was renamed."""
    return replace(artifact, path=final / artifact.path.relative_to(partial))


def dump(model: Any) -> Any:
    """Config section as JSON data (pydantic models and lists of them)."""
    if isinstance(model, list):
        return [dump(m) for m in model]
    return model.model_dump(mode="json") if hasattr(model, "model_dump") else model
