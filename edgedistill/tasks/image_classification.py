"""image-classification: a vision model's classifier; (B, C, H, W) pixels in, (B, classes) logits out. The image
size is fixed (position embeddings are sized for it); the batch axis is dynamic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from edgedistill.config import DynamicAxes, Range
from edgedistill.errors import InputError
from edgedistill.tasks.base import Feeds, Task, clamp
from edgedistill.tasks.classification import ClassificationMetrics
from edgedistill.tasks.inputs import IMAGE_INPUT, InputSpec, synthetic_feeds

if TYPE_CHECKING:
    from edgedistill.models.task_model import TaskModel

VERIFY_BATCHES = (1, 4)


def image_shape(config: Any) -> tuple[int, int, int]:
    """(channels, height, width) from a vision config (``image_size`` an int or a pair, ``num_channels``)."""
    size = config.image_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return int(config.num_channels), int(height), int(width)


class ImageClassification(ClassificationMetrics, Task):
    name = "image-classification"
    modality = "image"
    output_name = "logits"
    auto_class_name = "AutoModelForImageClassification"

    def load_preprocessor(self, folder: Path) -> Any:
        from transformers import AutoImageProcessor

        try:
            return AutoImageProcessor.from_pretrained(folder)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"no usable image processor in {folder} (preprocessor_config.json): "
                             f"{str(err).splitlines()[0]}") from None

    def input_names(self, backbone: Any) -> list[str]:
        return [IMAGE_INPUT]

    def head(self, model: TaskModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = model.backbone(**inputs).logits
        return logits

    def input_spec(self, model: TaskModel, preprocessor: Any) -> InputSpec:
        return InputSpec((IMAGE_INPUT,), image_shape=image_shape(model.backbone.config))

    def export_axes(self, dynamic: DynamicAxes) -> dict[int, tuple[str, Range]]:
        return {0: ("batch", dynamic.batch)}

    def export_metadata(self, spec: InputSpec, dynamic: DynamicAxes) -> dict[str, str]:
        assert spec.image_shape is not None
        return {"edgedistill.image_shape": ",".join(map(str, spec.image_shape)),
                "edgedistill.batch_range": f"{dynamic.batch.min},{dynamic.batch.max}"}

    def verification_feeds(self, model: TaskModel, preprocessor: Any, dynamic: DynamicAxes) -> list[tuple[str, Feeds]]:
        """Random images at batch 1 and 4 (clamped to the exported range): an image model has no padding to check."""
        spec = self.input_spec(model, preprocessor)
        sizes = sorted({clamp(b, dynamic.batch) for b in VERIFY_BATCHES})
        return [(spec.shape_label(b, None), synthetic_feeds(spec, b, seed=i)) for i, b in enumerate(sizes)]

    def encode(self, preprocessor: Any, samples: list[Any], max_length: int) -> Feeds:
        """Images (file paths or PIL images) through the model's image processor (resize, rescale, normalise).

        Raises:
            InputError: a file that is not a readable image.
        """
        pixels = preprocessor(images=[read_image(s) for s in samples], return_tensors="np")["pixel_values"]
        return {IMAGE_INPUT: np.asarray(pixels, dtype=np.float32)}


def read_image(sample: Any) -> Any:
    """A PIL RGB image from a path (or the image itself)."""
    if not isinstance(sample, (str, Path)):
        return sample
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(sample) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(f"cannot read image {sample}: {err}") from None
