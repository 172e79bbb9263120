"""The kernel's host reference (same tiling, same online-softmax helpers as the CUDA kernel) against numpy."""

from __future__ import annotations

import ctypes
import itertools

import numpy as np
import pytest
from support.attention_reference import attention

from edgedistill.errors import InputError, MissingDependencyError
from edgedistill.plugins import loader
from edgedistill.plugins.attention import bf16_bits_to_float, float_to_bf16_bits, host_attention

# Output rounding of the storage type dominates: fp16 ulp(1) = 2^-10, bf16 ulp(1) = 2^-7.
TOLERANCE = {"float32": 2e-5, "float16": 2e-3, "bfloat16": 1.6e-2}
# The tensor-core kernel also rounds P to the storage type before P.V (as FlashAttention does): up to one more
# rounding of the storage type per output, so twice the room; still inside the GPU tests' SDPA tolerances.
TENSOR_CORE_SLACK = 2


def rounded(x: np.ndarray, dtype: str) -> np.ndarray:
    """x as the kernel sees it after the storage conversion."""
    if dtype == "bfloat16":
        return bf16_bits_to_float(float_to_bf16_bits(x))
    return x.astype(dtype).astype(np.float32)


def make_inputs(batch, seq_q, seq_kv, heads, head_size, seed=0, kv_heads=None):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, seq_q, heads * head_size)).astype(np.float32)
    k = rng.standard_normal((batch, seq_kv, (kv_heads or heads) * head_size)).astype(np.float32)
    v = rng.standard_normal((batch, seq_kv, (kv_heads or heads) * head_size)).astype(np.float32)
    return q, k, v


def make_mask(kind: str, batch: int, seq_kv: int, seed: int = 1):
    """(mask, lengths) for a mask kind; includes a fully padded row to pin down the zero-output rule."""
    rng = np.random.default_rng(seed)
    if kind == "lengths":
        lengths = rng.integers(1, seq_kv + 1, size=batch).astype(np.int32)
        lengths[-1] = seq_kv + 5  # longer than the sequence: clamped
        if batch > 2:
            lengths[1] = 0  # sees nothing: zeros
        return None, lengths
    if kind == "bool":
        mask = rng.random((batch, seq_kv)) < 0.7
        mask[:, 0] = True
        if batch > 2:
            mask[1] = False
        return mask, None
    return None, None


def check(batch, seq_q, seq_kv, heads, head_size, dtype, mask_kind="none", causal=False, scale=None, seed=0,
          kernel="simt", kv_heads=None):
    q, k, v = make_inputs(batch, seq_q, seq_kv, heads, head_size, seed, kv_heads)
    mask, lengths = make_mask(mask_kind, batch, seq_kv)
    inputs = [rounded(t, dtype) for t in (q, k, v)]
    expected = attention(*inputs, heads, mask=mask, lengths=lengths, causal=causal, scale=scale,
                         num_kv_heads=kv_heads)
    feed = [t.astype(np.float16) for t in inputs] if dtype == "float16" else inputs
    out = host_attention(*feed, heads, mask=mask, lengths=lengths, causal=causal, scale=scale,
                         dtype=None if dtype == "float16" else dtype, kernel=kernel, num_kv_heads=kv_heads)
    tol = TOLERANCE[dtype] * (TENSOR_CORE_SLACK if kernel == "tensor-core" else 1)
    np.testing.assert_allclose(out.astype(np.float64), expected, atol=tol, rtol=tol)


# Sequence lengths straddle the 32-key / 32-query tiles: 1, tails (31, 33, 70), exact multiples (64).
GRID = list(itertools.product([32, 64, 128], [(1, 1), (31, 33), (33, 31), (64, 64), (70, 45)]))


@pytest.mark.parametrize(("head_size", "seqs"), GRID)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_matches_numpy_over_shapes(kernel_lib, head_size, seqs, dtype):
    check(2, seqs[0], seqs[1], 2, head_size, dtype)


@pytest.mark.parametrize("mask_kind", ["none", "lengths", "bool"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("head_size", [32, 64, 128])
def test_masks_and_causal(kernel_lib, mask_kind, causal, dtype, head_size):
    check(3, 45, 67, 2, head_size, dtype, mask_kind=mask_kind, causal=causal, seed=head_size)


# Tensor-core mode: 64-row blocks and 64-key tiles (32 at head size 128); lengths straddle both.
TC_GRID = list(itertools.product([32, 64, 128], [(1, 1), (63, 65), (65, 63), (128, 128), (130, 97)]))


@pytest.mark.parametrize(("head_size", "seqs"), TC_GRID)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_tensor_core_arithmetic_matches_numpy_over_shapes(kernel_lib, head_size, seqs, dtype):
    check(2, seqs[0], seqs[1], 2, head_size, dtype, kernel="tensor-core")


@pytest.mark.parametrize("mask_kind", ["none", "lengths", "bool"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_tensor_core_arithmetic_masks_and_causal(kernel_lib, mask_kind, causal, dtype):
    check(3, 70, 131, 2, 64, dtype, mask_kind=mask_kind, causal=causal, seed=7, kernel="tensor-core")


def test_tensor_core_arithmetic_rounds_p_unlike_the_fp32_kernel(kernel_lib):
    q, k, v = (rounded(t, "float16").astype(np.float16) for t in make_inputs(1, 40, 90, 2, 64, seed=3))
    simt, tensor = host_attention(q, k, v, 2), host_attention(q, k, v, 2, kernel="tensor-core")
    assert 0 < np.abs(simt.astype(np.float32) - tensor.astype(np.float32)).max() < 4e-3


def test_tensor_core_arithmetic_refuses_float32_and_unknown_kernels(kernel_lib):
    q, k, v = make_inputs(1, 4, 4, 1, 32)
    with pytest.raises(InputError, match="dtype"):
        host_attention(q, k, v, 1, kernel="tensor-core")
    with pytest.raises(InputError, match="kernel must be one of"):
        host_attention(q, k, v, 1, kernel="wmma")


@pytest.mark.parametrize("causal", [False, True])
def test_causal_with_more_queries_than_keys(kernel_lib, causal):
    check(1, 97, 40, 3, 64, "float32", causal=causal)


# Grouped-query attention (SmolLM2: 9 query heads over 3 key/value heads), prefill and the decode step after a cache.
@pytest.mark.parametrize(("heads", "kv_heads"), [(9, 3), (8, 1), (4, 4)])
@pytest.mark.parametrize("kernel", ["simt", "tensor-core"])
def test_grouped_query_heads_read_their_key_value_head(kernel_lib, heads, kv_heads, kernel):
    check(2, 37, 37, heads, 64, "float16", causal=True, seed=heads, kernel=kernel, kv_heads=kv_heads)


@pytest.mark.parametrize(("seq_q", "past"), [(1, 0), (1, 70), (1, 127), (5, 64), (33, 40)])
@pytest.mark.parametrize("mask_kind", ["none", "bool"])
def test_bottom_right_causal_after_a_kv_cache(kernel_lib, seq_q, past, mask_kind):
    """Query i sits at past + i: it sees the whole cache and the new keys up to itself (a decode step for S_q 1)."""
    check(2, seq_q, past + seq_q, 9, 64, "float32", mask_kind=mask_kind, causal="bottom-right", kv_heads=3)
    check(2, seq_q, past + seq_q, 4, 32, "bfloat16", mask_kind=mask_kind, causal="bottom-right", kv_heads=2,
          kernel="tensor-core")


def test_bottom_right_decode_sees_the_whole_cache_top_left_does_not(kernel_lib):
    q, k, v = make_inputs(1, 1, 40, 2, 64, kv_heads=1)
    bottom = host_attention(q, k, v, 2, causal="bottom-right", num_kv_heads=1)
    np.testing.assert_allclose(bottom, attention(q, k, v, 2, num_kv_heads=1), atol=2e-5)  # nothing hidden
    top = host_attention(q, k, v, 2, causal=True, num_kv_heads=1)
    np.testing.assert_allclose(top, np.tile(v[:, :1], (1, 1, 2)), atol=1e-6)  # only key 0: its value


def test_bottom_right_with_more_queries_than_keys_hides_the_first_rows(kernel_lib):
    out = host_attention(*make_inputs(1, 10, 6, 2, 32), 2, causal="bottom-right")
    assert (out[0, :4] == 0).all() and (np.abs(out[0, 4:]).sum(-1) > 0).all()


def test_grouped_query_bad_inputs(kernel_lib):
    q, k, v = make_inputs(1, 4, 4, 4, 32, kv_heads=2)
    with pytest.raises(InputError, match="num_kv_heads=3 must divide num_heads=4"):
        host_attention(q, k, v, 4, num_kv_heads=3)
    with pytest.raises(InputError, match=r"key and value must be \(B, S_kv, 32\)"):
        host_attention(q, k, v, 4, num_kv_heads=1)
    with pytest.raises(InputError, match="causal must be"):
        host_attention(q, k, v, 4, num_kv_heads=2, causal="diagonal")


def test_scale_attribute(kernel_lib):
    check(2, 17, 23, 2, 64, "float32", scale=0.3)
    check(2, 17, 23, 2, 64, "float32", scale=2.0)


def test_large_scores_do_not_overflow(kernel_lib):
    """The online softmax subtracts the running max: scores around 1e3 must not give inf or NaN."""
    q, k, v = make_inputs(1, 40, 80, 1, 64)
    out = host_attention(q * 30, k * 30, v, 1)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, attention(q * 30, k * 30, v, 1), atol=1e-4)


def test_fully_masked_rows_are_zero(kernel_lib):
    q, k, v = make_inputs(2, 5, 9, 2, 32)
    out = host_attention(q, k, v, 2, lengths=np.array([0, 9]))
    assert (out[0] == 0).all() and np.abs(out[1]).sum() > 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_storage_conversions_round_like_numpy(kernel_lib, dtype):
    """The kernel's bit-level float <-> half / bfloat16 conversions, incl. subnormals, ties, overflow, inf, NaN."""
    rng = np.random.default_rng(3)
    special = np.array([0.0, -0.0, 1.0, 65504.0, 65519.0, 65520.0, 1e9, -1e9, np.inf, -np.inf, 6e-8, 2.9e-8, 3e-8,
                        1e-5, 6.1e-5, 1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-8, 1 + 3 * 2**-8, 1e38, 1e-40], np.float32)
    spread = rng.standard_normal(20000) * 10.0 ** rng.integers(-9, 6, 20000)
    values = np.concatenate([special, spread]).astype(np.float32)
    out = np.empty_like(values)
    code = {"float16": 1, "bfloat16": 2}[dtype]
    assert kernel_lib.edfa_round_trip(code, values.ctypes.data, out.ctypes.data, values.size) == 0
    with np.errstate(over="ignore"):
        expected = rounded(values, dtype)
    np.testing.assert_array_equal(out, expected)
    nan = np.array([np.nan], np.float32)
    assert kernel_lib.edfa_round_trip(code, nan.ctypes.data, out.ctypes.data, 1) == 0 and np.isnan(out[0])


def test_bad_inputs_rejected(kernel_lib):
    q, k, v = make_inputs(2, 8, 8, 2, 32)
    with pytest.raises(InputError, match="head_size 24"):
        host_attention(q[..., :48], k[..., :48], v[..., :48], 2)
    with pytest.raises(InputError, match="key and value"):
        host_attention(q, k[:, :5], v, 2)
    with pytest.raises(InputError, match="mask must be"):
        host_attention(q, k, v, 2, mask=np.ones((2, 7)))
    with pytest.raises(InputError, match="lengths must be"):
        host_attention(q, k, v, 2, lengths=np.ones(3))
    with pytest.raises(InputError, match="dtype"):
        host_attention(q, k, v, 2, dtype="int8")


def test_c_abi_rejects_bad_problems(kernel_lib):
    """The C entry point validates on its own (the TensorRT plugin and other callers do not go through Python)."""
    def status(**changes):
        fields = dict(batch=1, seq_q=4, seq_kv=4, num_heads=1, head_size=64, dtype=0, mask_type=0, causal=0, scale=0.0)
        fields.update(changes)
        return kernel_lib.edfa_validate(ctypes.byref(loader.EdfaProblem(**fields)))

    assert status() == 0
    assert status(head_size=48) == 1 and status(dtype=3) == 2 and status(seq_kv=0) == 3 and status(mask_type=3) == 4
    assert status(num_heads=4, num_kv_heads=2) == 0 and status(num_heads=4, num_kv_heads=3) == 3
    assert status(num_kv_heads=2) == 3 and status(causal=2) == 0 and status(causal=3) == 8
    buf = np.zeros(256, np.float32)
    problem = loader.EdfaProblem(1, 4, 4, 1, 64, 0, 1, 0, 0.0)
    assert kernel_lib.edfa_host_attention(ctypes.byref(problem), *[buf.ctypes.data] * 3, None, buf.ctypes.data) == 4
    assert b"head_size" in kernel_lib.edfa_error_string(1)


def test_missing_library_names_the_build_command(monkeypatch, tmp_path):
    monkeypatch.setenv(loader.ENV_VAR, str(tmp_path))
    with pytest.raises(MissingDependencyError) as info:
        loader.find_library("edgedistill_not_built")
    assert "libedgedistill_not_built" in str(info.value) and str(tmp_path) in str(info.value)
    assert "build it with: edgedistill plugins build" in str(info.value)


def test_cuda_build_when_nvcc_is_present(kernel_lib):
    import os
    import shutil

    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc: the library holds the host reference only")
    if os.environ[loader.ENV_VAR] != str(loader.REPO_ROOT / "build" / "test-native" / "lib"):  # see conftest.py
        pytest.skip(f"using a library built elsewhere ({loader.ENV_VAR})")
    assert kernel_lib.edfa_has_cuda() == 1


def test_torch_entry_points_reject_unsupported_or_mixed_dtypes():
    """cuda_attention / cuda_kernel_name name the dtypes they take before touching a device or the library."""
    torch = pytest.importorskip("torch")
    from edgedistill.plugins.attention import cuda_attention, cuda_kernel_name, torch_dtype_name

    q = torch.zeros(1, 4, 64)
    assert torch_dtype_name(q, q, q) == "float32"
    assert torch_dtype_name(q.bfloat16(), q.bfloat16(), q.bfloat16()) == "bfloat16"
    message = r"must share one dtype of \['float32', 'float16', 'bfloat16'\]; got torch.float64"
    with pytest.raises(InputError, match=message):
        cuda_attention(q.double(), q.double(), q.double(), 1)
    with pytest.raises(InputError, match=message):
        cuda_kernel_name(q.double(), q.double(), q.double(), 1)
    with pytest.raises(InputError, match="got torch.float32"):
        cuda_attention(q, q.half(), q, 1)
