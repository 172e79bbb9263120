"""Synthetic model inputs, built one way for every stage: the exporter's trace, verification, calibration-free
latency, fusion checks and the benchmark all draw them from :func:`synthetic_feeds`.

An :class:`InputSpec` says what a model takes: token inputs (ids over a vocabulary, attention mask, token types) or
one image input of a fixed (C, H, W). It comes from a model (:meth:`TaskModel.input_spec`) or from an ONNX graph
(:func:`spec_of_onnx`), so a file brought from elsewhere gets the same inputs as one edgedistill exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from edgedistill.errors import InputError

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
IMAGE_INPUT = "pixel_values"
FIRST_ORDINARY_ID = 5  # ids below this are special tokens in BERT-style vocabularies ([PAD], [UNK], [CLS], ...)
DEFAULT_VOCAB = 100  # when a graph's embedding table cannot be found


@dataclass(frozen=True)
class InputSpec:
    """The inputs of a model: ``names`` in the model's order; ``vocab_size`` for token inputs; ``image_shape``
    (C, H, W) for an image input."""

    names: tuple[str, ...]
    vocab_size: int | None = None
    image_shape: tuple[int, int, int] | None = None
    batch_range: tuple[int, int] | None = None  # (min, max) the graph takes, where known
    seq_range: tuple[int, int] | None = None

    def fit(self, batch: int, seq: int | None) -> tuple[int, int | None]:
        """``batch`` and ``seq`` clamped into the ranges the graph takes."""
        def clamp(value: int, rng: tuple[int, int] | None) -> int:
            return value if rng is None else max(rng[0], min(value, rng[1]))

        return clamp(batch, self.batch_range), None if seq is None else clamp(seq, self.seq_range)

    @property
    def is_image(self) -> bool:
        return self.image_shape is not None

    def shape_label(self, batch: int, seq: int | None) -> str:
        """``8x128`` for text, ``8x3x224x224`` for images."""
        dims = (batch, *self.image_shape) if self.image_shape else (batch, seq)
        return "x".join(str(d) for d in dims)


def text_spec(vocab_size: int) -> InputSpec:
    """Token inputs (ids, mask, token types) over ``vocab_size`` tokens; models ignore the inputs they do not take."""
    return InputSpec(TEXT_INPUTS, vocab_size=vocab_size)


def token_feeds(names: tuple[str, ...], vocab_size: int, batch: int, seq: int, rng: np.random.Generator,
                padded: bool) -> dict[str, np.ndarray]:
    """Random ordinary token ids (B, S) int64 with a mask of ones, or, ``padded``, right padding from the full width
    down to one token (ids 0 where padded); token types zero."""
    if vocab_size <= FIRST_ORDINARY_ID:
        raise InputError(f"vocab_size {vocab_size} is too small; expected more than {FIRST_ORDINARY_ID} tokens")
    ids = rng.integers(FIRST_ORDINARY_ID, vocab_size, size=(batch, seq), dtype=np.int64)
    lengths = np.linspace(seq, 1, batch).round().astype(int) if padded else np.full(batch, seq)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    tensors = {"input_ids": np.where(mask == 1, ids, 0), "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {name: tensors[name] for name in names if name in tensors}


def synthetic_feeds(spec: InputSpec, batch: int, seq: int | None = None, seed: int = 0,
                    padded: bool = False) -> dict[str, np.ndarray]:
    """Inputs for ``spec`` at ``batch`` (and ``seq`` tokens): the same arrays for every backend and artifact given
    the same seed. Images are standard-normal float32 (B, C, H, W), as a normalising image processor emits.

    Raises:
        InputError: a text model without ``seq``, or a vocabulary too small to draw ordinary tokens from.
    """
    rng = np.random.default_rng(seed)
    if spec.image_shape is not None:
        return {spec.names[0]: rng.standard_normal((batch, *spec.image_shape)).astype(np.float32)}
    if seq is None:
        raise InputError("a text model needs a sequence length: give shapes as BATCHxSEQ, e.g. 1x128")
    return token_feeds(spec.names, spec.vocab_size or DEFAULT_VOCAB, batch, seq, rng, padded)


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {i.name for i in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def image_input(model: onnx.ModelProto) -> tuple[str, tuple[int, int, int]] | None:
    """The graph's float (B, C, H, W) input with fixed C, H, W (an image model's ``pixel_values``), or None."""
    for value in graph_inputs(model):
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor.shape.dim]
        if tensor.elem_type == onnx.TensorProto.FLOAT and len(dims) == 4 and all(dims[1:]):
            return value.name, (dims[1], dims[2], dims[3])
    return None


def vocab_size(model: onnx.ModelProto, ids_input: str = "input_ids") -> int:
    """Rows of the embedding table gathered by ``ids_input`` (ids below it are valid), or DEFAULT_VOCAB."""
    sizes = {init.name: init.dims[0] for init in model.graph.initializer if init.dims}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == ids_input and node.input[0] in sizes:
            return int(sizes[node.input[0]])
    return DEFAULT_VOCAB


def axis_range(model: onnx.ModelProto, axis: int, key: str) -> tuple[int, int] | None:
    """The sizes axis ``axis`` of the graph's first input takes: fixed in the graph, else recorded at export."""
    inputs = graph_inputs(model)
    dims = inputs[0].type.tensor_type.shape.dim if inputs else []
    if len(dims) > axis and dims[axis].HasField("dim_value") and dims[axis].dim_value > 0:
        return dims[axis].dim_value, dims[axis].dim_value
    recorded = {p.key: p.value for p in model.metadata_props}.get(f"edgedistill.{key}_range")
    if recorded:
        low, high = (int(v) for v in recorded.split(","))
        return low, high
    return None


def spec_of_onnx(model: onnx.ModelProto) -> InputSpec:
    """What an ONNX graph takes: its image input, or its token inputs over the vocabulary of its embedding table;
    with the batch (and sequence) sizes it accepts, from its fixed dimensions or its export metadata."""
    batch = axis_range(model, 0, "batch")
    if image := image_input(model):
        return InputSpec((image[0],), image_shape=image[1], batch_range=batch)
    return InputSpec(tuple(v.name for v in graph_inputs(model)), vocab_size=vocab_size(model), batch_range=batch,
                     seq_range=axis_range(model, 1, "sequence"))
