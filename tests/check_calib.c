/*
 * check_calib.c — the activation statistics of runtime/calib.c, through
 * qlm.h (qlm_session_collect_stats and its accessors), on the tiny model's
 * fixtures: the same bits whatever the thread count and however the tokens
 * are split into qlm_eval calls, no effect on the logits, on/off semantics,
 * the head's row count, errors.  check_model compares the values with its
 * double-precision reference of the forward pass.
 */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qlm.h"

static char f32_path[1024], q8_path[1024];

static void setup(void)
{
    const char *b = getenv("top_builddir");
    snprintf(f32_path, sizeof f32_path, "%s/tests/fixtures/tiny-f32.qlm", b ? b : ".");
    snprintf(q8_path, sizeof q8_path, "%s/tests/fixtures/tiny-q8.qlm", b ? b : ".");
}

static struct qlm_model *open_model(const char *path)
{
    struct qlm_model *m;
    struct qlm_error err;
    ck_assert_msg(qlm_model_open(&m, path, &err) == QLM_OK, "%s (run tests/fixtures.sh)",
                  err.msg);
    return m;
}

static int32_t toks[200];

static void make_tokens(int vocab)
{
    uint64_t st = 99;
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((st >> 33) % (uint64_t)vocab);
    }
}

/* A session of `threads` collecting over n tokens fed in calls of the
 * given sizes (0-terminated, the last repeats), all logits kept. */
static struct qlm_session *collect(struct qlm_model *m, int threads, int n, const int *sizes)
{
    struct qlm_session *s;
    struct qlm_error err;
    ck_assert_int_eq(qlm_session_new(&s, m, 256, threads, &err), QLM_OK);
    ck_assert_int_eq(qlm_session_collect_stats(s, true, &err), QLM_OK);
    for (int done = 0, c = 0; done < n; done += sizes[c], c = sizes[c + 1] ? c + 1 : c) {
        int k = sizes[c] < n - done ? sizes[c] : n - done;
        ck_assert_msg(qlm_eval(s, toks + done, k, true, &err) == QLM_OK, "%s", err.msg);
    }
    return s;
}

/* Every entry of a and b holds the same names, counts and bits. */
static void same_stats(const struct qlm_session *a, const struct qlm_session *b)
{
    ck_assert_int_eq(qlm_session_n_stats(a), qlm_session_n_stats(b));
    for (int i = 0; i < qlm_session_n_stats(a); i++) {
        struct qlm_weight_stats x, y;
        ck_assert_int_eq(qlm_session_stats(a, i, &x, NULL), QLM_OK);
        ck_assert_int_eq(qlm_session_stats(b, i, &y, NULL), QLM_OK);
        ck_assert_str_eq(x.name, y.name);
        ck_assert_int_eq(x.cols, y.cols);
        ck_assert_uint_eq(x.count, y.count);
        ck_assert_msg(memcmp(x.sum_sq, y.sum_sq, (size_t)x.cols * sizeof(double)) == 0,
                      "%s differs", x.name);
    }
}

static const int ONE_CALL[] = {1000, 0};
static const int UNEVEN[] = {1, 13, 36, 5, 0};

/* The names are the file's matrices, each with its tensor's column count;
 * q/k/v and gate/up share their input. */
START_TEST(names_and_shapes)
{
    const char *paths[2] = {f32_path, q8_path};
    struct qlm_model *m = open_model(paths[_i]);
    const struct qlm_hparams *hp = qlm_model_hparams(m);
    const struct qlm_file *f = qlm_model_file(m);
    struct qlm_session *s;
    struct qlm_error err;
    struct qlm_weight_stats ws, ws2;
    ck_assert_int_eq(qlm_session_new(&s, m, 64, 1, &err), QLM_OK);
    ck_assert_int_eq(qlm_session_n_stats(s), 0);
    ck_assert_int_eq(qlm_session_stats(s, 0, &ws, &err), QLM_E_RANGE);
    ck_assert_int_eq(qlm_session_stats_find(s, "lm_head.weight", &ws, &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "none collected"));
    ck_assert_int_eq(qlm_session_collect_stats(s, true, &err), QLM_OK);
    int n = qlm_session_n_stats(s);
    ck_assert_int_eq(n, 7 * hp->n_layers + 1);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(qlm_session_stats(s, i, &ws, &err), QLM_OK);
        const struct qlm_tensor_info *t = qlm_file_tensor(f, ws.name);
        ck_assert_msg(t != NULL && t->n_dims == 2, "%s is no matrix of the file", ws.name);
        ck_assert_int_eq(ws.cols, (int)t->dims[1]);
        ck_assert_uint_eq(ws.count, 0);
        for (int c = 0; c < ws.cols; c++)
            ck_assert(ws.sum_sq[c] == 0.0);
    }
    ck_assert_int_eq(qlm_session_stats(s, n - 1, &ws, &err), QLM_OK);
    ck_assert_str_eq(ws.name, "model.embed_tokens.weight"); /* tied: the head is the embedding */
    ck_assert_int_eq(qlm_session_stats(s, 0, &ws, &err), QLM_OK);
    ck_assert_str_eq(ws.name, "model.layers.0.self_attn.q_proj.weight");
    ck_assert_int_eq(qlm_session_stats_find(s, "model.layers.0.self_attn.v_proj.weight", &ws2,
                                            &err), QLM_OK);
    ck_assert_ptr_eq(ws2.sum_sq, ws.sum_sq);
    ck_assert_int_eq(qlm_session_stats_find(s, "model.layers.3.mlp.up_proj.weight", &ws, &err),
                     QLM_OK);
    ck_assert_int_eq(qlm_session_stats_find(s, "model.layers.3.mlp.gate_proj.weight", &ws2,
                                            &err), QLM_OK);
    ck_assert_ptr_eq(ws2.sum_sq, ws.sum_sq);
    ck_assert_int_eq(qlm_session_stats(s, -1, &ws, &err), QLM_E_RANGE);
    ck_assert_int_eq(qlm_session_stats(s, n, &ws, &err), QLM_E_RANGE);
    ck_assert_int_eq(qlm_session_stats_find(s, "model.norm.weight", &ws, &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "no statistics for 'model.norm.weight'"));
    qlm_session_free(s);
    qlm_model_free(m);
}
END_TEST

/* Threads and call sizes change no bit of the sums; collecting changes no
 * bit of the logits. */
START_TEST(deterministic)
{
    const char *paths[2] = {f32_path, q8_path};
    struct qlm_model *m = open_model(paths[_i]);
    int vocab = qlm_model_hparams(m)->vocab_size, n = 150;
    make_tokens(vocab);
    struct qlm_session *a = collect(m, 1, n, ONE_CALL);
    struct qlm_session *b = collect(m, 3, n, ONE_CALL);
    struct qlm_session *c = collect(m, 2, n, UNEVEN);
    same_stats(a, b);
    same_stats(a, c);
    struct qlm_weight_stats ws;
    ck_assert_int_eq(qlm_session_stats(a, 5, &ws, NULL), QLM_OK);
    ck_assert_uint_eq(ws.count, (uint64_t)n);
    double total = 0;
    for (int k = 0; k < ws.cols; k++)
        total += ws.sum_sq[k];
    ck_assert(isfinite(total) && total > 0);
    /* the logits of a session that does not collect */
    struct qlm_session *plain;
    struct qlm_error err;
    ck_assert_int_eq(qlm_session_new(&plain, m, 256, 1, &err), QLM_OK);
    ck_assert_int_eq(qlm_eval(plain, toks, n, true, &err), QLM_OK);
    ck_assert(memcmp(qlm_logits(plain), qlm_logits(a), (size_t)n * vocab * sizeof(float)) == 0);
    qlm_session_free(plain);
    qlm_session_free(a);
    qlm_session_free(b);
    qlm_session_free(c);
    qlm_model_free(m);
}
END_TEST

/* Off keeps what was collected and adds nothing; on starts again from
 * zero; the head counts only the rows whose logits are computed. */
START_TEST(on_off_and_head_rows)
{
    struct qlm_model *m = open_model(f32_path);
    make_tokens(qlm_model_hparams(m)->vocab_size);
    struct qlm_session *s = collect(m, 2, 40, ONE_CALL);
    int n = qlm_session_n_stats(s);
    struct qlm_weight_stats first, head;
    struct qlm_error err;
    ck_assert_int_eq(qlm_session_stats(s, 0, &first, &err), QLM_OK);
    double *copy = malloc((size_t)first.cols * sizeof *copy);
    memcpy(copy, first.sum_sq, (size_t)first.cols * sizeof *copy);
    ck_assert_int_eq(qlm_session_collect_stats(s, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_eval(s, toks + 40, 20, true, &err), QLM_OK);
    ck_assert_int_eq(qlm_session_n_stats(s), n);
    ck_assert_int_eq(qlm_session_stats(s, 0, &first, &err), QLM_OK);
    ck_assert_uint_eq(first.count, 40);
    ck_assert(memcmp(copy, first.sum_sq, (size_t)first.cols * sizeof *copy) == 0);
    /* on again: from zero; 30 tokens without all logits: the head sees 1 */
    ck_assert_int_eq(qlm_session_collect_stats(s, true, &err), QLM_OK);
    ck_assert_int_eq(qlm_session_stats(s, n - 1, &head, &err), QLM_OK);
    ck_assert_uint_eq(head.count, 0);
    qlm_session_rewind(s, 0);
    ck_assert_int_eq(qlm_eval(s, toks, 30, false, &err), QLM_OK);
    ck_assert_int_eq(qlm_session_stats(s, 0, &first, &err), QLM_OK);
    ck_assert_int_eq(qlm_session_stats(s, n - 1, &head, &err), QLM_OK);
    ck_assert_uint_eq(first.count, 30);
    ck_assert_uint_eq(head.count, 1);
    /* restarted from zero: the first 30 of the 40 tokens evaluated before
     * sum to less than all 40 did */
    double now = 0, before = 0;
    for (int c = 0; c < first.cols; c++) {
        now += first.sum_sq[c];
        before += copy[c];
    }
    ck_assert(now > 0 && now < before);
    free(copy);
    qlm_session_free(s);
    qlm_model_free(m);
}
END_TEST

static Suite *calib_suite(void)
{
    Suite *s = suite_create("calib");
    TCase *c = tcase_create("calib");
    tcase_set_timeout(c, 120);
    tcase_add_unchecked_fixture(c, setup, NULL);
    tcase_add_loop_test(c, names_and_shapes, 0, 2);
    tcase_add_loop_test(c, deterministic, 0, 2);
    tcase_add_test(c, on_off_and_head_rows);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(calib_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
