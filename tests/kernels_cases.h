/*
 * kernels_cases.h — the kernel comparisons shared by check_kernels.c (Check,
 * native) and kernels_neon_main.c (plain C, cross-built and run under qemu).
 * Before including it, define KT_ASSERT(cond, fmt, ...) and provide
 *   static const struct qlm_isa_kernels *isas[]; static int n_isas;
 * with the tables to compare against qlm_kernels_scalar.
 *
 * What is checked:
 *   - quantize_act is bit-identical to the scalar one (half-to-even ties,
 *     zero/tiny/huge/NaN/inf groups);
 *   - gemm_q8/gemm_q4 equal the scalar result exactly when every scale is 1
 *     (the float result is then an exact integer sum, so this checks the
 *     int32 group sums), and within 1e-5 of the terms' magnitude with random
 *     scales; the scalar result is also checked against an independent
 *     double-precision sum computed here;
 *   - gemm_f32/f16/bf16 and wsum_f32/f16 agree with an exact sum within
 *     float rounding, softmax_f32 and silu_mul_f32 with double references;
 *   - nothing outside rows [r0, r1) x nt tokens of y is written.
 * Shapes cover odd group counts, row counts that are not multiples of the row
 * block, nt = 1, 2, 3, 5, 17, r0 > 0 and ldy > rows.
 */
#ifndef QLM_KERNELS_CASES_H
#define QLM_KERNELS_CASES_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

/* ---- deterministic random data ---------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

static int rnd_int(int lo, int hi) /* inclusive */
{
    return lo + (int)(rnd() % (uint32_t)(hi - lo + 1));
}

static float rnd_float(void) /* [-1, 1) */
{
    return (float)((double)rnd() / 1073741824.0 - 1.0);
}

/* f16 and bf16 bit patterns of moderate magnitude, built directly so the
 * test needs no converter; the values are decoded here independently. */
static uint16_t rnd_f16(int emin, int emax)
{
    return (uint16_t)((rnd() & 1) << 15 | (uint32_t)rnd_int(emin, emax) << 10 | (rnd() & 0x3ff));
}

static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static uint16_t rnd_bf16(void)
{
    return (uint16_t)((rnd() & 1) << 15 | (uint32_t)rnd_int(120, 130) << 7 | (rnd() & 0x7f));
}

static double bf16_value(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    KT_ASSERT(p != NULL, "out of memory");
    return p;
}

/* ---- quantized GEMM cases ---------------------------------------------- */

enum qmode { Q_RANDOM, Q_ZERO_GROUPS, Q_EXTREME_SIGNS, Q_EXTREME_SAME };

struct qcase {
    int bits;                   /* 8 or 4 */
    int rows, n, group, r0, r1, nt, ldy;
    enum qmode mode;
    bool unit_scales;
};

static int q4_value(const uint8_t *row, int k)
{
    uint8_t b = row[(k / 32) * 16 + (k % 32) % 16];
    return ((k % 32) < 16 ? (b & 15) : (b >> 4)) - 8;
}

static void run_qcase(const struct qcase *c)
{
    const int ng = c->n / c->group;
    const size_t row_bytes = c->bits == 8 ? (size_t)c->n : (size_t)c->n / 2;
    uint8_t *wq = xmalloc(row_bytes * c->rows);
    uint16_t *wd = xmalloc(sizeof *wd * c->rows * ng);
    int8_t *xq = xmalloc((size_t)c->nt * c->n);
    float *xd = xmalloc(sizeof *xd * c->nt * ng);
    size_t ysz = (size_t)c->nt * c->ldy;
    float *yref = xmalloc(sizeof(float) * ysz), *y = xmalloc(sizeof(float) * ysz);

    /* weights: values in [-127, 127] (q8) or nibbles (q4) */
    for (int r = 0; r < c->rows; r++) {
        uint8_t *row = wq + (size_t)r * row_bytes;
        for (size_t j = 0; j < row_bytes; j++) {
            int v;
            switch (c->mode) {
            case Q_EXTREME_SIGNS:
                v = c->bits == 8 ? ((rnd() & 1) ? 127 : -127) : ((rnd() & 1) ? 0xf0 : 0x0f);
                break;
            case Q_EXTREME_SAME:
                v = c->bits == 8 ? -127 : 0x00; /* q4: every weight is -8 */
                break;
            default:
                v = c->bits == 8 ? rnd_int(-127, 127) : (int)(rnd() & 0xff);
            }
            row[j] = (uint8_t)v;
        }
        if (c->mode == Q_ZERO_GROUPS && (r % 3) == 0) { /* a zero group (q4: nibble 8) */
            int g = r % ng;
            memset(row + (size_t)g * c->group * row_bytes / c->n, c->bits == 8 ? 0 : 0x88,
                   (size_t)c->group * row_bytes / c->n);
        }
        for (int g = 0; g < ng; g++)
            wd[(size_t)r * ng + g] = c->unit_scales ? 0x3c00 : rnd_f16(5, 20);
    }
    for (int t = 0; t < c->nt; t++) {
        for (int k = 0; k < c->n; k++) {
            int v;
            switch (c->mode) {
            case Q_EXTREME_SIGNS:
                v = (rnd() & 1) ? 127 : -127;
                break;
            case Q_EXTREME_SAME:
                v = -127;
                break;
            default:
                v = rnd_int(-127, 127);
            }
            xq[(size_t)t * c->n + k] = (int8_t)v;
        }
        if (c->mode == Q_ZERO_GROUPS)
            memset(xq + (size_t)t * c->n + (size_t)(t % ng) * c->group, 0, (size_t)c->group);
        for (int g = 0; g < ng; g++)
            xd[(size_t)t * ng + g] = c->unit_scales ? 1.0f : fabsf(rnd_float()) + 0.01f;
    }

    /* the file's layout: 8-row blocks of interleaved tiles, built by the
     * format library's packer from the row-major arrays the sums below read */
    const int nblocks = (c->rows + QLM_QBLOCK_ROWS - 1) / QLM_QBLOCK_ROWS;
    const enum qlm_dtype qt = c->bits == 8 ? QLM_Q8 : QLM_Q4;
    const size_t bb = (size_t)qlm_quant_block_bytes(qt, (uint64_t)c->n, (uint32_t)c->group);
    uint8_t *tiles = xmalloc(bb * (size_t)nblocks);
    for (int b = 0; b < nblocks; b++) {
        int r = b * QLM_QBLOCK_ROWS, nr = c->rows - r < 8 ? c->rows - r : 8;
        qlm_quant_pack_block(qt, (uint64_t)c->n, (uint32_t)c->group, wq + (size_t)r * row_bytes,
                             wd + (size_t)r * ng, (unsigned)nr, tiles + (size_t)b * bb);
    }

    /* sentinel everywhere; only rows [r0, r1) of the nt token rows may change */
    for (size_t i = 0; i < ysz; i++)
        yref[i] = -12345.5f;
    qlm_gemm_q_fn ref = c->bits == 8 ? qlm_kernels_scalar.gemm_q8 : qlm_kernels_scalar.gemm_q4;
    ref(c->n, c->group, tiles, c->r0, c->r1, xq, xd, c->nt, yref, c->ldy);

    /* the scalar oracle itself against an independent double sum */
    for (int t = 0; t < c->nt; t++)
        for (int r = c->r0; r < c->r1; r++) {
            const uint8_t *row = wq + (size_t)r * row_bytes;
            double sum = 0, mag = 0;
            for (int g = 0; g < ng; g++) {
                long long is = 0;
                for (int k = g * c->group; k < (g + 1) * c->group; k++) {
                    int w = c->bits == 8 ? (int8_t)row[k] : q4_value(row, k);
                    is += (long long)w * xq[(size_t)t * c->n + k];
                }
                double term = (double)is * f16_value(wd[(size_t)r * ng + g]) *
                              xd[(size_t)t * ng + g];
                sum += term;
                mag += fabs(term);
            }
            float got = yref[(size_t)t * c->ldy + r];
            KT_ASSERT(fabs(got - sum) <= 1e-5 * mag + 1e-30,
                          "scalar q%d row %d tok %d: %g vs exact %g", c->bits, r, t, got, sum);
        }

    for (int i = 0; i < n_isas; i++) {
        const struct qlm_isa_kernels *k = isas[i];
        qlm_gemm_q_fn fn = c->bits == 8 ? k->gemm_q8 : k->gemm_q4;
        if (fn == NULL)
            continue;
        for (size_t j = 0; j < ysz; j++)
            y[j] = -12345.5f;
        fn(c->n, c->group, tiles, c->r0, c->r1, xq, xd, c->nt, y, c->ldy);
        for (int t = 0; t < c->nt; t++)
            for (int r = 0; r < c->ldy; r++) {
                size_t at = (size_t)t * c->ldy + r;
                float want = yref[at], got = y[at];
                if (r < c->r0 || r >= c->r1) {
                    KT_ASSERT(got == -12345.5f, "%s q%d wrote outside its rows (row %d tok %d)",
                                  k->name, c->bits, r, t);
                    continue;
                }
                if (c->unit_scales) {
                    KT_ASSERT(got == want,
                                  "%s q%d rows=%d n=%d group=%d nt=%d mode=%d: row %d tok %d: "
                                  "%.9g != scalar %.9g",
                                  k->name, c->bits, c->rows, c->n, c->group, c->nt, c->mode, r, t,
                                  got, want);
                } else {
                    /* magnitude of the terms, for cancellation-safe tolerance */
                    const uint8_t *row = wq + (size_t)r * row_bytes;
                    double mag = 0;
                    for (int g = 0; g < ng; g++) {
                        long long is = 0;
                        for (int kk = g * c->group; kk < (g + 1) * c->group; kk++) {
                            int w = c->bits == 8 ? (int8_t)row[kk] : q4_value(row, kk);
                            is += (long long)w * xq[(size_t)t * c->n + kk];
                        }
                        mag += fabs((double)is * f16_value(wd[(size_t)r * ng + g]) *
                                    xd[(size_t)t * ng + g]);
                    }
                    KT_ASSERT(fabsf(got - want) <= 1e-5 * fmax(fabs(want), mag) + 1e-30,
                                  "%s q%d rows=%d n=%d group=%d nt=%d: row %d tok %d: %.9g vs "
                                  "scalar %.9g",
                                  k->name, c->bits, c->rows, c->n, c->group, c->nt, r, t, got,
                                  want);
                }
            }
        /* tokens beyond nt: the buffer ends at nt * ldy, ASan checks that */
    }
    free(tiles);
    free(wq);
    free(wd);
    free(xq);
    free(xd);
    free(yref);
    free(y);
}

static void q_sweep(int bits, bool unit_scales)
{
    static const int groups[] = { 32, 64, 128 };
    static const int ks[] = { 1, 3, 5 };
    static const int rows_list[] = { 1, 3, 4, 5, 8, 9, 13, 16, 21 };
    static const int nts[] = { 1, 2, 3, 5, 17 };
    rng_state = (uint64_t)bits * 1000 + unit_scales;
    for (size_t gi = 0; gi < 3; gi++)
        for (size_t ki = 0; ki < 3; ki++)
            for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++)
                for (size_t ti = 0; ti < sizeof nts / sizeof nts[0]; ti++) {
                    int rows = rows_list[ri];
                    struct qcase c = {
                        .bits = bits, .rows = rows, .n = groups[gi] * ks[ki],
                        .group = groups[gi], .r0 = 0, .r1 = rows, .nt = nts[ti],
                        .ldy = rows, .mode = (enum qmode)((ri + ti) % 4),
                        .unit_scales = unit_scales,
                    };
                    if ((ri + ti + ki) % 3 == 1) { /* r0 > 0 (a block start) and a wider y */
                        c.r0 = rows > QLM_QBLOCK_ROWS ? QLM_QBLOCK_ROWS : 0;
                        c.r1 = rows - rows / 4;
                        c.ldy = rows + 3;
                    }
                    run_qcase(&c);
                }
}

static void test_gemm_q8_exact(void) { q_sweep(8, true); }

static void test_gemm_q8_scaled(void) { q_sweep(8, false); }

static void test_gemm_q4_exact(void) { q_sweep(4, true); }

static void test_gemm_q4_scaled(void) { q_sweep(4, false); }

/* Every mode at the largest group and Qwen3-like sizes, exact. */
static void test_gemm_q_extremes(void)
{
    rng_state = 7;
    for (int bits = 4; bits <= 8; bits += 4)
        for (int mode = 0; mode < 4; mode++)
            for (int nt = 1; nt <= 3; nt++) {
                struct qcase c = { .bits = bits, .rows = 19, .n = 1024, .group = 128, .r0 = 8,
                                   .r1 = 19, .nt = nt, .ldy = 21, .mode = (enum qmode)mode,
                                   .unit_scales = true };
                run_qcase(&c);
                c.group = 32;
                c.n = 32 * 33;
                c.unit_scales = false;
                run_qcase(&c);
            }
}

/* ---- activation quantization ------------------------------------------- */

static void check_quant(int nt, int n, int group, const float *x)
{
    int ng = n / group;
    int8_t *qr = xmalloc((size_t)nt * n), *q = xmalloc((size_t)nt * n);
    float *dr = xmalloc(sizeof(float) * nt * ng), *d = xmalloc(sizeof(float) * nt * ng);
    qlm_kernels_scalar.quantize_act(x, nt, n, group, qr, dr);
    /* the oracle: |q| <= 127, and q * d within half a step of x for finite groups */
    for (int t = 0; t < nt; t++)
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)t * n + k;
            float dd = dr[(size_t)t * ng + k / group];
            KT_ASSERT(abs(qr[i]) <= 127, "scalar quantize_act: |q| > 127");
            if (isfinite(dd) && dd > 1e-30f && isfinite(x[i]))
                KT_ASSERT(fabsf(qr[i] * dd - x[i]) <= 0.5001f * dd,
                              "scalar quantize_act: x=%g q=%d d=%g", x[i], qr[i], dd);
        }
    for (int i = 0; i < n_isas; i++) {
        if (isas[i]->quantize_act == NULL)
            continue;
        memset(q, 0x55, (size_t)nt * n);
        isas[i]->quantize_act(x, nt, n, group, q, d);
        for (size_t j = 0; j < (size_t)nt * n; j++)
            KT_ASSERT(q[j] == qr[j], "%s quantize_act n=%d group=%d: q[%zu] = %d, scalar %d "
                          "(x = %.9g)", isas[i]->name, n, group, j, q[j], qr[j], x[j]);
        KT_ASSERT(memcmp(d, dr, sizeof(float) * nt * ng) == 0,
                      "%s quantize_act: scales differ from scalar", isas[i]->name);
    }
    free(qr);
    free(q);
    free(dr);
    free(d);
}

static void test_quantize_act(void)
{
    rng_state = 11;
    static const int groups[] = { 32, 64, 128 };
    for (int gi = 0; gi < 3; gi++)
        for (int k = 1; k <= 5; k += 2)
            for (int nt = 1; nt <= 3; nt++) {
                int group = groups[gi], n = group * k;
                float *x = xmalloc(sizeof(float) * nt * n);
                for (int i = 0; i < nt * n; i++)
                    x[i] = rnd_float() * (float)(1 << (i % 7));
                /* group 0 of token 0 all zero; last group of the last token:
                 * amax 127 so d == 1 and exact .5 ties (half to even) */
                memset(x, 0, sizeof(float) * group);
                float *tie = x + (size_t)nt * n - group;
                for (int j = 0; j < group; j++)
                    tie[j] = (float)(j - group / 2) + 0.5f;
                tie[0] = 127.0f;
                check_quant(nt, n, group, x);
                free(x);
            }
}

static void test_quantize_act_edges(void)
{
    const int group = 32, n = 32 * 6;
    float x[32 * 6];
    rng_state = 12;
    for (int i = 0; i < n; i++)
        x[i] = rnd_float();
    x[3] = NAN;                  /* group 0: a NaN among normal values */
    for (int j = 32; j < 64; j++) /* group 1: tiny values, d is subnormal */
        x[j] = rnd_float() * 1e-38f;
    x[70] = INFINITY;            /* group 2: an infinity */
    for (int j = 96; j < 128; j++) /* group 3: huge values */
        x[j] = rnd_float() * 3e38f;
    for (int j = 128; j < 160; j++) /* group 4: -0.0 and 0 only */
        x[j] = (j & 1) ? -0.0f : 0.0f;
    for (int j = 160; j < 192; j++) /* group 5: +-amax and ties around it */
        x[j] = (j & 1) ? -1.0f : (float)(j - 176) / 127.0f * 1.0f;
    check_quant(1, n, group, x);
}

/* ---- float GEMMs ------------------------------------------------------- */

static void run_fcase(int kind, int rows, int n, int r0, int r1, int nt, int ldy)
{
    size_t esz = kind == 0 ? 4 : 2;
    void *w = xmalloc(esz * rows * n);
    float *x = xmalloc(sizeof(float) * nt * n);
    size_t ysz = (size_t)nt * ldy;
    float *yref = xmalloc(sizeof(float) * ysz), *y = xmalloc(sizeof(float) * ysz);
    for (size_t i = 0; i < (size_t)rows * n; i++) {
        if (kind == 0)
            ((float *)w)[i] = rnd_float();
        else if (kind == 1)
            ((uint16_t *)w)[i] = rnd_f16(10, 16);
        else
            ((uint16_t *)w)[i] = rnd_bf16();
    }
    for (size_t i = 0; i < (size_t)nt * n; i++)
        x[i] = rnd_float();
    const struct qlm_isa_kernels *s = &qlm_kernels_scalar;
    qlm_gemm_f_fn ref = kind == 0 ? s->gemm_f32 : kind == 1 ? s->gemm_f16 : s->gemm_bf16;
    for (size_t i = 0; i < ysz; i++)
        yref[i] = -777.0f;
    ref(n, w, r0, r1, x, nt, yref, ldy);
    for (int i = 0; i < n_isas; i++) {
        const struct qlm_isa_kernels *k = isas[i];
        qlm_gemm_f_fn fn = kind == 0 ? k->gemm_f32 : kind == 1 ? k->gemm_f16 : k->gemm_bf16;
        if (fn == NULL)
            continue;
        for (size_t j = 0; j < ysz; j++)
            y[j] = -777.0f;
        fn(n, w, r0, r1, x, nt, y, ldy);
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < ldy; r++) {
                size_t at = (size_t)t * ldy + r;
                if (r < r0 || r >= r1) {
                    KT_ASSERT(y[at] == -777.0f, "%s gemm_f kind %d wrote outside its rows",
                                  k->name, kind);
                    continue;
                }
                double mag = 0, exact = 0;
                for (int kk = 0; kk < n; kk++) {
                    size_t wi = (size_t)r * n + kk;
                    double wv = kind == 0 ? ((float *)w)[wi]
                              : kind == 1 ? f16_value(((uint16_t *)w)[wi])
                                          : bf16_value(((uint16_t *)w)[wi]);
                    exact += wv * x[(size_t)t * n + kk];
                    mag += fabs(wv * x[(size_t)t * n + kk]);
                }
                double tol = 1e-5 * mag + 1e-30;
                KT_ASSERT(fabs(yref[at] - exact) <= tol, "scalar gemm_f kind %d off", kind);
                KT_ASSERT(fabs(y[at] - exact) <= tol,
                              "%s gemm_f kind %d n=%d nt=%d row %d tok %d: %.9g vs %.9g",
                              k->name, kind, n, nt, r, t, y[at], exact);
            }
    }
    free(w);
    free(x);
    free(yref);
    free(y);
}

static void test_gemm_float(void)
{
    static const int ns[] = { 1, 7, 8, 13, 33, 64, 250 };
    static const int rows_list[] = { 1, 3, 4, 8, 11 };
    static const int nts[] = { 1, 2, 3, 5, 17 };
    rng_state = 21;
    for (int kind = 0; kind < 3; kind++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++)
                for (size_t ti = 0; ti < sizeof nts / sizeof nts[0]; ti++) {
                    int rows = rows_list[ri];
                    if ((ni + ri + ti) % 2)
                        run_fcase(kind, rows, ns[ni], 0, rows, nts[ti], rows);
                    else
                        run_fcase(kind, rows, ns[ni], rows / 3, rows, nts[ti], rows + 2);
                }
}

/* ---- attention's weighted sum of value rows ----------------------------- */

/* f16: the value rows are rounded to f16 first and the exact sum taken over
 * the rounded values, so both kinds check the same thing: float rounding. */
static void run_wsum(int f16, int n, int rows)
{
    float *w = xmalloc(sizeof(float) * rows), *v = xmalloc(sizeof(float) * rows * n);
    uint16_t *vh = xmalloc(sizeof(uint16_t) * rows * n);
    float *yref = xmalloc(sizeof(float) * (n + 1)), *y = xmalloc(sizeof(float) * (n + 1));
    const char *what = f16 ? "wsum_f16" : "wsum_f32";
    for (int r = 0; r < rows; r++)
        w[r] = fabsf(rnd_float());
    for (size_t i = 0; i < (size_t)rows * n; i++) {
        v[i] = rnd_float();
        if (f16) {
            vh[i] = qlm_f32_to_f16(v[i]);
            v[i] = qlm_f16_to_f32(vh[i]);
        }
    }
    yref[n] = -777.0f;
    if (f16)
        qlm_kernels_scalar.wsum_f16(n, w, vh, rows, yref);
    else
        qlm_kernels_scalar.wsum_f32(n, w, v, rows, yref);
    for (int i = 0; i < n_isas; i++) {
        const struct qlm_isa_kernels *k = isas[i];
        if (f16 ? k->wsum_f16 == NULL : k->wsum_f32 == NULL)
            continue;
        y[n] = -777.0f;
        if (f16)
            k->wsum_f16(n, w, vh, rows, y);
        else
            k->wsum_f32(n, w, v, rows, y);
        KT_ASSERT(y[n] == -777.0f, "%s %s wrote past n = %d", k->name, what, n);
        for (int c = 0; c < n; c++) {
            double exact = 0, mag = 0;
            for (int r = 0; r < rows; r++) {
                exact += (double)w[r] * v[(size_t)r * n + c];
                mag += fabs((double)w[r] * v[(size_t)r * n + c]);
            }
            double tol = 1e-5 * mag + 1e-30;
            KT_ASSERT(fabs(yref[c] - exact) <= tol, "scalar %s off at %d", what, c);
            KT_ASSERT(fabs(y[c] - exact) <= tol, "%s %s n=%d rows=%d out %d: %.9g vs %.9g",
                      k->name, what, n, rows, c, y[c], exact);
        }
    }
    free(w);
    free(v);
    free(vh);
    free(yref);
    free(y);
}

/* Head sizes around the 64-wide and 8-wide blocks, 1 to many positions. */
static void test_wsum(void)
{
    static const int ns[] = { 1, 7, 8, 63, 64, 72, 128, 130 };
    static const int rows_list[] = { 1, 2, 5, 17, 300 };
    rng_state = 33;
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++)
            for (int f16 = 0; f16 < 2; f16++)
                run_wsum(f16, ns[ni], rows_list[ri]);
}

/* ---- attention's softmax ------------------------------------------------- */

/* Every ISA's softmax_f32 (the scalar one included) against a softmax in
 * double: each output within 2e-6 relative plus what rounding its argument
 * x * scale - max to float costs (2 ulps of it), +1e-30 absolute (outputs
 * below e^-87 may be 0); the outputs summing to 1 within 1e-5, and nothing
 * written past n. */
static void run_softmax(const float *in, int n, float scale)
{
    float *y = xmalloc(sizeof(float) * (n + 1));
    double *exact = xmalloc(sizeof(double) * n), mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++)
        if ((double)in[i] * scale > mx)
            mx = (double)in[i] * scale;
    for (int i = 0; i < n; i++)
        sum += exact[i] = exp((double)in[i] * scale - mx);
    for (int i = 0; i < n; i++)
        exact[i] /= sum;
    for (int k = -1; k < n_isas; k++) {
        const struct qlm_isa_kernels *ks = k < 0 ? &qlm_kernels_scalar : isas[k];
        if (ks->softmax_f32 == NULL)
            continue;
        memcpy(y, in, sizeof(float) * n);
        y[n] = -777.0f;
        ks->softmax_f32(y, n, scale);
        KT_ASSERT(y[n] == -777.0f, "%s softmax_f32 wrote past n = %d", ks->name, n);
        double total = 0;
        for (int i = 0; i < n; i++) {
            total += y[i];
            /* x * scale - max rounded to float moves e^that by its ulp */
            double arg = fabs((double)in[i] * scale - mx);
            KT_ASSERT(fabs(y[i] - exact[i]) <= (2e-6 + 2.4e-7 * arg) * exact[i] + 1e-30,
                      "%s softmax_f32 n=%d scale=%g out %d: %.9g vs %.9g", ks->name, n,
                      (double)scale, i, y[i], exact[i]);
        }
        KT_ASSERT(fabs(total - 1.0) <= 1e-5, "%s softmax_f32 n=%d sums to %.9g", ks->name, n,
                  total);
    }
    free(y);
    free(exact);
}

/* Lengths around the 8-lane blocks up to a long context; scores of attention's
 * range, all equal, one spike, and spreads wide enough to underflow. */
static void test_softmax(void)
{
    static const int ns[] = { 1, 2, 7, 8, 9, 15, 16, 17, 63, 300, 4099 };
    float *in = xmalloc(sizeof(float) * 4099);
    rng_state = 44;
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        int n = ns[ni];
        for (int i = 0; i < n; i++)
            in[i] = 30.0f * rnd_float();
        run_softmax(in, n, 0.125f);
        run_softmax(in, n, 1.0f);
        for (int i = 0; i < n; i++)
            in[i] = 3.0f;
        run_softmax(in, n, 0.088f);
        in[n / 2] = 1000.0f;
        run_softmax(in, n, 1.0f);
        for (int i = 0; i < n; i++)
            in[i] = -400.0f * (float)(i % 5);
        run_softmax(in, n, 1.0f);
    }
    free(in);
}

/* ---- SwiGLU -------------------------------------------------------------- */

/* Every ISA's silu_mul_f32 against silu(g) * u in double: within 2e-6
 * relative plus 1e-35 absolute (below e^-87.3 a sigmoid may be 0, so silu
 * of a gate under -87.3 may be 0 instead of ~1e-36), nothing written past n. */
static void run_silu(const float *g, const float *u, int n)
{
    float *y = xmalloc(sizeof(float) * (n + 1));
    for (int k = -1; k < n_isas; k++) {
        const struct qlm_isa_kernels *ks = k < 0 ? &qlm_kernels_scalar : isas[k];
        if (ks->silu_mul_f32 == NULL)
            continue;
        memcpy(y, g, sizeof(float) * n);
        y[n] = -777.0f;
        ks->silu_mul_f32(y, u, n);
        KT_ASSERT(y[n] == -777.0f, "%s silu_mul_f32 wrote past n = %d", ks->name, n);
        for (int i = 0; i < n; i++) {
            double exact = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
            KT_ASSERT(fabs(y[i] - exact) <= 2e-6 * fabs(exact) + 1e-35,
                      "%s silu_mul_f32 n=%d at %d: silu(%.9g) * %.9g = %.9g, want %.9g", ks->name,
                      n, i, (double)g[i], (double)u[i], (double)y[i], exact);
        }
    }
    free(y);
}

/* Lengths around the vector widths; gates of activations' range, beyond
 * exp's (+-100), zeros and tiny values. */
static void test_silu(void)
{
    static const int ns[] = { 1, 3, 4, 7, 8, 9, 31, 3072 };
    float *g = xmalloc(sizeof(float) * 3072), *u = xmalloc(sizeof(float) * 3072);
    rng_state = 55;
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        int n = ns[ni];
        for (int i = 0; i < n; i++) {
            g[i] = 12.0f * rnd_float();
            u[i] = 4.0f * rnd_float();
        }
        run_silu(g, u, n);
        for (int i = 0; i < n; i++) {
            static const float special[] = { 0.0f, -0.0f, 1e-30f, -1e-30f, 100.0f, -100.0f,
                                             88.0f, -88.0f, 20.0f, -20.0f };
            g[i] = special[i % 10];
        }
        run_silu(g, u, n);
    }
    free(g);
    free(u);
}

#endif
