/*
 * kernels_avx512vnni.c — AVX-512 VNNI kernels (Ice Lake, Sapphire Rapids,
 * Zen 4): vpdpbusd on 512-bit registers, each holding the 32-element chunk
 * of TWO rows (rows 2p and 2p+1 in the low and high 256 bits: adjacent in
 * the file's interleaved tiles, so one load) against one
 * token's chunk broadcast to both halves; so a block of 8 rows x up to 4
 * tokens keeps 4 x 4 zmm accumulators, each weight chunk is loaded once for
 * all tokens of the block, and group size 32, 64 or 128 all work the same.
 * Arithmetic as kernels_avxvnni.c (u8 x s8 with a per-token correction):
 *   q8: sum (w ^ 0x80) * x - 128 * sum x;  q4: sum n * x - 8 * sum x.
 * At the end of a group each token's 4 zmm are folded to its 8 row sums
 * (z_hsum_pairs); the float part matches the scalar reference bit for bit.
 * The float GEMMs are the 256-bit FMA ones of kernels_x86.h (they are
 * bandwidth-bound).
 *
 * Built a second time for the tests with QLM_AVX512_EMULATE (AVX2 flags only):
 * the AVX-512 intrinsics are then emulated exactly with AVX2
 * (kernels_avx512_emu.h), and the table is exported as
 * qlm_kernels_avx512vnni_emu, so this file is checked on CPUs without AVX-512.
 */
#include <config.h>

#include "kernels_x86.h"

#if defined(QLM_AVX512_EMULATE)
#include "kernels_avx512_emu.h"
#define Z_TABLE qlm_kernels_avx512vnni_emu
#define Z_NAME "avx512vnni-emu"
extern const struct qlm_isa_kernels qlm_kernels_avx512vnni_emu;
#else
#define Z_TABLE qlm_kernels_avx512vnni
#define Z_NAME "avx512vnni"
#endif

/* Rows 2p and 2p+1 of chunk c of group g: adjacent in the tile, so one load
 * gives the zmm of u8 operands (q8: 2 x 32 bytes). */
KX_INLINE __m512i pair_q8(const struct kx_block *b, int g, int c, int p, __m512i bias)
{
    return _mm512_xor_si512(_mm512_loadu_si512((const void *)kx_chunk(b, g, c, 2 * p)), bias);
}

/* q4: 2 x 16 bytes [v0 | v1] -> 128-bit lanes [v0 lo, v0 hi, v1 lo, v1 hi]. */
KX_INLINE __m512i pair_q4(const struct kx_block *b, int g, int c, int p)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)kx_chunk(b, g, c, 2 * p));
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(v, m4);                        /* [v0 lo | v1 lo] */
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);  /* [v0 hi | v1 hi] */
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    /* 128-bit lanes [v0lo, v1lo, v0hi, v1hi] -> [v0lo, v0hi, v1lo, v1hi] */
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

/* One token's group sums from its 4 zmm of row pairs (low 256 bits row 2p,
 * high row 2p+1, each 8 partial sums), in row order.  Folding in zmm first
 * (unpack and add in each 128-bit lane: four zmm -> one holding, per lane,
 * rows 0 2 4 6 or 1 3 5 7) costs 9 zmm + 6 ymm ops instead of splitting into
 * 8 ymm for hsum8 (4 + 21). */
KX_INLINE __m256i z_hsum_pairs(const __m512i d[4])
{
    __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(d[0], d[1]),
                                 _mm512_unpackhi_epi32(d[0], d[1]));
    __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(d[2], d[3]),
                                 _mm512_unpackhi_epi32(d[2], d[3]));
    /* per 128-bit lane: [d0 d1 d2 d3] partial sums; lanes 0, 1 from the pairs'
     * even rows (0 2 4 6), lanes 2, 3 from their odd rows (1 3 5 7) */
    __m512i f = _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
    __m256i ev = _mm512_castsi512_si256(f), od = _mm512_extracti64x4_epi64(f, 1);
    __m256i u = _mm256_unpacklo_epi32(ev, od), v = _mm256_unpackhi_epi32(ev, od);
    /* u = [rows 0-3 | rows 0-3], v = [rows 4-7 | rows 4-7], each half a partial */
    return _mm256_add_epi32(_mm256_permute2x128_si256(u, v, 0x20),
                            _mm256_permute2x128_si256(u, v, 0x31));
}

/* 8 rows x tb tokens (tb 1..4); bits 8 or 4.  A group's accumulators start
 * at minus the token's bias correction (its dpbusd of the bias against the
 * group's activations), so the sums come out corrected. */
KX_INLINE void z_block(int bits, int tb, const struct kx_block *b, int n, float *y, int ldy,
                       int group)
{
    const int ng = n / group;
    const __m512i bias = _mm512_set1_epi8(bits == 8 ? (char)0x80 : 8);
    __m256 acc[4];
    UNROLL for (int t = 0; t < 4; t++)
        acc[t] = _mm256_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m512i s[4][4], ncx[4];
        UNROLL for (int t = 0; t < tb; t++) {
            __m512i cx = _mm512_setzero_si512();
            for (int c = 0; c < group / 32; c++)
                cx = _mm512_dpbusd_epi32(cx, bias, _mm512_broadcast_i64x4(_mm256_loadu_si256(
                                                       (const __m256i *)(b->x[t] + g * group + c * 32))));
            ncx[t] = _mm512_sub_epi32(_mm512_setzero_si512(), cx);
            UNROLL for (int p = 0; p < 4; p++)
                s[p][t] = ncx[t];
        }
        for (int c = 0; c < group / 32; c++) {
            int k = g * group + c * 32;
            __m512i xb[4];
            UNROLL for (int t = 0; t < tb; t++)
                xb[t] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->x[t] + k)));
            UNROLL for (int p = 0; p < 4; p++) {
                if (tb == 1)
                    kx_prefetch(b, g, c, 2 * p);
                __m512i w = bits == 8 ? pair_q8(b, g, c, p, bias) : pair_q4(b, g, c, p);
                UNROLL for (int t = 0; t < tb; t++)
                    s[p][t] = _mm512_dpbusd_epi32(s[p][t], w, xb[t]);
            }
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)kx_scales(b, g)));
        UNROLL for (int t = 0; t < tb; t++) {
            __m512i d[4] = { s[0][t], s[1][t], s[2][t], s[3][t] };
            acc[t] = scale_add(acc[t], z_hsum_pairs(d),
                               _mm256_mul_ps(dw, _mm256_set1_ps(b->xd[t][g])));
        }
    }
    UNROLL for (int t = 0; t < tb; t++)
        store_block(y + (size_t)t * ldy, ldy, 8, b->nr, 1, acc[t]);
}

KX_INLINE void z_gemm(int bits, int n, int group, const void *w, int r0, int r1,
                      const int8_t *xq, const float *xd, int nt, float *y, int ldy)
{
    assert(n > 0 && group > 0 && n % group == 0 && group % 32 == 0);
    assert(r0 % QLM_QBLOCK_ROWS == 0);
    const int ng = n / group;
    struct kx_block b;
    for (int r = r0; r < r1; r += 8) {
        block_rows(&b, bits, w, n, group, r, 8, r1);
        for (int t = 0; t < nt; t += 4) {
            int tb = nt - t < 4 ? nt - t : 4;
            block_tokens(&b, tb, xq, xd, n, ng, t, nt);
            float *yb = y + (size_t)t * ldy + r;
            switch (tb) {
            case 1: KX_GROUP32(z_block, bits, 1, &b, n, yb, ldy); break;
            case 2: KX_GROUP32(z_block, bits, 2, &b, n, yb, ldy); break;
            case 3: KX_GROUP32(z_block, bits, 3, &b, n, yb, ldy); break;
            default: KX_GROUP32(z_block, bits, 4, &b, n, yb, ldy); break;
            }
        }
    }
}

static void z_gemm_q8(int n, int group, const void *w, int r0, int r1, const int8_t *xq,
                      const float *xd, int nt, float *y, int ldy)
{
    z_gemm(8, n, group, w, r0, r1, xq, xd, nt, y, ldy);
}

static void z_gemm_q4(int n, int group, const void *w, int r0, int r1, const int8_t *xq,
                      const float *xd, int nt, float *y, int ldy)
{
    z_gemm(4, n, group, w, r0, r1, xq, xd, nt, y, ldy);
}

const struct qlm_isa_kernels Z_TABLE = {
    .name = Z_NAME,
    .quantize_act = x86_quantize_act,
    .gemm_q8 = z_gemm_q8,
    .gemm_q4 = z_gemm_q4,
    .gemm_f32 = x86_gemm_f32,
    .gemm_f16 = x86_gemm_f16,
    .gemm_bf16 = x86_gemm_bf16,
    .wsum_f32 = x86_wsum_f32,
    .wsum_f16 = x86_wsum_f16,
    .softmax_f32 = x86_softmax_f32,
    .silu_mul_f32 = x86_silu_mul_f32,
};
