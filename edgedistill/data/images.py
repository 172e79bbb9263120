"""Labelled images from a folder with one sub-folder per class (``root/<class>/<image>``), for vision students.

Images are read with Pillow, converted to grey or RGB, resized to ``size`` and scaled to [0, 1]. Classes are
the sub-folder names in sorted order, so label ids are stable across machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedistill.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    labels: np.ndarray  # (N,) int64
    classes: list[str]


def class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(f"{root}: no class sub-folders; expected {root}/<class>/<image>.png")
    return folders


def read_image(path: Path, size: tuple[int, int], mode: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert(mode).resize(size[::-1]), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(f"cannot read image {path}: {err}") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, H, W)


def read_image_folder(root: Path, size: tuple[int, int], grey: bool = False) -> ImageSet:
    """All images under ``root``'s class folders, resized to ``size`` (H, W).

    Raises:
        InputError: no such folder, no class sub-folders, a class with no images, or an unreadable image.
    """
    images, labels = [], []
    classes = class_folders(root)
    for label, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{folder}: class '{folder.name}' has no images ({', '.join(IMAGE_SUFFIXES)})")
        images += [read_image(p, size, "L" if grey else "RGB") for p in files]
        labels += [label] * len(files)
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), [c.name for c in classes])
