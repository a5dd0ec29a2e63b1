/*
 * kernels_neon.c — AArch64 NEON kernels with the dot-product extension
 * (Armv8.2-A +dotprod +fp16: Apple M1 and later, Cortex-A76/X1 and later,
 * Graviton 2+).  sdot sums four s8 x s8 products into each int32 lane, so q8
 * needs no sign trick and q4 nibbles are unpacked straight to n - 8.
 *
 * The integer GEMMs take one 8-row block of the interleaved layout
 * (formats/qlm_format.h) at a time, x 2 tokens (x 1 for a lone or last
 * token): 16 int32x4 accumulators for the current group, the block's rows
 * read chunk by chunk from consecutive bytes of the tile.  At the group's end
 * vpaddq folds each token's row vectors into two vectors of 4 exact group
 * sums, scaled by the tile's 8 scales (one load) and added in f32 as the
 * scalar reference does (built with -ffp-contract=off), so results are
 * bit-identical to kernels_scalar.c.  The last block's zero padding rows are
 * computed and dropped.  The float GEMMs: 4 rows x 2 tokens, tail rows reuse
 * the last valid row and drop the extra results.
 */
#include <config.h>

#include <arm_neon.h>
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#define KN_INLINE static inline __attribute__((always_inline))
/* Fully unroll the loops over a block's rows and tokens (accumulators in
 * registers, not in memory). */
#define UNROLL _Pragma("GCC unroll 8")

/* ---- activation quantization ------------------------------------------- */

/* 4 floats * id -> int32 rounded half to even (fcvtns: NaN -> 0, saturating),
 * clamped to +-127, as the scalar round_even(). */
KN_INLINE int32x4_t quant4(float32x4_t x, float32x4_t id)
{
    int32x4_t i = vcvtnq_s32_f32(vmulq_f32(x, id));
    return vminq_s32(vmaxq_s32(i, vdupq_n_s32(-127)), vdupq_n_s32(127));
}

static void neon_quantize_act(const float *x, int nt, int n, int group, int8_t *q, float *d)
{
    assert(n > 0 && group > 0 && n % group == 0);
    if (group % 16 != 0) {
        qlm_kernels_scalar.quantize_act(x, nt, n, group, q, d);
        return;
    }
    int ng = n / group;
    for (int t = 0; t < nt; t++) {
        for (int g = 0; g < ng; g++) {
            const float *xg = x + (size_t)t * n + (size_t)g * group;
            int8_t *qg = q + (size_t)t * n + (size_t)g * group;
            /* amax = |x| > amax ? |x| : amax, which skips NaN like the scalar */
            float32x4_t m = vdupq_n_f32(0.0f);
            for (int k = 0; k < group; k += 4) {
                float32x4_t a = vabsq_f32(vld1q_f32(xg + k));
                m = vbslq_f32(vcgtq_f32(a, m), a, m);
            }
            float amax = vmaxvq_f32(m);
            float dg = amax / 127.0f;
            float idg = dg != 0.0f ? 1.0f / dg : 0.0f;
            float32x4_t id = vdupq_n_f32(idg);
            for (int k = 0; k < group; k += 16) {
                int16x8_t lo = vcombine_s16(vqmovn_s32(quant4(vld1q_f32(xg + k), id)),
                                            vqmovn_s32(quant4(vld1q_f32(xg + k + 4), id)));
                int16x8_t hi = vcombine_s16(vqmovn_s32(quant4(vld1q_f32(xg + k + 8), id)),
                                            vqmovn_s32(quant4(vld1q_f32(xg + k + 12), id)));
                vst1q_s8(qg + k, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
            }
            d[(size_t)t * ng + g] = dg;
        }
    }
}

/* ---- integer GEMMs ------------------------------------------------------ */

/* Prefetch distance of the decode kernel, in bytes ahead of the chunk being
 * read (as KX_PREFETCH_BYTES in kernels_x86.h: the weights are one stream). */
#define KN_PREFETCH_BYTES 2048

/* One 8-row block of the interleaved layout (formats/qlm_format.h) times tb
 * tokens (1 or 2). */
struct kn_block {
    const uint8_t *tile0;    /* group 0's tile of the block */
    size_t tile;             /* bytes per tile */
    const int8_t *x[2];      /* activation rows */
    const float *xd[2];      /* activation scales */
    int nr;                  /* rows below r1, the ones stored */
};

/* A row's 32-weight chunk as two int8x16 (elements 0-15, 16-31). */
KN_INLINE void load_w(int bits, const uint8_t *chunk, int8x16_t *w0, int8x16_t *w1)
{
    if (bits == 8) {
        *w0 = vld1q_s8((const int8_t *)chunk);
        *w1 = vld1q_s8((const int8_t *)chunk + 16);
    } else {
        /* nibble n xor 8, read as a signed 4-bit number, is n - 8: one
         * constant instead of a mask and an 8 (registers are short in the
         * 2-token block) */
        int8x16_t v = veorq_s8(vld1q_s8((const int8_t *)chunk), vdupq_n_s8((int8_t)0x88));
        *w0 = vshrq_n_s8(vshlq_n_s8(v, 4), 4);
        *w1 = vshrq_n_s8(v, 4);
    }
}

/* Four rows' int32x4 partial sums -> their 4 exact sums, in row order. */
KN_INLINE int32x4_t fold4(const int32x4_t s[4])
{
    return vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));
}

/* prefetch: the decode shape, where the block is read once and the next
 * ones must already be on their way. */
KN_INLINE void q_block(int bits, int tb, bool prefetch, const struct kn_block *b, int n,
                       int group, float *y, int ldy)
{
    const int ng = n / group, nc = group / 32, cb = bits * 4;
    float32x4_t acc[2][2]; /* [token][rows 0-3, 4-7] */
    UNROLL for (int t = 0; t < 2; t++)
        acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);
    const uint8_t *tile = b->tile0;
    for (int g = 0; g < ng; g++, tile += b->tile) {
        int32x4_t s[2][8];
        UNROLL for (int t = 0; t < 2; t++)
            UNROLL for (int r = 0; r < 8; r++)
                s[t][r] = vdupq_n_s32(0);
        const uint8_t *p = tile + 16; /* chunk c of row r at p + r * cb */
        for (int c = 0; c < nc; c++, p += QLM_QBLOCK_ROWS * cb) {
            int k = g * group + c * 32;
            int8x16_t x0[2], x1[2];
            UNROLL for (int t = 0; t < tb; t++) {
                x0[t] = vld1q_s8(b->x[t] + k);
                x1[t] = vld1q_s8(b->x[t] + k + 16);
            }
            UNROLL for (int r = 0; r < 8; r++) {
                /* one prefetch per 64 bytes of chunk data */
                if (prefetch && (r * cb) % 64 == 0)
                    __builtin_prefetch(p + r * cb + KN_PREFETCH_BYTES);
                int8x16_t w0, w1;
                load_w(bits, p + r * cb, &w0, &w1);
                UNROLL for (int t = 0; t < tb; t++)
                    s[t][r] = vdotq_s32(vdotq_s32(s[t][r], w0, x0[t]), w1, x1[t]);
            }
        }
        /* the tile's 8 scales, row 0 first, in one load */
        float16x8_t dh = vreinterpretq_f16_u8(vld1q_u8(tile));
        float32x4_t dw[2] = { vcvt_f32_f16(vget_low_f16(dh)), vcvt_high_f32_f16(dh) };
        UNROLL for (int t = 0; t < tb; t++) {
            float32x4_t dx = vdupq_n_f32(b->xd[t][g]);
            UNROLL for (int h = 0; h < 2; h++) {
                float32x4_t sum = vcvtq_f32_s32(fold4(&s[t][4 * h]));
                acc[t][h] = vaddq_f32(acc[t][h], vmulq_f32(sum, vmulq_f32(dw[h], dx)));
            }
        }
    }
    UNROLL for (int t = 0; t < tb; t++) {
        float *yt = y + (size_t)t * ldy;
        if (b->nr == QLM_QBLOCK_ROWS) {
            vst1q_f32(yt, acc[t][0]);
            vst1q_f32(yt + 4, acc[t][1]);
        } else {
            float tmp[8];
            vst1q_f32(tmp, acc[t][0]);
            vst1q_f32(tmp + 4, acc[t][1]);
            memcpy(yt, tmp, sizeof(float) * (size_t)b->nr);
        }
    }
}

KN_INLINE void q_gemm(int bits, int n, int group, const void *w, int r0, int r1,
                      const int8_t *xq, const float *xd, int nt, float *y, int ldy)
{
    assert(n > 0 && group > 0 && n % group == 0 && group % 32 == 0);
    assert(r0 % QLM_QBLOCK_ROWS == 0);
    const int ng = n / group;
    struct kn_block b;
    b.tile = 16 + (size_t)group * (size_t)bits; /* qlm_quant_tile_bytes */
    for (int r = r0; r < r1; r += QLM_QBLOCK_ROWS) {
        b.tile0 = (const uint8_t *)w + (size_t)(r / QLM_QBLOCK_ROWS) * (size_t)ng * b.tile;
        b.nr = r1 - r < QLM_QBLOCK_ROWS ? r1 - r : QLM_QBLOCK_ROWS;
        if (nt == 1) {
            b.x[0] = xq;
            b.xd[0] = xd;
            q_block(bits, 1, true, &b, n, group, y + r, ldy);
            continue;
        }
        for (int t = 0; t < nt; t += 2) {
            int tb = nt - t < 2 ? 1 : 2;
            UNROLL for (int i = 0; i < tb; i++) {
                b.x[i] = xq + (size_t)(t + i) * n;
                b.xd[i] = xd + (size_t)(t + i) * ng;
            }
            float *yb = y + (size_t)t * ldy + r;
            if (tb == 2)
                q_block(bits, 2, false, &b, n, group, yb, ldy);
            else
                q_block(bits, 1, false, &b, n, group, yb, ldy);
        }
    }
}

static void neon_gemm_q8(int n, int group, const void *w, int r0, int r1, const int8_t *xq,
                         const float *xd, int nt, float *y, int ldy)
{
    q_gemm(8, n, group, w, r0, r1, xq, xd, nt, y, ldy);
}

static void neon_gemm_q4(int n, int group, const void *w, int r0, int r1, const int8_t *xq,
                         const float *xd, int nt, float *y, int ldy)
{
    q_gemm(4, n, group, w, r0, r1, xq, xd, nt, y, ldy);
}

/* ---- float GEMMs (fmla): 4 rows x 2 tokens ------------------------------ */

/* kind 0: f32, 1: f16, 2: bf16 */
KN_INLINE float32x4_t load_w4(int kind, const void *w, size_t k)
{
    if (kind == 0)
        return vld1q_f32((const float *)w + k);
    uint16x4_t h = vld1_u16((const uint16_t *)w + k);
    if (kind == 1)
        return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

KN_INLINE float load_w1(int kind, const void *w, size_t k)
{
    if (kind == 0)
        return ((const float *)w)[k];
    uint16_t h = ((const uint16_t *)w)[k];
    if (kind == 1)
        return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

KN_INLINE void f_block(int kind, int tb, int n, const void *const wr[4], const float *const xt[2],
                       float *y, int ldy, int nr)
{
    float32x4_t acc[2][4];
    UNROLL for (int t = 0; t < 2; t++)
        UNROLL for (int r = 0; r < 4; r++)
            acc[t][r] = vdupq_n_f32(0.0f);
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        float32x4_t xv[2];
        UNROLL for (int t = 0; t < tb; t++)
            xv[t] = vld1q_f32(xt[t] + k);
        UNROLL for (int r = 0; r < 4; r++) {
            float32x4_t wv = load_w4(kind, wr[r], (size_t)k);
            UNROLL for (int t = 0; t < tb; t++)
                acc[t][r] = vfmaq_f32(acc[t][r], wv, xv[t]);
        }
    }
    UNROLL for (int t = 0; t < tb; t++) {
        float sum[4];
        vst1q_f32(sum, vpaddq_f32(vpaddq_f32(acc[t][0], acc[t][1]),
                                  vpaddq_f32(acc[t][2], acc[t][3])));
        for (int r = 0; r < nr; r++) {
            for (int kk = k; kk < n; kk++)
                sum[r] += load_w1(kind, wr[r], (size_t)kk) * xt[t][kk];
            y[(size_t)t * ldy + r] = sum[r];
        }
    }
}

KN_INLINE void f_gemm(int kind, int n, const void *w, int r0, int r1, const float *x, int nt,
                      float *y, int ldy)
{
    const size_t esz = kind == 0 ? 4 : 2;
    for (int r = r0; r < r1; r += 4) {
        int nr = r1 - r < 4 ? r1 - r : 4;
        const void *wr[4];
        UNROLL for (int i = 0; i < 4; i++)
            wr[i] = (const char *)w + (size_t)(r + (i < nr ? i : nr - 1)) * n * esz;
        for (int t = 0; t < nt; t += 2) {
            const float *xt[2] = { x + (size_t)t * n, x + (size_t)t * n };
            float *yb = y + (size_t)t * ldy + r;
            if (nt - t >= 2) {
                xt[1] = x + (size_t)(t + 1) * n;
                f_block(kind, 2, n, wr, xt, yb, ldy, nr);
            } else {
                f_block(kind, 1, n, wr, xt, yb, ldy, nr);
            }
        }
    }
}

static void neon_gemm_f32(int n, const void *w, int r0, int r1, const float *x, int nt, float *y,
                          int ldy)
{
    f_gemm(0, n, w, r0, r1, x, nt, y, ldy);
}

static void neon_gemm_f16(int n, const void *w, int r0, int r1, const float *x, int nt, float *y,
                          int ldy)
{
    f_gemm(1, n, w, r0, r1, x, nt, y, ldy);
}

static void neon_gemm_bf16(int n, const void *w, int r0, int r1, const float *x, int nt, float *y,
                           int ldy)
{
    f_gemm(2, n, w, r0, r1, x, nt, y, ldy);
}

/* ---- attention: value sums and softmax --------------------------------- */

/* out = sum_r w[r] v[r] over f32 (kind 0) or f16 (kind 1) value rows: 32
 * outputs at a time in 8 accumulators over all rows, then 4, then 1. */
KN_INLINE void wsum_any(int kind, int n, const float *w, const void *v, int rows, float *out)
{
    int i0 = 0;
    for (; i0 + 32 <= n; i0 += 32) {
        float32x4_t acc[8];
        UNROLL for (int j = 0; j < 8; j++)
            acc[j] = vdupq_n_f32(0.0f);
        for (int r = 0; r < rows; r++) {
            float32x4_t wr = vdupq_n_f32(w[r]);
            size_t row = (size_t)r * n + i0;
            UNROLL for (int j = 0; j < 8; j++)
                acc[j] = vfmaq_f32(acc[j], wr, load_w4(kind, v, row + 4 * j));
        }
        UNROLL for (int j = 0; j < 8; j++)
            vst1q_f32(out + i0 + 4 * j, acc[j]);
    }
    for (; i0 + 4 <= n; i0 += 4) {
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (int r = 0; r < rows; r++)
            acc = vfmaq_f32(acc, vdupq_n_f32(w[r]), load_w4(kind, v, (size_t)r * n + i0));
        vst1q_f32(out + i0, acc);
    }
    for (; i0 < n; i0++) {
        float acc = 0.0f;
        for (int r = 0; r < rows; r++)
            acc += w[r] * load_w1(kind, v, (size_t)r * n + i0);
        out[i0] = acc;
    }
}

static void neon_wsum_f32(int n, const float *w, const float *v, int rows, float *out)
{
    wsum_any(0, n, w, v, rows, out);
}

static void neon_wsum_f16(int n, const float *w, const uint16_t *v, int rows, float *out)
{
    wsum_any(1, n, w, v, rows, out);
}

/* e^x for x <= 0, 4 at a time, as kernels_x86.h's exp_neg_ps: x = n ln2 + r,
 * e^r by its Taylor series to degree 7, 2^n in the exponent bits; below
 * -87.3 0, NaN 2^-126. */
KN_INLINE float32x4_t exp_neg4(float32x4_t x)
{
    uint32x4_t under = vcltq_f32(x, vdupq_n_f32(-87.3f));
    x = vmaxnmq_f32(x, vdupq_n_f32(-87.3f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145752f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.42860677e-6f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

/* The scalar softmax's three passes, 4 lanes at a time, the sum in double;
 * the tail through a 4-float buffer with the same exp. */
static void neon_softmax_f32(float *x, int n, float scale)
{
    float32x4_t m = vdupq_n_f32(-INFINITY);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), scale);
        vst1q_f32(x + i, v);
        m = vmaxq_f32(m, v);
    }
    float mxs = vmaxvq_f32(m);
    for (int k = i; k < n; k++) {
        x[k] *= scale;
        if (x[k] > mxs)
            mxs = x[k];
    }
    const float32x4_t mx = vdupq_n_f32(mxs);
    float64x2_t sum = vdupq_n_f64(0.0);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = exp_neg4(vsubq_f32(vld1q_f32(x + i), mx));
        vst1q_f32(x + i, e);
        sum = vaddq_f64(sum, vaddq_f64(vcvt_f64_f32(vget_low_f32(e)), vcvt_high_f64_f32(e)));
    }
    double total = vaddvq_f64(sum);
    if (i < n) {
        float tail[4] = { 0 };
        memcpy(tail, x + i, (size_t)(n - i) * sizeof(float));
        vst1q_f32(tail, exp_neg4(vsubq_f32(vld1q_f32(tail), mx)));
        for (int k = i; k < n; k++) {
            x[k] = tail[k - i];
            total += x[k];
        }
    }
    const float inv = (float)(1.0 / total);
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++)
        x[i] *= inv;
}

/* silu(g) * u, 4 lanes, as kernels_x86.h's silu_mul8. */
KN_INLINE float32x4_t silu_mul4(float32x4_t g, float32x4_t u)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t e = exp_neg4(vnegq_f32(vabsq_f32(g)));
    float32x4_t num = vbslq_f32(vcgeq_f32(g, vdupq_n_f32(0.0f)), one, e);
    return vmulq_f32(vmulq_f32(g, vdivq_f32(num, vaddq_f32(one, e))), u);
}

static void neon_silu_mul_f32(float *gate, const float *up, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(gate + i, silu_mul4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    if (i < n) {
        float g[4] = { 0 }, u[4] = { 0 };
        memcpy(g, gate + i, (size_t)(n - i) * sizeof(float));
        memcpy(u, up + i, (size_t)(n - i) * sizeof(float));
        vst1q_f32(g, silu_mul4(vld1q_f32(g), vld1q_f32(u)));
        memcpy(gate + i, g, (size_t)(n - i) * sizeof(float));
    }
}

const struct qlm_isa_kernels qlm_kernels_neon = {
    .name = "neon",
    .quantize_act = neon_quantize_act,
    .gemm_q8 = neon_gemm_q8,
    .gemm_q4 = neon_gemm_q4,
    .gemm_f32 = neon_gemm_f32,
    .gemm_f16 = neon_gemm_f16,
    .gemm_bf16 = neon_gemm_bf16,
    .wsum_f32 = neon_wsum_f32,
    .wsum_f16 = neon_wsum_f16,
    .softmax_f32 = neon_softmax_f32,
    .silu_mul_f32 = neon_silu_mul_f32,
};
