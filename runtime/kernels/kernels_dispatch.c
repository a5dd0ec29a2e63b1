/*
 * kernels_dispatch.c — pick the best kernel table this CPU supports, once
 * per process, and build the per-weight-type table the forward pass calls.
 *
 * Detection: x86-64 by cpuid (+ xgetbv: the OS must save YMM/ZMM state, or
 * the instructions fault even though cpuid lists them); aarch64 by
 * getauxval(AT_HWCAP) on Linux and sysctlbyname on macOS.  $QLM_ISA forces a
 * table (tests, bug hunts); an unknown name or one this CPU or build lacks is
 * refused with a message rather than crashing with SIGILL later.
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define QLM_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

/* ---- CPU features -------------------------------------------------------- */

struct cpu_features {
    bool avx2, avxvnni, avx512vnni, neon_dot;
};

#if defined(QLM_X86)
static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static struct cpu_features detect_cpu(void)
{
    struct cpu_features f = { false, false, false, false };
#if defined(QLM_X86)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    bool fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
         f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return f;
    uint64_t xcr0 = read_xcr0();
    bool ymm_os = (xcr0 & 0x6) == 0x6;          /* SSE + AVX state */
    bool zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_sub7 = a;
    bool avx2 = (b >> 5) & 1;
    bool avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    bool avx512vnni = (c >> 11) & 1;
    bool avxvnni = false;
    if (max_sub7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        avxvnni = (a >> 4) & 1;
    }
    f.avx2 = ymm_os && avx2 && fma && f16c;
    f.avxvnni = f.avx2 && avxvnni;
    f.avx512vnni = f.avx2 && zmm_os && avx512f && avx512bw && avx512vl && avx512vnni;
#elif defined(__aarch64__) && defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP);
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1UL << 10)
#endif
    f.neon_dot = (hw & HWCAP_ASIMDDP) && (hw & HWCAP_ASIMDHP);
#elif defined(__aarch64__) && defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v)
        f.neon_dot = true;
#endif
    return f;
}

/* ---- the ISA list, best first ------------------------------------------ */

struct isa_entry {
    const char *name;
    const struct qlm_isa_kernels *k; /* NULL: not compiled in */
    bool (*supported)(const struct cpu_features *f);
};

#if defined(QLM_HAVE_AVX512VNNI)
static bool has_avx512vnni(const struct cpu_features *f) { return f->avx512vnni; }
#endif
#if defined(QLM_HAVE_AVXVNNI)
static bool has_avxvnni(const struct cpu_features *f) { return f->avxvnni; }
#endif
#if defined(QLM_HAVE_AVX2)
static bool has_avx2(const struct cpu_features *f) { return f->avx2; }
#endif
#if defined(QLM_HAVE_NEON)
static bool has_neon(const struct cpu_features *f) { return f->neon_dot; }
#endif
static bool has_scalar(const struct cpu_features *f) { (void)f; return true; }

static const struct isa_entry isa_list[] = {
#if defined(QLM_HAVE_AVX512VNNI)
    { "avx512vnni", &qlm_kernels_avx512vnni, has_avx512vnni },
#else
    { "avx512vnni", NULL, NULL },
#endif
#if defined(QLM_HAVE_AVXVNNI)
    { "avxvnni", &qlm_kernels_avxvnni, has_avxvnni },
#else
    { "avxvnni", NULL, NULL },
#endif
#if defined(QLM_HAVE_AVX2)
    { "avx2", &qlm_kernels_avx2, has_avx2 },
#else
    { "avx2", NULL, NULL },
#endif
#if defined(QLM_HAVE_NEON)
    { "neon", &qlm_kernels_neon, has_neon },
#else
    { "neon", NULL, NULL },
#endif
    { "scalar", &qlm_kernels_scalar, has_scalar },
};
#define N_ISA (sizeof isa_list / sizeof isa_list[0])

static bool entry_usable(const struct isa_entry *e, const struct cpu_features *f)
{
    return e->k != NULL && e->supported != NULL && e->supported(f);
}

/* ---- the active table, chosen once --------------------------------------- */

/* Chosen once per process (pthread_once, so two first callers cannot both
 * write it): the CPU's features, the names of the usable tables, and the
 * active table with every NULL entry filled from the scalar reference.  When
 * $QLM_ISA names a table that cannot run here, override_err keeps the error
 * qlm_kernels_init reports, and the best supported table is active for the
 * callers that do not ask init. */
static pthread_once_t select_once = PTHREAD_ONCE_INIT;
static struct cpu_features cpu;
static const char *usable_names[N_ISA + 1];
static struct qlm_isa_kernels merged;
static struct qlm_error override_err; /* code QLM_OK: no error */

/* The table $QLM_ISA = want names, or NULL with *err set. */
static const struct qlm_isa_kernels *pick_override(const char *want, struct qlm_error *err)
{
    const struct isa_entry *e = NULL;
    for (size_t i = 0; i < N_ISA; i++)
        if (strcmp(isa_list[i].name, want) == 0)
            e = &isa_list[i];
    if (e == NULL) {
        qlm_error_set(err, QLM_E_INVALID,
                      "QLM_ISA=%s: unknown kernel set (scalar, avx2, avxvnni, "
                      "avx512vnni, neon)", want);
        return NULL;
    }
    if (e->k == NULL) {
        qlm_error_set(err, QLM_E_INVALID, "QLM_ISA=%s: kernels not compiled into this build",
                      want);
        return NULL;
    }
    if (!entry_usable(e, &cpu)) {
        qlm_error_set(err, QLM_E_INVALID,
                      "QLM_ISA=%s: this CPU does not support these kernels", want);
        return NULL;
    }
    return e->k;
}

#define FILL(field) merged.field = k->field ? k->field : qlm_kernels_scalar.field

static void select_kernels(void)
{
    cpu = detect_cpu();
    size_t n = 0;
    for (size_t i = 0; i < N_ISA; i++)
        if (entry_usable(&isa_list[i], &cpu))
            usable_names[n++] = isa_list[i].name;
    usable_names[n] = NULL;

    const struct qlm_isa_kernels *k = NULL;
    const char *want = getenv("QLM_ISA");
    if (want != NULL && *want != '\0')
        k = pick_override(want, &override_err);
    for (size_t i = 0; i < N_ISA && k == NULL; i++) /* scalar is always usable */
        if (entry_usable(&isa_list[i], &cpu))
            k = isa_list[i].k;
    merged.name = k->name;
    FILL(quantize_act);
    FILL(gemm_q8);
    FILL(gemm_q4);
    FILL(gemm_f32);
    FILL(gemm_f16);
    FILL(gemm_bf16);
    FILL(wsum_f32);
    FILL(wsum_f16);
    FILL(softmax_f32);
    FILL(silu_mul_f32);
}

enum qlm_err qlm_kernels_init(struct qlm_error *err)
{
    pthread_once(&select_once, select_kernels);
    if (override_err.code != QLM_OK && err != NULL)
        *err = override_err;
    return override_err.code;
}

const struct qlm_isa_kernels *qlm_kernels_active(void)
{
    pthread_once(&select_once, select_kernels);
    return &merged;
}

const struct qlm_isa_kernels *qlm_kernels_get(const char *name)
{
    pthread_once(&select_once, select_kernels);
    for (size_t i = 0; i < N_ISA; i++)
        if (strcmp(isa_list[i].name, name) == 0)
            return entry_usable(&isa_list[i], &cpu) ? isa_list[i].k : NULL;
    return NULL;
}

const char *const *qlm_kernels_available(void)
{
    pthread_once(&select_once, select_kernels);
    return usable_names;
}

/* ---- per weight type ----------------------------------------------------- */

static void gemm_q8_op(const struct qlm_matrix *w, int r0, int r1, const struct qlm_acts *a,
                       float *y, int ldy)
{
    qlm_kernels_active()->gemm_q8(w->cols, w->group, w->data, r0, r1, a->q, a->d,
                                  a->nt, y, ldy);
}

static void gemm_q4_op(const struct qlm_matrix *w, int r0, int r1, const struct qlm_acts *a,
                       float *y, int ldy)
{
    qlm_kernels_active()->gemm_q4(w->cols, w->group, w->data, r0, r1, a->q, a->d,
                                  a->nt, y, ldy);
}

static void gemm_f32_op(const struct qlm_matrix *w, int r0, int r1, const struct qlm_acts *a,
                        float *y, int ldy)
{
    qlm_kernels_active()->gemm_f32(w->cols, w->data, r0, r1, a->x, a->nt, y, ldy);
}

static void gemm_f16_op(const struct qlm_matrix *w, int r0, int r1, const struct qlm_acts *a,
                        float *y, int ldy)
{
    qlm_kernels_active()->gemm_f16(w->cols, w->data, r0, r1, a->x, a->nt, y, ldy);
}

static void gemm_bf16_op(const struct qlm_matrix *w, int r0, int r1, const struct qlm_acts *a,
                         float *y, int ldy)
{
    qlm_kernels_active()->gemm_bf16(w->cols, w->data, r0, r1, a->x, a->nt, y, ldy);
}

static const struct qlm_type_ops type_ops[QLM_DTYPE_COUNT] = {
    [QLM_F32] = { false, gemm_f32_op },
    [QLM_F16] = { false, gemm_f16_op },
    [QLM_BF16] = { false, gemm_bf16_op },
    [QLM_Q8] = { true, gemm_q8_op },
    [QLM_Q4] = { true, gemm_q4_op },
};

const struct qlm_type_ops *qlm_type_ops(enum qlm_dtype t)
{
    if ((unsigned)t >= QLM_DTYPE_COUNT)
        return NULL;
    return &type_ops[t];
}
