/*
 * kernels_avx2.c — AVX2 + FMA + F16C kernels (Haswell and later, Zen).
 *
 * q8: maddubs needs one unsigned operand, so each 32-byte chunk multiplies
 * |w| (unsigned) by x with w's sign applied (sign_epi8); the int16 pairs are
 * at most 2 * 127 * 127 (or 2 * 128 * 127), no saturation, and madd with ones
 * widens them to int32.
 * q4: the nibbles n in [0, 15] are already unsigned: maddubs(n, x) summed over
 * up to 4 chunks stays within int16 (4 * 2 * 15 * 127), and the -8 offset is
 * one maddubs(8, x) per token and chunk, subtracted before widening.
 * Block shapes, reductions and the float part: kernels_x86.h.
 */
#include <config.h>

#include "kernels_x86.h"

KX_INLINE void q8_block(int rb, const struct kx_block *b, int n, float *y, int ldy, int group)
{
    const int tb = 8 / rb, ng = n / group, nc = group / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m256i s[8];
        UNROLL for (int i = 0; i < 8; i++)
            s[i] = _mm256_setzero_si256();
        for (int c = 0; c < nc; c++) {
            int k = g * group + c * 32;
            __m256i xv[2];
            UNROLL for (int t = 0; t < tb; t++)
                xv[t] = _mm256_loadu_si256((const __m256i *)(b->x[t] + k));
            UNROLL for (int r = 0; r < rb; r++) {
                if (rb == 8)
                    kx_prefetch(b, g, c, r);
                __m256i w = _mm256_loadu_si256((const __m256i *)kx_chunk(b, g, c, r));
                __m256i aw = _mm256_abs_epi8(w);
                UNROLL for (int t = 0; t < tb; t++) {
                    __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv[t], w));
                    s[t * rb + r] = _mm256_add_epi32(s[t * rb + r], _mm256_madd_epi16(p, ones));
                }
            }
        }
        acc = scale_add(acc, hsum8_epi32(s), block_scales(rb, b, g));
    }
    store_block(y, ldy, rb, b->nr, b->nv, acc);
}

static void q8_block4(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(q8_block, 4, b, n, y, ldy);
}

static void q8_block8(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(q8_block, 8, b, n, y, ldy);
}

KX_INLINE void q4_block(int rb, const struct kx_block *b, int n, float *y, int ldy, int group)
{
    const int tb = 8 / rb, ng = n / group, nc = group / 32;
    const __m256i ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m256i s[8], a[8], cx[2];
        UNROLL for (int i = 0; i < 8; i++)
            s[i] = a[i] = _mm256_setzero_si256();
        cx[0] = cx[1] = _mm256_setzero_si256();
        for (int c = 0; c < nc; c++) {
            int k = g * group + c * 32;
            __m256i xv[2];
            UNROLL for (int t = 0; t < tb; t++) {
                xv[t] = _mm256_loadu_si256((const __m256i *)(b->x[t] + k));
                cx[t] = _mm256_add_epi16(cx[t], _mm256_maddubs_epi16(eight, xv[t]));
            }
            UNROLL for (int r = 0; r < rb; r++) {
                if (rb == 8)
                    kx_prefetch(b, g, c, r);
                __m256i w = unpack_q4_x86(kx_chunk(b, g, c, r));
                UNROLL for (int t = 0; t < tb; t++)
                    a[t * rb + r] = _mm256_add_epi16(a[t * rb + r], _mm256_maddubs_epi16(w, xv[t]));
            }
            /* widen every 4 chunks (int16 bound) and at the end of the group */
            if (c % 4 == 3 || c == nc - 1) {
                UNROLL for (int t = 0; t < tb; t++)
                    UNROLL for (int r = 0; r < rb; r++) {
                        __m256i d = _mm256_sub_epi16(a[t * rb + r], cx[t]);
                        s[t * rb + r] = _mm256_add_epi32(s[t * rb + r], _mm256_madd_epi16(d, ones));
                        a[t * rb + r] = _mm256_setzero_si256();
                    }
                cx[0] = cx[1] = _mm256_setzero_si256();
            }
        }
        acc = scale_add(acc, hsum8_epi32(s), block_scales(rb, b, g));
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

KX_GEMM_DRIVER(avx2_gemm_q8, 8, q8_block4, q8_block8)
KX_GEMM_DRIVER(avx2_gemm_q4, 4, q4_block4, q4_block8)

const struct qlm_isa_kernels qlm_kernels_avx2 = {
    .name = "avx2",
    .quantize_act = x86_quantize_act,
    .gemm_q8 = avx2_gemm_q8,
    .gemm_q4 = avx2_gemm_q4,
    .gemm_f32 = x86_gemm_f32,
    .gemm_f16 = x86_gemm_f16,
    .gemm_bf16 = x86_gemm_bf16,
};
