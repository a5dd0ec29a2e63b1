/*
 * kernels_avxvnni.c — AVX-VNNI kernels (Alder Lake and later, Zen 5):
 * vpdpbusd (VEX, 256-bit) sums four u8 x s8 products into int32 lanes with no
 * intermediate saturation, so the AVX2 sign trick is not needed:
 *   q8: sum (w + 128) * x - 128 * sum x, with w + 128 = w ^ 0x80 as u8;
 *   q4: sum n * x - 8 * sum x, n the stored nibble in [0, 15].
 * The corrections depend on the token only: one dpbusd per token and chunk.
 * Block shapes, reductions and the float part: kernels_x86.h.
 *
 * Built a second time for the tests with QLM_VNNI_EMULATE (AVX2 flags only):
 * dpbusd is then emulated exactly with AVX2, and the table is exported as
 * qlm_kernels_avxvnni_emu, so this file's arithmetic is checked on CPUs
 * without VNNI.
 */
#include <config.h>

#include "kernels_x86.h"

#if defined(QLM_VNNI_EMULATE)
#define dpbusd(src, a, b) kx_dpbusd_emu((src), (a), (b))
#define VNNI_TABLE qlm_kernels_avxvnni_emu
#define VNNI_NAME "avxvnni-emu"
extern const struct qlm_isa_kernels qlm_kernels_avxvnni_emu;
#else
#define dpbusd(src, a, b) _mm256_dpbusd_avx_epi32((src), (a), (b))
#define VNNI_TABLE qlm_kernels_avxvnni
#define VNNI_NAME "avxvnni"
#endif

/* bits 8: q8 (32-byte row chunks); bits 4: q4 (16-byte row chunks). */
KX_INLINE void vnni_block(int bits, int rb, const struct kx_block *b, int n, float *y, int ldy,
                          int group)
{
    const int tb = 8 / rb, ng = n / group;
    const __m256i bias = _mm256_set1_epi8(bits == 8 ? (char)0x80 : 8);
    __m256 acc = _mm256_setzero_ps();
    for (int g = 0; g < ng; g++) {
        /* the sums start at minus the tokens' bias corrections (the bias's
         * dpbusd against the group's activations): no subtractions after */
        __m256i s[8];
        UNROLL for (int t = 0; t < tb; t++) {
            __m256i cx = _mm256_setzero_si256();
            for (int c = 0; c < group / 32; c++)
                cx = dpbusd(cx, bias,
                            _mm256_loadu_si256((const __m256i *)(b->x[t] + g * group + c * 32)));
            cx = _mm256_sub_epi32(_mm256_setzero_si256(), cx);
            UNROLL for (int r = 0; r < rb; r++)
                s[t * rb + r] = cx;
        }
        for (int c = 0; c < group / 32; c++) {
            int k = g * group + c * 32;
            __m256i xv[2];
            UNROLL for (int t = 0; t < tb; t++)
                xv[t] = _mm256_loadu_si256((const __m256i *)(b->x[t] + k));
            UNROLL for (int r = 0; r < rb; r++) {
                if (rb == 8)
                    kx_prefetch(b, g, c, r);
                __m256i w;
                if (bits == 8)
                    w = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)kx_chunk(b, g, c, r)),
                                         bias);
                else
                    w = unpack_q4_x86(kx_chunk(b, g, c, r));
                UNROLL for (int t = 0; t < tb; t++)
                    s[t * rb + r] = dpbusd(s[t * rb + r], w, xv[t]);
            }
        }
        acc = scale_add(acc, hsum8_epi32(s), block_scales(rb, b, g));
    }
    store_block(y, ldy, rb, b->nr, b->nv, acc);
}

static void q8_block4(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(vnni_block, 8, 4, b, n, y, ldy);
}

static void q8_block8(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(vnni_block, 8, 8, b, n, y, ldy);
}

static void q4_block4(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(vnni_block, 4, 4, b, n, y, ldy);
}

static void q4_block8(const struct kx_block *b, int n, int group, float *y, int ldy)
{
    KX_GROUP32(vnni_block, 4, 8, b, n, y, ldy);
}

KX_GEMM_DRIVER(vnni_gemm_q8, 8, 4, q8_block4, q8_block8)
KX_GEMM_DRIVER(vnni_gemm_q4, 4, 4, q4_block4, q4_block8)

const struct qlm_isa_kernels VNNI_TABLE = {
    .name = VNNI_NAME,
    .quantize_act = x86_quantize_act,
    .gemm_q8 = vnni_gemm_q8,
    .gemm_q4 = vnni_gemm_q4,
    .gemm_f32 = x86_gemm_f32,
    .gemm_f16 = x86_gemm_f16,
    .gemm_bf16 = x86_gemm_bf16,
    .wsum_f32 = x86_wsum_f32,
    .wsum_f16 = x86_wsum_f16,
    .softmax_f32 = x86_softmax_f32,
    .silu_mul_f32 = x86_silu_mul_f32,
};
