"""Which artifact a stage starts from: an Artifact, a plain path (an ONNX file, a Hugging Face folder) or a run
directory, whose manifest names what each stage made — so a user can enter the pipeline anywhere and chain stages
by plain paths."""

from __future__ import annotations

from pathlib import Path

from edgedistill.artifacts import MANIFEST, Artifact, read_json
from edgedistill.config.base import DEFAULT_TASK, GENERATIVE_TASK
from edgedistill.errors import InputError
from edgedistill.models.onnx_file import onnx_metadata
from edgedistill.rundir import stage_artifacts


def is_run_dir(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def onnx_task(path: Path) -> str:
    """The task recorded in an ONNX file's metadata by our exporter, else the default."""
    return onnx_metadata(path).get("edgedistill.task", DEFAULT_TASK)


def artifact_from_path(path: Path, task: str | None = None, name: str | None = None) -> Artifact:
    """An :class:`Artifact` for a plain path: an ``.onnx`` file or a Hugging Face model folder.

    Raises:
        InputError: the path does not exist or is neither.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"model not found: {path}")
    if path.is_file():
        if path.suffix == ".gguf":
            return Artifact(name or path.stem, "gguf", path, task or GENERATIVE_TASK)
        if path.suffix != ".onnx":
            raise InputError(f"{path}: expected an .onnx file, a GGUF file or a Hugging Face model folder")
        label = name or (path.parent.name if path.stem == "model" else path.stem)
        return Artifact(label, "onnx", path, task or onnx_task(path))
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a Hugging Face model folder (no config.json) and not a run directory")
    return Artifact(name or path.name, "hf", path, task or folder_task(path))


def folder_task(path: Path) -> str:
    """A model folder's task when none is given: text-generation for a causal LM (its ``architectures`` end in
    ``ForCausalLM``), else the default."""
    try:
        architectures = read_json(path / "config.json").get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return DEFAULT_TASK
    return GENERATIVE_TASK if any(str(a).endswith("ForCausalLM") for a in architectures) else DEFAULT_TASK


def pick(model: Path | Artifact, stages: tuple[str, ...], task: str | None = None) -> Artifact:
    """Resolve ``model``: an Artifact, a plain path, or a run directory — then the output of the first of
    ``stages`` that ran there (the student of distill, the ONNX file of export or fuse), however it was named
    (an export of ``models/bert`` is ``bert-onnx``).

    Raises:
        InputError: the path is no model, or none of the stages has run in the run directory.
    """
    if isinstance(model, Artifact):
        return model
    model = Path(model)
    if not (model.is_dir() and is_run_dir(model)):
        return artifact_from_path(model, task)
    made = stage_artifacts(model)
    for stage in stages:
        if stage in made:
            trained = [a for a in made[stage] if not a.name.endswith("-untrained")]
            return (trained or made[stage])[0]
    raise InputError(f"run directory {model} has no output of {' or '.join(stages)} yet; run "
                     f"`edgedistill {stages[-1]}` there first")


def onnx_source(model: Path | Artifact, what: str) -> Artifact:
    """The ONNX file a device stage starts from: a file, an artifact, or a run directory's fused (else exported)
    model.

    Raises:
        InputError: no ONNX model there.
    """
    source = pick(model, ("fuse", "export"))
    if source.kind != "onnx":
        raise InputError(f"{what} takes an ONNX model; {source.path} is a {source.kind} artifact — export it first")
    return source
