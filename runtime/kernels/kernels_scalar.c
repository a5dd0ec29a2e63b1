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

/* Element access in the interleaved layout of formats/qlm_format.h: rows in
 * blocks of 8, per group a tile of 8 f16 scales then, per 32-element chunk,
 * the chunk of each of the 8 rows (32 bytes for q8, 16 for q4). */
static const uint8_t *tile_of(int bits, int n, int group, const void *w, int r, int g)
{
    size_t tile = 16 + (size_t)QLM_QBLOCK_ROWS * (size_t)group * (size_t)bits / 8;
    size_t block = (size_t)(r / QLM_QBLOCK_ROWS) * (size_t)(n / group);
    return (const uint8_t *)w + (block + (size_t)g) * tile;
}

static float scale_at(int bits, int n, int group, const void *w, int r, int g)
{
    const uint8_t *t = tile_of(bits, n, group, w, r, g);
    int i = r % QLM_QBLOCK_ROWS;
    return qlm_f16_to_f32((uint16_t)(t[2 * i] | t[2 * i + 1] << 8));
}

/* The 32-element chunk of row r holding element k. */
static const uint8_t *chunk_at(int bits, int n, int group, const void *w, int r, int k)
{
    size_t cb = (size_t)bits * 4, c = (size_t)(k % group) / 32;
    return tile_of(bits, n, group, w, r, k / group) + 16 +
           (c * QLM_QBLOCK_ROWS + (size_t)(r % QLM_QBLOCK_ROWS)) * cb;
}

/* q4: in a chunk, byte j holds element j (low nibble) and element j + 16
 * (high nibble), both stored as value + 8. */
static int weight_at(int bits, int n, int group, const void *w, int r, int k)
{
    const uint8_t *c = chunk_at(bits, n, group, w, r, k);
    int j = k % 32;
    if (bits == 8)
        return (int8_t)c[j];
    uint8_t b = c[j & 15];
    return (j < 16 ? (b & 0x0f) : (b >> 4)) - 8;
}

static void scalar_gemm_q(int bits, int n, int group, const void *w, int r0, int r1,
                          const int8_t *xq, const float *xd, int nt, float *y, int ldy)
{
    assert(n % group == 0 && group % 32 == 0);
    int ng = n / group;
    for (int r = r0; r < r1; r++) {
        for (int t = 0; t < nt; t++) {
            const int8_t *xt = xq + (size_t)t * n;
            const float *dt = xd + (size_t)t * ng;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t isum = 0;
                for (int k = g * group; k < (g + 1) * group; k++)
                    isum += (int32_t)weight_at(bits, n, group, w, r, k) * (int32_t)xt[k];
                acc += (float)isum * (scale_at(bits, n, group, w, r, g) * dt[g]);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

static void scalar_gemm_q8(int n, int group, const void *w, int r0, int r1, const int8_t *xq,
                           const float *xd, int nt, float *y, int ldy)
{
    scalar_gemm_q(8, n, group, w, r0, r1, xq, xd, nt, y, ldy);
}

static void scalar_gemm_q4(int n, int group, const void *w, int r0, int r1, const int8_t *xq,
                           const float *xd, int nt, float *y, int ldy)
{
    scalar_gemm_q(4, n, group, w, r0, r1, xq, xd, nt, y, ldy);
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

static void scalar_wsum_f32(int n, const float *w, const float *v, int rows, float *out)
{
    for (int i = 0; i < n; i++)
        out[i] = 0.0f;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++)
            out[i] += w[r] * v[(size_t)r * n + i];
}

static void scalar_wsum_f16(int n, const float *w, const uint16_t *v, int rows, float *out)
{
    for (int i = 0; i < n; i++)
        out[i] = 0.0f;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++)
            out[i] += w[r] * qlm_f16_to_f32(v[(size_t)r * n + i]);
}

static void scalar_softmax_f32(float *x, int n, float scale)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > mx)
            mx = x[i];
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

static void scalar_silu_mul_f32(float *gate, const float *up, int n)
{
    for (int i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

const struct qlm_isa_kernels qlm_kernels_scalar = {
    .name = "scalar",
    .quantize_act = scalar_quantize_act,
    .gemm_q8 = scalar_gemm_q8,
    .gemm_q4 = scalar_gemm_q4,
    .gemm_f32 = scalar_gemm_f32,
    .gemm_f16 = scalar_gemm_f16,
    .gemm_bf16 = scalar_gemm_bf16,
    .wsum_f32 = scalar_wsum_f32,
    .wsum_f16 = scalar_wsum_f16,
    .softmax_f32 = scalar_softmax_f32,
    .silu_mul_f32 = scalar_silu_mul_f32,
};
