// Tile arithmetic of the fused-attention kernel, shared by the CUDA kernel and the host reference.
//
// Everything here is plain C++ marked __host__ __device__ (EDFA_HD), with no CUDA headers, so the host reference
// (attention_host.cpp, built by any C++17 compiler) runs exactly the code the kernel runs: the same storage
// conversions, the same masking predicate, the same online-softmax merge and the same key-tile walk.
#pragma once

#include "attention_api.h"

#include <cmath>
#include <math.h>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define EDFA_HD __host__ __device__ __forceinline__
#else
#define EDFA_HD inline
#endif

namespace edfa
{

// Storage data types, numbered as in the C ABI (attention_api.h).
enum class DType : int32_t
{
    kFloat32 = 0,
    kFloat16 = 1,
    kBFloat16 = 2,
};

// Key-padding mask kinds, numbered as the spec's `mask_type` field.
enum class MaskType : int32_t
{
    kNone = 0,
    kKeyPadding = 1,   // int32 (B, S_kv), nonzero = keep
    kValidLengths = 2, // int32 (B,), keys [0, len) are kept
};

// Tile sizes: each CUDA block owns kBlockM query rows (kWarps warps x kRowsPerWarp rows) and walks the keys in
// tiles of kBlockN (one key per lane). The host reference walks the same tiles so its rounding follows the kernel's.
constexpr int kWarpSize = 32;
constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 8;
constexpr int kBlockM = kWarps * kRowsPerWarp; // 32
constexpr int kBlockN = kWarpSize;             // 32
constexpr float kLog2e = 1.4426950408889634f;

// Tensor-core kernels: the WMMA kernel (attention_kernel_tc.cu) takes 64 query rows per block and key tiles of 64
// (32 at head size 128, to stay within 99 KB of shared memory per block); the mma kernel (attention_kernel_mma.cu)
// walks the same key tiles (its row blocks differ, which changes no arithmetic). The host reference's tensor-core
// mode walks these tiles too, so its online-softmax merges and P rounding happen where both kernels' do.
constexpr int kTcBlockM = 64;
constexpr int kTcMaxBlockN = 64;

EDFA_HD constexpr int tc_block_n(int head_size)
{
    return head_size >= 128 ? 32 : kTcMaxBlockN;
}

EDFA_HD bool is_supported_head_size(int32_t head_size)
{
    return head_size == 32 || head_size == 64 || head_size == 128;
}

// ---- storage conversions (bit-exact, identical on host and device; round to nearest even) ----

EDFA_HD float bits_to_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

EDFA_HD uint32_t float_to_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    return bits;
}

EDFA_HD float bf16_to_float(uint16_t h)
{
    return bits_to_float(static_cast<uint32_t>(h) << 16);
}

EDFA_HD uint16_t float_to_bf16(float f)
{
    uint32_t const x = float_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
    {
        return static_cast<uint16_t>((x >> 16) | 0x40u); // quiet NaN
    }
    uint32_t const rounding = 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>((x + rounding) >> 16);
}

EDFA_HD float half_to_float(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t const exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1fu) // inf / nan
    {
        return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
    }
    if (exponent != 0)
    {
        return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    }
    if (mantissa == 0)
    {
        return bits_to_float(sign);
    }
    // subnormal half: value = mantissa * 2^-24, exact in float
    float const magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
}

EDFA_HD uint16_t float_to_half(float f)
{
    uint32_t const x = float_to_bits(f);
    uint16_t const sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    uint32_t const absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u)
    {
        return static_cast<uint16_t>(sign | 0x7e00u); // nan
    }
    if (absx >= 0x477ff000u) // rounds to >= 65520: overflow to inf
    {
        return static_cast<uint16_t>(sign | 0x7c00u);
    }
    if (absx < 0x38800000u) // below the smallest normal half (2^-14): subnormal or zero
    {
        if (absx < 0x33000000u) // below half of the smallest subnormal (2^-25)
        {
            return sign;
        }
        uint32_t const e = absx >> 23;
        uint32_t const m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t const shift = 126u - e; // 14..24
        uint32_t const halfway = 1u << (shift - 1u);
        uint32_t const rest = m & ((1u << shift) - 1u);
        uint32_t value = m >> shift;
        if (rest > halfway || (rest == halfway && (value & 1u)))
        {
            ++value;
        }
        return static_cast<uint16_t>(sign | value);
    }
    uint32_t const rounding = 0xfffu + ((absx >> 13) & 1u);
    uint32_t const rebiased = absx - 0x38000000u + rounding; // exponent 127 -> 15
    return static_cast<uint16_t>(sign | (rebiased >> 13));
}

// Load element i of a storage buffer as float.
template <typename Storage>
EDFA_HD float load_as_float(Storage const* data, int64_t i, DType dtype);

template <>
EDFA_HD float load_as_float<float>(float const* data, int64_t i, DType)
{
    return data[i];
}

template <>
EDFA_HD float load_as_float<uint16_t>(uint16_t const* data, int64_t i, DType dtype)
{
    return dtype == DType::kBFloat16 ? bf16_to_float(data[i]) : half_to_float(data[i]);
}

EDFA_HD void store_from_float(float* data, int64_t i, float value, DType)
{
    data[i] = value;
}

EDFA_HD void store_from_float(uint16_t* data, int64_t i, float value, DType dtype)
{
    data[i] = dtype == DType::kBFloat16 ? float_to_bf16(value) : float_to_half(value);
}

// x rounded through the storage type (what the tensor-core kernel does to P before P.V); FP32 is unchanged.
EDFA_HD float rounded_to(float x, DType dtype)
{
    if (dtype == DType::kFloat16)
    {
        return half_to_float(float_to_half(x));
    }
    return dtype == DType::kBFloat16 ? bf16_to_float(float_to_bf16(x)) : x;
}

// ---- scores and masks ----

// Scores are kept in base 2: s = (q . k) * scale * log2(e), so p = exp2(s - m). The factor is folded into Q once.
EDFA_HD float query_prescale(float scale, int32_t head_size)
{
    float const s = scale > 0.0f ? scale : 1.0f / sqrtf(static_cast<float>(head_size));
    return s * kLog2e;
}

// Number of keys a batch row may see at all (valid-lengths mask), clamped to [0, seq_kv].
EDFA_HD int32_t visible_kv_len(MaskType mask_type, int32_t const* mask, int32_t batch, int32_t seq_kv)
{
    if (mask_type != MaskType::kValidLengths)
    {
        return seq_kv;
    }
    int32_t const len = mask[batch];
    return len < 0 ? 0 : (len > seq_kv ? seq_kv : len);
}

// Whether query q_pos may attend key k_pos: with causal, key <= query + past, where past is 0 when causal is
// top-left aligned (torch's is_causal) and S_kv - S_q when bottom-right (the query rows follow a KV cache).
EDFA_HD bool key_visible(int32_t q_pos, int32_t k_pos, int32_t kv_len, bool causal, int32_t padding_keep,
    int32_t past = 0)
{
    return k_pos < kv_len && (!causal || k_pos <= q_pos + past) && padding_keep != 0;
}

// A key-padding mask's verdict on key k_pos of batch row b (1 = keep; 1 without such a mask or past the sequence).
EDFA_HD int32_t padding_keep(MaskType mask_type, int32_t const* mask, int32_t b, int32_t k_pos, int32_t seq_kv)
{
    return (mask_type == MaskType::kKeyPadding && k_pos < seq_kv) ? mask[static_cast<int64_t>(b) * seq_kv + k_pos] : 1;
}

// End (exclusive) of the keys a block of queries [q_begin, q_begin + block_m) must visit: later tiles are fully
// masked. block_m: kBlockM for the FP32 kernel, kTcBlockM for the tensor-core kernel, 1 for the decode kernel.
EDFA_HD int32_t kv_end_for_block(int32_t q_begin, int32_t kv_len, bool causal, int32_t block_m = kBlockM,
    int32_t past = 0)
{
    if (!causal)
    {
        return kv_len;
    }
    int32_t const last_query = q_begin + block_m + past; // exclusive bound on visible keys for the block
    return last_query < kv_len ? last_query : kv_len;
}

// The key/value heads of a problem: num_kv_heads, 0 meaning one per query head.
EDFA_HD int32_t kv_heads_of(EdfaProblem const& p)
{
    return p.num_kv_heads > 0 ? p.num_kv_heads : p.num_heads;
}

// Where one (batch, head) lives in the (B, S, heads * head_size) tensors, and which keys it may see at all.
struct HeadView
{
    int64_t stride;    // elements between consecutive sequence positions of query and output
    int64_t q_head;    // offset of position 0 of this head in query and output
    int64_t kv_stride; // the same in key and value (num_kv_heads * head_size)
    int64_t kv_head;   // offset of position 0 of the key/value head this query head reads
    MaskType mask_type;
    bool causal;
    int32_t kv_len; // visible_kv_len: the valid length, else seq_kv
    int32_t past;   // where the first query sits for the causal mask: S_kv - S_q (causal 2), else 0
};

EDFA_HD HeadView head_view(EdfaProblem const& p, int32_t const* mask, int32_t b, int32_t h)
{
    int32_t const kv_heads = kv_heads_of(p);
    int64_t const stride = static_cast<int64_t>(p.num_heads) * p.head_size;
    int64_t const kv_stride = static_cast<int64_t>(kv_heads) * p.head_size;
    int64_t const column = static_cast<int64_t>(h) * p.head_size;
    int64_t const kv_column = static_cast<int64_t>(h / (p.num_heads / kv_heads)) * p.head_size;
    MaskType const mask_type = static_cast<MaskType>(p.mask_type);
    return HeadView{stride, static_cast<int64_t>(b) * p.seq_q * stride + column, kv_stride,
        static_cast<int64_t>(b) * p.seq_kv * kv_stride + kv_column, mask_type, p.causal != 0,
        visible_kv_len(mask_type, mask, b, p.seq_kv), p.causal == 2 ? p.seq_kv - p.seq_q : 0};
}

// ---- online softmax ----

// Running state of one query row: max m (base-2 scores), sum l of exp2(s - m). The output accumulator lives with
// the caller (registers on the device, an array on the host) and is rescaled by `alpha` at each merge.
struct RowState
{
    float m;
    float l;
};

EDFA_HD RowState row_state_init()
{
    return RowState{-INFINITY, 0.0f};
}

EDFA_HD float masked_or(float score, bool visible)
{
    return visible ? score : -INFINITY;
}

// The new running max after a tile whose largest score is tile_max.
EDFA_HD float merged_max(RowState const& state, float tile_max)
{
    return fmaxf(state.m, tile_max);
}

// Factor that rescales the old sum and accumulator to the new max (0 when nothing was seen yet).
EDFA_HD float rescale_factor(RowState const& state, float m_new)
{
    return state.m == -INFINITY ? 0.0f : exp2f(state.m - m_new);
}

// Unnormalised probability of one score under the running max (0 for masked scores or an all-masked row).
EDFA_HD float tile_probability(float score, float m_new)
{
    return (score == -INFINITY || m_new == -INFINITY) ? 0.0f : exp2f(score - m_new);
}

EDFA_HD RowState merged_state(RowState const& state, float m_new, float alpha, float tile_sum)
{
    return RowState{m_new, state.l * alpha + tile_sum};
}

// Final output element: acc / l; a row that saw no visible key outputs 0 (SDPA would give NaN).
EDFA_HD float finalize(float acc, RowState const& state)
{
    return state.l > 0.0f ? acc / state.l : 0.0f;
}

} // namespace edfa
