/* quant_ref.c — the reference q8/q4 codecs, the oracle for every kernel.
 *
 * Per group: d = max|w| / 127 (q8) or / 7 (q4), rounded to f16 because that
 * is what is stored; quants are computed from the stored scale, so
 * |w - d*q| <= d/2 for every weight (see group_scale for subnormal scales).
 * A group of zeros gets scale 0 and quants 0 (q4: nibbles 8).
 * A scale past the f16 range is clamped to the largest finite f16 (65504),
 * so the codecs never produce Inf or NaN from finite input. */
#include "qlm_format.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#define F16_MAX_FINITE 0x7bffu

/* Stored scale of a group whose largest magnitude is amax: the f16 nearest
 * amax / qmax, bumped up one f16 step in the rare case (subnormal scales,
 * amax < 127 * 2^-14) where rounding down would push amax / d past
 * qmax + 1/2 and clamp it, so |w - d*q| <= d/2 holds for every group. */
static uint16_t group_scale(float amax, float qmax, float *d_out)
{
    if (!(amax > 0.0f)) {
        *d_out = 0.0f;
        return 0;
    }
    uint16_t h = qlm_f32_to_f16(amax / qmax);
    if ((h & 0x7fffu) >= 0x7c00u)
        h = F16_MAX_FINITE;
    while (h < F16_MAX_FINITE && !(amax / qlm_f16_to_f32(h) < qmax + 0.5f))
        h++;
    *d_out = qlm_f16_to_f32(h);
    return h;
}

static float group_amax(const float *x, uint32_t n)
{
    float amax = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax)
            amax = a;
    }
    return amax;
}

/* round(v) (half away from zero, as roundf) clamped to [lo, hi]: truncate,
 * then correct by the exact remainder, so compilers can vectorize it. */
static inline int quant_one(float v, int lo, int hi)
{
    v = v < -256.0f ? -256.0f : v > 256.0f ? 256.0f : v;
    int i = (int)v;
    float r = v - (float)i; /* exact for |v| < 2^23 */
    i += (r >= 0.5f) - (r <= -0.5f);
    return i < lo ? lo : i > hi ? hi : i;
}

void qlm_quantize_row_q8(const float *x, size_t n, uint32_t group, int8_t *q, uint16_t *d)
{
    assert(group > 0 && n % group == 0);
    for (size_t g = 0; g < n / group; g++) {
        const float *xg = x + g * group;
        float df;
        d[g] = group_scale(group_amax(xg, group), 127.0f, &df);
        if (df == 0.0f) {
            memset(q + g * group, 0, group);
            continue;
        }
        for (uint32_t i = 0; i < group; i++)
            q[g * group + i] = (int8_t)quant_one(xg[i] / df, -127, 127);
    }
}

void qlm_quantize_row_q4(const float *x, size_t n, uint32_t group, uint8_t *q, uint16_t *d)
{
    assert(group > 0 && group % 32 == 0 && n % group == 0);
    for (size_t g = 0; g < n / group; g++) {
        const float *xg = x + g * group;
        float df;
        d[g] = group_scale(group_amax(xg, group), 7.0f, &df);
        for (uint32_t b = 0; b < group / 32; b++) {
            const float *xb = xg + b * 32;
            uint8_t *qb = q + (g * group + b * 32) / 2;
            for (int j = 0; j < 16; j++) {
                int lo = df > 0.0f ? quant_one(xb[j] / df, -8, 7) : 0;
                int hi = df > 0.0f ? quant_one(xb[j + 16] / df, -8, 7) : 0;
                qb[j] = (uint8_t)((lo + 8) | ((hi + 8) << 4));
            }
        }
    }
}

void qlm_dequantize_row_q8(const int8_t *q, const uint16_t *d, size_t n, uint32_t group, float *y)
{
    assert(group > 0 && n % group == 0);
    for (size_t g = 0; g < n / group; g++) {
        float df = qlm_f16_to_f32(d[g]);
        for (uint32_t i = 0; i < group; i++)
            y[g * group + i] = df * (float)q[g * group + i];
    }
}

void qlm_dequantize_row_q4(const uint8_t *q, const uint16_t *d, size_t n, uint32_t group, float *y)
{
    assert(group > 0 && group % 32 == 0 && n % group == 0);
    for (size_t g = 0; g < n / group; g++) {
        float df = qlm_f16_to_f32(d[g]);
        for (uint32_t b = 0; b < group / 32; b++) {
            const uint8_t *qb = q + (g * group + b * 32) / 2;
            float *yb = y + g * group + b * 32;
            for (int j = 0; j < 16; j++) {
                yb[j] = df * (float)((qb[j] & 0x0f) - 8);
                yb[j + 16] = df * (float)((qb[j] >> 4) - 8);
            }
        }
    }
}

/* Row-major codes to and from the 8-row tiles (QLM_CHUNK_OFFSET). */
void qlm_quant_pack_block(enum qlm_dtype t, uint64_t cols, uint32_t group, const void *q,
                          const uint16_t *d, unsigned nr, void *block)
{
    assert(qlm_dtype_is_quant(t) && nr >= 1 && nr <= QLM_QBLOCK_ROWS);
    unsigned bits = qlm_type_traits(t)->code_bits;
    size_t cb = QLM_CHUNK_BYTES(bits), row_bytes = (size_t)cols / 32 * cb;
    uint64_t ng = cols / group, nc = group / 32, tile = qlm_quant_tile_bytes(t, group);
    memset(block, 0, (size_t)qlm_quant_block_bytes(t, cols, group));
    for (uint64_t g = 0; g < ng; g++) {
        uint8_t *tp = (uint8_t *)block + g * tile;
        for (unsigned i = 0; i < nr; i++) {
            memcpy(tp + 2 * i, d + (size_t)i * ng + g, 2);
            for (uint64_t c = 0; c < nc; c++)
                memcpy(tp + QLM_CHUNK_OFFSET(bits, c, i),
                       (const uint8_t *)q + i * row_bytes + (g * nc + c) * cb, cb);
        }
    }
}

void qlm_quant_unpack_row(enum qlm_dtype t, uint64_t cols, uint32_t group, const void *block,
                          unsigned i, void *q, uint16_t *d)
{
    assert(qlm_dtype_is_quant(t) && i < QLM_QBLOCK_ROWS);
    unsigned bits = qlm_type_traits(t)->code_bits;
    size_t cb = QLM_CHUNK_BYTES(bits);
    uint64_t ng = cols / group, nc = group / 32, tile = qlm_quant_tile_bytes(t, group);
    for (uint64_t g = 0; g < ng; g++) {
        const uint8_t *tp = (const uint8_t *)block + g * tile;
        memcpy(d + g, tp + 2 * i, 2);
        for (uint64_t c = 0; c < nc; c++)
            memcpy((uint8_t *)q + (g * nc + c) * cb, tp + QLM_CHUNK_OFFSET(bits, c, i), cb);
    }
}
