"""FP16 conversion with ONNX Runtime's float16 converter, fragile ops kept in FP32 behind casts.

``onnxruntime.transformers.float16.convert_float_to_float16`` converts every float tensor and
initializer, keeps the op types in its block list in FP32 and inserts a ``Cast`` wherever FP16 meets
FP32. We add the numerically fragile ops (``Fp16.fp32_ops``: LayerNorm, Softmax — so its
inputs stay FP32 — and the reductions) and, with ``keep_io_fp32``, FP32 graph inputs and outputs.
Constants beyond FP16's range are clamped to ±65504 by the converter (the attention mask's −inf fill).

FP16 pays off on GPUs (CUDA / TensorRT execution providers); ONNX Runtime's CPU provider runs few
FP16 kernels, so on a CPU the result may be slower than FP32 — the benchmark says by how much.
BF16 is not offered: the converter has no BF16 target and ONNX Runtime's CPU provider lacks BF16 kernels.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from edgedistill.artifacts import Artifact
from edgedistill.config import Fp16
from edgedistill.errors import InputError
from edgedistill.fuse.unpadded_fast_path import remove_unpadded_fast_path
from edgedistill.quantize.common import ONNX_NAME, check_float_model, is_large, publish, staging


def convert(src: Path, dest: Path, step: Fp16) -> list[str]:
    """Write the FP16 version of ``src`` to ``dest``; returns the op types kept in FP32 that occur in the graph."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    remove_unpadded_fast_path(model)  # the float16 converter does not look inside If branches
    present = {n.op_type for n in model.graph.node}
    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(step.fp32_ops))
    half = convert_float_to_float16(model, keep_io_types=step.keep_io_fp32, op_block_list=block)
    dest.parent.mkdir(parents=True, exist_ok=True)
    large = is_large(src)
    onnx.save(half, str(dest), save_as_external_data=large, all_tensors_to_one_file=True,
              location=f"{ONNX_NAME}.data" if large else None)
    return sorted(present & set(step.fp32_ops))


def check_loads(path: Path, source: Path) -> None:
    """Raise InputError if ONNX Runtime's CPU provider cannot open the converted model."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own classes (Fail, NotImplemented, ...) with no common base
        raise InputError(f"{source}: the FP16 model does not load in ONNX Runtime ({str(err).splitlines()[0]}); "
                         "add the op to quantize.fp32_ops") from None


def fp16(step: Fp16, model: Artifact, out: Path) -> Artifact:
    """Convert ``model`` to FP16 into ``out/model.onnx``.

    Returns:
        The artifact; ``meta`` holds the op types kept in FP32 and whether the I/O stayed FP32.
    Raises:
        InputError: not a float ONNX model, or the result does not load in ONNX Runtime.
    """
    if step.mode != "fp16":
        raise InputError(f"quantize.fp16 does not do mode '{step.mode}'; use fp16")
    check_float_model(model)
    with staging(out) as folder:
        staged = folder / ONNX_NAME
        kept = convert(model.path, staged, step)
        check_loads(staged, model.path)
        return publish(staged, out, model, step, {"fp32_ops": kept, "keep_io_fp32": step.keep_io_fp32})
