// C ABI stubs for a host-only build (no CUDA compiler): the host reference works, the CUDA launch reports why not.
#include "attention_api.h"

extern "C" {

int32_t edfa_has_cuda(void)
{
    return 0;
}

int32_t edfa_cuda_attention(EdfaProblem const*, void const*, void const*, void const*, int32_t const*, void*, void*)
{
    return EDFA_ERR_NO_CUDA;
}

char const* edfa_cuda_kernel_name(EdfaProblem const*, void const*, void const*, void const*, void const*)
{
    return "none";
}

} // extern "C"
