// Host reference of the fused-attention kernel and the library's C ABI entry points that need no GPU.
//
// The reference walks the same tiles as the kernel (kBlockN keys at a time, merging each tile into the running
// max and sum) and calls the same helpers (attention_math.cuh), so a CPU test of it checks the kernel's algorithm.
// The decode kernel (a query length of 1) does the FP32 kernel's arithmetic for each row: the same reference.
#include "attention_api.h"
#include "attention_math.cuh"
#include "fused_attention_spec.h"

#include <vector>

namespace edfa
{
namespace
{

// One query row against all keys of one (batch, head), key tile by key tile, as one warp row of the kernel.
// kTensorCore: the tensor-core kernel's arithmetic instead of the FP32 kernel's: its tiles (kTcBlockM rows, tc_block_n
// keys), the scale applied to the finished dot product rather than to Q, and P rounded to the storage type before
// P.V (and before the row sum). Its dot products sum in order, where the tensor cores' order is unspecified.
template <typename Storage, bool kTensorCore>
void reference_row(EdfaProblem const& p, Storage const* query, Storage const* key, Storage const* value,
    int32_t const* mask, Storage* output, int32_t b, int32_t h, int32_t qi, float prescale)
{
    DType const dtype = static_cast<DType>(p.dtype);
    int32_t const d_head = p.head_size;
    HeadView const head = head_view(p, mask, b, h);
    int64_t const stride = head.stride;
    int64_t const q_base = head.q_head + qi * stride;
    int64_t const kv_head = head.kv_head;
    int64_t const kv_stride = head.kv_stride;
    int32_t const block_m = kTensorCore ? kTcBlockM : kBlockM;
    int32_t const block_n = kTensorCore ? tc_block_n(d_head) : kBlockN;
    float const q_scale = kTensorCore ? 1.0f : prescale;
    float const s_scale = kTensorCore ? prescale : 1.0f;

    std::vector<float> q(d_head), acc(d_head, 0.0f);
    for (int32_t d = 0; d < d_head; ++d)
    {
        q[d] = load_as_float(query, q_base + d, dtype) * q_scale;
    }
    int32_t const kv_len = head.kv_len;
    int32_t const kv_end = kv_end_for_block(qi - qi % block_m, kv_len, head.causal, block_m, head.past);

    RowState state = row_state_init();
    float scores[kTcMaxBlockN > kBlockN ? kTcMaxBlockN : kBlockN];
    for (int32_t k0 = 0; k0 < kv_end; k0 += block_n)
    {
        float tile_max = -INFINITY;
        for (int32_t j = 0; j < block_n; ++j)
        {
            int32_t const kj = k0 + j;
            int32_t const keep = padding_keep(head.mask_type, mask, b, kj, p.seq_kv);
            float dot = 0.0f;
            if (kj < kv_end)
            {
                for (int32_t d = 0; d < d_head; ++d)
                {
                    dot = fmaf(q[d], load_as_float(key, kv_head + kj * kv_stride + d, dtype), dot);
                }
            }
            bool const visible = kj < kv_end && key_visible(qi, kj, kv_len, head.causal, keep, head.past);
            scores[j] = masked_or(dot * s_scale, visible);
            tile_max = fmaxf(tile_max, scores[j]);
        }
        float const m_new = merged_max(state, tile_max);
        float const alpha = rescale_factor(state, m_new);
        float tile_sum = 0.0f;
        for (int32_t d = 0; d < d_head; ++d)
        {
            acc[d] *= alpha;
        }
        for (int32_t j = 0; j < block_n && k0 + j < kv_end; ++j)
        {
            float const probability = tile_probability(scores[j], m_new);
            float const pj = kTensorCore ? rounded_to(probability, dtype) : probability;
            tile_sum += pj;
            for (int32_t d = 0; d < d_head; ++d)
            {
                acc[d] = fmaf(pj, load_as_float(value, kv_head + (k0 + j) * kv_stride + d, dtype), acc[d]);
            }
        }
        state = merged_state(state, m_new, alpha, tile_sum);
    }
    for (int32_t d = 0; d < d_head; ++d)
    {
        store_from_float(output, q_base + d, finalize(acc[d], state), dtype);
    }
}

template <typename Storage, bool kTensorCore>
void reference(EdfaProblem const& p, void const* query, void const* key, void const* value, int32_t const* mask,
    void* output)
{
    float const prescale = query_prescale(p.scale, p.head_size);
    for (int32_t b = 0; b < p.batch; ++b)
    {
        for (int32_t h = 0; h < p.num_heads; ++h)
        {
            for (int32_t qi = 0; qi < p.seq_q; ++qi)
            {
                reference_row<Storage, kTensorCore>(p, static_cast<Storage const*>(query),
                    static_cast<Storage const*>(key), static_cast<Storage const*>(value), mask,
                    static_cast<Storage*>(output), b, h, qi, prescale);
            }
        }
    }
}

// Checks the call, then runs the reference in the FP32 kernel's or the tensor-core kernel's arithmetic.
int32_t host_attention(EdfaProblem const* problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, bool tensor_core)
{
    int32_t const status = edfa_validate(problem);
    if (status != EDFA_OK)
    {
        return status;
    }
    if (query == nullptr || key == nullptr || value == nullptr || output == nullptr)
    {
        return EDFA_ERR_NULL;
    }
    if (problem->mask_type != 0 && mask == nullptr)
    {
        return EDFA_ERR_MASK;
    }
    bool const fp32 = problem->dtype == static_cast<int32_t>(DType::kFloat32);
    if (tensor_core && fp32)
    {
        return EDFA_ERR_DTYPE; // the tensor-core kernel takes FP16 and BF16 only
    }
    if (fp32)
    {
        reference<float, false>(*problem, query, key, value, mask, output);
    }
    else if (tensor_core)
    {
        reference<uint16_t, true>(*problem, query, key, value, mask, output);
    }
    else
    {
        reference<uint16_t, false>(*problem, query, key, value, mask, output);
    }
    return EDFA_OK;
}

} // namespace
} // namespace edfa

extern "C" {

int32_t edfa_abi_version(void)
{
    return 4;
}

char const* edfa_error_string(int32_t code)
{
    switch (code)
    {
    case EDFA_OK: return "ok";
    case EDFA_ERR_HEAD_SIZE: return "unsupported head_size (supported: 32, 64, 128)";
    case EDFA_ERR_DTYPE: return "unsupported dtype (supported: 0 float32, 1 float16, 2 bfloat16)";
    case EDFA_ERR_SHAPE:
        return "bad shape: batch, seq_q, seq_kv and num_heads must be positive, num_kv_heads (0: num_heads) must "
               "divide num_heads";
    case EDFA_ERR_CAUSAL: return "bad causal (0 none, 1 top-left aligned, 2 bottom-right aligned)";
    case EDFA_ERR_MASK: return "bad mask_type (0 none, 1 key padding mask, 2 valid lengths) or missing mask";
    case EDFA_ERR_NULL: return "null tensor pointer";
    case EDFA_ERR_CUDA: return "CUDA error while launching the kernel";
    case EDFA_ERR_NO_CUDA: return "library built without CUDA (host reference only)";
    default: return "unknown error";
    }
}

int32_t edfa_validate(EdfaProblem const* problem)
{
    if (problem == nullptr)
    {
        return EDFA_ERR_NULL;
    }
    if (!edfa::is_supported_head_size(problem->head_size))
    {
        return EDFA_ERR_HEAD_SIZE;
    }
    if (problem->dtype < 0 || problem->dtype > 2)
    {
        return EDFA_ERR_DTYPE;
    }
    if (problem->batch <= 0 || problem->seq_q <= 0 || problem->seq_kv <= 0 || problem->num_heads <= 0)
    {
        return EDFA_ERR_SHAPE;
    }
    if (problem->mask_type < 0 || problem->mask_type > 2)
    {
        return EDFA_ERR_MASK;
    }
    if (problem->num_kv_heads < 0 || problem->num_kv_heads > problem->num_heads
        || (problem->num_kv_heads > 0 && problem->num_heads % problem->num_kv_heads != 0))
    {
        return EDFA_ERR_SHAPE;
    }
    if (problem->causal < 0 || problem->causal > 2)
    {
        return EDFA_ERR_CAUSAL;
    }
    return EDFA_OK;
}

int32_t edfa_host_attention(EdfaProblem const* problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output)
{
    return edfa::host_attention(problem, query, key, value, mask, output, false);
}

int32_t edfa_host_attention_tensor_core(EdfaProblem const* problem, void const* query, void const* key,
    void const* value, int32_t const* mask, void* output)
{
    return edfa::host_attention(problem, query, key, value, mask, output, true);
}

int32_t edfa_round_trip(int32_t dtype, float const* input, float* output, int64_t n)
{
    if (dtype < 0 || dtype > 2)
    {
        return EDFA_ERR_DTYPE;
    }
    if (input == nullptr || output == nullptr)
    {
        return EDFA_ERR_NULL;
    }
    edfa::DType const type = static_cast<edfa::DType>(dtype);
    for (int64_t i = 0; i < n; ++i)
    {
        uint16_t bits = 0;
        switch (type)
        {
        case edfa::DType::kFloat32: output[i] = input[i]; continue;
        case edfa::DType::kFloat16: bits = edfa::float_to_half(input[i]); break;
        case edfa::DType::kBFloat16: bits = edfa::float_to_bf16(input[i]); break;
        }
        output[i] = edfa::load_as_float(&bits, 0, type);
    }
    return EDFA_OK;
}

char const* edfa_spec_name(void)
{
    return edfa::spec::kName;
}

char const* edfa_spec_version(void)
{
    return edfa::spec::kVersion;
}

char const* edfa_spec_namespace(void)
{
    return edfa::spec::kNamespace;
}

int32_t edfa_spec_field_count(void)
{
    return edfa::spec::kFieldCount;
}

char const* edfa_spec_field_name(int32_t index)
{
    return index >= 0 && index < edfa::spec::kFieldCount ? edfa::spec::kFieldNames[index] : nullptr;
}

char const* edfa_spec_field_type(int32_t index)
{
    return index >= 0 && index < edfa::spec::kFieldCount ? edfa::spec::kFieldTypes[index] : nullptr;
}

int32_t edfa_spec_head_size_count(void)
{
    return edfa::spec::kHeadSizeCount;
}

int32_t edfa_spec_head_size(int32_t index)
{
    return index >= 0 && index < edfa::spec::kHeadSizeCount ? edfa::spec::kHeadSizes[index] : -1;
}

} // extern "C"
