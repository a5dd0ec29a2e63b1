/* check_stats.c — the statistics behind qlm-ppl / qlm-bench on values worked
 * out by hand (or with the naive formula in the test itself). */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "stats.h"

START_TEST(log_softmax_uniform)
{
    float x[4] = {0, 0, 0, 0};
    double out[4];
    double lse = qlm_stats_log_softmax(x, 4, out);
    ck_assert_double_eq_tol(lse, log(4.0), 1e-15);
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(out[i], -log(4.0), 1e-15);
}
END_TEST

START_TEST(log_softmax_matches_naive)
{
    float x[3] = {1.0f, 2.0f, 3.0f};
    double out[3];
    double naive_lse = log(exp(1.0) + exp(2.0) + exp(3.0));
    double lse = qlm_stats_log_softmax(x, 3, out);
    ck_assert_double_eq_tol(lse, naive_lse, 1e-14);
    double total = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(out[i], x[i] - naive_lse, 1e-14);
        total += exp(out[i]);
    }
    ck_assert_double_eq_tol(total, 1.0, 1e-14);
}
END_TEST

START_TEST(log_softmax_no_overflow)
{
    /* exp(1000) overflows a double: the max must be subtracted first. */
    float x[2] = {1000.0f, 1000.0f};
    double out[2];
    double lse = qlm_stats_log_softmax(x, 2, out);
    ck_assert(isfinite(lse));
    ck_assert_double_eq_tol(out[0], -log(2.0), 1e-12);
    ck_assert_double_eq_tol(qlm_stats_nll(x, 2, 1), log(2.0), 1e-12);
    float y[2] = {-1000.0f, 0.0f};
    ck_assert_double_eq_tol(qlm_stats_nll(y, 2, 1), log1p(exp(-1000.0)), 1e-15);
    ck_assert_double_eq_tol(qlm_stats_nll(y, 2, 0), 1000.0, 1e-9);
}
END_TEST

START_TEST(nll_matches_log_softmax)
{
    float x[5] = {0.5f, -1.25f, 3.0f, 2.0f, -7.0f};
    double out[5];
    qlm_stats_log_softmax(x, 5, out);
    for (size_t t = 0; t < 5; t++)
        ck_assert_double_eq_tol(qlm_stats_nll(x, 5, t), -out[t], 1e-13);
}
END_TEST

START_TEST(kl_known)
{
    double p[2] = {log(0.5), log(0.5)};
    double q[2] = {log(0.25), log(0.75)};
    double want = 0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75);
    ck_assert_double_eq_tol(qlm_stats_kl(p, q, 2), want, 1e-15);
    /* Not symmetric: KL(Q || P) differs. */
    double want_qp = 0.25 * log(0.25 / 0.5) + 0.75 * log(0.75 / 0.5);
    ck_assert_double_eq_tol(qlm_stats_kl(q, p, 2), want_qp, 1e-15);
    ck_assert(fabs(want - want_qp) > 1e-3);
    /* Identical distributions: exactly zero. */
    ck_assert(qlm_stats_kl(q, q, 2) == 0.0);
    /* p_i == 0 contributes nothing even where q_i is tiny. */
    double pz[3] = {-INFINITY, log(0.5), log(0.5)};
    double qz[3] = {log(1e-300), log(0.5), log(0.5)};
    ck_assert(qlm_stats_kl(pz, qz, 3) == 0.0);
}
END_TEST

START_TEST(kl_from_logits)
{
    float a[3] = {2.0f, 1.0f, 0.0f}, b[3] = {0.0f, 1.0f, 2.0f};
    double la[3], lb[3];
    qlm_stats_log_softmax(a, 3, la);
    qlm_stats_log_softmax(b, 3, lb);
    double za = exp(2.0) + exp(1.0) + 1.0;
    double want = 0;
    for (int i = 0; i < 3; i++) {
        double pa = exp(a[i]) / za, pb = exp(b[i]) / za; /* same partition by symmetry */
        want += pa * log(pa / pb);
    }
    ck_assert_double_eq_tol(qlm_stats_kl(la, lb, 3), want, 1e-14);
    ck_assert(qlm_stats_kl(la, lb, 3) > 0.5);
}
END_TEST

START_TEST(compare_matches_two_pass)
{
    enum { N = 1000 };
    static float a[N], b[N];
    static double la[N], lb[N], scratch[N];
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        a[i] = (float)((seed >> 8) % 20000) / 1000.0f - 10.0f;
        seed = seed * 1103515245u + 12345u;
        b[i] = a[i] + (float)((seed >> 8) % 2000) / 10000.0f - 0.1f;
    }
    qlm_stats_log_softmax(a, N, la);
    qlm_stats_log_softmax(b, N, lb);
    double np, nq, kl;
    qlm_stats_compare(a, b, N, 17, scratch, &np, &nq, &kl);
    ck_assert_double_eq_tol(np, -la[17], 1e-12);
    ck_assert_double_eq_tol(nq, -lb[17], 1e-12);
    double want = qlm_stats_kl(la, lb, N);
    ck_assert(want > 1e-4);
    ck_assert_double_eq_tol(kl, want, 1e-12);
    /* Reversed: KL(b || a). */
    qlm_stats_compare(b, a, N, 3, scratch, &np, &nq, &kl);
    ck_assert_double_eq_tol(kl, qlm_stats_kl(lb, la, N), 1e-12);
    ck_assert_double_eq_tol(np, -lb[3], 1e-12);
    /* Identical rows: exactly zero. */
    qlm_stats_compare(a, a, N, 0, scratch, &np, &nq, &kl);
    ck_assert(kl == 0.0 && np == nq);
    /* The 2-element case by hand: P = (1/2, 1/2), Q = softmax(0, ln 3) = (1/4, 3/4). */
    float p2[2] = {0.0f, 0.0f}, q2[2] = {0.0f, (float)log(3.0)};
    qlm_stats_compare(p2, q2, 2, 1, scratch, &np, &nq, &kl);
    ck_assert_double_eq_tol(kl, 0.5 * log(2.0) + 0.5 * log(2.0 / 3.0), 1e-7);
    ck_assert_double_eq_tol(nq, -log(0.75), 1e-7);
    ck_assert_double_eq_tol(np, log(2.0), 1e-15);
}
END_TEST

START_TEST(argmax_first_on_ties)
{
    float x[5] = {1, 3, 2, 3, -1};
    ck_assert_uint_eq(qlm_stats_argmax(x, 5), 1);
    float y[1] = {-5};
    ck_assert_uint_eq(qlm_stats_argmax(y, 1), 0);
    float z[3] = {-3, -2, -1};
    ck_assert_uint_eq(qlm_stats_argmax(z, 3), 2);
}
END_TEST

START_TEST(percentiles)
{
    double x[5] = {5, 1, 4, 2, 3};
    qlm_stats_sort(x, 5);
    for (int i = 0; i < 5; i++)
        ck_assert(x[i] == i + 1);
    ck_assert_double_eq_tol(qlm_stats_percentile_sorted(x, 5, 50), 3.0, 1e-15);
    ck_assert_double_eq_tol(qlm_stats_percentile_sorted(x, 5, 25), 2.0, 1e-15);
    ck_assert_double_eq_tol(qlm_stats_percentile_sorted(x, 5, 90), 4.6, 1e-12);
    ck_assert_double_eq_tol(qlm_stats_percentile_sorted(x, 5, 99.9), 4.996, 1e-12);
    ck_assert(qlm_stats_percentile_sorted(x, 5, 0) == 1.0);
    ck_assert(qlm_stats_percentile_sorted(x, 5, 100) == 5.0);
    double one[1] = {7};
    ck_assert(qlm_stats_percentile_sorted(one, 1, 99) == 7.0);
    ck_assert(isnan(qlm_stats_percentile_sorted(one, 0, 50)));
    /* Even count: the median interpolates. */
    double even[4] = {1, 2, 3, 10};
    ck_assert_double_eq_tol(qlm_stats_percentile_sorted(even, 4, 50), 2.5, 1e-15);
}
END_TEST

START_TEST(running_mean_sd)
{
    double v[8] = {2, 4, 4, 4, 5, 5, 7, 9};
    struct qlm_stats_acc a = {0, 0, 0};
    for (int i = 0; i < 8; i++)
        qlm_stats_acc_add(&a, v[i]);
    ck_assert_uint_eq(a.n, 8);
    ck_assert_double_eq_tol(a.mean, 5.0, 1e-15);
    ck_assert_double_eq_tol(qlm_stats_acc_sd(&a), sqrt(32.0 / 7.0), 1e-14);
    ck_assert_double_eq_tol(qlm_stats_acc_sem(&a), sqrt(32.0 / 7.0) / sqrt(8.0), 1e-14);
    double mean, sd;
    qlm_stats_mean_sd(v, 8, &mean, &sd);
    ck_assert_double_eq_tol(mean, 5.0, 1e-15);
    ck_assert_double_eq_tol(sd, sqrt(32.0 / 7.0), 1e-14);
    struct qlm_stats_acc b = {0, 0, 0};
    qlm_stats_acc_add(&b, 3.0);
    ck_assert(qlm_stats_acc_sd(&b) == 0.0 && qlm_stats_acc_sem(&b) == 0.0);
    /* Large offset: Welford keeps precision where sum-of-squares would not. */
    struct qlm_stats_acc c = {0, 0, 0};
    for (int i = 0; i < 8; i++)
        qlm_stats_acc_add(&c, 1e9 + v[i]);
    ck_assert_double_eq_tol(qlm_stats_acc_sd(&c), sqrt(32.0 / 7.0), 1e-6);
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, log_softmax_uniform);
    tcase_add_test(tc, log_softmax_matches_naive);
    tcase_add_test(tc, log_softmax_no_overflow);
    tcase_add_test(tc, nll_matches_log_softmax);
    tcase_add_test(tc, kl_known);
    tcase_add_test(tc, kl_from_logits);
    tcase_add_test(tc, compare_matches_two_pass);
    tcase_add_test(tc, argmax_first_on_ties);
    tcase_add_test(tc, percentiles);
    tcase_add_test(tc, running_mean_sd);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stats_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
