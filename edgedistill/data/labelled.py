"""Labelled evaluation data for classification Tasks: texts with a label column (JSONL/CSV/TSV), or images in a
folder with one sub-folder per class (``root/<class>/<image>``). A sample is a string: the text, or the image's
path (the image Task reads it). Labels stay as written until :func:`label_ids` maps them to the model's classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedistill.data.images import IMAGE_SUFFIXES, class_folders
from edgedistill.data.tables import check_columns, table_columns, table_rows
from edgedistill.errors import InputError


@dataclass(frozen=True)
class LabelledSamples:
    """Samples (texts or image paths) and their labels as written (class ids or class names), aligned."""

    samples: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.samples)


def read_labelled_table(path: Path, kind: str, column: str, label: str) -> LabelledSamples:
    """Texts of ``column`` and labels of ``label`` of a JSONL/CSV/TSV file, in row order (blank texts skipped).

    Raises:
        InputError: unreadable file, a missing column (naming those present), a row without a label, or no rows.
    """
    check_columns(table_columns(path, kind), [column, label], str(path))
    samples, labels = [], []
    try:
        for number, row in enumerate(table_rows(path, kind), 1):
            text, value = row.get(column), row.get(label)
            if value is None or not str(value).strip():
                raise InputError(f"{path}: row {number} has no '{label}'")
            if text is not None and str(text).strip():
                samples.append(str(text).strip())
                labels.append(str(value).strip())
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if not samples:
        raise InputError(f"{path}: no labelled rows")
    return LabelledSamples(samples, labels)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_folder(root: Path) -> LabelledSamples:
    """Every image under ``root``'s class folders (sorted), labelled with its folder's name.

    Raises:
        InputError: no such folder, no class sub-folders, or a class with no images.
    """
    samples, labels = [], []
    for folder in class_folders(root):
        files = image_files(folder)
        if not files:
            raise InputError(f"{folder}: class '{folder.name}' has no images ({', '.join(IMAGE_SUFFIXES)})")
        samples += [str(p) for p in files]
        labels += [folder.name] * len(files)
    return LabelledSamples(samples, labels)


def image_paths(root: Path) -> list[str]:
    """The images of a folder (unlabelled: directly inside it) or of its class sub-folders, sorted."""
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}")
    direct = image_files(root)
    return [str(p) for p in direct] if direct else read_image_folder(root).samples


def label_ids(labels: list[str], names: list[str] | None, where: str) -> np.ndarray:
    """Class ids for ``labels``: numbers as they are; names through ``names`` (the model's classes, by id).

    Raises:
        InputError: a name the model has no class for, or a class id beyond its classes.
    """
    if all(label.lstrip("-").isdigit() for label in labels):
        ids = np.asarray([int(label) for label in labels], dtype=np.int64)
    else:
        lookup = {name: i for i, name in enumerate(names or sorted(set(labels)))}
        unknown = sorted({label for label in labels if label not in lookup})
        if unknown:
            raise InputError(f"{where}: label '{unknown[0]}' is not one of the model's classes "
                             f"({', '.join(lookup)}); give class ids or the model's label names")
        ids = np.asarray([lookup[label] for label in labels], dtype=np.int64)
    if names is not None and (ids.min() < 0 or ids.max() >= len(names)):
        raise InputError(f"{where}: class id {int(ids.max())} is beyond the model's {len(names)} classes")
    return ids
