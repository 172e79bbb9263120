// C ABI of the fused-attention kernel library (libedgedistill_attention): loadable with ctypes, linked by the plugin.
//
// Tensors are contiguous, row-major:
//   query        (B, S_q,  num_heads * head_size)
//   key, value   (B, S_kv, num_kv_heads * head_size): grouped-query attention when num_kv_heads < num_heads, query
//                head h reading key/value head h / (num_heads / num_kv_heads); num_kv_heads 0 means num_heads
//   output       (B, S_q,  num_heads * head_size), same dtype as query
//   mask         int32 (B, S_kv) nonzero = keep when mask_type = 1; int32 (B,) valid lengths when mask_type = 2;
//                ignored (may be NULL) when mask_type = 0
// dtype: 0 float32, 1 float16, 2 bfloat16 (16-bit types as raw bits). scale <= 0 means 1/sqrt(head_size).
// causal: 0 none; 1 top-left aligned (key j visible to query i when j <= i, torch's is_causal); 2 bottom-right
// aligned, as a KV cache needs it (FlashAttention 2.1+): query i sits at position past + i, past = S_kv - S_q, and
// sees keys j <= past + i. The two agree when S_q = S_kv. A query length of 1 is a decode step; it runs its own
// kernel (one block per key/value head, its query heads sharing each key tile). Rows that see no key at all
// (length 0, a mask row of zeros, or bottom-right with S_q > S_kv) output zeros.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EDFA_API __declspec(dllexport)
#else
#define EDFA_API __attribute__((visibility("default")))
#endif

// Return codes.
#define EDFA_OK 0
#define EDFA_ERR_HEAD_SIZE 1
#define EDFA_ERR_DTYPE 2
#define EDFA_ERR_SHAPE 3
#define EDFA_ERR_MASK 4
#define EDFA_ERR_NULL 5
#define EDFA_ERR_CUDA 6
#define EDFA_ERR_NO_CUDA 7
#define EDFA_ERR_CAUSAL 8

typedef struct EdfaProblem
{
    int32_t batch;
    int32_t seq_q;
    int32_t seq_kv;
    int32_t num_heads;
    int32_t head_size;
    int32_t dtype;
    int32_t mask_type;
    int32_t causal;
    float scale;
    int32_t num_kv_heads;
} EdfaProblem;

// Version of this ABI (bumped on any signature, layout or returned-name change). 4: num_kv_heads (grouped-query
// attention), causal 2 (bottom-right), the "decode" kernel. 3: edfa_cuda_kernel_name() names "mma" / "wmma"
// where 2 said "tensor-core".
EDFA_API int32_t edfa_abi_version(void);

// Human-readable message for a return code.
EDFA_API char const* edfa_error_string(int32_t code);

// Checks a problem description; EDFA_OK if the kernel supports it.
EDFA_API int32_t edfa_validate(EdfaProblem const* problem);

// Host reference: the kernel's tiling and online softmax run on the CPU. Synchronous.
EDFA_API int32_t edfa_host_attention(EdfaProblem const* problem, void const* query, void const* key,
    void const* value, int32_t const* mask, void* output);

// Host reference in the tensor-core kernels' arithmetic (mma and wmma: their key tiles, scale after the dot product,
// P rounded to the storage type): FP16 / BF16 only (EDFA_ERR_DTYPE for FP32). Synchronous.
EDFA_API int32_t edfa_host_attention_tensor_core(EdfaProblem const* problem, void const* query, void const* key,
    void const* value, int32_t const* mask, void* output);

// CUDA launch on `stream` (a cudaStream_t; NULL = default stream); device pointers. Asynchronous.
// Returns EDFA_ERR_NO_CUDA from a library built without CUDA.
EDFA_API int32_t edfa_cuda_attention(EdfaProblem const* problem, void const* query, void const* key,
    void const* value, int32_t const* mask, void* output, void* stream);

// Which CUDA kernel edfa_cuda_attention would run for these arguments: "decode" (a query length of 1, any dtype, up
// to 16 query heads per key/value head), "mma" (FP16 / BF16 on sm_80+, 16-byte
// aligned pointers), "wmma" (FP16 on sm_70/72/75, or EDFA_KERNEL=wmma), "simt" (FP32 arithmetic: FP32, unaligned
// pointers, or EDFA_KERNEL=simt), or "none" (an invalid problem, or a build without CUDA). Queries the current device.
EDFA_API char const* edfa_cuda_kernel_name(EdfaProblem const* problem, void const* query, void const* key,
    void const* value, void const* output);

// Rounds n floats through the storage type `dtype` (float -> storage -> float), with the kernel's own conversions.
EDFA_API int32_t edfa_round_trip(int32_t dtype, float const* input, float* output, int64_t n);

// Whether this library was built with the CUDA kernel (1) or host reference only (0).
EDFA_API int32_t edfa_has_cuda(void);

// Plugin identity and fields as compiled in from spec.json (generated header), for the agreement test.
EDFA_API char const* edfa_spec_name(void);
EDFA_API char const* edfa_spec_version(void);
EDFA_API char const* edfa_spec_namespace(void);
EDFA_API int32_t edfa_spec_field_count(void);
EDFA_API char const* edfa_spec_field_name(int32_t index);
EDFA_API char const* edfa_spec_field_type(int32_t index);
EDFA_API int32_t edfa_spec_head_size_count(void);
EDFA_API int32_t edfa_spec_head_size(int32_t index);

#ifdef __cplusplus
}
#endif
