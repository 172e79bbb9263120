// Flash-style attention forward (FP32 arithmetic on CUDA cores, "simt"; FP16/BF16 go to the tensor-core kernels,
// attention_kernel_mma.cu on sm_80+ and attention_kernel_tc.cu on sm_70/75, where the GPU has tensor cores for
// them): Q, K, V tiles in shared memory, online softmax (running max and sum), FP32 accumulation, FP32/FP16/BF16
// storage, head sizes 32/64/128, any sequence length, grouped-query heads, key padding and causal masks; and the
// decode kernel for a query length of 1 (any dtype).
//
// Work split: grid (query blocks, heads, batch); a block of kWarps warps owns kBlockM = kWarps * kRowsPerWarp query
// rows. For each tile of kBlockN = 32 keys, lane j of a warp scores key j against the warp's rows, the warp reduces
// the tile max and sum with shuffles, and for P.V each lane owns head_size / 32 output columns. All per-element
// arithmetic is in attention_math.cuh, shared with the host reference.
#include "attention_kernel.cuh"
#include "attention_math.cuh"

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

namespace edfa
{
namespace
{

template <DType kType>
struct StorageOf
{
    using type = uint16_t;
};

template <>
struct StorageOf<DType::kFloat32>
{
    using type = float;
};

__device__ __forceinline__ float warp_max(float x)
{
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    {
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    }
    return x;
}

__device__ __forceinline__ float warp_sum(float x)
{
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    {
        x += __shfl_xor_sync(0xffffffffu, x, offset);
    }
    return x;
}

template <int D>
constexpr size_t shared_bytes()
{
    // Q (kBlockM, D) | K (kBlockN, D + 1), padded so lanes reading different keys hit different banks
    // | V (kBlockN, D) | P (kWarps, kRowsPerWarp, kBlockN)
    return sizeof(float) * (kBlockM * D + kBlockN * (D + 1) + kBlockN * D + kWarps * kRowsPerWarp * kBlockN);
}

// Copies rows [row0, row0 + rows) of one head into shared memory as float (zeros past seq), times `factor`.
template <DType kType, int D>
__device__ __forceinline__ void load_tile(float* tile, int tile_stride, typename StorageOf<kType>::type const* src,
    int64_t head_offset, int64_t row_stride, int row0, int rows, int seq, float factor)
{
    for (int idx = threadIdx.x; idx < rows * D; idx += blockDim.x)
    {
        int const r = idx / D;
        int const d = idx % D;
        int const pos = row0 + r;
        tile[r * tile_stride + d]
            = pos < seq ? load_as_float(src, head_offset + pos * row_stride + d, kType) * factor : 0.0f;
    }
}

// The block's next tile of kBlockN keys and values in shared memory (K rows padded to D + 1), once the previous
// one is consumed (and Q stored, on the first pass).
template <DType kType, int D>
__device__ __forceinline__ void next_kv_tile(float* k_tile, float* v_tile,
    typename StorageOf<kType>::type const* key, typename StorageOf<kType>::type const* value, HeadView const& head,
    int k0, int seq_kv)
{
    __syncthreads();
    load_tile<kType, D>(k_tile, D + 1, key, head.kv_head, head.kv_stride, k0, kBlockN, seq_kv, 1.0f);
    load_tile<kType, D>(v_tile, D, value, head.kv_head, head.kv_stride, k0, kBlockN, seq_kv, 1.0f);
    __syncthreads();
}

template <DType kType, int D>
__global__ void __launch_bounds__(kWarps* kWarpSize) fused_attention_kernel(EdfaProblem p,
    typename StorageOf<kType>::type const* query, typename StorageOf<kType>::type const* key,
    typename StorageOf<kType>::type const* value, int32_t const* mask, typename StorageOf<kType>::type* output,
    float prescale)
{
    constexpr int kCols = D / kWarpSize; // output columns per lane
    extern __shared__ float4 shared_raw[];
    float* q_tile = reinterpret_cast<float*>(shared_raw); // (kBlockM, D)
    float* k_tile = q_tile + kBlockM * D;                  // (kBlockN, D + 1)
    float* v_tile = k_tile + kBlockN * (D + 1);            // (kBlockN, D)
    float* p_tile = v_tile + kBlockN * D;                  // (kWarps, kRowsPerWarp, kBlockN)

    int const warp = threadIdx.x / kWarpSize;
    int const lane = threadIdx.x % kWarpSize;
    int const q0 = blockIdx.x * kBlockM;
    int const h = blockIdx.y;
    int const b = blockIdx.z;
    HeadView const head = head_view(p, mask, b, h);
    int const kv_end = kv_end_for_block(q0, head.kv_len, head.causal, kBlockM, head.past);
    int const row0 = warp * kRowsPerWarp;
    float* p_rows = p_tile + warp * kRowsPerWarp * kBlockN;

    load_tile<kType, D>(q_tile, D, query, head.q_head, head.stride, q0, kBlockM, p.seq_q, prescale);

    float acc[kRowsPerWarp][kCols];
    RowState state[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
    {
        state[r] = row_state_init();
#pragma unroll
        for (int c = 0; c < kCols; ++c)
        {
            acc[r][c] = 0.0f;
        }
    }

    for (int k0 = 0; k0 < kv_end; k0 += kBlockN)
    {
        next_kv_tile<kType, D>(k_tile, v_tile, key, value, head, k0, p.seq_kv);

        // Scores of key (k0 + lane) against the warp's rows: same fmaf order over d as the host reference.
        int const kpos = k0 + lane;
        int const keep = padding_keep(head.mask_type, mask, b, kpos, p.seq_kv);
        float score[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r)
        {
            score[r] = 0.0f;
        }
        float const* k_row = k_tile + lane * (D + 1);
#pragma unroll 4
        for (int d = 0; d < D; d += 4)
        {
            float const k_0 = k_row[d], k_1 = k_row[d + 1], k_2 = k_row[d + 2], k_3 = k_row[d + 3];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r)
            {
                float4 const q4 = *reinterpret_cast<float4 const*>(q_tile + (row0 + r) * D + d);
                score[r] = fmaf(q4.x, k_0, score[r]);
                score[r] = fmaf(q4.y, k_1, score[r]);
                score[r] = fmaf(q4.z, k_2, score[r]);
                score[r] = fmaf(q4.w, k_3, score[r]);
            }
        }

        // Online softmax: merge this tile into each row's running max and sum, rescale the accumulator.
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r)
        {
            int const qpos = q0 + row0 + r;
            bool const visible
                = kpos < kv_end && key_visible(qpos, kpos, head.kv_len, head.causal, keep, head.past);
            float const s = masked_or(score[r], visible);
            float const m_new = merged_max(state[r], warp_max(s));
            float const alpha = rescale_factor(state[r], m_new);
            float const prob = tile_probability(s, m_new);
            state[r] = merged_state(state[r], m_new, alpha, warp_sum(prob));
            p_rows[r * kBlockN + lane] = prob;
#pragma unroll
            for (int c = 0; c < kCols; ++c)
            {
                acc[r][c] *= alpha;
            }
        }
        __syncwarp();

        // P.V: lane owns columns lane + 32 * c; same fmaf order over keys as the host reference.
        int const tile_keys = min(kBlockN, kv_end - k0);
        for (int j = 0; j < tile_keys; ++j)
        {
#pragma unroll
            for (int c = 0; c < kCols; ++c)
            {
                float const vj = v_tile[j * D + lane + kWarpSize * c];
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r)
                {
                    acc[r][c] = fmaf(p_rows[r * kBlockN + j], vj, acc[r][c]);
                }
            }
        }
        __syncwarp();
    }

#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
    {
        int const qpos = q0 + row0 + r;
        if (qpos < p.seq_q)
        {
#pragma unroll
            for (int c = 0; c < kCols; ++c)
            {
                store_from_float(output, head.q_head + qpos * head.stride + lane + kWarpSize * c, finalize(acc[r][c], state[r]),
                    kType);
            }
        }
    }
}

// Decode attention, a query length of 1 (the step after a KV cache): grid (num_kv_heads, batch), one warp per query
// head of the group (num_heads / num_kv_heads of them, up to kDecodeMaxGroup), all reading the same shared tiles of
// kBlockN keys, so a key/value head is read once per step rather than once per query head. Each warp's arithmetic
// is the FP32 kernel's for one row (Q prescaled, fmaf over d in order, online softmax per 32-key tile), so
// edfa_host_attention is its reference too.
constexpr int kDecodeMaxGroup = 16;

template <int D>
size_t decode_shared_bytes(int group)
{
    // Q (group, D) | K (kBlockN, D + 1) | V (kBlockN, D) | P (group, kBlockN)
    return sizeof(float) * (group * D + kBlockN * (D + 1) + kBlockN * D + group * kBlockN);
}

template <DType kType, int D>
__global__ void __launch_bounds__(kDecodeMaxGroup* kWarpSize) decode_attention_kernel(EdfaProblem p,
    typename StorageOf<kType>::type const* query, typename StorageOf<kType>::type const* key,
    typename StorageOf<kType>::type const* value, int32_t const* mask, typename StorageOf<kType>::type* output,
    float prescale)
{
    constexpr int kCols = D / kWarpSize;
    int const group = p.num_heads / kv_heads_of(p);
    extern __shared__ float4 shared_raw[];
    float* q_rows = reinterpret_cast<float*>(shared_raw); // (group, D)
    float* k_tile = q_rows + group * D;                    // (kBlockN, D + 1)
    float* v_tile = k_tile + kBlockN * (D + 1);            // (kBlockN, D)
    float* p_rows = v_tile + kBlockN * D;                  // (group, kBlockN)

    int const warp = threadIdx.x / kWarpSize;
    int const lane = threadIdx.x % kWarpSize;
    int const b = blockIdx.y;
    HeadView const head = head_view(p, mask, b, blockIdx.x * group + warp);
    int const kv_end = kv_end_for_block(0, head.kv_len, head.causal, 1, head.past);
    float* q = q_rows + warp * D;
    float* p_row = p_rows + warp * kBlockN;
    for (int d = lane; d < D; d += kWarpSize)
    {
        q[d] = load_as_float(query, head.q_head + d, kType) * prescale;
    }

    float acc[kCols];
#pragma unroll
    for (int c = 0; c < kCols; ++c)
    {
        acc[c] = 0.0f;
    }
    RowState state = row_state_init();
    for (int k0 = 0; k0 < kv_end; k0 += kBlockN)
    {
        next_kv_tile<kType, D>(k_tile, v_tile, key, value, head, k0, p.seq_kv);

        int const kpos = k0 + lane;
        int const keep = padding_keep(head.mask_type, mask, b, kpos, p.seq_kv);
        float const* k_row = k_tile + lane * (D + 1);
        float score = 0.0f;
#pragma unroll 8
        for (int d = 0; d < D; ++d)
        {
            score = fmaf(q[d], k_row[d], score);
        }
        bool const visible = kpos < kv_end && key_visible(0, kpos, head.kv_len, head.causal, keep, head.past);
        float const s = masked_or(score, visible);
        float const m_new = merged_max(state, warp_max(s));
        float const alpha = rescale_factor(state, m_new);
        float const prob = tile_probability(s, m_new);
        state = merged_state(state, m_new, alpha, warp_sum(prob));
        p_row[lane] = prob;
#pragma unroll
        for (int c = 0; c < kCols; ++c)
        {
            acc[c] *= alpha;
        }
        __syncwarp();
        int const tile_keys = min(kBlockN, kv_end - k0);
        for (int j = 0; j < tile_keys; ++j)
        {
#pragma unroll
            for (int c = 0; c < kCols; ++c)
            {
                acc[c] = fmaf(p_row[j], v_tile[j * D + lane + kWarpSize * c], acc[c]);
            }
        }
        __syncwarp();
    }
#pragma unroll
    for (int c = 0; c < kCols; ++c)
    {
        store_from_float(output, head.q_head + lane + kWarpSize * c, finalize(acc[c], state), kType);
    }
}

template <DType kType, int D>
int32_t launch_decode_typed(EdfaProblem const& p, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream)
{
    using Storage = typename StorageOf<kType>::type;
    int const group = p.num_heads / kv_heads_of(p);
    size_t const smem = decode_shared_bytes<D>(group);
    auto kernel = decode_attention_kernel<kType, D>;
    if (!allow_shared_memory(kernel, smem))
    {
        return EDFA_ERR_CUDA;
    }
    dim3 const grid(kv_heads_of(p), p.batch);
    kernel<<<grid, group * kWarpSize, smem, stream>>>(p, static_cast<Storage const*>(query),
        static_cast<Storage const*>(key), static_cast<Storage const*>(value), mask, static_cast<Storage*>(output),
        query_prescale(p.scale, D));
    return cudaGetLastError() == cudaSuccess ? EDFA_OK : EDFA_ERR_CUDA;
}

template <DType kType, int D>
int32_t launch_typed(EdfaProblem const& p, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream)
{
    using Storage = typename StorageOf<kType>::type;
    constexpr size_t smem = shared_bytes<D>();
    auto kernel = fused_attention_kernel<kType, D>;
    if (!allow_shared_memory(kernel, smem))
    {
        return EDFA_ERR_CUDA;
    }
    dim3 const grid((p.seq_q + kBlockM - 1) / kBlockM, p.num_heads, p.batch);
    kernel<<<grid, kWarps * kWarpSize, smem, stream>>>(p, static_cast<Storage const*>(query),
        static_cast<Storage const*>(key), static_cast<Storage const*>(value), mask, static_cast<Storage*>(output),
        query_prescale(p.scale, D));
    return cudaGetLastError() == cudaSuccess ? EDFA_OK : EDFA_ERR_CUDA;
}

template <DType kType>
int32_t launch_for_dtype(EdfaProblem const& p, void const* q, void const* k, void const* v, int32_t const* mask,
    void* out, cudaStream_t stream, bool decode)
{
    return with_head_size(p.head_size, [&](auto d) {
        return decode ? launch_decode_typed<kType, decltype(d)::value>(p, q, k, v, mask, out, stream)
                      : launch_typed<kType, decltype(d)::value>(p, q, k, v, mask, out, stream);
    });
}

} // namespace

char const* kernel_for(EdfaProblem const& p, void const* query, void const* key, void const* value,
    void const* output)
{
    char const* forced = std::getenv("EDFA_KERNEL");
    if (p.seq_q == 1 && p.num_heads / kv_heads_of(p) <= kDecodeMaxGroup
        && (forced == nullptr || std::strcmp(forced, "decode") == 0))
    {
        return "decode";
    }
    bool const want_simt = forced != nullptr && std::strcmp(forced, "simt") == 0;
    bool const want_wmma = forced != nullptr && std::strcmp(forced, "wmma") == 0;
    int const major = want_simt ? 0 : tensor_core_major(p, query, key, value, output);
    if (major >= 8 && !want_wmma)
    {
        return "mma";
    }
    bool const bf16 = static_cast<DType>(p.dtype) == DType::kBFloat16;
    return major >= (bf16 ? 8 : 7) ? "wmma" : "simt";
}

int32_t launch_attention(EdfaProblem const& p, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream)
{
    int32_t const status = edfa_validate(&p);
    if (status != EDFA_OK)
    {
        return status;
    }
    if (query == nullptr || key == nullptr || value == nullptr || output == nullptr)
    {
        return EDFA_ERR_NULL;
    }
    if (p.mask_type != 0 && mask == nullptr)
    {
        return EDFA_ERR_MASK;
    }
    char const* kernel = kernel_for(p, query, key, value, output);
    if (std::strcmp(kernel, "mma") == 0)
    {
        return launch_attention_mma(p, query, key, value, mask, output, stream);
    }
    if (std::strcmp(kernel, "wmma") == 0)
    {
        return launch_attention_wmma(p, query, key, value, mask, output, stream);
    }
    bool const decode = std::strcmp(kernel, "decode") == 0;
    switch (static_cast<DType>(p.dtype))
    {
    case DType::kFloat32: return launch_for_dtype<DType::kFloat32>(p, query, key, value, mask, output, stream, decode);
    case DType::kFloat16: return launch_for_dtype<DType::kFloat16>(p, query, key, value, mask, output, stream, decode);
    case DType::kBFloat16:
        return launch_for_dtype<DType::kBFloat16>(p, query, key, value, mask, output, stream, decode);
    }
    return EDFA_ERR_DTYPE;
}

} // namespace edfa

extern "C" {

int32_t edfa_has_cuda(void)
{
    return 1;
}

int32_t edfa_cuda_attention(EdfaProblem const* problem, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, void* stream)
{
    if (problem == nullptr)
    {
        return EDFA_ERR_NULL;
    }
    return edfa::launch_attention(*problem, query, key, value, mask, output, static_cast<cudaStream_t>(stream));
}

char const* edfa_cuda_kernel_name(EdfaProblem const* problem, void const* query, void const* key, void const* value,
    void const* output)
{
    if (problem == nullptr || edfa_validate(problem) != EDFA_OK)
    {
        return "none";
    }
    return edfa::kernel_for(*problem, query, key, value, output);
}

} // extern "C"
