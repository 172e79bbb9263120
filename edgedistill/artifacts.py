"""Run directory, atomic writes, hashes and the manifest.

A stage writes into ``DIR/<stage>.partial/`` and the folder is renamed to ``DIR/<stage>/`` only when the
stage has finished, so an interrupted run never leaves a folder that looks complete. Single files are
written to a temporary name and renamed (``os.replace`` is atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgedistill.config.base import DEFAULT_TASK

MANIFEST = "manifest.json"
ArtifactKind = Literal["hf", "gguf", "onnx", "trt", "bundle", "metrics", "results", "report",
                       "estimate", "search"]


@dataclass(frozen=True)
class Artifact:
    """A model produced or consumed by a stage.

    ``kind`` is ``hf`` (a Hugging Face model folder, run by torch), ``onnx`` (a file, run by ONNX Runtime), ``trt``
    (a TensorRT engine) or ``bundle`` (a device bundle folder, built on the device) for a model; ``metrics``
    (evaluate), ``results`` (bench), ``report``, ``estimate`` or ``search`` (the chosen student) for what a stage
    measured about models.
    ``task`` is the model's task (its output is an embedding or logits).
    """

    name: str
    kind: ArtifactKind
    path: Path
    task: str = DEFAULT_TASK
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def base_name(self) -> str:
        """``student`` for ``student-onnx`` and ``student-fused``: the model an ONNX file was made from, which
        names what later stages make of it (``student-dynamic-int8``)."""
        return self.name.removesuffix("-fused").removesuffix("-onnx")


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` as the current umask lets a new file have it (mkstemp's 0600 is too private for artifacts)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_path(path: Path) -> str:
    """Hash of a file, or of a folder's files (relative names and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def stage_dir(final: Path, keep_partial: bool = True) -> Iterator[Path]:
    """Yield ``<final>.partial`` to write into; on success replace ``final`` with it.

    On failure the partial folder stays (it may hold a checkpoint to resume from) but ``final``
    is untouched, so the previous good result survives. ``keep_partial=False`` removes it instead.
    """
    partial = final.with_name(final.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    try:
        yield partial
    except BaseException:
        if not keep_partial or not any(partial.rglob("*")):
            shutil.rmtree(partial, ignore_errors=True)  # nothing worth resuming from
        raise
    old = final.with_name(final.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(out: Path, prefix: str) -> Iterator[Path]:
    """A temporary folder inside ``out`` (same file system, so publishing from it is a rename), removed afterwards
    whatever happens: where a stage builds a file before it has passed its checks."""
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{prefix}.", dir=out))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tool_versions() -> dict[str, str]:
    """Versions of the libraries that decide an artifact's bytes and speed."""
    from importlib import metadata

    versions = {}
    for pkg in ("edgedistill", "torch", "transformers", "onnx", "onnxruntime", "onnxscript", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return versions


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """``run_dir/manifest.json``.

    Raises:
        InputError: missing, unreadable or not a manifest (a damaged file is named, with what to do).
    """
    from edgedistill.errors import InputError

    path = Path(run_dir) / MANIFEST
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise InputError(f"{run_dir} is not a run directory (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is damaged ({type(err).__name__}: {str(err).splitlines()[0]}); restore it, or "
                         "move it away to re-run every stage of this run directory") from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        raise InputError(f"{path} is not an edgedistill manifest (no 'stages'); choose another run directory")
    return data


class Manifest:
    """``DIR/manifest.json``: per stage its config, input/output hashes, tool versions, wall time and metrics."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / MANIFEST
        self.data: dict[str, Any] = read_manifest(run_dir) if self.path.exists() else {"version": 1, "stages": {}}

    def stage(self, name: str) -> dict[str, Any] | None:
        entry: dict[str, Any] | None = self.data["stages"].get(name)
        return entry

    def is_current(self, name: str, key: str, outputs: dict[str, Path]) -> bool:
        """True if stage ``name`` ran with the same key and its outputs are still as it left them."""
        entry = self.stage(name)
        if entry is None or entry.get("key") != key:
            return False
        recorded = entry.get("outputs", {})
        return set(recorded) == set(outputs) and all(
            p.exists() and sha256_path(p) == recorded[n] for n, p in outputs.items()
        )

    def record(self, name: str, *, key: str, config: Any, inputs: dict[str, str], outputs: dict[str, Path],
               wall_s: float, metrics: dict[str, Any]) -> None:
        self.data["stages"][name] = {
            "key": key,
            "config": config,
            "inputs": inputs,
            "outputs": {n: sha256_path(p) for n, p in outputs.items()},
            "paths": {n: str(p.relative_to(self.path.parent)) for n, p in outputs.items()},
            "versions": tool_versions(),
            "wall_s": round(wall_s, 3),
            "metrics": metrics,
        }
        atomic_write_json(self.path, self.data)
