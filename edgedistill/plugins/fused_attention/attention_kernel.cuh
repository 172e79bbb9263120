// Flash-style attention forward kernel (declarations shared by the C ABI launcher and the TensorRT plugin).
#pragma once

#include "attention_api.h"

#include <cuda_runtime_api.h>

#include <type_traits>

namespace edfa
{

// Launches the kernel for `problem` on `stream`: the one kernel_for() names. Returns an EDFA_* code; never throws.
int32_t launch_attention(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream);

// Which kernel launch_attention runs for these arguments:
//   "decode" (attention_kernel.cu) for a query length of 1, any dtype, up to 16 query heads per key/value head;
// and otherwise, for FP16/BF16 tensors that are 16-byte aligned:
//   "mma"  (attention_kernel_mma.cu) on sm_80+;
//   "wmma" (attention_kernel_tc.cu) for FP16 on sm_70/72/75;
//   "simt" (attention_kernel.cu, FP32 arithmetic) otherwise, and for FP32.
// The environment variable EDFA_KERNEL=simt|wmma forces that kernel where it can run (for comparisons), for a query
// length of 1 too.
char const* kernel_for(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    void const* output);

// Calls launch(std::integral_constant<int, D>{}) for the supported head size D = head_size (32, 64 or 128), so each
// kernel instantiates its templates once per head size; EDFA_ERR_HEAD_SIZE for any other.
template <typename Launch>
int32_t with_head_size(int32_t head_size, Launch&& launch)
{
    switch (head_size)
    {
    case 32: return launch(std::integral_constant<int, 32>{});
    case 64: return launch(std::integral_constant<int, 64>{});
    case 128: return launch(std::integral_constant<int, 128>{});
    default: return EDFA_ERR_HEAD_SIZE;
    }
}

// Lets `kernel` use `bytes` of dynamic shared memory (an opt-in above 48 KiB); false if the device refuses.
template <typename Kernel>
bool allow_shared_memory(Kernel kernel, size_t bytes)
{
    return bytes <= 48 * 1024
        || cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes))
        == cudaSuccess;
}

// attention_kernel_tc.cu: the current device's compute-capability major where FP16/BF16 tensors can take a
// tensor-core kernel (16-byte aligned), else 0 (FP32, unaligned, no device).
int tensor_core_major(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    void const* output);
int32_t launch_attention_wmma(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream);

// attention_kernel_mma.cu (sm_80+)
int32_t launch_attention_mma(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream);

} // namespace edfa
