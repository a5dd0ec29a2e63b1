/*
 * kernels_scalar.c — the reference kernels: plain C, one element at a time,
 * in exactly the layouts of formats/qlm_format.h.  Every SIMD table is tested
 * against these, so they favour being obviously right over being fast.
 *
 * Activation quantization (all ISAs must match it bit for bit):
 *   amax = max |x| over the group, d = amax / 127, id = d ? 1 / d : 0,
 *   q = round-half-to-even(x * id) clamped to [-127, 127].
 * (x * id, not x / d: a SIMD multiply by the reciprocal is what every ISA
 * does cheaply, and half-to-even is what cvtps/vcvtnq round with.)
 */
#include <config.h>

#include <assert.h>
#include <math.h>
#include <stdint.h>

#include "kernels.h"

/* Round half to even, independent of the FP environment's rounding mode. */
static int round_even(float v)
{
    if (isnan(v))
        return 0;
    if (v >= 127.0f)
        return 127;
    if (v <= -127.0f)
        return -127;
    float f = floorf(v);
    float diff = v - f;
    int i = (int)f;
    if (diff > 0.5f || (diff == 0.5f && (i & 1) != 0))
        i++;
    return i;
}

static void scalar_quantize_act(const float *x, int nt, int n, int group, int8_t *q, float *d)
{
    assert(n > 0 && group > 0 && n % group == 0);
    int ng = n / group;
    for (int t = 0; t < nt; t++) {
        for (int g = 0; g < ng; g++) {
            const float *xg = x + (size_t)t * n + (size_t)g * group;
            int8_t *qg = q + (size_t)t * n + (size_t)g * group;
            float amax = 0.0f;
            for (int k = 0; k < group; k++) {
                float a = fabsf(xg[k]);
                if (a > amax)
                    amax = a;
            }
            float dg = amax / 127.0f;
            float id = dg != 0.0f ? 1.0f / dg : 0.0f;
            for (int k = 0; k < group; k++) {
                qg[k] = (int8_t)round_even(xg[k] * id);
            }
            d[(size_t)t * ng + g] = dg;
        }
    }
}

static void scalar_gemm_q8(int n, int group, const void *wq, const uint16_t *wd, int r0, int r1,
                           const int8_t *xq, const float *xd, int nt, float *y, int ldy)
{
    assert(n % group == 0);
    int ng = n / group;
    for (int r = r0; r < r1; r++) {
        const int8_t *wr = (const int8_t *)wq + (size_t)r * n;
        const uint16_t *dr = wd + (size_t)r * ng;
        for (int t = 0; t < nt; t++) {
            const int8_t *xt = xq + (size_t)t * n;
            const float *dt = xd + (size_t)t * ng;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t isum = 0;
                for (int k = 0; k < group; k++)
                    isum += (int32_t)wr[g * group + k] * (int32_t)xt[g * group + k];
                acc += (float)isum * (qlm_f16_to_f32(dr[g]) * dt[g]);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

/* q4: each 32-element block is 16 bytes; byte j holds element j (low nibble)
 * and element j + 16 (high nibble), both stored as value + 8. */
static int q4_at(const uint8_t *row, int k)
{
    int blk = k / 32, j = k % 32;
    uint8_t b = row[blk * 16 + (j & 15)];
    int nib = j < 16 ? (b & 0x0f) : (b >> 4);
    return nib - 8;
}

static void scalar_gemm_q4(int n, int group, const void *wq, const uint16_t *wd, int r0, int r1,
                           const int8_t *xq, const float *xd, int nt, float *y, int ldy)
{
    assert(n % group == 0 && group % 32 == 0);
    int ng = n / group;
    for (int r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)wq + (size_t)r * (n / 2);
        const uint16_t *dr = wd + (size_t)r * ng;
        for (int t = 0; t < nt; t++) {
            const int8_t *xt = xq + (size_t)t * n;
            const float *dt = xd + (size_t)t * ng;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t isum = 0;
                for (int k = g * group; k < (g + 1) * group; k++)
                    isum += (int32_t)q4_at(wr, k) * (int32_t)xt[k];
                acc += (float)isum * (qlm_f16_to_f32(dr[g]) * dt[g]);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

static void scalar_gemm_f32(int n, const void *w, int r0, int r1, const float *x, int nt,
                            float *y, int ldy)
{
    for (int r = r0; r < r1; r++) {
        const float *wr = (const float *)w + (size_t)r * n;
        for (int t = 0; t < nt; t++) {
            const float *xt = x + (size_t)t * n;
            float acc = 0.0f;
            for (int k = 0; k < n; k++)
                acc += wr[k] * xt[k];
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

static void scalar_gemm_f16(int n, const void *w, int r0, int r1, const float *x, int nt,
                            float *y, int ldy)
{
    for (int r = r0; r < r1; r++) {
        const uint16_t *wr = (const uint16_t *)w + (size_t)r * n;
        for (int t = 0; t < nt; t++) {
            const float *xt = x + (size_t)t * n;
            float acc = 0.0f;
            for (int k = 0; k < n; k++)
                acc += qlm_f16_to_f32(wr[k]) * xt[k];
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

static void scalar_gemm_bf16(int n, const void *w, int r0, int r1, const float *x, int nt,
                             float *y, int ldy)
{
    for (int r = r0; r < r1; r++) {
        const uint16_t *wr = (const uint16_t *)w + (size_t)r * n;
        for (int t = 0; t < nt; t++) {
            const float *xt = x + (size_t)t * n;
            float acc = 0.0f;
            for (int k = 0; k < n; k++)
                acc += qlm_bf16_to_f32(wr[k]) * xt[k];
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

const struct qlm_isa_kernels qlm_kernels_scalar = {
    .name = "scalar",
    .quantize_act = scalar_quantize_act,
    .gemm_q8 = scalar_gemm_q8,
    .gemm_q4 = scalar_gemm_q4,
    .gemm_f32 = scalar_gemm_f32,
    .gemm_f16 = scalar_gemm_f16,
    .gemm_bf16 = scalar_gemm_bf16,
};
