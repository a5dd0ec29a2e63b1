/* check_safetensors.c — the safetensors reader: valid single and sharded
 * checkpoints, conversion to f32, and a table of malformed files, each of
 * which must be refused with the expected code and a message naming it. */
#include <config.h>

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qlm_format.h"
#include "tmpdir.h"

/* A safetensors file: u64 header length (hlen, or strlen(json) if
 * hlen == USE_LEN), the JSON, then ndata bytes (value i & 0xff). */
#define USE_LEN UINT64_MAX
static void write_st(const char *path, const char *json, uint64_t hlen, size_t ndata,
                     size_t total_cut)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t len = hlen == USE_LEN ? strlen(json) : hlen;
    uint8_t l[8];
    for (int i = 0; i < 8; i++)
        l[i] = (uint8_t)(len >> (8 * i));
    size_t n = 0, cut = total_cut ? total_cut : SIZE_MAX;
    for (int i = 0; i < 8 && n < cut; i++, n++)
        fputc(l[i], f);
    for (const char *p = json; *p && n < cut; p++, n++)
        fputc(*p, f);
    for (size_t i = 0; i < ndata && n < cut; i++, n++)
        fputc((int)(i & 0xff), f);
    ck_assert_int_eq(fclose(f), 0);
}

struct bad_case {
    const char *what;
    const char *json;
    uint64_t hlen;     /* USE_LEN: the JSON's length */
    size_t ndata;
    size_t cut;        /* truncate the whole file to this many bytes (0: no) */
    enum qlm_err want;
};

#define T(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape \
                                 ",\"data_offsets\":[" #b "," #e "]}"

static const struct bad_case bad[] = {
    {"truncated header length", "{}", USE_LEN, 0, 5, QLM_E_FORMAT},
    {"empty file", "{}", USE_LEN, 0, 0 + 1, QLM_E_FORMAT},
    {"header length past the end", "{}", 1000, 0, 0, QLM_E_RANGE},
    {"absurd header length", "{}", 1ull << 62, 0, 0, QLM_E_RANGE},
    {"header length over 100 MB", "{}", 100000001, 0, 0, QLM_E_RANGE},
    {"not JSON", "{\"a\":", USE_LEN, 0, 0, QLM_E_FORMAT},
    {"JSON array, not object", "[1,2,3]", USE_LEN, 0, 0, QLM_E_FORMAT},
    {"tensor entry not an object", "{\"a\":5}", USE_LEN, 0, 0, QLM_E_FORMAT},
    {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", USE_LEN, 8, 0,
     QLM_E_FORMAT},
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", USE_LEN, 8, 0,
     QLM_E_FORMAT},
    {"negative dim", "{" T("a", "F32", "[-2]", 0, 8) "}", USE_LEN, 8, 0, QLM_E_FORMAT},
    {"non-integer dim", "{" T("a", "F32", "[2.5]", 0, 8) "}", USE_LEN, 8, 0, QLM_E_FORMAT},
    {"shape not an array", "{" T("a", "F32", "\"2\"", 0, 8) "}", USE_LEN, 8, 0, QLM_E_FORMAT},
    {"too many dims", "{" T("a", "F32", "[1,1,1,1,1,1,1,1,2]", 0, 8) "}", USE_LEN, 8, 0,
     QLM_E_RANGE},
    {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", USE_LEN, 8, 0,
     QLM_E_FORMAT},
    {"data_offsets of one", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}",
     USE_LEN, 8, 0, QLM_E_FORMAT},
    {"reversed offsets", "{" T("a", "F32", "[1]", 8, 4) "}", USE_LEN, 8, 0, QLM_E_RANGE},
    {"negative offset", "{" T("a", "F32", "[1]", -4, 0) "}", USE_LEN, 8, 0, QLM_E_FORMAT},
    {"overlapping tensors", "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 4, 12) "}",
     USE_LEN, 12, 0, QLM_E_RANGE},
    {"hole between tensors", "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 12, 20)
     "}", USE_LEN, 20, 0, QLM_E_RANGE},
    {"hole at the start", "{" T("a", "F32", "[2]", 4, 12) "}", USE_LEN, 12, 0, QLM_E_RANGE},
    {"tensor past the end", "{" T("a", "F32", "[2]", 0, 8) "}", USE_LEN, 4, 0, QLM_E_RANGE},
    {"trailing bytes", "{" T("a", "F32", "[2]", 0, 8) "}", USE_LEN, 12, 0, QLM_E_RANGE},
    {"shape x dtype != length", "{" T("a", "F32", "[3]", 0, 8) "}", USE_LEN, 8, 0,
     QLM_E_FORMAT},
    {"bf16 size mismatch", "{" T("a", "BF16", "[2,2]", 0, 16) "}", USE_LEN, 16, 0,
     QLM_E_FORMAT},
    {"unknown dtype", "{" T("a", "Q4_K", "[2]", 0, 8) "}", USE_LEN, 8, 0, QLM_E_FORMAT},
    {"dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}",
     USE_LEN, 8, 0, QLM_E_FORMAT},
    {"duplicate names", "{" T("a", "F32", "[2]", 0, 8) "," T("a", "F32", "[2]", 8, 16) "}",
     USE_LEN, 16, 0, QLM_E_FORMAT},
    {"overflowing shape", "{" T("a", "F32", "[4294967296,4294967296,16]", 0, 8) "}", USE_LEN,
     8, 0, QLM_E_RANGE},
    {"numel x size overflows", "{" T("a", "F64", "[4611686018427387904]", 0, 8) "}", USE_LEN,
     8, 0, QLM_E_RANGE},
    {"__metadata__ not an object", "{\"__metadata__\":[1]}", USE_LEN, 0, 0, QLM_E_FORMAT},
    {"__metadata__ value not a string", "{\"__metadata__\":{\"format\":1}}", USE_LEN, 0, 0,
     QLM_E_FORMAT},
    {"truncated data", "{" T("a", "F32", "[4]", 0, 16) "}", USE_LEN, 16, 8 + 31, QLM_E_RANGE},
};

START_TEST(malformed_refused)
{
    const struct bad_case *c = &bad[_i];
    const char *p = tpath("model.safetensors");
    size_t cut = c->cut;
    if (strcmp(c->what, "empty file") == 0) {
        FILE *f = fopen(p, "wb");
        fclose(f);
    } else {
        if (strcmp(c->what, "truncated data") == 0)
            cut = 8 + strlen(c->json) + 8;
        write_st(p, c->json, c->hlen, c->ndata, cut);
    }
    struct qlm_st_model *m = NULL;
    struct qlm_error err = {0};
    enum qlm_err rc = qlm_st_open(&m, p, &err);
    ck_assert_msg(rc == c->want, "%s: got %d (%s), want %d", c->what, rc, err.msg, c->want);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, p) != NULL, "%s: message '%s' does not name the file",
                  c->what, err.msg);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    /* the same file found through its directory fails the same way */
    ck_assert_int_eq(qlm_st_open(&m, tmpdir, &err), c->want);
}
END_TEST

static void put_index(const char *json)
{
    FILE *f = fopen(tpath("model.safetensors.index.json"), "w");
    fputs(json, f);
    fclose(f);
}

START_TEST(valid_single)
{
    /* a: BF16 [2,3] = 1 2 -3 0 inf 0.5; b: F32 [2]; c: F16 [2]; d: I64 [1]; e: empty */
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
                       "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                       "\"c\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[20,24]},"
                       "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[24,24]},"
                       "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[24,32]}}";
    uint8_t data[32] = {0x80, 0x3f, 0x00, 0x40, 0x40, 0xc0, 0x00, 0x00, 0x80, 0x7f, 0x00, 0x3f,
                        0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, /* 1.5, -2 */
                        0x00, 0x3c, 0x00, 0xb8,                         /* 1, -0.5 */
                        7, 0, 0, 0, 0, 0, 0, 0};
    const char *p = tpath("model.safetensors");
    FILE *f = fopen(p, "wb");
    uint64_t len = strlen(json);
    for (int i = 0; i < 8; i++)
        fputc((int)(len >> (8 * i)) & 0xff, f);
    fputs(json, f);
    fwrite(data, 1, sizeof data, f);
    fclose(f);
    for (int via_dir = 0; via_dir < 2; via_dir++) {
        struct qlm_st_model *m;
        struct qlm_error err = {0};
        ck_assert_int_eq(qlm_st_open(&m, via_dir ? tmpdir : p, &err), QLM_OK);
        ck_assert_int_eq(m->n_shards, 1);
        ck_assert_uint_eq(m->n_tensors, 5);
        for (size_t i = 1; i < m->n_tensors; i++)
            ck_assert(strcmp(m->tensors[i - 1].name, m->tensors[i].name) < 0);
        const struct qlm_st_tensor *a = qlm_st_find(m, "a");
        ck_assert_ptr_nonnull(a);
        ck_assert_int_eq(a->dtype, QLM_ST_BF16);
        ck_assert_str_eq(a->dtype_name, "BF16");
        ck_assert_int_eq(a->n_dims, 2);
        ck_assert_uint_eq(a->dims[0], 2);
        ck_assert_uint_eq(a->dims[1], 3);
        ck_assert_uint_eq(a->numel, 6);
        ck_assert_uint_eq(a->size, 12);
        float y[6];
        qlm_st_to_f32(a, 0, 6, y);
        ck_assert(y[0] == 1 && y[1] == 2 && y[2] == -3 && y[3] == 0 && isinf(y[4]) &&
                  y[5] == 0.5f);
        qlm_st_to_f32(a, 4, 2, y);
        ck_assert(isinf(y[0]) && y[1] == 0.5f);
        qlm_st_to_f32(qlm_st_find(m, "b"), 0, 2, y);
        ck_assert(y[0] == 1.5f && y[1] == -2.0f);
        qlm_st_to_f32(qlm_st_find(m, "c"), 0, 2, y);
        ck_assert(y[0] == 1.0f && y[1] == -0.5f);
        const struct qlm_st_tensor *d = qlm_st_find(m, "d");
        ck_assert_int_eq(d->dtype, QLM_ST_OTHER);
        ck_assert_str_eq(d->dtype_name, "I64");
        ck_assert_uint_eq(((const uint8_t *)d->data)[0], 7);
        ck_assert_uint_eq(qlm_st_find(m, "e")->numel, 0);
        ck_assert_ptr_null(qlm_st_find(m, "__metadata__"));
        ck_assert_ptr_null(qlm_st_find(m, "zz"));
        for (size_t i = 0; i < m->n_tensors; i++)
            qlm_st_release(m, &m->tensors[i]);
        qlm_st_to_f32(a, 0, 6, y); /* still readable after release */
        ck_assert(y[1] == 2);
        qlm_st_close(m);
    }
}
END_TEST

START_TEST(valid_empty)
{
    write_st(tpath("model.safetensors"), "{}", USE_LEN, 0, 0);
    struct qlm_st_model *m;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_st_open(&m, tpath("model.safetensors"), &err), QLM_OK);
    ck_assert_uint_eq(m->n_tensors, 0);
    ck_assert_ptr_null(qlm_st_find(m, "a"));
    qlm_st_close(m);
}
END_TEST

static const char *shard1 = "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[1]", 8, 12) "}";
static const char *shard2 = "{" T("c", "BF16", "[4]", 0, 8) "}";

START_TEST(valid_sharded)
{
    write_st(tpath("s1.safetensors"), shard1, USE_LEN, 12, 0);
    write_st(tpath("s2.safetensors"), shard2, USE_LEN, 8, 0);
    put_index("{\"metadata\":{\"total_size\":20},\"weight_map\":{\"a\":\"s1.safetensors\","
              "\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}}");
    for (int via_dir = 0; via_dir < 2; via_dir++) {
        struct qlm_st_model *m;
        struct qlm_error err = {0};
        ck_assert_msg(qlm_st_open(&m, via_dir ? tmpdir : tpath("model.safetensors.index.json"),
                                  &err) == QLM_OK, "%s", err.msg);
        ck_assert_int_eq(m->n_shards, 2);
        ck_assert_uint_eq(m->n_tensors, 3);
        const struct qlm_st_tensor *c = qlm_st_find(m, "c");
        ck_assert_ptr_nonnull(strstr(m->shard_paths[c->shard], "s2.safetensors"));
        ck_assert_ptr_nonnull(strstr(m->shard_paths[qlm_st_find(m, "a")->shard],
                                     "s1.safetensors"));
        qlm_st_close(m);
    }
}
END_TEST

struct index_case {
    const char *what, *index;
    enum qlm_err want;
    const char *names;  /* the file the message must name */
};

static const struct index_case bad_index[] = {
    {"index not JSON", "{\"weight_map\":", QLM_E_FORMAT, "index.json"},
    {"index without weight_map", "{\"metadata\":{}}", QLM_E_FORMAT, "index.json"},
    {"weight_map not an object", "{\"weight_map\":[1]}", QLM_E_FORMAT, "index.json"},
    {"shard name not a string", "{\"weight_map\":{\"a\":1}}", QLM_E_FORMAT, "index.json"},
    {"shard name with a path", "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}", QLM_E_FORMAT,
     "index.json"},
    {"missing shard", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"c\":\"s9.safetensors\"}}",
     QLM_E_NOTFOUND, "s9.safetensors"},

    {"tensor not in its shard", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":"
     "\"s1.safetensors\",\"c\":\"s1.safetensors\",\"x\":\"s2.safetensors\"}}",
     QLM_E_FORMAT, "index.json"},
    {"shard tensor missing from the index", "{\"weight_map\":{\"a\":\"s1.safetensors\","
     "\"c\":\"s2.safetensors\"}}", QLM_E_FORMAT, "s1.safetensors"},
    {"duplicate key in index", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":"
     "\"s1.safetensors\"}}", QLM_E_FORMAT, "index.json"},
    {"duplicate tensor across shards", NULL, QLM_E_FORMAT, "safetensors"},
};

START_TEST(bad_index_refused)
{
    const struct index_case *c = &bad_index[_i];
    write_st(tpath("s1.safetensors"), shard1, USE_LEN, 12, 0);
    if (c->index) {
        write_st(tpath("s2.safetensors"), shard2, USE_LEN, 8, 0);
        put_index(c->index);
    } else {
        /* s2 also holds "a" */
        write_st(tpath("s2.safetensors"), "{" T("a", "F32", "[2]", 0, 8) "}", USE_LEN, 8, 0);
        put_index("{\"weight_map\":{\"a\":\"s2.safetensors\",\"b\":\"s1.safetensors\"}}");
        /* the index names both shards only via a second key for s1 */
    }
    struct qlm_st_model *m = NULL;
    struct qlm_error err = {0};
    enum qlm_err rc = qlm_st_open(&m, tmpdir, &err);
    ck_assert_msg(rc == c->want, "%s: got %d (%s)", c->what, rc, err.msg);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, c->names) && strstr(err.msg, tmpdir), "%s: '%s'", c->what,
                  err.msg);
}
END_TEST

START_TEST(missing_model)
{
    struct qlm_st_model *m = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_st_open(&m, tmpdir, &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, tmpdir));
    ck_assert_int_eq(qlm_st_open(&m, tpath("nope.safetensors"), &err), QLM_E_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope.safetensors"));
}
END_TEST

/* A FIFO or a directory in place of a shard, the single file or the index
 * is refused at once (open would wait for a writer forever). */
START_TEST(not_regular_refused)
{
    static const char *const names[] = {"model.safetensors", "s2.safetensors",
                                        "model.safetensors.index.json"};
    const char *name = names[_i / 2];
    bool fifo = _i % 2 == 0;
    write_st(tpath("s1.safetensors"), shard1, USE_LEN, 12, 0);
    if (_i / 2 == 1)
        put_index("{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\","
                  "\"c\":\"s2.safetensors\"}}");
    ck_assert_int_eq(fifo ? mkfifo(tpath(name), 0600) : mkdir(tpath(name), 0700), 0);
    struct qlm_st_model *m = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_st_open(&m, tmpdir, &err), QLM_E_IO);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, name) && strstr(err.msg, fifo ? "is a FIFO, not a regular "
                  "file" : "is a directory, not a regular file"), "%s", err.msg);
    if (!fifo)
        rmdir(tpath(name));
}
END_TEST

/* Shard names are compared whole: "1.safetensors" (an empty shard) does not
 * hold what "s1.safetensors" holds. */
START_TEST(shard_names_exact)
{
    write_st(tpath("s1.safetensors"), shard1, USE_LEN, 12, 0);
    write_st(tpath("1.safetensors"), "{}", USE_LEN, 0, 0);
    put_index("{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"1.safetensors\"}}");
    struct qlm_st_model *m = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_st_open(&m, tmpdir, &err), QLM_E_FORMAT);
    ck_assert_msg(strstr(err.msg, "index.json: weight_map tensor 'b' is not in 1.safetensors"),
                  "%s", err.msg);
}
END_TEST

/* A real large model: 200 shards (Qwen3-235B has 118) of two tensors each,
 * named in the index in a shuffled order. */
START_TEST(many_shards)
{
    enum { N = 200 };
    char *ix = malloc(N * 2 * 64 + 64);
    size_t at = (size_t)sprintf(ix, "{\"weight_map\":{");
    for (int k = 0; k < 2 * N; k++) {
        int i = (k * 37) % (2 * N) / 2, t = (k * 37) % 2; /* 37 is prime to 2N */
        at += (size_t)sprintf(ix + at, "%s\"w%d.%d\":\"m-%05d-of-%05d.safetensors\"",
                              k ? "," : "", i, t, i + 1, N);
    }
    strcpy(ix + at, "}}");
    put_index(ix);
    free(ix);
    for (int i = 0; i < N; i++) {
        char name[64], json[256];
        snprintf(name, sizeof name, "m-%05d-of-%05d.safetensors", i + 1, N);
        snprintf(json, sizeof json, "{\"w%d.0\":{\"dtype\":\"F32\",\"shape\":[1],"
                 "\"data_offsets\":[0,4]},\"w%d.1\":{\"dtype\":\"BF16\",\"shape\":[2],"
                 "\"data_offsets\":[4,8]}}", i, i);
        write_st(tpath(name), json, USE_LEN, 8, 0);
    }
    struct qlm_st_model *m;
    struct qlm_error err = {0};
    ck_assert_msg(qlm_st_open(&m, tmpdir, &err) == QLM_OK, "%s", err.msg);
    ck_assert_int_eq(m->n_shards, N);
    ck_assert_uint_eq(m->n_tensors, 2 * N);
    const struct qlm_st_tensor *t = qlm_st_find(m, "w123.1");
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(strstr(m->shard_paths[t->shard], "m-00124-of-00200.safetensors"));
    qlm_st_close(m);
}
END_TEST

/* More distinct shard names than can be mapped at once: refused by count,
 * before any shard is opened. */
START_TEST(too_many_shards)
{
    enum { N = 16385 };
    char *ix = malloc(N * 48 + 64);
    size_t at = (size_t)sprintf(ix, "{\"weight_map\":{");
    for (int i = 0; i < N; i++)
        at += (size_t)sprintf(ix + at, "%s\"w%d\":\"s%d.safetensors\"", i ? "," : "", i, i);
    strcpy(ix + at, "}}");
    put_index(ix);
    free(ix);
    struct qlm_st_model *m = NULL;
    struct qlm_error err = {0};
    ck_assert_int_eq(qlm_st_open(&m, tmpdir, &err), QLM_E_RANGE);
    ck_assert_msg(strstr(err.msg, "index.json: weight_map names more than 16384 shard files"),
                  "%s", err.msg);
}
END_TEST

static Suite *st_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *c = tcase_create("malformed");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_loop_test(c, malformed_refused, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_loop_test(c, bad_index_refused, 0, (int)(sizeof bad_index / sizeof bad_index[0]));
    tcase_add_test(c, missing_model);
    tcase_add_loop_test(c, not_regular_refused, 0, 6);
    tcase_add_test(c, too_many_shards);
    tcase_add_test(c, shard_names_exact);
    suite_add_tcase(s, c);
    c = tcase_create("valid");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, valid_single);
    tcase_add_test(c, valid_empty);
    tcase_add_test(c, valid_sharded);
    tcase_add_test(c, many_shards);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(st_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
