/*
 * kernels.h — the compute kernels of the forward pass, one table per ISA.
 *
 * Every ISA file (kernels_scalar.c, kernels_avx2.c, kernels_avxvnni.c,
 * kernels_avx512vnni.c, kernels_neon.c) is compiled with its own target flags
 * and exports one `const struct qlm_isa_kernels qlm_kernels_<isa>`; a NULL
 * entry means "use the scalar reference".  kernels_dispatch.c picks the best
 * table the CPU supports once at start-up (QLM_ISA=scalar|avx2|avxvnni|
 * avx512vnni|neon forces one) and builds the per-weight-type table that the
 * forward pass calls, so the forward pass never switches on a type.
 *
 * Matrix conventions: W is rows x n (out_features x in_features), laid out as
 * in formats/qlm_format.h.  X holds nt activation rows of n values.  Every
 * gemm computes Y[t*ldy + r] = sum_k W[r][k] * X[t][k] for r in [r0, r1) and
 * t in [0, nt): a thread owns a row range, and each weight row is loaded once
 * for all nt tokens (prompt processing is batched this way).
 *
 * Integer path (q8, q4): activations are quantized per group of `group`
 * elements to int8 (d = max|x| / 127, q = round(x / d), zero group -> d = 0).
 * A group's dot product is exact in int32; then scaled by d_w * d_x in f32 and
 * accumulated in f32 in group order.  Scalar results are the oracle: an ISA
 * must produce identical int32 group sums and equal floats to rounding.
 */
#ifndef QLM_KERNELS_H
#define QLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "qlm_format.h"

/* Quantize nt rows of n floats (n % group == 0): q (nt, n), d (nt, n/group). */
typedef void (*qlm_quantize_act_fn)(const float *x, int nt, int n, int group, int8_t *q,
                                    float *d);

/* Quantized weights: w = the tensor's first 8-row block (the interleaved
 * layout of qlm_format.h); r0 is a multiple of QLM_QBLOCK_ROWS, and rows of
 * the last block past r1 exist (zero padding) but are not stored to y. */
typedef void (*qlm_gemm_q_fn)(int n, int group, const void *w, int r0, int r1,
                              const int8_t *xq, const float *xd, int nt, float *y, int ldy);

/* Float weights (f32, f16 or bf16 elements, row stride n) x f32 activations. */
typedef void (*qlm_gemm_f_fn)(int n, const void *w, int r0, int r1, const float *x, int nt,
                              float *y, int ldy);

/* out[i] = sum over r in order of w[r] * v[r * n + i], for i < n: attention's
 * probability-weighted sum of value rows. */
typedef void (*qlm_wsum_fn)(int n, const float *w, const float *v, int rows, float *out);
/* The same over f16 value rows (an f16 KV cache). */
typedef void (*qlm_wsum_f16_fn)(int n, const float *w, const uint16_t *v, int rows, float *out);

/* x[0 .. n) <- softmax(scale * x), n >= 1: the maximum subtracted first, so
 * no exponential overflows.  ISAs may differ from the scalar one (libm expf,
 * a double sum) by a few float roundings. */
typedef void (*qlm_softmax_fn)(float *x, int n, float scale);

/* gate[i] <- silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i]: the
 * SwiGLU of the feed-forward block.  Same tolerance as softmax_f32. */
typedef void (*qlm_silu_mul_fn)(float *gate, const float *up, int n);

struct qlm_isa_kernels {
    const char *name;            /* "scalar", "avx2", ... */
    qlm_quantize_act_fn quantize_act;
    qlm_gemm_q_fn gemm_q8;
    qlm_gemm_q_fn gemm_q4;
    qlm_gemm_f_fn gemm_f32;
    qlm_gemm_f_fn gemm_f16;
    qlm_gemm_f_fn gemm_bf16;
    qlm_wsum_fn wsum_f32;
    qlm_wsum_f16_fn wsum_f16;
    qlm_softmax_fn softmax_f32;
    qlm_silu_mul_fn silu_mul_f32;
};

extern const struct qlm_isa_kernels qlm_kernels_scalar;
#if defined(QLM_HAVE_AVX2)
extern const struct qlm_isa_kernels qlm_kernels_avx2;
#endif
#if defined(QLM_HAVE_AVXVNNI)
extern const struct qlm_isa_kernels qlm_kernels_avxvnni;
#endif
#if defined(QLM_HAVE_AVX512VNNI)
extern const struct qlm_isa_kernels qlm_kernels_avx512vnni;
#endif
#if defined(QLM_HAVE_NEON)
extern const struct qlm_isa_kernels qlm_kernels_neon;
#endif

/* Selected once per process, by the first call of any of these four: the
 * best supported ISA or $QLM_ISA.  On an unsupported or unknown $QLM_ISA
 * init fails with a message (err) instead of crashing later, every time it
 * is called; the other calls then use the best supported table. */
enum qlm_err qlm_kernels_init(struct qlm_error *err);
const struct qlm_isa_kernels *qlm_kernels_active(void);
/* A named ISA table if compiled in and supported by this CPU, else NULL. */
const struct qlm_isa_kernels *qlm_kernels_get(const char *name);
/* Names of all ISAs compiled in and supported here (NULL-terminated). */
const char *const *qlm_kernels_available(void);

/* Per weight type: what the forward pass calls (type traits). */
struct qlm_matrix {
    enum qlm_dtype type;
    int rows, cols, group;
    const void *data;            /* elements, or q8/q4 8-row blocks */
};

struct qlm_acts {                /* activations prepared for one matmul input */
    int nt, n, group;
    const float *x;              /* (nt, n) */
    int8_t *q;                   /* (nt, n) when quantized, else unused */
    float *d;                    /* (nt, n/group) */
    bool quantized;
};

struct qlm_type_ops {
    bool int8_acts;              /* needs qlm_acts.q/d */
    void (*gemm)(const struct qlm_matrix *w, int r0, int r1, const struct qlm_acts *a,
                 float *y, int ldy);
};

const struct qlm_type_ops *qlm_type_ops(enum qlm_dtype t);

#endif
