// Flash-style attention forward kernel (declarations shared by the C ABI launcher and the TensorRT plugin).
#pragma once

#include "attention_api.h"

#include <cuda_runtime_api.h>

namespace edfa
{

// Launches the kernel for `problem` on `stream`: the tensor-core kernel where kernel_for() picks it, else the FP32
// (SIMT) kernel. Returns an EDFA_* code; never throws.
int32_t launch_attention(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream);

// Which kernel launch_attention runs for these arguments: "tensor-core" (FP16 on sm_70+, BF16 on sm_80+, 16-byte
// aligned tensors) or "simt". The environment variable EDFA_KERNEL=simt forces the FP32 kernel (for comparisons).
char const* kernel_for(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    void const* output);

// Lets `kernel` use `bytes` of dynamic shared memory (an opt-in above 48 KiB); false if the device refuses.
template <typename Kernel>
bool allow_shared_memory(Kernel kernel, size_t bytes)
{
    return bytes <= 48 * 1024
        || cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes))
        == cudaSuccess;
}

// attention_kernel_tc.cu
bool tensor_core_eligible(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    void const* output);
int32_t launch_attention_tensor_core(EdfaProblem const& problem, void const* query, void const* key,
    void const* value, int32_t const* mask, void* output, cudaStream_t stream);

} // namespace edfa
