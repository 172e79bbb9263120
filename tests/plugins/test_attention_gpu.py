"""The CUDA kernel (torch binding) against torch's scaled_dot_product_attention and the host reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.usefixtures("kernel_lib"),  # builds the library for this GPU unless EDGEDISTILL_PLUGIN_DIR names one
]

TOLERANCE = {torch.float32: 1e-4, torch.float16: 4e-3, torch.bfloat16: 3e-2}


def sdpa(q, k, v, heads, mask=None, lengths=None, causal=False, scale=None, kv_heads=None):
    """torch's SDPA in the plugin's layout; mask as a boolean (B, 1, S_q, S_kv) keep-mask; grouped-query heads
    repeated for SDPA; causal "bottom-right" shifts the diagonal by S_kv - S_q."""
    batch, seq_q, hidden = q.shape
    seq_kv, d = k.shape[1], hidden // heads

    def split(x):  # (B, S, H*D) -> (B, H, S, D), key/value heads repeated for their query heads
        x = x.view(batch, x.shape[1], -1, d).transpose(1, 2)
        return x.repeat_interleave(heads // x.shape[1], dim=1)

    keep = torch.ones(batch, seq_q, seq_kv, dtype=torch.bool, device=q.device)
    if mask is not None:
        keep &= mask.bool()[:, None, :]
    if lengths is not None:
        keep &= torch.arange(seq_kv, device=q.device)[None, None, :] < lengths[:, None, None]
    if causal:
        past = seq_kv - seq_q if causal == "bottom-right" else 0
        keep &= torch.ones(seq_q, seq_kv, dtype=torch.bool, device=q.device).tril(past)[None]
    out = torch.nn.functional.scaled_dot_product_attention(
        split(q), split(k), split(v), attn_mask=keep[:, None], scale=scale
    )
    return out.transpose(1, 2).reshape(batch, seq_q, hidden)


def inputs(batch, seq_q, seq_kv, heads, d, dtype, seed=0, kv_heads=None):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    sizes = ((seq_q, heads), (seq_kv, kv_heads or heads), (seq_kv, kv_heads or heads))
    return [torch.randn(batch, s, h * d, device="cuda", dtype=dtype, generator=gen) for s, h in sizes]


def masks(kind, batch, seq_kv):
    """Masks that leave every query at least one key (SDPA gives NaN for rows with none)."""
    gen = torch.Generator(device="cuda").manual_seed(1)
    if kind == "lengths":
        return None, torch.randint(1, seq_kv + 1, (batch,), device="cuda", generator=gen, dtype=torch.int32)
    if kind == "bool":
        mask = torch.rand(batch, seq_kv, device="cuda", generator=gen) < 0.7
        mask[:, 0] = True
        return mask, None
    return None, None


GRID = list(itertools.product([32, 64, 128], [(1, 1), (33, 31), (128, 128), (200, 517)]))


KERNEL_SETTINGS = {  # fixture id -> environment
    "auto": {},  # what the launcher picks: mma on sm_80+, wmma on sm_70/75 (FP16/BF16)
    "mma-16-rows": {"EDFA_MMA_WARP_ROWS": "16"},  # the mma kernel's two tilings (head sizes 32 and 64)
    "mma-32-rows": {"EDFA_MMA_WARP_ROWS": "32"},
    "wmma": {"EDFA_KERNEL": "wmma"},
    "simt": {"EDFA_KERNEL": "simt"},
}


@pytest.fixture(params=list(KERNEL_SETTINGS))
def kernel(request, monkeypatch):
    """Each test runs on every kernel the GPU can run: the launcher's pick, both mma tilings, WMMA and FP32."""
    for name in ("EDFA_KERNEL", "EDFA_MMA_WARP_ROWS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in KERNEL_SETTINGS[request.param].items():
        monkeypatch.setenv(name, value)
    return request.param


@pytest.mark.parametrize(("d", "seqs"), GRID)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize(("mask_kind", "causal"), [("none", False), ("none", True), ("lengths", False),
                                                   ("bool", True)])
def test_matches_sdpa(d, seqs, dtype, mask_kind, causal, kernel):
    from edgedistill.plugins.attention import cuda_attention

    if kernel != "auto" and dtype == torch.float32:
        pytest.skip("FP32 always runs on the FP32 kernel")
    q, k, v = inputs(2, seqs[0], seqs[1], 3, d, dtype)
    mask, lengths = masks(mask_kind, 2, seqs[1])
    out = cuda_attention(q, k, v, 3, mask=mask, lengths=lengths, causal=causal)
    ref = sdpa(q.float(), k.float(), v.float(), 3, mask=mask, lengths=lengths, causal=causal)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=tol)


def test_kernel_choice_follows_dtype_capability_and_override(monkeypatch):
    from edgedistill.plugins.attention import cuda_kernel_name

    major = torch.cuda.get_device_capability()[0]
    monkeypatch.delenv("EDFA_KERNEL", raising=False)
    for dtype, wmma_needs in ((torch.float16, 7), (torch.bfloat16, 8)):
        q, k, v = inputs(1, 16, 16, 2, 64, dtype)
        tensor_core = "mma" if major >= 8 else "wmma" if major >= wmma_needs else "simt"
        assert cuda_kernel_name(q, k, v, 2) == tensor_core
        monkeypatch.setenv("EDFA_KERNEL", "wmma")
        assert cuda_kernel_name(q, k, v, 2) == ("wmma" if major >= wmma_needs else "simt")
        monkeypatch.setenv("EDFA_KERNEL", "simt")
        assert cuda_kernel_name(q, k, v, 2) == "simt"
        monkeypatch.delenv("EDFA_KERNEL")
    q, k, v = inputs(1, 16, 16, 2, 64, torch.float32)
    assert cuda_kernel_name(q, k, v, 2) == "simt"


def test_unaligned_views_fall_back_and_stay_correct(kernel):
    """A view starting 2 bytes into its storage cannot take 16-byte loads: the launcher must not use them."""
    from edgedistill.plugins.attention import cuda_attention, cuda_kernel_name

    q, k, v = inputs(1, 33, 33, 2, 64, torch.float16)
    shifted = torch.empty(q.numel() + 1, device="cuda", dtype=q.dtype)[1:].view(q.shape)
    shifted.copy_(q)
    assert shifted.data_ptr() % 16 != 0
    assert cuda_kernel_name(shifted, k, v, 2) == "simt"
    out = cuda_attention(shifted, k, v, 2)
    torch.testing.assert_close(out.float(), sdpa(q.float(), k.float(), v.float(), 2), atol=4e-3, rtol=4e-3)


def test_scale_and_zero_length_rows(kernel):
    from edgedistill.plugins.attention import cuda_attention

    q, k, v = inputs(3, 40, 70, 2, 64, torch.float16)
    lengths = torch.tensor([0, 5, 70], device="cuda", dtype=torch.int32)
    out = cuda_attention(q, k, v, 2, lengths=lengths, scale=0.2)
    assert (out[0] == 0).all()
    ref = sdpa(q[1:].float(), k[1:].float(), v[1:].float(), 2, lengths=lengths[1:], scale=0.2)
    torch.testing.assert_close(out[1:].float(), ref, atol=4e-3, rtol=4e-3)


@pytest.mark.parametrize("d", [32, 64, 128])
def test_cuda_matches_host_reference(d):
    """Same helpers, same tiles: fp32 outputs agree to rounding of the warp reductions."""
    from edgedistill.plugins.attention import cuda_attention, host_attention

    q, k, v = inputs(2, 67, 45, 2, d, torch.float32)
    lengths = torch.tensor([45, 20], device="cuda", dtype=torch.int32)
    out = cuda_attention(q, k, v, 2, lengths=lengths, causal=True).cpu().numpy()
    host = host_attention(*(t.cpu().numpy() for t in (q, k, v)), 2, lengths=lengths.cpu().numpy(), causal=True)
    np.testing.assert_allclose(out, host, atol=2e-6, rtol=2e-6)


@pytest.mark.parametrize("d", [32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_tensor_core_kernels_match_their_host_arithmetic(d, dtype, kernel):
    """Same key tiles, same P rounding: each tensor-core kernel against the host reference in that arithmetic. Only
    the order of the tensor cores' dot-product sums (and, for mma, one FMA in the exponent) differs, so the bound is
    about one storage ulp near 1."""
    from edgedistill.plugins.attention import cuda_attention, cuda_kernel_name, host_attention

    q, k, v = inputs(2, 230, 197, 2, d, dtype)
    if cuda_kernel_name(q, k, v, 2) == "simt":
        pytest.skip("this setting runs FP16/BF16 on the FP32 kernel")
    lengths = torch.tensor([197, 40], device="cuda", dtype=torch.int32)
    out = cuda_attention(q, k, v, 2, lengths=lengths, causal=True).float().cpu().numpy()
    name = "float16" if dtype == torch.float16 else "bfloat16"
    host_inputs = [t.cpu().numpy() if dtype == torch.float16 else t.float().cpu().numpy() for t in (q, k, v)]
    host = host_attention(*host_inputs, 2, lengths=lengths.cpu().numpy(), causal=True,
                          dtype=None if dtype == torch.float16 else name, kernel="tensor-core")
    tol = 2e-3 if dtype == torch.float16 else 1.6e-2
    np.testing.assert_allclose(out, host.astype(np.float32), atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_output_element_is_written(dtype, kernel):
    """Output poisoned with NaN before the call: every element of a ragged, padded shape must be overwritten."""
    from edgedistill.plugins.attention import cuda_attention

    q, k, v = inputs(3, 301, 259, 4, 64, dtype, seed=5)
    poisoned = torch.full_like(q, float("nan"))
    lengths = torch.tensor([259, 1, 130], device="cuda", dtype=torch.int32)
    out = cuda_attention(q, k, v, 4, lengths=lengths, out=poisoned)
    assert out.data_ptr() == poisoned.data_ptr() and not out.isnan().any()


def test_large_batch_matches_sdpa_flash(kernel):
    """The benchmark's shape (batch 8, 12 heads, head size 64, 512 keys) against SDPA, with fresh random inputs."""
    from edgedistill.plugins.attention import cuda_attention

    if kernel == "simt":
        pytest.skip("covered by the grid; slow at this size")
    q, k, v = inputs(8, 512, 512, 12, 64, torch.float16, seed=11)
    out = cuda_attention(q, k, v, 12)
    torch.testing.assert_close(out.float(), sdpa(q.float(), k.float(), v.float(), 12), atol=4e-3, rtol=4e-3)


@pytest.mark.parametrize(("heads", "kv_heads"), [(9, 3), (8, 1), (16, 16)])
@pytest.mark.parametrize(("seq_q", "past"), [(1, 0), (1, 300), (1, 2047), (7, 120), (128, 0)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_grouped_query_decode_and_prefill_after_a_cache_match_sdpa(heads, kv_heads, seq_q, past, dtype, kernel):
    """A KV cache's shapes: S_q new queries after `past` cached keys, bottom-right causal, fewer key/value heads; a
    query length of 1 takes the decode kernel under the launcher's pick."""
    from edgedistill.plugins.attention import cuda_attention, cuda_kernel_name

    if kernel != "auto" and dtype == torch.float32:
        pytest.skip("FP32 always runs on the FP32 kernel")
    q, k, v = inputs(2, seq_q, past + seq_q, heads, 64, dtype, seed=heads + seq_q, kv_heads=kv_heads)
    if kernel == "auto" and seq_q == 1:
        assert cuda_kernel_name(q, k, v, heads, num_kv_heads=kv_heads) == "decode"
    mask, _ = masks("bool", 2, past + seq_q)
    out = cuda_attention(q, k, v, heads, mask=mask, causal="bottom-right", num_kv_heads=kv_heads)
    ref = sdpa(q.float(), k.float(), v.float(), heads, mask=mask, causal="bottom-right", kv_heads=kv_heads)
    torch.testing.assert_close(out.float(), ref, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


@pytest.mark.parametrize("d", [32, 64, 128])
def test_decode_kernel_matches_host_reference(d):
    """The decode kernel does the FP32 kernel's arithmetic per row: equal to the host reference to the rounding of
    the warp reductions."""
    from edgedistill.plugins.attention import cuda_attention, host_attention

    q, k, v = inputs(3, 1, 333, 9, d, torch.float32, kv_heads=3)
    lengths = torch.tensor([333, 40, 1], device="cuda", dtype=torch.int32)
    out = cuda_attention(q, k, v, 9, lengths=lengths, causal="bottom-right", num_kv_heads=3).cpu().numpy()
    host = host_attention(*(t.cpu().numpy() for t in (q, k, v)), 9, lengths=lengths.cpu().numpy(),
                          causal="bottom-right", num_kv_heads=3)
    np.testing.assert_allclose(out, host, atol=2e-6, rtol=2e-6)
