/*
 * check_kernels.c — every SIMD kernel table against the scalar reference.
 *
 * For each ISA compiled in and supported by this CPU, and, when the build has
 * AVX2, the AVX-VNNI code compiled with an AVX2 emulation of dpbusd and the
 * AVX-512 VNNI code compiled with AVX2 emulations of its AVX-512 intrinsics
 * (so their arithmetic is checked on CPUs without VNNI or AVX-512).  The comparisons themselves
 * are in kernels_cases.h, shared with the NEON driver run under qemu.
 */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

#if defined(QLM_TEST_VNNI_EMU)
extern const struct qlm_isa_kernels qlm_kernels_avxvnni_emu;
#endif
#if defined(QLM_TEST_AVX512_EMU)
extern const struct qlm_isa_kernels qlm_kernels_avx512vnni_emu;
#endif

/* ---- the ISA tables under test ---------------------------------------- */

static const struct qlm_isa_kernels *isas[8];
static int n_isas;

static void collect_isas(void)
{
    static const char *const compiled[] = {
#if defined(QLM_HAVE_AVX2)
        "avx2",
#endif
#if defined(QLM_HAVE_AVXVNNI)
        "avxvnni",
#endif
#if defined(QLM_HAVE_AVX512VNNI)
        "avx512vnni",
#endif
#if defined(QLM_HAVE_NEON)
        "neon",
#endif
        NULL,
    };
    n_isas = 0;
    for (int i = 0; compiled[i] != NULL; i++) {
        const struct qlm_isa_kernels *k = qlm_kernels_get(compiled[i]);
        if (k != NULL) {
            isas[n_isas++] = k;
            printf("check_kernels: %s: compiled in, supported by this CPU: tested\n", compiled[i]);
        } else {
            printf("check_kernels: %s: compiled in, NOT supported by this CPU: not run\n",
                   compiled[i]);
        }
    }
#if defined(QLM_TEST_VNNI_EMU)
    if (qlm_kernels_get("avx2") != NULL) {
        isas[n_isas++] = &qlm_kernels_avxvnni_emu;
        printf("check_kernels: avxvnni-emu (AVX-VNNI code, dpbusd emulated with AVX2): tested\n");
    }
#endif
#if defined(QLM_TEST_AVX512_EMU)
    if (qlm_kernels_get("avx2") != NULL) {
        isas[n_isas++] = &qlm_kernels_avx512vnni_emu;
        printf("check_kernels: avx512vnni-emu (AVX-512 VNNI code, AVX-512 emulated with AVX2): "
               "tested\n");
    }
#endif
    if (n_isas == 0)
        printf("check_kernels: no SIMD kernel set runs here; only the scalar self-checks ran\n");
    fflush(stdout);
}

#define KT_ASSERT(cond, ...) ck_assert_msg(cond, __VA_ARGS__)
#include "kernels_cases.h"

START_TEST(ck_test_quantize_act) { test_quantize_act(); }
END_TEST

START_TEST(ck_test_quantize_act_edges) { test_quantize_act_edges(); }
END_TEST

START_TEST(ck_test_gemm_q8_exact) { test_gemm_q8_exact(); }
END_TEST

START_TEST(ck_test_gemm_q8_scaled) { test_gemm_q8_scaled(); }
END_TEST

START_TEST(ck_test_gemm_q4_exact) { test_gemm_q4_exact(); }
END_TEST

START_TEST(ck_test_gemm_q4_scaled) { test_gemm_q4_scaled(); }
END_TEST

START_TEST(ck_test_gemm_q_extremes) { test_gemm_q_extremes(); }
END_TEST

START_TEST(ck_test_gemm_float) { test_gemm_float(); }
END_TEST

START_TEST(ck_test_wsum) { test_wsum(); }
END_TEST

START_TEST(ck_test_softmax) { test_softmax(); }
END_TEST

START_TEST(ck_test_silu) { test_silu(); }
END_TEST

/* ---- dispatch ----------------------------------------------------------- */

START_TEST(test_dispatch)
{
    const char *const *names = qlm_kernels_available();
    bool scalar = false;
    for (int i = 0; names[i] != NULL; i++) {
        const struct qlm_isa_kernels *k = qlm_kernels_get(names[i]);
        ck_assert_ptr_nonnull(k);
        ck_assert_str_eq(k->name, names[i]);
        ck_assert_ptr_nonnull(k->quantize_act);
        ck_assert_ptr_nonnull(k->gemm_q8);
        ck_assert_ptr_nonnull(k->gemm_q4);
        scalar |= strcmp(names[i], "scalar") == 0;
    }
    ck_assert(scalar);
    ck_assert_ptr_null(qlm_kernels_get("no-such-isa"));
    /* the active table: chosen once, one of those, every entry filled */
    const struct qlm_isa_kernels *a = qlm_kernels_active();
    ck_assert_ptr_eq(a, qlm_kernels_active());
    ck_assert_ptr_nonnull(qlm_kernels_get(a->name));
    ck_assert(a->quantize_act && a->gemm_q8 && a->gemm_q4 && a->gemm_f32 && a->gemm_f16 &&
              a->gemm_bf16 && a->wsum_f32 && a->wsum_f16 && a->softmax_f32 && a->silu_mul_f32);
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dispatch);
    tcase_add_test(tc, ck_test_quantize_act);
    tcase_add_test(tc, ck_test_quantize_act_edges);
    tcase_add_test(tc, ck_test_gemm_q8_exact);
    tcase_add_test(tc, ck_test_gemm_q8_scaled);
    tcase_add_test(tc, ck_test_gemm_q4_exact);
    tcase_add_test(tc, ck_test_gemm_q4_scaled);
    tcase_add_test(tc, ck_test_gemm_q_extremes);
    tcase_add_test(tc, ck_test_gemm_float);
    tcase_add_test(tc, ck_test_wsum);
    tcase_add_test(tc, ck_test_softmax);
    tcase_add_test(tc, ck_test_silu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    collect_isas();
    SRunner *sr = srunner_create(kernels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
