"""Python entry points of the fused-attention kernel: the host reference on numpy arrays, the CUDA kernel on torch.

Both take the plugin's layout: query (B, S_q, num_heads * head_size), key / value (B, S_kv, num_kv_heads *
head_size) (``num_kv_heads`` None: num_heads; fewer is grouped-query attention, query head h reading key/value head
h // (num_heads // num_kv_heads)); a key-padding ``mask`` (B, S_kv) (nonzero = keep) or valid ``lengths`` (B,);
``causal``: False, True or "top-left" (key <= query, torch's is_causal), "bottom-right" (query i at position
S_kv - S_q + i, after a KV cache); ``scale`` (None: 1/sqrt(head_size)). Rows that see no key return zeros.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgedistill.errors import InputError, MissingDependencyError
from edgedistill.plugins import fused_attention_spec
from edgedistill.plugins.loader import (
    EDFA_ERR_NO_CUDA,
    EDFA_OK,
    EdfaProblem,
    build_command,
    error_message,
    load_kernel_library,
)

if TYPE_CHECKING:
    import torch

DTYPE_CODES = {"float32": 0, "float16": 1, "bfloat16": 2}
MASK_NONE, MASK_KEY_PADDING, MASK_LENGTHS = 0, 1, 2
CAUSAL_CODES = {False: 0, True: 1, "top-left": 1, "bottom-right": 2}
Causal = bool | str


@dataclass(frozen=True)
class AttentionShape:
    """Sizes of one call, checked against what the kernel supports."""

    batch: int
    seq_q: int
    seq_kv: int
    num_heads: int
    head_size: int
    num_kv_heads: int = 0  # 0: num_heads


def check_shapes(
    q_shape: tuple[int, ...], k_shape: tuple[int, ...], v_shape: tuple[int, ...], num_heads: int,
    mask_shape: tuple[int, ...] | None = None, lengths_shape: tuple[int, ...] | None = None,
    num_kv_heads: int | None = None,
) -> AttentionShape:
    """Validate query/key/value/mask shapes; returns the sizes.

    Raises:
        InputError: wrong rank, mismatched Q/K/V, key/value heads that do not divide the query heads, unsupported
            head size, or mask of the wrong shape.
    """
    if len(q_shape) != 3 or len(k_shape) != 3 or len(v_shape) != 3:
        raise InputError(f"query/key/value must be (B, S, num_heads * head_size); got {q_shape}, {k_shape}, {v_shape}")
    if num_heads <= 0 or q_shape[2] % num_heads:
        raise InputError(f"hidden size {q_shape[2]} is not a multiple of num_heads={num_heads}")
    head_size = q_shape[2] // num_heads
    kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    if kv_heads <= 0 or num_heads % kv_heads:
        raise InputError(f"num_kv_heads={kv_heads} must divide num_heads={num_heads}")
    kv_width = kv_heads * head_size
    if k_shape != v_shape or k_shape[0] != q_shape[0] or k_shape[2] != kv_width:
        raise InputError(f"key and value must be (B, S_kv, {kv_width}) with B={q_shape[0]} (num_kv_heads={kv_heads} "
                         f"x head_size {head_size}); got {k_shape}, {v_shape}")
    supported = fused_attention_spec()["supported_head_sizes"]
    if head_size not in supported:
        raise InputError(
            f"head_size {head_size} is not supported by the fused-attention kernel (supported: {supported})"
        )
    if min(q_shape[:2]) <= 0 or k_shape[1] <= 0:
        raise InputError(f"empty batch or sequence: query {q_shape}, key {k_shape}")
    if mask_shape is not None and lengths_shape is not None:
        raise InputError("give either a key-padding mask or valid lengths, not both")
    if mask_shape is not None and tuple(mask_shape) != (q_shape[0], k_shape[1]):
        raise InputError(f"key-padding mask must be (B, S_kv) = {(q_shape[0], k_shape[1])}; got {tuple(mask_shape)}")
    if lengths_shape is not None and tuple(lengths_shape) != (q_shape[0],):
        raise InputError(f"valid lengths must be (B,) = {(q_shape[0],)}; got {tuple(lengths_shape)}")
    return AttentionShape(q_shape[0], q_shape[1], k_shape[1], num_heads, head_size, kv_heads)


def causal_code(causal: Causal) -> int:
    """The ABI's causal field: 0 none, 1 top-left aligned, 2 bottom-right aligned.

    Raises:
        InputError: another value.
    """
    if causal not in CAUSAL_CODES:
        raise InputError(f"causal must be False, True, 'top-left' or 'bottom-right', not {causal!r}")
    return CAUSAL_CODES[causal]


def make_problem(shape: AttentionShape, dtype: str, mask_type: int, causal: Causal, scale: float | None
                 ) -> EdfaProblem:
    """The C ABI's problem description."""
    return EdfaProblem(
        shape.batch, shape.seq_q, shape.seq_kv, shape.num_heads, shape.head_size, DTYPE_CODES[dtype], mask_type,
        causal_code(causal), 0.0 if scale is None else float(scale), shape.num_kv_heads,
    )


def float_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (nearest even), returned as uint16 bit patterns."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return np.where(np.isnan(x), np.uint32(0x7FC0), rounded).astype(np.uint16)


def bf16_bits_to_float(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) to float32."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def _mask_array(mask: Any, lengths: Any) -> tuple[int, np.ndarray | None]:
    if mask is not None:
        return MASK_KEY_PADDING, np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.int32)
    if lengths is not None:
        return MASK_LENGTHS, np.ascontiguousarray(lengths, dtype=np.int32)
    return MASK_NONE, None


HOST_KERNELS = {"simt": "edfa_host_attention", "tensor-core": "edfa_host_attention_tensor_core"}


def host_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, num_heads: int, mask: np.ndarray | None = None,
    lengths: np.ndarray | None = None, causal: Causal = False, scale: float | None = None, dtype: str | None = None,
    kernel: str = "simt", num_kv_heads: int | None = None,
) -> np.ndarray:
    """Run the kernel's host reference (same tiling and online softmax as the CUDA kernel) on numpy arrays.

    Args:
        q, k, v: (B, S_q, num_heads * head_size), (B, S_kv, num_kv_heads * head_size) twice; float32 or float16.
        dtype: storage type the kernel sees: "float32", "float16" or "bfloat16" (inputs rounded to it);
            None: the dtype of ``q``.
        kernel: whose arithmetic to follow: "simt" (the FP32 kernel, and the decode kernel of a query length of 1)
            or "tensor-core" (its tiles, and P rounded to the storage type; float16 / bfloat16 only).

    Returns:
        (B, S_q, num_heads * head_size) in q's dtype (float32 holding bf16-rounded values for "bfloat16").

    Raises:
        InputError: bad shapes or dtype. MissingDependencyError: the library is not built.
    """
    shape = check_shapes(q.shape, k.shape, v.shape, num_heads, None if mask is None else np.shape(mask),
                         None if lengths is None else np.shape(lengths), num_kv_heads)
    dtype = dtype or str(q.dtype)
    if dtype not in DTYPE_CODES:
        raise InputError(
            f"dtype {dtype} is not supported by the fused-attention kernel (supported: {list(DTYPE_CODES)})"
        )
    if dtype == "bfloat16":
        q_, k_, v_ = (float_to_bf16_bits(np.asarray(t, dtype=np.float32)) for t in (q, k, v))
    else:
        q_, k_, v_ = (np.ascontiguousarray(t, dtype=np.dtype(dtype)) for t in (q, k, v))
    out = np.empty_like(q_)
    mask_type, mask_arr = _mask_array(mask, lengths)
    lib = load_kernel_library()
    problem = make_problem(shape, dtype, mask_type, causal, scale)
    if kernel not in HOST_KERNELS:
        raise InputError(f"kernel must be one of {list(HOST_KERNELS)}, not {kernel!r}")
    status = getattr(lib, HOST_KERNELS[kernel])(
        ctypes.byref(problem), q_.ctypes.data, k_.ctypes.data, v_.ctypes.data,
        None if mask_arr is None else mask_arr.ctypes.data, out.ctypes.data,
    )
    if status != EDFA_OK:
        raise InputError(f"fused attention (host reference): {error_message(lib, status)}")
    if dtype == "bfloat16":
        return bf16_bits_to_float(out)
    return out.astype(q.dtype, copy=False) if q.dtype in (np.float32, np.float16) else out


def torch_dtype_name(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> str:
    """The storage dtype ("float32", "float16" or "bfloat16") that query, key and value share.

    Raises:
        InputError: another dtype, or mixed dtypes.
    """
    name = str(q.dtype).removeprefix("torch.")
    if name not in DTYPE_CODES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise InputError(f"query/key/value must share one dtype of {list(DTYPE_CODES)}; got {q.dtype}")
    return name


def cuda_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int, mask: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None, causal: Causal = False, scale: float | None = None,
    out: torch.Tensor | None = None, num_kv_heads: int | None = None,
) -> torch.Tensor:
    """Run the CUDA kernel on CUDA tensors (float32 / float16 / bfloat16) on torch's current stream.

    ``out``: a contiguous tensor like ``q`` to write into (default: a new one).

    Raises:
        InputError: bad shapes, dtype or device. MissingDependencyError: no CUDA build of the library.
    """
    import torch

    dtype = torch_dtype_name(q, k, v)
    if not (q.is_cuda and k.is_cuda and v.is_cuda):
        raise InputError("cuda_attention needs CUDA tensors")
    shape = check_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape), num_heads,
                         None if mask is None else tuple(mask.shape), None if lengths is None else tuple(lengths.shape),
                         num_kv_heads)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    mask_type, mask_t = MASK_NONE, None
    if mask is not None:
        mask_type, mask_t = MASK_KEY_PADDING, (mask != 0).to(device=q.device, dtype=torch.int32).contiguous()
    elif lengths is not None:
        mask_type, mask_t = MASK_LENGTHS, lengths.to(device=q.device, dtype=torch.int32).contiguous()
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.device != q.device or not out.is_contiguous():
        raise InputError(f"out must be a contiguous {q.dtype} tensor of shape {tuple(q.shape)} on {q.device}")
    lib = load_kernel_library()
    problem = make_problem(shape, dtype, mask_type, causal, scale)
    with torch.cuda.device(q.device):
        stream = torch.cuda.current_stream().cuda_stream
        status = lib.edfa_cuda_attention(
            ctypes.byref(problem), q.data_ptr(), k.data_ptr(), v.data_ptr(),
            None if mask_t is None else mask_t.data_ptr(), out.data_ptr(), stream,
        )
    if status == EDFA_ERR_NO_CUDA:
        raise MissingDependencyError(
            f"the fused-attention library was built without CUDA; rebuild with nvcc: {build_command()}"
        )
    if status != EDFA_OK:
        raise InputError(f"fused attention (CUDA): {error_message(lib, status)}")
    return out


def cuda_kernel_name(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int,
                     num_kv_heads: int | None = None) -> str:
    """Which CUDA kernel :func:`cuda_attention` runs for these tensors ("none": no CUDA build).

    A query length of 1 runs the decode kernel, "decode" (up to 16 query heads per key/value head). Otherwise
    16-byte aligned FP16 and BF16 tensors run on tensor cores: "mma" (mma.sync, registers only) on sm_80+, "wmma"
    for FP16 on sm_70/75. FP32 and unaligned tensors run on the FP32 kernel, "simt". The environment variable
    ``EDFA_KERNEL=simt`` or ``EDFA_KERNEL=wmma`` forces that kernel where it can run (for comparisons).
    """
    import torch

    shape = check_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape), num_heads, None, None, num_kv_heads)
    problem = make_problem(shape, torch_dtype_name(q, k, v), MASK_NONE, False, None)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    with torch.cuda.device(q.device):
        name = load_kernel_library().edfa_cuda_kernel_name(
            ctypes.byref(problem), q.data_ptr(), k.data_ptr(), v.data_ptr(), q.data_ptr())
    return name.decode()
