/* check_quant.c — dtype conversion (bf16/f16 round-to-nearest-even, NaN,
 * inf, subnormals) and the reference q8/q4 codecs (error bound, zero group,
 * +-max, outliers, nibble layout), tensor byte sizes and the 8-row tile
 * layout of q8/q4 tensors (hand-built, packed, unpacked). */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qlm_format.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float fl(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* xorshift: reproducible data without depending on libc's rand() */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rndf(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd32() & 0xffffff) / 16777216.0f;
}

/* ---- bf16 ---------------------------------------------------------------- */

START_TEST(bf16_exact_and_rne)
{
    ck_assert_uint_eq(qlm_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(qlm_f32_to_bf16(-2.0f), 0xc000);
    /* halfway: ties go to the even neighbour */
    ck_assert_uint_eq(qlm_f32_to_bf16(fl(0x3f808000u)), 0x3f80);
    ck_assert_uint_eq(qlm_f32_to_bf16(fl(0x3f818000u)), 0x3f82);
    /* just above / below halfway */
    ck_assert_uint_eq(qlm_f32_to_bf16(fl(0x3f808001u)), 0x3f81);
    ck_assert_uint_eq(qlm_f32_to_bf16(fl(0x3f807fffu)), 0x3f80);
    /* carry into the exponent */
    ck_assert_uint_eq(qlm_f32_to_bf16(fl(0x3fffffffu)), 0x4000);
    /* largest finite rounds up to inf (RNE), inf stays inf */
    ck_assert_uint_eq(qlm_f32_to_bf16(fl(0x7f7fffffu)), 0x7f80);
    ck_assert_uint_eq(qlm_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(qlm_f32_to_bf16(-INFINITY), 0xff80);
    /* subnormals and signed zero */
    ck_assert_uint_eq(qlm_f32_to_bf16(fl(0x00010000u)), 0x0001);
    ck_assert_uint_eq(qlm_f32_to_bf16(-0.0f), 0x8000);
    ck_assert(qlm_bf16_to_f32(0x0001) == ldexpf(1.0f, -133));
}
END_TEST

START_TEST(bf16_nan_preserved)
{
    /* a NaN whose payload sits only in the low 16 bits must not become inf */
    uint16_t h = qlm_f32_to_bf16(fl(0x7f800001u));
    ck_assert(isnan(qlm_bf16_to_f32(h)));
    h = qlm_f32_to_bf16(fl(0xffc00000u));
    ck_assert(isnan(qlm_bf16_to_f32(h)));
    ck_assert_uint_eq(h >> 15, 1); /* sign kept */
    ck_assert(isnan(qlm_bf16_to_f32(0x7fc1)));
}
END_TEST

START_TEST(bf16_all_roundtrip)
{
    /* every non-NaN bf16 survives f32 and back bit-exactly */
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = qlm_bf16_to_f32((uint16_t)h);
        ck_assert_uint_eq(bits(f), h << 16);
        if (!isnan(f))
            ck_assert_uint_eq(qlm_f32_to_bf16(f), h);
    }
}
END_TEST

START_TEST(bf16_random_nearest)
{
    /* the result is a nearest bf16, and even on a tie */
    for (int i = 0; i < 200000; i++) {
        float x = fl(rnd32() << 1 >> 1 | (rnd32() & 1u) << 31);
        if (isnan(x) || isinf(x) || fabsf(x) > 3e38f)
            continue;
        uint16_t h = qlm_f32_to_bf16(x);
        double v = qlm_bf16_to_f32(h), e = fabs((double)x - v);
        double lo = qlm_bf16_to_f32((uint16_t)(h - 1)), hi = qlm_bf16_to_f32((uint16_t)(h + 1));
        if ((h & 0x7fff) != 0)
            ck_assert(e <= fabs((double)x - lo));
        if ((h & 0x7fff) < 0x7f7f)
            ck_assert(e <= fabs((double)x - hi));
        if (e == fabs((double)x - lo) || e == fabs((double)x - hi))
            ck_assert(e == 0 || (h & 1) == 0);
    }
}
END_TEST

/* ---- f16 ----------------------------------------------------------------- */

START_TEST(f16_edges)
{
    ck_assert_uint_eq(qlm_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(qlm_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(qlm_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(qlm_f32_to_f16(65519.0f), 0x7bff);
    ck_assert_uint_eq(qlm_f32_to_f16(65520.0f), 0x7c00); /* tie to even = inf */
    ck_assert_uint_eq(qlm_f32_to_f16(1e6f), 0x7c00);
    ck_assert_uint_eq(qlm_f32_to_f16(-1e30f), 0xfc00);
    ck_assert_uint_eq(qlm_f32_to_f16(INFINITY), 0x7c00);
    ck_assert_uint_eq(qlm_f32_to_f16(-INFINITY), 0xfc00);
    /* ties in the normal range */
    ck_assert_uint_eq(qlm_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
    ck_assert_uint_eq(qlm_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    ck_assert_uint_eq(qlm_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
    /* smallest normal, subnormals, underflow */
    ck_assert_uint_eq(qlm_f32_to_f16(ldexpf(1, -14)), 0x0400);
    ck_assert_uint_eq(qlm_f32_to_f16(ldexpf(1, -24)), 0x0001);
    ck_assert_uint_eq(qlm_f32_to_f16(ldexpf(1, -25)), 0x0000);          /* tie -> 0 */
    ck_assert_uint_eq(qlm_f32_to_f16(1.5f * ldexpf(1, -25)), 0x0001);
    ck_assert_uint_eq(qlm_f32_to_f16(3 * ldexpf(1, -25)), 0x0002);       /* tie 1.5 -> 2 */
    ck_assert_uint_eq(qlm_f32_to_f16(5 * ldexpf(1, -25)), 0x0002);       /* tie 2.5 -> 2 */
    ck_assert_uint_eq(qlm_f32_to_f16(ldexpf(1, -14) - ldexpf(1, -25)), 0x0400); /* to normal */
    ck_assert_uint_eq(qlm_f32_to_f16(-ldexpf(1, -30)), 0x8000);
    ck_assert(qlm_f16_to_f32(0x0001) == ldexpf(1, -24));
    ck_assert(qlm_f16_to_f32(0x03ff) == 1023 * ldexpf(1, -24));
    ck_assert(qlm_f16_to_f32(0x7bff) == 65504.0f);
    ck_assert(isinf(qlm_f16_to_f32(0xfc00)) && qlm_f16_to_f32(0xfc00) < 0);
}
END_TEST

START_TEST(f16_nan)
{
    uint16_t h = qlm_f32_to_f16(NAN);
    ck_assert_uint_eq(h & 0x7c00, 0x7c00);
    ck_assert_uint_ne(h & 0x03ff, 0);
    h = qlm_f32_to_f16(fl(0x7f800001u)); /* payload only in low bits */
    ck_assert(isnan(qlm_f16_to_f32(h)));
    ck_assert(isnan(qlm_f16_to_f32(0x7e00)));
    ck_assert(isnan(qlm_f16_to_f32(0xfc01)));
}
END_TEST

START_TEST(f16_all_roundtrip)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = qlm_f16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        ck_assert_uint_eq(qlm_f32_to_f16(f), h);
    }
}
END_TEST

START_TEST(f16_random_nearest)
{
    /* nearest f16 (and even on ties), checked against the neighbours */
    for (int i = 0; i < 200000; i++) {
        float x = rndf(-1.0f, 1.0f) * ldexpf(1, (int)(rnd32() % 44) - 28);
        uint16_t h = qlm_f32_to_f16(x);
        if ((h & 0x7fff) >= 0x7c00)
            continue;
        double v = qlm_f16_to_f32(h), e = fabs((double)x - v);
        uint16_t a = h & 0x7fff, s = h & 0x8000;
        if (a > 0)
            ck_assert(e <= fabs((double)x - qlm_f16_to_f32((uint16_t)(s | (a - 1)))));
        if (a < 0x7bff)
            ck_assert(e <= fabs((double)x - qlm_f16_to_f32((uint16_t)(s | (a + 1)))));
        if (a > 0 && e != 0 && e == fabs((double)x - qlm_f16_to_f32((uint16_t)(s | (a - 1)))))
            ck_assert((h & 1) == 0);
    }
}
END_TEST

START_TEST(rows_convert)
{
    uint16_t b[3] = {0x3f80, 0xc000, 0x0000}, f[3] = {0x3c00, 0xc000, 0x3555};
    float y[3];
    qlm_bf16_to_f32_row(b, y, 3);
    ck_assert(y[0] == 1.0f && y[1] == -2.0f && y[2] == 0.0f);
    qlm_f16_to_f32_row(f, y, 3);
    ck_assert(y[0] == 1.0f && y[1] == -2.0f);
    ck_assert(fabsf(y[2] - 1.0f / 3.0f) < 1e-3f);
}
END_TEST

/* ---- dtypes and sizes ------------------------------------------------------ */

START_TEST(dtype_names)
{
    const char *names[] = {"f32", "f16", "bf16", "q8", "q4"};
    for (int i = 0; i < QLM_DTYPE_COUNT; i++) {
        ck_assert_str_eq(qlm_dtype_name((enum qlm_dtype)i), names[i]);
        ck_assert_int_eq(qlm_dtype_from_name(names[i]), i);
    }
    ck_assert_int_eq(qlm_dtype_from_name("q5"), -1);
    ck_assert_int_eq(qlm_dtype_from_name(""), -1);
    ck_assert(qlm_dtype_is_quant(QLM_Q8) && qlm_dtype_is_quant(QLM_Q4));
    ck_assert(!qlm_dtype_is_quant(QLM_BF16));
    ck_assert_str_ne(qlm_strerror(QLM_E_CHECKSUM), qlm_strerror(QLM_E_IO));
}
END_TEST

START_TEST(tensor_bytes)
{
    uint64_t n;
    ck_assert(qlm_tensor_bytes(QLM_F32, 3, 5, 0, &n) && n == 60);
    ck_assert(qlm_tensor_bytes(QLM_BF16, 3, 5, 0, &n) && n == 30);
    ck_assert(qlm_tensor_bytes(QLM_F16, 0, 5, 0, &n) && n == 0);
    /* tiles: 16 scale bytes + 8 rows x group (q8) or x group/2 (q4) */
    ck_assert_uint_eq(qlm_quant_tile_bytes(QLM_Q8, 32), 16 + 256);
    ck_assert_uint_eq(qlm_quant_tile_bytes(QLM_Q8, 128), 16 + 1024);
    ck_assert_uint_eq(qlm_quant_tile_bytes(QLM_Q4, 32), 16 + 128);
    ck_assert_uint_eq(qlm_quant_tile_bytes(QLM_Q4, 64), 16 + 256);
    ck_assert_uint_eq(qlm_quant_block_bytes(QLM_Q8, 96, 32), 3 * 272);
    ck_assert_uint_eq(qlm_quant_block_bytes(QLM_Q4, 256, 64), 4 * 272);
    /* ceil(rows / 8) blocks of cols / group tiles: 3 rows pad to one block */
    ck_assert(qlm_tensor_bytes(QLM_Q8, 3, 64, 32, &n) && n == 2 * 272);
    ck_assert(qlm_tensor_bytes(QLM_Q4, 3, 64, 32, &n) && n == 2 * 144);
    ck_assert(qlm_tensor_bytes(QLM_Q8, 1, 96, 32, &n) && n == 3 * 272);
    ck_assert(qlm_tensor_bytes(QLM_Q8, 8, 64, 64, &n) && n == 528);
    ck_assert(qlm_tensor_bytes(QLM_Q8, 9, 64, 64, &n) && n == 2 * 528);
    ck_assert(qlm_tensor_bytes(QLM_Q4, 16, 256, 128, &n) && n == 2 * 2 * 528);
    ck_assert(qlm_tensor_bytes(QLM_Q4, 17, 256, 128, &n) && n == 3 * 2 * 528);
    ck_assert(qlm_tensor_bytes(QLM_Q8, 0, 64, 32, &n) && n == 0);
    /* the group must divide cols and be a multiple of 32, q8 as well as q4 */
    ck_assert(!qlm_tensor_bytes(QLM_Q8, 3, 48, 32, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q8, 3, 64, 0, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q4, 3, 48, 48, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q8, 3, 48, 48, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q8, 3, 64, 16, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q4, 3, 64, 16, &n));
    ck_assert(!qlm_tensor_bytes((enum qlm_dtype)9, 1, 1, 0, &n));
}
END_TEST

START_TEST(tensor_bytes_overflow)
{
    uint64_t n;
    ck_assert(!qlm_tensor_bytes(QLM_F32, UINT64_MAX / 2, 3, 0, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q8, UINT64_MAX / 32, 64, 32, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q4, UINT64_MAX, 64, 32, &n));
    /* the block count times the block size, right at the edge: q4 g32 one
     * tile of 144 bytes per block; 8 * (MAX / 144) rows fit, one block more not */
    uint64_t blocks = UINT64_MAX / 144;
    ck_assert(qlm_tensor_bytes(QLM_Q4, blocks * 8, 32, 32, &n) && n == blocks * 144);
    ck_assert(qlm_tensor_bytes(QLM_Q4, blocks * 8 - 7, 32, 32, &n) && n == blocks * 144);
    ck_assert(!qlm_tensor_bytes(QLM_Q4, blocks * 8 + 1, 32, 32, &n));
    /* one block too large by itself: cols / group tiles overflow */
    ck_assert_uint_eq(qlm_quant_block_bytes(QLM_Q8, 1ull << 63, 32), UINT64_MAX);
    ck_assert(!qlm_tensor_bytes(QLM_Q8, 1, 1ull << 63, 32, &n));
    ck_assert(!qlm_tensor_bytes(QLM_Q8, 9, 1ull << 63, 32, &n));
    /* the largest group: (2^32 - 32) x 8 quants per tile still fit */
    uint32_t g = UINT32_MAX - 31;
    ck_assert(qlm_tensor_bytes(QLM_Q8, 1, g, g, &n) && n == 16 + 8 * (uint64_t)g);
}
END_TEST

START_TEST(dtype_layout)
{
    ck_assert_uint_eq(QLM_QBLOCK_ROWS, 8);
    ck_assert_uint_eq(qlm_dtype_layout(QLM_F32), 0);
    ck_assert_uint_eq(qlm_dtype_layout(QLM_F16), 0);
    ck_assert_uint_eq(qlm_dtype_layout(QLM_BF16), 0);
    ck_assert_uint_eq(qlm_dtype_layout(QLM_Q8), QLM_QBLOCK_ROWS);
    ck_assert_uint_eq(qlm_dtype_layout(QLM_Q4), QLM_QBLOCK_ROWS);
}
END_TEST

/* ---- codecs ----------------------------------------------------------------- */

static const uint32_t groups[] = {32, 64, 128};

/* |x - deq(q(x))| <= d/2 for the stored (f16) scale d (up to float
 * rounding of x/d), d being the f16 of amax / qmax; for subnormal scales d
 * may be one f16 step above, so that amax never clamps. */
static void check_bound(const float *x, size_t n, uint32_t g, bool q4)
{
    int8_t q8[512];
    uint8_t q4b[256];
    uint16_t d[16];
    float y[512];
    float qmax = q4 ? 7.0f : 127.0f;
    if (q4) {
        qlm_quantize_row_q4(x, n, g, q4b, d);
        qlm_dequantize_row_q4(q4b, d, n, g, y);
    } else {
        qlm_quantize_row_q8(x, n, g, q8, d);
        qlm_dequantize_row_q8(q8, d, n, g, y);
    }
    for (size_t gi = 0; gi < n / g; gi++) {
        float amax = 0;
        for (size_t i = 0; i < g; i++)
            amax = fmaxf(amax, fabsf(x[gi * g + i]));
        float df = qlm_f16_to_f32(d[gi]);
        uint16_t nearest = qlm_f32_to_f16(amax / qmax);
        /* the f16 nearest amax/qmax; one step up only for a subnormal scale */
        ck_assert(d[gi] == nearest || (d[gi] == nearest + 1 && nearest < 0x0400));
        for (size_t i = 0; i < g; i++) {
            float e = fabsf(x[gi * g + i] - y[gi * g + i]);
            ck_assert_msg(e <= df * 0.5f * (1 + 1e-6f), "g %u elem %zu err %g d %g", g,
                          gi * g + i, (double)e, (double)df);
        }
    }
}

START_TEST(codec_random_bound)
{
    float x[512];
    for (int rep = 0; rep < 50; rep++)
        for (size_t gi = 0; gi < 3; gi++) {
            float scale = ldexpf(1, (int)(rnd32() % 30) - 24); /* subnormal scales too */
            for (int i = 0; i < 512; i++)
                x[i] = rndf(-1, 1) * scale;
            check_bound(x, 512, groups[gi], false);
            check_bound(x, 512, groups[gi], true);
        }
}
END_TEST

START_TEST(codec_matches_spec)
{
    /* q = clamp(roundf(x / d)) with d the stored f16 scale, element by element */
    float x[256];
    int8_t q8[256];
    uint8_t q4[128];
    uint16_t d[8];
    for (int rep = 0; rep < 200; rep++) {
        uint32_t g = groups[rep % 3];
        for (int i = 0; i < 256; i++)
            x[i] = rndf(-1, 1) * ldexpf(1, (int)(rnd32() % 12) - 6);
        if (rep % 7 == 0) /* amax 127 so d = 1 (q8), and exact halves: ties */
            for (int i = 0; i < 256; i++)
                x[i] = i % 32 == 0 ? 127.0f : (float)((int)(rnd32() % 509) - 254) * 0.5f;
        qlm_quantize_row_q8(x, 256, g, q8, d);
        for (int i = 0; i < 256; i++) {
            float df = qlm_f16_to_f32(d[i / g]);
            float r = df > 0 ? fminf(fmaxf(roundf(x[i] / df), -127), 127) : 0;
            ck_assert_int_eq(q8[i], (int)r);
        }
        qlm_quantize_row_q4(x, 256, g, q4, d);
        for (int i = 0; i < 256; i++) {
            float df = qlm_f16_to_f32(d[i / g]);
            float r = df > 0 ? fminf(fmaxf(roundf(x[i] / df), -8), 7) : 0;
            int b = i / 32, j = i % 32;
            int n = j < 16 ? q4[b * 16 + j] & 15 : q4[b * 16 + j - 16] >> 4;
            ck_assert_int_eq(n - 8, (int)r);
        }
    }
}
END_TEST

START_TEST(codec_zero_group)
{
    float x[64] = {0}, y[64];
    int8_t q[64];
    uint8_t q4[32];
    uint16_t d[2] = {0x1234, 0x1234};
    for (int i = 32; i < 64; i++)
        x[i] = (float)(i - 48);
    qlm_quantize_row_q8(x, 64, 32, q, d);
    ck_assert_uint_eq(d[0], 0);
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(q[i], 0);
    qlm_dequantize_row_q8(q, d, 64, 32, y);
    for (int i = 0; i < 32; i++)
        ck_assert(y[i] == 0.0f);
    qlm_quantize_row_q4(x, 64, 32, q4, d);
    ck_assert_uint_eq(d[0], 0);
    for (int i = 0; i < 16; i++)
        ck_assert_uint_eq(q4[i], 0x88); /* n = q + 8 */
    qlm_dequantize_row_q4(q4, d, 64, 32, y);
    for (int i = 0; i < 64; i++)
        ck_assert(!isnan(y[i]));
    for (int i = 0; i < 32; i++)
        ck_assert(y[i] == 0.0f);
    /* a tiny group whose scale underflows f16: smallest subnormal scale, the
     * values round to 0 within d/2, and nothing is NaN */
    for (int i = 0; i < 32; i++)
        x[i] = 1e-30f;
    qlm_quantize_row_q8(x, 32, 32, q, d);
    ck_assert_uint_eq(d[0], 1);
    ck_assert_int_eq(q[0], 0);
    qlm_dequantize_row_q8(q, d, 32, 32, y);
    ck_assert(y[0] == 0.0f);
}
END_TEST

START_TEST(codec_plus_minus_max)
{
    for (size_t gi = 0; gi < 3; gi++) {
        uint32_t g = groups[gi];
        float x[128], y[128];
        int8_t q[128];
        uint8_t q4[64];
        uint16_t d[4];
        for (uint32_t i = 0; i < g; i++)
            x[i] = (i & 1) ? -3.5f : 3.5f;
        qlm_quantize_row_q8(x, g, g, q, d);
        for (uint32_t i = 0; i < g; i++)
            ck_assert_int_eq(q[i], (i & 1) ? -127 : 127);
        qlm_dequantize_row_q8(q, d, g, g, y);
        ck_assert(fabsf(y[0] - 3.5f) <= 3.5f / 127 / 2);
        qlm_quantize_row_q4(x, g, g, q4, d);
        /* element j (low) and j+16 (high) of each 32-block: +7 -> 15, -7 -> 1 */
        for (uint32_t b = 0; b < g / 32; b++)
            for (int j = 0; j < 16; j++) {
                int lo = (j & 1) ? 1 : 15, hi = ((j + 16) & 1) ? 1 : 15;
                ck_assert_uint_eq(q4[b * 16 + j], (unsigned)(lo | hi << 4));
            }
        qlm_dequantize_row_q4(q4, d, g, g, y);
        for (uint32_t i = 0; i < g; i++)
            ck_assert(fabsf(y[i] - x[i]) <= qlm_f16_to_f32(d[0]) * 0.5f);
    }
}
END_TEST

START_TEST(codec_outlier)
{
    float x[128];
    for (int i = 0; i < 128; i++)
        x[i] = rndf(-0.01f, 0.01f);
    x[77] = 100.0f;
    for (size_t gi = 0; gi < 3; gi++) {
        check_bound(x, 128, groups[gi], false);
        check_bound(x, 128, groups[gi], true);
    }
    /* the outlier itself is reconstructed closely; its neighbours go to 0 in q4 */
    uint8_t q4[64];
    uint16_t d[4];
    float y[128];
    qlm_quantize_row_q4(x, 128, 128, q4, d);
    qlm_dequantize_row_q4(q4, d, 128, 128, y);
    ck_assert(fabsf(y[77] - 100.0f) <= 100.0f / 7 / 2);
    ck_assert(y[0] == 0.0f);
}
END_TEST

START_TEST(codec_q4_layout)
{
    /* integer data with amax 7: d = 1 exactly, so quants = values */
    float x[64];
    uint8_t q[32];
    uint16_t d[2];
    for (int i = 0; i < 64; i++)
        x[i] = (float)((i * 5) % 15 - 7);
    x[0] = 7;
    x[32] = -7;
    qlm_quantize_row_q4(x, 64, 32, q, d);
    ck_assert_uint_eq(d[0], 0x3c00);
    ck_assert_uint_eq(d[1], 0x3c00);
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < 16; j++) {
            unsigned lo = (unsigned)(x[b * 32 + j] + 8), hi = (unsigned)(x[b * 32 + j + 16] + 8);
            ck_assert_uint_eq(q[b * 16 + j], lo | hi << 4);
        }
    /* q8 with amax 127: d = 1, q = x */
    int8_t q8[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)((i * 37) % 255 - 127);
    qlm_quantize_row_q8(x, 64, 64, q8, d);
    ck_assert_uint_eq(d[0], 0x3c00);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(q8[i], (int)x[i]);
}
END_TEST

START_TEST(codec_huge_no_nan)
{
    /* amax / 127 past the f16 range: the scale clamps, nothing becomes NaN */
    float x[32], y[32];
    int8_t q[32];
    uint16_t d[1];
    for (int i = 0; i < 32; i++)
        x[i] = (i & 1) ? 1e30f : -1e30f;
    qlm_quantize_row_q8(x, 32, 32, q, d);
    ck_assert_uint_eq(d[0], 0x7bff);
    qlm_dequantize_row_q8(q, d, 32, 32, y);
    for (int i = 0; i < 32; i++)
        ck_assert(isfinite(y[i]));
}
END_TEST

/* Byte offset of the tile holding group g of row r in a q8/q4 tensor of
 * cols columns, written out from the TENSOR DATA comment in qlm_format.h
 * rather than taken from quant_ref.c: blocks of 8 rows, each cols / group
 * tiles of 16 + 8 * group (q8) or 16 + 4 * group (q4) bytes. */
static size_t tile_at(enum qlm_dtype t, size_t cols, uint32_t group, size_t r, size_t g)
{
    size_t tile = 16 + 8 * (size_t)(t == QLM_Q8 ? group : group / 2);
    return (r / 8 * (cols / group) + g) * tile;
}

/* Quantize rows x cols floats row by row with the codecs: q row-major
 * (cols or cols/2 bytes a row), d rows x cols/group scales. */
static void quantize_rows(enum qlm_dtype t, const float *x, size_t rows, size_t cols,
                          uint32_t group, uint8_t *q, uint16_t *d)
{
    size_t rb = t == QLM_Q8 ? cols : cols / 2;
    for (size_t r = 0; r < rows; r++) {
        if (t == QLM_Q8)
            qlm_quantize_row_q8(x + r * cols, cols, group, (int8_t *)(q + r * rb),
                                d + r * (cols / group));
        else
            qlm_quantize_row_q4(x + r * cols, cols, group, q + r * rb, d + r * (cols / group));
    }
}

START_TEST(dequantize_row_tensor)
{
    /* an 11 x 128 tensor (a full block and a padded one) placed by hand where
     * the header comment says, read back through qlm_dequantize_row */
    enum { R = 11, C = 128 };
    float x[R * C], y[C], want[C];
    uint8_t q[R * C];
    uint16_t d[R * C / 32];
    for (int i = 0; i < R * C; i++)
        x[i] = rndf(-2, 2) * (float)(1 + i % 7);
    for (int qi = 0; qi < 2; qi++)
        for (size_t gi = 0; gi < 3; gi++) {
            enum qlm_dtype t = qi ? QLM_Q4 : QLM_Q8;
            uint32_t g = groups[gi];
            size_t ng = C / g, cb = t == QLM_Q8 ? 32 : 16, rb = C / 32 * cb;
            uint64_t size;
            ck_assert(qlm_tensor_bytes(t, R, C, g, &size));
            ck_assert_uint_eq(size, tile_at(t, C, g, 2 * 8, 0)); /* two blocks */
            quantize_rows(t, x, R, C, g, q, d);
            uint8_t *buf = calloc(1, size);
            for (size_t r = 0; r < R; r++)
                for (size_t gr = 0; gr < ng; gr++) {
                    uint8_t *tile = buf + tile_at(t, C, g, r, gr);
                    memcpy(tile + 2 * (r % 8), &d[r * ng + gr], 2);
                    for (size_t c = 0; c < g / 32; c++)
                        memcpy(tile + 16 + (c * 8 + r % 8) * cb,
                               q + r * rb + (gr * g / 32 + c) * cb, cb);
                }
            for (size_t r = 0; r < R; r++) {
                qlm_dequantize_row(t, buf, R, C, g, r, y);
                if (t == QLM_Q8)
                    qlm_dequantize_row_q8((const int8_t *)(q + r * rb), d + r * ng, C, g, want);
                else
                    qlm_dequantize_row_q4(q + r * rb, d + r * ng, C, g, want);
                for (int i = 0; i < C; i++) {
                    ck_assert_msg(bits(y[i]) == bits(want[i]), "%s g%u row %zu elem %d",
                                  qlm_dtype_name(t), g, r, i);
                    ck_assert(fabsf(y[i] - x[r * C + i]) <=
                              qlm_f16_to_f32(d[r * ng + (size_t)i / g]) * 0.5f * (1 + 1e-6f));
                }
            }
            /* the packer lays out the same bytes, padding rows zero */
            uint64_t bb = qlm_quant_block_bytes(t, C, g);
            uint8_t *packed = malloc(size);
            memset(packed, 0xa5, size);
            qlm_quant_pack_block(t, C, g, q, d, 8, packed);
            qlm_quant_pack_block(t, C, g, q + 8 * rb, d + 8 * ng, R - 8, packed + bb);
            ck_assert(memcmp(packed, buf, size) == 0);
            free(packed);
            free(buf);
        }
    uint16_t bf[6] = {0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0};
    qlm_dequantize_row(QLM_BF16, bf, 2, 3, 0, 1, y);
    ck_assert(y[0] == 4.0f && y[1] == 5.0f && y[2] == 6.0f);
    float f[4] = {1, 2, 3, 4};
    qlm_dequantize_row(QLM_F32, f, 2, 2, 0, 1, y);
    ck_assert(y[0] == 3.0f && y[1] == 4.0f);
}
END_TEST

START_TEST(pack_unpack_block)
{
    /* nr rows of 256 columns (8 groups of 32 .. 2 of 128) into one block and
     * back: rows < nr come back as given, rows >= nr are zero in the block */
    enum { C = 256, GUARD = 64 };
    float x[8 * C];
    uint8_t q[8 * C], uq[C];
    uint16_t d[8 * C / 32], ud[C / 32];
    for (int qi = 0; qi < 2; qi++)
        for (size_t gi = 0; gi < 3; gi++)
            for (unsigned nr = 1; nr <= 8; nr++) {
                enum qlm_dtype t = qi ? QLM_Q4 : QLM_Q8;
                uint32_t g = groups[gi];
                size_t ng = C / g, cb = t == QLM_Q8 ? 32 : 16, rb = C / 32 * cb;
                size_t tile = 16 + 8 * (size_t)(t == QLM_Q8 ? g : g / 2);
                uint64_t bb = qlm_quant_block_bytes(t, C, g);
                ck_assert_uint_eq(bb, ng * tile);
                for (int i = 0; i < 8 * C; i++)
                    x[i] = rndf(-1, 1) * ldexpf(1, (int)(rnd32() % 8) - 4);
                quantize_rows(t, x, nr, C, g, q, d);
                uint8_t *block = malloc(bb + GUARD);
                memset(block, 0xa5, bb + GUARD);
                qlm_quant_pack_block(t, C, g, q, d, nr, block);
                for (size_t i = bb; i < bb + GUARD; i++)
                    ck_assert_uint_eq(block[i], 0xa5);
                for (unsigned i = 0; i < 8; i++) {
                    memset(uq, 0x5a, sizeof uq);
                    memset(ud, 0x5a, sizeof ud);
                    qlm_quant_unpack_row(t, C, g, block, i, uq, ud);
                    if (i < nr) {
                        ck_assert_msg(memcmp(uq, q + i * rb, rb) == 0, "%s g%u nr %u row %u",
                                      qlm_dtype_name(t), g, nr, i);
                        ck_assert(memcmp(ud, d + i * ng, ng * 2) == 0);
                    } else {
                        for (size_t k = 0; k < rb; k++)
                            ck_assert_uint_eq(uq[k], 0);
                        for (size_t k = 0; k < ng; k++)
                            ck_assert_uint_eq(ud[k], 0);
                    }
                    /* exactly one row's bytes written (q4 rows, g > 32 scales) */
                    if (rb < sizeof uq)
                        ck_assert_uint_eq(uq[rb], 0x5a);
                    if (ng < sizeof ud / 2)
                        ck_assert_uint_eq(ud[ng], 0x5a5a);
                }
                /* padding rows' bytes in the block itself: scale and chunks zero */
                for (size_t gr = 0; gr < ng; gr++)
                    for (unsigned i = nr; i < 8; i++) {
                        const uint8_t *tl = block + gr * tile;
                        ck_assert(tl[2 * i] == 0 && tl[2 * i + 1] == 0);
                        for (size_t c = 0; c < g / 32; c++)
                            for (size_t k = 0; k < cb; k++)
                                ck_assert_uint_eq(tl[16 + (c * 8 + i) * cb + k], 0);
                    }
                free(block);
            }
}
END_TEST

static Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *c = tcase_create("convert");
    tcase_add_test(c, bf16_exact_and_rne);
    tcase_add_test(c, bf16_nan_preserved);
    tcase_add_test(c, bf16_all_roundtrip);
    tcase_add_test(c, bf16_random_nearest);
    tcase_add_test(c, f16_edges);
    tcase_add_test(c, f16_nan);
    tcase_add_test(c, f16_all_roundtrip);
    tcase_add_test(c, f16_random_nearest);
    tcase_add_test(c, rows_convert);
    tcase_add_test(c, dtype_names);
    tcase_add_test(c, tensor_bytes);
    tcase_add_test(c, tensor_bytes_overflow);
    tcase_add_test(c, dtype_layout);
    suite_add_tcase(s, c);
    c = tcase_create("codec");
    tcase_add_test(c, codec_random_bound);
    tcase_add_test(c, codec_matches_spec);
    tcase_add_test(c, codec_zero_group);
    tcase_add_test(c, codec_plus_minus_max);
    tcase_add_test(c, codec_outlier);
    tcase_add_test(c, codec_q4_layout);
    tcase_add_test(c, codec_huge_no_nan);
    tcase_add_test(c, dequantize_row_tensor);
    tcase_add_test(c, pack_unpack_block);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(quant_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
