/*
 * kernels_x86.h — pieces shared by the x86 kernel files (AVX2, AVX-VNNI,
 * AVX-512 VNNI).  Included by each of them, so every function is compiled
 * with that file's target flags; nothing here is exported.
 *
 * The integer GEMMs all work the same way: a block of (row, token) pairs —
 * 8 of them, (4 rows x 2 tokens) or (8 rows x 1 token; AVX2 q8 runs two
 * such blocks, one per token, on the same 8 rows), rows from one 8-row
 * block of the file's interleaved layout — keeps one int32
 * vector of partial dot products per pair for the current group; at the end
 * of the group hsum8() folds the 8 vectors into one vector of 8 exact group
 * sums, which is then scaled and added to 8 float accumulators exactly as
 * the scalar reference does it (acc += (float)isum * (d_w * d_x), group by
 * group, no FMA: these files build with -ffp-contract=off).  The float
 * results are therefore bit-identical to kernels_scalar.c.
 *
 * Row tails compute the zero padding rows of the last block and drop them;
 * token tails reuse the last valid token; so there is one code path per
 * block shape.
 */
#ifndef QLM_KERNELS_X86_H
#define QLM_KERNELS_X86_H

#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#define KX_INLINE static inline __attribute__((always_inline))
/* Fully unroll the loops over a block's rows and tokens, so accumulator
 * arrays live in registers (gcc -O2 would otherwise keep them in memory). */
#define UNROLL _Pragma("GCC unroll 8")

/* Eight int32x8 vectors -> one vector of their 8 horizontal sums, in order.
 * Unpacks and adds rather than phaddd: phaddd is several shuffle uops each,
 * and the shuffle ports are what the integer GEMMs run out of first. */
KX_INLINE __m256i hsum8_epi32(const __m256i v[8])
{
    __m256i a01 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]),
                                   _mm256_unpackhi_epi32(v[0], v[1]));
    __m256i a23 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]),
                                   _mm256_unpackhi_epi32(v[2], v[3]));
    __m256i a45 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[4], v[5]),
                                   _mm256_unpackhi_epi32(v[4], v[5]));
    __m256i a67 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[6], v[7]),
                                   _mm256_unpackhi_epi32(v[6], v[7]));
    /* per 128-bit lane: a01 = [v0 v1 v0 v1] partials; now [v0 v1 v2 v3] */
    __m256i b0 = _mm256_add_epi32(_mm256_unpacklo_epi64(a01, a23),
                                  _mm256_unpackhi_epi64(a01, a23));
    __m256i b1 = _mm256_add_epi32(_mm256_unpacklo_epi64(a45, a67),
                                  _mm256_unpackhi_epi64(a45, a67));
    return _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20),
                            _mm256_permute2x128_si256(b0, b1, 0x31));
}

KX_INLINE __m256 hsum8_ps(const __m256 v[8])
{
    __m256 h01 = _mm256_hadd_ps(v[0], v[1]);
    __m256 h23 = _mm256_hadd_ps(v[2], v[3]);
    __m256 h45 = _mm256_hadd_ps(v[4], v[5]);
    __m256 h67 = _mm256_hadd_ps(v[6], v[7]);
    __m256 h0123 = _mm256_hadd_ps(h01, h23);
    __m256 h4567 = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20),
                         _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

/* acc += (float)isum * scale, lane by lane, as the scalar reference. */
KX_INLINE __m256 scale_add(__m256 acc, __m256i isum, __m256 scale)
{
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), scale));
}

/* Store the 8 results of a (rb x 8/rb) block: lane t*rb + r -> y[t*ldy + r],
 * only the nr valid rows and nv valid tokens. */
KX_INLINE void store_block(float *y, int ldy, int rb, int nr, int nv, __m256 acc)
{
    float tmp[8];
    if (rb == 8 && nr == 8) {
        _mm256_storeu_ps(y, acc);
        return;
    }
    if (rb == 4 && nr == 4) {
        _mm_storeu_ps(y, _mm256_castps256_ps128(acc));
        if (nv > 1)
            _mm_storeu_ps(y + ldy, _mm256_extractf128_ps(acc, 1));
        return;
    }
    _mm256_storeu_ps(tmp, acc);
    for (int t = 0; t < nv; t++)
        for (int r = 0; r < nr; r++)
            y[(size_t)t * ldy + r] = tmp[t * rb + r];
}

/* 16 bytes of a q4 block -> 32 unsigned nibbles in element order: the bytes
 * broadcast to both 128-bit lanes, the high lane shifted right by 4 (one
 * variable shift instead of a shift and a lane insert), masked. */
KX_INLINE __m256i unpack_q4_x86(const uint8_t *p)
{
    __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    v = _mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

/* vpdpbusd emulated exactly with AVX2, for the VNNI kernels' test builds on
 * CPUs without VNNI: src + per int32 lane sum of 4 (u8 a) * (s8 b), no
 * saturation — even and odd bytes widened to int16 and summed in pairs by
 * madd (exact: every |product| < 2^15). */
KX_INLINE __m256i kx_dpbusd_emu(__m256i src, __m256i a, __m256i b)
{
    const __m256i lo = _mm256_set1_epi16(0x00ff);
    __m256i ae = _mm256_and_si256(a, lo), ao = _mm256_srli_epi16(a, 8);
    __m256i be = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8), bo = _mm256_srai_epi16(b, 8);
    return _mm256_add_epi32(src, _mm256_add_epi32(_mm256_madd_epi16(ae, be),
                                                  _mm256_madd_epi16(ao, bo)));
}

/* ---- activation quantization ------------------------------------------- */

/* 8 floats -> 8 int32: x * id, NaN -> 0, clamped to +-127, rounded half to
 * even independently of MXCSR (the scalar round_even()). */
KX_INLINE __m256i quant8(__m256 x, __m256 id)
{
    __m256 v = _mm256_mul_ps(x, id);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_cvttps_epi32(v);
}

static void x86_quantize_act(const float *x, int nt, int n, int group, int8_t *q, float *d)
{
    assert(n > 0 && group > 0 && n % group == 0);
    if (group % 32 != 0) {
        qlm_kernels_scalar.quantize_act(x, nt, n, group, q, d);
        return;
    }
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int ng = n / group;
    for (int t = 0; t < nt; t++) {
        for (int g = 0; g < ng; g++) {
            const float *xg = x + (size_t)t * n + (size_t)g * group;
            int8_t *qg = q + (size_t)t * n + (size_t)g * group;
            /* max(|x|, amax) keeps amax when |x| is NaN, as the scalar's (a > amax). */
            __m256 m = _mm256_setzero_ps();
            for (int k = 0; k < group; k += 8)
                m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xg + k), absmask), m);
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
            float amax = _mm_cvtss_f32(m4);
            float dg = amax / 127.0f;
            float idg = dg != 0.0f ? 1.0f / dg : 0.0f;
            __m256 id = _mm256_set1_ps(idg);
            for (int k = 0; k < group; k += 32) {
                __m256i i0 = quant8(_mm256_loadu_ps(xg + k), id);
                __m256i i1 = quant8(_mm256_loadu_ps(xg + k + 8), id);
                __m256i i2 = quant8(_mm256_loadu_ps(xg + k + 16), id);
                __m256i i3 = quant8(_mm256_loadu_ps(xg + k + 24), id);
                __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1),
                                               _mm256_packs_epi32(i2, i3));
                _mm256_storeu_si256((__m256i *)(qg + k), _mm256_permutevar8x32_epi32(p, perm));
            }
            d[(size_t)t * ng + g] = dg;
        }
    }
}

/* ---- float GEMMs (FMA): 4 rows x 2 tokens or 8 rows x 1 token ----------- */

/* 8 weights at w + k as floats. */
KX_INLINE __m256 load_w8(int kind, const void *w, size_t k)
{
    if (kind == 0)
        return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    if (kind == 1)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

KX_INLINE float load_w1(int kind, const void *w, size_t k)
{
    if (kind == 0)
        return ((const float *)w)[k];
    if (kind == 1)
        return _cvtsh_ss(((const uint16_t *)w)[k]);
    uint32_t u = (uint32_t)((const uint16_t *)w)[k] << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

KX_INLINE void gemm_f_block(int kind, int rb, int n, const void *const *wr, const float *const *xt,
                            float *y, int ldy, int nr, int nv)
{
    int tb = 8 / rb;
    __m256 acc[8];
    UNROLL for (int i = 0; i < 8; i++)
        acc[i] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 xv[2];
        UNROLL for (int t = 0; t < tb; t++)
            xv[t] = _mm256_loadu_ps(xt[t] + k);
        UNROLL for (int r = 0; r < rb; r++) {
            __m256 wv = load_w8(kind, wr[r], (size_t)k);
            UNROLL for (int t = 0; t < tb; t++)
                acc[t * rb + r] = _mm256_fmadd_ps(wv, xv[t], acc[t * rb + r]);
        }
    }
    __m256 s = hsum8_ps(acc);
    if (k < n) {
        float tmp[8];
        _mm256_storeu_ps(tmp, s);
        UNROLL for (int t = 0; t < tb; t++)
            UNROLL for (int r = 0; r < rb; r++)
                for (int kk = k; kk < n; kk++)
                    tmp[t * rb + r] += load_w1(kind, wr[r], (size_t)kk) * xt[t][kk];
        s = _mm256_loadu_ps(tmp);
    }
    store_block(y, ldy, rb, nr, nv, s);
}

KX_INLINE void gemm_f_any(int kind, int n, const void *w, int r0, int r1, const float *x, int nt,
                          float *y, int ldy)
{
    size_t esz = kind == 0 ? 4 : 2;
    int rb = nt == 1 ? 8 : 4, tb = 8 / rb;
    for (int r = r0; r < r1; r += rb) {
        int nr = r1 - r < rb ? r1 - r : rb;
        const void *wr[8] = { NULL };
        UNROLL for (int i = 0; i < rb; i++)
            wr[i] = (const char *)w + (size_t)(r + (i < nr ? i : nr - 1)) * n * esz;
        for (int t = 0; t < nt; t += tb) {
            int nv = nt - t < tb ? nt - t : tb;
            const float *xt[2] = { NULL, NULL };
            UNROLL for (int i = 0; i < tb; i++)
                xt[i] = x + (size_t)(t + (i < nv ? i : nv - 1)) * n;
            float *yb = y + (size_t)t * ldy + r;
            if (rb == 8)
                gemm_f_block(kind, 8, n, wr, xt, yb, ldy, nr, nv);
            else
                gemm_f_block(kind, 4, n, wr, xt, yb, ldy, nr, nv);
        }
    }
}

static void x86_gemm_f32(int n, const void *w, int r0, int r1, const float *x, int nt, float *y,
                         int ldy)
{
    gemm_f_any(0, n, w, r0, r1, x, nt, y, ldy);
}

static void x86_gemm_f16(int n, const void *w, int r0, int r1, const float *x, int nt, float *y,
                         int ldy)
{
    gemm_f_any(1, n, w, r0, r1, x, nt, y, ldy);
}

static void x86_gemm_bf16(int n, const void *w, int r0, int r1, const float *x, int nt, float *y,
                          int ldy)
{
    gemm_f_any(2, n, w, r0, r1, x, nt, y, ldy);
}

/* out = sum_r w[r] v[r] over f32 (kind 0) or f16 (kind 1) value rows: 64
 * outputs at a time in 8 accumulators (FMA), so the sums stay in registers
 * over all rows; the rest 8 at a time, then one by one. */
KX_INLINE void wsum_any(int kind, int n, const float *w, const void *v, int rows, float *out)
{
    int i0 = 0;
    for (; i0 + 64 <= n; i0 += 64) {
        __m256 acc[8];
        UNROLL for (int j = 0; j < 8; j++)
            acc[j] = _mm256_setzero_ps();
        for (int r = 0; r < rows; r++) {
            __m256 wr = _mm256_broadcast_ss(w + r);
            size_t row = (size_t)r * n + i0;
            UNROLL for (int j = 0; j < 8; j++)
                acc[j] = _mm256_fmadd_ps(wr, load_w8(kind, v, row + 8 * j), acc[j]);
        }
        UNROLL for (int j = 0; j < 8; j++)
            _mm256_storeu_ps(out + i0 + 8 * j, acc[j]);
    }
    for (; i0 + 8 <= n; i0 += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int r = 0; r < rows; r++)
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(w + r),
                                  load_w8(kind, v, (size_t)r * n + i0), acc);
        _mm256_storeu_ps(out + i0, acc);
    }
    for (; i0 < n; i0++) {
        float acc = 0.0f;
        for (int r = 0; r < rows; r++)
            acc += w[r] * load_w1(kind, v, (size_t)r * n + i0);
        out[i0] = acc;
    }
}

static void x86_wsum_f32(int n, const float *w, const float *v, int rows, float *out)
{
    wsum_any(0, n, w, v, rows, out);
}

static void x86_wsum_f16(int n, const float *w, const uint16_t *v, int rows, float *out)
{
    wsum_any(1, n, w, v, rows, out);
}

/* e^x for x <= 0, 8 at a time: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split
 * in two so n ln2 is exact), e^r by its Taylor series to degree 7
 * (truncation < 6e-9 relative, below a float ulp), times 2^n built in the
 * exponent bits.  Inputs below -87.3 give 0 (e^x is then below the
 * normal floats), NaN gives 2^-126. */
KX_INLINE __m256 exp_neg_ps(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.3f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

KX_INLINE float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

/* Attention's softmax: the scalar one's three passes, 8 lanes at a time,
 * the sum in double as there (a float sum of 40k terms would drift by
 * ~1e-4); the tail goes through an 8-float buffer with the same exp. */
static void x86_softmax_f32(float *x, int n, float scale)
{
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 m = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        _mm256_storeu_ps(x + i, v);
        m = _mm256_max_ps(m, v);
    }
    float mxs = hmax_ps(m);
    for (int k = i; k < n; k++) {
        x[k] *= scale;
        if (x[k] > mxs)
            mxs = x[k];
    }
    const __m256 mx = _mm256_set1_ps(mxs);
    __m256d sum = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp_neg_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mx));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_pd(sum, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)),
                                               _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1))));
    }
    double sums[4];
    _mm256_storeu_pd(sums, sum);
    double total = (sums[0] + sums[1]) + (sums[2] + sums[3]);
    if (i < n) {
        float tail[8] = { 0 };
        memcpy(tail, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(tail, exp_neg_ps(_mm256_sub_ps(_mm256_loadu_ps(tail), mx)));
        for (int k = i; k < n; k++) {
            x[k] = tail[k - i];
            total += x[k];
        }
    }
    const float invs = (float)(1.0 / total);
    const __m256 inv = _mm256_set1_ps(invs);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++)
        x[i] *= invs;
}

/* silu(g) * u, 8 lanes: sigmoid(g) from e = e^-|g| (never above 1, so
 * exp_neg_ps covers it): 1 / (1 + e) for g >= 0, e / (1 + e) below. */
KX_INLINE __m256 silu_mul8(__m256 g, __m256 u)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 ag = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), g);
    __m256 e = exp_neg_ps(_mm256_sub_ps(_mm256_setzero_ps(), ag));
    __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_GE_OQ));
    return _mm256_mul_ps(_mm256_mul_ps(g, _mm256_div_ps(num, _mm256_add_ps(one, e))), u);
}

static void x86_silu_mul_f32(float *gate, const float *up, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(gate + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        float g[8] = { 0 }, u[8] = { 0 };
        memcpy(g, gate + i, (size_t)(n - i) * sizeof(float));
        memcpy(u, up + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(g, silu_mul8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
        memcpy(gate + i, g, (size_t)(n - i) * sizeof(float));
    }
}

/* ---- block iteration shared by the integer GEMMs ------------------------ */

/* The default group, 32, gets its own instance of each block kernel (the
 * wrappers pass a literal 32): one chunk per group, so the chunk loop and
 * the accumulator zeroing fold away (about 1.3x on the AVX2 GEMMs). */
#define KX_GROUP32(fn, ...) ((group) == 32 ? fn(__VA_ARGS__, 32) : fn(__VA_ARGS__, (group)))

/* Prefetch distance of the decode kernels, in bytes ahead of the chunk being
 * read: the weights are one stream, which the prefetchers alone follow at
 * well under the DRAM bandwidth on the machines measured (bench/README.md). */
#define KX_PREFETCH_BYTES 2048

/* A (rb x tb) block: rows row0 .. row0 + rb - 1 (rb = 4 or 8) of the 8-row
 * block whose first tile is at tile0, tokens x[0 .. tb) (a token tail
 * repeats the last valid token). */
struct kx_block {
    const uint8_t *tile0;    /* group 0's tile of the 8-row block */
    size_t tile;             /* bytes per tile */
    int row0;                /* 0, or 4 for the upper half in 4-row blocks */
    int cb;                  /* bytes per row chunk: 32 (q8) or 16 (q4) */
    const int8_t *x[4];      /* activation rows */
    const float *xd[4];      /* activation scales */
    int nr, nv;
};

/* Row i's 32-element chunk c of group g. */
KX_INLINE const uint8_t *kx_chunk(const struct kx_block *b, int g, int c, int i)
{
    return b->tile0 + (size_t)g * b->tile + 16 +
           ((size_t)c * QLM_QBLOCK_ROWS + (size_t)(b->row0 + i)) * (size_t)b->cb;
}

KX_INLINE const uint16_t *kx_scales(const struct kx_block *b, int g)
{
    return (const uint16_t *)(const void *)(b->tile0 + (size_t)g * b->tile) + b->row0;
}

/* One prefetch per 64 bytes of chunk data: rows whose chunk starts a new
 * 64-byte stretch of the tile (every q8 row pair, every fourth q4 row). */
KX_INLINE void kx_prefetch(const struct kx_block *b, int g, int c, int i)
{
    if ((i * b->cb) % 64 == 0)
        _mm_prefetch((const char *)kx_chunk(b, g, c, i) + KX_PREFETCH_BYTES, _MM_HINT_T0);
}

/* The 8 scale products d_w[r] * d_x[t] of a block for group g, lane order as
 * the sums: the tile's scales of the block's rows times its tokens'. */
KX_INLINE __m256 block_scales(int rb, const struct kx_block *b, int g)
{
    const uint16_t *d = kx_scales(b, g);
    if (rb == 8)
        return _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)d)),
                             _mm256_set1_ps(b->xd[0][g]));
    __m128 w = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(const void *)d));
    return _mm256_set_m128(_mm_mul_ps(w, _mm_set1_ps(b->xd[1][g])),
                           _mm_mul_ps(w, _mm_set1_ps(b->xd[0][g])));
}

/* The block of rows from r (rb of them, r1 the end of the range). */
KX_INLINE void block_rows(struct kx_block *b, int bits, const void *w, int n, int group, int r,
                          int rb, int r1)
{
    b->tile = 16 + (size_t)group * (size_t)bits; /* qlm_quant_tile_bytes */
    b->tile0 = (const uint8_t *)w + (size_t)(r / QLM_QBLOCK_ROWS) * (size_t)(n / group) * b->tile;
    b->row0 = r % QLM_QBLOCK_ROWS;
    b->cb = bits * 4;
    b->nr = r1 - r < rb ? r1 - r : rb;
}

KX_INLINE void block_tokens(struct kx_block *b, int tb, const int8_t *xq, const float *xd, int n,
                            int ng, int t, int nt)
{
    b->nv = nt - t < tb ? nt - t : tb;
    UNROLL for (int i = 0; i < tb; i++) {
        size_t ti = (size_t)(t + (i < b->nv ? i : b->nv - 1));
        b->x[i] = xq + ti * (size_t)n;
        b->xd[i] = xd + ti * (size_t)ng;
    }
}

/* Drives block kernels fn(b, n, group, y, ldy) over rows [r0, r1) (r0 a
 * multiple of 8) x all tokens: blockn, 8 rows x 1 token, when nt == 1
 * (decode); else blockt, prompt_rows (4 or 8) rows x 2 tokens. */
#define KX_GEMM_DRIVER(name, bits, prompt_rows, blockt, blockn)                             \
    static void name(int n, int group, const void *w, int r0, int r1, const int8_t *xq,     \
                     const float *xd, int nt, float *y, int ldy)                            \
    {                                                                                       \
        assert(n > 0 && group > 0 && n % group == 0 && group % 32 == 0);                   \
        assert(r0 % QLM_QBLOCK_ROWS == 0);                                                  \
        int ng = n / group;                                                                 \
        struct kx_block b;                                                                  \
        if (nt == 1) {                                                                      \
            for (int r = r0; r < r1; r += 8) {                                              \
                block_rows(&b, bits, w, n, group, r, 8, r1);                                \
                block_tokens(&b, 1, xq, xd, n, ng, 0, 1);                                   \
                blockn(&b, n, group, y + r, ldy);                                           \
            }                                                                               \
            return;                                                                         \
        }                                                                                   \
        for (int r = r0; r < r1; r += (prompt_rows)) {                                      \
            block_rows(&b, bits, w, n, group, r, (prompt_rows), r1);                        \
            for (int t = 0; t < nt; t += 2) {                                               \
                block_tokens(&b, 2, xq, xd, n, ng, t, nt);                                  \
                blockt(&b, n, group, y + (size_t)t * ldy + r, ldy);                         \
            }                                                                               \
        }                                                                                   \
    }

#endif
