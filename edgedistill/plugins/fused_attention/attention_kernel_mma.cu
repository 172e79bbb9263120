// Tensor-core flash attention forward for FP16 / BF16 on sm_80+ (Ampere, Orin, Ada, Hopper), in the FlashAttention-2
// style: the same arithmetic as the WMMA kernel (attention_kernel_tc.cu: key tiles of tc_block_n(D), scale applied
// to the finished dot product, P rounded to the input type for P.V and for the row sum, the helpers of
// attention_math.cuh), with every intermediate in registers:
//   - Q, K, V tiles reach shared memory through cp.async (16 bytes per copy, zeros past the sequence); the next K/V
//     tile loads while this one is computed (two stages);
//   - ldmatrix feeds mma.sync.m16n8k16 (FP32 accumulation); Q's fragments stay in registers for the whole key walk;
//   - S = Q.K^T stays in the accumulator registers; each lane owns two rows of each 16-row block (g and g + 8) and
//     reduces the row max with its quad (shfl_xor 1, 2); the row sum of P is one more MMA, P times ones;
//   - P is rounded and packed in place into the A fragments of P.V (the accumulator layout of S is the A layout of P),
//     and the output accumulator O never leaves registers until the final store.
//
// Work split: grid (query blocks, heads, batch); a block of kMmaWarps warps owns kWarps * kWarpRows query rows,
// kWarpRows = 16 * M_ATOMS per warp (16 or 32: warp_rows_for() picks per call).
// Shared-memory rows are padded by 16 bytes, so the 8 rows an ldmatrix reads fall in distinct banks.
#include "attention_kernel.cuh"
#include "attention_math.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <type_traits>

namespace edfa
{
namespace
{

constexpr int kMmaWarps = 4;

template <typename T, int D, int M_ATOMS>
struct MmaTile
{
    static constexpr int kWarpRows = 16 * M_ATOMS;
    static constexpr int kBlockM = kMmaWarps * kWarpRows;
    static constexpr int kBlockN = tc_block_n(D); // the WMMA kernel's and the host reference's key tiles
    static constexpr int kLd = D + 8;             // elements per shared row (16 bytes of padding)
    static constexpr int kKeyBlocks = kBlockN / 8; // n-blocks of S
    static constexpr int kDimBlocks = D / 8;       // n-blocks of O
    static constexpr int kQkSteps = D / 16;        // k-steps of Q.K^T
    static constexpr int kPvSteps = kBlockN / 16;  // k-steps of P.V
    static constexpr int kKvTile = kBlockN * kLd;  // elements of one K or V stage
    static constexpr size_t kBytes = sizeof(T) * (kBlockM * kLd + 4 * kKvTile); // Q | K[2] | V[2]
    static_assert(kBlockN % 16 == 0 && D % 16 == 0, "MMA tiles are 16 wide");
    static_assert(kKeyBlocks % 2 == 0 && kDimBlocks % 2 == 0 && kQkSteps > 0 && kPvSteps > 0,
        "one ldmatrix.x4 serves two 8-wide blocks");
};

// Device code for sm_80+ only (mma.sync, ldmatrix, cp.async); older targets compile the trapping kernel below.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800

__device__ __forceinline__ uint32_t shared_address(void const* ptr)
{
    return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// 16 bytes global -> shared, asynchronous; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async_16(uint32_t dst, void const* src, bool valid)
{
    int const bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}

__device__ __forceinline__ void cp_async_commit()
{
    asm volatile("cp.async.commit_group;\n" ::);
}

__device__ __forceinline__ void cp_async_wait_all()
{
    asm volatile("cp.async.wait_group 0;\n" ::);
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

// d += a . b for one m16n8k16 tile (a: 16x16 row-major fragment, b: 16x8 column-major fragment), FP32 accumulation.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t const (&a)[4], uint32_t b0, uint32_t b1)
{
    if constexpr (std::is_same_v<T, __half>)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                     "{%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    else
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                     "{%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
}

// Two floats rounded to T and packed (x in the low half, as the fragments hold the lower column there).
template <typename T>
__device__ __forceinline__ uint32_t pack(float x, float y)
{
    uint32_t bits;
    if constexpr (std::is_same_v<T, __half>)
    {
        __half2 const h = __floats2half2_rn(x, y);
        bits = *reinterpret_cast<uint32_t const*>(&h);
    }
    else
    {
        __nv_bfloat162 const h = __floats2bfloat162_rn(x, y);
        bits = *reinterpret_cast<uint32_t const*>(&h);
    }
    return bits;
}

// Rows [row0, row0 + ROWS) of one head into a shared tile, asynchronously; zeros past seq.
template <typename T, int D, int ROWS, int LD>
__device__ __forceinline__ void load_rows_async(
    T* tile, T const* src, int64_t head_offset, int64_t row_stride, int row0, int seq)
{
    constexpr int kChunks = D / 8; // 16-byte chunks per row
    constexpr int kThreads = kMmaWarps * kWarpSize;
    static_assert(ROWS * kChunks % kThreads == 0, "every thread copies the same number of chunks");
#pragma unroll
    for (int i = 0; i < ROWS * kChunks / kThreads; ++i)
    {
        int const idx = threadIdx.x + i * kThreads;
        int const r = idx / kChunks;
        int const c = (idx % kChunks) * 8;
        int const pos = row0 + r;
        bool const valid = pos < seq;
        T const* from = src + head_offset + (valid ? static_cast<int64_t>(pos) * row_stride + c : 0);
        cp_async_16(shared_address(tile + r * LD + c), from, valid);
    }
}

// Reduces values[0..N) pairwise in a tree (depth log2 N instead of a chain of N - 1 dependent operations).
template <int N, typename Op>
__device__ __forceinline__ float tree_reduce(float (&values)[N], Op op)
{
#pragma unroll
    for (int stride = 1; stride < N; stride *= 2)
    {
#pragma unroll
        for (int i = 0; i + stride < N; i += 2 * stride)
        {
            values[i] = op(values[i], values[i + stride]);
        }
    }
    return values[0];
}

// 2^x on the special-function unit (flushes results below 2^-126 to zero: far below what P keeps after rounding).
__device__ __forceinline__ float exp2_approx(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// One row's online-softmax step over this key tile. x: this lane's 2 * KEY_BLOCKS raw dot products of the row
// (-inf where masked); the scale is applied in base 2 as the helpers of attention_math.cuh do, with one FMA per score:
// max(x) * prescale is max(x * prescale) (rounding is monotonic), and exp2(x * prescale - m) is tile_probability()
// without the per-score branch (x = -inf gives 0; an all-masked row uses m = 0). Writes the row's P, rounded and
// packed, to `packed`, rescales the row's O and running sum by alpha and moves its running max; the caller adds the
// tile's sum of P (computed on the tensor cores with P.V).
template <typename T, int KEY_BLOCKS, int DIM_BLOCKS>
__device__ __forceinline__ void softmax_row(float const (&x)[KEY_BLOCKS][2], float prescale, RowState& state,
    uint32_t (&packed)[KEY_BLOCKS], float (&o)[DIM_BLOCKS][2])
{
    float partial[KEY_BLOCKS]; // a tree: a serial chain of 2 * KEY_BLOCKS dependent fmaxf would stall
#pragma unroll
    for (int nb = 0; nb < KEY_BLOCKS; ++nb)
    {
        partial[nb] = fmaxf(x[nb][0], x[nb][1]);
    }
    float raw_max = tree_reduce(partial, [](float u, float v) { return fmaxf(u, v); });
    raw_max = fmaxf(raw_max, __shfl_xor_sync(0xffffffffu, raw_max, 1));
    raw_max = fmaxf(raw_max, __shfl_xor_sync(0xffffffffu, raw_max, 2));
    float const m_new = merged_max(state, raw_max * prescale);
    float const alpha = rescale_factor(state, m_new);
    float const m_use = m_new == -INFINITY ? 0.0f : m_new;
#pragma unroll
    for (int nb = 0; nb < KEY_BLOCKS; ++nb)
    {
        packed[nb] = pack<T>(exp2_approx(fmaf(x[nb][0], prescale, -m_use)),
            exp2_approx(fmaf(x[nb][1], prescale, -m_use)));
    }
    state = merged_state(state, m_new, alpha, 0.0f);
#pragma unroll
    for (int nb = 0; nb < DIM_BLOCKS; ++nb)
    {
        o[nb][0] *= alpha;
        o[nb][1] *= alpha;
    }
}

template <typename T, int D, int M_ATOMS>
__device__ void mma_attention_body(EdfaProblem const& p, T const* query, T const* key, T const* value,
    int32_t const* mask, T* output, float prescale)
{
    using L = MmaTile<T, D, M_ATOMS>;
    constexpr int BN = L::kBlockN;
    constexpr int LD = L::kLd;
    extern __shared__ __align__(128) unsigned char mma_shared[];
    T* q_tile = reinterpret_cast<T*>(mma_shared);
    T* k_tiles = q_tile + L::kBlockM * LD;
    T* v_tiles = k_tiles + 2 * L::kKvTile;

    int const warp = threadIdx.x / kWarpSize;
    int const lane = threadIdx.x % kWarpSize;
    int const group = lane / 4; // the fragment row this lane holds (and group + 8)
    int const quad_lane = lane % 4;
    int const q0 = blockIdx.x * L::kBlockM;
    int const b = blockIdx.z;
    HeadView const head = head_view(p, mask, b, blockIdx.y);
    int const kv_end = kv_end_for_block(q0, head.kv_len, head.causal, L::kBlockM, head.past);
    int const tiles = (kv_end + BN - 1) / BN;
    int const warp_row0 = warp * L::kWarpRows; // first row of this warp in the block
    // This lane's ldmatrix row address inside a K / V stage, in bytes (see steps 1 and 3 below).
    uint32_t const k_lane_offset = sizeof(T) * (((lane / 16) * 8 + lane % 8) * LD + ((lane / 8) % 2) * 8);
    uint32_t const v_lane_offset = sizeof(T) * ((lane % 8 + ((lane / 8) % 2) * 8) * LD + (lane / 16) * 8);
    uint32_t const kOnes = pack<T>(1.0f, 1.0f); // B fragment of a 16 x 8 matrix of ones

    load_rows_async<T, D, L::kBlockM, LD>(q_tile, query, head.q_head, head.stride, q0, p.seq_q);
    if (tiles > 0)
    {
        load_rows_async<T, D, BN, LD>(k_tiles, key, head.kv_head, head.kv_stride, 0, p.seq_kv);
        load_rows_async<T, D, BN, LD>(v_tiles, value, head.kv_head, head.kv_stride, 0, p.seq_kv);
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    // Q as A fragments, for the whole key walk: lanes 0-15 address rows 0-15 at column 0, lanes 16-31 at column 8.
    uint32_t q_frag[M_ATOMS][L::kQkSteps][4];
#pragma unroll
    for (int a = 0; a < M_ATOMS; ++a)
    {
#pragma unroll
        for (int kk = 0; kk < L::kQkSteps; ++kk)
        {
            T const* row = q_tile + (warp_row0 + a * 16 + lane % 16) * LD + kk * 16 + (lane / 16) * 8;
            ldmatrix_x4(q_frag[a][kk], shared_address(row));
        }
    }

    float o[M_ATOMS][2][L::kDimBlocks][2]; // [atom][row g / g + 8][d-block][column pair]
    RowState state[M_ATOMS][2];
#pragma unroll
    for (int a = 0; a < M_ATOMS; ++a)
    {
#pragma unroll
        for (int hr = 0; hr < 2; ++hr)
        {
            state[a][hr] = row_state_init();
#pragma unroll
            for (int nb = 0; nb < L::kDimBlocks; ++nb)
            {
                o[a][hr][nb][0] = 0.0f;
                o[a][hr][nb][1] = 0.0f;
            }
        }
    }

    for (int j = 0; j < tiles; ++j)
    {
        int const stage = j & 1;
        int const k0 = j * BN;
        if (j + 1 < tiles) // the next tile loads while this one is computed
        {
            load_rows_async<T, D, BN, LD>(k_tiles + (stage ^ 1) * L::kKvTile, key, head.kv_head, head.kv_stride,
                k0 + BN, p.seq_kv);
            load_rows_async<T, D, BN, LD>(v_tiles + (stage ^ 1) * L::kKvTile, value, head.kv_head, head.kv_stride,
                k0 + BN, p.seq_kv);
        }
        cp_async_commit();
        T const* k_tile = k_tiles + stage * L::kKvTile;
        T const* v_tile = v_tiles + stage * L::kKvTile;

        // 1. S = Q.K^T. One ldmatrix.x4 gives the B fragments of two key blocks: lanes 0-7 / 8-15 address keys 0-7
        //    at columns 0 / 8, lanes 16-23 / 24-31 keys 8-15 at columns 0 / 8. The next step's fragments load while
        //    this step's MMAs run.
        float s[M_ATOMS][L::kKeyBlocks][4];
#pragma unroll
        for (int a = 0; a < M_ATOMS; ++a)
        {
#pragma unroll
            for (int nb = 0; nb < L::kKeyBlocks; ++nb)
            {
                s[a][nb][0] = s[a][nb][1] = s[a][nb][2] = s[a][nb][3] = 0.0f;
            }
        }
        {
            constexpr int kPairs = L::kKeyBlocks / 2;
            constexpr int kSteps = L::kQkSteps * kPairs;
            uint32_t const base = shared_address(k_tile) + k_lane_offset;
            auto address = [&](int step) { // bytes: key block pair, then 16 columns per k-step
                return base + sizeof(T) * ((step % kPairs) * 16 * LD + (step / kPairs) * 16);
            };
            uint32_t k_frag[2][4];
            ldmatrix_x4(k_frag[0], address(0));
#pragma unroll
            for (int step = 0; step < kSteps; ++step)
            {
                if (step + 1 < kSteps)
                {
                    ldmatrix_x4(k_frag[(step + 1) % 2], address(step + 1));
                }
                int const kk = step / kPairs;
                int const nb = (step % kPairs) * 2;
#pragma unroll
                for (int a = 0; a < M_ATOMS; ++a)
                {
                    mma_16816<T>(s[a][nb], q_frag[a][kk], k_frag[step % 2][0], k_frag[step % 2][1]);
                    mma_16816<T>(s[a][nb + 1], q_frag[a][kk], k_frag[step % 2][2], k_frag[step % 2][3]);
                }
            }
        }

        // 2. Mask (only tiles that need it: padding masks, the sequence tail, the causal diagonal), then the online
        //    softmax per row, scale included; P is packed into the A fragments of P.V.
        bool const needs_mask = head.mask_type == MaskType::kKeyPadding || k0 + BN > head.kv_len
            || (head.causal && k0 + BN - 1 > q0 + warp_row0 + head.past);
        uint32_t p_frag[M_ATOMS][2][L::kKeyBlocks]; // [atom][row g / g + 8][key block]
#pragma unroll
        for (int a = 0; a < M_ATOMS; ++a)
        {
#pragma unroll
            for (int hr = 0; hr < 2; ++hr)
            {
                int const qpos = q0 + warp_row0 + a * 16 + hr * 8 + group;
                float x[L::kKeyBlocks][2];
#pragma unroll
                for (int nb = 0; nb < L::kKeyBlocks; ++nb)
                {
#pragma unroll
                    for (int e = 0; e < 2; ++e)
                    {
                        x[nb][e] = s[a][nb][hr * 2 + e];
                        if (needs_mask)
                        {
                            int const kpos = k0 + nb * 8 + quad_lane * 2 + e;
                            int const keep = padding_keep(head.mask_type, mask, b, kpos, p.seq_kv);
                            x[nb][e] = masked_or(
                                x[nb][e], key_visible(qpos, kpos, head.kv_len, head.causal, keep, head.past));
                        }
                    }
                }
                softmax_row<T>(x, prescale, state[a][hr], p_frag[a][hr], o[a][hr]);
            }
        }

        // 3. O += P.V. The accumulator layout of two key blocks of S is the A layout of one 16-key step of P; one
        //    ldmatrix.x4.trans gives the B fragments of two d-blocks of V: lanes 0-7 / 8-15 address keys 0-7 / 8-15
        //    at column 0, lanes 16-31 the same keys at column 8. Fragments load one step ahead, as for S.
        //    P.1 on the tensor cores gives each row's sum of P as rounded (FP32 accumulation), so rows stay
        //    normalised, in 1 MMA per 16 keys instead of an unpack, an add per score and two quad shuffles.
        float p_sum[M_ATOMS][4]; // columns all equal: [0] row g, [2] row g + 8
#pragma unroll
        for (int a = 0; a < M_ATOMS; ++a)
        {
            p_sum[a][0] = p_sum[a][1] = p_sum[a][2] = p_sum[a][3] = 0.0f;
        }
        {
            constexpr int kPairs = L::kDimBlocks / 2;
            constexpr int kSteps = L::kPvSteps * kPairs;
            uint32_t const base = shared_address(v_tile) + v_lane_offset;
            auto address = [&](int step) { // bytes: 16 keys per k-step, then a d-block pair
                return base + sizeof(T) * ((step / kPairs) * 16 * LD + (step % kPairs) * 16);
            };
            uint32_t v_frag[2][4];
            ldmatrix_x4_trans(v_frag[0], address(0));
#pragma unroll
            for (int step = 0; step < kSteps; ++step)
            {
                if (step + 1 < kSteps)
                {
                    ldmatrix_x4_trans(v_frag[(step + 1) % 2], address(step + 1));
                }
                int const kk = step / kPairs;
                int const nb = (step % kPairs) * 2;
#pragma unroll
                for (int a = 0; a < M_ATOMS; ++a)
                {
                    uint32_t const p_a[4] = {
                        p_frag[a][0][2 * kk], p_frag[a][1][2 * kk], p_frag[a][0][2 * kk + 1], p_frag[a][1][2 * kk + 1]};
                    float acc0[4] = {o[a][0][nb][0], o[a][0][nb][1], o[a][1][nb][0], o[a][1][nb][1]};
                    float acc1[4] = {o[a][0][nb + 1][0], o[a][0][nb + 1][1], o[a][1][nb + 1][0], o[a][1][nb + 1][1]};
                    mma_16816<T>(acc0, p_a, v_frag[step % 2][0], v_frag[step % 2][1]);
                    mma_16816<T>(acc1, p_a, v_frag[step % 2][2], v_frag[step % 2][3]);
                    if (step % kPairs == 0)
                    {
                        mma_16816<T>(p_sum[a], p_a, kOnes, kOnes);
                    }
                    o[a][0][nb][0] = acc0[0];
                    o[a][0][nb][1] = acc0[1];
                    o[a][1][nb][0] = acc0[2];
                    o[a][1][nb][1] = acc0[3];
                    o[a][0][nb + 1][0] = acc1[0];
                    o[a][0][nb + 1][1] = acc1[1];
                    o[a][1][nb + 1][0] = acc1[2];
                    o[a][1][nb + 1][1] = acc1[3];
                }
            }
        }

#pragma unroll
        for (int a = 0; a < M_ATOMS; ++a)
        {
            state[a][0].l += p_sum[a][0];
            state[a][1].l += p_sum[a][2];
        }

        cp_async_wait_all(); // the next tile has landed ...
        __syncthreads();     // ... for every thread, and nobody reads this stage any more
    }

    // Normalise and store: each lane writes two adjacent columns of its two rows per d-block.
#pragma unroll
    for (int a = 0; a < M_ATOMS; ++a)
    {
#pragma unroll
        for (int hr = 0; hr < 2; ++hr)
        {
            int const qpos = q0 + warp_row0 + a * 16 + hr * 8 + group;
            if (qpos < p.seq_q)
            {
                T* out_row = output + head.q_head + static_cast<int64_t>(qpos) * head.stride + quad_lane * 2;
#pragma unroll
                for (int nb = 0; nb < L::kDimBlocks; ++nb)
                {
                    *reinterpret_cast<uint32_t*>(out_row + nb * 8) = pack<T>(
                        finalize(o[a][hr][nb][0], state[a][hr]), finalize(o[a][hr][nb][1], state[a][hr]));
                }
            }
        }
    }
}

#endif // !__CUDA_ARCH__ || __CUDA_ARCH__ >= 800

template <typename T, int D, int M_ATOMS>
__global__ void __launch_bounds__(kMmaWarps* kWarpSize, 2) mma_attention_kernel(EdfaProblem p, T const* query,
    T const* key, T const* value, int32_t const* mask, T* output, float prescale)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap(); // never launched: mma_eligible() requires sm_80
#else
    mma_attention_body<T, D, M_ATOMS>(p, query, key, value, mask, output, prescale);
#endif
}

template <typename T, int D, int M_ATOMS>
int32_t launch_mma(EdfaProblem const& p, void const* query, void const* key, void const* value, int32_t const* mask,
    void* output, cudaStream_t stream)
{
    using L = MmaTile<T, D, M_ATOMS>;
    auto kernel = mma_attention_kernel<T, D, M_ATOMS>;
    if (!allow_shared_memory(kernel, L::kBytes))
    {
        return EDFA_ERR_CUDA;
    }
    dim3 const grid((p.seq_q + L::kBlockM - 1) / L::kBlockM, p.num_heads, p.batch);
    kernel<<<grid, kMmaWarps * kWarpSize, L::kBytes, stream>>>(p, static_cast<T const*>(query),
        static_cast<T const*>(key), static_cast<T const*>(value), mask, static_cast<T*>(output),
        query_prescale(p.scale, D));
    return cudaGetLastError() == cudaSuccess ? EDFA_OK : EDFA_ERR_CUDA;
}

// Rows per warp. 32 (two 16-row MMA blocks: every K/V fragment read from shared memory serves twice the rows) wins
// once the grid is several waves deep; 16 (about 150 instead of 255 registers, so 3 blocks per SM instead of 2, and
// half-size blocks) wins on shallower grids and under a causal mask, whose blocks differ in length. Measured on an
// H200 (batch 8, 12 heads, head size 64, FP16; benchmarks/gpu/README.md): 32 rows 152 / 217 TFLOP/s at sequence
// 512 / 2048, 16 rows 172 / 215; causal 83 / 174 against 105 / 186. Head size 128 always takes 16 (32 would spill).
// EDFA_MMA_WARP_ROWS=16|32 overrides the choice at head sizes 32 and 64, for tuning.
int warp_rows_for(EdfaProblem const& p)
{
    char const* forced = std::getenv("EDFA_MMA_WARP_ROWS");
    if (forced != nullptr && (std::atoi(forced) == 16 || std::atoi(forced) == 32))
    {
        return std::atoi(forced);
    }
    int device = 0;
    int sms = 0;
    if (p.causal != 0 || cudaGetDevice(&device) != cudaSuccess
        || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    {
        return 16;
    }
    constexpr int kBlocksPerSm32 = 2; // __launch_bounds__ minimum, and what ~245 registers allow
    constexpr int kMinWaves = 4;
    int64_t const blocks32 = static_cast<int64_t>((p.seq_q + 127) / 128) * p.num_heads * p.batch;
    return blocks32 >= static_cast<int64_t>(kMinWaves) * kBlocksPerSm32 * sms ? 32 : 16;
}

template <typename T, int D>
int32_t launch_mma_for_rows(EdfaProblem const& p, void const* q, void const* k, void const* v, int32_t const* mask,
    void* out, cudaStream_t stream)
{
    if constexpr (D >= 128)
    {
        return launch_mma<T, D, 1>(p, q, k, v, mask, out, stream);
    }
    else
    {
        return warp_rows_for(p) == 32 ? launch_mma<T, D, 2>(p, q, k, v, mask, out, stream)
                                      : launch_mma<T, D, 1>(p, q, k, v, mask, out, stream);
    }
}

template <typename T>
int32_t launch_mma_for_head_size(EdfaProblem const& p, void const* q, void const* k, void const* v,
    int32_t const* mask, void* out, cudaStream_t stream)
{
    return with_head_size(p.head_size,
        [&](auto d) { return launch_mma_for_rows<T, decltype(d)::value>(p, q, k, v, mask, out, stream); });
}

} // namespace

int32_t launch_attention_mma(EdfaProblem const& p, void const* query, void const* key, void const* value,
    int32_t const* mask, void* output, cudaStream_t stream)
{
    return static_cast<DType>(p.dtype) == DType::kBFloat16
        ? launch_mma_for_head_size<__nv_bfloat16>(p, query, key, value, mask, output, stream)
        : launch_mma_for_head_size<__half>(p, query, key, value, mask, output, stream);
}

} // namespace edfa
