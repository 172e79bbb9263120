// Tensor-core flash attention forward for FP16 / BF16 inputs: the same algorithm as attention_kernel.cu (tiles
// in shared memory, online softmax with running max and sum in FP32, same masks), with Q.K^T and P.V on tensor
// cores through WMMA (m16n16k16, FP32 accumulation; P is rounded to the input type for P.V, as FlashAttention does).
//
// Work split: grid (query blocks, heads, batch); a block of kTcWarps warps owns kTcBlockM = 64 query rows, 16 per
// warp, and walks the keys in tiles of kBlockN (64; 32 for head size 128, to fit 99 KB of shared memory on
// sm_86/89). Per key tile each warp:
//   1. S (16 x kBlockN, FP32) = Q_w . K^T on tensor cores, stored to shared memory;
//   2. two lanes per query row apply scale and masks, merge the tile into the row's running max and sum
//      (attention_math.cuh: the same helpers as the FP32 kernel and the host reference), write P (input type)
//      and rescale the row's FP32 output accumulator O in shared memory;
//   3. O += P . V on tensor cores (accumulator loaded from and stored back to shared memory).
// Needs sm_70 for FP16 and sm_80 for BF16; tensor pointers 16-byte aligned (checked by the launcher, which
// otherwise uses the FP32 kernel). On sm_80+ the launcher runs attention_kernel_mma.cu instead (same arithmetic,
// everything in registers); this kernel serves Volta and Turing (sm_70/72/75), or EDFA_KERNEL=wmma.
#include "attention_kernel.cuh"
#include "attention_math.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <type_traits>

namespace edfa
{
namespace
{
namespace wmma = nvcuda::wmma;

constexpr int kTcWarps = 4;
constexpr int kTcRows = 16; // query rows per warp: one WMMA row block
constexpr int kFrag = 16;
static_assert(kTcWarps * kTcRows == kTcBlockM, "a block owns kTcBlockM query rows (attention_math.cuh)");

// Shared-memory layout of one block. Rows are padded (16 bytes for 16-bit tiles, 16 bytes for FP32 tiles) so
// consecutive rows start in different banks; every WMMA fragment pointer stays 32-byte aligned.
template <typename T, int D>
struct TcLayout
{
    static constexpr int kBlockN = tc_block_n(D);
    static constexpr int kLdQkv = D + 8;     // elements of T
    static constexpr int kLdS = kBlockN + 4; // floats
    static constexpr int kLdP = kBlockN + 8; // elements of T
    static constexpr int kLdO = D + 4;       // floats
    static constexpr size_t kQ = 0;
    static constexpr size_t kK = kQ + sizeof(T) * kTcBlockM * kLdQkv;
    static constexpr size_t kV = kK + sizeof(T) * kBlockN * kLdQkv;
    static constexpr size_t kS = kV + sizeof(T) * kBlockN * kLdQkv;
    static constexpr size_t kP = kS + sizeof(float) * kTcBlockM * kLdS;
    static constexpr size_t kO = kP + sizeof(T) * kTcBlockM * kLdP;
    static constexpr size_t kBytes = kO + sizeof(float) * kTcBlockM * kLdO;
    static_assert(kK % 32 == 0 && kV % 32 == 0 && kS % 32 == 0 && kP % 32 == 0 && kO % 32 == 0,
        "WMMA needs 32-byte aligned tiles");
};

__device__ __forceinline__ __half from_float(float x, __half*)
{
    return __float2half_rn(x);
}

__device__ __forceinline__ __nv_bfloat16 from_float(float x, __nv_bfloat16*)
{
    return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float to_float(__half x)
{
    return __half2float(x);
}

__device__ __forceinline__ float to_float(__nv_bfloat16 x)
{
    return __bfloat162float(x);
}

// Rows [row0, row0 + rows) of one head into a shared tile (leading dimension ld), 16 bytes per copy; zeros past
// seq, so masked keys multiply zeros, never stale values.
template <typename T, int D>
__device__ __forceinline__ void copy_rows(
    T* tile, int ld, T const* src, int64_t head_offset, int64_t row_stride, int row0, int rows, int seq)
{
    constexpr int kVec = 16 / sizeof(T);
    constexpr int kPerRow = D / kVec;
    for (int idx = threadIdx.x; idx < rows * kPerRow; idx += blockDim.x)
    {
        int const r = idx / kPerRow;
        int const c = (idx % kPerRow) * kVec;
        int const pos = row0 + r;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (pos < seq)
        {
            v = *reinterpret_cast<uint4 const*>(src + head_offset + pos * row_stride + c);
        }
        *reinterpret_cast<uint4*>(tile + r * ld + c) = v;
    }
}

template <typename T, int D>
__device__ void tc_attention_body(EdfaProblem const& p, T const* query, T const* key, T const* value,
    int32_t const* mask, T* output, float prescale)
{
    using L = TcLayout<T, D>;
    constexpr int BN = L::kBlockN;
    constexpr int kHalfCols = BN / 2; // score columns per lane (two lanes per row)
    constexpr int kHalfD = D / 2;     // output columns per lane
    extern __shared__ __align__(128) unsigned char tc_shared[];
    T* q_tile = reinterpret_cast<T*>(tc_shared + L::kQ);
    T* k_tile = reinterpret_cast<T*>(tc_shared + L::kK);
    T* v_tile = reinterpret_cast<T*>(tc_shared + L::kV);
    float* s_tile = reinterpret_cast<float*>(tc_shared + L::kS);
    T* p_tile = reinterpret_cast<T*>(tc_shared + L::kP);
    float* o_tile = reinterpret_cast<float*>(tc_shared + L::kO);

    int const warp = threadIdx.x / kWarpSize;
    int const lane = threadIdx.x % kWarpSize;
    int const q0 = blockIdx.x * kTcBlockM;
    int const h = blockIdx.y;
    int const b = blockIdx.z;
    HeadView const head = head_view(p, mask, b, h);
    int const kv_end = kv_end_for_block(q0, head.kv_len, head.causal, kTcBlockM, head.past);

    copy_rows<T, D>(q_tile, L::kLdQkv, query, head.q_head, head.stride, q0, kTcBlockM, p.seq_q);
    for (int idx = threadIdx.x; idx < kTcBlockM * L::kLdO; idx += blockDim.x)
    {
        o_tile[idx] = 0.0f;
    }

    int const row = lane / 2; // the warp's row this lane shares with its neighbour
    int const part = lane % 2;
    int const qpos = q0 + warp * kTcRows + row;
    T const* q_rows = q_tile + warp * kTcRows * L::kLdQkv;
    float* s_rows = s_tile + warp * kTcRows * L::kLdS;
    T* p_rows = p_tile + warp * kTcRows * L::kLdP;
    float* o_rows = o_tile + warp * kTcRows * L::kLdO;
    RowState state = row_state_init();

    for (int k0 = 0; k0 < kv_end; k0 += BN)
    {
        __syncthreads(); // previous K/V tile consumed (and Q, O initialised on the first pass)
        copy_rows<T, D>(k_tile, L::kLdQkv, key, head.kv_head, head.kv_stride, k0, BN, p.seq_kv);
        copy_rows<T, D>(v_tile, L::kLdQkv, value, head.kv_head, head.kv_stride, k0, BN, p.seq_kv);
        __syncthreads();

        // 1. S = Q_w . K^T (K row-major (BN, D) read as K^T column-major)
#pragma unroll
        for (int nn = 0; nn < BN / kFrag; ++nn)
        {
            wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> s_frag;
            wmma::fill_fragment(s_frag, 0.0f);
#pragma unroll
            for (int kk = 0; kk < D / kFrag; ++kk)
            {
                wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, T, wmma::row_major> a_frag;
                wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, T, wmma::col_major> b_frag;
                wmma::load_matrix_sync(a_frag, q_rows + kk * kFrag, L::kLdQkv);
                wmma::load_matrix_sync(b_frag, k_tile + nn * kFrag * L::kLdQkv + kk * kFrag, L::kLdQkv);
                wmma::mma_sync(s_frag, a_frag, b_frag, s_frag);
            }
            wmma::store_matrix_sync(s_rows + nn * kFrag, s_frag, L::kLdS, wmma::mem_row_major);
        }
        __syncwarp();

        // 2. Online softmax over this tile, in base 2 (prescale = scale * log2(e)), masks as the FP32 kernel.
        float score[kHalfCols];
        float tile_max = -INFINITY;
#pragma unroll
        for (int c = 0; c < kHalfCols; ++c)
        {
            int const col = part * kHalfCols + c;
            int const kpos = k0 + col;
            int const keep = padding_keep(head.mask_type, mask, b, kpos, p.seq_kv);
            bool const visible
                = kpos < kv_end && key_visible(qpos, kpos, head.kv_len, head.causal, keep, head.past);
            score[c] = masked_or(s_rows[row * L::kLdS + col] * prescale, visible);
            tile_max = fmaxf(tile_max, score[c]);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        float const m_new = merged_max(state, tile_max);
        float const alpha = rescale_factor(state, m_new);
        float tile_sum = 0.0f;
#pragma unroll
        for (int c = 0; c < kHalfCols; ++c)
        {
            T const prob = from_float(tile_probability(score[c], m_new), static_cast<T*>(nullptr));
            tile_sum += to_float(prob); // the sum of what P.V multiplies, so rows stay normalised
            p_rows[row * L::kLdP + part * kHalfCols + c] = prob;
        }
        tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
        state = merged_state(state, m_new, alpha, tile_sum);
#pragma unroll 8
        for (int d = 0; d < kHalfD; ++d)
        {
            o_rows[row * L::kLdO + part * kHalfD + d] *= alpha;
        }
        __syncwarp();

        // 3. O_w += P_w . V (V row-major (BN, D))
#pragma unroll
        for (int nn = 0; nn < D / kFrag; ++nn)
        {
            wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> o_frag;
            wmma::load_matrix_sync(o_frag, o_rows + nn * kFrag, L::kLdO, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < BN / kFrag; ++kk)
            {
                wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, T, wmma::row_major> a_frag;
                wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, T, wmma::row_major> b_frag;
                wmma::load_matrix_sync(a_frag, p_rows + kk * kFrag, L::kLdP);
                wmma::load_matrix_sync(b_frag, v_tile + kk * kFrag * L::kLdQkv + nn * kFrag, L::kLdQkv);
                wmma::mma_sync(o_frag, a_frag, b_frag, o_frag);
            }
            wmma::store_matrix_sync(o_rows + nn * kFrag, o_frag, L::kLdO, wmma::mem_row_major);
        }
        __syncwarp();
    }

    if (qpos < p.seq_q)
    {
        T* out_row = output + head.q_head + qpos * head.stride + part * kHalfD;
#pragma unroll 8
        for (int d = 0; d < kHalfD; ++d)
        {
            out_row[d] = from_float(finalize(o_rows[row * L::kLdO + part * kHalfD + d], state), static_cast<T*>(nullptr));
        }
    }
}

template <typename T, int D>
__global__ void __launch_bounds__(kTcWarps* kWarpSize) tc_attention_kernel(EdfaProblem p, T const* query,
    T const* key, T const* value, int32_t const* mask, T* output, float prescale)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    if constexpr (std::is_same_v<T, __nv_bfloat16>)
    {
        __trap(); // never launched: kernel_for() picks WMMA for BF16 on sm_80+ only
    }
    else
#endif
    {
        tc_attention_body<T, D>(p, query, key, value, mask, output, prescale);
    }
}

template <typename T, int D>
int32_t launch_tc(EdfaProblem const& p, void const* query, void const* key, void const* value, int32_t const* mask,
    void* output, cudaStream_t stream)
{
    constexpr size_t smem = TcLayout<T, D>::kBytes;
    auto kernel = tc_attention_kernel<T, D>;
    if (!allow_shared_memory(kernel, smem))
    {
        return EDFA_ERR_CUDA;
    }
    dim3 const grid((p.seq_q + kTcBlockM - 1) / kTcBlockM, p.num_heads, p.batch);
    kernel<<<grid, kTcWarps * kWarpSize, smem, stream>>>(p, static_cast<T const*>(query), static_cast<T const*>(key),
        static_cast<T const*>(value), mask, static_cast<T*>(output), query_prescale(p.scale, D));
    return cudaGetLastError() == cudaSuccess ? EDFA_OK : EDFA_ERR_CUDA;
}

template <typename T>
int32_t launch_tc_for_head_size(EdfaProblem const& p, void const* q, void const* k, void const* v,
    int32_t const* mask, void* out, cudaStream_t stream)
{
    return with_head_size(
        p.head_size, [&](auto d) { return launch_tc<T, decltype(d)::value>(p, q, k, v, mask, out, stream); });
}

bool aligned16(void const* ptr)
{
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
}

} // namespace

int tensor_core_major(EdfaProblem const& p, void const* query, void const* key, void const* value, void const* output)
{
    if (static_cast<DType>(p.dtype) == DType::kFloat32 || !aligned16(query) || !aligned16(key) || !aligned16(value)
        || !aligned16(output))
    {
        return 0;
    }
    int device = 0;
    int major = 0;
    if (cudaGetDevice(&device) != cudaSuccess
        || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    {
        return 0;
    }
    return major;
}

int32_t launch_attention_wmma(EdfaProblem const& p, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream)
{
    return static_cast<DType>(p.dtype) == DType::kBFloat16
        ? launch_tc_for_head_size<__nv_bfloat16>(p, query, key, value, mask, output, stream)
        : launch_tc_for_head_size<__half>(p, query, key, value, mask, output, stream);
}

} // namespace edfa
