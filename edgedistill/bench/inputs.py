"""The benchmark's inputs: the same arrays for every backend and artifact at a given shape, from the one synthetic
builder (:func:`edgedistill.tasks.synthetic_feeds`) over what all the benchmarked models take."""

from __future__ import annotations

import json

import numpy as np
import onnx

from edgedistill.artifacts import Artifact
from edgedistill.config import Shape
from edgedistill.errors import InputError
from edgedistill.tasks import get_task, spec_of_onnx, synthetic_feeds
from edgedistill.tasks.image_classification import image_shape
from edgedistill.tasks.inputs import IMAGE_INPUT, TEXT_INPUTS, InputSpec


def artifact_spec(artifact: Artifact) -> InputSpec:
    """What ``artifact`` takes: read from an ONNX graph, or from a Hugging Face folder's task and config."""
    if artifact.kind == "onnx":
        return spec_of_onnx(onnx.load(str(artifact.path), load_external_data=False))
    task = get_task(artifact.task)
    if task.modality == "image":
        from types import SimpleNamespace

        config = SimpleNamespace(**json.loads((artifact.path / "config.json").read_text()))
        return InputSpec((IMAGE_INPUT,), image_shape=image_shape(config))
    from edgedistill.engines.tokenizer import load_preprocessor

    return InputSpec(TEXT_INPUTS, vocab_size=len(load_preprocessor(artifact)))


def shared_spec(artifacts: list[Artifact]) -> InputSpec:
    """Inputs every artifact takes: token ids below the smallest vocabulary, or images of the one size they share.

    Raises:
        InputError: text and image models together, or image models of different sizes.
    """
    specs = [artifact_spec(a) for a in artifacts]
    images = {s.image_shape for s in specs}
    if len(images) > 1:
        raise InputError(f"the models take different inputs ({', '.join(str(i or 'text') for i in images)}); "
                         "bench models that take the same inputs together")
    if specs[0].is_image:
        return specs[0]
    return InputSpec(TEXT_INPUTS, vocab_size=min(s.vocab_size or 0 for s in specs))


def check_shapes(spec: InputSpec, shapes: list[Shape]) -> None:
    """Raise InputError when a shape does not fit the models' inputs (a sequence for images, none for text)."""
    for shape in shapes:
        if spec.is_image and shape.seq is not None:
            raise InputError(f"shape {shape.label}: image models take a batch of images of a fixed size; give the "
                             f"batch alone (--shape {shape.batch}, or shapes: [{{batch: {shape.batch}}}])")
        if not spec.is_image and shape.seq is None:
            raise InputError(f"shape {shape.label}: text models need a sequence length: BATCHxSEQ, e.g. "
                             f"{shape.batch}x128")


def make_feeds(shape: Shape, spec: InputSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for ``spec`` at ``shape`` (text: ordinary token ids, full mask; images: standard-normal pixels)."""
    return synthetic_feeds(spec, shape.batch, shape.seq, seed)
