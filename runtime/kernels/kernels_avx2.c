/*
 * kernels_avx2.c — AVX2 + FMA + F16C kernels (Haswell and later, Zen).
 *
 * q8: maddubs needs one unsigned operand, so each 32-byte chunk multiplies
 * |x| (unsigned) by w with x's sign applied (sign_epi8); the int16 pairs are
 * at most 2 * 127 * 127, no saturation, and madd with ones widens them to
 * int32.
 * q4: the nibbles n in [0, 15] are already unsigned: maddubs(n, x) summed over
 * up to 4 chunks stays within int16 (4 * 4 * 15 * 127 per lane), and the -8
 * offset is maddubs(8, x) per token and chunk, subtracted before widening.
 * Block shapes, reductions and the float part: kernels_x86.h.
 */
#include <config.h>

#include "kernels_x86.h"

/* q8: 8 rows x tb tokens (tb = 1 decode, 2 prompts).  The absolute value is
 * taken of the activations, once per token and chunk, and the weights get
 * their signs (sign_epi8(w, x)): one op per row fewer than |w| and x with
 * w's sign, and |x| <= 127 by construction.  (A weight of -128, which no
 * converter writes and qlm(5) excludes, would get a wrong sign here.)
 * Tokens one after the other within a group: their 8 row sums are reduced
 * before the next token's start, so 8 accumulators suffice; the second
 * token's weight loads hit L1. */
KX_INLINE void q8_block(int tb, const struct kx_block *b, int n, float *y, int ldy, int group)
{
    const int ng = n / group, nc = group / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int g = 0; g < ng; g++) {
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)kx_scales(b, g)));
        UNROLL for (int t = 0; t < tb; t++) {
            __m256i s[8];
            UNROLL for (int i = 0; i < 8; i++)
                s[i] = _mm256_setzero_si256();
            for (int c = 0; c < nc; c++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(b->x[t] + g * group + c * 32));
                __m256i ax = _mm256_abs_epi8(xv);
                UNROLL for (int r = 0; r < 8; r++) {
                    if (tb == 1)
                        kx_prefetch(b, g, c, r);
                    __m256i w = _mm256_loadu_si256((const __m256i *)kx_chunk(b, g, c, r));
                    __m256i p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w, xv));
                    s[r] = _mm256_add_epi32(s[r], _mm256_madd_epi16(p, ones));
                }
            }
            acc[t] = scale_add(acc[t], hsum8_epi32(s), _mm256_mul_ps(dw, _mm256_set1_ps(b->xd[t][g])));
        }
    }
    store_block(y, ldy, 8, b->nr, 1, acc[0]);
    if (tb == 2 && b->nv > 1)
        store_block(y + ldy, ldy, 8, b->nr, 1, acc[1]);
}

static void q8_block82(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(q8_block, 2, b, n, y, ldy);
}

static void q8_block81(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(q8_block, 1, b, n, y, ldy);
}

/* Four int32x8 vectors, each holding two rows' partial sums (4 lanes per
 * row: the low half the pair's first row, the high half its second) ->
 * the 8 row sums in order V0.lo V0.hi V1.lo V1.hi ... : unpack-add to
 * [V0lo V1lo V2lo V3lo | V0hi V1hi V2hi V3hi], then one lane permute. */
KX_INLINE __m256i hsum4_pairs(const __m256i v[4])
{
    __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]),
                                 _mm256_unpackhi_epi32(v[0], v[1]));
    __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]),
                                 _mm256_unpackhi_epi32(v[2], v[3]));
    __m256i c = _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* q4 works on row pairs: two rows' 16-byte chunks are adjacent in a tile,
 * so one 32-byte load, an AND and a shift give [row lo nibbles | next row lo]
 * and [row hi | next row hi], multiplied by the token's elements 0-15 and
 * 16-31 broadcast to both halves.  Half the unpacking of one row at a time,
 * and the reduction folds four vectors instead of eight. */
KX_INLINE void q4_block(int rb, const struct kx_block *b, int n, float *y, int ldy, int group)
{
    const int tb = 8 / rb, np = rb / 2, ng = n / group, nc = group / 32;
    const __m256i ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m256i s[4], a[4], cx[2];
        UNROLL for (int i = 0; i < 4; i++)
            s[i] = a[i] = _mm256_setzero_si256();
        cx[0] = cx[1] = _mm256_setzero_si256();
        for (int c = 0; c < nc; c++) {
            int k = g * group + c * 32;
            __m256i xlo[2], xhi[2];
            UNROLL for (int t = 0; t < tb; t++) {
                xlo[t] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b->x[t] + k)));
                xhi[t] = _mm256_broadcastsi128_si256(
                    _mm_loadu_si128((const __m128i *)(b->x[t] + k + 16)));
                /* the -8 of every nibble, as 8 * (sum of x), in the same lanes */
                cx[t] = _mm256_add_epi16(cx[t], _mm256_add_epi16(_mm256_maddubs_epi16(eight, xlo[t]),
                                                                 _mm256_maddubs_epi16(eight, xhi[t])));
            }
            UNROLL for (int p = 0; p < np; p++) {
                if (rb == 8)
                    kx_prefetch(b, g, c, 2 * p);
                __m256i v = _mm256_loadu_si256((const __m256i *)kx_chunk(b, g, c, 2 * p));
                __m256i lo = _mm256_and_si256(v, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                UNROLL for (int t = 0; t < tb; t++)
                    a[t * np + p] = _mm256_add_epi16(a[t * np + p],
                                                     _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo[t]),
                                                                      _mm256_maddubs_epi16(hi, xhi[t])));
            }
            /* widen every 4 chunks (int16 bound: 4 x 4 x 15 x 127) and at the group's end */
            if (c % 4 == 3 || c == nc - 1) {
                UNROLL for (int t = 0; t < tb; t++)
                    UNROLL for (int p = 0; p < np; p++) {
                        __m256i d = _mm256_sub_epi16(a[t * np + p], cx[t]);
                        s[t * np + p] = _mm256_add_epi32(s[t * np + p], _mm256_madd_epi16(d, ones));
                        a[t * np + p] = _mm256_setzero_si256();
                    }
                cx[0] = cx[1] = _mm256_setzero_si256();
            }
        }
        acc = scale_add(acc, hsum4_pairs(s), block_scales(rb, b, g));
    }
    store_block(y, ldy, rb, b->nr, b->nv, acc);
}

static void q4_block4(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(q4_block, 4, b, n, y, ldy);
}

static void q4_block8(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(q4_block, 8, b, n, y, ldy);
}

KX_GEMM_DRIVER(avx2_gemm_q8, 8, 8, q8_block82, q8_block81)
KX_GEMM_DRIVER(avx2_gemm_q4, 4, 4, q4_block4, q4_block8)

const struct qlm_isa_kernels qlm_kernels_avx2 = {
    .name = "avx2",
    .quantize_act = x86_quantize_act,
    .gemm_q8 = avx2_gemm_q8,
    .gemm_q4 = avx2_gemm_q4,
    .gemm_f32 = x86_gemm_f32,
    .gemm_f16 = x86_gemm_f16,
    .gemm_bf16 = x86_gemm_bf16,
    .wsum_f32 = x86_wsum_f32,
    .wsum_f16 = x86_wsum_f16,
    .softmax_f32 = x86_softmax_f32,
    .silu_mul_f32 = x86_silu_mul_f32,
};
