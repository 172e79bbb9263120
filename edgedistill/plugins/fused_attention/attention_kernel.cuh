// Flash-style attention forward kernel (declarations shared by the C ABI launcher and the TensorRT plugin).
#pragma once

#include "attention_api.h"

#include <cuda_runtime_api.h>

namespace edfa
{

// Launches the kernel for `problem` on `stream`. Returns an EDFA_* code; never throws.
int32_t launch_attention(EdfaProblem const& problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream);

} // namespace edfa
