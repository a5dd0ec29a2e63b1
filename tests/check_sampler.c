/*
 * check_sampler.c — the token sampler: greedy, seeds, truncation, and the
 * frequencies of temperature sampling.
 */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qlm.h"

static struct qlm_sampler *make(float temp, int top_k, float top_p, float min_p, uint64_t seed,
                                int vocab)
{
    struct qlm_sampler_params p;
    qlm_sampler_defaults(&p);
    p.temp = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    struct qlm_sampler *s;
    struct qlm_error err;
    ck_assert_msg(qlm_sampler_new(&s, &p, vocab, &err) == QLM_OK, "%s", err.msg);
    return s;
}

static void random_logits(float *l, int n, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        l[i] = (float)((double)(x >> 11) * 0x1p-53 * 8.0 - 4.0);
    }
}

static int argmax(const float *l, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b])
            b = i;
    return b;
}

START_TEST(test_greedy_is_argmax)
{
    enum { V = 1000 };
    float l[V];
    struct qlm_sampler *s = make(0.0f, 0, 1.0f, 0.0f, 1, V);
    for (int k = 0; k < 20; k++) {
        random_logits(l, V, 100 + (uint64_t)k);
        ck_assert_int_eq(qlm_sample(s, l), argmax(l, V));
    }
    /* ties: the lowest id */
    for (int i = 0; i < V; i++)
        l[i] = 0.0f;
    l[17] = l[400] = l[999] = 3.0f;
    ck_assert_int_eq(qlm_sample(s, l), 17);
    qlm_sampler_free(s);
}
END_TEST

START_TEST(test_same_seed_same_sequence)
{
    enum { V = 500, N = 200 };
    float l[V];
    random_logits(l, V, 5);
    struct qlm_sampler *a = make(1.0f, 50, 0.9f, 0.01f, 1234, V);
    struct qlm_sampler *b = make(1.0f, 50, 0.9f, 0.01f, 1234, V);
    struct qlm_sampler *c = make(1.0f, 50, 0.9f, 0.01f, 1235, V);
    int differ = 0, distinct = 0, first = -1;
    for (int i = 0; i < N; i++) {
        int x = qlm_sample(a, l), y = qlm_sample(b, l), z = qlm_sample(c, l);
        ck_assert_int_eq(x, y);
        differ += x != z;
        if (first < 0)
            first = x;
        distinct += x != first;
    }
    ck_assert_int_gt(differ, 0);    /* another seed, another sequence */
    ck_assert_int_gt(distinct, 0);  /* and it is not stuck on one token */
    qlm_sampler_free(a);
    qlm_sampler_free(b);
    qlm_sampler_free(c);
}
END_TEST

START_TEST(test_top_k1_and_tiny_top_p_are_greedy)
{
    enum { V = 2000 };
    float l[V];
    struct qlm_sampler *k1 = make(1.5f, 1, 1.0f, 0.0f, 9, V);
    struct qlm_sampler *p0 = make(1.5f, 0, 1e-6f, 0.0f, 9, V);
    struct qlm_sampler *m1 = make(1.5f, 0, 1.0f, 1.0f, 9, V);
    for (int k = 0; k < 50; k++) {
        random_logits(l, V, 1000 + (uint64_t)k);
        int g = argmax(l, V);
        ck_assert_int_eq(qlm_sample(k1, l), g);
        ck_assert_int_eq(qlm_sample(p0, l), g);
        ck_assert_int_eq(qlm_sample(m1, l), g);
    }
    qlm_sampler_free(k1);
    qlm_sampler_free(p0);
    qlm_sampler_free(m1);
}
END_TEST

START_TEST(test_top_k_restricts)
{
    enum { V = 100 };
    float l[V];
    random_logits(l, V, 77);
    /* the 3 best ids, found independently */
    float sorted[V];
    memcpy(sorted, l, sizeof l);
    float third = -INFINITY;
    for (int r = 0; r < 3; r++) {
        int b = argmax(sorted, V);
        third = sorted[b];
        sorted[b] = -INFINITY;
    }
    struct qlm_sampler *s = make(5.0f, 3, 1.0f, 0.0f, 3, V);
    int seen[V] = { 0 };
    for (int i = 0; i < 3000; i++) {
        int t = qlm_sample(s, l);
        ck_assert_float_ge(l[t], third);
        seen[t]++;
    }
    int n_seen = 0;
    for (int i = 0; i < V; i++)
        n_seen += seen[i] > 0;
    ck_assert_int_eq(n_seen, 3); /* at temperature 5 all three show up */
    qlm_sampler_free(s);
}
END_TEST

/* Logits log(0.5), log(0.3), log(0.2) at temperature 1 give those
 * frequencies; at temperature 2, probabilities ~ sqrt(p) renormalised. */
START_TEST(test_temperature_frequencies)
{
    float l[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
    const int N = 20000;
    struct qlm_sampler *s = make(1.0f, 0, 1.0f, 0.0f, 2024, 3);
    int c[3] = { 0, 0, 0 };
    for (int i = 0; i < N; i++)
        c[qlm_sample(s, l)]++;
    ck_assert_double_lt(fabs(c[0] / (double)N - 0.5), 0.02);
    ck_assert_double_lt(fabs(c[1] / (double)N - 0.3), 0.02);
    ck_assert_double_lt(fabs(c[2] / (double)N - 0.2), 0.02);
    qlm_sampler_free(s);

    s = make(2.0f, 0, 1.0f, 0.0f, 2025, 3);
    double w[3] = { sqrt(0.5), sqrt(0.3), sqrt(0.2) }, tot = w[0] + w[1] + w[2];
    c[0] = c[1] = c[2] = 0;
    for (int i = 0; i < N; i++)
        c[qlm_sample(s, l)]++;
    for (int k = 0; k < 3; k++)
        ck_assert_double_lt(fabs(c[k] / (double)N - w[k] / tot), 0.02);
    qlm_sampler_free(s);

    /* top-p 0.7 keeps {0.5, 0.3}: renormalised 0.625 / 0.375, never id 2 */
    s = make(1.0f, 0, 0.7f, 0.0f, 2026, 3);
    c[0] = c[1] = c[2] = 0;
    for (int i = 0; i < N; i++)
        c[qlm_sample(s, l)]++;
    ck_assert_int_eq(c[2], 0);
    ck_assert_double_lt(fabs(c[0] / (double)N - 0.625), 0.02);
    qlm_sampler_free(s);

    /* min-p 0.5: p >= 0.25 keeps {0.5, 0.3} only */
    s = make(1.0f, 0, 1.0f, 0.5f, 2027, 3);
    c[0] = c[1] = c[2] = 0;
    for (int i = 0; i < N; i++)
        c[qlm_sample(s, l)]++;
    ck_assert_int_eq(c[2], 0);
    ck_assert_int_gt(c[1], N / 5);
    qlm_sampler_free(s);
}
END_TEST

START_TEST(test_bad_params_refused)
{
    struct qlm_sampler_params p;
    struct qlm_sampler *s = NULL;
    struct qlm_error err;
    qlm_sampler_defaults(&p);
    p.temp = -1.0f;
    ck_assert_int_eq(qlm_sampler_new(&s, &p, 10, &err), QLM_E_INVALID);
    qlm_sampler_defaults(&p);
    p.top_p = 0.0f;
    ck_assert_int_eq(qlm_sampler_new(&s, &p, 10, &err), QLM_E_INVALID);
    qlm_sampler_defaults(&p);
    p.top_k = -2;
    ck_assert_int_eq(qlm_sampler_new(&s, &p, 10, &err), QLM_E_INVALID);
    qlm_sampler_defaults(&p);
    p.temp = NAN;
    ck_assert_int_eq(qlm_sampler_new(&s, &p, 10, &err), QLM_E_INVALID);
    qlm_sampler_defaults(&p);
    ck_assert_int_eq(qlm_sampler_new(&s, &p, 0, &err), QLM_E_INVALID);
    ck_assert_ptr_null(s);
}
END_TEST

static Suite *sampler_suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_greedy_is_argmax);
    tcase_add_test(tc, test_same_seed_same_sequence);
    tcase_add_test(tc, test_top_k1_and_tiny_top_p_are_greedy);
    tcase_add_test(tc, test_top_k_restricts);
    tcase_add_test(tc, test_temperature_frequencies);
    tcase_add_test(tc, test_bad_params_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sampler_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
