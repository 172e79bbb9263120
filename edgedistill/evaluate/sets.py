"""The scored sets of a run (``data.eval``, ``data.test``) read for evaluation: STS pairs, or labelled samples
whose labels are mapped to the model's class ids (through the teacher's class names where labels are names)."""

from __future__ import annotations

import json
from typing import Any

from edgedistill.artifacts import Artifact
from edgedistill.evaluate.run import EvalSet
from edgedistill.tasks.classification import LABELS_KEY, label_names


def artifact_labels(artifact: Artifact) -> list[str] | None:
    """An artifact's class names by id: a folder's config ``id2label``, or the labels an export recorded."""
    if artifact.kind == "hf":
        return label_names(json.loads((artifact.path / "config.json").read_text()))
    from edgedistill.models.onnx_file import onnx_metadata

    recorded = onnx_metadata(artifact.path).get(LABELS_KEY)
    return json.loads(recorded) if recorded else None


def read_set(source: Any, names: list[str] | None, where: str) -> EvalSet:
    """One configured scored set: (STS pairs, None) or (labelled samples, their class ids)."""
    from edgedistill.data.labelled import label_ids, read_image_folder, read_labelled_table
    from edgedistill.data.stsb import read_sts

    if source.source == "stsb":
        return read_sts(source.path), None
    data = (read_image_folder(source.path) if source.source == "image-folder" else
            read_labelled_table(source.path, source.source, source.column, source.label))
    return data, label_ids(data.labels, names, where)


def read_sets(sources: dict[str, Any], reference: Artifact | None) -> dict[str, EvalSet]:
    """The named sets, labels mapped through ``reference``'s class names (the teacher's, where there is one)."""
    names = artifact_labels(reference) if reference is not None else None
    return {name: read_set(source, names, f"data.{name}") for name, source in sources.items()}
