"""Weight-only quantization (ONNX Runtime's ``MatMulNBits``): each MatMul with a constant weight gets INT4 or INT8
weights in blocks of ``block_size`` along its input dimension, one scale (and zero point, if asymmetric) per block;
activations stay float, or int8 inside the kernel with ``accuracy_level`` 4.

The algorithms are ONNX Runtime's own (:mod:`onnxruntime.quantization.matmul_nbits_quantizer`): RTN (its default
affine quantizer, 4 or 8 bits), HQQ, and GPTQ calibrated on prompts. The output projection can stay float
(``lm_head: float``) or take 8 bits (``lm_head: int8``), and the input embedding can become
``GatherBlockQuantized`` (``embedding: quantize``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgedistill.artifacts import Artifact
from edgedistill.config import WeightOnly
from edgedistill.errors import InputError
from edgedistill.quantize.common import ONNX_NAME, check_float_model, is_large, publish, staging
from edgedistill.quantize.data import QuantizeData

BLOCK_SIZES = (16, 32, 64, 128, 256)
NBITS_OPS = {"MatMulNBits", "GatherBlockQuantized"}


def weight_matmuls(graph: onnx.GraphProto) -> list[tuple[onnx.NodeProto, tuple[int, int]]]:
    """Every MatMul whose second input is a 2-D initializer, with that weight's (K, N)."""
    weights = {t.name: tuple(t.dims) for t in graph.initializer if len(t.dims) == 2}
    return [(n, weights[n.input[1]]) for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def fold_transposed_weights(graph: onnx.GraphProto) -> int:
    """Replace every ``Transpose`` of a 2-D initializer by the transposed initializer, so the quantizer sees
    constant weights: a tied output projection is exported as ``MatMul(x, Transpose(table))`` (ours) or a
    ``Gather(Transpose(W), ids)`` embedding (onnxruntime-genai's builder). Initializers left unused are dropped.
    Returns how many were folded."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    folded = 0
    for node in [n for n in graph.node if n.op_type == "Transpose" and n.input[0] in inits]:
        weight = inits[node.input[0]]
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0])
        if len(weight.dims) != 2 or perm != [1, 0]:
            continue
        name = f"{weight.name}.transposed"
        graph.initializer.append(numpy_helper.from_array(
            np.ascontiguousarray(numpy_helper.to_array(weight).T), name))
        for consumer in graph.node:
            consumer.input[:] = [name if i == node.output[0] else i for i in consumer.input]
        graph.node.remove(node)
        folded += 1
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return folded


def check_block_size(matmuls: list[tuple[onnx.NodeProto, tuple[int, int]]], block_size: int, path: Path) -> None:
    """Raise InputError when ``block_size`` does not divide some weight's input size, naming one that does."""
    sizes = sorted({k for _, (k, _) in matmuls})
    bad = [k for k in sizes if k % block_size]
    if not bad:
        return
    fits = [b for b in BLOCK_SIZES if all(k % b == 0 for k in sizes)]
    hint = (f"use block_size {max(fits, key=lambda b: (-abs(b - block_size), b))}" if fits
            else "no block size of " + "/".join(map(str, BLOCK_SIZES)) + " divides them all")
    raise InputError(f"{path}: block_size {block_size} does not divide the input size {bad[0]} of its MatMul "
                     f"weights (sizes {', '.join(map(str, sizes))}); {hint}")


def lm_head_nodes(graph: onnx.GraphProto, matmuls: list[tuple[onnx.NodeProto, tuple[int, int]]]) -> list[str]:
    """The MatMuls that project onto the vocabulary (their N is the logits output's last dimension)."""
    logits = next((o for o in graph.output if o.name == "logits"), graph.output[0])
    dims = logits.type.tensor_type.shape.dim
    vocab = dims[-1].dim_value if dims else 0
    return [n.name for n, (_, cols) in matmuls if vocab and cols == vocab]


def nbits_quantizer() -> Any:
    """ONNX Runtime's ``matmul_nbits_quantizer`` module, imported without the root-logger set-up it does at import
    (``logging.basicConfig(level=INFO)``, which would print every later library's INFO lines)."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import matmul_nbits_quantizer

    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(matmul_nbits_quantizer.__name__).setLevel(logging.WARNING)
    return matmul_nbits_quantizer


def algo_config(step: WeightOnly, data: QuantizeData | None, model_path: Path) -> Any:
    nbits = nbits_quantizer()
    ops = ("MatMul", "Gather") if step.embedding == "quantize" else ("MatMul",)
    if step.algorithm == "hqq":
        return nbits.HQQWeightOnlyQuantConfig(block_size=step.block_size, bits=step.bits, op_types_to_quantize=ops)
    if step.algorithm == "gptq":
        return nbits.GPTQWeightOnlyQuantConfig(calibration_data_reader=PromptReader(model_path, data, step),
                                               block_size=step.block_size, op_types_to_quantize=ops)
    return nbits.DefaultWeightOnlyQuantConfig(block_size=step.block_size, is_symmetric=step.symmetric,
                                              accuracy_level=step.accuracy_level or None, bits=step.bits,
                                              op_types_to_quantize=ops)


class PromptReader:
    """GPTQ's calibration data: each prompt's prefill feeds (empty KV cache) for the exported decoder."""

    def __init__(self, model_path: Path, data: QuantizeData | None, step: WeightOnly):
        if data is None or not data.calibration_texts:
            raise InputError("weight-only gptq calibrates on prompts; give calibration texts (--texts, or the "
                             "run's data)")
        from edgedistill.lm.decoders import OrtDecoder
        from edgedistill.lm.runtime import tokenizer_beside

        tokenizer = tokenizer_beside(model_path)
        self.ids = [tokenizer(t, truncation=True, max_length=data.max_length)["input_ids"]
                    for t in data.calibration_texts[: step.calibration_size]]
        decoder = OrtDecoder(model_path)
        self.past = dict(zip(decoder.shape.past_names(), decoder.shape.empty_past(1), strict=True))
        self.positions = decoder.left_padding  # a fused graph may take no position ids
        self.rows = iter(self.ids)

    def feeds(self, ids: list[int]) -> dict[str, np.ndarray]:
        n = len(ids)
        feeds = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, n), np.int64), **self.past}
        return feeds | ({"position_ids": np.arange(n, dtype=np.int64)[None]} if self.positions else {})

    def get_next(self) -> dict[str, np.ndarray] | None:
        ids = next(self.rows, None)
        return None if ids is None else self.feeds(ids)

    def rewind(self) -> None:
        self.rows = iter(self.ids)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return (self.feeds(ids) for ids in self.ids)


def set_accuracy_level(proto: onnx.ModelProto, level: int) -> None:
    """Every MatMulNBits computes at ``level`` (whichever algorithm made it)."""
    for node in proto.graph.node:
        if node.op_type == "MatMulNBits":
            kept = [a for a in node.attribute if a.name != "accuracy_level"]
            del node.attribute[:]
            node.attribute.extend([*kept, onnx.helper.make_attribute("accuracy_level", level)])


def prepared(src: Path, step: WeightOnly) -> onnx.ModelProto:
    """``src`` loaded for quantization: a tied head's transposed table folded into a weight (unless the head stays
    float, when it keeps reading the table and no float copy of it is made)."""
    proto = onnx.load(str(src))
    if step.lm_head != "float":
        fold_transposed_weights(proto.graph)
    return proto


def quantize_proto(proto: onnx.ModelProto, step: WeightOnly, data: QuantizeData | None, src: Path,
                   raised: frozenset[str] = frozenset(), keep: str = "int8") -> onnx.ModelProto:
    """``proto`` with its MatMul weights at ``step.bits``, except the head (per ``lm_head``) and the ``raised`` nodes,
    which take 8 bits (``keep: int8``) or stay float. ``proto`` is consumed (ONNX Runtime's quantizer edits it)."""
    matmuls = weight_matmuls(proto.graph)
    if not matmuls:
        raise InputError(f"{src}: weight-only quantization found no MatMul with a constant weight")
    check_block_size(matmuls, step.block_size, src)
    head = set(lm_head_nodes(proto.graph, matmuls))
    low_excluded = (head if step.lm_head != "quantize" else set()) | raised
    result = run_quantizer(proto, step, sorted(low_excluded), algo_config(step, data, src))
    eight = (head if step.lm_head == "int8" else set()) | (raised if keep == "int8" else set())
    if eight:  # a second pass at 8 bits over those; what else is still float stays so
        still_float = {n.name for n, _ in weight_matmuls(result.graph)} - eight
        eight_step = step.model_copy(update={"bits": 8, "algorithm": "rtn", "embedding": "float"})
        result = run_quantizer(result, eight_step, sorted(still_float), algo_config(eight_step, None, src))
    if step.accuracy_level:
        set_accuracy_level(result, step.accuracy_level)
    return result


def save_quantized(result: onnx.ModelProto, src: Path, dest: Path) -> dict[str, Any]:
    """Write ``result`` to ``dest`` (external data when the source had it); returns the counts by op."""
    large = is_large(src)
    onnx.save(result, str(dest), save_as_external_data=large, location=f"{ONNX_NAME}.data" if large else None)
    return op_counts(result)


def op_counts(proto: onnx.ModelProto) -> dict[str, Any]:
    ops = [n.op_type for n in proto.graph.node]
    return {"quantized": {op: ops.count(op) for op in sorted(NBITS_OPS) if op in ops},
            "float_matmuls": ops.count("MatMul")}


def counts(path: Path) -> dict[str, Any]:
    return op_counts(onnx.load(str(path), load_external_data=False))


def quantize_weights(src: Path, dest: Path, step: WeightOnly, data: QuantizeData | None) -> dict[str, Any]:
    """Quantize ``src`` into ``dest``; returns what was quantized (counts by op, the MatMuls left float)."""
    proto = prepared(src, step)
    excluded = lm_head_nodes(proto.graph, weight_matmuls(proto.graph)) if step.lm_head != "quantize" else []
    return {**save_quantized(quantize_proto(proto, step, data, src), src, dest), "excluded": excluded}


def run_quantizer(proto: onnx.ModelProto, step: WeightOnly, excluded: list[str], config: Any) -> onnx.ModelProto:
    quantizer = nbits_quantizer().MatMulNBitsQuantizer(
        proto, bits=step.bits, block_size=step.block_size, is_symmetric=step.symmetric,
        accuracy_level=step.accuracy_level or None, nodes_to_exclude=excluded, algo_config=config)
    quantizer.process()
    result: onnx.ModelProto = quantizer.model.model
    return result


def weight_only(step: WeightOnly, model: Artifact, out: Path, data: QuantizeData | None = None) -> Artifact:
    """Quantize the float ONNX model ``model`` into ``out/model.onnx`` (tokenizer and genai config beside it).

    Raises:
        InputError: not a float ONNX model, nothing to quantize, a block size that does not divide the weights,
            gptq without calibration prompts, or a budget without the teacher's answers (``data.targets``).
    """
    check_float_model(model)
    with staging(out) as folder:
        staged = folder / ONNX_NAME
        if step.budget is None:
            summary = quantize_weights(model.path, staged, step, data)
        else:
            from edgedistill.quantize.weight_budget import search

            record = search(model.path, staged, step, data, folder / "work", out)
            summary = {**counts(staged), **record}
        if not summary["quantized"]:
            raise InputError(f"{model.path}: weight-only quantization quantized nothing")
        return publish(staged, out, model, step, {
            "bits": step.bits, "algorithm": step.algorithm, "block_size": step.block_size,
            "accuracy_level": step.accuracy_level, "symmetric": step.symmetric, "lm_head": step.lm_head,
            "embedding": step.embedding, **summary})
